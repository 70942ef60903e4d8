"""Mix Transformer (MiT-B0 ... MiT-B5), SegFormer's hierarchical encoder.

Xie, Wang, Yu, Anandkumar, Alvarez and Luo, "SegFormer: Simple and Efficient Design for
Semantic Segmentation with Transformers", NeurIPS 2021, https://arxiv.org/abs/2105.15203.

Sec. 3.1 and Appendix A (Table 6): four stages at strides 4, 8, 16 and 32. Each stage
starts with an overlapped patch embedding (a 7x7 stride-4 convolution for the first stage,
3x3 stride-2 after, each followed by LayerNorm), then ``depths[i]`` encoder blocks with
efficient self-attention (sequence reduction ratios 8, 4, 2, 1; 1, 2, 5, 8 heads) and
Mix-FFN (expansion 4), and ends with a LayerNorm. There is no positional encoding, so any
input size works. Stochastic depth grows linearly from 0 to ``drop_path_rate`` (0.1) over
all blocks, as in the reference code.

Choices: LayerNorm epsilon 1e-6 in the blocks and after each stage, 1e-5 in the patch
embeddings and the sequence reductions (the reference code's values). The
sequence-reduction convolutions pad ("same"), see
:class:`~keras_sceneparse.layers.transformer_blocks.MultiHeadSelfAttention`. No ImageNet
weights are shipped (offline library); ``keras_hub.models.MiTBackbone`` has them.

Parameters (asserted by tests): MiT-B0 3,319,392; MiT-B2 24,196,288, the same as
``keras_hub.models.MiTBackbone`` (the paper's Table 1 rounds them to 3.4M and 24.2M).
"""

import keras

from keras_sceneparse.layers.transformer_blocks import (
    PatchEmbedding,
    TransformerEncoderBlock,
)
from keras_sceneparse.utils.validation import (
    check_choice,
    check_float,
    check_image_shape,
    check_int,
)

#: Channels and blocks per stage (Xie et al., Appendix A, Table 6).
MIT_VARIANTS = {
    "b0": {"hidden_dims": (32, 64, 160, 256), "depths": (2, 2, 2, 2)},
    "b1": {"hidden_dims": (64, 128, 320, 512), "depths": (2, 2, 2, 2)},
    "b2": {"hidden_dims": (64, 128, 320, 512), "depths": (3, 4, 6, 3)},
    "b3": {"hidden_dims": (64, 128, 320, 512), "depths": (3, 4, 18, 3)},
    "b4": {"hidden_dims": (64, 128, 320, 512), "depths": (3, 8, 27, 3)},
    "b5": {"hidden_dims": (64, 128, 320, 512), "depths": (3, 6, 40, 3)},
}
#: Shared by every variant (Table 6): heads, reduction ratios, patch sizes and strides.
MIT_NUM_HEADS = (1, 2, 5, 8)
MIT_SEQUENCE_REDUCTIONS = (8, 4, 2, 1)
MIT_PATCH_SIZES = (7, 3, 3, 3)
MIT_STRIDES = (4, 2, 2, 2)
MIT_MLP_RATIO = 4


def MixTransformer(
    variant="b0",
    input_shape=(None, None, 3),
    hidden_dims=None,
    depths=None,
    num_heads=None,
    drop_path_rate=0.1,
    name=None,
):
    """Builds MiT-``variant`` as a functional model: images -> ``[stage1, ..., stage4]`` maps.

    The outputs are at strides 4, 8, 16 and 32 (``ceil(size / stride)`` for any size).

    Args:
        variant: ``"b0"`` ... ``"b5"``.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        hidden_dims, depths, num_heads: per-stage overrides of Table 6 (4 values each), e.g.
            for tiny test models; ``num_heads[i]`` must divide ``hidden_dims[i]``.
        drop_path_rate: stochastic depth of the last block.
        name: model name (default ``"mit_{variant}"``).
    """
    check_choice("variant", variant, MIT_VARIANTS)
    input_shape = check_image_shape(input_shape)
    hidden_dims = _per_stage("hidden_dims", hidden_dims or MIT_VARIANTS[variant]["hidden_dims"])
    depths = _per_stage("depths", depths or MIT_VARIANTS[variant]["depths"])
    num_heads = _per_stage("num_heads", num_heads or MIT_NUM_HEADS)
    for stage, (dim, heads) in enumerate(zip(hidden_dims, num_heads)):
        if dim % heads:
            raise ValueError(f"`num_heads[{stage}]`={heads} must divide `hidden_dims[{stage}]`={dim}.")
    drop_path_rate = check_float("drop_path_rate", drop_path_rate, minimum=0.0, maximum=1.0)
    total = sum(depths)
    rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]

    inputs = keras.Input(shape=input_shape, name="images")
    x = inputs
    outputs = []
    block_index = 0
    for stage in range(4):
        prefix = f"stage{stage + 1}"
        x = PatchEmbedding(
            hidden_dims[stage], MIT_PATCH_SIZES[stage], strides=MIT_STRIDES[stage], layer_norm=True,
            name=f"{prefix}_patch_embedding",
        )(x)
        for block in range(depths[stage]):
            x = TransformerEncoderBlock(
                num_heads[stage], mlp_ratio=MIT_MLP_RATIO, sequence_reduction=MIT_SEQUENCE_REDUCTIONS[stage],
                mix_ffn=True, drop_path=rates[block_index], epsilon=1e-6, name=f"{prefix}_block{block + 1}",
            )(x)
            block_index += 1
        x = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{prefix}_norm")(x)
        outputs.append(x)
    return keras.Model(inputs, outputs, name=name or f"mit_{variant}")


def _per_stage(name, values):
    values = tuple(values)
    if len(values) != 4:
        raise ValueError(f"`{name}` must have 4 values (one per stage), got {values!r}.")
    return tuple(check_int(f"{name}[i]", v, minimum=1) for v in values)
