import keras
from keras import ops

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float, check_int

#: Gate blocks along the last axis of ``kernel``, ``recurrent_kernel`` and ``bias``.
GATES = ("input", "forget", "output", "cell")
#: Gate blocks of ``neighbour_kernel``, which acts on the averaged neighbour state.
NEIGHBOUR_GATES = ("input", "output", "cell")


@serializable
class GraphLSTM(keras.layers.Layer):
    """Graph LSTM over superpixel graphs: nodes updated one at a time, most confident first.

    Liang, Shen, Feng, Lin and Yan, "Semantic Object Parsing with Graph LSTM", ECCV 2016
    (https://arxiv.org/abs/1603.07063), Sec. 3. Nodes are superpixels, edges join
    adjacent superpixels. One layer updates every node once, in the given order (the
    paper's confidence-driven scheme: see :func:`confidence_order`); when node ``i`` is
    updated, a neighbour ``j`` already updated in this layer (``q_j = 1``) contributes its
    new state ``t + 1``, any other neighbour (``q_j = 0``) its old state ``t``. With
    ``N_i`` the neighbours of ``i``, the paper's update equations::

        hbar_i     = 1/|N_i| sum_{j in N_i} [q_j h_{j,t+1} + (1 - q_j) h_{j,t}]
        g^u_i      = sigmoid(W^u f_i + U^u h_{i,t} + U^un hbar_i + b^u)
        g^f_i      = sigmoid(W^f f_i + U^f h_{i,t} + b^f)
        gbar^f_ij  = sigmoid(W^f f_i + U^fn h_{j,t} + b^f)
        g^o_i      = sigmoid(W^o f_i + U^o h_{i,t} + U^on hbar_i + b^o)
        g^c_i      = tanh(W^c f_i + U^c h_{i,t} + U^cn hbar_i + b^c)
        m_{i,t+1}  = 1/|N_i| sum_{j in N_i} [q_j gbar^f_ij * m_{j,t+1} + (1 - q_j) gbar^f_ij * m_{j,t}]
                     + g^f_i * m_{i,t} + g^u_i * g^c_i
        h_{i,t+1}  = tanh(g^o_i * m_{i,t+1})

    The adaptive forget gate ``gbar^f_ij`` decides, per neighbour, how much of its memory
    flows into node ``i``; ``W^f`` and ``b^f`` are shared with the node's own forget gate,
    as the equations write them. An isolated node (``|N_i| = 0``) has ``hbar_i = 0`` and no
    neighbour memory term.

    Batches hold graphs of different sizes padded to ``N`` nodes: padded nodes
    (``node_mask = 0``) are never updated, never count as neighbours, and their outputs are
    zero. The update is a ``keras.ops.fori_loop`` over the ``N`` positions of ``order``
    (one node of every graph of the batch per step): each step gathers the node's row with
    a one-hot product and writes its new state back with ``where``; ``N`` may be unknown
    until run time.

    Choices the paper leaves open, and ours:

    - the adjacency's diagonal is ignored (a node is not its own neighbour; its own memory
      enters through ``g^f_i``) and edges are taken as given (symmetrise them for an
      undirected graph: :func:`keras_sceneparse.structure.superpixels.region_adjacency` does);
    - ``gbar^f_ij`` reads the neighbour's old hidden state ``h_{j,t}`` even when ``q_j = 1``,
      as the paper's equation writes it;
    - ``order`` should list every node once (a permutation); a node listed twice is updated
      twice, a node not listed keeps its old state;
    - initialisation as ``keras.layers.LSTM``: Glorot-uniform ``kernel``, orthogonal
      recurrent kernels, forget-gate biases at ``forget_bias``; zero initial state.

    Weights (gate blocks of ``units`` in the order of ``GATES``): ``kernel``
    ``(channels, 4 units)``, the ``W``; ``recurrent_kernel`` ``(units, 4 units)``, the
    ``U`` on the node's own hidden state; ``neighbour_kernel`` ``(units, 3 units)``, the
    ``U^un, U^on, U^cn`` on ``hbar_i`` (order of ``NEIGHBOUR_GATES``);
    ``neighbour_forget_kernel`` ``(units, units)``, the ``U^fn``; ``bias`` ``(4 units)``.

    Called as ``hidden, state = layer(node_features, adjacency, order, node_mask,
    state=None)`` with ``node_features`` ``(B, N, C)``, ``adjacency`` ``(B, N, N)`` (0/1),
    ``order`` ``(B, N)`` node indices in update order, ``node_mask`` ``(B, N)`` (1 for real
    nodes); ``hidden`` is ``(B, N, units)`` and ``state`` ``(B, N, 2 units)``, the hidden
    then the memory cells, to pass to the next stacked layer.

    Args:
        units: size of each node's hidden and memory cells.
        kernel_initializer: initializer of ``kernel``.
        recurrent_initializer: initializer of the three recurrent kernels.
        forget_bias: initial bias of the forget gate.

    Example:

    >>> features = keras.ops.ones((1, 3, 8))
    >>> chain = keras.ops.convert_to_tensor([[[0, 1, 0], [1, 0, 1], [0, 1, 0]]])
    >>> mask = keras.ops.ones((1, 3))
    >>> order = confidence_order(keras.ops.convert_to_tensor([[0.2, 0.9, 0.5]]), mask)  # [[1, 2, 0]]
    >>> hidden, state = GraphLSTM(16)(features, chain, order, mask)
    >>> hidden.shape
    TensorShape([1, 3, 16])
    """

    def __init__(
        self,
        units,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        forget_bias=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_int("units", units, minimum=1)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.forget_bias = check_float("forget_bias", forget_bias)

    @property
    def state_size(self):
        """Channels of ``state``: hidden and memory cells."""
        return 2 * self.units

    def build(
        self, node_features_shape, adjacency_shape=None, order_shape=None, node_mask_shape=None, state_shape=None
    ):
        channels = node_features_shape[-1]
        if channels is None:
            raise ValueError(
                f"GraphLSTM needs a known number of node feature channels; got node_features shape "
                f"{tuple(node_features_shape)}."
            )
        units = self.units
        self.kernel = self.add_weight(name="kernel", shape=(channels, 4 * units), initializer=self.kernel_initializer)
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(units, 4 * units), initializer=self.recurrent_initializer
        )
        self.neighbour_kernel = self.add_weight(
            name="neighbour_kernel", shape=(units, 3 * units), initializer=self.recurrent_initializer
        )
        self.neighbour_forget_kernel = self.add_weight(
            name="neighbour_forget_kernel", shape=(units, units), initializer=self.recurrent_initializer
        )
        self.bias = self.add_weight(name="bias", shape=(4 * units,), initializer=self._bias_initializer)

    def _bias_initializer(self, shape, dtype=None):
        forget = GATES.index("forget")
        values = [self.forget_bias if gate == forget else 0.0 for gate in range(len(GATES)) for _ in range(self.units)]
        return ops.convert_to_tensor(values, dtype=dtype)

    def call(self, node_features, adjacency, order, node_mask, state=None):
        _check_graph_shapes(node_features.shape, adjacency.shape, order.shape, node_mask.shape)
        dtype, units = node_features.dtype, self.units
        num_nodes = ops.shape(node_features)[1]
        node_mask = ops.cast(node_mask, dtype)
        order = ops.cast(order, "int32")
        if state is None:
            state = ops.zeros_like(node_features[..., :1]) + ops.zeros((self.state_size,), dtype=dtype)
        else:
            if state.shape[-1] not in (None, self.state_size):
                raise ValueError(
                    f"GraphLSTM(units={units}): `state` must have shape (batch, nodes, {self.state_size}), "
                    f"got {tuple(state.shape)}."
                )
            state = ops.cast(state, dtype)
        old_hidden, old_memory = state[..., :units], state[..., units:]

        positions = ops.arange(num_nodes)
        not_self = ops.cast(ops.not_equal(positions[:, None], positions[None, :]), dtype)
        neighbours = ops.cast(adjacency, dtype) * not_self * node_mask[:, :, None] * node_mask[:, None, :]

        # Everything that depends only on old states is computed for all nodes at once.
        input_terms = ops.matmul(node_features, self.kernel) + self.bias
        forget = GATES.index("forget")
        forget_input = input_terms[..., forget * units : (forget + 1) * units]  # W^f f_i + b^f
        own_terms = input_terms + ops.matmul(old_hidden, self.recurrent_kernel)
        neighbour_forget_terms = ops.matmul(old_hidden, self.neighbour_forget_kernel)  # U^fn h_{j,t}
        per_node = ops.concatenate([own_terms, forget_input, old_memory, node_mask[..., None]], axis=-1)

        def update(step, current):
            selected = ops.one_hot(ops.take(order, step, axis=1), num_nodes, dtype=dtype)[:, None, :]  # (B, 1, N)
            node = ops.matmul(selected, per_node)[:, 0]
            row = ops.matmul(selected, neighbours)  # (B, 1, N): the neighbours of the node
            count = ops.maximum(ops.sum(row, axis=-1), 1.0)  # (B, 1)
            # `current` holds h_{j,t+1}, m_{j,t+1} for the nodes already updated (q_j = 1)
            # and h_{j,t}, m_{j,t} for the others.
            current_hidden, current_memory = current[..., :units], current[..., units:]
            mean_hidden = ops.matmul(row, current_hidden)[:, 0] / count
            own, node_forget_input = node[:, : 4 * units], node[:, 4 * units : 5 * units]
            node_memory, node_is_real = node[:, 5 * units : 6 * units], node[:, 6 * units :]

            input_a, forget_a, output_a, cell_a = ops.split(own, len(GATES), axis=-1)
            input_n, output_n, cell_n = ops.split(ops.matmul(mean_hidden, self.neighbour_kernel), 3, axis=-1)
            adaptive_forget = ops.sigmoid(node_forget_input[:, None, :] + neighbour_forget_terms)  # gbar^f_ij
            neighbour_memory = ops.matmul(row, adaptive_forget * current_memory)[:, 0] / count
            memory = (
                neighbour_memory
                + ops.sigmoid(forget_a) * node_memory
                + ops.sigmoid(input_a + input_n) * ops.tanh(cell_a + cell_n)
            )
            hidden = ops.tanh(ops.sigmoid(output_a + output_n) * memory)
            write = ops.transpose(selected, (0, 2, 1)) * node_is_real[:, None, :] > 0  # (B, N, 1)
            return ops.where(write, ops.concatenate([hidden, memory], axis=-1)[:, None, :], current)

        state = ops.fori_loop(0, ops.shape(order)[1], update, state)
        state = ops.where(node_mask[..., None] > 0, state, ops.zeros((), dtype=dtype))
        return state[..., :units], state

    def compute_output_shape(
        self, node_features_shape, adjacency_shape, order_shape, node_mask_shape, state_shape=None
    ):
        nodes = node_features_shape[:-1]
        return (*nodes, self.units), (*nodes, self.state_size)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "forget_bias": self.forget_bias,
        }


_GRAPH_INPUTS = {
    "node_features": "(batch, nodes, channels)",
    "adjacency": "(batch, nodes, nodes)",
    "order": "(batch, nodes)",
    "node_mask": "(batch, nodes)",
}


def _check_graph_shapes(*shapes):
    shapes = dict(zip(_GRAPH_INPUTS, shapes))
    for name, shape in shapes.items():
        if len(shape) != _GRAPH_INPUTS[name].count(",") + 1:
            raise ValueError(f"GraphLSTM: `{name}` must have shape {_GRAPH_INPUTS[name]}, got {tuple(shape)}.")
    sizes = [shapes["node_features"][1], *shapes["adjacency"][1:], shapes["order"][1], shapes["node_mask"][1]]
    if len({size for size in sizes if size is not None}) > 1:
        raise ValueError(
            "GraphLSTM: `node_features`, `adjacency`, `order` and `node_mask` must agree on the number of "
            f"nodes; got shapes {', '.join(f'{name}={tuple(shape)}' for name, shape in shapes.items())}."
        )


def confidence_order(confidence, node_mask=None):
    """Update order of the confidence-driven scheme: ``(B, N)`` node indices, most confident
    first, padded nodes (``node_mask = 0``) last, in index order.

    Liang et al., ECCV 2016, Sec. 3: the nodes whose initial predictions are most
    confident are updated first, so that their states guide the less confident ones.
    ``confidence`` ``(B, N)`` is, e.g., each superpixel's largest class probability. Ties
    keep the lower index first, under every backend (the rank of a node is the number of
    nodes that come before it, an ``O(N^2)`` comparison rather than a sort, whose tie
    handling differs between backends).
    """
    confidence = ops.convert_to_tensor(confidence)
    valid = ops.ones_like(confidence, dtype="bool") if node_mask is None else ops.cast(node_mask, "bool")
    positions = ops.arange(ops.shape(confidence)[1])
    # before[b, j, i]: node j comes before node i.
    valid_j, valid_i = valid[:, :, None], valid[:, None, :]
    conf_j, conf_i = confidence[:, :, None], confidence[:, None, :]
    lower_index = (positions[:, None] < positions[None, :])[None]
    both_valid, both_padded = ops.logical_and(valid_j, valid_i), ops.logical_not(ops.logical_or(valid_j, valid_i))
    more_confident = ops.logical_or(conf_j > conf_i, ops.logical_and(ops.equal(conf_j, conf_i), lower_index))
    before = ops.logical_or(
        ops.logical_and(valid_j, ops.logical_not(valid_i)),
        ops.logical_or(ops.logical_and(both_valid, more_confident), ops.logical_and(both_padded, lower_index)),
    )
    rank = ops.sum(ops.cast(before, "int32"), axis=1)  # (B, N): position of node i in the order
    return ops.cast(ops.argmax(ops.one_hot(rank, ops.shape(confidence)[1]), axis=1), "int32")
