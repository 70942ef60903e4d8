"""BiSeNet (Yu, Wang, Peng, Gao, Yu and Sang, ECCV 2018)."""

import keras

from keras_sceneparse.backbones.backbone import Backbone, list_backbones
from keras_sceneparse.layers.bisenet_blocks import (
    AttentionRefinementModule,
    FeatureFusionModule,
)
from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.heads import segmentation_head
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import MAIN_OUTPUT, SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int

#: Auxiliary outputs: the context path's features at 1/8 and 1/16 (Sec. 3.3, "auxiliary loss").
AUXILIARY_OUTPUTS = ("context_stride8", "context_stride16")


@serializable
@register_model("bisenet", backbone="resnet18")
class BiSeNet(SegmentationModel):
    """BiSeNet: a shallow, wide spatial path and a deep, fast-downsampling context path, fused.

    Yu, Wang, Peng, Gao, Yu and Sang, "BiSeNet: Bilateral Segmentation Network for Real-time
    Semantic Segmentation", ECCV 2018, https://arxiv.org/abs/1808.00897 (reference code:
    ycszen/TorchSeg, CoinCheung/BiSeNet).

    Architecture (Sec. 3, Fig. 2):

    - Spatial path (Sec. 3.1): three stride-2 convolutions with batch normalisation and
      ReLU, giving 1/8-resolution features. As in the reference code: 7x7 (64 channels), 3x3
      (64), 3x3 (64), then a 1x1 convolution to 128 channels.
    - Context path (Sec. 3.1): the backbone's stride-16 and stride-32 features (``C4``,
      ``C5``) and a global average pooling "tail" (1x1 convolution to 128 channels, BN, ReLU)
      that gives the largest receptive field. Each backbone map is reduced to 128 channels
      by a 3x3 convolution (reference code) and refined by an
      :class:`~keras_sceneparse.layers.AttentionRefinementModule` (Sec. 3.2); the pooled
      context is added to the stride-32 map, which is upsampled and added to the stride-16
      one, each sum followed by a 3x3 convolution (reference code), up to 1/8.
    - :class:`~keras_sceneparse.layers.FeatureFusionModule` (Sec. 3.2) fuses the two paths
      into 256 channels; a 3x3 convolution (256, BN, ReLU) and a 1x1 classifier score the
      classes, upsampled bilinearly to the input.

    Loss (Sec. 3.3, Eq. 2): the principal loss plus two auxiliary losses "to supervise the
    output of the context path", ``alpha = 1``. The auxiliary heads (3x3 convolution of 64
    channels, BN, ReLU, 1x1 classifier, as in the reference code) read the context path's
    outputs at 1/8 and 1/16; the model then returns ``{"logits": main, "context_stride8":
    ..., "context_stride16": ...}`` with weight 1.0 each, ``fit`` adds them and ``predict``
    returns the main logits only (:class:`SegmentationModel`). ``auxiliary_heads=False``
    builds the inference network alone.

    Choices:

    - Backbone: ResNet-18 (the paper's larger model) from :mod:`keras_sceneparse.backbones`
      (torchvision's layout, no ImageNet weights offline). The paper's other backbone,
      Xception39, is not provided; any other :func:`~keras_sceneparse.backbones.list_backbones`
      name works through its ``C4``/``C5``.
    - Where the paper is silent, the reference code: the 7x7 first convolution and 1x1
      output of the spatial path, the 3x3 convolutions around the refinement modules,
      nearest upsampling inside the context path (bilinear for the logits), the FFM's 1x1
      convolution and its attention's reduction of 4.
    - Every upsampling resizes to the exact size of the finer map, so sizes that are not
      multiples of 32 work.

    Parameters: the paper gives none for ResNet-18. PixSeg (CyrusCKF) lists its ResNet-18
    BiSeNet with "14M". Ours (19 classes, with batch-norm statistics; asserted by a test):
    13,255,315 without the auxiliary heads, 13,405,753 with them (ResNet-18 alone has
    11,176,512 trainable).

    Args:
        num_classes: number of classes (19 for Cityscapes, 11 for CamVid in the paper).
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones` (``"resnet18"``).
        weights: ``None`` or ``"imagenet"`` for the backbone.
        spatial_filters: channels of the spatial path's four convolutions ((64, 64, 64, 128)).
        context_filters: channels of the context path (128).
        fusion_filters: channels of the feature fusion module (256).
        head_filters: channels of the main head's 3x3 convolution (256).
        auxiliary_heads: build the two auxiliary heads for training.
        auxiliary_filters: channels of the auxiliary heads' 3x3 convolution (64).
        auxiliary_loss_weight: ``alpha`` of Eq. 2 (1.0).
        backbone_kwargs: extra arguments of the backbone constructor (e.g.
            ``{"base_filters": 8}`` for a narrow ResNet-18).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = BiSeNet(num_classes=19)
        >>> model.compile("adam", loss=ksp.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> model.fit(images, labels)  # principal + 1.0 x each auxiliary loss
        >>> model.predict(images).shape
        (batch, height, width, 19)
    """

    feature_layer = "head_conv"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet18",
        weights=None,
        spatial_filters=(64, 64, 64, 128),
        context_filters=128,
        fusion_filters=256,
        head_filters=256,
        auxiliary_heads=True,
        auxiliary_filters=64,
        auxiliary_loss_weight=1.0,
        backbone_kwargs=None,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("backbone", backbone, list_backbones())
        spatial_filters = tuple(check_int("spatial_filters[i]", value, minimum=1) for value in spatial_filters)
        if len(spatial_filters) != 4:
            raise ValueError(f"`spatial_filters` must give 4 channel counts, got {spatial_filters!r}.")
        context_filters = check_int("context_filters", context_filters, minimum=1)
        fusion_filters = check_int("fusion_filters", fusion_filters, minimum=4)
        head_filters = check_int("head_filters", head_filters, minimum=1)
        auxiliary_heads = bool(auxiliary_heads)
        auxiliary_filters = check_int("auxiliary_filters", auxiliary_filters, minimum=1)
        auxiliary_loss_weight = check_float("auxiliary_loss_weight", auxiliary_loss_weight, minimum=0.0)

        # === Layers ===
        encoder = Backbone(
            backbone,
            input_shape=input_shape,
            weights=weights,
            application_kwargs=backbone_kwargs,
            name=f"{backbone}_backbone",
        )

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, encoder.normalization, include_preprocessing)

        # Spatial path (Sec. 3.1): 1/8 resolution, wide.
        spatial = ConvBNReLU(spatial_filters[0], 7, strides=2, name="spatial_conv1")(x)
        spatial = ConvBNReLU(spatial_filters[1], 3, strides=2, name="spatial_conv2")(spatial)
        spatial = ConvBNReLU(spatial_filters[2], 3, strides=2, name="spatial_conv3")(spatial)
        spatial = ConvBNReLU(spatial_filters[3], 1, name="spatial_projection")(spatial)

        # Context path (Sec. 3.1, 3.2).
        features = encoder(x)
        pooled = keras.layers.GlobalAveragePooling2D(keepdims=True, name="global_pool")(features["C5"])
        pooled = ConvBNReLU(context_filters, 1, name="global_context")(pooled)
        deep = ConvBNReLU(context_filters, 3, name="refine32_conv")(features["C5"])
        deep = AttentionRefinementModule(name="refine32_attention")(deep)
        pooled = ResizeToReference("nearest", name="global_context_broadcast")(pooled, deep)
        deep = keras.layers.Add(name="context32_add")([deep, pooled])
        deep = ResizeToReference("nearest", name="context32_upsampling")(deep, features["C4"])
        context16 = ConvBNReLU(context_filters, 3, name="context32_conv")(deep)

        middle = ConvBNReLU(context_filters, 3, name="refine16_conv")(features["C4"])
        middle = AttentionRefinementModule(name="refine16_attention")(middle)
        middle = keras.layers.Add(name="context16_add")([middle, context16])
        middle = ResizeToReference("nearest", name="context16_upsampling")(middle, spatial)
        context8 = ConvBNReLU(context_filters, 3, name="context16_conv")(middle)

        # Feature fusion (Sec. 3.2) and the head.
        x = FeatureFusionModule(fusion_filters, name="feature_fusion")(spatial, context8)
        outputs = segmentation_head(x, num_classes, inputs, head_filters)

        auxiliary_loss_weights = None
        if auxiliary_heads:
            outputs = {MAIN_OUTPUT: outputs}
            for key, context in zip(AUXILIARY_OUTPUTS, (context8, context16)):
                outputs[key] = segmentation_head(context, num_classes, inputs, auxiliary_filters, name=key)
            auxiliary_loss_weights = {key: auxiliary_loss_weight for key in AUXILIARY_OUTPUTS}
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            num_classes=num_classes,
            image_shape=input_shape,
            include_preprocessing=include_preprocessing,
            auxiliary_loss_weights=auxiliary_loss_weights,
            **kwargs,
        )

        # === Config ===
        self.backbone_name = backbone
        self.spatial_filters = spatial_filters
        self.context_filters = context_filters
        self.fusion_filters = fusion_filters
        self.head_filters = head_filters
        self.auxiliary_heads = auxiliary_heads
        self.auxiliary_filters = auxiliary_filters
        self.auxiliary_loss_weight = auxiliary_loss_weight
        self.backbone_kwargs = dict(backbone_kwargs or {})

    def get_config(self):
        return {
            **self.base_config(),
            "backbone": self.backbone_name,
            "weights": None,
            "spatial_filters": self.spatial_filters,
            "context_filters": self.context_filters,
            "fusion_filters": self.fusion_filters,
            "head_filters": self.head_filters,
            "auxiliary_heads": self.auxiliary_heads,
            "auxiliary_filters": self.auxiliary_filters,
            "auxiliary_loss_weight": self.auxiliary_loss_weight,
            "backbone_kwargs": self.backbone_kwargs,
        }
