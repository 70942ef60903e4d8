import keras

from keras_sceneparse.layers.conv_bn_relu import BATCH_NORM_MOMENTUM, ConvBNReLU
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float, check_int


@serializable
class LinkNetDecoderBlock(keras.layers.Layer):
    """LinkNet's decoder block: a 1x1 reduction, a transposed 3x3 convolution, a 1x1 expansion.

    Chaurasia and Culurciello, "LinkNet: Exploiting Encoder Representations for Efficient
    Semantic Segmentation", VCIP 2017, https://arxiv.org/abs/1707.03718, Fig. 3. For an
    input of ``m`` channels and an output of ``n``:

    - ``conv [(1x1), (m, m/4)]``, batch normalisation, ReLU;
    - ``full-conv [(3x3), (m/4, m/4), *2]`` (a transposed convolution of stride 2),
      batch normalisation, ReLU;
    - ``conv [(1x1), (m/4, n)]``, batch normalisation, ReLU.

    Working at ``m/4`` channels keeps the upsampling cheap: the paper's point that the
    decoder adds little to the encoder's cost (Sec. 3). The model adds the output to the
    encoder features of the same resolution (Fig. 1). The authors' code uses ``strides=1``
    in the decoder block next to the initial block (see
    :class:`~keras_sceneparse.models.linknet.LinkNet`). The transposed convolution uses
    ``"same"`` padding: its output is exactly ``strides`` times its input.

    Args:
        filters: output channels ``n``.
        bottleneck_filters: channels of the inner 1x1 and transposed convolutions (``m/4``
            in the paper, which the model passes).
        strides: upsampling factor of the transposed convolution (2, or 1 to keep the size).
        kernel_size: kernel of the transposed convolution (3).
        batch_norm_momentum: momentum of the moving statistics.

    Example:
        >>> block = LinkNetDecoderBlock(filters=256, bottleneck_filters=128)
        >>> block(np.zeros((1, 8, 8, 512))).shape
        TensorShape([1, 16, 16, 256])
    """

    def __init__(
        self,
        filters,
        bottleneck_filters,
        strides=2,
        kernel_size=3,
        batch_norm_momentum=BATCH_NORM_MOMENTUM,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.bottleneck_filters = check_int("bottleneck_filters", bottleneck_filters, minimum=1)
        self.strides = check_int("strides", strides, minimum=1)
        self.kernel_size = check_int("kernel_size", kernel_size, minimum=1)
        self.batch_norm_momentum = check_float("batch_norm_momentum", batch_norm_momentum, minimum=0.0, maximum=1.0)

        policy = self.dtype_policy
        self.reduction = ConvBNReLU(
            self.bottleneck_filters, 1, batch_norm_momentum=self.batch_norm_momentum, dtype=policy, name="reduction"
        )
        # Bias-free: batch normalisation follows and would cancel it.
        self.full_conv = keras.layers.Conv2DTranspose(
            self.bottleneck_filters,
            self.kernel_size,
            strides=self.strides,
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
            dtype=policy,
            name="full_conv",
        )
        self.full_conv_bn = keras.layers.BatchNormalization(
            momentum=self.batch_norm_momentum, dtype=policy, name="full_conv_bn"
        )
        self.full_conv_relu = keras.layers.Activation("relu", dtype=policy, name="full_conv_relu")
        self.expansion = ConvBNReLU(
            self.filters, 1, batch_norm_momentum=self.batch_norm_momentum, dtype=policy, name="expansion"
        )

    def build(self, input_shape):
        self.reduction.build(input_shape)
        shape = self.reduction.compute_output_shape(input_shape)
        self.full_conv.build(shape)
        shape = self.full_conv.compute_output_shape(shape)
        self.full_conv_bn.build(shape)
        self.expansion.build(shape)

    def call(self, inputs, training=None):
        x = self.reduction(inputs, training=training)
        x = self.full_conv(x)
        x = self.full_conv_bn(x, training=training)
        x = self.full_conv_relu(x)
        return self.expansion(x, training=training)

    def compute_output_shape(self, input_shape):
        shape = self.reduction.compute_output_shape(input_shape)
        shape = self.full_conv.compute_output_shape(shape)
        return self.expansion.compute_output_shape(shape)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "bottleneck_filters": self.bottleneck_filters,
            "strides": self.strides,
            "kernel_size": self.kernel_size,
            "batch_norm_momentum": self.batch_norm_momentum,
        }
