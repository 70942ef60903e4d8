"""Blocks of BiSeNet (Yu et al., ECCV 2018) and BiSeNet V2 (Yu et al., IJCV 2021).

BiSeNet: Yu, Wang, Peng, Gao, Yu and Sang, "BiSeNet: Bilateral Segmentation Network for
Real-time Semantic Segmentation", ECCV 2018, https://arxiv.org/abs/1808.00897, Sec. 3.2 and
Fig. 2(b), (c): :class:`AttentionRefinementModule` and :class:`FeatureFusionModule`.

BiSeNet V2: Yu, Gao, Wang, Yu, Shen and Sang, "BiSeNet V2: Bilateral Network with Guided
Aggregation for Real-time Semantic Segmentation", IJCV 2021, https://arxiv.org/abs/2004.02147,
Sec. 4 and Fig. 4-6: :class:`StemBlock`, :class:`GatherExpansion`, :class:`ContextEmbedding`
and :class:`BilateralGuidedAggregation`. Where the paper's figures leave the position of batch
normalisation and ReLU open, the blocks follow the authors' reference code (CoinCheung/BiSeNet).
"""

import keras
from keras import ops

from keras_sceneparse.layers.conv_bn_relu import BATCH_NORM_MOMENTUM, ConvBNReLU
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_int


def _batch_norm(layer, name):
    return keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, dtype=layer.dtype_policy, name=name)


def _conv(layer, filters, kernel_size, name, strides=1, use_bias=False):
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=use_bias,
        kernel_initializer="he_normal",
        dtype=layer.dtype_policy,
        name=name,
    )


def _depthwise(layer, name, strides=1, depth_multiplier=1):
    return keras.layers.DepthwiseConv2D(
        3,
        strides=strides,
        depth_multiplier=depth_multiplier,
        padding="same",
        use_bias=False,
        depthwise_initializer="he_normal",
        dtype=layer.dtype_policy,
        name=name,
    )


def _run(sequence, x, training):
    for layer in sequence:
        x = layer(x, training=training) if isinstance(layer, (keras.layers.BatchNormalization, ConvBNReLU)) else layer(x)
    return x


def _build(sequence, shape):
    for layer in sequence:
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


def _global_average(x):
    return ops.mean(x, axis=(1, 2), keepdims=True)


@serializable
class AttentionRefinementModule(keras.layers.Layer):
    """BiSeNet's attention refinement module (ARM, Yu et al. 2018, Sec. 3.2, Fig. 2(b)).

    A channel attention computed from the global context of the features themselves:

        ``y = x * sigmoid(BN(W * mean_{h,w}(x)))``

    with ``W`` a bias-free 1x1 convolution from ``C`` to ``C`` channels. The reference code
    puts a 3x3 convolution (to 128 channels) before it; the models add that separately.
    """

    def build(self, input_shape):
        channels = input_shape[-1]
        self.attention_conv = _conv(self, channels, 1, "attention_conv")
        self.attention_bn = _batch_norm(self, "attention_bn")
        self.attention_conv.build((input_shape[0], 1, 1, channels))
        self.attention_bn.build((input_shape[0], 1, 1, channels))

    def call(self, inputs, training=None):
        attention = self.attention_bn(self.attention_conv(_global_average(inputs)), training=training)
        return inputs * ops.sigmoid(attention)

    def compute_output_shape(self, input_shape):
        return input_shape


@serializable
class FeatureFusionModule(keras.layers.Layer):
    """BiSeNet's feature fusion module (FFM, Yu et al. 2018, Sec. 3.2, Fig. 2(c)).

    Called as ``FeatureFusionModule(filters)(spatial, context)`` on the spatial path's and
    the context path's features (same spatial size). The two are concatenated and mixed by
    a 1x1 convolution with batch normalisation and ReLU (1x1 as in the reference code), then
    re-weighted by a squeeze-and-excitation-like attention:

        ``u = ReLU(BN(conv([spatial, context])))``,
        ``a = sigmoid(W_2 ReLU(W_1 mean_{h,w}(u)))``,  ``y = u + u * a``

    with ``W_1``, ``W_2`` bias-free 1x1 convolutions to ``filters / reduction`` and ``filters``
    channels.

    Args:
        filters: output channels (256 in the paper's ResNet-18 model).
        reduction: channel reduction of the attention's bottleneck (4 in the reference).
    """

    def __init__(self, filters, reduction=4, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.reduction = check_int("reduction", reduction, minimum=1, maximum=self.filters)
        self.fusion_conv = ConvBNReLU(self.filters, 1, dtype=self.dtype_policy, name="fusion_conv")
        self.squeeze = _conv(self, self.filters // self.reduction, 1, "attention_squeeze")
        self.excite = _conv(self, self.filters, 1, "attention_excite")

    def build(self, spatial_shape, context_shape):
        channels = spatial_shape[-1] + context_shape[-1]
        self.fusion_conv.build(tuple(spatial_shape[:-1]) + (channels,))
        self.squeeze.build((spatial_shape[0], 1, 1, self.filters))
        self.excite.build((spatial_shape[0], 1, 1, self.filters // self.reduction))

    def call(self, spatial, context, training=None):
        fused = self.fusion_conv(ops.concatenate([spatial, context], axis=-1), training=training)
        attention = ops.sigmoid(self.excite(ops.relu(self.squeeze(_global_average(fused)))))
        return fused + fused * attention

    def compute_output_shape(self, spatial_shape, context_shape):
        return tuple(spatial_shape[:-1]) + (self.filters,)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "reduction": self.reduction}


@serializable
class StemBlock(keras.layers.Layer):
    """BiSeNet V2's stem block (Yu et al. 2021, Sec. 4.2, Fig. 4(a)): the semantic branch's
    fast 4x downsampling.

    A 3x3 stride-2 convolution to ``filters`` channels, then two parallel downsamplings: a
    1x1 convolution to ``filters / 2`` and a 3x3 stride-2 convolution back to ``filters``,
    and a 3x3 stride-2 max pooling; their concatenation is fused by a 3x3 convolution to
    ``filters``. Every convolution has batch normalisation and ReLU.

    Args:
        filters: output channels (16 in the paper, Table 1).
    """

    def __init__(self, filters=16, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=2)
        policy = self.dtype_policy
        self.stem_conv = ConvBNReLU(self.filters, 3, strides=2, dtype=policy, name="stem_conv")
        self.branch_reduce = ConvBNReLU(self.filters // 2, 1, dtype=policy, name="branch_reduce")
        self.branch_down = ConvBNReLU(self.filters, 3, strides=2, dtype=policy, name="branch_down")
        self.branch_pool = keras.layers.MaxPooling2D(3, strides=2, padding="same", dtype=policy, name="branch_pool")
        self.fusion_conv = ConvBNReLU(self.filters, 3, dtype=policy, name="fusion_conv")

    def build(self, input_shape):
        shape = _build([self.stem_conv], input_shape)
        down = _build([self.branch_reduce, self.branch_down], shape)
        self.fusion_conv.build(tuple(down[:-1]) + (2 * self.filters,))

    def call(self, inputs, training=None):
        x = self.stem_conv(inputs, training=training)
        convolved = _run([self.branch_reduce, self.branch_down], x, training)
        return self.fusion_conv(ops.concatenate([convolved, self.branch_pool(x)], axis=-1), training=training)

    def compute_output_shape(self, input_shape):
        shape = self.stem_conv.compute_output_shape(input_shape)
        shape = self.branch_down.compute_output_shape(shape)
        return tuple(shape[:-1]) + (self.filters,)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@serializable
class GatherExpansion(keras.layers.Layer):
    """BiSeNet V2's gather-and-expansion layer (GE, Yu et al. 2021, Sec. 4.2, Fig. 5(b), (c)).

    An inverted bottleneck whose first step *gathers* local context with a 3x3 convolution
    (BN, ReLU) before the depthwise expansion to ``expansion x C`` channels:

    - stride 1 (Fig. 5(b)): 3x3 conv; 3x3 depthwise conv expanding ``expansion`` times (BN,
      ReLU); 1x1 projection to ``filters`` (BN); identity shortcut; ReLU.
    - stride 2 (Fig. 5(c)): 3x3 conv; 3x3 stride-2 depthwise conv expanding (BN); 3x3
      depthwise conv (BN, ReLU); 1x1 projection (BN). The shortcut is a 3x3 stride-2
      depthwise conv (BN) and a 1x1 conv to ``filters`` (BN); sum; ReLU.

    Args:
        filters: output channels; with stride 1 they must equal the input channels.
        strides: 1 or 2.
        expansion: expansion ratio ``e`` of the depthwise convolution (6 in the paper).
    """

    def __init__(self, filters, strides=1, expansion=6, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.strides = check_choice("strides", strides, {1, 2})
        self.expansion = check_int("expansion", expansion, minimum=1)

    def build(self, input_shape):
        channels = input_shape[-1]
        if self.strides == 1 and channels != self.filters:
            raise ValueError(
                f"GatherExpansion with `strides=1` adds its input to its output, so `filters` ({self.filters}) "
                f"must equal the input channels, got {channels}."
            )
        self.gather = ConvBNReLU(channels, 3, dtype=self.dtype_policy, name="gather_conv")
        self.expand = [_depthwise(self, "expand_depthwise", self.strides, self.expansion), _batch_norm(self, "expand_bn")]
        if self.strides == 2:
            self.expand += [_depthwise(self, "spatial_depthwise"), _batch_norm(self, "spatial_bn")]
        self.expand.append(keras.layers.ReLU(dtype=self.dtype_policy, name="expand_relu"))
        self.project = [_conv(self, self.filters, 1, "project_conv"), _batch_norm(self, "project_bn")]
        self.shortcut = []
        if self.strides == 2:
            self.shortcut = [
                _depthwise(self, "shortcut_depthwise", 2),
                _batch_norm(self, "shortcut_depthwise_bn"),
                _conv(self, self.filters, 1, "shortcut_conv"),
                _batch_norm(self, "shortcut_bn"),
            ]
        _build([self.gather, *self.expand, *self.project], input_shape)
        _build(self.shortcut, input_shape)

    def call(self, inputs, training=None):
        x = _run([self.gather, *self.expand, *self.project], inputs, training)
        shortcut = _run(self.shortcut, inputs, training)
        return ops.relu(x + shortcut)

    def compute_output_shape(self, input_shape):
        height, width = input_shape[1:3]
        if self.strides == 2:
            height, width = [None if size is None else -(-size // 2) for size in (height, width)]
        return (input_shape[0], height, width, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides, "expansion": self.expansion}


@serializable
class ContextEmbedding(keras.layers.Layer):
    """BiSeNet V2's context embedding block (CE, Yu et al. 2021, Sec. 4.2, Fig. 4(b)).

    Global average pooling and batch normalisation, a 1x1 convolution (BN, ReLU) back to the
    input channels, broadcast-added to the input, then a 3x3 convolution (BN, ReLU):

        ``y = ReLU(BN(conv3x3(x + ReLU(BN(conv1x1(BN(mean_{h,w}(x))))))))``

    Args:
        filters: output channels; ``None`` keeps the input channels (128 in the paper).
    """

    def __init__(self, filters=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = None if filters is None else check_int("filters", filters, minimum=1)

    def build(self, input_shape):
        channels = input_shape[-1]
        self.pool_bn = _batch_norm(self, "pool_bn")
        self.context_conv = ConvBNReLU(channels, 1, dtype=self.dtype_policy, name="context_conv")
        self.output_conv = ConvBNReLU(self.filters or channels, 3, dtype=self.dtype_policy, name="output_conv")
        _build([self.pool_bn, self.context_conv], (input_shape[0], 1, 1, channels))
        self.output_conv.build(input_shape)

    def call(self, inputs, training=None):
        context = _run([self.pool_bn, self.context_conv], _global_average(inputs), training)
        return self.output_conv(inputs + context, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters or input_shape[-1],)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@serializable
class BilateralGuidedAggregation(keras.layers.Layer):
    """BiSeNet V2's bilateral guided aggregation layer (BGA, Yu et al. 2021, Sec. 4.3, Fig. 6).

    Called as ``BilateralGuidedAggregation(filters)(detail, semantic)`` with the detail
    branch's features (1/8) and the semantic branch's (1/32, four times smaller). Each
    branch guides the other at the other's resolution:

    - detail kept: 3x3 depthwise conv (BN), 1x1 conv;  detail down: 3x3 stride-2 conv (BN),
      3x3 stride-2 average pooling;
    - semantic kept: 3x3 depthwise conv (BN), 1x1 conv, sigmoid;  semantic up: 3x3 conv
      (BN), 4x upsampling, sigmoid;
    - ``y = ReLU(BN(conv3x3(detail_kept * semantic_up + up4(detail_down * semantic_kept))))``.

    Choices: upsampling is bilinear to the exact detail size (the paper says "4x Up"; the
    reference code upsamples nearest by 4), so sizes that are not multiples of 32 work.

    Args:
        filters: output channels (128 in the paper).
    """

    def __init__(self, filters=128, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        policy = self.dtype_policy
        self.detail_down = [
            _conv(self, self.filters, 3, "detail_down_conv", strides=2),
            _batch_norm(self, "detail_down_bn"),
            keras.layers.AveragePooling2D(3, strides=2, padding="same", dtype=policy, name="detail_down_pool"),
        ]
        self.semantic_up = [_conv(self, self.filters, 3, "semantic_up_conv"), _batch_norm(self, "semantic_up_bn")]
        self.resize_semantic = ResizeToReference(dtype=policy, name="semantic_upsampling")
        self.resize_aggregate = ResizeToReference(dtype=policy, name="aggregate_upsampling")
        self.match_semantic = ResizeToReference(dtype=policy, name="semantic_alignment")
        self.output_conv = ConvBNReLU(self.filters, 3, dtype=policy, name="output_conv")

    def build(self, detail_shape, semantic_shape):
        self.detail_keep = [
            _depthwise(self, "detail_keep_depthwise"),
            _batch_norm(self, "detail_keep_bn"),
            _conv(self, self.filters, 1, "detail_keep_conv"),
        ]
        self.semantic_keep = [
            _depthwise(self, "semantic_keep_depthwise"),
            _batch_norm(self, "semantic_keep_bn"),
            _conv(self, self.filters, 1, "semantic_keep_conv"),
        ]
        _build(self.detail_keep, detail_shape)
        _build(self.detail_down, detail_shape)
        _build(self.semantic_keep, semantic_shape)
        _build(self.semantic_up, semantic_shape)
        self.output_conv.build(tuple(detail_shape[:-1]) + (self.filters,))

    def call(self, detail, semantic, training=None):
        detail_kept = _run(self.detail_keep, detail, training)
        detail_down = _run(self.detail_down, detail, training)
        semantic_kept = ops.sigmoid(_run(self.semantic_keep, semantic, training))
        semantic_up = ops.sigmoid(self.resize_semantic(_run(self.semantic_up, semantic, training), detail))
        # With "same" padding both paths reach ceil(size / 32); the resize is then the identity
        # and only guards inputs from elsewhere.
        low = detail_down * self.match_semantic(semantic_kept, detail_down)
        aggregate = detail_kept * semantic_up + self.resize_aggregate(low, detail)
        return self.output_conv(aggregate, training=training)

    def compute_output_shape(self, detail_shape, semantic_shape):
        return tuple(detail_shape[:-1]) + (self.filters,)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}
