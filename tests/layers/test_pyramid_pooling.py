import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_sceneparse.layers.pyramid_pooling import AdaptiveAveragePooling2D, PyramidPoolingModule
from tests.harness import run_layer_test

rng = np.random.default_rng(0)
FEATURES = rng.normal(size=(2, 9, 7, 8)).astype("float32")
UNKNOWN = (None, None, 8)

HARNESS_CASES = [
    (AdaptiveAveragePooling2D, {"output_size": 6}, (2, 6, 6, 8)),
    (AdaptiveAveragePooling2D, {"output_size": (2, 3)}, (2, 2, 3, 8)),
    (PyramidPoolingModule, {}, (2, 9, 7, 16)),
    (PyramidPoolingModule, {"bins": (1, 4), "filters": 3, "align_corners": False}, (2, 9, 7, 14)),
]


@pytest.mark.parametrize("layer_cls,kwargs,expected", HARNESS_CASES, ids=lambda v: getattr(v, "__name__", None))
def test_layer_harness(layer_cls, kwargs, expected):
    run_layer_test(layer_cls, kwargs, FEATURES, expected, symbolic_input_shape=[UNKNOWN])


# --- numerical checks against independent NumPy computations ---------------------------


def numpy_adaptive_average_pool(x, out_h, out_w):
    """PyTorch's AdaptiveAvgPool2d, one bin at a time."""
    batch, height, width, channels = x.shape
    out = np.zeros((batch, out_h, out_w, channels), "float64")
    for i in range(out_h):
        top, bottom = (i * height) // out_h, math.ceil((i + 1) * height / out_h)
        for j in range(out_w):
            left, right = (j * width) // out_w, math.ceil((j + 1) * width / out_w)
            out[:, i, j] = x[:, top:bottom, left:right].mean(axis=(1, 2))
    return out


@pytest.mark.parametrize(
    "input_size,output_size",
    [((13, 7), (6, 6)), ((13, 7), (2, 3)), ((4, 3), (6, 6)), ((1, 1), (3, 3)), ((12, 12), (6, 6)), ((60, 60), (1, 1))],
)
def test_adaptive_average_pooling_matches_numpy(input_size, output_size):
    x = rng.normal(size=(2, *input_size, 3)).astype("float32")
    pooled = AdaptiveAveragePooling2D(output_size)(x)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(pooled), numpy_adaptive_average_pool(x, *output_size), rtol=1e-5, atol=1e-6
    )


def test_adaptive_average_pooling_under_mixed_precision():
    x = rng.uniform(0, 4, size=(1, 97, 130, 2)).astype("float32")
    pooled = AdaptiveAveragePooling2D(6, dtype="mixed_float16")(x)
    assert keras.backend.standardize_dtype(pooled.dtype) == "float16"
    expected = numpy_adaptive_average_pool(x, 6, 6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(pooled).astype("float32"), expected, rtol=2e-3)


def test_adaptive_average_pooling_with_sizes_unknown_to_the_graph():
    layer = AdaptiveAveragePooling2D(6)
    pool = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])
    for size in ((13, 7), (5, 2), (31, 40)):
        x = rng.normal(size=(1, *size, 3)).astype("float32")
        np.testing.assert_allclose(pool(x).numpy(), numpy_adaptive_average_pool(x, 6, 6), rtol=1e-5, atol=1e-6)
    assert pool.experimental_get_tracing_count() == 1


def test_adaptive_average_pooling_gradient_spreads_each_bin_mean():
    # d(sum of outputs)/dx: each pixel receives 1/|bin| from every bin that contains it.
    x = tf.constant(rng.normal(size=(1, 5, 4, 1)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(AdaptiveAveragePooling2D((3, 3))(x))
    expected = np.zeros((5, 4))
    for i in range(3):
        top, bottom = (i * 5) // 3, math.ceil((i + 1) * 5 / 3)
        for j in range(3):
            left, right = (j * 4) // 3, math.ceil((j + 1) * 4 / 3)
            expected[top:bottom, left:right] += 1.0 / ((bottom - top) * (right - left))
    np.testing.assert_allclose(tape.gradient(total, x).numpy()[0, :, :, 0], expected, rtol=1e-6)


def numpy_corner_aligned_resize(x, height, width):
    """Bilinear resize with corner pixels aligned (Caffe's Interp, align_corners=True)."""
    source_h, source_w = x.shape[1:3]

    def grid(source, target):
        position = np.arange(target) * ((source - 1) / max(target - 1, 1))
        low = np.floor(position).astype(int)
        high = np.minimum(low + 1, source - 1)
        return low, high, position - low

    row_low, row_high, row_weight = grid(source_h, height)
    col_low, col_high, col_weight = grid(source_w, width)
    rows = x[:, row_low] * (1 - row_weight)[None, :, None, None] + x[:, row_high] * row_weight[None, :, None, None]
    return rows[:, :, col_low] * (1 - col_weight)[None, None, :, None] + rows[:, :, col_high] * col_weight[None, None, :, None]


def test_pyramid_pooling_module_matches_numpy():
    x = rng.normal(size=(2, 9, 7, 4)).astype("float32")
    module = PyramidPoolingModule(bins=(1, 2, 3), filters=2)
    outputs = keras.ops.convert_to_numpy(module(x, training=False))
    assert outputs.shape == (2, 9, 7, 4 + 3 * 2)
    np.testing.assert_array_equal(outputs[..., :4], x)  # the features come first, unchanged
    for index, (size, conv) in enumerate(zip((1, 2, 3), module.convs)):
        kernel = keras.ops.convert_to_numpy(conv.sublayers[0].kernel)[0, 0]
        bn = conv.sublayers[1]
        gamma, beta, mean, variance = (keras.ops.convert_to_numpy(w) for w in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance))
        pooled = numpy_adaptive_average_pool(x, size, size) @ kernel
        level = np.maximum((pooled - mean) / np.sqrt(variance + bn.epsilon) * gamma + beta, 0.0)
        expected = numpy_corner_aligned_resize(level, 9, 7)
        channels = slice(4 + 2 * index, 6 + 2 * index)
        np.testing.assert_allclose(outputs[..., channels], expected, rtol=1e-4, atol=1e-5)
        # The global level is constant over the map.
        if size == 1:
            np.testing.assert_allclose(outputs[..., channels], np.broadcast_to(level, expected.shape), atol=1e-6)


def test_pyramid_pooling_module_structure_and_default_width():
    module = PyramidPoolingModule()
    module.build((None, None, None, 2048))
    assert module.bins == (1, 2, 3, 6)
    assert [conv.filters for conv in module.convs] == [512] * 4  # C / N (Sec. 3.3)
    assert all(conv.kernel_size == 1 and conv.use_batch_norm for conv in module.convs)
    assert module.compute_output_shape((None, 60, 60, 2048)) == (None, 60, 60, 4096)
    assert module.count_params() == 4 * (2048 * 512 + 4 * 512)  # no convolution bias


def test_pyramid_pooling_arguments_are_checked():
    with pytest.raises(ValueError, match="bins"):
        PyramidPoolingModule(bins=())
    with pytest.raises(ValueError, match="bins"):
        PyramidPoolingModule(bins=(1, 0))
    with pytest.raises(ValueError, match="filters"):
        PyramidPoolingModule(bins=(1, 2, 3, 6))(np.zeros((1, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match="output_size"):
        AdaptiveAveragePooling2D((1, 2, 3))
    with pytest.raises(ValueError, match="output_size"):
        AdaptiveAveragePooling2D(0)
