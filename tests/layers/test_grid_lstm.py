"""GridLSTM2D: the harness, a pixel-by-pixel NumPy reference, the scan order, graph mode
with unknown sizes, and the JAX and PyTorch backends."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_sceneparse.layers.grid_lstm import DIRECTIONS, GridLSTM2D
from tests.harness import OTHER_BACKENDS, run_layer_test, run_under_backend, unknown_size_dataset

REPOSITORY = Path(__file__).resolve().parents[2]
FEATURES = np.random.default_rng(0).normal(size=(2, 5, 7, 3)).astype("float32")


@pytest.mark.parametrize("merge,channels", [("sum", 4), ("concat", 16)])
def test_grid_lstm_harness(merge, channels):
    run_layer_test(
        GridLSTM2D,
        {"units": 4, "merge": merge},
        FEATURES,
        (2, 5, 7, channels),
        symbolic_input_shape=[(None, None, 3)],
        expected_num_trainable_weights=3,
    )


# --- an independent reference: one pixel at a time, in scan order ------------------------


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def numpy_grid_lstm(x, kernel, recurrent_kernel, bias, merge):
    """Byeon et al.'s 2D LSTM from each corner, pixel by pixel, in float64."""
    batch, height, width, _ = x.shape
    units = recurrent_kernel.shape[2]
    outputs = []
    for d, direction in enumerate(DIRECTIONS):
        rows = range(height) if direction.startswith("top") else range(height - 1, -1, -1)
        columns = range(width) if direction.endswith("left") else range(width - 1, -1, -1)
        row_step = 1 if direction.startswith("top") else -1
        column_step = 1 if direction.endswith("left") else -1
        hidden, cell = {}, {}
        zero = np.zeros((batch, units))
        for i in rows:
            for j in columns:
                up, left = (i - row_step, j), (i, j - column_step)
                h_up, c_up = hidden.get(up, zero), cell.get(up, zero)
                h_left, c_left = hidden.get(left, zero), cell.get(left, zero)
                a = x[:, i, j] @ kernel[d] + h_up @ recurrent_kernel[d, 0] + h_left @ recurrent_kernel[d, 1] + bias[d]
                a_input, a_forget_up, a_forget_left, a_cell, a_output = np.split(a, 5, axis=-1)
                cell[i, j] = (
                    _sigmoid(a_input) * np.tanh(a_cell)
                    + _sigmoid(a_forget_up) * c_up
                    + _sigmoid(a_forget_left) * c_left
                )
                hidden[i, j] = _sigmoid(a_output) * np.tanh(cell[i, j])
        outputs.append(np.stack([np.stack([hidden[i, j] for j in range(width)], 1) for i in range(height)], 1))
    return sum(outputs) if merge == "sum" else np.concatenate(outputs, axis=-1)


def _weights(layer):
    return [np.asarray(keras.ops.convert_to_numpy(w), np.float64) for w in layer.weights]


@pytest.mark.parametrize("merge", ["sum", "concat"])
@pytest.mark.parametrize("size", [(5, 7), (7, 5), (1, 4), (3, 1)], ids=str)
def test_grid_lstm_matches_pixel_by_pixel_numpy(merge, size):
    x = np.random.default_rng(1).normal(size=(2, *size, 3)).astype("float32")
    layer = GridLSTM2D(4, merge=merge)
    layer.build(x.shape)
    # Random biases too, so that the forget-gate and zero-boundary handling is exercised.
    layer.bias.assign(np.random.default_rng(2).normal(size=layer.bias.shape))
    kernel, recurrent_kernel, bias = _weights(layer)
    assert kernel.shape == (4, 3, 20) and recurrent_kernel.shape == (4, 2, 4, 20) and bias.shape == (4, 20)
    expected = numpy_grid_lstm(x.astype(np.float64), kernel, recurrent_kernel, bias, merge)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, atol=2e-6)


def test_grid_lstm_initialisation():
    layer = GridLSTM2D(4)
    layer.build((None, None, None, 3))
    kernel, recurrent_kernel, bias = _weights(layer)
    # Forget gates (blocks 1 and 2 of input, forget_up, forget_left, cell, output) at 1.0.
    np.testing.assert_array_equal(bias, np.tile(np.repeat([0.0, 1.0, 1.0, 0.0, 0.0], 4), (4, 1)))
    # Each direction and predecessor is its own orthogonal (units, 5 units) matrix ...
    for block in recurrent_kernel.reshape(8, 4, 20):
        np.testing.assert_allclose(block @ block.T, np.eye(4), atol=1e-5)
    # ... and the four directions start from different weights.
    assert all(not np.allclose(kernel[0], kernel[d]) for d in range(1, 4))
    assert not np.allclose(recurrent_kernel[0, 0], recurrent_kernel[0, 1])
    assert layer.count_params() == 20 * 4 * (3 + 2 * 4 + 1)

    # A seeded initializer still gives every direction its own weights, reproducibly.
    seeded = [GridLSTM2D(4, kernel_initializer=keras.initializers.GlorotUniform(seed=7)) for _ in range(2)]
    for copy in seeded:
        copy.build((None, None, None, 3))
    first, second = (_weights(copy)[0] for copy in seeded)
    np.testing.assert_array_equal(first, second)
    assert all(not np.allclose(first[0], first[d]) for d in range(1, 4))


def test_grid_lstm_information_flows_forward_only():
    height, width, units = 5, 7, 3
    layer = GridLSTM2D(units, merge="concat")
    base = np.random.default_rng(3).normal(size=(1, height, width, 2)).astype("float32")
    # One input per pixel, perturbed at that pixel, after the unperturbed input.
    perturbed = np.repeat(base, height * width + 1, axis=0)
    for p in range(height * width):
        perturbed[1 + p, p // width, p % width] += 3.0
    outputs = keras.ops.convert_to_numpy(layer(perturbed))
    changed = np.abs(outputs[1:] - outputs[:1]).reshape(height, width, height, width, 4, units).max(-1)
    assert changed.max() > 0.1

    # The bottom-right pixel cannot reach the top-left scan's first unit, only its last.
    top_left = changed[..., 0]
    assert top_left[height - 1, width - 1, 0, 0] < 1e-6
    assert top_left[height - 1, width - 1, height - 1, width - 1] > 1e-4
    # Exactly: scan d's unit (i, j) depends on pixel (p, q) when (p, q) precedes it in the
    # scan along both axes.
    rows, columns = np.arange(height), np.arange(width)
    for d, direction in enumerate(DIRECTIONS):
        after_row = rows[None, :] >= rows[:, None] if direction.startswith("top") else rows[None, :] <= rows[:, None]
        after_column = (
            columns[None, :] >= columns[:, None] if direction.endswith("left") else columns[None, :] <= columns[:, None]
        )
        reachable = after_row[:, None, :, None] & after_column[None, :, None, :]  # (p, q, i, j)
        assert changed[..., d][~reachable].max() < 1e-6, direction
        assert changed[..., d][reachable].min() > 1e-5, direction

    # Summed over the four directions, every output pixel depends on every input pixel.
    summed = GridLSTM2D(units)
    summed.build(base.shape)
    summed.set_weights(layer.get_weights())
    sum_outputs = keras.ops.convert_to_numpy(summed(perturbed))
    np.testing.assert_allclose(sum_outputs, outputs.reshape(*outputs.shape[:3], 4, units).sum(3), atol=1e-5)
    assert (np.abs(sum_outputs[1:] - sum_outputs[:1]).max(-1) > 1e-5).all()


# --- graph mode with sizes known only at run time ---------------------------------------


def test_grid_lstm_in_graph_with_unknown_sizes():
    rng = np.random.default_rng(4)
    images = rng.normal(size=(2, 6, 9, 3)).astype("float32")
    targets = rng.normal(size=(2, 6, 9, 4)).astype("float32")
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, GridLSTM2D(4)(inputs))
    eager = keras.ops.convert_to_numpy(model(images))

    np.testing.assert_allclose(model.predict(unknown_size_dataset(images), verbose=0), eager, atol=1e-5)
    function = tf.function(model, input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])
    for size in [(6, 9), (4, 2)]:  # one trace serves every size
        np.testing.assert_allclose(function(images[:, : size[0], : size[1]]), model(images[:, : size[0], : size[1]]), atol=1e-5)
    assert function.experimental_get_tracing_count() == 1

    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(unknown_size_dataset(images, targets), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(not np.allclose(b, w.numpy()) for b, w in zip(before, model.trainable_weights))


def test_grid_lstm_rejects_bad_arguments():
    with pytest.raises(ValueError, match="merge"):
        GridLSTM2D(4, merge="mean")
    with pytest.raises(ValueError, match="units"):
        GridLSTM2D(0)
    with pytest.raises(ValueError, match="channels"):
        GridLSTM2D(4).build((None, None, None, None))


# --- JAX and PyTorch: the same weights give the same output ------------------------------


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_grid_lstm_matches_tensorflow_under_other_backends(backend, tmp_path):
    inputs = keras.Input((None, None, 2))
    model = keras.Model(inputs, GridLSTM2D(3, merge="concat")(inputs))
    x = np.random.default_rng(5).normal(size=(2, 4, 6, 2)).astype("float32")
    (actual,) = run_under_backend(backend, model, [x], tmp_path)
    np.testing.assert_allclose(actual, keras.ops.convert_to_numpy(model(x)), atol=1e-5)
