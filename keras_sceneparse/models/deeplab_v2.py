"""DeepLab v2 (Chen, Papandreou, Kokkinos, Murphy and Yuille, TPAMI 2018)."""

import keras

from keras_sceneparse.backbones.backbone import Backbone, list_backbones
from keras_sceneparse.layers.atrous_spatial_pyramid_pooling_v2 import (
    ASPP_L_RATES,
    AtrousSpatialPyramidPoolingV2,
)
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int

#: Channels of each ASPP branch's fc6/fc7 on VGG-16 (Fig. 7b); ResNet branches have none.
VGG_FC_FILTERS = 1024


@serializable
@register_model("deeplab_v2")
class DeepLabV2(SegmentationModel):
    """DeepLab v2: a dilated network at output stride 8 and ASPP with summed branch scores.

    Chen, Papandreou, Kokkinos, Murphy and Yuille, "DeepLab: Semantic Image Segmentation
    with Deep Convolutional Nets, Atrous Convolution, and Fully Connected CRFs", TPAMI 2018,
    https://arxiv.org/abs/1606.00915.

    Architecture: the backbone's last two downsamplings are replaced by atrous convolution
    so the features stay at output stride 8 (Sec. 3.1; for ResNet-101, Sec. 4.1 and Table 4,
    ``res4``/``res5`` are dilated by 2 and 4). On VGG-16 this is DeepLab v1's network:
    pool4/pool5 become 3x3 max pooling at stride 1 and conv5 is dilated by 2 (as in
    :class:`~keras_sceneparse.models.DeepLabLargeFOV`). Atrous Spatial Pyramid Pooling
    (Sec. 3.1, Fig. 7; :class:`~keras_sceneparse.layers.AtrousSpatialPyramidPoolingV2`)
    applies parallel branches with rates (6, 12, 18, 24) (ASPP-L; ASPP-S is (2, 4, 8, 12),
    Table 3) to these features and *sums* their class scores. On VGG-16 a branch is fc6 (3x3,
    rate r, 1024 channels), fc7 (1x1, 1024), each with ReLU and dropout 0.5, and fc8 (1x1 to
    the classes) (Fig. 7b); on ResNet-101 a branch is a single 3x3 convolution with rate r
    to the classes (the reference prototxt, ``fc1_voc12_c0..c3``). The stride-8 scores are
    bilinearly upsampled to the input (Sec. 3.1).

    The fully connected CRF (Sec. 3.2) is a separate post-processing step on the softmax
    of these logits and the image; it is not part of this network. Neither is the
    multi-scale input fusion (MSC, Table 4) of the best ResNet-101 model: that is a way
    of running the network at three scales with shared weights, not a different network.

    Choices: the backbones come from ``keras.applications`` without ImageNet weights
    offline (``weights="imagenet"`` downloads them). Keras' VGG16 pools 2x2 where the
    DeepLab prototxt pools 3x3 with padding 1 in pool1-3 (same parameters, slightly
    different sampling); Keras' ResNet101 has convolution biases where the Caffe ResNet-101
    has none, hence the counts below. Any backbone of
    :func:`~keras_sceneparse.backbones.list_backbones` works: VGG-16 gets the fc6/fc7/fc8
    branches, the others ResNet's single-convolution branches (``fc_filters`` overrides).
    The feature layer is the backbone's stride-8 output (ResNet: ``res5c``; VGG: pool5).
    Upsampling resizes to the exact input size, so sizes that are not multiples of 8 work.

    Parameters: the paper states none for ASPP (its 20.5M is DeepLab-LargeFOV's). Ours
    for 21 classes (asserted by a test): VGG-16 ASPP-L 37,877,652 (14,714,688 in the VGG
    convolutions, 5,790,741 per branch); ResNet-101 44,206,548 with batch-norm statistics,
    44,101,204 trainable, i.e. the reference's 44,048,532 (Caffe ResNet-101 without fc,
    42,500,160, plus four 3x3x2048x21 branches with bias, 1,548,372) and Keras' 52,672
    convolution biases.

    Args:
        num_classes: number of classes (21 on PASCAL VOC).
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: ``"resnet101"`` (default, the paper's best) or ``"vgg16"``; any of
            :func:`~keras_sceneparse.backbones.list_backbones`.
        weights: ``None`` or ``"imagenet"`` for the backbone.
        atrous_rates: rates of the ASPP branches (ASPP-L ``(6, 12, 18, 24)``).
        fc_filters: channels of each branch's fc6/fc7; ``None`` picks 1024 for VGG and 0
            (single-convolution branches) for the other backbones.
        dropout: dropout after fc6 and fc7 (0.5).
        backbone_kwargs: extra ``keras.applications`` arguments (e.g. ``{"alpha": 0.35}``).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = DeepLabV2(num_classes=21, backbone="vgg16")
        >>> model(np.zeros((1, 321, 321, 3))).shape
        TensorShape([1, 321, 321, 21])
    """

    feature_layer = "backbone_features"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet101",
        weights=None,
        atrous_rates=ASPP_L_RATES,
        fc_filters=None,
        dropout=0.5,
        backbone_kwargs=None,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("backbone", backbone, list_backbones())
        atrous_rates = tuple(check_int("atrous_rates[i]", rate, minimum=1) for rate in atrous_rates)
        if fc_filters is None:
            fc_filters = VGG_FC_FILTERS if backbone == "vgg16" else 0
        fc_filters = check_int("fc_filters", fc_filters, minimum=0)
        dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)

        # === Layers ===
        # C5 is the last stride-8 map: res5c on ResNet, pool5 on VGG (as in DeepLabLargeFOV).
        encoder = Backbone(
            backbone,
            input_shape=input_shape,
            weights=weights,
            output_stride=8,
            feature_layers=None,
            application_kwargs=backbone_kwargs,
            name=f"{backbone}_backbone",
        )
        aspp = AtrousSpatialPyramidPoolingV2(
            num_classes, atrous_rates=atrous_rates, hidden_filters=fc_filters, dropout=dropout, name="aspp"
        )

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, encoder.normalization, include_preprocessing)
        # A named view of the nested backbone's dict output, for `feature_model`.
        x = keras.layers.Identity(name="backbone_features")(encoder(x)["C5"])
        x = aspp(x)
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
        self.backbone_name = backbone
        self.atrous_rates = atrous_rates
        self.fc_filters = fc_filters
        self.dropout = dropout
        self.backbone_kwargs = dict(backbone_kwargs or {})

    def get_config(self):
        return {
            **self.base_config(),
            "backbone": self.backbone_name,
            "weights": None,
            "atrous_rates": self.atrous_rates,
            "fc_filters": self.fc_filters,
            "dropout": self.dropout,
            "backbone_kwargs": self.backbone_kwargs,
        }
