"""ParseNet (Liu, Rabinovich and Berg, ICLR 2016 workshop)."""

import keras

from keras_sceneparse.layers.l2_normalization import L2Normalization
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.dilated_net import load_vgg16_weights, vgg16_widths
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int


@serializable
@register_model("parsenet")
class ParseNet(SegmentationModel):
    """ParseNet: an FCN whose local features are fused with their global average.

    Liu, Rabinovich and Berg, "ParseNet: Looking Wider to See Better", ICLR 2016
    workshop, https://arxiv.org/abs/1506.04579.

    Architecture: the network is DeepLab-LargeFOV (the paper's PASCAL VOC model, Sec. 4):
    VGG-16 at output stride 8 (pool4 and pool5 3x3 at stride 1, conv5 dilated by 2), ``fc6``
    a 3x3 convolution with 1024 channels dilated by 12, ``fc7`` 1x1 with 1024 channels
    (ReLU and dropout 0.5 each). ParseNet's context (Sec. 3.1, 3.2, Fig. 1e): ``fc7`` is
    globally average-pooled (``pool6``); the pooled vector and the local ``fc7`` features are
    each L2-normalised with a learned per-channel scale (Sec. 3.3,
    :class:`~keras_sceneparse.layers.L2Normalization`); the pooled vector is "unpooled" to
    the feature map's size (replicated at every position) and concatenated with the local
    features ("early fusion", Sec. 3.2), and a 1x1 convolution (``fc8``) scores the classes,
    upsampled bilinearly to the input.

    Choices: the scales start at ``scale_init`` = 10 (configurable; the value the Keras
    ports of the reference ``Normalize`` layer default to; we could not confirm the paper's
    per-layer values in the time available). No dropout on the pooled feature. The VGG-16
    is built here rather than through ``keras.applications`` so that ``base_filters`` can
    shrink it for tests; ``weights="imagenet"`` copies keras.applications' convolutions.
    Pool1-3 are 2x2 as in keras' VGG-16 (the DeepLab reference uses 3x3, padding 1, same
    stride and the same weights), with ``"same"`` padding so odd sizes are kept (ceil mode).

    Parameters: the paper states none. Ours for 21 classes: 20,528,981 (DeepLab-LargeFOV's
    20,505,429, plus 1,024 x 21 ``fc8`` weights for the concatenated global feature and
    2 x 1,024 scales), asserted by a test.

    Args:
        num_classes: number of classes (21 for PASCAL VOC, 33 SiftFlow, 60 PASCAL-Context).
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        weights: ``None`` or ``"imagenet"`` (needs ``base_filters=64`` and a download).
        base_filters: width of VGG-16's first block (64); the others scale with it.
        fc_filters: channels of ``fc6``/``fc7`` (1024).
        atrous_rate: dilation of ``fc6`` (12).
        dropout: dropout after ``fc6`` and ``fc7`` (0.5).
        scale_init: initial value of the L2 normalisation scales.
        include_preprocessing: apply VGG-16's Caffe normalisation to ``[0, 255]`` RGB inputs.

    Example:
        >>> model = ParseNet(num_classes=21)
    """

    feature_layer = "fused_features"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        weights=None,
        base_filters=64,
        fc_filters=1024,
        atrous_rate=12,
        dropout=0.5,
        scale_init=10.0,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(
            num_classes, input_shape, channels=3 if weights == "imagenet" else None
        )
        check_choice("weights", weights, {None, "imagenet"})
        base_filters = check_int("base_filters", base_filters, minimum=1)
        if weights == "imagenet" and base_filters != 64:
            raise ValueError(f"`weights='imagenet'` needs `base_filters=64`, got base_filters={base_filters}.")
        fc_filters = check_int("fc_filters", fc_filters, minimum=1)
        atrous_rate = check_int("atrous_rate", atrous_rate, minimum=1)
        dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)
        scale_init = check_float("scale_init", scale_init)

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, "caffe", include_preprocessing)
        convolutions = []
        for block, widths in enumerate(vgg16_widths(base_filters), start=1):
            dilation = 2 if block == 5 else 1  # DeepLab's "hole algorithm" after pool4 lost its stride
            for index, filters in enumerate(widths, start=1):
                conv = keras.layers.Conv2D(
                    filters, 3, padding="same", dilation_rate=dilation, activation="relu",
                    name=f"conv{block}_{index}",
                )
                convolutions.append(conv)
                x = conv(x)
            if block <= 3:
                x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{block}")(x)
            else:
                x = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"pool{block}")(x)
        x = keras.layers.Conv2D(
            fc_filters, 3, padding="same", dilation_rate=atrous_rate, activation="relu", name="fc6"
        )(x)
        x = keras.layers.Dropout(dropout, name="drop6")(x)
        x = keras.layers.Conv2D(fc_filters, 1, activation="relu", name="fc7")(x)
        local = keras.layers.Dropout(dropout, name="drop7")(x)

        # Sec. 3.1-3.3: global average, L2 normalisation of both features, unpooling, concat.
        context = keras.layers.GlobalAveragePooling2D(keepdims=True, name="pool6")(local)
        context = L2Normalization(scale_init, name="pool6_norm")(context)
        context = ResizeToReference("nearest", name="unpool6")(context, local)
        local = L2Normalization(scale_init, name="fc7_norm")(local)
        x = keras.layers.Concatenate(name="fused_features")([local, context])
        x = keras.layers.Conv2D(num_classes, 1, name="fc8")(x)
        x = ResizeToReference(name="upsampling")(x, inputs)
        outputs = self.logits_output(x)
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            num_classes=num_classes,
            image_shape=input_shape,
            include_preprocessing=include_preprocessing,
            **kwargs,
        )

        if weights == "imagenet":
            load_vgg16_weights(convolutions)

        # === Config ===
        self.base_filters = base_filters
        self.fc_filters = fc_filters
        self.atrous_rate = atrous_rate
        self.dropout = dropout
        self.scale_init = scale_init

    def get_config(self):
        return {
            **self.base_config(),
            "weights": None,
            "base_filters": self.base_filters,
            "fc_filters": self.fc_filters,
            "atrous_rate": self.atrous_rate,
            "dropout": self.dropout,
            "scale_init": self.scale_init,
        }
