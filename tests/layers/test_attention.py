"""Attention blocks: NonLocalBlock, PositionAttention, ChannelAttention, CrissCrossAttention, GlobalContextBlock.

Each numerical test gives the layer random weights (the papers' zero initialisations make
every block the identity at first) and compares its output with the paper's equations
written out in NumPy, position by position.
"""


import keras
import numpy as np
import pytest

from keras_sceneparse.layers.criss_cross_attention import CrissCrossAttention
from keras_sceneparse.layers.dual_attention import ChannelAttention, PositionAttention
from keras_sceneparse.layers.global_context import GlobalContextBlock
from keras_sceneparse.layers.non_local import NonLocalBlock
from tests.harness import OTHER_BACKENDS, run_layer_test, run_under_backend

# Not seed 0: the harness fits to default_rng(0) noise, which these blocks (the identity at first) would already output.
rng = np.random.default_rng(7)
FEATURES = rng.normal(size=(2, 9, 7, 16)).astype("float32")
UNKNOWN = [(None, None, 16)]

HARNESS_CASES = [
    (NonLocalBlock, {}),
    (NonLocalBlock, {"reduction": 4, "use_scale": True, "sub_sample": True}),
    (PositionAttention, {}),
    (PositionAttention, {"reduction": 2}),
    (ChannelAttention, {}),
    (ChannelAttention, {"subtract_from_max": False}),
    (CrissCrossAttention, {}),
    (CrissCrossAttention, {"reduction": 4, "recurrence": 2}),
    (GlobalContextBlock, {}),
    (GlobalContextBlock, {"bottleneck_ratio": 4, "zero_init": False}),
]


@pytest.mark.parametrize("layer_cls,kwargs", HARNESS_CASES, ids=lambda v: getattr(v, "__name__", None))
def test_layer_harness(layer_cls, kwargs):
    run_layer_test(layer_cls, kwargs, FEATURES, FEATURES.shape, symbolic_input_shape=UNKNOWN)


# --- helpers ---------------------------------------------------------------------------------


def randomize(layer, seed=0):
    """Random values for every weight of a built layer; positive batch-norm variances."""
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


def conv1x1(x, weights, name):
    """A 1x1 convolution in NumPy, from the Keras kernel ``(1, 1, C_in, C_out)`` and bias."""
    y = x @ weights[f"{name}/kernel"][0, 0]
    return y + weights[f"{name}/bias"] if f"{name}/bias" in weights else y


def softmax(values):
    values = np.asarray(values, "float64")
    exponentials = np.exp(values - values.max())
    return exponentials / exponentials.sum()


def output_of(layer, x, **kwargs):
    return keras.ops.convert_to_numpy(layer(x, **kwargs)).astype("float64")


# --- non-local block -------------------------------------------------------------------------


def numpy_max_pool_2x2(x):
    """2x2 max pooling with stride 2; odd sizes keep their last row/column (ceil mode)."""
    height, width = x.shape[:2]
    out = np.zeros((-(-height // 2), -(-width // 2), x.shape[2]))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = x[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].max(axis=(0, 1))
    return out


def numpy_non_local(x, w, use_scale, sub_sample, epsilon):
    """Eq. 1 with the embedded Gaussian f (Eq. 3), then z = BN(W_z y) + x (Eq. 6)."""
    out = np.zeros_like(x, dtype="float64")
    for b in range(x.shape[0]):
        theta, phi, g = (conv1x1(x[b], w, name) for name in ("theta", "phi", "g"))
        if sub_sample:
            phi, g = numpy_max_pool_2x2(phi), numpy_max_pool_2x2(g)
        phi, g = phi.reshape(-1, phi.shape[-1]), g.reshape(-1, g.shape[-1])
        y = np.zeros(theta.shape)
        for i in np.ndindex(theta.shape[:2]):
            energies = [theta[i] @ phi_j for phi_j in phi]
            if use_scale:
                energies = np.array(energies) / np.sqrt(theta.shape[-1])
            y[i] = softmax(energies) @ g
        z = y @ w["output_conv/kernel"][0, 0]
        z = (z - w["output_bn/moving_mean"]) / np.sqrt(w["output_bn/moving_variance"] + epsilon)
        out[b] = z * w["output_bn/gamma"] + w["output_bn/beta"] + x[b]
    return out


@pytest.mark.parametrize("use_scale,sub_sample", [(False, False), (True, True), (False, True)])
def test_non_local_block_matches_the_paper(use_scale, sub_sample):
    layer = NonLocalBlock(use_scale=use_scale, sub_sample=sub_sample)
    layer.build(FEATURES.shape)
    randomize(layer)
    expected = numpy_non_local(FEATURES, weights_of(layer), use_scale, sub_sample, layer.output_norm.epsilon)
    np.testing.assert_allclose(output_of(layer, FEATURES, training=False), expected, rtol=1e-4, atol=1e-4)


def test_non_local_embeddings_are_half_the_input():
    layer = NonLocalBlock()
    layer.build((None, None, None, 16))
    assert [tuple(l.kernel.shape) for l in (layer.theta, layer.phi, layer.g)] == [(1, 1, 16, 8)] * 3
    assert tuple(layer.output_conv.kernel.shape) == (1, 1, 8, 16) and not layer.output_conv.use_bias


# --- dual attention (DANet) ----------------------------------------------------------------


def numpy_position_attention(x, w):
    """Eq. 1-2: s_ji = softmax_i(B_i . C_j), E_j = alpha sum_i s_ji D_i + A_j (B key, C query)."""
    out = np.zeros_like(x, dtype="float64")
    for b in range(x.shape[0]):
        key = conv1x1(x[b], w, "key").reshape(-1, w["key/kernel"].shape[-1])  # B
        query = conv1x1(x[b], w, "query").reshape(-1, w["query/kernel"].shape[-1])  # C
        value = conv1x1(x[b], w, "value").reshape(-1, x.shape[-1])  # D
        flat = x[b].reshape(-1, x.shape[-1])
        result = np.zeros_like(flat, dtype="float64")
        for j in range(flat.shape[0]):
            s_j = softmax([key[i] @ query[j] for i in range(flat.shape[0])])
            result[j] = w["alpha"] * sum(s_j[i] * value[i] for i in range(flat.shape[0])) + flat[j]
        out[b] = result.reshape(x.shape[1:])
    return out


def numpy_channel_attention(x, w, subtract_from_max):
    """Eq. 3-4 over channel maps A_i (optionally the released code's max - energy)."""
    out = np.zeros_like(x, dtype="float64")
    for b in range(x.shape[0]):
        maps = x[b].reshape(-1, x.shape[-1]).T.astype("float64")  # (C, N): maps[i] = A_i
        result = np.zeros_like(maps)
        for j in range(maps.shape[0]):
            energies = np.array([maps[i] @ maps[j] for i in range(maps.shape[0])])
            if subtract_from_max:
                energies = energies.max() - energies
            x_j = softmax(energies)
            result[j] = w["beta"] * (x_j @ maps) + maps[j]
        out[b] = result.T.reshape(x.shape[1:])
    return out


def test_position_attention_matches_the_paper():
    layer = PositionAttention()
    layer.build(FEATURES.shape)
    randomize(layer)
    assert layer.key_channels == 2  # C / 8
    expected = numpy_position_attention(FEATURES, weights_of(layer))
    np.testing.assert_allclose(output_of(layer, FEATURES), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("subtract_from_max", [True, False])
def test_channel_attention_matches_the_paper(subtract_from_max):
    # Small features keep the channel energies (sums over all positions) in softmax's useful range.
    x = 0.2 * FEATURES
    layer = ChannelAttention(subtract_from_max=subtract_from_max)
    layer.build(x.shape)
    randomize(layer)
    expected = numpy_channel_attention(x, weights_of(layer), subtract_from_max)
    np.testing.assert_allclose(output_of(layer, x), expected, rtol=1e-4, atol=1e-4)
    # The two variants differ: max - energy favours the least similar channels.
    other = numpy_channel_attention(x, weights_of(layer), not subtract_from_max)
    assert np.abs(other - expected).max() > 1e-2


# --- criss-cross attention (CCNet) ---------------------------------------------------------


def numpy_criss_cross(x, w):
    """Sec. 3.2: affinities with the H + W - 1 positions of u's column and row (u once), one softmax."""
    batch, height, width, _ = x.shape
    out = np.zeros_like(x, dtype="float64")
    for b in range(batch):
        query, key, value = (conv1x1(x[b], w, name) for name in ("query", "key", "value"))
        for y in range(height):
            for x_ in range(width):
                path = [(row, x_) for row in range(height)] + [(y, col) for col in range(width) if col != x_]
                assert len(path) == height + width - 1
                attention = softmax([query[y, x_] @ key[p] for p in path])
                aggregated = sum(a * value[p] for a, p in zip(attention, path))
                out[b, y, x_] = w["gamma"] * aggregated + x[b, y, x_]
    return out


def test_criss_cross_attention_matches_the_paper():
    layer = CrissCrossAttention()
    layer.build(FEATURES.shape)
    randomize(layer)
    expected = numpy_criss_cross(FEATURES, weights_of(layer))
    np.testing.assert_allclose(output_of(layer, FEATURES), expected, rtol=1e-4, atol=1e-4)


def test_recurrent_criss_cross_attention_shares_its_weights():
    x = FEATURES[:1, :6, :5]
    layer = CrissCrossAttention(recurrence=2)
    layer.build(x.shape)
    randomize(layer, seed=3)
    assert len(layer.weights) == 7  # one set of query/key/value convolutions and gamma
    weights = weights_of(layer)
    expected = numpy_criss_cross(numpy_criss_cross(x, weights), weights)
    np.testing.assert_allclose(output_of(layer, x), expected, rtol=1e-4, atol=1e-4)


def test_two_criss_cross_loops_reach_every_position():
    # Sec. 3.3: after R = 2 loops, each output depends on every input position.
    layer = CrissCrossAttention(recurrence=2)
    layer.build((1, 5, 6, 16))
    randomize(layer, seed=1)
    x = FEATURES[:1, :5, :6]
    base = output_of(layer, x)
    moved = x.copy()
    moved[0, 4, 5] += 5.0  # a corner, off the criss-cross path of (0, 0)
    change = np.abs(output_of(layer, moved) - base)[0, 0, 0].max()
    single = CrissCrossAttention(recurrence=1)
    single.build((1, 5, 6, 16))
    for source, target in zip(layer.weights, single.weights):
        target.assign(source)
    single_change = np.abs(output_of(single, moved) - output_of(single, x))[0, 0, 0].max()
    assert change > 1e-5 and single_change == 0.0


# --- global context block (GCNet) ----------------------------------------------------------


def numpy_global_context(x, w, epsilon=1e-5):
    """Fig. 4(d): softmax attention pooling, bottleneck with LayerNorm and ReLU, addition."""
    out = np.zeros_like(x, dtype="float64")
    for b in range(x.shape[0]):
        flat = x[b].reshape(-1, x.shape[-1]).astype("float64")
        weights = softmax([conv1x1(x_j, w, "attention_mask")[0] for x_j in flat])
        context = sum(a * x_j for a, x_j in zip(weights, flat))
        hidden = conv1x1(context, w, "bottleneck")
        hidden = (hidden - hidden.mean()) / np.sqrt(hidden.var() + epsilon)
        hidden = np.maximum(hidden * w["layer_norm/gamma"] + w["layer_norm/beta"], 0.0)
        out[b] = x[b] + conv1x1(hidden, w, "expansion")
    return out


@pytest.mark.parametrize("ratio", [16, 4])
def test_global_context_block_matches_the_paper(ratio):
    layer = GlobalContextBlock(bottleneck_ratio=ratio)
    layer.build(FEATURES.shape)
    randomize(layer)
    assert layer.hidden_channels == 16 // ratio
    expected = numpy_global_context(FEATURES, weights_of(layer))
    np.testing.assert_allclose(output_of(layer, FEATURES), expected, rtol=1e-4, atol=1e-4)


# --- shared properties ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer",
    [NonLocalBlock(), PositionAttention(), ChannelAttention(), CrissCrossAttention(recurrence=2), GlobalContextBlock()],
    ids=lambda layer: type(layer).__name__,
)
def test_blocks_start_as_the_identity(layer):
    # Zero-initialised BN scale (NL Sec. 4), alpha/beta (DANet), gamma (CCNet code), W_v2 (GCNet code).
    np.testing.assert_allclose(output_of(layer, FEATURES, training=False), FEATURES, atol=1e-6)


@pytest.mark.parametrize("layer_cls", [NonLocalBlock, PositionAttention, CrissCrossAttention, GlobalContextBlock])
def test_errors_name_the_argument(layer_cls):
    argument = {
        NonLocalBlock: "reduction", PositionAttention: "reduction", CrissCrossAttention: "recurrence",
        GlobalContextBlock: "bottleneck_ratio",
    }[layer_cls]
    with pytest.raises(ValueError, match=argument):
        layer_cls(**{argument: 0})




@pytest.mark.slow  # a fresh process per backend; tests/backends covers the mechanism by default
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_same_outputs_under_other_backend(backend, tmp_path):
    inputs = keras.Input((None, None, 16))
    x = inputs
    for layer in (NonLocalBlock(sub_sample=True), PositionAttention(), ChannelAttention(), CrissCrossAttention(),
                  GlobalContextBlock(bottleneck_ratio=4)):
        x = layer(x)
        randomize(layer)
    model = keras.Model(inputs, x)
    data = 0.2 * FEATURES
    expected = keras.ops.convert_to_numpy(model(data))
    (actual,) = run_under_backend(backend, model, [data], tmp_path)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)