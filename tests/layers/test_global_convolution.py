import keras
import numpy as np
import pytest

from keras_sceneparse.layers.global_convolution import (
    BoundaryRefinement,
    GlobalConvolution,
)
from tests.harness import run_layer_test

rng = np.random.default_rng(0)
FEATURES = rng.normal(size=(2, 9, 7, 6)).astype("float32")
UNKNOWN = [(None, None, 6)]


@pytest.mark.parametrize("kwargs", [{"filters": 3, "kernel_size": 5}, {"filters": 4, "kernel_size": 4, "use_bias": False}])
def test_global_convolution_harness(kwargs):
    run_layer_test(GlobalConvolution, kwargs, FEATURES, (2, 9, 7, kwargs["filters"]), symbolic_input_shape=UNKNOWN)


def test_boundary_refinement_harness():
    run_layer_test(BoundaryRefinement, {}, FEATURES, (2, 9, 7, 6), symbolic_input_shape=UNKNOWN)


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


def weights_of(conv):
    return conv.kernel.numpy(), (conv.bias.numpy() if conv.bias is not None else None)


@pytest.mark.parametrize("kernel_size", [5, 4, 15])
def test_global_convolution_is_the_sum_of_two_separable_paths(kernel_size):
    layer = GlobalConvolution(3, kernel_size)
    layer.build(FEATURES.shape)
    for weight in layer.weights:
        weight.assign(rng.normal(scale=0.3, size=weight.shape).astype("float32"))
    k = kernel_size
    assert layer.left_column.kernel.shape == (k, 1, 6, 3) and layer.left_row.kernel.shape == (1, k, 3, 3)
    assert layer.right_row.kernel.shape == (1, k, 6, 3) and layer.right_column.kernel.shape == (k, 1, 3, 3)
    # Left: k x 1 then 1 x k; right: 1 x k then k x 1; no nonlinearity in between.
    left = numpy_conv(numpy_conv(FEATURES, *weights_of(layer.left_column)), *weights_of(layer.left_row))
    right = numpy_conv(numpy_conv(FEATURES, *weights_of(layer.right_row)), *weights_of(layer.right_column))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(FEATURES)), left + right, rtol=1e-4, atol=1e-4)


def test_global_convolution_without_bias_is_linear():
    layer = GlobalConvolution(3, 7, use_bias=False)
    a, b = FEATURES, rng.normal(size=FEATURES.shape).astype("float32")
    combined = keras.ops.convert_to_numpy(layer(2.0 * a - b))
    np.testing.assert_allclose(
        combined, 2.0 * keras.ops.convert_to_numpy(layer(a)) - keras.ops.convert_to_numpy(layer(b)), atol=1e-4
    )
    # 2k (C_in C + C^2) weights against k^2 C_in C for a plain k x k convolution.
    assert sum(int(np.prod(w.shape)) for w in layer.weights) == 2 * 7 * (6 * 3 + 3 * 3)


def test_boundary_refinement_matches_numpy():
    layer = BoundaryRefinement()
    layer.build(FEATURES.shape)
    for weight in layer.weights:
        weight.assign(rng.normal(scale=0.3, size=weight.shape).astype("float32"))
    hidden = np.maximum(numpy_conv(FEATURES, *weights_of(layer.conv1)), 0)
    expected = FEATURES + numpy_conv(hidden, *weights_of(layer.conv2))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(FEATURES)), expected, rtol=1e-4, atol=1e-4)
    # A zero residual branch leaves the score map unchanged.
    for weight in layer.conv2.weights:
        weight.assign(np.zeros(weight.shape, "float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(FEATURES)), FEATURES)


def test_argument_errors():
    with pytest.raises(ValueError, match="kernel_size"):
        GlobalConvolution(3, kernel_size=0)
    with pytest.raises(TypeError, match="filters"):
        GlobalConvolution(None)
