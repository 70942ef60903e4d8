"""The blocks of the fully convolutional DenseNet (FC-DenseNet, "the One Hundred Layers Tiramisu").

Jégou, Drozdzal, Vazquez, Romero and Bengio, "The One Hundred Layers Tiramisu: Fully
Convolutional DenseNets for Semantic Segmentation", CVPR Workshops 2017,
https://arxiv.org/abs/1611.09326, Table 1, after Huang et al.'s DenseNet (CVPR 2017).

Every convolution is the composite function of Table 1, "Layer": batch normalisation, ReLU,
the convolution, then dropout with p = 0.2. The reference code (Theano/Lasagne,
github.com/SimJeg/FC-DenseNet, ``layers.py``) gives each convolution a bias and He-uniform
initial weights, and its batch normalisation uses epsilon 1e-4 and a moving-average rate of
0.1 (the library's momentum 0.9); these layers do the same.
"""

import keras
from keras import ops

from keras_sceneparse.layers.conv_bn_relu import BATCH_NORM_MOMENTUM
from keras_sceneparse.layers.cropping import CropToReference
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float, check_int

#: Lasagne's BatchNormLayer default, which the reference code keeps.
BATCH_NORM_EPSILON = 1e-4


def _pre_activation_unit(layer, filters, kernel_size, prefix):
    """The BN, convolution and dropout of one Table 1 "Layer" (ReLU is applied in ``call``)."""
    policy = layer.dtype_policy
    return (
        keras.layers.BatchNormalization(
            momentum=layer.batch_norm_momentum, epsilon=BATCH_NORM_EPSILON, dtype=policy, name=f"{prefix}bn"
        ),
        keras.layers.Conv2D(
            filters, kernel_size, padding="same", kernel_initializer=layer.kernel_initializer, dtype=policy,
            name=f"{prefix}conv",
        ),
        keras.layers.Dropout(layer.dropout, dtype=policy, name=f"{prefix}dropout"),
    )


def _build_unit(unit, input_shape):
    shape = input_shape
    for sublayer in unit:
        sublayer.build(shape)
        shape = sublayer.compute_output_shape(shape)
    return shape


def _apply_unit(unit, inputs, training):
    norm, conv, dropout = unit
    x = ops.relu(norm(inputs, training=training))
    return dropout(conv(x), training=training)


@serializable
class DenseBlock(keras.layers.Layer):
    """A dense block: each layer sees the concatenation of the block input and all earlier outputs.

    Jégou et al. 2017, Sec. 3.1 and Fig. 2 (after Huang et al., DenseNet, Eq. 2): the
    ``l``-th layer computes

        x_l = H_l([x_0, x_1, ..., x_{l-1}]),

    where ``[...]`` is channel concatenation, ``x_0`` the block input and ``H_l`` batch
    normalisation, ReLU, a 3x3 convolution with ``growth_rate`` (k) filters and dropout
    (Table 1). With ``include_input=True`` the block returns ``[x_0, x_1, ..., x_n]``
    (``c + n k`` channels, in that order), as in the downsampling path. In the upsampling
    path the paper upsamples only the new feature maps "to avoid the feature explosion"
    (Sec. 3.2, Fig. 1): ``include_input=False`` returns ``[x_1, ..., x_n]`` (``n k``
    channels), which the reference code applies to the bottleneck and to every upsampling
    block but the last.

    Args:
        num_layers: ``n``, the number of layers in the block.
        growth_rate: ``k``, the feature maps each layer adds (12 or 16 in the paper).
        dropout: dropout rate after each convolution (0.2).
        include_input: return the block input concatenated before the new feature maps.
        kernel_initializer: initializer of the convolution kernels (the reference's He uniform).
        batch_norm_momentum: momentum of the moving statistics.
    """

    def __init__(
        self,
        num_layers,
        growth_rate,
        dropout=0.2,
        include_input=True,
        kernel_initializer="he_uniform",
        batch_norm_momentum=BATCH_NORM_MOMENTUM,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_layers = check_int("num_layers", num_layers, minimum=1)
        self.growth_rate = check_int("growth_rate", growth_rate, minimum=1)
        self.dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)
        self.include_input = bool(include_input)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.batch_norm_momentum = check_float("batch_norm_momentum", batch_norm_momentum, minimum=0.0, maximum=1.0)

        self.units = [
            _pre_activation_unit(self, self.growth_rate, 3, f"layer{index}_") for index in range(1, self.num_layers + 1)
        ]

    def build(self, input_shape):
        channels = input_shape[-1]
        for unit in self.units:
            _build_unit(unit, (*input_shape[:-1], channels))
            channels += self.growth_rate

    def call(self, inputs, training=None):
        stack = inputs
        new_maps = []
        for index, unit in enumerate(self.units):
            new_maps.append(_apply_unit(unit, stack, training))
            if index + 1 < self.num_layers:
                stack = ops.concatenate([stack, new_maps[-1]], axis=-1)
        if self.include_input:
            return ops.concatenate([inputs, *new_maps], axis=-1)
        return new_maps[0] if len(new_maps) == 1 else ops.concatenate(new_maps, axis=-1)

    def compute_output_shape(self, input_shape):
        new_channels = self.num_layers * self.growth_rate
        channels = input_shape[-1] + new_channels if self.include_input else new_channels
        return (*input_shape[:-1], channels)

    def get_config(self):
        return {
            **super().get_config(),
            "num_layers": self.num_layers,
            "growth_rate": self.growth_rate,
            "dropout": self.dropout,
            "include_input": self.include_input,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "batch_norm_momentum": self.batch_norm_momentum,
        }


@serializable
class TransitionDown(keras.layers.Layer):
    """FC-DenseNet's transition down: BN, ReLU, 1x1 convolution, dropout, 2x2 max pooling.

    Jégou et al. 2017, Table 1 (middle column): "Batch Normalization, ReLU, 1x1
    Convolution, Dropout p = 0.2, Max Pooling 2x2". The convolution keeps the number of
    feature maps (the reference code's ``TransitionDown(stack, n_filters)``), the pooling has
    stride 2 and drops an odd last row or column (Lasagne's ``ignore_border=True``), so the
    output is ``floor(H / 2) x floor(W / 2)``.

    Args:
        filters: channels of the 1x1 convolution; ``None`` (the paper's) keeps the input's.
        dropout: dropout rate after the convolution (0.2).
        kernel_initializer: initializer of the convolution kernel.
        batch_norm_momentum: momentum of the moving statistics.
    """

    def __init__(
        self,
        filters=None,
        dropout=0.2,
        kernel_initializer="he_uniform",
        batch_norm_momentum=BATCH_NORM_MOMENTUM,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = None if filters is None else check_int("filters", filters, minimum=1)
        self.dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.batch_norm_momentum = check_float("batch_norm_momentum", batch_norm_momentum, minimum=0.0, maximum=1.0)
        self.pooling = keras.layers.MaxPooling2D(2, dtype=self.dtype_policy, name="pool")
        # Created in `build` when the width follows the input's.
        self.unit = None if self.filters is None else _pre_activation_unit(self, self.filters, 1, "")

    def build(self, input_shape):
        if self.unit is None:
            self.unit = _pre_activation_unit(self, input_shape[-1], 1, "")
        shape = _build_unit(self.unit, input_shape)
        self.pooling.build(shape)

    def call(self, inputs, training=None):
        return self.pooling(_apply_unit(self.unit, inputs, training))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (
            batch,
            None if height is None else height // 2,
            None if width is None else width // 2,
            self.filters or channels,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "dropout": self.dropout,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "batch_norm_momentum": self.batch_norm_momentum,
        }


@serializable
class TransitionUp(keras.layers.Layer):
    """FC-DenseNet's transition up: a 3x3 transposed convolution of stride 2, then the skip connection.

    Jégou et al. 2017, Table 1 (right column: "3x3 Transposed Convolution, stride = 2") and
    Sec. 3.2: only the feature maps created by the last dense block are upsampled, and the
    result is concatenated with the skip connection of the same resolution from the
    downsampling path. Called as ``TransitionUp()(new_feature_maps, skip)``; returns
    ``[upsampled, skip]`` concatenated in that order (the reference code's order).

    The transposed convolution is unpadded, so an ``h x w`` input gives ``(2h + 1) x (2w + 1)``
    maps; as in the reference code (Lasagne ``ConcatLayer(cropping=[..., 'center',
    'center'])``) they are centre-cropped to the skip's size, with offset
    ``(2h + 1 - size) // 2``. After a :class:`TransitionDown` the skip is ``2h`` or ``2h + 1``
    high (and likewise wide), so any input size works; a skip larger than ``2h + 1`` is an
    error.

    Args:
        filters: channels of the transposed convolution; ``None`` (the paper's) keeps the
            input's (``n_filters_keep`` in the reference code).
        kernel_initializer: initializer of the kernel.
    """

    def __init__(self, filters=None, kernel_initializer="he_uniform", **kwargs):
        super().__init__(**kwargs)
        self.filters = None if filters is None else check_int("filters", filters, minimum=1)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.crop = CropToReference("center", dtype=self.dtype_policy, name="crop")
        # Created in `build` when the width follows the input's.
        self.upsampling = None if self.filters is None else self._transposed_convolution(self.filters)

    def _transposed_convolution(self, filters):
        return keras.layers.Conv2DTranspose(
            filters, 3, strides=2, padding="valid", kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy, name="transposed_conv",
        )

    def build(self, inputs_shape, skip_shape):
        if self.upsampling is None:
            self.upsampling = self._transposed_convolution(inputs_shape[-1])
        self.upsampling.build(inputs_shape)

    def call(self, inputs, skip):
        upsampled = self.crop(self.upsampling(inputs), skip)
        return ops.concatenate([upsampled, skip], axis=-1)

    def compute_output_shape(self, inputs_shape, skip_shape):
        channels = skip_shape[-1] + (self.filters or inputs_shape[-1])
        return (inputs_shape[0], skip_shape[1], skip_shape[2], channels)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
