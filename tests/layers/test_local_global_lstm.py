import importlib.util
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_sceneparse.layers.local_global_lstm import NEIGHBOUR_OFFSETS, LocalGlobalLSTM
from tests.harness import run_layer_test, run_under_backend

rng = np.random.default_rng(0)
FEATURES = rng.normal(size=(2, 9, 7, 8)).astype("float32")
UNITS = 4
STATE = rng.normal(size=(2, 9, 7, 18 * UNITS)).astype("float32")


@pytest.mark.parametrize(
    "kwargs,inputs,symbolic",
    [
        ({"units": UNITS}, FEATURES, [(None, None, 8)]),
        ({"units": UNITS, "grid": 2}, (FEATURES, STATE), [(None, None, 8), (None, None, 18 * UNITS)]),
    ],
    ids=["first_layer", "stacked"],
)
def test_harness(kwargs, inputs, symbolic):
    run_layer_test(
        LocalGlobalLSTM, kwargs, inputs, ((2, 9, 7, UNITS), (2, 9, 7, 18 * UNITS)), symbolic_input_shape=symbolic
    )


# --- the paper's equations, literally: one position and one LSTM at a time ---------------


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_local_global_lstm(layer, features, state):
    """LG-LSTM (Liang et al., CVPR 2016) with explicit loops over positions and LSTMs."""
    kernel, local_kernel, global_kernel, bias = (np.asarray(w.numpy(), np.float64) for w in layer.weights)
    stacked_kernel = np.concatenate([kernel, local_kernel, global_kernel])
    units, grid, lstms = layer.units, layer.grid, 9
    batch, height, width, _ = features.shape
    hidden = state[..., : lstms * units].reshape(batch, height, width, lstms, units)
    memory = state[..., lstms * units :].reshape(batch, height, width, lstms, units)
    new_hidden = np.zeros_like(hidden, dtype=np.float64)
    new_memory = np.zeros_like(memory, dtype=np.float64)
    for b in range(batch):
        depth_hidden = hidden[b, :, :, 8]
        global_features = []
        for a in range(grid):
            rows = slice(math.floor(a * height / grid), math.ceil((a + 1) * height / grid))
            for c in range(grid):
                cols = slice(math.floor(c * width / grid), math.ceil((c + 1) * width / grid))
                global_features.append(depth_hidden[rows, cols].max(axis=(0, 1)))
        for y in range(height):
            for x in range(width):
                neighbour_hidden, previous_memory = [], []
                for j, (dy, dx) in enumerate(NEIGHBOUR_OFFSETS):
                    ny, nx = y + dy, x + dx
                    inside = 0 <= ny < height and 0 <= nx < width
                    neighbour_hidden.append(hidden[b, ny, nx, j] if inside else np.zeros(units))
                    previous_memory.append(memory[b, ny, nx, j] if inside else np.zeros(units))
                neighbour_hidden.append(hidden[b, y, x, 8])
                previous_memory.append(memory[b, y, x, 8])
                lstm_input = np.concatenate([features[b, y, x], *neighbour_hidden, *global_features])
                for k in range(lstms):
                    gate = {}
                    for g, name in enumerate(("input", "forget", "output", "cell")):
                        columns = slice(g * lstms * units + k * units, g * lstms * units + (k + 1) * units)
                        gate[name] = lstm_input @ stacked_kernel[:, columns] + bias[columns]
                    m = sigmoid(gate["forget"]) * previous_memory[k] + sigmoid(gate["input"]) * np.tanh(gate["cell"])
                    new_memory[b, y, x, k] = m
                    new_hidden[b, y, x, k] = np.tanh(sigmoid(gate["output"]) * m)
    flat = (batch, height, width, lstms * units)
    return new_hidden[:, :, :, 8], np.concatenate([new_hidden.reshape(flat), new_memory.reshape(flat)], axis=-1)


@pytest.mark.parametrize("grid,size", [(3, (5, 7)), (2, (4, 3)), (3, (2, 2))])
def test_matches_numpy_equations(grid, size):
    features = rng.normal(size=(2, *size, 3)).astype("float32")
    state = rng.normal(size=(2, *size, 18 * 3)).astype("float32")
    layer = LocalGlobalLSTM(3, grid=grid)
    hidden, new_state = layer(features, state)
    expected_hidden, expected_state = numpy_local_global_lstm(layer, features, state)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(hidden), expected_hidden, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(new_state), expected_state, atol=1e-5)
    # Without a state, every cell starts at zero.
    first, _ = layer(features)
    expected_first, _ = numpy_local_global_lstm(layer, features, np.zeros_like(state))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(first), expected_first, atol=1e-5)


def changed_positions(layer, features, state, other_state):
    before = keras.ops.convert_to_numpy(layer(features, state)[0])
    after = keras.ops.convert_to_numpy(layer(features, other_state)[0])
    return set(zip(*np.nonzero(np.abs(after - before).max(axis=(0, -1)) > 1e-7)))


def test_global_grid_reaches_far_pixels_local_part_only_neighbours():
    layer = LocalGlobalLSTM(3, grid=3)
    features = rng.normal(size=(1, 9, 9, 2)).astype("float32")
    state = rng.uniform(-0.5, 0.5, size=(1, 9, 9, 54)).astype("float32")
    perturbed = state.copy()
    perturbed[0, 0, 0] += 5.0  # every cell of the top-left pixel, its depth output included
    # The global max-pooling carries the top-left pixel to the opposite corner in one layer.
    assert (8, 8) in changed_positions(layer, features, state, perturbed)

    kernel, local_kernel, global_kernel, bias = layer.get_weights()
    layer.set_weights([kernel, local_kernel, np.zeros_like(global_kernel), bias])
    # Without the global part, a pixel's state reaches only its 3x3 neighbourhood.
    assert changed_positions(layer, features, state, perturbed) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    centre = state.copy()
    centre[0, 4, 4] += 5.0
    assert changed_positions(layer, features, state, centre) == {(y, x) for y in (3, 4, 5) for x in (3, 4, 5)}
    # Features enter at their own position only.
    moved = features.copy()
    moved[0, 4, 4] += 5.0
    before = keras.ops.convert_to_numpy(layer(features, state)[0])
    after = keras.ops.convert_to_numpy(layer(moved, state)[0])
    assert set(zip(*np.nonzero(np.abs(after - before).max(axis=(0, -1)) > 1e-7))) == {(4, 4)}


def test_stacked_layers_in_a_compiled_graph_with_unknown_sizes():
    first, second = LocalGlobalLSTM(4), LocalGlobalLSTM(4)

    def parse(features):
        _, state = first(features)
        return second(features, state)

    eager = parse(FEATURES)
    compiled = tf.function(parse, input_signature=[tf.TensorSpec((None, None, None, 8))])
    for expected, actual in zip(eager, compiled(FEATURES)):
        np.testing.assert_allclose(actual.numpy(), keras.ops.convert_to_numpy(expected), atol=1e-6)
    # A different size through the same traced graph.
    assert tuple(compiled(FEATURES[:1, :5, :6])[0].shape) == (1, 5, 6, 4)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="units"):
        LocalGlobalLSTM(0)
    with pytest.raises(ValueError, match="state"):
        LocalGlobalLSTM(4)(FEATURES, STATE[..., :10])


# --- the same weights under another backend ----------------------------------------------



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
    features, state = keras.Input((None, None, 8)), keras.Input((None, None, 18 * UNITS))
    hidden, new_state = LocalGlobalLSTM(UNITS)(features, state)
    hidden, _ = LocalGlobalLSTM(UNITS)(features, new_state)
    model = keras.Model([features, state], hidden)
    expected = keras.ops.convert_to_numpy(model([FEATURES, STATE]))
    (actual,) = run_under_backend(backend, model, [FEATURES, STATE], tmp_path)
    np.testing.assert_allclose(actual, expected, atol=1e-5)
