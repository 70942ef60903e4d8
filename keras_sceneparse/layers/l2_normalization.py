import keras
from keras import ops

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float


@serializable
class L2Normalization(keras.layers.Layer):
    """L2 normalisation over channels with a learned per-channel scale (ParseNet's fusion norm).

    Liu, Rabinovich and Berg, "ParseNet: Looking Wider to See Better", ICLR 2016 workshop,
    https://arxiv.org/abs/1506.04579, Sec. 3.3. Features of different layers (a globally
    pooled vector and the local features) differ in scale by orders of magnitude, so
    concatenating them lets the largest dominate; ParseNet normalises each feature vector
    ``x`` (the channels at one position) and rescales every channel with a learned
    ``gamma``::

        x_hat = x / ||x||_2,   ||x||_2 = (sum_i x_i^2)^(1/2)       (Eq. 1, 2)
        y_i   = gamma_i * x_hat_i                                   (Eq. 3)

    Without the scale the normalised values are tiny and training barely moves (Sec. 3.3),
    so ``gamma`` starts at a constant larger than 1 (``scale``). ``epsilon`` is added to the
    sum of squares, as in the reference ``Normalize`` layer, so an all-zero vector maps to 0.

    Args:
        scale: initial value of every ``gamma_i``.
        epsilon: added to ``sum_i x_i^2`` before the square root.

    Example:
        >>> L2Normalization(scale=10.0)(np.ones((1, 2, 2, 4), "float32"))[0, 0, 0]
        # 10 / 2 = 5 in every channel
    """

    def __init__(self, scale=10.0, epsilon=1e-10, **kwargs):
        super().__init__(**kwargs)
        self.scale = check_float("scale", scale)
        self.epsilon = check_float("epsilon", epsilon, minimum=0.0)
        self.gamma = None

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"L2Normalization needs a known channel count, got input shape {input_shape}.")
        self.gamma = self.add_weight(
            shape=(channels,), initializer=keras.initializers.Constant(self.scale), name="gamma"
        )

    def call(self, inputs):
        squared_norm = ops.sum(ops.square(inputs), axis=-1, keepdims=True)
        normalized = inputs * ops.rsqrt(squared_norm + ops.cast(self.epsilon, inputs.dtype))
        return normalized * ops.cast(self.gamma, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "epsilon": self.epsilon}
