"""Vision Transformer (ViT) encoder for dense prediction (Segmenter, DPT).

Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition at
Scale", ICLR 2021, https://arxiv.org/abs/2010.11929. Eqs. 1-4: the image is cut into
``P x P`` patches, linearly embedded (a convolution of kernel and stride ``P``), a learned
class token is prepended and learned position embeddings added; ``depth`` pre-norm
transformer layers (multi-head self-attention and a GELU MLP of 4x width) follow, and a
final LayerNorm. Sizes (Table 1 of the ViT paper, Table 1 of Segmenter): Tiny 192
channels/12 layers/3 heads, Small 384/12/6, Base 768/12/12, Large 1024/24/16.

For dense prediction the position embeddings are learned on the grid of the training
resolution (``image_size // patch_size``) and resized bilinearly to the grid of each input
(:class:`~keras_sceneparse.layers.transformer_blocks.PatchPositionEmbedding`), so any
image whose sides are multiples of the patch size works; the segmentation models pad to
such a multiple and crop back.

Choices: LayerNorm epsilon 1e-6 (timm's ViT, which Segmenter and DPT build on); no
classification head; no ImageNet weights (offline library).

Parameters (asserted by tests): ViT-B/16 on the 14x14 grid of 224x224 images, without
classifier, 85,798,656 (ViT paper / Segmenter Table 1: 86M).
"""

import keras

from keras_sceneparse.layers.transformer_blocks import (
    PatchEmbedding,
    PatchPositionEmbedding,
    TransformerEncoderBlock,
)
from keras_sceneparse.utils.validation import (
    check_choice,
    check_float,
    check_image_shape,
    check_int,
)

#: ``(hidden_dim, depth, num_heads)`` (Segmenter, Table 1; ViT, Table 1; DeiT for Tiny/Small).
VIT_VARIANTS = {
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
}


def VisionTransformer(
    variant="base",
    patch_size=16,
    image_size=224,
    input_shape=(None, None, 3),
    hidden_dim=None,
    depth=None,
    num_heads=None,
    mlp_ratio=4.0,
    dropout=0.0,
    drop_path_rate=0.1,
    output_blocks=None,
    final_norm=True,
    name=None,
):
    """Builds a ViT as a functional model: images -> dict of token sequences.

    The input's height and width must be multiples of ``patch_size`` (pad first). The
    outputs are ``"patches"``, the ``(B, h, w, C)`` patch embeddings (whose grid the
    decoders use to fold tokens back into maps), ``"tokens"``, the final sequence
    ``(B, 1 + h * w, C)`` (after the final LayerNorm when ``final_norm``), and
    ``"block{i}"`` for each 1-based ``i`` in ``output_blocks`` (the raw output of that
    transformer layer, DPT's hooks).

    Args:
        variant: ``"tiny"``, ``"small"``, ``"base"`` or ``"large"``.
        patch_size: ``P`` (16 or 8 in Segmenter).
        image_size: training resolution whose patch grid the position embeddings cover.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        hidden_dim, depth, num_heads: overrides of the variant's sizes (small test models).
        mlp_ratio: MLP width per channel (4).
        dropout: dropout after the embeddings and inside the layers.
        drop_path_rate: stochastic depth of the last layer, linear from 0.
        output_blocks: transformer layers whose outputs are returned too.
        final_norm: apply (and own) the final LayerNorm.
        name: model name (default ``"vit_{variant}"``).
    """
    check_choice("variant", variant, VIT_VARIANTS)
    input_shape = check_image_shape(input_shape)
    default_dim, default_depth, default_heads = VIT_VARIANTS[variant]
    hidden_dim = check_int("hidden_dim", hidden_dim or default_dim, minimum=1)
    depth = check_int("depth", depth or default_depth, minimum=1)
    num_heads = check_int("num_heads", num_heads or default_heads, minimum=1)
    if hidden_dim % num_heads:
        raise ValueError(f"`num_heads`={num_heads} must divide `hidden_dim`={hidden_dim}.")
    patch_size = check_int("patch_size", patch_size, minimum=1)
    image_size = check_int("image_size", image_size, minimum=patch_size)
    drop_path_rate = check_float("drop_path_rate", drop_path_rate, minimum=0.0, maximum=1.0)
    output_blocks = tuple(check_int("output_blocks[i]", b, minimum=1, maximum=depth) for b in (output_blocks or ()))

    inputs = keras.Input(shape=input_shape, name="images")
    patches = PatchEmbedding(hidden_dim, patch_size, name="patch_embedding")(inputs)
    x = PatchPositionEmbedding(image_size // patch_size, name="position_embedding")(patches)
    x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    outputs = {"patches": patches}
    for index in range(depth):
        x = TransformerEncoderBlock(
            num_heads, mlp_ratio=mlp_ratio, dropout=dropout, drop_path=drop_path_rate * index / max(depth - 1, 1),
            epsilon=1e-6, name=f"block{index + 1}",
        )(x)
        if index + 1 in output_blocks:
            outputs[f"block{index + 1}"] = x
    if final_norm:
        x = keras.layers.LayerNormalization(epsilon=1e-6, name="norm")(x)
    outputs["tokens"] = x
    return keras.Model(inputs, outputs, name=name or f"vit_{variant}")
