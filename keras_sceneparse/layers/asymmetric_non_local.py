"""ANN's asymmetric non-local blocks: keys and values sampled by pyramid pooling (Zhu et al., ICCV 2019)."""

import math

import keras
from keras import ops

from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.layers.pyramid_pooling import AdaptiveAveragePooling2D
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int

#: The pyramid of the paper (Sec. 3.2): 1 + 9 + 36 + 64 = 110 sampled keys and values.
PYRAMID_BINS = (1, 3, 6, 8)


def _check_bins(bins):
    bins = tuple(check_int("pool_sizes[i]", size, minimum=1) for size in bins)
    if not bins:
        raise ValueError(
            "`pool_sizes` must name at least one pyramid level, got an empty sequence."
        )
    return bins


def _check_feature_shape(layer, name, shape):
    if len(shape) != 4 or shape[-1] is None:
        raise ValueError(
            f"{type(layer).__name__} expects {name} of shape (batch, height, width, channels) with known "
            f"channels, got {tuple(shape)}."
        )


class _AsymmetricAttention(keras.layers.Layer):
    """What AFNB and APNB share: pyramid-sampled keys/values and the attention over them.

    Not public: the two blocks differ only in where queries, keys and values come from and
    in the fusion that follows.
    """

    def __init__(
        self, key_channels=256, value_channels=256, pool_sizes=PYRAMID_BINS, **kwargs
    ):
        super().__init__(**kwargs)
        self.key_channels = check_int("key_channels", key_channels, minimum=1)
        self.value_channels = check_int("value_channels", value_channels, minimum=1)
        self.pool_sizes = _check_bins(pool_sizes)
        policy = self.dtype_policy
        self.pools = [
            AdaptiveAveragePooling2D(size, dtype=policy, name=f"pool_{size}")
            for size in self.pool_sizes
        ]

    @property
    def num_samples(self):
        """``S = sum n^2`` keys and values per image (110 for bins 1, 3, 6, 8)."""
        return sum(size * size for size in self.pool_sizes)

    def pyramid_sample(self, features):
        """``(B, H, W, C)`` -> ``(B, S, C)``: the adaptive-pooled bins of every level, row-major."""
        batch = ops.shape(features)[0]
        channels = features.shape[-1]
        samples = [
            ops.reshape(pool(features), (batch, size * size, channels))
            for pool, size in zip(self.pools, self.pool_sizes)
        ]
        return ops.concatenate(samples, axis=1)

    def attend(self, query, key, value):
        """``softmax(Q K_P^T / sqrt(C_k)) V_P`` for queries at every position of ``query``.

        ``query``: ``(B, H, W, C_k)``; ``key``/``value``: full maps, pyramid-sampled here.
        Returns ``(B, H, W, C_v)``.
        """
        shape = ops.shape(query)
        batch = shape[0]
        queries = ops.reshape(query, (batch, -1, self.key_channels))  # (B, N, C_k)
        keys = self.pyramid_sample(key)  # (B, S, C_k)
        values = self.pyramid_sample(value)  # (B, S, C_v)
        energy = ops.matmul(queries, ops.transpose(keys, (0, 2, 1))) / math.sqrt(
            self.key_channels
        )
        # Softmax in float32, as the other attention blocks of the library under mixed precision.
        attention = ops.cast(
            ops.softmax(ops.cast(energy, "float32"), axis=-1), values.dtype
        )
        context = ops.matmul(attention, values)  # (B, N, C_v)
        return ops.reshape(context, (batch, shape[1], shape[2], self.value_channels))

    def get_config(self):
        return {
            **super().get_config(),
            "key_channels": self.key_channels,
            "value_channels": self.value_channels,
            "pool_sizes": self.pool_sizes,
        }


@serializable
class AsymmetricFusionNonLocalBlock(_AsymmetricAttention):
    """ANN's asymmetric fusion non-local block (AFNB): high-level queries attend to low-level samples.

    Zhu, Xu, Bai, Huang and Bai, "Asymmetric Non-local Neural Networks for Semantic
    Segmentation", ICCV 2019, https://arxiv.org/abs/1908.07678, Sec. 3.3 and Fig. 2.

    Called as ``block(low, high)`` with ``low`` the stage-4 features (``Y_l``, ``C4`` of a
    dilated ResNet, 1024 channels) and ``high`` the stage-5 features (``Y_h``, ``C5``, 2048)
    at the same resolution. The queries come from ``high``, keys and values from ``low``,
    sampled by the pyramid pooling of the APNB (Sec. 3.2): each map is average-pooled to
    ``n x n`` bins for ``n`` in ``pool_sizes`` (1, 3, 6, 8) and the ``S = 110`` bins replace
    its ``N = H W`` positions::

        Q = phi(Y_h),  K = P(theta(Y_l)),  V = P(gamma(Y_l))
        O = W_o softmax(Q K^T / sqrt(C_k)) V                    (N x S attention)
        Y = BN(W_f [O, Y_h])                                    (fusion)

    ``phi``, ``theta`` are 1x1 convolutions to ``key_channels`` (256) with batch norm and
    ReLU, ``gamma`` a 1x1 convolution to ``value_channels`` (256) with bias, ``P`` the
    pyramid sampling (:class:`~keras_sceneparse.layers.AdaptiveAveragePooling2D`, PyTorch's
    bin edges, any input size), ``W_o`` a 1x1 convolution back to ``out_channels`` (those
    of ``high``) with bias, initialised to zero as in the released code, and ``W_f`` a 1x1
    convolution of the concatenation followed by batch norm without activation (the
    released code and mmsegmentation's ``AFNB``). The energies are scaled by
    ``1 / sqrt(C_k)`` as in both codes. The fusion convolution has no bias
    (mmsegmentation; the released code's has one, redundant before batch norm).

    Args:
        key_channels: channels of the queries and keys (256).
        value_channels: channels of the values (256).
        pool_sizes: pyramid levels of the key/value sampling ((1, 3, 6, 8)).
        out_channels: channels of the output; ``None`` for those of ``high``.

    Example:
        >>> block = AsymmetricFusionNonLocalBlock(key_channels=8, value_channels=8)
        >>> block(np.zeros((2, 9, 7, 16), "float32"), np.zeros((2, 9, 7, 32), "float32")).shape
        TensorShape([2, 9, 7, 32])
    """

    def __init__(
        self,
        key_channels=256,
        value_channels=256,
        pool_sizes=PYRAMID_BINS,
        out_channels=None,
        **kwargs,
    ):
        super().__init__(
            key_channels=key_channels,
            value_channels=value_channels,
            pool_sizes=pool_sizes,
            **kwargs,
        )
        self.out_channels = (
            None
            if out_channels is None
            else check_int("out_channels", out_channels, minimum=1)
        )

    def build(self, low_shape, high_shape):
        _check_feature_shape(self, "`low` features", low_shape)
        _check_feature_shape(self, "`high` features", high_shape)
        out_channels = self.out_channels or high_shape[-1]
        policy = self.dtype_policy
        self.query = ConvBNReLU(self.key_channels, 1, dtype=policy, name="query")
        self.key = ConvBNReLU(self.key_channels, 1, dtype=policy, name="key")
        self.value = keras.layers.Conv2D(
            self.value_channels, 1, dtype=policy, name="value"
        )
        self.output_conv = keras.layers.Conv2D(
            out_channels,
            1,
            kernel_initializer="zeros",
            bias_initializer="zeros",
            dtype=policy,
            name="output_conv",
        )
        self.fusion = ConvBNReLU(
            out_channels, 1, activation=None, dtype=policy, name="fusion"
        )
        self.query.build(high_shape)
        self.key.build(low_shape)
        self.value.build(low_shape)
        self.output_conv.build((None, None, None, self.value_channels))
        self.fusion.build((None, None, None, out_channels + high_shape[-1]))

    def call(self, low, high, training=None):
        query = self.query(high, training=training)
        context = self.attend(query, self.key(low, training=training), self.value(low))
        context = self.output_conv(context)
        return self.fusion(ops.concatenate([context, high], axis=-1), training=training)

    def compute_output_shape(self, low_shape, high_shape):
        return (*high_shape[:-1], self.out_channels or high_shape[-1])

    def get_config(self):
        return {**super().get_config(), "out_channels": self.out_channels}


@serializable
class AsymmetricPyramidNonLocalBlock(_AsymmetricAttention):
    """ANN's asymmetric pyramid non-local block (APNB): every position attends to 110 pyramid samples.

    Zhu, Xu, Bai, Huang and Bai, "Asymmetric Non-local Neural Networks for Semantic
    Segmentation", ICCV 2019, https://arxiv.org/abs/1908.07678, Sec. 3.2 and Fig. 2.

    A non-local block whose keys and values are not the ``N = H W`` positions but ``S``
    samples of them: the key and value maps are average-pooled to ``n x n`` bins for ``n``
    in ``pool_sizes`` (1, 3, 6, 8: ``S = 110``), which makes the attention ``N x S`` instead
    of ``N x N`` (Sec. 3.2; "asymmetric")::

        Q = K-map = phi(X),  K = P(phi(X)),  V = P(gamma(X))
        O = W_o softmax(Q K^T / sqrt(C_k)) V
        Y = ReLU(BN(W_f [O, X]))

    ``phi`` is one 1x1 convolution to ``key_channels`` (256) with batch norm and ReLU shared
    by queries and keys (the released code's ``f_query = f_key``), ``gamma`` a 1x1
    convolution to ``value_channels`` (256) with bias, ``P`` the pyramid sampling
    (:class:`~keras_sceneparse.layers.AdaptiveAveragePooling2D`, any input size), ``W_o`` a
    zero-initialised 1x1 convolution back to the input channels (with bias), and ``W_f`` a
    1x1 convolution of the concatenation with batch norm and ReLU to ``out_channels`` (the
    input's by default). Energies are scaled by ``1 / sqrt(C_k)``, as in the released code.

    Args:
        key_channels: channels of the queries and keys (256).
        value_channels: channels of the values (256).
        pool_sizes: pyramid levels of the key/value sampling ((1, 3, 6, 8)).
        out_channels: channels of the output; ``None`` for the input's.

    Example:
        >>> block = AsymmetricPyramidNonLocalBlock(key_channels=8, value_channels=8)
        >>> block(np.zeros((2, 9, 7, 16), "float32")).shape
        TensorShape([2, 9, 7, 16])
    """

    def __init__(
        self,
        key_channels=256,
        value_channels=256,
        pool_sizes=PYRAMID_BINS,
        out_channels=None,
        **kwargs,
    ):
        super().__init__(
            key_channels=key_channels,
            value_channels=value_channels,
            pool_sizes=pool_sizes,
            **kwargs,
        )
        self.out_channels = (
            None
            if out_channels is None
            else check_int("out_channels", out_channels, minimum=1)
        )

    def build(self, input_shape):
        _check_feature_shape(self, "inputs", input_shape)
        channels = input_shape[-1]
        policy = self.dtype_policy
        self.query_key = ConvBNReLU(
            self.key_channels, 1, dtype=policy, name="query_key"
        )
        self.value = keras.layers.Conv2D(
            self.value_channels, 1, dtype=policy, name="value"
        )
        self.output_conv = keras.layers.Conv2D(
            channels,
            1,
            kernel_initializer="zeros",
            bias_initializer="zeros",
            dtype=policy,
            name="output_conv",
        )
        self.fusion = ConvBNReLU(
            self.out_channels or channels, 1, dtype=policy, name="fusion"
        )
        self.query_key.build(input_shape)
        self.value.build(input_shape)
        self.output_conv.build((None, None, None, self.value_channels))
        self.fusion.build((None, None, None, 2 * channels))

    def call(self, inputs, training=None):
        embedded = self.query_key(inputs, training=training)
        context = self.output_conv(self.attend(embedded, embedded, self.value(inputs)))
        return self.fusion(
            ops.concatenate([context, inputs], axis=-1), training=training
        )

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.out_channels or input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "out_channels": self.out_channels}
