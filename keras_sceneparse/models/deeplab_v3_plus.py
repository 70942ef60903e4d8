"""DeepLabV3+ (Chen, Zhu, Papandreou, Schroff and Adam, ECCV 2018)."""

import keras

from keras_sceneparse.backbones import Backbone, list_backbones
from keras_sceneparse.layers import AtrousSpatialPyramidPooling, ConvBNReLU, ResizeToReference
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_int

# Backbones on which the DeepLab reference uses depthwise-separable ASPP and decoder.
SEPARABLE_BY_DEFAULT = {"xception", "mobilenet_v2"}


@serializable
@register_model("deeplabv3plus")
class DeepLabV3Plus(SegmentationModel):
    """DeepLabV3+: DeepLabV3's ASPP encoder with a light decoder that recovers boundaries.

    Chen et al., "Encoder-Decoder with Atrous Separable Convolution for Semantic Image
    Segmentation", ECCV 2018, https://arxiv.org/abs/1802.02611.

    Architecture (Sec. 3.1, Fig. 2): a dilated backbone at output stride 16 (8 optional)
    feeds :class:`~keras_sceneparse.layers.AtrousSpatialPyramidPooling` (rates 6, 12, 18
    doubled at stride 8; 256 channels). Output stride 32 (the undilated backbone, as
    keras-hub's preset builds it) is allowed too, with the rates halved. The decoder upsamples the encoder features 4x
    (bilinear), concatenates the stride-4 backbone features reduced to 48 channels by a 1x1
    convolution (Table 1), refines with two 3x3 convolutions of 256 channels (Table 2), and
    a 1x1 convolution scores the classes, upsampled 4x to the input.

    Choices: keras.applications' Xception is the original one, not the paper's "modified
    aligned Xception" (deeper middle flow, strided separable convolutions), so
    ``backbone="xception"`` here is DeepLabV3+ on the Xception that Keras ships. Separable
    convolutions in ASPP and decoder default to on for Xception and MobileNetV2 (as in the
    paper and the reference code) and off for ResNet (the paper's ResNet-101 experiments).
    Upsampling resizes to the exact size of the skip features and of the input, so sizes
    that are not multiples of 16 work.

    Parameters: the paper gives none. Ours (21 classes, output stride 16, including
    batch-norm statistics; asserted by a test): ResNet-50 40,436,053; ResNet-101
    59,506,517; Xception 24,067,181; MobileNetV2 4,445,317.

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones`.
        weights: ``None`` or ``"imagenet"`` for the backbone.
        output_stride: 16 (default), 8 or 32.
        atrous_rates: ASPP rates at output stride 16 (doubled at 8, halved at 32).
        aspp_filters: ASPP channels (256).
        low_level_filters: channels of the projected stride-4 features (48).
        decoder_filters: channels of the decoder convolutions (256).
        separable: depthwise-separable ASPP and decoder convolutions; ``None`` picks per
            backbone as described above.
        backbone_kwargs: extra ``keras.applications`` arguments (e.g. ``{"alpha": 0.35}``).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.
    """

    feature_layer = "decoder_conv2"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet50",
        weights=None,
        output_stride=16,
        atrous_rates=(6, 12, 18),
        aspp_filters=256,
        low_level_filters=48,
        decoder_filters=256,
        separable=None,
        backbone_kwargs=None,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("backbone", backbone, list_backbones())
        output_stride = check_choice("output_stride", output_stride, {8, 16, 32})
        atrous_rates = tuple(check_int("atrous_rates[i]", rate, minimum=1) for rate in atrous_rates)
        if separable is None:
            separable = backbone in SEPARABLE_BY_DEFAULT

        # === Layers ===
        encoder = Backbone(
            backbone,
            input_shape=input_shape,
            weights=weights,
            output_stride=output_stride,
            feature_layers=None,
            application_kwargs=backbone_kwargs,
            name=f"{backbone}_backbone",
        )
        aspp = AtrousSpatialPyramidPooling(
            aspp_filters,
            atrous_rates=tuple(max(1, rate * 16 // output_stride) for rate in atrous_rates),
            separable=separable,
            name="aspp",
        )

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, encoder.normalization, include_preprocessing)
        features = encoder(x)
        x = aspp(features["C5"])
        low_level = ConvBNReLU(low_level_filters, 1, name="low_level_projection")(features["C2"])
        x = ResizeToReference(name="encoder_upsampling")(x, low_level)
        x = keras.layers.Concatenate(name="decoder_concat")([x, low_level])
        x = ConvBNReLU(decoder_filters, 3, separable=separable, name="decoder_conv1")(x)
        x = ConvBNReLU(decoder_filters, 3, separable=separable, name="decoder_conv2")(x)
        x = keras.layers.Conv2D(num_classes, 1, name="classifier")(x)
        x = ResizeToReference(name="output_upsampling")(x, inputs)
        outputs = self.logits_output(x)
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            num_classes=num_classes,
            image_shape=input_shape,
            include_preprocessing=include_preprocessing,
            **kwargs,
        )

        # === Config ===
        self.backbone_name = backbone
        self.output_stride = output_stride
        self.atrous_rates = atrous_rates
        self.aspp_filters = aspp_filters
        self.low_level_filters = low_level_filters
        self.decoder_filters = decoder_filters
        self.separable = separable
        self.backbone_kwargs = dict(backbone_kwargs or {})

    def get_config(self):
        return {
            **self.base_config(),
            "backbone": self.backbone_name,
            "weights": None,
            "output_stride": self.output_stride,
            "atrous_rates": self.atrous_rates,
            "aspp_filters": self.aspp_filters,
            "low_level_filters": self.low_level_filters,
            "decoder_filters": self.decoder_filters,
            "separable": self.separable,
            "backbone_kwargs": self.backbone_kwargs,
        }
