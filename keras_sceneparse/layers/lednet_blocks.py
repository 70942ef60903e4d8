"""LEDNet's split-shuffle-non-bottleneck unit and attention pyramid network (Wang et al. 2019).

Wang, Zhou, Liu, Xiong, Gao, Wu and Latecki, "LEDNet: A Lightweight Encoder-Decoder Network
for Real-Time Semantic Segmentation", ICIP 2019, https://arxiv.org/abs/1905.02423, Sec. 2 and
Fig. 1. LEDNet's third block, the downsampling unit (a 3x3 stride-2 convolution concatenated
with a 2x2 max pooling, then batch normalisation and ReLU), is ENet's initial block:
:class:`~keras_sceneparse.layers.ENetInitialBlock` with ``activation="relu"``. Where the
paper is silent, the blocks follow the authors' PyTorch code (xiaoyufenfei/LEDNet,
``train/lednet.py``).
"""

import keras
from keras import ops

from keras_sceneparse.layers.channel_shuffle import channel_shuffle
from keras_sceneparse.layers.conv_bn_relu import BATCH_NORM_MOMENTUM, ConvBNReLU
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float, check_int

#: Batch-normalisation epsilon of the reference code (``BatchNorm2d(n, eps=1e-3)``).
BATCH_NORM_EPSILON = 1e-3
#: Kernel sizes of the APN's pyramid, finest level first (Sec. 2.3: 7x7, 5x5, 3x3).
PYRAMID_KERNEL_SIZES = (7, 5, 3)


def _run(sequence, x, training):
    for layer in sequence:
        if isinstance(layer, (keras.layers.BatchNormalization, ConvBNReLU)):
            x = layer(x, training=training)
        else:
            x = layer(x)
    return x


def _build(sequence, shape):
    for layer in sequence:
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


@serializable
class SplitShuffleNonBottleneck(keras.layers.Layer):
    """LEDNet's split-shuffle-non-bottleneck (SS-nbt) unit: a residual unit of two
    half-width branches of factorised convolutions, followed by a channel shuffle.

    Wang et al. 2019, Sec. 2.1 and Fig. 1(d). The ``C`` input channels are split into two
    halves; each half goes through its own branch of 1D convolutions (no 1x1 convolution,
    Sec. 2.1: point-wise convolutions dominate the cost of ShuffleNet-like units), the two
    outputs are concatenated back to ``C`` channels, added to the input, and the two halves
    are interleaved by a channel shuffle (ShuffleNet, :class:`ChannelShuffle`) so that the
    next unit's branches see both::

        [x_1, x_2] = split(x)
        y = shuffle_2(ReLU(x + Dropout([F_left(x_1), F_right(x_2)])))

    Each branch is a 3x1/1x3 pair, then the same pair dilated by ``dilation_rate`` (rates
    1, 2, 5, 9, 2, 5, 9, 17 in the last stage, Table 1); as in the reference code, the left
    branch starts with the 3x1 convolution and the right branch with the 1x3 one (Fig.
    1(d)), ReLU follows every convolution except the last, batch normalisation follows each
    pair, and every convolution has a bias::

        F_left(x) = BN(W_1x3,d ReLU(W_3x1,d ReLU(BN(W_1x3 ReLU(W_3x1 x)))))

    ``F_right`` swaps the order of each pair. ``Dropout`` drops whole channels (spatial
    dropout, PyTorch's ``Dropout2d`` in the reference: 0.03 in the first two stages, 0.3 in
    the last).

    Args:
        dilation_rate: dilation of the second pair of each branch (Table 1).
        dropout: spatial-dropout rate of the branches.
        kernel_initializer: initializer of the convolution kernels.
        batch_norm_momentum: momentum of the moving statistics.
        zero_init_residual: start the scale of each branch's last batch normalisation at
            zero (Goyal et al. 2017, "Accurate, Large Minibatch SGD", Sec. 5.1), so that an
            untrained unit is ``shuffle(ReLU(x))``. Otherwise, in inference mode with fresh
            moving statistics, each of LEDNet's 13 residual additions adds the variance of
            an unnormalised branch, and an untrained LEDNet's logits reach the thousands
            (the APN then multiplies two such maps); training-mode outputs are normalised
            either way. ``False`` starts at one (the paper gives no initialisation).

    The input channels must be even (two halves), and stay the same at the output.

    Example:
        >>> SplitShuffleNonBottleneck(dilation_rate=5)(np.zeros((1, 64, 128, 128))).shape
        TensorShape([1, 64, 128, 128])
    """

    def __init__(
        self,
        dilation_rate=1,
        dropout=0.0,
        kernel_initializer="he_normal",
        batch_norm_momentum=BATCH_NORM_MOMENTUM,
        zero_init_residual=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.dilation_rate = check_int("dilation_rate", dilation_rate, minimum=1)
        self.dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.batch_norm_momentum = check_float(
            "batch_norm_momentum", batch_norm_momentum, minimum=0.0, maximum=1.0
        )
        self.zero_init_residual = bool(zero_init_residual)
        # The branches' widths depend on the input channels: created in build().
        self.left = self.right = None
        self.regularizer = keras.layers.SpatialDropout2D(
            self.dropout, dtype=self.dtype_policy, name="spatial_dropout"
        )

    def _branch(self, side, filters, vertical_first):
        rate = self.dilation_rate
        layers = []
        for pair, dilation in ((1, 1), (2, rate)):
            kernels = [((3, 1), (dilation, 1)), ((1, 3), (1, dilation))]
            if not vertical_first:
                kernels.reverse()
            for position, (kernel_size, dilation_rate) in enumerate(kernels):
                layers.append(
                    keras.layers.Conv2D(
                        filters,
                        kernel_size,
                        padding="same",
                        dilation_rate=dilation_rate,
                        kernel_initializer=self.kernel_initializer,
                        dtype=self.dtype_policy,
                        name=f"{side}_conv{kernel_size[0]}x{kernel_size[1]}_{pair}",
                    )
                )
                if position == 0:
                    layers.append(
                        keras.layers.ReLU(
                            dtype=self.dtype_policy, name=f"{side}_relu{pair}a"
                        )
                    )
            last = pair == 2
            layers.append(
                keras.layers.BatchNormalization(
                    momentum=self.batch_norm_momentum,
                    epsilon=BATCH_NORM_EPSILON,
                    gamma_initializer="zeros"
                    if last and self.zero_init_residual
                    else "ones",
                    dtype=self.dtype_policy,
                    name=f"{side}_bn{pair}",
                )
            )
            if not last:
                layers.append(
                    keras.layers.ReLU(
                        dtype=self.dtype_policy, name=f"{side}_relu{pair}b"
                    )
                )
        return layers

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % 2:
            raise ValueError(
                "SplitShuffleNonBottleneck splits its input into two halves, so it needs a known, "
                f"even number of input channels; got input shape {tuple(input_shape)}."
            )
        half = channels // 2
        self.left = self._branch("left", half, vertical_first=True)
        self.right = self._branch("right", half, vertical_first=False)
        half_shape = (*input_shape[:-1], half)
        _build(self.left, half_shape)
        _build(self.right, half_shape)
        self.regularizer.build(input_shape)

    def call(self, inputs, training=None):
        half = inputs.shape[-1] // 2
        left = _run(self.left, inputs[..., :half], training)
        right = _run(self.right, inputs[..., half:], training)
        branches = self.regularizer(
            ops.concatenate([left, right], axis=-1), training=training
        )
        return channel_shuffle(ops.relu(inputs + branches), 2)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "dilation_rate": self.dilation_rate,
            "dropout": self.dropout,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "batch_norm_momentum": self.batch_norm_momentum,
            "zero_init_residual": self.zero_init_residual,
        }


@serializable
class AttentionPyramidNetwork(keras.layers.Layer):
    """LEDNet's decoder, the attention pyramid network (APN): a one-channel spatial
    attention map from a three-level pyramid, multiplying a 1x1 projection of the features,
    plus a global-context term.

    Wang et al. 2019, Sec. 2.3 and Fig. 1 (decoder). For features ``x`` of size ``h x w``:

    - pyramid (the attention): ``a_1 = CBR_7x7/2(x)`` at ``h/2``, ``a_2 = CBR_5x5/2(a_1)``
      at ``h/4``, ``a_3 = CBR_3x3(CBR_3x3/2(a_2))`` at ``h/8``; large kernels cost little at
      these resolutions (Sec. 2.3). The levels are fused coarse to fine:
      ``p_2 = CBR_5x5(a_2) + up(a_3)``, ``p_1 = CBR_7x7(a_1) + up(p_2)``, ``a = up(p_1)``;
    - middle branch: ``m = CBR_1x1(x)`` to ``filters`` channels;
    - global branch: ``g = CBR_1x1(mean_{h,w}(x))``, broadcast over the map (the bilinear
      upsampling of a 1x1 map);

    ``y = a * m + g``, with ``CBR`` a convolution, batch normalisation and ReLU
    (:class:`ConvBNReLU`) and ``up`` a bilinear resize to the next finer level.

    In LEDNet the APN's output is already the class scores (``filters`` = the number of
    classes): the model only upsamples it 8 times to the image.

    Choices (the paper is silent or ambiguous): Fig. 1 draws the pyramid with as many
    channels as the features, which gives LEDNet 2.5M parameters instead of the 0.94M of
    Table 3; the authors' ``train/lednet.py`` takes the pyramid to **one** channel at its
    first convolution (``train/lednet_1.py``, 128 channels, is the 2.5M variant; the
    authors' issue #7 discusses it). We follow ``lednet.py``: the pyramid is a spatial
    attention map shared by all classes. Each level is resized to the exact size of the
    next finer one (the reference resizes to ``h // 4`` and ``h // 2``, which only matches
    for sizes divisible by 4), so any feature size works. Bilinear resizing aligns corners,
    as in the reference. The convolutions have no bias before batch normalisation (the
    reference's 2 * filters + 6 biases are redundant with the batch-norm offsets).

    Args:
        filters: output channels, the number of classes in LEDNet.
        align_corners: corner-aligned bilinear upsampling in the pyramid (reference: True).
        kernel_initializer: initializer of the convolution kernels.
        batch_norm_momentum: momentum of the moving statistics.

    Example:
        >>> AttentionPyramidNetwork(19)(np.zeros((1, 64, 128, 128))).shape
        TensorShape([1, 64, 128, 19])
    """

    def __init__(
        self,
        filters,
        align_corners=True,
        kernel_initializer="he_normal",
        batch_norm_momentum=BATCH_NORM_MOMENTUM,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.align_corners = bool(align_corners)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.batch_norm_momentum = check_float(
            "batch_norm_momentum", batch_norm_momentum, minimum=0.0, maximum=1.0
        )

        def cbr(filters, kernel_size, name, strides=1):
            return ConvBNReLU(
                filters,
                kernel_size,
                strides=strides,
                kernel_initializer=self.kernel_initializer,
                batch_norm_momentum=self.batch_norm_momentum,
                dtype=self.dtype_policy,
                name=name,
            )

        large, medium, small = PYRAMID_KERNEL_SIZES
        # === Branches ===
        self.global_conv = cbr(self.filters, 1, "global_conv")
        self.middle_conv = cbr(self.filters, 1, "middle_conv")
        # === Pyramid: one attention channel from the first convolution on ===
        self.down1 = cbr(1, large, "down1", strides=2)
        self.down2 = cbr(1, medium, "down2", strides=2)
        self.down3 = cbr(1, small, "down3", strides=2)
        self.level3_conv = cbr(1, small, "level3_conv")
        self.level2_conv = cbr(1, medium, "level2_conv")
        self.level1_conv = cbr(1, large, "level1_conv")
        self.resize = ResizeToReference(
            align_corners=self.align_corners, dtype=self.dtype_policy, name="resize"
        )

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                "AttentionPyramidNetwork needs a known number of input channels; got input shape "
                f"{tuple(input_shape)}."
            )
        self.global_conv.build((input_shape[0], 1, 1, channels))
        self.middle_conv.build(input_shape)
        level1 = _build([self.down1], input_shape)
        level2 = _build([self.down2], level1)
        level3 = _build([self.down3], level2)
        self.level3_conv.build(level3)
        self.level2_conv.build(level2)
        self.level1_conv.build(level1)

    def call(self, inputs, training=None):
        context = self.global_conv(
            ops.mean(inputs, axis=(1, 2), keepdims=True), training=training
        )
        middle = self.middle_conv(inputs, training=training)
        level1 = self.down1(inputs, training=training)
        level2 = self.down2(level1, training=training)
        level3 = self.level3_conv(
            self.down3(level2, training=training), training=training
        )
        pyramid = self.level2_conv(level2, training=training) + self.resize(
            level3, level2
        )
        pyramid = self.level1_conv(level1, training=training) + self.resize(
            pyramid, level1
        )
        attention = self.resize(pyramid, inputs)
        return attention * middle + context

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "align_corners": self.align_corners,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "batch_norm_momentum": self.batch_norm_momentum,
        }
