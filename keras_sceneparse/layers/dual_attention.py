"""DANet's two self-attention modules (Fu et al., "Dual Attention Network for Scene Segmentation", CVPR 2019)."""

import keras
from keras import ops

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


@serializable
class PositionAttention(keras.layers.Layer):
    """DANet's position attention module: each position gathers features from all positions.

    Fu, Liu, Tian, Li, Bao, Fang and Lu, "Dual Attention Network for Scene Segmentation",
    CVPR 2019, https://arxiv.org/abs/1809.02983, Sec. 3.2 and Fig. 3(A).

    Two 1x1 convolutions of the input ``A`` (``C -> C / reduction`` channels) give ``B``
    and ``C``, a third (``C -> C``) gives ``D``. With ``N = H x W`` positions::

        s_ji = exp(B_i . C_j) / sum_i exp(B_i . C_j)                 (Eq. 1)
        E_j  = alpha * sum_i s_ji D_i + A_j                          (Eq. 2)

    where ``alpha`` is a learned scalar initialised to 0. The released code calls the
    convolution evaluated at the output position ``j`` ``query`` and the one at ``i``
    ``key``; the weights here carry those names (``C = query``, ``B = key``, ``D = value``).
    The reference uses ``C / 8`` query/key channels (``reduction=8``, 64 for the 512-channel
    DANet head), and convolutions with biases.

    Memory: the attention map has ``(H W)^2`` entries per image.

    Args:
        reduction: query/key channels are ``max(C // reduction, 1)`` (8).

    Example:
        >>> PositionAttention()(np.zeros((2, 9, 7, 16), "float32")).shape
        TensorShape([2, 9, 7, 16])
    """

    def __init__(self, reduction=8, **kwargs):
        super().__init__(**kwargs)
        self.reduction = check_int("reduction", reduction, minimum=1)
        self.query = self.key = self.value = None

    def build(self, input_shape):
        channels = input_shape[-1]
        self.key_channels = max(channels // self.reduction, 1)
        policy = self.dtype_policy
        self.query = keras.layers.Conv2D(self.key_channels, 1, dtype=policy, name="query")
        self.key = keras.layers.Conv2D(self.key_channels, 1, dtype=policy, name="key")
        self.value = keras.layers.Conv2D(channels, 1, dtype=policy, name="value")
        for layer in (self.query, self.key, self.value):
            layer.build(input_shape)
        self.alpha = self.add_weight(name="alpha", shape=(), initializer="zeros")

    def call(self, inputs):
        shape = ops.shape(inputs)
        batch, channels = shape[0], inputs.shape[-1]
        query = ops.reshape(self.query(inputs), (batch, -1, self.key_channels))  # C_j: (B, N, C')
        key = ops.reshape(self.key(inputs), (batch, -1, self.key_channels))  # B_i: (B, N, C')
        value = ops.reshape(self.value(inputs), (batch, -1, channels))  # D_i: (B, N, C)
        energy = ops.matmul(query, ops.transpose(key, (0, 2, 1)))  # [j, i] = B_i . C_j
        attention = ops.cast(ops.softmax(ops.cast(energy, "float32"), axis=-1), value.dtype)  # s_ji
        out = ops.reshape(ops.matmul(attention, value), shape)
        return ops.cast(self.alpha, out.dtype) * out + inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction}


@serializable
class ChannelAttention(keras.layers.Layer):
    """DANet's channel attention module: each channel map gathers the other channel maps.

    Fu et al., "Dual Attention Network for Scene Segmentation", CVPR 2019,
    https://arxiv.org/abs/1809.02983, Sec. 3.3 and Fig. 3(B). No convolutions: the
    channel affinities come from the input ``A`` itself (``A_i`` is channel ``i``
    flattened over the ``N = H x W`` positions)::

        x_ji = exp(A_i . A_j) / sum_i exp(A_i . A_j)                 (Eq. 3)
        E_j  = beta * sum_i x_ji A_i + A_j                           (Eq. 4)

    with ``beta`` a learned scalar initialised to 0.

    The released code (and mmsegmentation's port) does not take the softmax of the
    energies ``A_i . A_j`` but of ``max_i(A_i . A_j) - A_i . A_j``. Softmax ignores the
    constant, so that is the softmax of the *negated* energies: the most similar channels
    get the *least* weight. ``subtract_from_max=True`` (default) follows the released code,
    with which the paper's results were obtained; ``False`` computes Eq. 3 as printed.

    Args:
        subtract_from_max: softmax of ``max - energy`` as in the released code.

    Example:
        >>> ChannelAttention()(np.zeros((2, 9, 7, 16), "float32")).shape
        TensorShape([2, 9, 7, 16])
    """

    def __init__(self, subtract_from_max=True, **kwargs):
        super().__init__(**kwargs)
        self.subtract_from_max = bool(subtract_from_max)

    def build(self, input_shape):
        self.beta = self.add_weight(name="beta", shape=(), initializer="zeros")

    def call(self, inputs):
        shape = ops.shape(inputs)
        features = ops.reshape(inputs, (shape[0], -1, inputs.shape[-1]))  # (B, N, C): column i is A_i
        # Float32: the energies sum over all N positions and overflow float16.
        exact = ops.cast(features, "float32")
        energy = ops.matmul(ops.transpose(exact, (0, 2, 1)), exact)  # [j, i] = A_i . A_j
        if self.subtract_from_max:
            energy = ops.max(energy, axis=-1, keepdims=True) - energy
        attention = ops.cast(ops.softmax(energy, axis=-1), features.dtype)  # x_ji
        out = ops.matmul(features, ops.transpose(attention, (0, 2, 1)))  # [n, j] = sum_i x_ji A_i[n]
        return ops.cast(self.beta, out.dtype) * ops.reshape(out, shape) + inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "subtract_from_max": self.subtract_from_max}
