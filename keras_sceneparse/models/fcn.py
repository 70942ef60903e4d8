"""Fully Convolutional Networks (Long, Shelhamer and Darrell, CVPR 2015)."""

import keras

from keras_sceneparse.backbones import Backbone
from keras_sceneparse.layers import BilinearUpsamplingInitializer, CropToReference, PadToMultiple
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int

# Pooling layers whose scores each variant fuses, coarse to fine, and its final upsampling.
SKIPS = {"32s": (), "16s": ("pool4",), "8s": ("pool4", "pool3")}
FINAL_UPSAMPLING = {"32s": 32, "16s": 16, "8s": 8}
POOL_LAYERS = {"pool3": "block3_pool", "pool4": "block4_pool", "pool5": "block5_pool"}


@serializable
@register_model("fcn32s", variant="32s")
@register_model("fcn16s", variant="16s")
@register_model("fcn8s", variant="8s")
class FCN(SegmentationModel):
    """FCN-32s, FCN-16s and FCN-8s on VGG16.

    Long, Shelhamer and Darrell, "Fully Convolutional Networks for Semantic Segmentation",
    CVPR 2015, https://arxiv.org/abs/1411.4038 (and the TPAMI 2017 version).

    Architecture (Sec. 3.1, 4.1, 4.2, Fig. 3): VGG16's fully connected layers become
    convolutions (``fc6``: 7x7, 4096 channels; ``fc7``: 1x1, 4096; both ReLU and dropout
    0.5), a 1x1 ``score_fr`` convolution scores the classes at stride 32. FCN-32s upsamples
    these scores 32x in one step. FCN-16s upsamples them 2x, adds scores predicted from
    ``pool4`` by a 1x1 convolution, and upsamples 16x; FCN-8s adds ``pool3`` scores likewise
    and upsamples 8x. Upsampling is a transposed convolution initialised to bilinear
    interpolation (Sec. 3.3); as in the reference models the last, large one stays fixed and
    the 2x ones are learned. The skip scores are zero-initialised (Sec. 4.2). Transposed
    convolutions have no bias, as in the reference.

    Choice: the reference pads the input by 100 pixels so that ``fc6`` (a valid 7x7
    convolution) fits any image, then crops. We zero-pad the normalised image to a multiple
    of 32, use ``"same"`` padding in ``fc6``, and crop the scores back: the weights are the
    same and the output aligns with the input without offsets.

    Parameters: "FCN-VGG16 ... 134M" (Table 1). Ours, for the 21 PASCAL classes:
    FCN-32s 134,346,581 trainable (plus 1,806,336 in the fixed bilinear filter), FCN-16s
    134,364,410, FCN-8s 134,376,863. A test checks them within 1% of the paper's figure.

    Args:
        num_classes: number of classes (21 for PASCAL VOC in the paper).
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        variant: ``"32s"``, ``"16s"`` or ``"8s"`` (also selected by the registry names
            ``fcn32s``, ``fcn16s``, ``fcn8s``).
        weights: ``None`` or ``"imagenet"`` (VGG16 convolutions from ``keras.applications``;
            ``fc6``/``fc7`` start from scratch, since keras' VGG16 has no fully connected
            weights in a convolutional shape).
        fc_filters: channels of ``fc6``/``fc7`` (4096 in the paper; smaller for tests).
        dropout: dropout rate after ``fc6`` and ``fc7``.
        include_preprocessing: apply VGG16's Caffe normalisation to ``[0, 255]`` RGB inputs.
    """

    feature_layer = "fc7"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        variant="8s",
        weights=None,
        fc_filters=4096,
        dropout=0.5,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        variant = check_choice("variant", variant, SKIPS)
        fc_filters = check_int("fc_filters", fc_filters, minimum=1)
        dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)

        # === Layers ===
        backbone = Backbone(
            "vgg16", input_shape=input_shape, weights=weights, feature_layers=POOL_LAYERS, name="vgg16"
        )

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, backbone.normalization, include_preprocessing)
        x = PadToMultiple(32, name="pad_to_multiple")(x)
        pools = backbone(x)
        x = keras.layers.Conv2D(fc_filters, 7, padding="same", activation="relu", name="fc6")(pools["pool5"])
        x = keras.layers.Dropout(dropout, name="drop6")(x)
        x = keras.layers.Conv2D(fc_filters, 1, activation="relu", name="fc7")(x)
        x = keras.layers.Dropout(dropout, name="drop7")(x)
        scores = keras.layers.Conv2D(num_classes, 1, name="score_fr")(x)

        for pool in SKIPS[variant]:
            scores = _upsample(num_classes, 2, trainable=True, name=f"upscore_{pool}")(scores)
            skip = keras.layers.Conv2D(num_classes, 1, kernel_initializer="zeros", name=f"score_{pool}")(
                pools[pool]
            )
            scores = keras.layers.Add(name=f"fuse_{pool}")([scores, skip])
        scores = _upsample(num_classes, FINAL_UPSAMPLING[variant], trainable=False, name="upscore")(scores)
        scores = CropToReference("top_left", name="crop")(scores, inputs)
        outputs = self.logits_output(scores)
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            num_classes=num_classes,
            image_shape=input_shape,
            include_preprocessing=include_preprocessing,
            **kwargs,
        )

        # === Config ===
        self.variant = variant
        self.fc_filters = fc_filters
        self.dropout = dropout

    def get_config(self):
        return {
            **self.base_config(),
            "variant": self.variant,
            "weights": None,
            "fc_filters": self.fc_filters,
            "dropout": self.dropout,
        }


def _upsample(channels, factor, trainable, name):
    """FCN's ``Deconvolution``: kernel 2f, stride f, bilinear initialisation, no bias."""
    return keras.layers.Conv2DTranspose(
        channels,
        2 * factor,
        strides=factor,
        padding="same",
        use_bias=False,
        kernel_initializer=BilinearUpsamplingInitializer(),
        trainable=trainable,
        name=name,
    )
