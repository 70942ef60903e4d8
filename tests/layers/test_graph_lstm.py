import importlib.util

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_sceneparse.layers.graph_lstm import GraphLSTM, confidence_order
from tests.harness import run_layer_test, run_under_backend

rng = np.random.default_rng(0)
UNITS = 4


def random_graph(batch, nodes, channels, real=None, density=0.4, seed=0):
    """Node features, a symmetric 0/1 adjacency, a random order and a node mask with the
    first ``real[b]`` nodes real; padded nodes get garbage features and edges."""
    generator = np.random.default_rng(seed)
    features = generator.normal(size=(batch, nodes, channels)).astype("float32")
    adjacency = (generator.random((batch, nodes, nodes)) < density).astype("float32")
    adjacency = np.maximum(adjacency, adjacency.transpose(0, 2, 1))
    order = np.stack([generator.permutation(nodes) for _ in range(batch)]).astype("int32")
    mask = np.ones((batch, nodes), "float32")
    for b, count in enumerate(real or []):
        mask[b, count:] = 0.0
    return features, adjacency, order, mask


GRAPH = random_graph(2, 6, 5, real=[6, 4])


def test_harness():
    run_layer_test(
        GraphLSTM,
        {"units": UNITS},
        GRAPH,
        ((2, 6, UNITS), (2, 6, 2 * UNITS)),
        symbolic_input_shape=[(None, 5), (None, None), (None,), (None,)],
    )


def test_harness_with_state():
    state = rng.normal(size=(2, 6, 2 * UNITS)).astype("float32")
    run_layer_test(
        GraphLSTM,
        {"units": UNITS},
        (*GRAPH, state),
        ((2, 6, UNITS), (2, 6, 2 * UNITS)),
        symbolic_input_shape=[(None, 5), (None, None), (None,), (None,), (None, 2 * UNITS)],
    )


# --- the paper's equations, literally: one node and one neighbour at a time ---------------


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_graph_lstm(layer, features, adjacency, order, mask, state=None):
    """Graph LSTM (Liang et al., ECCV 2016, Eq. 1-2) with explicit loops over nodes."""
    weights = {w.path.split("/")[-1]: np.asarray(w.numpy(), np.float64) for w in layer.weights}
    u = layer.units
    W, U, bias = weights["kernel"], weights["recurrent_kernel"], weights["bias"]
    Wu, Wf, Wo, Wc = (W[:, k * u : (k + 1) * u] for k in range(4))
    Uu, Uf, Uo, Uc = (U[:, k * u : (k + 1) * u] for k in range(4))
    bu, bf, bo, bc = (bias[k * u : (k + 1) * u] for k in range(4))
    Uun, Uon, Ucn = (weights["neighbour_kernel"][:, k * u : (k + 1) * u] for k in range(3))
    Ufn = weights["neighbour_forget_kernel"]
    batch, nodes, _ = features.shape
    state = np.zeros((batch, nodes, 2 * u)) if state is None else state
    hidden_out = np.zeros((batch, nodes, u))
    state_out = np.zeros((batch, nodes, 2 * u))
    for b in range(batch):
        h_old, m_old = state[b, :, :u].astype(np.float64), state[b, :, u:].astype(np.float64)
        h_new, m_new = np.zeros_like(h_old), np.zeros_like(m_old)
        updated = np.zeros(nodes, bool)  # q_j
        for i in order[b]:
            if not mask[b, i]:
                continue
            f = features[b, i].astype(np.float64)
            neighbours = [j for j in range(nodes) if j != i and adjacency[b, i, j] and mask[b, j]]
            h_bar = np.zeros(u)
            memory_sum = np.zeros(u)
            for j in neighbours:
                q = float(updated[j])
                h_bar += q * h_new[j] + (1 - q) * h_old[j]
                g_fbar = sigmoid(f @ Wf + h_old[j] @ Ufn + bf)
                memory_sum += q * g_fbar * m_new[j] + (1 - q) * g_fbar * m_old[j]
            if neighbours:
                h_bar /= len(neighbours)
                memory_sum /= len(neighbours)
            g_u = sigmoid(f @ Wu + h_old[i] @ Uu + h_bar @ Uun + bu)
            g_f = sigmoid(f @ Wf + h_old[i] @ Uf + bf)
            g_o = sigmoid(f @ Wo + h_old[i] @ Uo + h_bar @ Uon + bo)
            g_c = np.tanh(f @ Wc + h_old[i] @ Uc + h_bar @ Ucn + bc)
            m_new[i] = memory_sum + g_f * m_old[i] + g_u * g_c
            h_new[i] = np.tanh(g_o * m_new[i])
            updated[i] = True
        for i in range(nodes):
            if mask[b, i]:
                hidden_out[b, i] = h_new[i] if updated[i] else h_old[i]
                state_out[b, i] = np.concatenate([hidden_out[b, i], m_new[i] if updated[i] else m_old[i]])
    return hidden_out, state_out


def as_numpy(outputs):
    return [keras.ops.convert_to_numpy(o) for o in outputs]


@pytest.mark.parametrize("with_state", [False, True])
def test_matches_numpy_equations(with_state):
    features, adjacency, order, mask = random_graph(3, 7, 4, real=[7, 5, 3], seed=1)
    adjacency[0, 2, :] = adjacency[0, :, 2] = 0  # an isolated node
    state = rng.normal(size=(3, 7, 2 * UNITS)).astype("float32") if with_state else None
    layer = GraphLSTM(UNITS)
    hidden, new_state = as_numpy(layer(features, adjacency, order, mask, state))
    expected_hidden, expected_state = numpy_graph_lstm(layer, features, adjacency, order, mask, state)
    np.testing.assert_allclose(hidden, expected_hidden, atol=1e-5)
    np.testing.assert_allclose(new_state, expected_state, atol=1e-5)


CHAIN = np.array([[[0, 1, 0], [1, 0, 1], [0, 1, 0]]], "float32")  # 0 - 1 - 2
ALL_REAL = np.ones((1, 3), "float32")


def test_update_order_and_q_semantics_on_a_chain():
    layer = GraphLSTM(UNITS)
    features = rng.normal(size=(1, 3, 5)).astype("float32")
    state = rng.normal(size=(1, 3, 2 * UNITS)).astype("float32")
    moved = features.copy()
    moved[0, 2] += 3.0  # only node 2's features change

    def run(order, node_features):
        return as_numpy(layer(node_features, CHAIN, np.array([order], "int32"), ALL_REAL, state))[0][0]

    forward, backward = run([0, 1, 2], features), run([2, 1, 0], features)
    assert not np.allclose(forward, backward), "the update order must matter"
    # Order 0, 1, 2: nodes 0 and 1 see node 2's old state (q = 0), which its features do
    # not change; node 2 itself does change.
    forward_moved = run([0, 1, 2], moved)
    np.testing.assert_allclose(forward_moved[:2], forward[:2], atol=1e-7)
    assert not np.allclose(forward_moved[2], forward[2])
    # Order 2, 1, 0: node 2's new state flows through node 1's new state into node 0.
    backward_moved = run([2, 1, 0], moved)
    assert not np.allclose(backward_moved[0], backward[0])
    # Node 1, updated second, averages node 0's *new* state (q = 1) and node 2's *old* one
    # (q = 0); the adaptive forget gates read the neighbours' old hidden states.
    _, new_state = as_numpy(layer(features, CHAIN, np.array([[0, 1, 2]], "int32"), ALL_REAL, state))
    u = UNITS
    W, U, Un, Ufn, bias = (w.numpy().astype(np.float64) for w in layer.weights)
    h_old, m_old = state[0, :, :u], state[0, :, u:]
    h0_new, m0_new = new_state[0, 0, :u], new_state[0, 0, u:]
    h_bar = (h0_new + h_old[2]) / 2
    a = features[0, 1] @ W + h_old[1] @ U + bias
    a_n = h_bar @ Un
    forget_input = features[0, 1] @ W[:, u : 2 * u] + bias[u : 2 * u]
    neighbour_memory = (
        sigmoid(forget_input + h_old[0] @ Ufn) * m0_new + sigmoid(forget_input + h_old[2] @ Ufn) * m_old[2]
    ) / 2
    own_memory = sigmoid(a[u : 2 * u]) * m_old[1]
    memory = neighbour_memory + own_memory + sigmoid(a[:u] + a_n[:u]) * np.tanh(a[3 * u :] + a_n[2 * u :])
    hidden = np.tanh(sigmoid(a[2 * u : 3 * u] + a_n[u : 2 * u]) * memory)
    np.testing.assert_allclose(new_state[0, 1], np.concatenate([hidden, memory]), atol=1e-5)


def test_padded_nodes_do_not_influence_real_ones():
    layer = GraphLSTM(UNITS)
    features = rng.normal(size=(1, 3, 5)).astype("float32")
    real, _ = as_numpy(layer(features, CHAIN, np.array([[1, 0, 2]], "int32"), ALL_REAL))
    # The same graph padded to 5 nodes, padded nodes with large features, edges to every
    # node and places early in the order.
    padded_features = np.concatenate([features, np.full((1, 2, 5), 50.0, "float32")], axis=1)
    padded_adjacency = np.ones((1, 5, 5), "float32")
    padded_adjacency[0, :3, :3] = CHAIN[0]
    mask = np.array([[1, 1, 1, 0, 0]], "float32")
    hidden, state = as_numpy(layer(padded_features, padded_adjacency, np.array([[3, 1, 4, 0, 2]], "int32"), mask))
    np.testing.assert_allclose(hidden[:, :3], real, atol=1e-6)
    np.testing.assert_array_equal(hidden[:, 3:], 0.0)
    np.testing.assert_array_equal(state[:, 3:], 0.0)


def test_isolated_node_is_a_plain_lstm_step():
    layer = GraphLSTM(UNITS)
    features = rng.normal(size=(1, 3, 5)).astype("float32")
    adjacency = np.zeros((1, 3, 3), "float32")
    adjacency[0, 0, 1] = adjacency[0, 1, 0] = 1.0  # node 2 has no neighbour
    hidden, _ = as_numpy(layer(features, adjacency, np.array([[0, 1, 2]], "int32"), ALL_REAL))
    kernel, _, _, _, bias = (w.numpy() for w in layer.weights)
    a = features[0, 2] @ kernel + bias  # zero initial state: no recurrent term
    g_u, _, g_o, g_c = np.split(a, 4)  # the forget gate acts on a zero memory
    expected = np.tanh(sigmoid(g_o) * sigmoid(g_u) * np.tanh(g_c))
    np.testing.assert_allclose(hidden[0, 2], expected, atol=1e-6)
    assert np.all(np.isfinite(hidden))


def test_confidence_order():
    confidence = np.array([[0.2, 0.9, 0.5, 0.9, 0.7], [0.1, 0.3, 0.3, 0.8, 0.99]], "float32")
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], "float32")
    # Most confident first, ties by index, padded nodes last (ties by index among them).
    expected = [[1, 3, 4, 2, 0], [1, 2, 0, 3, 4]]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(confidence_order(confidence, mask)), expected)
    compiled = tf.function(confidence_order, input_signature=[tf.TensorSpec((None, None))] * 2)
    np.testing.assert_array_equal(compiled(confidence, mask).numpy(), expected)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(confidence_order(confidence[:1])), expected[:1])


def test_compiled_graph_with_unknown_number_of_nodes():
    layer = GraphLSTM(UNITS)
    eager = as_numpy(layer(*GRAPH))
    signature = [
        tf.TensorSpec((None, None, 5)), tf.TensorSpec((None, None, None)),
        tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None, None)),
    ]
    compiled = tf.function(lambda *graph: layer(*graph), input_signature=signature)
    for expected, actual in zip(eager, compiled(*GRAPH)):
        np.testing.assert_allclose(actual.numpy(), expected, atol=1e-6)
    smaller = random_graph(1, 3, 5, seed=3)
    np.testing.assert_allclose(compiled(*smaller)[0].numpy(), as_numpy(layer(*smaller))[0], atol=1e-6)


def test_rejects_mismatched_shapes():
    features, adjacency, order, mask = GRAPH
    with pytest.raises(ValueError, match="number of\\s+nodes"):
        GraphLSTM(UNITS)(features, adjacency[:, :5, :5], order, mask)
    with pytest.raises(ValueError, match="adjacency"):
        GraphLSTM(UNITS)(features, adjacency[:, 0], order, mask)


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
    features, adjacency, order, mask = random_graph(2, 8, 5, real=[8, 6], seed=2)
    order = keras.ops.convert_to_numpy(confidence_order(rng.random((2, 8)).astype("float32"), mask))
    inputs = [
        keras.Input((None, 5)), keras.Input((None, None)), keras.Input((None,), dtype="int32"), keras.Input((None,))
    ]
    hidden, state = GraphLSTM(UNITS)(*inputs)
    hidden, _ = GraphLSTM(UNITS)(*inputs, state)
    model = keras.Model(inputs, hidden)
    graph = [features, adjacency, order, mask]
    expected = keras.ops.convert_to_numpy(model(graph))
    (actual,) = run_under_backend(backend, model, graph, tmp_path)
    np.testing.assert_allclose(actual, expected, atol=1e-5)
