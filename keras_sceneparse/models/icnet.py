"""ICNet (Zhao, Qi, Shen, Shi and Jia, ECCV 2018)."""

import keras

from keras_sceneparse.backbones.backbone import Backbone
from keras_sceneparse.layers.cascade_feature_fusion import CascadeFeatureFusion
from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.layers.pyramid_pooling import AdaptiveAveragePooling2D
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import MAIN_OUTPUT, SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int

#: ResNets, whose first block of stage 3 (``conv3_block1_out``) ends the shared layers.
RESNET_BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
SHARED_UNTIL = "conv3_block1_out"

#: Cascade label guidance (Sec. 3.4): outputs of the two CFF units' classifiers.
AUXILIARY_OUTPUTS = ("cascade_stride16", "cascade_stride8")


@serializable
@register_model("icnet")
class ICNet(SegmentationModel):
    """ICNet: an image cascade in which a deep network sees only a small copy of the image and
    light branches at higher resolutions recover the details.

    Zhao, Qi, Shen, Shi and Jia, "ICNet for Real-Time Semantic Segmentation on
    High-Resolution Images", ECCV 2018, https://arxiv.org/abs/1704.08545 (reference code:
    hszhao/ICNet, Caffe).

    Architecture (Sec. 3.2, Fig. 2):

    - Medium branch: the image downsampled by 2 goes through the backbone's first layers,
      up to the first block of stage 3 (``conv3_1``), giving 1/16-resolution features.
    - Low branch: those features, downsampled by 2 again (1/32), continue through the rest
      of the dilated backbone (stages 3-5 at output stride 8, i.e. 1/32 of the image: the
      low branch is PSPNet on the 1/4 image, its first layers' weights shared with the
      medium branch), then a light pyramid pooling: average pools of 1x1, 2x2, 3x3 and 6x6
      bins, upsampled and *summed* with the features (no per-level convolutions, as in the
      reference model), and a 1x1 convolution to 256 channels with BN and ReLU.
    - High branch: the full image through three 3x3 stride-2 convolutions (32, 32, 64
      channels, BN, ReLU) to 1/8.
    - Two :class:`~keras_sceneparse.layers.CascadeFeatureFusion` units (Sec. 3.3, Fig. 3,
      128 channels) fuse low with medium (1/16), then the result with high (1/8); a 1x1
      classifier scores the classes, upsampled bilinearly to the input.

    Cascade label guidance (Sec. 3.4, Eq. 1): each CFF unit's classifier on its upsampled
    low-resolution input is supervised with the labels downsampled to its size (1/16 and
    1/8), weights ``lambda = 0.4``; the main output has weight 1. The model returns
    ``{"logits": main, "cascade_stride16": ..., "cascade_stride8": ...}`` (the auxiliary
    logits at 1/16 and 1/8, the labels resized to them by nearest neighbour in the loss);
    ``predict`` returns the main logits only. ``auxiliary_heads=False`` builds the inference
    network alone (the paper discards these classifiers at test time).

    Choices:

    - Backbone: :class:`~keras_sceneparse.backbones.Backbone` ``("resnet50",
      output_stride=8)``, keras.applications' ResNet-50 (7x7 stem, convolution biases) for
      the paper's PSPNet50 (three 3x3 stem convolutions). Weight sharing: two functional
      sub-models of the one backbone, the layers up to ``conv3_block1_out`` and those from
      there to ``C5``, called on the medium and the low branch; both reuse the backbone's
      layers, so the shared stages have one set of weights. Any ResNet of
      :mod:`keras_sceneparse.backbones` works.
    - Downsampling of the image and of the shared features: 2x2 average pooling, which is
      bilinear downsampling by 2 with half-pixel centres ("same" padding at odd sizes).
    - The main loss is taken on the logits upsampled to the input, not at 1/4 as in the
      paper (the library's models all output input-size logits); the classifier is applied
      at 1/8, before the upsampling (the reference upsamples 2x first; a 1x1 convolution and
      bilinear upsampling commute up to the second resize).
    - The reference model's pruning of the kernels by half (Sec. 5) is not applied.

    Parameters: the paper gives none. Comparison tables in later papers quote 26.5 M for
    ICNet on ResNet-50, and OpenVINO's model zoo lists its ICNet (TensorFlow, CamVid, 12
    classes) with 26.7043 M; neither says which variant it counted, so no test compares
    with them (ours is 7% lower; the deep stem of PSPNet50 explains only ~0.1 M). Ours (19 classes, with batch-norm statistics;
    asserted by a test): 24,662,643 without the cascade classifiers, 24,669,977 with them.

    Args:
        num_classes: number of classes (19 for Cityscapes in the paper).
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: a ResNet (``"resnet50"``; ``"resnet18"`` ... ``"resnet152"``).
        weights: ``None`` or ``"imagenet"`` for the backbone.
        bins: bins of the summed pyramid pooling ((1, 2, 3, 6)).
        pyramid_filters: channels of the 1x1 convolution after the pyramid (256).
        high_filters: channels of the high branch's three convolutions ((32, 32, 64)).
        fusion_filters: channels of the CFF units (128).
        auxiliary_heads: build the cascade label guidance classifiers for training.
        auxiliary_loss_weight: ``lambda`` of the two guidance losses (0.4).
        backbone_kwargs: extra arguments of the backbone constructor.
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = ICNet(num_classes=19)
        >>> model.compile("adam", loss=ksp.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> model.fit(images, labels)  # main + 0.4 x (1/16 loss + 1/8 loss)
        >>> model.predict(images).shape
        (batch, height, width, 19)
    """

    feature_layer = "fused_features"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet50",
        weights=None,
        bins=(1, 2, 3, 6),
        pyramid_filters=256,
        high_filters=(32, 32, 64),
        fusion_filters=128,
        auxiliary_heads=True,
        auxiliary_loss_weight=0.4,
        backbone_kwargs=None,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("backbone", backbone, RESNET_BACKBONES)
        bins = tuple(check_int("bins[i]", size, minimum=1) for size in bins)
        pyramid_filters = check_int("pyramid_filters", pyramid_filters, minimum=1)
        high_filters = tuple(check_int("high_filters[i]", value, minimum=1) for value in high_filters)
        if len(high_filters) != 3:
            raise ValueError(f"`high_filters` must give 3 channel counts, got {high_filters!r}.")
        fusion_filters = check_int("fusion_filters", fusion_filters, minimum=1)
        auxiliary_heads = bool(auxiliary_heads)
        auxiliary_loss_weight = check_float("auxiliary_loss_weight", auxiliary_loss_weight, minimum=0.0)

        # === Layers ===
        encoder = Backbone(
            backbone,
            input_shape=input_shape,
            weights=weights,
            output_stride=8,
            application_kwargs=backbone_kwargs,
            name=f"{backbone}_backbone",
        )
        split = encoder.get_layer(SHARED_UNTIL).output
        shared_stages = keras.Model(encoder.input, split, name="shared_stages")
        deep_stages = keras.Model(split, encoder.output["C5"], name="deep_stages")
        num_outputs = num_classes if auxiliary_heads else None

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, encoder.normalization, include_preprocessing)

        # Medium and low branches (Sec. 3.2): 1/2 image -> 1/16; those features at 1/32 -> C5.
        half = keras.layers.AveragePooling2D(2, padding="same", name="image_downsampling")(x)
        medium = shared_stages(half)
        low = keras.layers.AveragePooling2D(2, padding="same", name="shared_downsampling")(medium)
        low = deep_stages(low)
        levels = [low]
        for size in bins:
            pooled = AdaptiveAveragePooling2D(size, name=f"pyramid_pool_{size}")(low)
            levels.append(ResizeToReference(align_corners=True, name=f"pyramid_upsampling_{size}")(pooled, low))
        low = keras.layers.Add(name="pyramid_sum")(levels)
        low = ConvBNReLU(pyramid_filters, 1, name="pyramid_projection")(low)

        # High branch: three light strided convolutions to 1/8.
        high = x
        for index, filters in enumerate(high_filters, start=1):
            high = ConvBNReLU(filters, 3, strides=2, name=f"high_conv{index}")(high)

        # Cascade feature fusion (Sec. 3.3) with label guidance (Sec. 3.4).
        fused = CascadeFeatureFusion(fusion_filters, num_outputs, name="cascade_fusion_stride16")(low, medium)
        guidance = []
        if auxiliary_heads:
            fused, guide = fused
            guidance.append(guide)
        fused = CascadeFeatureFusion(fusion_filters, num_outputs, name="cascade_fusion_stride8")(fused, high)
        if auxiliary_heads:
            fused, guide = fused
            guidance.append(guide)
        # A named tensor for `feature_layer` (the CFF layer returns a pair in training).
        fused = keras.layers.Identity(name="fused_features")(fused)
        y = keras.layers.Conv2D(num_classes, 1, name="classifier")(fused)
        y = ResizeToReference(name="output_upsampling")(y, inputs)
        outputs = self.logits_output(y)

        auxiliary_loss_weights = None
        if auxiliary_heads:
            outputs = {MAIN_OUTPUT: outputs}
            for key, guide in zip(AUXILIARY_OUTPUTS, guidance):
                outputs[key] = self.logits_output(guide, name=key)
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
        self.bins = bins
        self.pyramid_filters = pyramid_filters
        self.high_filters = high_filters
        self.fusion_filters = fusion_filters
        self.auxiliary_heads = auxiliary_heads
        self.auxiliary_loss_weight = auxiliary_loss_weight
        self.backbone_kwargs = dict(backbone_kwargs or {})

    def get_config(self):
        return {
            **self.base_config(),
            "backbone": self.backbone_name,
            "weights": None,
            "bins": self.bins,
            "pyramid_filters": self.pyramid_filters,
            "high_filters": self.high_filters,
            "fusion_filters": self.fusion_filters,
            "auxiliary_heads": self.auxiliary_heads,
            "auxiliary_loss_weight": self.auxiliary_loss_weight,
            "backbone_kwargs": self.backbone_kwargs,
        }
