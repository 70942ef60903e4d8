import importlib.util

import keras
import numpy as np
import pytest

from keras_sceneparse.layers.dense_blocks import (
    BATCH_NORM_EPSILON,
    DenseBlock,
    TransitionDown,
    TransitionUp,
)
from tests.harness import run_layer_test, run_under_backend

rng = np.random.default_rng(0)
FEATURES = rng.normal(size=(2, 9, 7, 5)).astype("float32")
COARSE = rng.normal(size=(2, 4, 3, 6)).astype("float32")
# 8 x 5 from 4 x 3: the transposed convolution's 9 x 7 is cropped by 1 row and 2 columns.
SKIP = rng.normal(size=(2, 8, 5, 4)).astype("float32")
UNKNOWN = (None, None, 5)

# (class, constructor kwargs, inputs, expected output shape(s), symbolic shapes).
HARNESS_CASES = [
    (DenseBlock, {"num_layers": 3, "growth_rate": 4}, FEATURES, (2, 9, 7, 17), [UNKNOWN]),
    (DenseBlock, {"num_layers": 2, "growth_rate": 3, "include_input": False}, FEATURES, (2, 9, 7, 6), [UNKNOWN]),
    (DenseBlock, {"num_layers": 1, "growth_rate": 2, "include_input": False, "dropout": 0.0}, FEATURES, (2, 9, 7, 2), [UNKNOWN]),
    (TransitionDown, {}, FEATURES, (2, 4, 3, 5), [UNKNOWN]),
    (TransitionDown, {"filters": 3, "dropout": 0.0}, FEATURES, (2, 4, 3, 3), [UNKNOWN]),
    (TransitionUp, {}, (COARSE, SKIP), (2, 8, 5, 10), [(None, None, 6), (None, None, 4)]),
    (TransitionUp, {"filters": 2}, (COARSE, SKIP), (2, 8, 5, 6), [(None, None, 6), (None, None, 4)]),
]


@pytest.mark.parametrize(
    "layer_cls,kwargs,inputs,expected,symbolic", HARNESS_CASES, ids=lambda v: getattr(v, "__name__", None)
)
def test_layer_harness(layer_cls, kwargs, inputs, expected, symbolic):
    run_layer_test(layer_cls, kwargs, inputs, expected, symbolic_input_shape=symbolic)


# --- independent NumPy computations ------------------------------------------------------


def randomize(layer, seed):
    """Random values in every weight, positive moving variances: nothing stays at identity."""
    generator = np.random.default_rng(seed)
    for weight in layer.weights:
        values = generator.normal(size=weight.shape)
        if "variance" in weight.path:
            values = generator.uniform(0.5, 2.0, size=weight.shape)
        weight.assign(values.astype("float32"))


def numpy_bn_relu(x, norm):
    gamma, beta, mean, variance = (np.asarray(w) for w in (norm.gamma, norm.beta, norm.moving_mean, norm.moving_variance))
    return np.maximum((x - mean) / np.sqrt(variance + BATCH_NORM_EPSILON) * gamma + beta, 0.0)


def numpy_conv_same(x, conv):
    """Stride-1 zero-padded convolution as explicit shifted matrix products."""
    kernel, bias = np.asarray(conv.kernel), np.asarray(conv.bias)
    size = kernel.shape[0]
    pad = size // 2
    height, width = x.shape[1:3]
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    out = np.zeros((*x.shape[:3], kernel.shape[-1]))
    for a in range(size):
        for b in range(size):
            out += padded[:, a : a + height, b : b + width] @ kernel[a, b]
    return out + bias


def numpy_max_pool_2x2_floor(x):
    batch, height, width, channels = x.shape
    out = np.zeros((batch, height // 2, width // 2, channels))
    for i in range(height // 2):
        for j in range(width // 2):
            out[:, i, j] = x[:, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].max(axis=(1, 2))
    return out


def numpy_transposed_conv_stride2(x, deconv):
    """Each input pixel (i, j) adds its 3x3 footprint at (2i, 2j): a (2h + 1) x (2w + 1) output."""
    kernel, bias = np.asarray(deconv.kernel), np.asarray(deconv.bias)  # (3, 3, out, in)
    batch, height, width, _ = x.shape
    out = np.zeros((batch, 2 * height + 1, 2 * width + 1, kernel.shape[2]))
    for i in range(height):
        for j in range(width):
            for a in range(3):
                for b in range(3):
                    out[:, 2 * i + a, 2 * j + b] += x[:, i, j] @ kernel[a, b].T
    return out + bias


def test_dense_block_matches_numpy_and_concatenates_input_then_layers_in_order():
    x = rng.normal(size=(2, 6, 5, 3)).astype("float32")
    block = DenseBlock(3, 2)
    block.build(x.shape)
    randomize(block, 1)
    actual = keras.ops.convert_to_numpy(block(x, training=False))

    # x_l = H_l([x_0, ..., x_{l-1}]) with H = BN, ReLU, 3x3 conv (dropout is identity in inference).
    stack = x.astype("float64")
    for norm, conv, _ in block.units:
        stack = np.concatenate([stack, numpy_conv_same(numpy_bn_relu(stack, norm), conv)], axis=-1)
    assert actual.shape == (2, 6, 5, 3 + 3 * 2)
    np.testing.assert_allclose(actual[..., :3], x)
    np.testing.assert_allclose(actual, stack, rtol=1e-4, atol=1e-4)

    # The upsampling-path block returns only the n k new maps, computed the same way.
    new_only = DenseBlock(3, 2, include_input=False)
    new_only.build(x.shape)
    new_only.set_weights(block.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(new_only(x, training=False)), actual[..., 3:], atol=1e-5)


def test_dense_block_dropout_acts_only_in_training():
    x = rng.normal(size=(1, 6, 5, 3)).astype("float32")
    block = DenseBlock(2, 8, dropout=0.5, include_input=False)
    inference = keras.ops.convert_to_numpy(block(x, training=False))
    training = keras.ops.convert_to_numpy(block(x, training=True))
    assert not np.any(inference == 0.0)
    assert 0.2 < np.mean(training[..., :8] == 0.0) < 0.8


def test_transition_down_matches_numpy_on_an_odd_size():
    x = rng.normal(size=(2, 5, 7, 4)).astype("float32")
    layer = TransitionDown()
    layer.build(x.shape)
    randomize(layer, 2)
    norm, conv, _ = layer.unit
    assert conv.kernel.shape == (1, 1, 4, 4)  # the 1x1 convolution keeps the channels
    expected = numpy_max_pool_2x2_floor(numpy_conv_same(numpy_bn_relu(x, norm), conv))
    actual = keras.ops.convert_to_numpy(layer(x, training=False))
    assert actual.shape == (2, 2, 3, 4)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def test_transition_up_matches_numpy_with_centre_crop_and_skip_last():
    layer = TransitionUp()
    layer.build(COARSE.shape, SKIP.shape)
    randomize(layer, 3)
    upsampled = numpy_transposed_conv_stride2(COARSE, layer.upsampling)
    assert upsampled.shape == (2, 9, 7, 6)
    # Lasagne's centre crop: offset (size - target) // 2, here 0 rows and 1 column.
    cropped = upsampled[:, 0:8, 1:6]
    expected = np.concatenate([cropped, SKIP], axis=-1)
    actual = keras.ops.convert_to_numpy(layer(COARSE, SKIP))
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


def test_transition_up_after_transition_down_restores_any_size():
    for height, width in ((9, 7), (8, 6), (33, 34)):
        skip = np.zeros((1, height, width, 3), "float32")
        down = TransitionDown()(skip)
        assert tuple(TransitionUp()(down, skip).shape) == (1, height, width, 6)


def test_transition_up_rejects_a_skip_larger_than_its_output():
    with pytest.raises(ValueError, match="cannot crop"):
        TransitionUp()(COARSE, np.zeros((2, 10, 7, 4), "float32"))


def test_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="num_layers"):
        DenseBlock(0, 12)
    with pytest.raises(TypeError, match="growth_rate"):
        DenseBlock(4, 1.5)
    with pytest.raises(ValueError, match="dropout"):
        TransitionDown(dropout=1.5)


# The other backend's process imports `keras_sceneparse`, which registers these classes
# once the package exports them.
@pytest.mark.slow  # a fresh process per backend; tests/backends covers the mechanism by default
@pytest.mark.parametrize(
    "backend",
    [
        "jax",
        pytest.param(
            "torch", marks=pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="no PyTorch")
        ),
    ],
)
def test_same_outputs_under_other_backend(backend, tmp_path):
    inputs = keras.Input((None, None, 5))
    skip = DenseBlock(2, 3, name="down")(inputs)
    x = TransitionDown(name="transition_down")(skip)
    x = DenseBlock(2, 3, include_input=False, name="bottleneck")(x)
    x = TransitionUp(name="transition_up")(x, skip)
    model = keras.Model(inputs, x)
    randomize(model, 4)
    expected = keras.ops.convert_to_numpy(model(FEATURES))
    (actual,) = run_under_backend(backend, model, [FEATURES], tmp_path)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)
