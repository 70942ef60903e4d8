"""ENet's initial block and bottleneck modules (Paszke et al. 2016, Fig. 2).

Paszke, Chaurasia, Kim and Culurciello, "ENet: A Deep Neural Network Architecture for
Real-Time Semantic Segmentation", arXiv 2016, https://arxiv.org/abs/1606.02147. Where the
paper is silent, the blocks follow the authors' Torch code (e-lab/ENet-training,
``train/models/encoder.lua`` and ``decoder.lua``).
"""

import keras
from keras import ops

from keras_sceneparse.layers.conv_bn_relu import BATCH_NORM_MOMENTUM
from keras_sceneparse.layers.max_pooling_with_argmax import MaxPoolingWithArgmax2D
from keras_sceneparse.layers.max_unpooling import MaxUnpooling2D
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int

#: The values of Table 1's "type" column (a blank type is a regular bottleneck).
BLOCK_TYPES = ("regular", "dilated", "asymmetric", "downsampling", "upsampling")
ACTIVATIONS = ("prelu", "relu")
#: Batch-normalisation epsilon of the reference code (``SpatialBatchNormalization(n, 1e-3)``).
BATCH_NORM_EPSILON = 1e-3
#: Initial PReLU slope: He et al. (2015), and Torch's ``nn.PReLU`` default used by the reference.
PRELU_INITIAL_SLOPE = 0.25


def _activation(kind, dtype, name):
    if kind == "prelu":
        # One slope per channel (Torch's ``nn.PReLU(n)``), not Keras' default of one per unit.
        return keras.layers.PReLU(
            alpha_initializer=keras.initializers.Constant(PRELU_INITIAL_SLOPE),
            shared_axes=[1, 2],
            dtype=dtype,
            name=name,
        )
    return keras.layers.Activation("relu", dtype=dtype, name=name)


def _batch_norm(momentum, dtype, name):
    return keras.layers.BatchNormalization(momentum=momentum, epsilon=BATCH_NORM_EPSILON, dtype=dtype, name=name)


@serializable
class ENetInitialBlock(keras.layers.Layer):
    """ENet's initial block: a strided 3x3 convolution beside a 2x2 max pooling of the image.

    Paszke et al. 2016, Sec. 3 and Fig. 2a: a 3x3 convolution of stride 2 with 13 filters
    and a non-overlapping 2x2 max pooling of the input run in parallel and are concatenated,
    16 feature maps for an RGB image; batch normalisation and PReLU follow (as in the
    reference code, on the concatenation). Halving the resolution at once is the paper's
    "early downsampling" (Sec. 4): the first layers only extract features, cheaply.

    ``y = PReLU(BN([conv_3x3/2(x), maxpool_2x2(x)]))``, convolution channels first.

    The convolution gets ``filters - input_channels`` filters, so the output has ``filters``
    channels (16 with 13 convolution filters for RGB, as in the paper). Odd sizes round up
    (``padding="same"`` for both branches), so the two branches always have the same size.

    Args:
        filters: output channels, more than the input channels (16).
        activation: ``"prelu"`` (paper) or ``"relu"``.
        kernel_initializer: initializer of the convolution kernel.
        batch_norm_momentum: momentum of the moving statistics.

    Example:
        >>> ENetInitialBlock()(np.zeros((1, 360, 480, 3))).shape
        TensorShape([1, 180, 240, 16])
    """

    def __init__(
        self,
        filters=16,
        activation="prelu",
        kernel_initializer="he_normal",
        batch_norm_momentum=BATCH_NORM_MOMENTUM,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=2)
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.batch_norm_momentum = check_float("batch_norm_momentum", batch_norm_momentum, minimum=0.0, maximum=1.0)

        policy = self.dtype_policy
        # The convolution's filter count depends on the input channels: created in build().
        self.conv = None
        self.pool = keras.layers.MaxPooling2D(2, padding="same", dtype=policy, name="pool")
        self.concat = keras.layers.Concatenate(dtype=policy, name="concat")
        self.bn = _batch_norm(self.batch_norm_momentum, policy, "bn")
        self.act = _activation(self.activation, policy, "act")

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels >= self.filters:
            raise ValueError(
                f"ENetInitialBlock(filters={self.filters}) needs a known number of input channels smaller than "
                f"`filters` (the convolution adds `filters - channels` maps to the pooled input); got input "
                f"shape {tuple(input_shape)}."
            )
        self.conv = keras.layers.Conv2D(
            self.filters - channels,
            3,
            strides=2,
            padding="same",
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="conv",
        )
        self.conv.build(input_shape)
        output_shape = self.compute_output_shape(input_shape)
        self.bn.build(output_shape)
        self.act.build(output_shape)

    def call(self, inputs, training=None):
        x = self.concat([self.conv(inputs), self.pool(inputs)])
        return self.act(self.bn(x, training=training))

    def compute_output_shape(self, input_shape):
        sizes = [None if s is None else -(-s // 2) for s in input_shape[1:3]]
        return (input_shape[0], *sizes, self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "activation": self.activation,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "batch_norm_momentum": self.batch_norm_momentum,
        }


@serializable
class ENetBottleneck(keras.layers.Layer):
    """ENet's bottleneck module: a main branch plus a projected convolutional extension.

    Paszke et al. 2016, Sec. 3, Fig. 2b and Table 1. The extension is a 1x1 projection
    reducing the channels ``projection_ratio`` times (4), the main convolution, a 1x1
    expansion back to ``filters`` channels, and spatial dropout; each convolution is
    followed by batch normalisation, with PReLU between the convolutions. The extension is
    added to the main branch and a PReLU follows the addition::

        y = PReLU(main(x) + Dropout(BN(W_expand BN-PReLU(conv(BN-PReLU(W_project x))))))

    ``block_type`` selects the row type of Table 1:

    - ``"regular"``: 3x3 convolution; main branch the identity (zero-padded channels if
      ``filters`` exceeds the input channels, as in the reference code).
    - ``"dilated"``: 3x3 convolution with ``dilation_rate`` (Sec. 4, "Dilated convolutions").
    - ``"asymmetric"``: the 5x5 convolution factorised into a 1x5 and a 5x1 one (Sec. 4,
      "Factorizing filters"), with no normalisation between them; order (width first) and
      biases (second only) follow the reference code.
    - ``"downsampling"``: the projection becomes a 2x2 convolution of stride 2 (Sec. 3:
      "the first 1x1 projection is replaced with a 2x2 convolution with stride 2"); the
      main branch is a 2x2 max pooling that records its argmax, and its channels are
      zero-padded to ``filters``. Returns ``(outputs, indices)``; the indices feed the
      matching upsampling bottleneck.
    - ``"upsampling"``: called as ``block(inputs, indices, reference)``; the main branch is
      a 1x1 convolution without bias and batch normalisation (Sec. 3: in the decoder
      "padding is replaced with spatial convolution without bias") followed by max
      unpooling with ``indices`` (SegNet's upsampling); the extension's main convolution is
      a 3x3 transposed convolution of stride 2. ``reference`` (the input of the matching
      downsampling bottleneck) gives the output size, so odd sizes crop back exactly.

    The projections and the expansion have no bias (Sec. 3: "We did not use bias terms in
    any of the projections"); the main 3x3 convolutions have one, as in the reference code.

    Args:
        filters: output channels.
        block_type: one of :data:`BLOCK_TYPES`.
        dilation_rate: rate of a ``"dilated"`` bottleneck (2, 4, 8, 16 in Table 1).
        asymmetric_size: kernel length of an ``"asymmetric"`` bottleneck (5).
        projection_ratio: channel reduction of the projection (4, Sec. 3).
        dropout: spatial-dropout rate of the extension (Sec. 4, "Regularization": 0.01
            before bottleneck 2.0, 0.1 afterwards).
        activation: ``"prelu"`` (paper) or ``"relu"``.
        kernel_initializer: initializer of the convolution kernels.
        batch_norm_momentum: momentum of the moving statistics.
        zero_init_extension: start the scale of the extension's last batch
            normalisation at zero (Goyal et al. 2017, "Accurate, Large Minibatch SGD",
            Sec. 5.1), so that an untrained block is its main branch. Otherwise, in
            inference mode with fresh moving statistics, each of ENet's 27 residual
            additions roughly doubles the variance, and an untrained ENet's logits are
            thousands; training-mode outputs are normalised either way. ``False`` starts
            at one (the paper gives no initialisation).

    Example:
        >>> down = ENetBottleneck(64, "downsampling", dropout=0.01)
        >>> up = ENetBottleneck(16, "upsampling")
        >>> x = np.zeros((1, 32, 32, 16), "float32")
        >>> y, indices = down(x)
        >>> up(ENetBottleneck(64)(y), indices, x).shape
        TensorShape([1, 32, 32, 16])
    """

    def __init__(
        self,
        filters,
        block_type="regular",
        dilation_rate=1,
        asymmetric_size=5,
        projection_ratio=4,
        dropout=0.1,
        activation="prelu",
        kernel_initializer="he_normal",
        batch_norm_momentum=BATCH_NORM_MOMENTUM,
        zero_init_extension=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.block_type = check_choice("block_type", block_type, BLOCK_TYPES)
        self.dilation_rate = check_int("dilation_rate", dilation_rate, minimum=1)
        if self.dilation_rate != 1 and self.block_type != "dilated":
            raise ValueError(
                f"`dilation_rate` applies to block_type='dilated' only; got dilation_rate={self.dilation_rate} "
                f"with block_type={self.block_type!r}."
            )
        self.asymmetric_size = check_int("asymmetric_size", asymmetric_size, minimum=1)
        self.projection_ratio = check_int("projection_ratio", projection_ratio, minimum=1)
        if self.filters < self.projection_ratio:
            raise ValueError(
                f"`filters` ({self.filters}) must be at least `projection_ratio` ({self.projection_ratio}): the "
                "projection keeps filters // projection_ratio channels."
            )
        self.dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.batch_norm_momentum = check_float("batch_norm_momentum", batch_norm_momentum, minimum=0.0, maximum=1.0)
        self.zero_init_extension = bool(zero_init_extension)
        self.internal_filters = self.filters // self.projection_ratio

        # === Extension (the convolutional branch) ===
        policy = self.dtype_policy
        internal = self.internal_filters
        downsampling = self.block_type == "downsampling"
        self.projection = self._conv(
            internal, 2 if downsampling else 1, strides=2 if downsampling else 1, use_bias=False, name="projection"
        )
        self.projection_bn = self._batch_norm("projection_bn")
        self.projection_act = _activation(self.activation, policy, "projection_act")
        if self.block_type == "asymmetric":
            self.convs = [
                self._conv(internal, (1, self.asymmetric_size), use_bias=False, name=f"conv_1x{self.asymmetric_size}"),
                self._conv(internal, (self.asymmetric_size, 1), name=f"conv_{self.asymmetric_size}x1"),
            ]
        elif self.block_type == "upsampling":
            self.convs = [
                keras.layers.Conv2DTranspose(
                    internal, 3, strides=2, padding="same", kernel_initializer=self.kernel_initializer,
                    dtype=policy, name="conv_transpose",
                )
            ]
        else:
            self.convs = [self._conv(internal, 3, dilation_rate=self.dilation_rate, name="conv")]
        self.conv_bn = self._batch_norm("conv_bn")
        self.conv_act = _activation(self.activation, policy, "conv_act")
        self.expansion = self._conv(self.filters, 1, use_bias=False, name="expansion")
        self.expansion_bn = keras.layers.BatchNormalization(
            momentum=self.batch_norm_momentum,
            epsilon=BATCH_NORM_EPSILON,
            gamma_initializer="zeros" if self.zero_init_extension else "ones",
            dtype=policy,
            name="expansion_bn",
        )
        self.regularizer = keras.layers.SpatialDropout2D(self.dropout, dtype=policy, name="spatial_dropout")

        # === Main branch ===
        self.pooling = MaxPoolingWithArgmax2D(2, dtype=policy, name="pooling") if downsampling else None
        if self.block_type == "upsampling":
            self.main_conv = self._conv(self.filters, 1, use_bias=False, name="main_conv")
            self.main_bn = self._batch_norm("main_bn")
            self.unpooling = MaxUnpooling2D(2, dtype=policy, name="unpooling")
        else:
            self.main_conv = self.main_bn = self.unpooling = None
        self.output_act = _activation(self.activation, policy, "output_act")

    def _conv(self, filters, kernel_size, strides=1, dilation_rate=1, use_bias=True, name=None):
        return keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            dilation_rate=dilation_rate,
            padding="same",
            use_bias=use_bias,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name=name,
        )

    def _batch_norm(self, name):
        return _batch_norm(self.batch_norm_momentum, self.dtype_policy, name)

    def build(self, inputs_shape, indices_shape=None, reference_shape=None):
        channels = inputs_shape[-1]
        if channels is None:
            raise ValueError(f"ENetBottleneck needs a known number of input channels; got {tuple(inputs_shape)}.")
        if self.block_type == "upsampling":
            if indices_shape is None:
                raise ValueError(
                    "An upsampling ENetBottleneck is called as `block(inputs, indices, reference)` with the pooling "
                    "indices of the matching downsampling bottleneck."
                )
        elif channels > self.filters:
            raise ValueError(
                f"ENetBottleneck(filters={self.filters}, block_type={self.block_type!r}) zero-pads its main branch "
                f"and cannot reduce {channels} input channels to {self.filters}."
            )
        shape = inputs_shape
        for layer in (self.projection, self.projection_bn, self.projection_act, *self.convs):
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        for layer in (self.conv_bn, self.conv_act, self.expansion):
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        for layer in (self.expansion_bn, self.regularizer, self.output_act):
            layer.build(shape)
        if self.main_conv is not None:
            self.main_conv.build(inputs_shape)
            self.main_bn.build(self.main_conv.compute_output_shape(inputs_shape))

    def call(self, inputs, indices=None, reference=None, training=None):
        x = self.projection_act(self.projection_bn(self.projection(inputs), training=training))
        for conv in self.convs:
            x = conv(x)
        x = self.conv_act(self.conv_bn(x, training=training))
        x = self.expansion_bn(self.expansion(x), training=training)
        extension = self.regularizer(x, training=training)

        pooling_indices = None
        if self.block_type == "upsampling":
            main = self.main_bn(self.main_conv(inputs), training=training)
            main = self.unpooling(main, indices, reference)
            if reference is not None:
                # The transposed convolution doubles the size; odd references are one smaller.
                target = ops.shape(reference)
                extension = extension[:, : target[1], : target[2], :]
        else:
            main = inputs
            if self.pooling is not None:
                main, pooling_indices = self.pooling(main)
            missing = self.filters - inputs.shape[-1]
            if missing:
                # Sec. 3: "we zero pad the activations, to match the number of feature maps".
                main = ops.pad(main, [[0, 0], [0, 0], [0, 0], [0, missing]])
        outputs = self.output_act(main + extension)
        if pooling_indices is not None:
            return outputs, pooling_indices
        return outputs

    def compute_output_shape(self, inputs_shape, indices_shape=None, reference_shape=None):
        if self.block_type == "upsampling":
            if reference_shape is not None:
                sizes = reference_shape[1:3]
            else:
                sizes = [None if s is None else 2 * s for s in inputs_shape[1:3]]
        elif self.block_type == "downsampling":
            sizes = [None if s is None else -(-s // 2) for s in inputs_shape[1:3]]
        else:
            sizes = inputs_shape[1:3]
        shape = (inputs_shape[0], *sizes, self.filters)
        if self.block_type == "downsampling":
            return shape, (*shape[:3], inputs_shape[-1])
        return shape

    def compute_output_spec(self, inputs, indices=None, reference=None, training=None):
        shapes = self.compute_output_shape(
            inputs.shape,
            None if indices is None else indices.shape,
            None if reference is None else reference.shape,
        )
        dtype = self.compute_dtype
        if self.block_type == "downsampling":
            return keras.KerasTensor(shapes[0], dtype=dtype), keras.KerasTensor(shapes[1], dtype="int32")
        return keras.KerasTensor(shapes, dtype=dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "block_type": self.block_type,
            "dilation_rate": self.dilation_rate,
            "asymmetric_size": self.asymmetric_size,
            "projection_ratio": self.projection_ratio,
            "dropout": self.dropout,
            "activation": self.activation,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "batch_norm_momentum": self.batch_norm_momentum,
            "zero_init_extension": self.zero_init_extension,
        }
