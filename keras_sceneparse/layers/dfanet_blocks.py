"""Blocks of DFANet's modified Xception backbone (Li, Xiong, Fan and Sun, CVPR 2019).

Li, Xiong, Fan and Sun, "DFANet: Deep Feature Aggregation for Real-time Semantic
Segmentation", CVPR 2019, https://arxiv.org/abs/1904.02216, Sec. 3.3 and Table 1:
:class:`XceptionABlock` (one row of an ``enc`` stage), :class:`XceptionAStage` (a whole
``enc2``/``enc3``/``enc4`` stage) and :class:`FCAttention` (the "fc attention" module on top
of ``enc4``). The authors released no code; where Table 1 is silent (the position of batch
normalisation and ReLU inside a block, the stride's place in a stage's first block, the
shortcut), the blocks follow the re-implementations that agree with each other
(Tramac/awesome-semantic-segmentation-pytorch, lxtGH/Fast_Seg, huaifeng1993/DFANet).
"""

import keras
from keras import ops

from keras_sceneparse.layers.conv_bn_relu import BATCH_NORM_MOMENTUM, ConvBNReLU
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_int

#: Table 1: a block's first two separable convolutions have a quarter of its output channels.
BOTTLENECK_RATIO = 4


def _batch_norm(layer, name):
    return keras.layers.BatchNormalization(
        momentum=BATCH_NORM_MOMENTUM, dtype=layer.dtype_policy, name=name
    )


def _build(sequence, shape):
    for layer in sequence:
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


def _run(sequence, x, training):
    for layer in sequence:
        x = (
            layer(x, training=training)
            if isinstance(layer, keras.layers.BatchNormalization)
            else layer(x)
        )
    return x


def _downsampled(size, strides):
    return None if size is None else -(-size // strides)


def _channels(layer, input_shape):
    if len(input_shape) != 4 or input_shape[-1] is None:
        raise ValueError(
            f"{type(layer).__name__} expects (batch, height, width, channels) inputs with known channels, "
            f"got shape {tuple(input_shape)}."
        )
    return input_shape[-1]


@serializable
class XceptionABlock(keras.layers.Layer):
    """One block of DFANet's backbone: three depthwise-separable convolutions and a shortcut.

    Li et al. 2019, Table 1: each row ``[3x3, C/4; 3x3, C/4; 3x3, C]`` of ``enc2``-``enc4`` is
    an Xception block (Chollet 2017) of three 3x3 depthwise-separable convolutions with a
    residual connection, the first two narrowed to a quarter of the output channels ``C``:

        ``S_k(x) = BN(pointwise_k(BN(depthwise_k(ReLU(x)))))``
        ``y = S_3(S_2(S_1(x))) + shortcut(x)``

    with ``S_1: C_in -> C/4``, ``S_2: C/4 -> C/4``, ``S_3: C/4 -> C``. ``S_3``'s depthwise
    convolution carries the stride; the shortcut is the identity, or a 1x1 convolution with
    the same stride and batch normalisation when the stride or the channels change.

    Choices (the paper gives only Table 1): pre-activation ReLU as in Xception, and batch
    normalisation after the depthwise and after the pointwise convolution, as in the
    re-implementations (which follow DeepLab's aligned Xception); no biases.

    Args:
        filters: output channels ``C``, a multiple of 4.
        strides: 1, or 2 for the first block of a stage.

    Example:
        >>> XceptionABlock(48, strides=2)(np.zeros((1, 64, 64, 8))).shape
        (1, 32, 32, 48)
    """

    def __init__(self, filters, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=BOTTLENECK_RATIO)
        if self.filters % BOTTLENECK_RATIO:
            raise ValueError(
                f"`filters` must be a multiple of {BOTTLENECK_RATIO} (the first two separable convolutions "
                f"have a quarter of the output channels, Table 1), got {self.filters}."
            )
        self.strides = check_choice("strides", strides, {1, 2})

    def _separable(self, index, filters, strides):
        policy = self.dtype_policy
        return [
            keras.layers.ReLU(dtype=policy, name=f"separable{index}_relu"),
            keras.layers.DepthwiseConv2D(
                3,
                strides=strides,
                padding="same",
                use_bias=False,
                depthwise_initializer="he_normal",
                dtype=policy,
                name=f"separable{index}_depthwise",
            ),
            _batch_norm(self, f"separable{index}_depthwise_bn"),
            keras.layers.Conv2D(
                filters,
                1,
                use_bias=False,
                kernel_initializer="he_normal",
                dtype=policy,
                name=f"separable{index}_pointwise",
            ),
            _batch_norm(self, f"separable{index}_pointwise_bn"),
        ]

    def build(self, input_shape):
        channels = _channels(self, input_shape)
        bottleneck = self.filters // BOTTLENECK_RATIO
        self.residual = [
            *self._separable(1, bottleneck, 1),
            *self._separable(2, bottleneck, 1),
            *self._separable(3, self.filters, self.strides),
        ]
        self.shortcut = []
        if self.strides != 1 or channels != self.filters:
            self.shortcut = [
                keras.layers.Conv2D(
                    self.filters,
                    1,
                    strides=self.strides,
                    use_bias=False,
                    kernel_initializer="he_normal",
                    dtype=self.dtype_policy,
                    name="shortcut_conv",
                ),
                _batch_norm(self, "shortcut_bn"),
            ]
        _build(self.residual, input_shape)
        _build(self.shortcut, input_shape)

    def call(self, inputs, training=None):
        return _run(self.residual, inputs, training) + _run(
            self.shortcut, inputs, training
        )

    def compute_output_shape(self, input_shape):
        height, width = (_downsampled(size, self.strides) for size in input_shape[1:3])
        return (input_shape[0], height, width, self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "strides": self.strides,
        }


@serializable
class XceptionAStage(keras.layers.Layer):
    """An encoder stage of DFANet's backbone (``enc2``, ``enc3`` or ``enc4``, Table 1).

    ``num_blocks`` :class:`XceptionABlock` of ``filters`` output channels; the first one has
    stride 2, so each stage halves the resolution (Table 1's output sizes: ``enc2`` 1/4,
    ``enc3`` 1/8, ``enc4`` 1/16 of the image in the first backbone). With "same" padding a
    stage maps a size ``s`` to ``ceil(s / 2)``.

    Args:
        filters: output channels of every block (backbone A: 48, 96, 192; B: 32, 64, 128).
        num_blocks: blocks in the stage (Table 1: 4, 6, 4).
        strides: stride of the first block (2).

    Example:
        >>> XceptionAStage(48, 4)(np.zeros((1, 64, 64, 8))).shape
        (1, 32, 32, 48)
    """

    def __init__(self, filters, num_blocks, strides=2, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=BOTTLENECK_RATIO)
        self.num_blocks = check_int("num_blocks", num_blocks, minimum=1)
        self.strides = check_choice("strides", strides, {1, 2})
        self.blocks = [
            XceptionABlock(
                self.filters,
                strides=self.strides if index == 0 else 1,
                dtype=self.dtype_policy,
                name=f"block{index + 1}",
            )
            for index in range(self.num_blocks)
        ]

    def build(self, input_shape):
        _channels(self, input_shape)
        _build(self.blocks, input_shape)

    def call(self, inputs, training=None):
        x = inputs
        for block in self.blocks:
            x = block(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        height, width = (_downsampled(size, self.strides) for size in input_shape[1:3])
        return (input_shape[0], height, width, self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "num_blocks": self.num_blocks,
            "strides": self.strides,
        }


@serializable
class FCAttention(keras.layers.Layer):
    """DFANet's fully-connected attention ("fc attention", Li et al. 2019, Sec. 3.3, Table 1).

    The backbone's classification head kept as a channel attention on its last features:
    global average pooling, a fully-connected layer of ``units`` outputs (1000: the ImageNet
    classifier the backbone is pretrained with, which the paper keeps "to obtain semantic
    context" and the class information of 1000 categories), then a 1x1 convolution back to
    the ``C`` input channels (batch normalisation, ReLU) whose ``N x C x 1 x 1`` vector
    re-weights the features channel by channel:

        ``a = ReLU(BN(W_c (W_fc mean_{h,w}(x) + b_fc)))``,  ``y = x * a``

    The fully-connected layer holds ``(C + 1) x units`` parameters (193,000 in backbone A,
    a third of the first backbone); without ImageNet weights it is trained from scratch.

    Choices: as in the re-implementations, the fully-connected layer has a bias (a
    classifier's), the convolution has none, and the attention is batch-normalised and
    rectified (no sigmoid: the paper gives none).

    Args:
        units: outputs of the fully-connected layer (1000, ImageNet's classes).

    Example:
        >>> FCAttention()(np.zeros((1, 8, 8, 192))).shape
        (1, 8, 8, 192)
    """

    def __init__(self, units=1000, **kwargs):
        super().__init__(**kwargs)
        self.units = check_int("units", units, minimum=1)
        self.fc = keras.layers.Dense(self.units, dtype=self.dtype_policy, name="fc")

    def build(self, input_shape):
        channels = _channels(self, input_shape)
        self.attention_conv = ConvBNReLU(
            channels, 1, dtype=self.dtype_policy, name="attention_conv"
        )
        self.fc.build((input_shape[0], channels))
        self.attention_conv.build((input_shape[0], 1, 1, self.units))

    def call(self, inputs, training=None):
        pooled = ops.mean(inputs, axis=(1, 2))
        encoded = ops.expand_dims(ops.expand_dims(self.fc(pooled), 1), 1)
        return inputs * self.attention_conv(encoded, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "units": self.units}
