"""DeepLab-LargeFOV (Chen, Papandreou, Kokkinos, Murphy and Yuille, ICLR 2015)."""

import keras

from keras_sceneparse.backbones import Backbone
from keras_sceneparse.layers import ResizeToReference
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float, check_int

VGG_POOL5 = {"pool5": "block5_pool"}


@serializable
@register_model("deeplab_largefov")
class DeepLabLargeFOV(SegmentationModel):
    """DeepLab v1 with the large field of view: a dilated VGG16 and an atrous fc6.

    Chen et al., "Semantic Image Segmentation with Deep Convolutional Nets and Fully
    Connected CRFs", ICLR 2015, https://arxiv.org/abs/1412.7062 (Sec. 3.1, 4.1, Table 2).

    Architecture: VGG16 with the strides of pool4 and pool5 removed (3x3 pooling at stride
    1) and conv5 dilated by 2, so the output stride is 8 (Sec. 3.1, the "hole algorithm");
    ``fc6`` is a 3x3 convolution with input stride (atrous rate) 12 and 1024 channels, ``fc7``
    a 1x1 convolution with 1024 channels, both with ReLU and dropout 0.5; ``fc8`` scores the
    classes. The stride-8 scores are upsampled bilinearly to the input (Sec. 3.1: "we simply
    bilinearly interpolate"). The fully connected CRF of the paper is post-processing and is
    not part of this network.

    Parameters: "DeepLab-CRF-LargeFOV ... 20.5M" (Table 2, 21 classes); ours 20,505,429,
    asserted by a test.

    The entity features of the structured scene parser (Lin et al., CVPR 2016) are read from
    ``fc7`` (:attr:`feature_layer`).

    Args:
        num_classes: number of classes (21 in the paper).
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        weights: ``None`` or ``"imagenet"`` (VGG16 convolutions from ``keras.applications``).
        fc_filters: channels of ``fc6``/``fc7`` (1024).
        atrous_rate: rate of ``fc6`` (12 for LargeFOV).
        dropout: dropout rate after ``fc6`` and ``fc7``.
        include_preprocessing: apply VGG16's Caffe normalisation to ``[0, 255]`` RGB inputs.
    """

    feature_layer = "fc7"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        weights=None,
        fc_filters=1024,
        atrous_rate=12,
        dropout=0.5,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        fc_filters = check_int("fc_filters", fc_filters, minimum=1)
        atrous_rate = check_int("atrous_rate", atrous_rate, minimum=1)
        dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)

        # === Layers ===
        backbone = Backbone(
            "vgg16", input_shape=input_shape, weights=weights, output_stride=8, feature_layers=VGG_POOL5,
            name="vgg16",
        )

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, backbone.normalization, include_preprocessing)
        x = backbone(x)["pool5"]
        x = keras.layers.Conv2D(
            fc_filters, 3, padding="same", dilation_rate=atrous_rate, activation="relu", name="fc6"
        )(x)
        x = keras.layers.Dropout(dropout, name="drop6")(x)
        x = keras.layers.Conv2D(fc_filters, 1, activation="relu", name="fc7")(x)
        x = keras.layers.Dropout(dropout, name="drop7")(x)
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

        # === Config ===
        self.fc_filters = fc_filters
        self.atrous_rate = atrous_rate
        self.dropout = dropout

    def get_config(self):
        return {
            **self.base_config(),
            "weights": None,
            "fc_filters": self.fc_filters,
            "atrous_rate": self.atrous_rate,
            "dropout": self.dropout,
        }
