"""RefineNet (Lin, Milan, Shen and Reid, CVPR 2017)."""

import keras

from keras_sceneparse.backbones.backbone import Backbone, list_backbones
from keras_sceneparse.layers.refinement_blocks import RefineNetBlock
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int

# Backbone levels of the 4-cascade, coarse to fine: RefineNet-4 takes C5 alone, then
# RefineNet-3 ... RefineNet-1 each fuse C4 ... C2 with the previous block (Fig. 2c).
LEVELS = ("C5", "C4", "C3", "C2")


@serializable
@register_model("refinenet")
class RefineNet(SegmentationModel):
    """4-cascaded RefineNet: a ResNet whose four stages are fused coarse to fine by RefineNet blocks.

    Lin, Milan, Shen and Reid, "RefineNet: Multi-Path Refinement Networks for
    High-Resolution Semantic Segmentation", CVPR 2017, https://arxiv.org/abs/1611.06612;
    reference code https://github.com/guosheng/refinenet (MATLAB).

    Architecture (Sec. 3.1, Fig. 2c; blocks in Sec. 3.2, Fig. 3, see
    :class:`~keras_sceneparse.layers.RefineNetBlock`): the backbone's stride-32 ... 4
    feature maps (C5 ... C2, "the four blocks of ResNet") feed a cascade of four
    RefineNet blocks. RefineNet-4 refines C5 alone with 512-channel paths; RefineNet-3,
    -2 and -1 each adapt C4, C3, C2 to 256 channels and fuse them with the previous
    block's output (multi-resolution fusion to 256 channels at the finer resolution),
    then chained residual pooling and output residual convolution units. Dropout 0.5 on
    C5 and C4 (the reference code drops out the backbone outputs wider than 512) and
    before the classifier, a 3x3 convolution scoring the classes at stride 4 (the
    reference ``final_loss`` group), bilinearly upsampled to the input ("the final
    high-resolution feature maps are fed to a dense soft-max layer ... and bilinear
    interpolation", Sec. 3.1).

    Choices: the block configuration follows the released code and models, not the
    figures: chained residual pooling with 4 pooling blocks (Fig. 3d draws 2; the
    released VOC model has 4, its training script offers 2 or 4) and 3 output RCUs
    (Fig. 3a draws 1; ``refine_block_conv_num_mainflow = 3``); ``pooling_blocks=2,
    output_units=1`` gives the figures' version. As in the code, the previous block's
    output enters the fusion without RCUs, and a 3x3 convolution without bias adapts
    each backbone map to the path width before its RCUs. Convolutions start from
    N(0, 0.01) as in the code. The code pools before each CRP convolution (its
    "original implementation", the one the released models use). Any backbone of
    :func:`~keras_sceneparse.backbones.list_backbones` works (keras.applications ResNets
    have conv biases and no ImageNet weights offline); images of any size work, since
    fusion and output resize to the exact sizes of the finer map and of the input.

    Parameters: Nekrasov, Shen and Reid ("Light-Weight RefineNet for Real-Time Semantic
    Segmentation", BMVC 2018, Table 1) report 118M for RefineNet-101, i.e. this
    configuration on ResNet-101 (the released PASCAL VOC model, 21 classes): 42.50M in the
    ResNet and 75.55M in the cascade. Ours, 21 classes, trainable: 118,105,109 (ResNet-101
    42,552,832, whose keras.applications convolutions add 52,672 biases; cascade and
    classifier 75,552,277), within 0.1% of the figure (asserted by a test). With the
    figures' blocks (2 pooling blocks, 1 output RCU): 93,329,941.

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones`
            (``"resnet101"``, the paper's main model, by default; ``"resnet152"`` for its
            best results).
        weights: ``None`` or ``"imagenet"`` for the backbone.
        filters: path widths of RefineNet-4, -3, -2, -1 (``(512, 256, 256, 256)``, Sec. 3.2).
        adaptation_units: RCUs on each backbone path (2).
        pooling_blocks: pooling blocks of each chained residual pooling (4; 2 in Fig. 3d).
        output_units: RCUs after each chained residual pooling (3; 1 in Fig. 3a).
        dropout: dropout rate on C5, C4 and before the classifier (0.5).
        backbone_kwargs: extra ``keras.applications`` arguments (e.g. ``{"alpha": 0.35}``).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = RefineNet(num_classes=21)  # RefineNet-101
        >>> logits = model(np.zeros((1, 321, 321, 3)))  # (1, 321, 321, 21)
    """

    feature_layer = "refinenet_1"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet101",
        weights=None,
        filters=(512, 256, 256, 256),
        adaptation_units=2,
        pooling_blocks=4,
        output_units=3,
        dropout=0.5,
        backbone_kwargs=None,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("backbone", backbone, list_backbones())
        filters = tuple(filters)
        if len(filters) != len(LEVELS):
            raise ValueError(
                f"`filters` must give {len(LEVELS)} widths (RefineNet-4, -3, -2, -1), got {filters!r}."
            )
        filters = tuple(check_int(f"filters[{i}]", width, minimum=1) for i, width in enumerate(filters))
        adaptation_units = check_int("adaptation_units", adaptation_units, minimum=0)
        pooling_blocks = check_int("pooling_blocks", pooling_blocks, minimum=1)
        output_units = check_int("output_units", output_units, minimum=0)
        dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)

        # === Layers ===
        encoder = Backbone(
            backbone,
            input_shape=input_shape,
            weights=weights,
            application_kwargs=backbone_kwargs,
            name=f"{backbone}_backbone",
        )
        blocks = [
            RefineNetBlock(
                width,
                adaptation_units=adaptation_units,
                pooling_blocks=pooling_blocks,
                output_units=output_units,
                name=f"refinenet_{4 - index}",
            )
            for index, width in enumerate(filters)
        ]

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, encoder.normalization, include_preprocessing)
        features = encoder(x)
        refined = None
        for level, block in zip(LEVELS, blocks):
            feature = features[level]
            if level in ("C5", "C4"):
                feature = keras.layers.Dropout(dropout, name=f"{level}_dropout")(feature)
            refined = block(feature, refined)
        x = keras.layers.Dropout(dropout, name="classifier_dropout")(refined)
        x = keras.layers.Conv2D(
            num_classes,
            3,
            padding="same",
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
            name="classifier",
        )(x)
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
        self.filters = filters
        self.adaptation_units = adaptation_units
        self.pooling_blocks = pooling_blocks
        self.output_units = output_units
        self.dropout = dropout
        self.backbone_kwargs = dict(backbone_kwargs or {})

    def get_config(self):
        return {
            **self.base_config(),
            "backbone": self.backbone_name,
            "weights": None,
            "filters": self.filters,
            "adaptation_units": self.adaptation_units,
            "pooling_blocks": self.pooling_blocks,
            "output_units": self.output_units,
            "dropout": self.dropout,
            "backbone_kwargs": self.backbone_kwargs,
        }
