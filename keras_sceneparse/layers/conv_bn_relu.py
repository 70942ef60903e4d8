import keras

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float, check_int

#: Momentum of the moving statistics of the library's batch normalisation (PyTorch's 0.1).
#: Moving variances start at 1; with Keras' 0.99 they need ~500 steps to reach the true
#: variances, and until then inference-mode outputs differ from training-mode ones. On CamVid
#: from scratch (46 steps per epoch) that made every validation prediction one class for the
#: first epochs; 0.9 follows within ~50 steps.
BATCH_NORM_MOMENTUM = 0.9


@serializable
class ConvBNReLU(keras.layers.Layer):
    """Convolution, batch normalisation and an activation: the unit most decoders repeat.

    Args:
        filters: output channels.
        kernel_size: square kernel size.
        strides: convolution stride.
        dilation_rate: atrous rate (Chen et al., DeepLab): the kernel samples every
            ``dilation_rate``-th pixel, enlarging the field of view without parameters.
        separable: depthwise-separable convolution (DeepLabV3+'s "atrous separable
            convolution", Chen et al. 2018, Sec. 3.1): a depthwise conv, batch norm and
            activation, then a pointwise conv, batch norm and activation.
        activation: activation after batch norm (``None`` for none).
        use_batch_norm: set ``False`` for the plain conv + activation of pre-BN papers;
            the convolution then has a bias.
        batch_norm_momentum: momentum of the moving statistics (:data:`BATCH_NORM_MOMENTUM`).
        kernel_initializer: initializer of the convolution kernels.
    """

    def __init__(
        self,
        filters,
        kernel_size=3,
        strides=1,
        dilation_rate=1,
        separable=False,
        activation="relu",
        use_batch_norm=True,
        kernel_initializer="he_normal",
        batch_norm_momentum=BATCH_NORM_MOMENTUM,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.kernel_size = check_int("kernel_size", kernel_size, minimum=1)
        self.strides = check_int("strides", strides, minimum=1)
        self.dilation_rate = check_int("dilation_rate", dilation_rate, minimum=1)
        self.separable = bool(separable)
        self.activation = activation
        self.use_batch_norm = bool(use_batch_norm)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.batch_norm_momentum = check_float("batch_norm_momentum", batch_norm_momentum, minimum=0.0, maximum=1.0)

        self.sublayers = []
        if self.separable:
            self.sublayers += [
                keras.layers.DepthwiseConv2D(
                    self.kernel_size,
                    strides=self.strides,
                    dilation_rate=self.dilation_rate,
                    padding="same",
                    use_bias=not self.use_batch_norm,
                    depthwise_initializer=self.kernel_initializer,
                    dtype=self.dtype_policy,
                    name="depthwise",
                )
            ]
            self.sublayers += self._norm_and_activation("depthwise")
            self.sublayers += [self._conv(1, 1, 1, "pointwise")]
        else:
            self.sublayers += [self._conv(self.kernel_size, self.strides, self.dilation_rate, "conv")]
        self.sublayers += self._norm_and_activation("")

    def _conv(self, kernel_size, strides, dilation_rate, name):
        return keras.layers.Conv2D(
            self.filters,
            kernel_size,
            strides=strides,
            dilation_rate=dilation_rate,
            padding="same",
            use_bias=not self.use_batch_norm,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name=name,
        )

    def _norm_and_activation(self, prefix):
        prefix = f"{prefix}_" if prefix else ""
        parts = []
        if self.use_batch_norm:
            parts.append(
                keras.layers.BatchNormalization(
                    momentum=self.batch_norm_momentum, dtype=self.dtype_policy, name=f"{prefix}bn"
                )
            )
        if self.activation is not None:
            parts.append(keras.layers.Activation(self.activation, dtype=self.dtype_policy, name=f"{prefix}act"))
        return parts

    def build(self, input_shape):
        shape = input_shape
        for layer in self.sublayers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)

    def call(self, inputs, training=None):
        x = inputs
        for layer in self.sublayers:
            if isinstance(layer, keras.layers.BatchNormalization):
                x = layer(x, training=training)
            else:
                x = layer(x)
        return x

    def compute_output_shape(self, input_shape):
        shape = input_shape
        for layer in self.sublayers:
            shape = layer.compute_output_shape(shape)
        return shape

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "dilation_rate": self.dilation_rate,
            "separable": self.separable,
            "activation": keras.activations.serialize(keras.activations.get(self.activation))
            if self.activation is not None
            else None,
            "use_batch_norm": self.use_batch_norm,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "batch_norm_momentum": self.batch_norm_momentum,
        }
