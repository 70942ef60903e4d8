"""Semantic FPN, the semantic segmentation branch of Panoptic FPN (Kirillov, Girshick, He and Dollár, CVPR 2019)."""

import keras

from keras_sceneparse.backbones.backbone import Backbone, list_backbones
from keras_sceneparse.layers.cropping import CropToReference
from keras_sceneparse.layers.fpn_blocks import FeaturePyramid
from keras_sceneparse.layers.padding import PadToMultiple
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_int

# Backbone levels of the pyramid, fine to coarse (strides 4, 8, 16, 32): P2 ... P5.
LEVELS = ("C2", "C3", "C4", "C5")


@serializable
@register_model("semantic_fpn")
class SemanticFPN(SegmentationModel):
    """Semantic FPN: an FPN whose four levels are upsampled to 1/4, summed and classified.

    Kirillov, Girshick, He and Dollár, "Panoptic Feature Pyramid Networks", CVPR 2019,
    https://arxiv.org/abs/1901.02446 (its semantic segmentation branch, evaluated alone
    in Sec. 4.2 and Table 2); the FPN of Lin et al., CVPR 2017.

    Architecture (Sec. 3, Fig. 3): a ResNet's C2 ... C5 go through
    :class:`~keras_sceneparse.layers.FeaturePyramid` (1x1 lateral convolutions, top-down
    nearest upsampling, 3x3 output convolutions; 256 channels) to P2 ... P5. "Starting from
    the deepest FPN level (at 1/32 scale), we perform three upsampling stages to yield a
    feature map at 1/4 scale, where each upsampling stage consists of 3x3 convolution, group
    norm, ReLU, and 2x bilinear upsampling. This strategy is repeated for FPN scales 1/16,
    1/8, and 1/4 (with progressively fewer upsampling stages)"; the 1/4 level gets one
    convolution, group norm and ReLU without upsampling. The convolutions have 128
    channels. "The result is a set of feature maps at the same 1/4 scale, which are then
    element-wise summed. A final 1x1 convolution, 4x bilinear upsampling, and softmax are
    used to generate the per-pixel class labels".

    Choices: group norm with 32 groups (the paper's GN, Wu and He 2018, and Detectron2's
    default), so the head convolutions have no bias; FPN convolutions have biases and no
    normalisation, as in FPN. No dropout (mmsegmentation's FPNHead adds 0.1; the paper has
    none). The image is zero-padded to a multiple of 32, as Detectron2 pads its batches,
    so every 2x upsampling lands exactly on the finer level (backbones with "valid" stems
    like Xception are resized onto it), and the logits are cropped back to the input:
    any image size works. Backbone: any of
    :func:`~keras_sceneparse.backbones.list_backbones`; ResNet-50 from keras.applications
    (with conv biases; no ImageNet weights offline) by default.

    Parameters: Wang et al. (PVT, ICCV 2021, Table 3; mmsegmentation's Semantic FPN)
    report 28.5M for Semantic FPN with ResNet-50 on ADE20K (150 classes). Ours, 150
    classes, trainable: 28,522,134 (ResNet-50 23,534,592, FPN 3,344,384, head 1,643,158),
    within 1% (asserted by a test); 28,505,493 for 21 classes.

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones`
            (``"resnet50"`` by default).
        weights: ``None`` or ``"imagenet"`` for the backbone.
        pyramid_filters: channels of the FPN levels (256).
        head_filters: channels of the semantic branch's convolutions (128).
        group_norm_groups: groups of the group normalisations (32); must divide
            ``head_filters``.
        backbone_kwargs: extra ``keras.applications`` arguments (e.g. ``{"alpha": 0.35}``).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = SemanticFPN(num_classes=150)
        >>> logits = model(np.zeros((1, 512, 512, 3)))  # (1, 512, 512, 150)
    """

    feature_layer = "semantic_sum"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet50",
        weights=None,
        pyramid_filters=256,
        head_filters=128,
        group_norm_groups=32,
        backbone_kwargs=None,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("backbone", backbone, list_backbones())
        pyramid_filters = check_int("pyramid_filters", pyramid_filters, minimum=1)
        head_filters = check_int("head_filters", head_filters, minimum=1)
        group_norm_groups = check_int("group_norm_groups", group_norm_groups, minimum=1)
        if head_filters % group_norm_groups:
            raise ValueError(
                f"`group_norm_groups` ({group_norm_groups}) must divide `head_filters` ({head_filters})."
            )

        # === Layers ===
        encoder = Backbone(
            backbone,
            input_shape=input_shape,
            weights=weights,
            application_kwargs=backbone_kwargs,
            name=f"{backbone}_backbone",
        )
        pyramid = FeaturePyramid(pyramid_filters, name="feature_pyramid")

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, encoder.normalization, include_preprocessing)
        padded = PadToMultiple(32, name="pad_to_multiple")(x)
        features = encoder(padded)
        levels = pyramid([features[level] for level in LEVELS])
        upsampled = []
        for index, level in enumerate(levels):
            name = f"semantic_P{index + 2}"
            # Level P_(i+2) at stride 4 * 2^i needs i upsampling stages (at least one conv).
            for stage in range(max(index, 1)):
                level = keras.layers.Conv2D(
                    head_filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal",
                    name=f"{name}_conv{stage + 1}",
                )(level)
                level = keras.layers.GroupNormalization(group_norm_groups, epsilon=1e-5, name=f"{name}_gn{stage + 1}")(
                    level
                )
                level = keras.layers.Activation("relu", name=f"{name}_relu{stage + 1}")(level)
                if index > 0:
                    # 2x bilinear: resizing onto the next finer level, exactly twice as large.
                    level = ResizeToReference(name=f"{name}_upsampling{stage + 1}")(level, levels[index - stage - 1])
            upsampled.append(level)
        x = keras.layers.Add(name="semantic_sum")(upsampled)
        x = keras.layers.Conv2D(num_classes, 1, name="classifier")(x)
        x = ResizeToReference(name="output_upsampling")(x, padded)
        x = CropToReference("top_left", name="crop")(x, inputs)
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
        self.pyramid_filters = pyramid_filters
        self.head_filters = head_filters
        self.group_norm_groups = group_norm_groups
        self.backbone_kwargs = dict(backbone_kwargs or {})

    def get_config(self):
        return {
            **self.base_config(),
            "backbone": self.backbone_name,
            "weights": None,
            "pyramid_filters": self.pyramid_filters,
            "head_filters": self.head_filters,
            "group_norm_groups": self.group_norm_groups,
            "backbone_kwargs": self.backbone_kwargs,
        }
