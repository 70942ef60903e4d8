"""DPT, the Dense Prediction Transformer (Ranftl, Bochkovskiy and Koltun, ICCV 2021)."""

import keras

from keras_sceneparse.backbones.vision_transformer import VisionTransformer
from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.layers.cropping import CropToReference
from keras_sceneparse.layers.padding import PadToMultiple
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.layers.transformer_blocks import (
    REASSEMBLE_SCALES,
    FeatureFusionBlock,
    ReassembleBlock,
)
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int

#: Per variant (Sec. 3 "Architecture details"): hooked layers (1-based) and Reassemble widths.
DPT_VARIANTS = {
    "base": {"hooks": (3, 6, 9, 12), "reassemble_filters": (96, 192, 384, 768)},
    "large": {"hooks": (6, 12, 18, 24), "reassemble_filters": (256, 512, 1024, 1024)},
}


@serializable
@register_model("dpt", variant="base")
class DPT(SegmentationModel):
    """DPT: a ViT encoder whose tokens from four layers are reassembled into a convolutional pyramid.

    Ranftl, Bochkovskiy and Koltun, "Vision Transformers for Dense Prediction", ICCV 2021,
    https://arxiv.org/abs/2103.13413.

    Architecture (Sec. 3, Fig. 1): a ViT-Base or ViT-Large on 16x16 patches
    (:func:`~keras_sceneparse.backbones.vision_transformer.VisionTransformer`) whose token
    sequences are read after layers 3, 6, 9, 12 (Base) or 6, 12, 18, 24 (Large). Each is
    reassembled (:class:`~keras_sceneparse.layers.transformer_blocks.ReassembleBlock`:
    readout token projected by default, Eq. 5; tokens placed on the patch grid; 1x1
    projection to 96, 192, 384, 768 channels for Base and 256, 512, 1024, 1024 for Large;
    resampled to 1/4, 1/8, 1/16, 1/32 of the image by 4x4/4 and 2x2/2 transposed
    convolutions, identity, and a 3x3/2 convolution), brought to 256 channels by a 3x3
    convolution, and fused coarse to fine by RefineNet-style fusion blocks
    (:class:`~keras_sceneparse.layers.transformer_blocks.FeatureFusionBlock`: residual
    convolution units, 2x upsampling, 1x1 projection), ending at 1/2 resolution. The
    segmentation head (Sec. 4.2 and the reference code): a 3x3 convolution with batch
    normalisation and ReLU, dropout 0.1, a 1x1 classifier, and 2x bilinear upsampling.

    Choices: inputs are zero-padded (after normalisation) at the bottom and right to a
    multiple of 32, so that every level of the pyramid is exactly twice the next, and the
    logits are cropped back: any input size works. Position embeddings are learned on the
    grid of ``image_size`` (384 for the ViT checkpoints DPT starts from; 480 was the ADE20K
    crop) and resized bilinearly to each input's grid (Sec. 3, "Handling varying image
    sizes"). Inputs are RGB in ``[0, 255]`` scaled to ``[-1, 1]`` (the reference code's
    mean/std of 0.5). The reference segmentation model also defines an auxiliary head that
    its forward pass never uses; it is left out. DPT-Hybrid (ResNet-50 stem) is not
    implemented. No pretrained weights (offline library).

    Parameters: the paper gives none for the segmentation models. Ours (150 classes,
    asserted exactly by a test): DPT-Base 109,996,886 trainable weights (110,004,566 with
    batch-norm statistics), of which 86,088,960 in the ViT-B/16 encoder (without its final
    LayerNorm, which DPT does not use); DPT-Large 342,148,758 trainable (measured, not
    asserted: the build is slow).

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        variant: ``"base"`` (ViT-B/16) or ``"large"`` (ViT-L/16).
        weights: ``None`` only (no pretrained weights ship with the library).
        image_size: resolution whose patch grid the position embeddings cover.
        readout: ``"project"`` (default), ``"add"`` or ``"ignore"`` (Sec. 3, Table 7).
        features: channels of the fusion blocks and head (256).
        hooks: 1-based transformer layers to read (``None``: the variant's).
        reassemble_filters: Reassemble widths (``None``: the variant's).
        hidden_dim, depth, num_heads: ViT overrides (small test models).
        drop_path_rate: encoder stochastic depth (0 in the reference code).
        dropout: dropout before the classifier (0.1).
        include_preprocessing: scale ``[0, 255]`` RGB inputs to ``[-1, 1]``.

    Example:
        >>> model = DPT(num_classes=150, variant="base")
        >>> logits = model(np.zeros((1, 97, 131, 3)))  # (1, 97, 131, 150)
    """

    feature_layer = "head_conv"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        variant="base",
        weights=None,
        image_size=384,
        readout="project",
        features=256,
        hooks=None,
        reassemble_filters=None,
        hidden_dim=None,
        depth=None,
        num_heads=None,
        drop_path_rate=0.0,
        dropout=0.1,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("variant", variant, DPT_VARIANTS)
        check_choice("weights", weights, {None})
        features = check_int("features", features, minimum=1)
        dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)
        hooks = tuple(hooks or DPT_VARIANTS[variant]["hooks"])
        reassemble_filters = tuple(reassemble_filters or DPT_VARIANTS[variant]["reassemble_filters"])
        for name, values in (("hooks", hooks), ("reassemble_filters", reassemble_filters)):
            if len(values) != 4:
                raise ValueError(f"`{name}` must have 4 values (one per pyramid level), got {values!r}.")

        # === Layers ===
        encoder = VisionTransformer(
            "large" if variant == "large" else "base", patch_size=16, image_size=image_size,
            input_shape=(None, None, input_shape[2]), hidden_dim=hidden_dim, depth=depth, num_heads=num_heads,
            drop_path_rate=drop_path_rate, output_blocks=hooks, final_norm=False, name=f"vit_{variant}",
        )
        reassemble = [
            ReassembleBlock(filters, scale, readout=readout, name=f"reassemble{level + 1}")
            for level, (filters, scale) in enumerate(zip(reassemble_filters, REASSEMBLE_SCALES))
        ]
        # The reference code's "scratch" 3x3 convolutions (no bias) to a common width.
        level_projections = [
            keras.layers.Conv2D(features, 3, padding="same", use_bias=False, name=f"level{level + 1}_projection")
            for level in range(4)
        ]
        fusions = [
            FeatureFusionBlock(use_batch_norm=True, fuse_skip=level < 3, name=f"fusion{level + 1}")
            for level in range(4)
        ]

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, "tf", include_preprocessing)
        padded = PadToMultiple(32, name="pad_to_stride")(x)
        tokens = encoder(padded)
        levels = [
            level_projections[level](reassemble[level](tokens[f"block{hook}"], tokens["patches"]))
            for level, hook in enumerate(hooks)
        ]
        x = fusions[3](levels[3])
        for level in (2, 1, 0):
            x = fusions[level](x, levels[level])
        x = ConvBNReLU(features, 3, name="head_conv")(x)
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
        x = keras.layers.Conv2D(num_classes, 1, name="classifier")(x)
        x = ResizeToReference(align_corners=True, name="output_upsampling")(x, padded)
        x = CropToReference(position="top_left", name="unpad")(x, inputs)
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
        self.variant = variant
        self.image_size = image_size
        self.readout = readout
        self.features = features
        self.hooks = hooks
        self.reassemble_filters = reassemble_filters
        self.hidden_dim = hidden_dim
        self.depth = depth
        self.num_heads = num_heads
        self.drop_path_rate = drop_path_rate
        self.dropout = dropout

    def get_config(self):
        return {
            **self.base_config(),
            "weights": None,
            "variant": self.variant,
            "image_size": self.image_size,
            "readout": self.readout,
            "features": self.features,
            "hooks": self.hooks,
            "reassemble_filters": self.reassemble_filters,
            "hidden_dim": self.hidden_dim,
            "depth": self.depth,
            "num_heads": self.num_heads,
            "drop_path_rate": self.drop_path_rate,
            "dropout": self.dropout,
        }
