"""PSANet's PointwiseSpatialAttention and ANN's AsymmetricFusion/PyramidNonLocalBlock.

The numerical tests give the layers random weights and compare them with NumPy written
from the references: for PSA, the ``PSAMask`` buffers of the released code (mmcv's
``psamask`` loops, position by position) followed by its ``softmax(dim=1)`` and ``bmm``;
for ANN, the non-local attention over PyTorch-style adaptive-pooled pyramid samples.
"""

import keras
import numpy as np
import pytest

from keras_sceneparse.layers.asymmetric_non_local import (
    AsymmetricFusionNonLocalBlock,
    AsymmetricPyramidNonLocalBlock,
)
from keras_sceneparse.layers.pointwise_spatial_attention import (
    PointwiseSpatialAttention,
    window_index,
)
from keras_sceneparse.layers.pyramid_pooling import AdaptiveAveragePooling2D
from tests.harness import OTHER_BACKENDS, run_layer_test, run_under_backend

rng = np.random.default_rng(11)
FEATURES = rng.normal(size=(2, 9, 7, 16)).astype("float32")
LOW = rng.normal(size=(2, 9, 7, 12)).astype("float32")
TINY_PSA = {"filters": 4, "mask_size": (9, 9)}
TINY_ANN = {"key_channels": 4, "value_channels": 6}

HARNESS_CASES = [
    (PointwiseSpatialAttention, TINY_PSA, FEATURES, (2, 9, 7, 32)),
    (
        PointwiseSpatialAttention,
        {"filters": 4, "mask_size": 3, "shrink_factor": 1, "mode": "collect"},
        FEATURES,
        (2, 9, 7, 32),
    ),
    (
        PointwiseSpatialAttention,
        {"filters": 4, "mask_size": (5, 7), "mode": "distribute"},
        FEATURES,
        (2, 9, 7, 32),
    ),
    (AsymmetricPyramidNonLocalBlock, TINY_ANN, FEATURES, (2, 9, 7, 16)),
    (
        AsymmetricPyramidNonLocalBlock,
        {**TINY_ANN, "pool_sizes": (1, 2), "out_channels": 5},
        FEATURES,
        (2, 9, 7, 5),
    ),
    (AsymmetricFusionNonLocalBlock, TINY_ANN, (LOW, FEATURES), (2, 9, 7, 16)),
]


@pytest.mark.parametrize(
    "layer_cls,kwargs,data,expected",
    HARNESS_CASES,
    ids=lambda v: getattr(v, "__name__", None),
)
def test_layer_harness(layer_cls, kwargs, data, expected):
    arrays = data if isinstance(data, tuple) else (data,)
    unknown = [(None, None, array.shape[-1]) for array in arrays]
    run_layer_test(layer_cls, kwargs, data, expected, symbolic_input_shape=unknown)


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


def array(weight):
    return keras.ops.convert_to_numpy(weight).astype("float64")


def numpy_conv1x1(x, conv):
    y = x @ array(conv.kernel)[0, 0]
    return y + array(conv.bias) if conv.use_bias else y


def numpy_conv_bn_relu(x, block):
    """A 1x1 ConvBNReLU in inference mode."""
    conv, norm = block.sublayers[0], block.sublayers[1]
    y = numpy_conv1x1(x, conv)
    y = (y - array(norm.moving_mean)) / np.sqrt(
        array(norm.moving_variance) + norm.epsilon
    )
    y = y * array(norm.gamma) + array(norm.beta)
    return np.maximum(y, 0.0) if block.activation is not None else y


def softmax(values, axis):
    exponentials = np.exp(values - values.max(axis=axis, keepdims=True))
    return exponentials / exponentials.sum(axis=axis, keepdims=True)


def output_of(layer, *inputs):
    return keras.ops.convert_to_numpy(layer(*inputs, training=False)).astype("float64")


# --- point-wise spatial attention (PSANet) ---------------------------------------------------


def numpy_psa_mask(mask, mode):
    """The released code's ``PSAMask`` (mmcv ``psamask_{collect,distribute}_forward``).

    ``mask`` is ``(H, W, m_h, m_w)``: each position's over-complete map. Returns the
    ``(H W, H W)`` buffer, zero where the map does not reach: ``buffer[j, i]`` (collect) or
    ``buffer[i, j]`` (distribute) holds the map of ``i = (h, w)`` at offset ``j - i``.
    """
    height, width, mask_h, mask_w = mask.shape
    half_h, half_w = (mask_h - 1) // 2, (mask_w - 1) // 2
    buffer = np.zeros((height * width, height * width))
    for h in range(height):
        for w in range(width):
            for hidx in range(max(0, half_h - h), min(mask_h, height + half_h - h)):
                for widx in range(max(0, half_w - w), min(mask_w, width + half_w - w)):
                    j = (hidx + h - half_h) * width + (widx + w - half_w)
                    i = h * width + w
                    if mode == "collect":
                        buffer[j, i] = mask[h, w, hidx, widx]
                    else:
                        buffer[i, j] = mask[h, w, hidx, widx]
    return buffer


def numpy_corner_aligned_resize(x, height, width):
    """Bilinear resizing with ``align_corners=True`` (PyTorch's ``F.interpolate``)."""

    def axis_weights(source, target):
        coordinates = np.arange(target) * ((source - 1) / max(target - 1, 1))
        lower = np.floor(coordinates).astype(int)
        upper = np.minimum(lower + 1, source - 1)
        weights = np.zeros((target, source))
        weights[np.arange(target), lower] += 1 - (coordinates - lower)
        weights[np.arange(target), upper] += coordinates - lower
        return weights

    rows, cols = axis_weights(x.shape[0], height), axis_weights(x.shape[1], width)
    return np.einsum("ih,jw,hwc->ijc", rows, cols, x)


def numpy_psa(x, layer):
    """The released ``PSA.forward`` for one image ``(H, W, C)``, branch by branch."""
    height, width, _ = x.shape
    s = layer.shrink_factor
    small = ((height - 1) // s + 1, (width - 1) // s + 1)
    outputs = []
    for branch, reduction, hidden, predictor in zip(
        layer.branches, layer.reductions, layer.attention_hidden, layer.attention_logits
    ):
        features = numpy_conv_bn_relu(x, reduction)
        if s > 1:
            features = numpy_corner_aligned_resize(features, *small)
        mask = numpy_conv1x1(numpy_conv_bn_relu(features, hidden), predictor)
        mask = mask.reshape(*small, *layer.map_size)
        attention = softmax(
            numpy_psa_mask(mask, branch), axis=0
        )  # softmax(dim=1) over the buffer's rows
        flat = features.reshape(-1, features.shape[-1])  # (N, C)
        outputs.append(
            (flat.T @ attention).T.reshape(*small, -1)
        )  # bmm(x (C, N), y (N, N))
    projected = numpy_conv_bn_relu(np.concatenate(outputs, axis=-1), layer.projection)
    if s > 1:
        projected = numpy_corner_aligned_resize(projected, height, width)
    return np.concatenate([x, projected], axis=-1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {
            "mask_size": (17, 13),
            "shrink_factor": 1,
        },  # (2H - 1) x (2W - 1): every pair reached
        {"mask_size": (5, 3), "shrink_factor": 1},  # smaller: far pairs keep logit 0
        {"mask_size": (21, 21), "shrink_factor": 1},  # larger: windows cropped
        {
            "mask_size": (9, 7),
            "shrink_factor": 2,
        },  # the released default, shrunk by 2 (odd sizes)
        {"mask_size": (5, 5), "shrink_factor": 2, "mode": "collect"},
        {"mask_size": (7, 5), "shrink_factor": 3, "mode": "distribute"},
    ],
)
def test_pointwise_spatial_attention_matches_the_released_psamask(kwargs):
    layer = PointwiseSpatialAttention(filters=4, **kwargs)
    layer.build(FEATURES.shape)
    randomize(layer)
    expected = np.stack(
        [numpy_psa(image.astype("float64"), layer) for image in FEATURES]
    )
    np.testing.assert_allclose(
        output_of(layer, FEATURES), expected, rtol=1e-4, atol=1e-4
    )


def test_even_sizes_are_shrunk_and_restored_to_the_input_size():
    x = FEATURES[:, :8, :6]
    layer = PointwiseSpatialAttention(filters=4, mask_size=(7, 5))
    layer.build(x.shape)
    randomize(layer, seed=2)
    expected = np.stack([numpy_psa(image.astype("float64"), layer) for image in x])
    np.testing.assert_allclose(output_of(layer, x), expected, rtol=1e-4, atol=1e-4)


def test_window_index_centres_each_map_on_its_position():
    index, inside = (keras.ops.convert_to_numpy(t) for t in window_index(3, 4, 5, 7))
    # Position i = (1, 2) reads j = (1, 2) at the centre (2, 3) and j = (0, 0) at (2 - 1, 3 - 2).
    i = 1 * 4 + 2
    assert index[i, i] == 2 * 7 + 3 and index[i, 0] == 1 * 7 + 1 and inside[i].all()
    # From (0, 0), the column offset 3 of j = (0, 3) is still inside a 7-wide map; rows 2 apart too.
    assert inside[0].all()
    index, inside = (keras.ops.convert_to_numpy(t) for t in window_index(3, 4, 3, 3))
    assert (
        not inside[0, 3] and inside[0, 5]
    )  # (0, 3) is 3 columns away, (1, 1) one row and column


def test_paper_map_size_from_a_static_input():
    layer = PointwiseSpatialAttention(filters=4, mask_size=None)
    layer.build((None, 9, 7, 16))
    assert layer.map_size == (9, 7)  # 2 * 5 - 1, 2 * 4 - 1 after shrinking 9x7 to 5x4
    assert tuple(layer.attention_logits[0].kernel.shape) == (1, 1, 4, 63)
    layer = PointwiseSpatialAttention(filters=4, mask_size=None, shrink_factor=1)
    layer.build((None, 9, 7, 16))
    assert layer.map_size == (17, 13)
    with pytest.raises(ValueError, match="mask_size"):
        PointwiseSpatialAttention(mask_size=None)(keras.Input((None, None, 16)))


def test_bi_direction_has_two_branches_and_doubles_the_channels():
    layer = PointwiseSpatialAttention(filters=4, mask_size=(9, 9))
    layer.build(FEATURES.shape)
    assert layer.branches == ("collect", "distribute")
    assert [tuple(l.kernel.shape) for l in layer.attention_logits] == [
        (1, 1, 4, 81)
    ] * 2
    assert not layer.attention_logits[0].use_bias
    assert tuple(layer.projection.sublayers[0].kernel.shape) == (1, 1, 8, 16)
    # The input is passed through: the first C output channels are X.
    np.testing.assert_allclose(
        output_of(layer, FEATURES)[..., :16], FEATURES, atol=1e-6
    )


def test_every_position_reaches_every_other():
    # With the paper's map, a change at the far corner reaches position (0, 0) in one module.
    layer = PointwiseSpatialAttention(
        filters=4, mask_size=None, shrink_factor=1, mode="collect"
    )
    layer.build(FEATURES.shape)
    randomize(layer, seed=4)
    moved = FEATURES.copy()
    moved[:, -1, -1] += 3.0
    change = np.abs(output_of(layer, moved) - output_of(layer, FEATURES))[:, 0, 0, 16:]
    assert change.max() > 1e-4


@pytest.mark.parametrize(
    "kwargs,argument",
    [
        ({"mask_size": (4, 5)}, "mask_size"),
        ({"mask_size": (3, 3, 3)}, "mask_size"),
        ({"mask_size": 0}, "mask_size"),
        ({"filters": 0}, "filters"),
        ({"shrink_factor": 0}, "shrink_factor"),
        ({"mode": "both"}, "mode"),
    ],
)
def test_psa_errors_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        PointwiseSpatialAttention(**kwargs)


def test_psa_rejects_inputs_that_are_not_feature_maps():
    with pytest.raises(ValueError, match="height, width, channels"):
        PointwiseSpatialAttention(filters=4, mask_size=3).build((2, 9, 16))


# --- asymmetric non-local blocks (ANN) -------------------------------------------------------


def numpy_adaptive_average_pool(x, size):
    """PyTorch's AdaptiveAvgPool2d bin edges: [floor(i H / n), ceil((i + 1) H / n))."""
    height, width, _ = x.shape
    out = np.zeros((size, size, x.shape[-1]))
    for i in range(size):
        for j in range(size):
            rows = slice(i * height // size, -(-(i + 1) * height // size))
            cols = slice(j * width // size, -(-(j + 1) * width // size))
            out[i, j] = x[rows, cols].mean(axis=(0, 1))
    return out


def numpy_pyramid_samples(x, bins):
    return np.concatenate(
        [numpy_adaptive_average_pool(x, n).reshape(n * n, -1) for n in bins]
    )


def numpy_asymmetric_attention(query, key, value, layer):
    """``W_o softmax(Q P(K)^T / sqrt(C_k)) P(V)`` for one image."""
    keys = numpy_pyramid_samples(key, layer.pool_sizes)
    values = numpy_pyramid_samples(value, layer.pool_sizes)
    queries = query.reshape(-1, query.shape[-1])
    attention = softmax(queries @ keys.T / np.sqrt(layer.key_channels), axis=-1)
    context = (attention @ values).reshape(*query.shape[:2], -1)
    return numpy_conv1x1(context, layer.output_conv)


def numpy_apnb(x, layer):
    embedded = numpy_conv_bn_relu(x, layer.query_key)
    context = numpy_asymmetric_attention(
        embedded, embedded, numpy_conv1x1(x, layer.value), layer
    )
    return numpy_conv_bn_relu(np.concatenate([context, x], axis=-1), layer.fusion)


def numpy_afnb(low, high, layer):
    query = numpy_conv_bn_relu(high, layer.query)
    key = numpy_conv_bn_relu(low, layer.key)
    context = numpy_asymmetric_attention(
        query, key, numpy_conv1x1(low, layer.value), layer
    )
    return numpy_conv_bn_relu(np.concatenate([context, high], axis=-1), layer.fusion)


@pytest.mark.parametrize("pool_sizes", [(1, 3, 6, 8), (2, 4)])
def test_apnb_matches_the_paper(pool_sizes):
    layer = AsymmetricPyramidNonLocalBlock(pool_sizes=pool_sizes, **TINY_ANN)
    layer.build(FEATURES.shape)
    randomize(layer)
    expected = np.stack(
        [numpy_apnb(image.astype("float64"), layer) for image in FEATURES]
    )
    np.testing.assert_allclose(
        output_of(layer, FEATURES), expected, rtol=1e-4, atol=1e-4
    )


def test_afnb_matches_the_paper():
    layer = AsymmetricFusionNonLocalBlock(**TINY_ANN)
    layer.build(LOW.shape, FEATURES.shape)
    randomize(layer, seed=5)
    expected = np.stack(
        [
            numpy_afnb(l.astype("float64"), h.astype("float64"), layer)
            for l, h in zip(LOW, FEATURES)
        ]
    )
    np.testing.assert_allclose(
        output_of(layer, LOW, FEATURES), expected, rtol=1e-4, atol=1e-4
    )


def test_pyramid_sampling_reuses_adaptive_pooling_and_gives_110_samples():
    for layer in (AsymmetricPyramidNonLocalBlock(), AsymmetricFusionNonLocalBlock()):
        assert layer.pool_sizes == (1, 3, 6, 8) and layer.num_samples == 110
        assert all(isinstance(pool, AdaptiveAveragePooling2D) for pool in layer.pools)
    samples = AsymmetricPyramidNonLocalBlock().pyramid_sample(FEATURES)
    assert tuple(samples.shape) == (2, 110, 16)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(samples)[0, 0],
        FEATURES[0].mean(axis=(0, 1)),
        atol=1e-5,
    )


def test_blocks_follow_the_released_structure():
    apnb = AsymmetricPyramidNonLocalBlock()
    apnb.build((None, None, None, 512))
    afnb = AsymmetricFusionNonLocalBlock()
    afnb.build((None, None, None, 1024), (None, None, None, 2048))
    # APNB: one shared query/key embedding; output convolution zero-initialised.
    assert not hasattr(apnb, "query") and tuple(
        apnb.query_key.sublayers[0].kernel.shape
    ) == (1, 1, 512, 256)
    assert tuple(apnb.output_conv.kernel.shape) == (1, 1, 256, 512) and not np.any(
        array(apnb.output_conv.kernel)
    )
    assert apnb.fusion.activation == "relu" and tuple(
        apnb.fusion.sublayers[0].kernel.shape
    ) == (1, 1, 1024, 512)
    # AFNB: queries from the high-level input, keys and values from the low-level one; BN, no ReLU after fusion.
    assert tuple(afnb.query.sublayers[0].kernel.shape) == (1, 1, 2048, 256)
    assert tuple(afnb.key.sublayers[0].kernel.shape) == (1, 1, 1024, 256)
    assert tuple(afnb.value.kernel.shape) == (1, 1, 1024, 256)
    assert afnb.fusion.activation is None and tuple(
        afnb.fusion.sublayers[0].kernel.shape
    ) == (1, 1, 4096, 2048)


@pytest.mark.parametrize(
    "layer_cls", [AsymmetricFusionNonLocalBlock, AsymmetricPyramidNonLocalBlock]
)
@pytest.mark.parametrize(
    "kwargs,argument",
    [
        ({"key_channels": 0}, "key_channels"),
        ({"value_channels": 0}, "value_channels"),
        ({"pool_sizes": ()}, "pool_sizes"),
        ({"pool_sizes": (1, 0)}, "pool_sizes"),
        ({"out_channels": 0}, "out_channels"),
    ],
)
def test_ann_errors_name_the_argument(layer_cls, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        layer_cls(**kwargs)


def test_ann_blocks_reject_inputs_that_are_not_feature_maps():
    with pytest.raises(ValueError, match="height, width, channels"):
        AsymmetricPyramidNonLocalBlock().build((2, 9, 16))
    with pytest.raises(ValueError, match="`low` features"):
        AsymmetricFusionNonLocalBlock().build((2, 9, 16), (2, 9, 7, 16))


@pytest.mark.slow  # a fresh process per backend; tests/backends covers the mechanism by default
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_same_outputs_under_other_backend(backend, tmp_path):
    low, high = keras.Input((None, None, 12)), keras.Input((None, None, 16))
    afnb = AsymmetricFusionNonLocalBlock(**TINY_ANN)
    x = afnb(low, high)
    psa = PointwiseSpatialAttention(**TINY_PSA)
    x = psa(x)
    apnb = AsymmetricPyramidNonLocalBlock(**TINY_ANN)
    x = apnb(x)
    for layer in (afnb, psa, apnb):
        randomize(layer)
    model = keras.Model([low, high], x)
    expected = keras.ops.convert_to_numpy(model([LOW, FEATURES]))
    actual = run_under_backend(backend, model, [LOW, FEATURES], tmp_path)[0]
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)
