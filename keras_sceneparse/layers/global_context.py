import keras
from keras import ops

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


@serializable
class GlobalContextBlock(keras.layers.Layer):
    """Global context (GC) block: one attention-pooled context vector added to every position.

    Cao, Xu, Lin, Wei and Hu, "GCNet: Non-local Networks Meet Squeeze-Excitation Networks
    and Beyond", ICCV Workshops 2019, https://arxiv.org/abs/1904.11492, Sec. 4 and
    Fig. 4(d). The non-local block's attention map is nearly the same for every query
    (Sec. 3), so it is computed once, query-independent::

        context = sum_j softmax_j(W_k x_j) x_j                     (context modelling)
        delta   = W_v2 ReLU(LN(W_v1 context))                      (bottleneck transform)
        z_i     = x_i + delta                                      (fusion by addition)

    ``W_k`` is a 1x1 convolution to one channel, the softmax runs over the ``H x W``
    positions; ``W_v1`` (``C -> C / r``) and ``W_v2`` (``C / r -> C``) are 1x1
    convolutions with layer normalisation (which the paper adds to ease the optimisation
    of the two-layer bottleneck) and ReLU between them. The paper's default bottleneck
    ratio is ``r = 16`` (Sec. 4; its COCO ablations vary ``r``). As in the reference code
    (``ContextBlock``), all convolutions have biases,
    the layer normalisation uses epsilon 1e-5 (PyTorch's) and the last convolution starts at
    zero (``zero_init``), so the block starts as the identity.

    Args:
        bottleneck_ratio: ``r``; the transform has ``max(C // r, 1)`` hidden channels.
        zero_init: initialise ``W_v2`` (kernel and bias) to zero.

    Example:
        >>> GlobalContextBlock(bottleneck_ratio=4)(np.zeros((2, 9, 7, 16), "float32")).shape
        TensorShape([2, 9, 7, 16])
    """

    def __init__(self, bottleneck_ratio=16, zero_init=True, **kwargs):
        super().__init__(**kwargs)
        self.bottleneck_ratio = check_int("bottleneck_ratio", bottleneck_ratio, minimum=1)
        self.zero_init = bool(zero_init)
        self.attention_mask = self.transform = None

    def build(self, input_shape):
        channels = input_shape[-1]
        self.hidden_channels = max(channels // self.bottleneck_ratio, 1)
        policy = self.dtype_policy
        self.attention_mask = keras.layers.Conv2D(1, 1, dtype=policy, name="attention_mask")
        initializer = "zeros" if self.zero_init else "glorot_uniform"
        self.transform = [
            keras.layers.Conv2D(self.hidden_channels, 1, dtype=policy, name="bottleneck"),
            keras.layers.LayerNormalization(epsilon=1e-5, dtype=policy, name="layer_norm"),
            keras.layers.Activation("relu", dtype=policy, name="relu"),
            keras.layers.Conv2D(
                channels, 1, kernel_initializer=initializer, bias_initializer="zeros", dtype=policy, name="expansion"
            ),
        ]
        self.attention_mask.build(input_shape)
        shape = (input_shape[0], 1, 1, channels)
        for layer in self.transform:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def call(self, inputs):
        batch = ops.shape(inputs)[0]
        channels = inputs.shape[-1]
        logits = ops.cast(ops.reshape(self.attention_mask(inputs), (batch, -1, 1)), "float32")
        weights = ops.cast(ops.softmax(logits, axis=1), inputs.dtype)  # (B, N, 1), sums to 1 over N
        features = ops.reshape(inputs, (batch, -1, channels))
        context = ops.sum(weights * features, axis=1)  # (B, C)
        delta = ops.reshape(context, (batch, 1, 1, channels))
        for layer in self.transform:
            delta = layer(delta)
        return inputs + delta

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "bottleneck_ratio": self.bottleneck_ratio, "zero_init": self.zero_init}
