import math

import keras
from keras import ops

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int

# The corner each scan starts from, in the order of the weights' leading axis and of the
# channel blocks of `merge="concat"`. A scan from another corner is the top-left scan of
# the input flipped along these axes of a (batch, height, width, channels) tensor.
DIRECTIONS = ("top_left", "top_right", "bottom_left", "bottom_right")
_FLIPPED_AXES = {"top_left": (), "top_right": (2,), "bottom_left": (1,), "bottom_right": (1, 2)}
# Gate blocks along the last axis of the kernels and bias, as in keras.layers.LSTM's
# (input, forget, cell, output) with the forget gate split per predecessor.
GATES = ("input", "forget_up", "forget_left", "cell", "output")
_NUM_GATES = len(GATES)
_PREDECESSORS = ("up", "left")


@serializable
class GridLSTM2D(keras.layers.Layer):
    """Four-direction 2D LSTM over a feature map: every output pixel sees the whole image.

    Byeon, Breuel, Raue and Liwicki, "Scene Labeling with LSTM Recurrent Neural Networks",
    CVPR 2015 (https://doi.org/10.1109/CVPR.2015.7298977), after the multi-dimensional LSTM
    of Graves, Fernandez and Schmidhuber (ICANN 2007). A scan from the top-left corner visits
    pixel ``(i, j)`` after its two predecessors ``(i-1, j)`` (up) and ``(i, j-1)`` (left),
    and its unit has one forget gate per predecessor::

        a_k    = W_k x(i,j) + U_k^up h(i-1,j) + U_k^left h(i,j-1) + b_k,
                 k in {input, forget_up, forget_left, cell, output}
        c(i,j) = sigmoid(a_input) * tanh(a_cell)
                 + sigmoid(a_forget_up) * c(i-1,j) + sigmoid(a_forget_left) * c(i,j-1)
        h(i,j) = sigmoid(a_output) * tanh(c(i,j))

    with ``h = c = 0`` outside the image. Four scans, one from each corner and each with its
    own weights, give four hidden maps; Byeon et al. sum them (``merge="sum"``) before the
    next feedforward layer, and ``merge="concat"`` keeps them apart.

    A unit depends only on the units before it in the scan, so all units on one
    anti-diagonal ``i + j = t`` are independent: the layer skews the grid (row ``i`` shifted
    right by ``i``) so that anti-diagonals become columns, then runs ``keras.ops.scan`` over
    the ``H + W - 1`` columns, updating every row of a column at once, and the four
    directions together. It loops over ``H + W - 1`` steps, not ``H * W`` pixels, and sizes
    may be unknown until run time. The price is the skewed grid's padding: the recurrent
    products run over ``H * (H + W - 1)`` cells for the image's ``H * W``.

    Choices the paper leaves open, and ours:

    - no peephole connections (Graves et al.'s multi-dimensional LSTM has them): the gates
      see ``x`` and the predecessors' ``h`` only, as in the equations above;
    - initialisation as ``keras.layers.LSTM`` does it, per direction and per predecessor:
      Glorot-uniform input kernels, orthogonal recurrent kernels, zero biases except the
      forget gates at ``forget_bias = 1.0`` (Jozefowicz et al., ICML 2015), so memory is
      carried across the image from the start of training;
    - the layer is pure: it does not cut the image into windows, and no projection precedes
      or follows it. Byeon et al.'s feedforward ``tanh`` layer after the summation belongs
      to the model that stacks these layers.

    Weights (``D = 4`` directions in the order of ``DIRECTIONS``, gate blocks of ``units``
    in the order of ``GATES``): ``kernel`` ``(D, channels, 5 * units)``, the ``W_k``;
    ``recurrent_kernel`` ``(D, 2, units, 5 * units)``, the ``U_k^up`` (index 0) and
    ``U_k^left`` (index 1); ``bias`` ``(D, 5 * units)``; ``20 * units * (channels + 2 * units
    + 1)`` parameters in all.

    Args:
        units: size of each scan's hidden state ``h`` and memory ``c``.
        merge: ``"sum"`` (Byeon et al.) returns ``units`` channels; ``"concat"`` returns
            ``4 * units``, the directions in the order of ``DIRECTIONS``.
        kernel_initializer: initializer of each direction's ``(channels, 5 * units)``
            input kernel.
        recurrent_initializer: initializer of each ``(units, 5 * units)`` recurrent kernel.
        forget_bias: initial bias of both forget gates.

    Example:

    >>> layer = GridLSTM2D(16)
    >>> tuple(layer(keras.ops.ones((2, 12, 10, 8))).shape)
    (2, 12, 10, 16)
    >>> layer.count_params()
    13120
    """

    def __init__(
        self,
        units,
        merge="sum",
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        forget_bias=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = check_int("units", units, minimum=1)
        self.merge = check_choice("merge", merge, ("sum", "concat"))
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.forget_bias = check_float("forget_bias", forget_bias)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                f"GridLSTM2D needs a known number of input channels; got input shape {tuple(input_shape)}."
            )
        directions, gates = len(DIRECTIONS), _NUM_GATES * self.units
        self.kernel = self.add_weight(
            name="kernel",
            shape=(directions, channels, gates),
            initializer=_blockwise(self.kernel_initializer, (channels, gates)),
        )
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel",
            shape=(directions, len(_PREDECESSORS), self.units, gates),
            initializer=_blockwise(self.recurrent_initializer, (self.units, gates)),
        )
        self.bias = self.add_weight(name="bias", shape=(directions, gates), initializer=self._bias_initializer)
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: channels})

    def _bias_initializer(self, shape, dtype=None):
        values = [self.forget_bias if gate.startswith("forget") else 0.0 for gate in GATES for _ in range(self.units)]
        return ops.tile(ops.convert_to_tensor(values, dtype=dtype)[None], (shape[0], 1))

    def call(self, inputs):
        batch, height, width = ops.shape(inputs)[0], ops.shape(inputs)[1], ops.shape(inputs)[2]
        directions, gates = len(DIRECTIONS), _NUM_GATES * self.units
        # The input terms W_k x + b_k of every pixel and direction, in one product. They are
        # pointwise, so flipping them is flipping the input.
        projected = ops.einsum("bhwc,dcg->dbhwg", inputs, self.kernel)
        projected = projected + ops.reshape(self.bias, (directions, 1, 1, 1, -1))
        projected = ops.stack([_flip(projected[d], direction) for d, direction in enumerate(DIRECTIONS)])
        projected = ops.reshape(projected, (directions * batch, height, width, gates))

        # Anti-diagonal t of the image is column t of the skewed grid: scan over columns.
        skewed = _skew(projected, height, width)
        steps = width + height - 1
        skewed = ops.reshape(skewed, (directions, batch, height, steps, gates))
        skewed = ops.transpose(skewed, (3, 0, 1, 2, 4))

        recurrent_kernel = ops.reshape(self.recurrent_kernel, (directions, 1, 2 * self.units, gates))

        def step(carry, column_projected):
            hidden, cell = carry
            # Cell (i, j) sits at column i + j of row i: its left predecessor is the previous
            # column's state in the same row, its upper one the previous column's state one
            # row up.
            hidden_up, cell_up = _shift_down(hidden), _shift_down(cell)
            activations = column_projected + ops.matmul(ops.concatenate([hidden_up, hidden], axis=-1), recurrent_kernel)
            input_gate, forget_up, forget_left, candidate, output_gate = ops.split(activations, _NUM_GATES, axis=-1)
            cell = (
                ops.sigmoid(input_gate) * ops.tanh(candidate)
                + ops.sigmoid(forget_up) * cell_up
                + ops.sigmoid(forget_left) * cell
            )
            hidden = ops.sigmoid(output_gate) * ops.tanh(cell)
            return (hidden, cell), (hidden, cell)

        # The zero boundary needs no mask. Cells of the skewed grid left of the image
        # (column < row) have zero input terms (the bias was added before skewing) and
        # predecessors of the same kind, so their state stays exactly zero: tanh(0) = 0.
        # Cells right of the image precede no cell inside it and are cut by the unskewing.
        zeros = ops.zeros((directions, batch, height, self.units), dtype=skewed.dtype)
        _, (hidden, _) = ops.scan(step, (zeros, zeros), skewed)

        hidden = ops.transpose(hidden, (1, 2, 3, 0, 4))
        hidden = ops.reshape(hidden, (directions * batch, height, steps, self.units))
        hidden = ops.reshape(_unskew(hidden, height, width), (directions, batch, height, width, self.units))
        outputs = [_flip(hidden[d], direction) for d, direction in enumerate(DIRECTIONS)]
        if self.merge == "sum":
            return outputs[0] + outputs[1] + outputs[2] + outputs[3]
        return ops.concatenate(outputs, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units * (len(DIRECTIONS) if self.merge == "concat" else 1))

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "merge": self.merge,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "forget_bias": self.forget_bias,
        }


def _flip(x, direction):
    """The scan from ``direction``'s corner is the top-left scan of the flipped map (its own
    inverse)."""
    for axis in _FLIPPED_AXES[direction]:
        x = ops.flip(x, axis=axis)
    return x


def _skew(x, height, width):
    """``(N, H, W, C)`` -> ``(N, H, W + H - 1, C)`` with ``x[:, i, j]`` at ``[:, i, i + j]``
    and zeros elsewhere: each row padded by ``H`` zeros, flattened, cut ``H`` short and
    refolded into rows one element shorter."""
    count, channels = ops.shape(x)[0], ops.shape(x)[-1]
    padded = ops.concatenate([x, ops.zeros((count, height, height, channels), dtype=x.dtype)], axis=2)
    flat = ops.reshape(padded, (count, height * (width + height), channels))
    return ops.reshape(flat[:, : height * (width + height - 1)], (count, height, width + height - 1, channels))


def _unskew(x, height, width):
    """Inverse of :func:`_skew`: ``(N, H, W + H - 1, C)`` -> ``(N, H, W, C)``."""
    count, channels = ops.shape(x)[0], ops.shape(x)[-1]
    flat = ops.reshape(x, (count, height * (width + height - 1), channels))
    flat = ops.concatenate([flat, ops.zeros((count, height, channels), dtype=x.dtype)], axis=1)
    return ops.reshape(flat, (count, height, width + height, channels))[:, :, :width]


def _shift_down(x):
    """Row ``i`` of the result is row ``i - 1`` of ``x`` (axis 2), with zeros in row 0."""
    return ops.concatenate([ops.zeros_like(x[:, :, :1]), x[:, :, :-1]], axis=2)


def _blockwise(initializer, block_shape):
    """Initializes a stacked weight block by block, as if each block were its own weight.

    A Keras initializer object returns the same values on every call (its seed is fixed
    when it is created), so each block gets a fresh copy; a seeded initializer is offset by
    the block index, so the four directions never start identical.
    """
    config = keras.initializers.serialize(initializer)

    seed = config.get("config", {}).get("seed")

    def initialize(shape, dtype=None):
        blocks = []
        for index in range(math.prod(shape) // math.prod(block_shape)):
            copy = keras.initializers.deserialize(config)
            if isinstance(seed, int):
                copy.seed = seed + index
            blocks.append(copy(block_shape, dtype=dtype))
        return ops.reshape(ops.stack(blocks), shape)

    return initialize
