import keras
from keras import ops

from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float, check_int


@serializable
class AtrousSpatialPyramidPooling(keras.layers.Layer):
    """Atrous Spatial Pyramid Pooling with image-level features (DeepLabV3 / V3+).

    Chen et al., "Rethinking Atrous Convolution for Semantic Image Segmentation", 2017,
    Sec. 3.3: "ASPP consists of (a) one 1x1 convolution and three 3x3 convolutions with
    rates = (6, 12, 18) when output stride = 16 (all with 256 filters and batch
    normalization), and (b) the image-level features", obtained by global average pooling,
    a 1x1 convolution with 256 filters and batch normalisation, and bilinear upsampling.
    The branches are concatenated and fused by a 1x1 convolution with 256 filters and batch
    normalisation. Rates double to (12, 24, 36) at output stride 8.

    DeepLabV3+ (Chen et al., ECCV 2018, Sec. 3.2) makes the 3x3 branches depthwise
    separable (``separable=True``). The reference code applies dropout 0.1 after the fusion
    in training, which ``dropout`` reproduces.

    Args:
        filters: channels of every branch and of the output (256 in the papers).
        atrous_rates: dilation rates of the 3x3 branches; an empty tuple keeps only the 1x1
            and image-pooling branches (the DeepLab MobileNetV2 configuration).
        separable: depthwise-separable 3x3 branches.
        dropout: dropout rate after the fusion convolution.
    """

    def __init__(self, filters=256, atrous_rates=(6, 12, 18), separable=False, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.atrous_rates = tuple(check_int("atrous_rates[i]", r, minimum=1) for r in atrous_rates)
        self.separable = bool(separable)
        self.dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)

        policy = self.dtype_policy
        self.branches = [ConvBNReLU(self.filters, 1, dtype=policy, name="branch_1x1")]
        for rate in self.atrous_rates:
            self.branches.append(
                ConvBNReLU(
                    self.filters, 3, dilation_rate=rate, separable=self.separable, dtype=policy,
                    name=f"branch_rate_{rate}",
                )
            )
        self.image_pooling = ConvBNReLU(self.filters, 1, dtype=policy, name="image_pooling")
        self.projection = ConvBNReLU(self.filters, 1, dtype=policy, name="projection")
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=policy)

    def build(self, input_shape):
        for branch in self.branches:
            branch.build(input_shape)
        self.image_pooling.build((input_shape[0], 1, 1, input_shape[-1]))
        fused_channels = self.filters * (len(self.branches) + 1)
        self.projection.build((*input_shape[:-1], fused_channels))

    def call(self, inputs, training=None):
        outputs = [branch(inputs, training=training) for branch in self.branches]
        pooled = ops.mean(inputs, axis=(1, 2), keepdims=True)
        pooled = self.image_pooling(pooled, training=training)
        # Bilinear upsampling of a 1x1 map is a broadcast over the spatial grid.
        outputs.append(pooled * ops.ones_like(outputs[0][..., :1]))
        fused = self.projection(ops.concatenate(outputs, axis=-1), training=training)
        return self.dropout_layer(fused, training=training)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "atrous_rates": self.atrous_rates,
            "separable": self.separable,
            "dropout": self.dropout,
        }
