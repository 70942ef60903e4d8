import keras
from keras import ops

from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_int

#: The information-flow branches of the module (Sec. 3.2 of the paper).
PSA_MODES = ("bi-direction", "collect", "distribute")


def window_index(height, width, mask_height, mask_width):
    """Where each pair of positions reads its attention value in the over-complete map.

    For positions ``i = (r, c)`` and ``j = (k, l)`` of an ``height x width`` map (flattened
    row-major, ``N = height * width``), the value of the pair sits at offset
    ``(k - r, l - c)`` from the centre of the ``mask_height x mask_width`` map predicted at
    ``i``: channel ``(k - r + (mask_height - 1) / 2) * mask_width + l - c + (mask_width - 1) / 2``.
    Returns ``(index, inside)``, both ``(N, N)``: the channel (clipped to the map) and whether
    the offset is inside the map. Sizes may be tensors known only when the graph runs.
    """
    count = height * width
    positions = ops.arange(count, dtype="int32")
    rows, cols = positions // width, positions % width
    row_offsets = (
        ops.expand_dims(rows, 0) - ops.expand_dims(rows, 1) + (mask_height - 1) // 2
    )
    col_offsets = (
        ops.expand_dims(cols, 0) - ops.expand_dims(cols, 1) + (mask_width - 1) // 2
    )
    inside = ops.logical_and(
        ops.logical_and(row_offsets >= 0, row_offsets < mask_height),
        ops.logical_and(col_offsets >= 0, col_offsets < mask_width),
    )
    index = ops.clip(row_offsets, 0, mask_height - 1) * mask_width + ops.clip(
        col_offsets, 0, mask_width - 1
    )
    return index, inside


@serializable
class PointwiseSpatialAttention(keras.layers.Layer):
    """PSANet's point-wise spatial attention (PSA) module: bi-direction information flow.

    Zhao, Zhang, Liu, Shi, Loy, Lin and Jia, "PSANet: Point-wise Spatial Attention Network
    for Scene Parsing", ECCV 2018, https://hszhao.github.io/papers/eccv18_psanet.pdf.

    Each position ``i`` of the ``H x W`` feature map aggregates every position ``j`` with
    weights predicted from the features at ``i`` ("collect") and at ``j`` ("distribute"),
    Sec. 3::

        z_i = 1/N sum_j a^c_{i,j} x^c_j  (+)  1/N sum_j a^d_{i,j} x^d_j

    with ``(+)`` a concatenation (Sec. 3.3, Fig. 3). In each branch a 1x1 convolution with
    batch norm and ReLU reduces ``X`` to ``filters`` channels (``x^c``, ``x^d``); two 1x1
    convolutions (the first with batch norm and ReLU, the second without bias) predict at
    each position ``i`` an *over-completed* map ``h_i`` of ``(2H - 1) x (2W - 1)`` values,
    centred on ``i``, so that every other position ``j`` finds its value at offset ``j - i``
    from the centre; the ``H x W`` window of ``h_i`` that overlaps the feature map is
    cropped out (Fig. 3). In the collect branch that window is position ``i``'s attention
    over ``j`` (``a^c_{i,j} = h^c_i[j - i]``); in the distribute branch the window predicted
    at ``j`` says how much ``j`` sends to each ``i`` (``a^d_{i,j} = h^d_j[i - j]``). The two
    aggregations are concatenated, projected back to ``C`` channels by a 1x1 convolution
    with batch norm and ReLU, and concatenated with ``X``: the output has ``2 C`` channels.

    As in the released code (hszhao/semseg ``PSA``, mmsegmentation's ``PSAHead``):

    - the attention windows are normalised by a softmax (over ``j`` for collect; over the
      senders ``i`` for distribute, what ``softmax(dim=1)`` of the code's ``PSAMask``
      buffers does) and ``1/N`` is 1;
    - the reduced features are first shrunk by ``shrink_factor`` (2) to
      ``((H - 1) / s + 1) x ((W - 1) / s + 1)`` with corner-aligned bilinear resizing, and the
      projection is resized back to ``H x W`` the same way.

    Sizes: the prediction convolution has a fixed number of output channels,
    ``mask_size[0] * mask_size[1]``, so the over-complete map cannot follow the feature size
    at run time the way the paper's ``(2H - 1) x (2W - 1)`` does. The map size is therefore
    fixed when the layer is built: ``mask_size=None`` derives the paper's
    ``(2h - 1, 2w - 1)`` from a static input size (``h, w`` after shrinking), or an odd
    ``(m_h, m_w)`` is given (the reference code's ``mask_h, mask_w``; mmsegmentation's
    Cityscapes configs use 97x97, the paper's map for 769x769 crops). At run time, the sizes
    may be unknown: each position's window is gathered from its map (pairs further apart
    than the map reaches, when the features are larger than the map was made for, get the
    attention logit 0, as the zero-initialised buffers of the reference ``PSAMask`` give
    them; the window is cropped, as there, when the features are smaller). Memory: ``N^2``
    attention values per image and branch, ``N = hw``.

    Args:
        filters: channels of the reduced features ``x^c``, ``x^d`` (512 in the paper).
        mask_size: ``(m_h, m_w)``, odd sizes of each position's over-complete map, or
            ``None`` for the paper's ``(2h - 1, 2w - 1)`` from a static input size.
        shrink_factor: spatial sub-sampling ``s`` of the attention (2; 1 for none).
        mode: ``"bi-direction"`` (both branches), ``"collect"`` or ``"distribute"``.

    Example:
        >>> layer = PointwiseSpatialAttention(filters=8, mask_size=(9, 9))
        >>> layer(np.zeros((2, 9, 7, 16), "float32")).shape
        TensorShape([2, 9, 7, 32])
    """

    def __init__(
        self,
        filters=512,
        mask_size=(97, 97),
        shrink_factor=2,
        mode="bi-direction",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        if mask_size is not None:
            sizes = (
                tuple(mask_size)
                if isinstance(mask_size, (tuple, list))
                else (mask_size, mask_size)
            )
            if len(sizes) != 2:
                raise ValueError(
                    f"`mask_size` must be an int, a (height, width) pair or None, got {mask_size!r}."
                )
            sizes = tuple(check_int("mask_size", size, minimum=1) for size in sizes)
            if any(size % 2 == 0 for size in sizes):
                raise ValueError(
                    f"`mask_size` must be odd (a map centred on each position), got {mask_size!r}."
                )
            mask_size = sizes
        self.mask_size = mask_size
        self.shrink_factor = check_int("shrink_factor", shrink_factor, minimum=1)
        self.mode = check_choice("mode", mode, set(PSA_MODES))
        self.branches = (
            ("collect", "distribute") if self.mode == "bi-direction" else (self.mode,)
        )

    def attention_map_size(self, input_shape):
        """``(m_h, m_w)``: ``mask_size``, or ``(2h - 1, 2w - 1)`` of the shrunk static size."""
        if self.mask_size is not None:
            return self.mask_size
        height, width = input_shape[1], input_shape[2]
        if height is None or width is None:
            raise ValueError(
                f"`mask_size=None` derives the over-complete map from the feature size, which must then be "
                f"static; got input shape {tuple(input_shape)}. Give `mask_size` (e.g. (97, 97)) or a static "
                f"input size."
            )
        return tuple(
            2 * ((size - 1) // self.shrink_factor + 1) - 1 for size in (height, width)
        )

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                f"PointwiseSpatialAttention expects (batch, height, width, channels) inputs with known channels, "
                f"got shape {tuple(input_shape)}."
            )
        channels = input_shape[-1]
        self.map_size = self.attention_map_size(input_shape)
        policy = self.dtype_policy
        reduced_shape = (input_shape[0], None, None, self.filters)
        # One reduction and one attention predictor per branch, in the order of `branches`.
        self.reductions = [
            ConvBNReLU(self.filters, 1, dtype=policy, name=f"{b}_reduction")
            for b in self.branches
        ]
        self.attention_hidden = [
            ConvBNReLU(self.filters, 1, dtype=policy, name=f"{b}_attention")
            for b in self.branches
        ]
        # No bias: the reference's last attention convolution has none.
        self.attention_logits = [
            keras.layers.Conv2D(
                self.map_size[0] * self.map_size[1],
                1,
                use_bias=False,
                dtype=policy,
                name=f"{b}_mask",
            )
            for b in self.branches
        ]
        for reduction, hidden, logits in zip(
            self.reductions, self.attention_hidden, self.attention_logits
        ):
            reduction.build(input_shape)
            hidden.build(reduced_shape)
            logits.build(reduced_shape)
        self.projection = ConvBNReLU(channels, 1, dtype=policy, name="projection")
        self.projection.build(
            (input_shape[0], None, None, self.filters * len(self.branches))
        )
        self.shrink = ResizeToReference(align_corners=True, dtype=policy, name="shrink")
        self.expand = ResizeToReference(align_corners=True, dtype=policy, name="expand")

    def call(self, inputs, training=None):
        aggregated = []
        for branch, reduction, hidden, predictor in zip(
            self.branches, self.reductions, self.attention_hidden, self.attention_logits
        ):
            x = reduction(inputs, training=training)
            if self.shrink_factor > 1:
                # The strided grid has the target size ceil(H / s) = (H - 1) // s + 1.
                x = self.shrink(x, x[:, :: self.shrink_factor, :: self.shrink_factor])
            logits = predictor(hidden(x, training=training))
            aggregated.append(self.aggregate(x, logits, branch))
        x = self.projection(ops.concatenate(aggregated, axis=-1), training=training)
        if self.shrink_factor > 1:
            x = self.expand(x, inputs)
        return ops.concatenate([inputs, x], axis=-1)

    def aggregate(self, features, logits, branch):
        """``sum_j a_{i,j} x_j`` with the windows of ``logits`` ``(B, h, w, m_h m_w)`` as attention."""
        shape = ops.shape(features)
        batch, height, width = shape[0], shape[1], shape[2]
        count = height * width
        index, inside = window_index(height, width, *self.map_size)
        logits = ops.reshape(
            logits, (batch, count, self.map_size[0] * self.map_size[1])
        )
        # pairs[b, i, j]: the value predicted at i for the position j (offset j - i).
        pairs = ops.take_along_axis(
            logits, ops.broadcast_to(index, (batch, count, count)), axis=2
        )
        # Softmax in float32: under mixed precision N logits per position overflow float16.
        pairs = ops.where(inside, ops.cast(pairs, "float32"), 0.0)
        values = ops.reshape(features, (batch, count, self.filters))
        if branch == "collect":
            # a^c_{i,j} = h^c_i[j - i]: each position normalises what it collects.
            attention = ops.cast(ops.softmax(pairs, axis=2), values.dtype)
            out = ops.matmul(attention, values)
        else:
            # a^d_{j,i} = h^d_i[j - i]: what i sends to j, normalised over the senders i.
            attention = ops.cast(ops.softmax(pairs, axis=1), values.dtype)
            out = ops.matmul(ops.transpose(attention, (0, 2, 1)), values)
        return ops.reshape(out, (batch, height, width, self.filters))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2 * input_shape[-1])

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "mask_size": self.mask_size,
            "shrink_factor": self.shrink_factor,
            "mode": self.mode,
        }
