import keras
import numpy as np
import pytest

from keras_sceneparse.layers.refinement_blocks import (
    ChainedResidualPooling,
    MultiResolutionFusion,
    RefineNetBlock,
    ResidualConvUnit,
)
from tests.harness import assert_saved_model_roundtrip, run_layer_test

rng = np.random.default_rng(0)
FINE = rng.normal(size=(2, 9, 7, 6)).astype("float32")
COARSE = rng.normal(size=(2, 5, 4, 8)).astype("float32")


def test_residual_conv_unit_harness():
    run_layer_test(ResidualConvUnit, {}, FINE, (2, 9, 7, 6), symbolic_input_shape=[(None, None, 6)])


def test_chained_residual_pooling_harness():
    run_layer_test(
        ChainedResidualPooling, {"num_blocks": 3, "pool_size": 3}, FINE, (2, 9, 7, 6),
        symbolic_input_shape=[(None, None, 6)],
    )


def test_refinenet_block_harness():
    # Called as block(features, previous): C_i and the coarser block's output.
    run_layer_test(
        RefineNetBlock, {"filters": 4, "pooling_blocks": 4, "output_units": 3}, (FINE, COARSE), (2, 9, 7, 4),
        symbolic_input_shape=[(None, None, 6), (None, None, 8)],
    )
    run_layer_test(RefineNetBlock, {"filters": 4}, FINE, (2, 9, 7, 4), symbolic_input_shape=[(None, None, 6)])


def test_multi_resolution_fusion_harness():
    # The harness passes inputs positionally; the fusion takes one list, so check it here.
    layer = MultiResolutionFusion()
    assert tuple(layer([COARSE, FINE]).shape) == (2, 9, 7, 6)
    config = layer.get_config()
    assert MultiResolutionFusion.from_config(config).get_config() == config
    assert keras.saving.get_registered_name(MultiResolutionFusion) == "keras_sceneparse>MultiResolutionFusion"
    symbolic = [keras.Input((None, None, 8)), keras.Input((None, None, 6))]
    output = MultiResolutionFusion(filters=5)(symbolic)
    assert tuple(output.shape) == (None, None, None, 5)
    model = keras.Model(symbolic, output)
    assert_saved_model_roundtrip(model, [COARSE, FINE])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit([COARSE, FINE], np.ones((2, 9, 7, 5), "float32"), verbose=0)
    assert all(not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights))
    # Known sizes: the output shape is the finest input's, in either order.
    static = [keras.Input((5, 4, 8)), keras.Input((9, 7, 6))]
    assert tuple(MultiResolutionFusion()(static[::-1]).shape) == (None, 9, 7, 6)


# --- independent NumPy computations ------------------------------------------------------


def numpy_conv(x, kernel, bias=None):
    """Stride-1 'same' convolution with explicit zero padding (more after than before for even kernels)."""
    kh, kw = kernel.shape[:2]
    top, left = (kh - 1) // 2, (kw - 1) // 2
    padded = np.pad(x, ((0, 0), (top, kh - 1 - top), (left, kw - 1 - left), (0, 0)))
    height, width = x.shape[1:3]
    out = np.zeros((*x.shape[:3], kernel.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            out += padded[:, i : i + height, j : j + width, :] @ kernel[i, j]
    return out + (0 if bias is None else bias)


def numpy_max_pool_same(x, size):
    """Stride-1 max pooling over windows clipped at the border (padding never wins)."""
    half = (size - 1) // 2
    padded = np.pad(x, ((0, 0), (half, size - 1 - half), (half, size - 1 - half), (0, 0)), constant_values=-np.inf)
    height, width = x.shape[1:3]
    windows = [padded[:, i : i + height, j : j + width] for i in range(size) for j in range(size)]
    return np.max(windows, axis=0)


def numpy_bilinear_resize(x, height, width):
    """Half-pixel-centre bilinear resizing (TensorFlow's and PyTorch's align_corners=False)."""

    def axis_weights(source, target):
        coordinates = np.clip((np.arange(target) + 0.5) * source / target - 0.5, 0, source - 1)
        low = np.floor(coordinates).astype(int)
        high = np.minimum(low + 1, source - 1)
        return low, high, coordinates - low

    r0, r1, rw = axis_weights(x.shape[1], height)
    c0, c1, cw = axis_weights(x.shape[2], width)
    rows = x[:, r0] * (1 - rw)[None, :, None, None] + x[:, r1] * rw[None, :, None, None]
    return rows[:, :, c0] * (1 - cw)[None, None, :, None] + rows[:, :, c1] * cw[None, None, :, None]


def numpy_rcu(x, unit):
    w1, b1, w2 = (w.numpy() for w in (unit.conv1.kernel, unit.conv1.bias, unit.conv2.kernel))
    return x + numpy_conv(np.maximum(numpy_conv(np.maximum(x, 0), w1, b1), 0), w2)


def numpy_crp(x, layer):
    path = np.maximum(x, 0)
    total = path
    for conv in layer.convs:
        path = numpy_conv(numpy_max_pool_same(path, layer.pool_size), conv.kernel.numpy())
        total = total + path
    return total


def randomize(layer, scale=0.3):
    """Replaces the N(0, 0.01) initial weights by larger ones, so every term shows in the output."""
    for weight in layer.weights:
        weight.assign(rng.normal(scale=scale, size=weight.shape).astype("float32"))


def test_residual_conv_unit_matches_numpy():
    unit = ResidualConvUnit()
    unit.build(FINE.shape)
    randomize(unit)
    assert unit.conv2.bias is None  # the reference code's second convolution has no bias
    np.testing.assert_allclose(keras.ops.convert_to_numpy(unit(FINE)), numpy_rcu(FINE, unit), rtol=1e-4, atol=1e-4)


def test_chained_residual_pooling_matches_numpy():
    layer = ChainedResidualPooling(num_blocks=4)
    layer.build(FINE.shape)
    randomize(layer)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(FINE)), numpy_crp(FINE, layer), rtol=1e-4, atol=1e-4)
    # With zero convolutions the chain adds nothing: the output is the input after the ReLU.
    for weight in layer.weights:
        weight.assign(np.zeros(weight.shape, "float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(FINE)), np.maximum(FINE, 0))


def test_chained_residual_pooling_pools_five_by_five_windows():
    # One impulse, identity-like 3x3 kernel (centre tap): block 1 spreads it over a 5x5 square.
    x = np.full((1, 11, 11, 1), -1.0, "float32")
    x[0, 5, 5, 0] = 2.0
    layer = ChainedResidualPooling(num_blocks=1)
    layer.build(x.shape)
    kernel = np.zeros((3, 3, 1, 1), "float32")
    kernel[1, 1] = 1.0
    layer.convs[0].kernel.assign(kernel)
    out = keras.ops.convert_to_numpy(layer(x))[0, ..., 0]
    expected = np.zeros((11, 11))
    expected[3:8, 3:8] = 2.0
    expected[5, 5] = 4.0  # relu(x) + pooled
    np.testing.assert_allclose(out, expected)


def test_multi_resolution_fusion_matches_numpy():
    layer = MultiResolutionFusion()
    layer.build([COARSE.shape, FINE.shape])
    randomize(layer)
    w_coarse, w_fine = (conv.kernel.numpy() for conv in layer.convs)
    assert w_coarse.shape == (3, 3, 8, 6) and layer.convs[0].bias is None  # to the smallest width
    expected = numpy_bilinear_resize(numpy_conv(COARSE, w_coarse), 9, 7) + numpy_conv(FINE, w_fine)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer([COARSE, FINE])), expected, rtol=1e-4, atol=1e-4)
    # Unknown sizes when the graph is built: the same result.
    symbolic = [keras.Input((None, None, 8)), keras.Input((None, None, 6))]
    model = keras.Model(symbolic, layer(symbolic))
    np.testing.assert_allclose(model.predict([COARSE, FINE], verbose=0), expected, rtol=1e-4, atol=1e-4)
    # A single path passes through, with no convolution.
    single = MultiResolutionFusion()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(single([FINE])), FINE)
    assert single.weights == []


def test_refinenet_block_matches_numpy():
    block = RefineNetBlock(4, pooling_blocks=2, output_units=2)
    block(FINE, COARSE)
    randomize(block, scale=0.2)
    # Adapted backbone path: 3x3 convolution (no bias) to `filters`, then two RCUs.
    path = numpy_conv(FINE, block.adaptation_convs[0].kernel.numpy())
    for unit in block.adaptation_rcus:
        path = numpy_rcu(path, unit)
    # Fusion with the previous output (8 channels) to min(8, 4) channels at the fine size.
    w_previous, w_path = (conv.kernel.numpy() for conv in block.fusion.convs)
    x = numpy_bilinear_resize(numpy_conv(COARSE, w_previous), 9, 7) + numpy_conv(path, w_path)
    x = numpy_crp(x, block.pooling)
    for unit in block.output_rcus:
        x = numpy_rcu(x, unit)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(block(FINE, COARSE)), x, rtol=1e-3, atol=1e-3)


def test_argument_errors():
    with pytest.raises(ValueError, match="num_blocks"):
        ChainedResidualPooling(num_blocks=0)
    with pytest.raises(TypeError, match="filters"):
        RefineNetBlock(filters=2.5)
