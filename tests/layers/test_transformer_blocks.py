"""Transformer blocks: patch and position embeddings, (efficient) self-attention, MLP /
Mix-FFN, encoder blocks, Segmenter's mask transformer, DPT's reassemble and fusion blocks.

The numerical tests give the layers random weights and compare them with the papers'
equations written out in NumPy.
"""

import math

import keras
import numpy as np
import pytest

from keras_sceneparse.layers.transformer_blocks import (
    FeatureFusionBlock,
    MaskTransformer,
    MixFFN,
    MultiHeadSelfAttention,
    PatchEmbedding,
    PatchPositionEmbedding,
    ReassembleBlock,
    TransformerEncoderBlock,
    TransformerMLP,
)
from tests.harness import run_layer_test

rng = np.random.default_rng(7)
MAP = rng.normal(size=(2, 7, 5, 8)).astype("float32")
SEQUENCE = rng.normal(size=(2, 6, 8)).astype("float32")
IMAGE = rng.normal(size=(2, 11, 13, 3)).astype("float32")
GRID = rng.normal(size=(2, 3, 4, 8)).astype("float32")
TOKENS = rng.normal(size=(2, 1 + 3 * 4, 8)).astype("float32")


UNKNOWN_MAP = [(None, None, 8)]
TOKENS_AND_GRID = [(None, 8), (None, None, 8)]

# One entry per layer (the numerical tests below cover the other options).
HARNESS_CASES = [
    # SegFormer's overlapping 7x7/4 patches with padding 3: ceil(11 / 4) x ceil(13 / 4).
    (PatchEmbedding, {"hidden_dim": 4, "patch_size": 7, "strides": 4, "layer_norm": True}, IMAGE, (2, 3, 4, 4),
     [(None, None, 3)]),
    # Embeddings learned on a 2x2 grid, resized to the 7x5 grid (and to unknown sizes).
    (PatchPositionEmbedding, {"grid_size": 2}, MAP, (2, 36, 8), UNKNOWN_MAP),
    (MultiHeadSelfAttention, {"num_heads": 2, "sequence_reduction": 2}, MAP, MAP.shape, UNKNOWN_MAP),
    (TransformerMLP, {"mlp_dim": 16}, SEQUENCE, SEQUENCE.shape, None),
    (MixFFN, {"mlp_dim": 16}, MAP, MAP.shape, UNKNOWN_MAP),
    (TransformerEncoderBlock, {"num_heads": 2, "sequence_reduction": 4, "mix_ffn": True, "drop_path": 0.1}, MAP,
     MAP.shape, UNKNOWN_MAP),
    (MaskTransformer, {"num_classes": 5, "num_layers": 1, "hidden_dim": 12, "num_heads": 3}, (TOKENS, GRID),
     (2, 3, 4, 5), TOKENS_AND_GRID),
    (ReassembleBlock, {"filters": 6, "scale": 4, "readout": "project"}, (TOKENS, GRID), (2, 12, 16, 6),
     TOKENS_AND_GRID),
    (ReassembleBlock, {"filters": 6, "scale": 0.5, "readout": "add"}, (TOKENS, GRID), (2, 2, 2, 6), TOKENS_AND_GRID),
    (FeatureFusionBlock, {}, (GRID, GRID), (2, 6, 8, 8), [(None, None, 8)] * 2),
]


@pytest.mark.parametrize(
    "layer_cls,kwargs,data,shape,symbolic", HARNESS_CASES, ids=lambda v: getattr(v, "__name__", None)
)
def test_layer_harness(layer_cls, kwargs, data, shape, symbolic):
    run_layer_test(layer_cls, kwargs, data, shape, symbolic_input_shape=symbolic)


@pytest.mark.parametrize("scale,readout,size", [(4, "project", (12, 16)), (2, "add", (6, 8)), (1, "ignore", (3, 4)),
                                                (0.5, "project", (2, 2))])
def test_reassemble_output_sizes(scale, readout, size):
    layer = ReassembleBlock(6, scale, readout=readout)
    assert tuple(layer(TOKENS, GRID).shape) == (2, *size, 6)
    assert tuple(layer.compute_output_shape(TOKENS.shape, GRID.shape)) == (2, *size, 6)


def test_fusion_block_without_skip_doubles_the_size():
    layer = FeatureFusionBlock(fuse_skip=False, use_batch_norm=False)
    assert tuple(layer(GRID).shape) == (2, 6, 8, 8)
    assert not layer.skip_unit


def test_fusion_block_rejects_a_missing_skip():
    with pytest.raises(ValueError, match="without a skip"):
        FeatureFusionBlock()(GRID)


def test_attention_heads_must_divide_channels():
    with pytest.raises(ValueError, match="num_heads"):
        MultiHeadSelfAttention(3)(SEQUENCE)


# --- NumPy references ------------------------------------------------------------------------


def randomize(layer, seed=0):
    generator = np.random.default_rng(seed)
    for weight in layer.weights:
        if weight.path.endswith("moving_variance"):
            value = generator.uniform(0.5, 1.5, weight.shape)
        else:
            value = generator.normal(scale=0.3, size=weight.shape)
        weight.assign(value.astype("float32"))


def weights_of(layer):
    """``{"query/kernel": array, ...}``: the layer's weights by their path inside the layer."""
    prefix = layer.name + "/"
    return {w.path.split(prefix, 1)[-1]: keras.ops.convert_to_numpy(w).astype("float64") for w in layer.weights}


def dense(x, w, name):
    y = x @ w[f"{name}/kernel"]
    return y + w[f"{name}/bias"] if f"{name}/bias" in w else y


def layer_norm(x, gamma, beta, epsilon):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def reduce_sequence(x, kernel, bias, r):
    """An r x r stride-r convolution with "same" padding (zeros, split like TensorFlow's)."""
    height, width, channels = x.shape
    out_h, out_w = -(-height // r), -(-width // r)
    pad_h, pad_w = max((out_h - 1) * r + r - height, 0), max((out_w - 1) * r + r - width, 0)
    padded = np.zeros((height + pad_h, width + pad_w, channels))
    padded[pad_h // 2 : pad_h // 2 + height, pad_w // 2 : pad_w // 2 + width] = x
    out = np.zeros((out_h, out_w, kernel.shape[-1]))
    for i in range(out_h):
        for j in range(out_w):
            patch = padded[i * r : i * r + r, j * r : j * r + r]
            out[i, j] = np.einsum("abc,abcd->d", patch, kernel) + bias
    return out.reshape(-1, kernel.shape[-1])


def numpy_attention(x, w, num_heads, r, epsilon=1e-5):
    """softmax(Q K^T / sqrt(d)) V per head, K and V from the reduced sequence (SegFormer, Eq. 2)."""
    sequence = x.reshape(-1, x.shape[-1])
    context = sequence
    if r > 1:
        context = reduce_sequence(x, w["reduction/kernel"], w["reduction/bias"], r)
        context = layer_norm(context, w["reduction_norm/gamma"], w["reduction_norm/beta"], epsilon)
    q, k, v = dense(sequence, w, "query"), dense(context, w, "key"), dense(context, w, "value")
    d = x.shape[-1] // num_heads
    heads = []
    for h in range(num_heads):
        part = slice(h * d, (h + 1) * d)
        heads.append(softmax(q[:, part] @ k[:, part].T / np.sqrt(d)) @ v[:, part])
    return dense(np.concatenate(heads, -1), w, "output_projection").reshape(x.shape)


@pytest.mark.parametrize("num_heads,r,shape", [(2, 2, (6, 4)), (2, 2, (7, 5)), (1, 4, (7, 5)), (4, 1, (3, 5))])
def test_efficient_self_attention_matches_the_formula(num_heads, r, shape):
    x = rng.normal(size=(2, *shape, 8)).astype("float32")
    layer = MultiHeadSelfAttention(num_heads, sequence_reduction=r)
    layer.build(x.shape)
    randomize(layer)
    expected = np.stack([numpy_attention(x[b].astype("float64"), weights_of(layer), num_heads, r) for b in range(2)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, atol=1e-4, rtol=1e-4)


def test_reduction_shortens_the_keys():
    # R = 2 on a 6 x 4 map: 24 queries attend to 3 x 2 = 6 keys.
    layer = MultiHeadSelfAttention(1, sequence_reduction=2)
    layer.build(MAP.shape)
    reduced = layer.reduction_norm(layer.reduction(MAP[:, :6, :4]))
    assert tuple(reduced.shape) == (2, 3, 2, 8)


def test_sequence_attention_matches_the_formula():
    layer = MultiHeadSelfAttention(2)
    layer.build(SEQUENCE.shape)
    randomize(layer, seed=3)
    expected = np.stack(
        [numpy_attention(SEQUENCE[b][None].astype("float64"), weights_of(layer), 2, 1)[0] for b in range(2)]
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(SEQUENCE)), expected, atol=1e-4, rtol=1e-4)


def depthwise_3x3(x, kernel, bias):
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] = (padded[i : i + 3, j : j + 3] * kernel[:, :, :, 0]).sum((0, 1)) + bias
    return out


def test_mix_ffn_matches_equation_3():
    layer = MixFFN(12)
    layer.build(MAP.shape)
    randomize(layer)
    w = weights_of(layer)
    expected = []
    for b in range(2):
        hidden = dense(MAP[b].astype("float64"), w, "dense_in")
        hidden = gelu(depthwise_3x3(hidden, w["depthwise/kernel"], w["depthwise/bias"]))
        expected.append(dense(hidden, w, "dense_out"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(MAP)), np.stack(expected), atol=1e-4, rtol=1e-4)


def test_encoder_block_is_pre_norm_residual():
    block = TransformerEncoderBlock(2, mlp_ratio=2.0)
    block.build(SEQUENCE.shape)
    randomize(block)
    w = weights_of(block)
    x = SEQUENCE.astype("float64")
    attention_in = layer_norm(x, w["attention_norm/gamma"], w["attention_norm/beta"], 1e-6)
    attention_w = {k.split("attention/", 1)[1]: v for k, v in w.items() if k.startswith("attention/")}
    x = x + np.stack([numpy_attention(a[None], attention_w, 2, 1)[0] for a in attention_in])
    mlp_in = layer_norm(x, w["mlp_norm/gamma"], w["mlp_norm/beta"], 1e-6)
    x = x + dense(gelu(dense(mlp_in, w, "mlp/dense_in")), w, "mlp/dense_out")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(block(SEQUENCE)), x, atol=1e-4, rtol=1e-4)


def test_position_embedding_is_unchanged_on_its_own_grid():
    layer = PatchPositionEmbedding((3, 4))
    layer.build(GRID.shape)
    randomize(layer)
    w = weights_of(layer)
    out = keras.ops.convert_to_numpy(layer(GRID))
    position = w["position_embedding"][0]
    np.testing.assert_allclose(out[:, 0], np.broadcast_to(w["class_embedding"][0, 0] + position[0], (2, 8)), atol=1e-6)
    np.testing.assert_allclose(out[:, 1:], GRID.reshape(2, 12, 8) + position[1:], atol=1e-6)


def test_position_embedding_is_interpolated_on_other_grids():
    layer = PatchPositionEmbedding((3, 4), class_token=False)
    layer.build(GRID.shape)
    # Embeddings constant along rows and linear along columns stay so after bilinear
    # resizing (half-pixel centres, clamped at the borders).
    columns = np.linspace(-1.0, 1.0, 4)
    grid = np.broadcast_to(columns[None, :, None], (3, 4, 8)).reshape(1, 12, 8)
    layer.position_embedding.assign(grid.astype("float32"))
    zeros = np.zeros((1, 5, 8, 8), "float32")
    out = keras.ops.convert_to_numpy(layer(zeros)).reshape(5, 8, 8)
    source = np.clip((np.arange(8) + 0.5) * 4 / 8 - 0.5, 0, 3)
    expected = np.interp(source, np.arange(4), columns)
    np.testing.assert_allclose(out, np.broadcast_to(expected[None, :, None], (5, 8, 8)), atol=1e-6)


def test_mask_transformer_masks_are_normalised_products():
    layer = MaskTransformer(6, num_layers=1, hidden_dim=12, num_heads=2)
    layer.build(TOKENS.shape, GRID.shape)
    randomize(layer)
    layer.mask_norm.gamma.assign(np.ones(6, "float32"))
    layer.mask_norm.beta.assign(np.zeros(6, "float32"))
    masks = keras.ops.convert_to_numpy(layer(TOKENS, GRID))
    assert masks.shape == (2, 3, 4, 6)
    # LayerNorm over the classes.
    np.testing.assert_allclose(masks.mean(-1), 0.0, atol=1e-5)
    # Unit variance up to the LayerNorm's epsilon (the cosine similarities vary little).
    assert np.all((masks.var(-1) > 0.9) & (masks.var(-1) <= 1.0 + 1e-5))
    # The products are of L2-normalised embeddings: scaling a projection changes nothing.
    for projection in (layer.patch_projection, layer.class_projection):
        projection.kernel.assign(projection.kernel * 3.0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(TOKENS, GRID)), masks, atol=1e-4)


def test_reassemble_project_readout_matches_equation_5():
    layer = ReassembleBlock(5, 1, readout="project")
    layer.build(TOKENS.shape, GRID.shape)
    randomize(layer)
    w = weights_of(layer)
    tokens = TOKENS.astype("float64")
    readout = np.broadcast_to(tokens[:, :1], tokens[:, 1:].shape)
    patches = gelu(dense(np.concatenate([tokens[:, 1:], readout], -1), w, "readout_projection"))
    expected = (patches @ w["projection/kernel"][0, 0] + w["projection/bias"]).reshape(2, 3, 4, 5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(TOKENS, GRID)), expected, atol=1e-4, rtol=1e-4)


def aligned_upsample_2x(x):
    """Bilinear 2x upsampling with aligned corners (PyTorch align_corners=True), one image."""
    def axis_weights(n):
        positions = np.arange(2 * n) * (n - 1) / max(2 * n - 1, 1)
        matrix = np.zeros((2 * n, n))
        for i, p in enumerate(positions):
            low = int(np.floor(p))
            high = min(low + 1, n - 1)
            matrix[i, low] += 1 - (p - low)
            matrix[i, high] += p - low
        return matrix

    rows, cols = axis_weights(x.shape[0]), axis_weights(x.shape[1])
    return np.einsum("ia,jb,abc->ijc", rows, cols, x)


def test_fusion_block_with_identity_units_upsamples_the_sum():
    layer = FeatureFusionBlock(use_batch_norm=False)
    layer.build(GRID.shape, GRID.shape)
    for unit in layer.skip_unit + layer.fused_unit:
        unit.kernel.assign(np.zeros(unit.kernel.shape, "float32"))
        unit.bias.assign(np.zeros(unit.bias.shape, "float32"))
    layer.output_projection.kernel.assign(np.eye(8, dtype="float32")[None, None])
    skip = GRID[:, ::-1]
    out = keras.ops.convert_to_numpy(layer(GRID, skip))
    expected = np.stack([aligned_upsample_2x((GRID + skip)[b].astype("float64")) for b in range(2)])
    np.testing.assert_allclose(out, expected, atol=1e-5)
