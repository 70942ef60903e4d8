"""DeepLabV3 (Chen, Papandreou, Schroff and Adam, 2017)."""

import keras

from keras_sceneparse.backbones.backbone import Backbone, list_backbones
from keras_sceneparse.backbones.multi_grid import MULTI_GRID_LAYERS, apply_multi_grid
from keras_sceneparse.layers.atrous_spatial_pyramid_pooling import (
    AtrousSpatialPyramidPooling,
)
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_int

#: Unit rates of block4 in the paper's best ASPP model (Table 5).
MULTI_GRID = (1, 2, 4)


@serializable
@register_model("deeplabv3")
class DeepLabV3(SegmentationModel):
    """DeepLabV3: a dilated ResNet with multi-grid block4 and ASPP with image pooling.

    Chen, Papandreou, Schroff and Adam, "Rethinking Atrous Convolution for Semantic Image
    Segmentation", 2017, https://arxiv.org/abs/1706.05587.

    Architecture (Sec. 3.3, Fig. 5): ResNet-101 whose last downsamplings are replaced by
    atrous convolution, at output stride 16 (8 optional; Sec. 3.1). The three units of
    block4 (``conv5`` in Keras' names) use multi-grid rates ``rate * (1, 2, 4)``, i.e.
    (2, 4, 8) at output stride 16 (Sec. 3.2; Tables 3 and 5;
    :func:`~keras_sceneparse.backbones.multi_grid.apply_multi_grid`). On top,
    :class:`~keras_sceneparse.layers.AtrousSpatialPyramidPooling`: a 1x1 and three 3x3
    convolutions with rates (6, 12, 18) (doubled at output stride 8) and image-level
    features, all 256 channels with batch normalisation, concatenated and fused by a 1x1
    convolution with 256 channels; "the final 1x1 convolution" scores the classes and the
    scores are bilinearly upsampled to the input (Sec. 3.3). There is no decoder
    (DeepLabV3+ adds one) and no CRF.

    Choices: the backbone defaults to ResNet-101, the paper's (ResNet-50 is its ablation
    network, Table 1). It comes from ``keras.applications`` (ResNet v1) without ImageNet
    weights offline. Multi-grid is defined for the three bottleneck units of block4 of
    ResNet-50/101/152 only, so ``multi_grid=None`` means (1, 2, 4) on those and none on the
    other backbones (e.g. MobileNetV2, as in the DeepLab reference code). The ASPP output
    has dropout 0.1 in training, as in the reference code (the paper does not say).
    Upsampling resizes to the exact input size, so sizes that are not multiples of 16 work.

    Parameters: the paper gives none. Ours for 21 classes at output stride 16 (asserted by
    a test), with batch-norm statistics / trainable: ResNet-50 39,131,285 / 39,075,093;
    ResNet-101 58,201,749 / 58,093,333. torchvision's ``deeplabv3_resnet50`` (42,004,074)
    and ``deeplabv3_resnet101`` (60,996,202) count trainable parameters of a different
    configuration: they add an auxiliary FCN head on ``layer3`` (2,365,205 for 21 classes)
    and a 3x3 convolution with 256 channels and batch norm between ASPP and classifier
    (590,336), neither in the paper (its output stride 8, rates (12, 24, 36) and no
    multi-grid change no count). Without those two, torchvision has 39,048,533 and
    58,040,661, which differ from our trainable counts only by Keras ResNet's convolution
    biases (26,560 and 52,672): our configuration is the paper's, not torchvision's, so the
    test asserts our exact counts and this decomposition.

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones` (``"resnet101"``).
        weights: ``None`` or ``"imagenet"`` for the backbone.
        output_stride: 16 (default) or 8.
        atrous_rates: ASPP rates at output stride 16 (doubled at 8).
        multi_grid: unit rates of the three block4 units; ``None`` picks (1, 2, 4) for
            ResNet-50/101/152 and none for the others; ``(1, 1, 1)`` is the plain dilated ResNet.
        aspp_filters: ASPP channels (256).
        backbone_kwargs: extra ``keras.applications`` arguments (e.g. ``{"alpha": 0.35}``).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = DeepLabV3(num_classes=21, backbone="resnet50")
        >>> model(np.zeros((1, 65, 65, 3))).shape
        TensorShape([1, 65, 65, 21])
    """

    feature_layer = "aspp"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet101",
        weights=None,
        output_stride=16,
        atrous_rates=(6, 12, 18),
        multi_grid=None,
        aspp_filters=256,
        backbone_kwargs=None,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("backbone", backbone, list_backbones())
        output_stride = check_choice("output_stride", output_stride, {8, 16})
        atrous_rates = tuple(check_int("atrous_rates[i]", rate, minimum=1) for rate in atrous_rates)
        aspp_filters = check_int("aspp_filters", aspp_filters, minimum=1)
        if multi_grid is None:
            multi_grid = MULTI_GRID if backbone in MULTI_GRID_LAYERS else None
        elif backbone not in MULTI_GRID_LAYERS:
            raise ValueError(
                f"`multi_grid` applies to the block4 units of ResNet backbones ({sorted(MULTI_GRID_LAYERS)}); "
                f"got multi_grid={tuple(multi_grid)!r} with backbone {backbone!r}. Pass multi_grid=None."
            )
        else:
            multi_grid = tuple(check_int("multi_grid[i]", rate, minimum=1) for rate in multi_grid)
        rate_scale = 16 // output_stride

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
        normalization = encoder.normalization
        if multi_grid is not None:
            encoder = apply_multi_grid(encoder, multi_grid)
        aspp = AtrousSpatialPyramidPooling(
            aspp_filters, atrous_rates=tuple(rate * rate_scale for rate in atrous_rates), name="aspp"
        )

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, normalization, include_preprocessing)
        x = aspp(encoder(x)["C5"])
        x = keras.layers.Conv2D(num_classes, 1, name="classifier")(x)
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
        self.output_stride = output_stride
        self.atrous_rates = atrous_rates
        self.multi_grid = multi_grid
        self.aspp_filters = aspp_filters
        self.backbone_kwargs = dict(backbone_kwargs or {})

    def get_config(self):
        return {
            **self.base_config(),
            "backbone": self.backbone_name,
            "weights": None,
            "output_stride": self.output_stride,
            "atrous_rates": self.atrous_rates,
            "multi_grid": self.multi_grid,
            "aspp_filters": self.aspp_filters,
            "backbone_kwargs": self.backbone_kwargs,
        }
