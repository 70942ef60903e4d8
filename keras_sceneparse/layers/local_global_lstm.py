import keras
import numpy as np
from keras import ops

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float, check_int

#: Offsets ``(dy, dx)`` of the eight neighbours, in the order of the spatial LSTMs: the
#: ``j``-th spatial LSTM of position ``i`` continues the ``j``-th spatial LSTM of the
#: neighbour ``i + NEIGHBOUR_OFFSETS[j]``.
NEIGHBOUR_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
#: Gate blocks along the kernels' last axis; each block holds the nine LSTMs (eight spatial
#: in the order of ``NEIGHBOUR_OFFSETS``, then the depth LSTM) of ``units`` each.
GATES = ("input", "forget", "output", "cell")
_LSTMS = len(NEIGHBOUR_OFFSETS) + 1


@serializable
class LocalGlobalLSTM(keras.layers.Layer):
    """One Local-Global LSTM layer: every position updated at once from its eight neighbours
    and a coarse summary of the whole image.

    Liang, Shen, Xiang, Feng, Lin and Yan, "Semantic Object Parsing with Local-Global Long
    Short-Term Memory", CVPR 2016 (https://arxiv.org/abs/1511.04510), Sec. 3. Each position
    ``i`` holds nine LSTMs in the manner of the Grid LSTM (Kalchbrenner et al., ICLR 2016):
    eight *spatial* LSTMs, one per neighbour direction ``j`` (offsets ``n_j`` in
    ``NEIGHBOUR_OFFSETS``), and one *depth* LSTM whose hidden state is the layer's output.
    Layers are stacked; layer ``t + 1`` reads the CNN features ``f`` again and the state of
    layer ``t``. The LSTM unit is the one of Liang et al. (the output gate inside the
    ``tanh``)::

        LSTM(H, m; W):  g_u = sigmoid(W_u H + b_u)      g_f = sigmoid(W_f H + b_f)
                        g_o = sigmoid(W_o H + b_o)      g_c = tanh(W_c H + b_c)
                        m'  = g_f * m + g_u * g_c       h'  = tanh(g_o * m')

    and the layer computes, at every position ``i`` in parallel::

        global  g_t      = [maxpool over grid cell (a, b) of h^e_t]   a, b = 0..grid-1
        input   H_{i,t}  = [f_i, h^s_{i+n_1,1,t}, ..., h^s_{i+n_8,8,t}, h^e_{i,t}, g_t]
        spatial (h^s_{i,j,t+1}, m^s_{i,j,t+1}) = LSTM(H_{i,t}, m^s_{i+n_j,j,t}; W^s_j)   j = 1..8
        depth   (h^e_{i,t+1}, m^e_{i,t+1})     = LSTM(H_{i,t}, m^e_{i,t}; W^e)

    The local part: the neighbour in direction ``n_j`` hands over the hidden and memory
    cells of its ``j``-th spatial LSTM, so LSTM ``j`` carries context one pixel per layer
    from direction ``n_j`` and forgets it with its own gate. The global part ``g_t``
    (``grid * grid * units`` values, the same for every position) max-pools the previous
    layer's output over a ``grid x grid`` partition of the image (adaptive bins: cell ``a``
    covers rows ``floor(a H / grid)`` to ``ceil((a + 1) H / grid) - 1``), so within one layer
    a pixel sees every other pixel's hidden state. Neighbours outside the image have zero
    hidden and memory cells; with ``state=None`` (the first layer) every cell starts at zero.

    Choices where the paper is not explicit, and ours:

    - the eight spatial LSTMs have separate weights (the abstract: "individual LSTMs for
      distinct spatial dimensions"); all nine LSTMs read the same input ``H_{i,t}``, as in
      a Grid LSTM block;
    - the memory of a spatial LSTM comes from the neighbour it faces (``m^s_{i+n_j,j,t}``),
      the memory of the depth LSTM from the position itself;
    - ``H_{i,t}`` also holds the position's own previous output ``h^e_{i,t}``, as a Grid
      LSTM concatenates the hidden vectors of all its dimensions;
    - global features pool the depth LSTM's hidden map (the layer output), ordered
      row-major over the grid cells;
    - initialisation as ``keras.layers.LSTM``: Glorot-uniform ``kernel``, orthogonal
      ``local_kernel`` and ``global_kernel``, forget-gate biases at ``forget_bias``.

    All nine LSTMs' gates are one ``1x1`` convolution of ``[f, shifted neighbour states,
    own state]`` plus a per-image term from ``g_t``; shifting the eight state maps is one
    depthwise convolution with fixed one-hot ``3x3`` kernels. No loop runs over pixels.

    Weights (``L = 9`` LSTMs, eight spatial then depth; gate blocks of ``9 * units`` in the
    order of ``GATES``): ``kernel`` ``(channels, 4 L units)``, the ``W`` acting on ``f_i``;
    ``local_kernel`` ``(L units, 4 L units)`` acting on ``[h^s_{i+n_1,1}, ..., h^s_{i+n_8,8},
    h^e_i]``; ``global_kernel`` ``(grid^2 units, 4 L units)`` acting on ``g_t``; ``bias``
    ``(4 L units)``.

    Called as ``hidden, state = layer(features, state=None)``: ``features`` ``(B, H, W, C)``,
    ``hidden`` ``(B, H, W, units)`` (the depth LSTM's ``h^e``), and ``state``
    ``(B, H, W, 18 units)``: the hidden cells of the nine LSTMs (eight spatial, then depth;
    ``units`` channels each) followed by their memory cells in the same order. Pass it to
    the next stacked layer, which must have the same ``units``.

    Args:
        units: size of every LSTM's hidden and memory cells.
        grid: the global features max-pool over a ``grid x grid`` partition (3 in the paper).
        kernel_initializer: initializer of ``kernel``.
        recurrent_initializer: initializer of ``local_kernel`` and ``global_kernel``.
        forget_bias: initial bias of the forget gates.

    Example:

    >>> features = keras.ops.ones((2, 12, 10, 8))
    >>> hidden, state = LocalGlobalLSTM(16)(features)
    >>> hidden, state = LocalGlobalLSTM(16)(features, state)
    >>> hidden.shape, state.shape
    (TensorShape([2, 12, 10, 16]), TensorShape([2, 12, 10, 288]))
    """

    def __init__(
        self,
        units,
        grid=3,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        forget_bias=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_int("units", units, minimum=1)
        self.grid = check_int("grid", grid, minimum=1)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.forget_bias = check_float("forget_bias", forget_bias)

    @property
    def state_size(self):
        """Channels of ``state``: hidden and memory cells of the nine LSTMs."""
        return 2 * _LSTMS * self.units

    def build(self, features_shape, state_shape=None):
        channels = features_shape[-1]
        if channels is None:
            raise ValueError(
                f"LocalGlobalLSTM needs a known number of feature channels; got features shape {tuple(features_shape)}."
            )
        self._check_state_shape(features_shape, state_shape)
        gates = len(GATES) * _LSTMS * self.units
        self.kernel = self.add_weight(name="kernel", shape=(channels, gates), initializer=self.kernel_initializer)
        self.local_kernel = self.add_weight(
            name="local_kernel", shape=(_LSTMS * self.units, gates), initializer=self.recurrent_initializer
        )
        self.global_kernel = self.add_weight(
            name="global_kernel", shape=(self.grid**2 * self.units, gates), initializer=self.recurrent_initializer
        )
        self.bias = self.add_weight(name="bias", shape=(gates,), initializer=self._bias_initializer)

    def _bias_initializer(self, shape, dtype=None):
        block = _LSTMS * self.units
        values = np.zeros(shape, "float32")
        values[GATES.index("forget") * block : (GATES.index("forget") + 1) * block] = self.forget_bias
        return ops.convert_to_tensor(values, dtype=dtype)

    def _check_state_shape(self, features_shape, state_shape):
        if state_shape is None:
            return
        if len(state_shape) != 4 or state_shape[-1] not in (None, self.state_size):
            raise ValueError(
                f"LocalGlobalLSTM(units={self.units}): `state` must have shape (batch, height, width, "
                f"{self.state_size}) (hidden and memory cells of 9 LSTMs), got {tuple(state_shape)}."
            )
        for axis in (1, 2):
            if None not in (features_shape[axis], state_shape[axis]) and features_shape[axis] != state_shape[axis]:
                raise ValueError(
                    f"LocalGlobalLSTM: `state` {tuple(state_shape)} and `features` {tuple(features_shape)} "
                    "must have the same height and width."
                )

    def call(self, features, state=None):
        units, block = self.units, _LSTMS * self.units
        if state is None:
            state = ops.zeros_like(features[..., :1]) + ops.zeros((self.state_size,), dtype=features.dtype)
        else:
            self._check_state_shape(features.shape, state.shape)
            state = ops.cast(state, features.dtype)
        hidden, memory = state[..., :block], state[..., block:]
        spatial_units = block - units

        # Local context: the j-th spatial cells of the neighbour i + n_j, in one depthwise
        # convolution over the spatial hidden and memory maps (zeros beyond the border).
        spatial = ops.concatenate([hidden[..., :spatial_units], memory[..., :spatial_units]], axis=-1)
        shifted = ops.depthwise_conv(spatial, self._shift_kernel(features.dtype), padding="same")
        own_hidden, own_memory = hidden[..., spatial_units:], memory[..., spatial_units:]
        local_hidden = ops.concatenate([shifted[..., :spatial_units], own_hidden], axis=-1)
        previous_memory = ops.concatenate([shifted[..., spatial_units:], own_memory], axis=-1)

        global_hidden = grid_max_pool(own_hidden, self.grid)  # (B, grid^2 units)
        per_image = ops.matmul(global_hidden, self.global_kernel) + self.bias
        activations = (
            ops.matmul(features, self.kernel)
            + ops.matmul(local_hidden, self.local_kernel)
            + per_image[:, None, None, :]
        )
        input_gate, forget_gate, output_gate, candidate = ops.split(activations, len(GATES), axis=-1)
        memory = ops.sigmoid(forget_gate) * previous_memory + ops.sigmoid(input_gate) * ops.tanh(candidate)
        hidden = ops.tanh(ops.sigmoid(output_gate) * memory)
        return hidden[..., spatial_units:], ops.concatenate([hidden, memory], axis=-1)

    def _shift_kernel(self, dtype):
        """Depthwise ``3x3`` kernel whose channel block ``j`` reads the pixel at offset
        ``n_j``, for the spatial hidden maps and then the spatial memory maps."""
        kernel = np.zeros((3, 3, 2, len(NEIGHBOUR_OFFSETS), self.units, 1), "float32")
        for j, (dy, dx) in enumerate(NEIGHBOUR_OFFSETS):
            kernel[1 + dy, 1 + dx, :, j] = 1.0
        return ops.convert_to_tensor(kernel.reshape(3, 3, -1, 1), dtype=dtype)

    def compute_output_shape(self, features_shape, state_shape=None):
        return (*features_shape[:-1], self.units), (*features_shape[:-1], self.state_size)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "grid": self.grid,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "forget_bias": self.forget_bias,
        }


def grid_max_pool(x, grid):
    """Max over each cell of a ``grid x grid`` partition of ``x`` ``(B, H, W, C)``:
    ``(B, grid * grid * C)``, cells row-major. Bins are adaptive (cell ``a`` spans
    ``floor(a H / grid)`` to ``ceil((a + 1) H / grid)``), never empty, and may overlap when
    ``H`` is not a multiple of ``grid``; sizes may be unknown until run time."""
    height, width = ops.shape(x)[1], ops.shape(x)[2]

    def bins(size):
        positions = ops.arange(size)
        return [
            ops.logical_and(positions >= (a * size) // grid, positions < ((a + 1) * size + grid - 1) // grid)
            for a in range(grid)
        ]

    rows = [ops.max(ops.where(inside[None, :, None, None], x, float("-inf")), axis=1) for inside in bins(height)]
    cells = [
        ops.max(ops.where(inside[None, :, None], row, float("-inf")), axis=1) for row in rows for inside in bins(width)
    ]
    return ops.concatenate(cells, axis=-1)
