"""Segmenter (Strudel, Garcia, Laptev and Schmid, ICCV 2021)."""

import keras

from keras_sceneparse.backbones.vision_transformer import (
    VIT_VARIANTS,
    VisionTransformer,
)
from keras_sceneparse.layers.cropping import CropToReference
from keras_sceneparse.layers.padding import PadToMultiple
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.layers.transformer_blocks import MaskTransformer
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int


@serializable
@register_model("segmenter", variant="base")
class Segmenter(SegmentationModel):
    """Segmenter: a Vision Transformer encoder and a mask transformer decoder.

    Strudel, Garcia, Laptev and Schmid, "Segmenter: Transformer for Semantic
    Segmentation", ICCV 2021, https://arxiv.org/abs/2105.05633.

    Architecture (Sec. 3, Fig. 2): the encoder is a ViT
    (:func:`~keras_sceneparse.backbones.vision_transformer.VisionTransformer`; Table 1:
    Tiny, Small, Base, Large) on ``P x P`` patches (``P`` = 16, or 8), with learned position
    embeddings resized bilinearly to the input's patch grid (Sec. 3.1). The decoder is the
    mask transformer (Sec. 3.2,
    :class:`~keras_sceneparse.layers.transformer_blocks.MaskTransformer`): ``K`` learned
    class embeddings are processed jointly with the projected patch tokens by 2
    transformer layers; class masks are the scalar products of the L2-normalised patch and
    class embeddings, normalised by a LayerNorm over classes, reshaped to the patch grid
    and upsampled bilinearly to the image.

    Choices: images whose sides are not multiples of ``P`` are zero-padded (after
    normalisation, i.e. with the mean colour) at the bottom and right to the next multiple
    and the logits cropped back, as the reference code does. Inputs are RGB in
    ``[0, 255]`` scaled to ``[-1, 1]`` (the ViT checkpoints' mean/std of 0.5). The position
    embeddings are learned on the grid of ``image_size`` (512, the ADE20K crop). Stochastic
    depth 0.1 in the encoder, dropout 0.1 in the decoder (the reference configuration). No
    pretrained weights (offline library).

    Parameters: the paper gives the encoders' sizes only (Table 1: ViT-Ti 6M, S 22M, B
    86M, L 307M, counted at 224x224 with the ImageNet classifier). Ours, asserted by a
    test: the ViT-B/16 encoder at 224x224 without classifier 85,798,656 (within 1% of
    86M); Seg-B-Mask/16 for ADE20K (150 classes, 512x512 grid of 32x32 position
    embeddings) 102,497,580 weights, of which 16,063,020 in the decoder (slow test); Seg-T
    6,713,388 (asserted), Seg-S 26,033,964 and Seg-L 332,644,652 (measured). The reference
    code's counts would add the unused 1000-way ViT classifier.

    Args:
        num_classes: number of classes ``K``.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        variant: ``"tiny"``, ``"small"``, ``"base"`` or ``"large"``.
        weights: ``None`` only (no pretrained weights ship with the library).
        patch_size: 16 or 8 (any positive size is accepted).
        image_size: resolution whose patch grid the position embeddings cover.
        hidden_dim, depth, num_heads: encoder overrides (small test models).
        decoder_layers: mask transformer layers (2).
        decoder_heads: decoder heads (``None``: ``hidden_dim // 64``).
        drop_path_rate: encoder stochastic depth (0.1).
        decoder_dropout: dropout inside the decoder layers (0.1).
        include_preprocessing: scale ``[0, 255]`` RGB inputs to ``[-1, 1]``.

    Example:
        >>> model = Segmenter(num_classes=150, variant="tiny")
        >>> logits = model(np.zeros((1, 97, 131, 3)))  # (1, 97, 131, 150)
    """

    feature_layer = "mask_transformer"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        variant="base",
        weights=None,
        patch_size=16,
        image_size=512,
        hidden_dim=None,
        depth=None,
        num_heads=None,
        decoder_layers=2,
        decoder_heads=None,
        drop_path_rate=0.1,
        decoder_dropout=0.1,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("variant", variant, VIT_VARIANTS)
        check_choice("weights", weights, {None})
        patch_size = check_int("patch_size", patch_size, minimum=1)
        decoder_layers = check_int("decoder_layers", decoder_layers, minimum=1)
        decoder_dropout = check_float("decoder_dropout", decoder_dropout, minimum=0.0, maximum=1.0)

        # === Layers ===
        encoder = VisionTransformer(
            variant, patch_size=patch_size, image_size=image_size, input_shape=(None, None, input_shape[2]),
            hidden_dim=hidden_dim, depth=depth, num_heads=num_heads, drop_path_rate=drop_path_rate,
            name=f"vit_{variant}",
        )
        decoder = MaskTransformer(
            num_classes, num_layers=decoder_layers, num_heads=decoder_heads, dropout=decoder_dropout,
            name="mask_transformer",
        )

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, "tf", include_preprocessing)
        padded = PadToMultiple(patch_size, name="pad_to_patches")(x)
        features = encoder(padded)
        masks = decoder(features["tokens"], features["patches"])
        x = ResizeToReference(name="mask_upsampling")(masks, padded)
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
        self.patch_size = patch_size
        self.image_size = image_size
        self.hidden_dim = hidden_dim
        self.depth = depth
        self.num_heads = num_heads
        self.decoder_layers = decoder_layers
        self.decoder_heads = decoder_heads
        self.drop_path_rate = drop_path_rate
        self.decoder_dropout = decoder_dropout

    def get_config(self):
        return {
            **self.base_config(),
            "weights": None,
            "variant": self.variant,
            "patch_size": self.patch_size,
            "image_size": self.image_size,
            "hidden_dim": self.hidden_dim,
            "depth": self.depth,
            "num_heads": self.num_heads,
            "decoder_layers": self.decoder_layers,
            "decoder_heads": self.decoder_heads,
            "drop_path_rate": self.drop_path_rate,
            "decoder_dropout": self.decoder_dropout,
        }
