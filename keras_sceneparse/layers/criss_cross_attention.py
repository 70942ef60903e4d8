import keras
from keras import ops

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


@serializable
class CrissCrossAttention(keras.layers.Layer):
    """CCNet's criss-cross attention: each pixel attends to the pixels of its row and column.

    Huang, Wang, Huang, Huang, Wei and Liu, "CCNet: Criss-Cross Attention for Semantic
    Segmentation", ICCV 2019, https://arxiv.org/abs/1811.11721, Sec. 3.2 and Fig. 3.

    1x1 convolutions of the input ``H`` give queries ``Q`` and keys ``K`` with
    ``C / reduction`` channels and values ``V`` with ``C``. For a position ``u``, ``Omega_u``
    (from ``K``) and ``Phi_u`` (from ``V``) hold the ``H + W - 1`` features on the criss-cross
    path of ``u``: its column and its row, ``u`` itself once::

        d_{i,u}  = Q_u . Omega_{i,u}                         ("affinity")
        A_{:,u}  = softmax_i(d_{:,u})                        (one softmax over row and column)
        H'_u     = gamma * sum_i A_{i,u} Phi_{i,u} + H_u     (Eq. 2, "aggregation")

    Eq. 2 adds the aggregation to ``H_u`` unscaled; the released code multiplies it by a
    learned scalar ``gamma`` initialised to 0 (as DANet does), so the module starts as the
    identity. We follow the code. Queries and keys have ``C / 8`` channels there
    (``reduction=8``), and the convolutions have biases.

    The column energies exclude ``u`` (set to ``-inf`` before the softmax, as the released
    code does) so that ``u`` is counted once, in its row.

    ``recurrence`` applies the module that many times with the same weights: the recurrent
    criss-cross attention (RCCA) of Sec. 3.3, whose ``R = 2`` loops connect every pair of
    positions. Memory: ``H x W x (H + W)`` affinities per image and loop.

    Args:
        reduction: queries and keys have ``max(C // reduction, 1)`` channels (8).
        recurrence: number of loops ``R`` with shared weights (1: one criss-cross module).

    Example:
        >>> CrissCrossAttention(recurrence=2)(np.zeros((2, 9, 7, 16), "float32")).shape
        TensorShape([2, 9, 7, 16])
    """

    def __init__(self, reduction=8, recurrence=1, **kwargs):
        super().__init__(**kwargs)
        self.reduction = check_int("reduction", reduction, minimum=1)
        self.recurrence = check_int("recurrence", recurrence, minimum=1)
        self.query = self.key = self.value = None

    def build(self, input_shape):
        channels = input_shape[-1]
        self.key_channels = max(channels // self.reduction, 1)
        policy = self.dtype_policy
        self.query = keras.layers.Conv2D(self.key_channels, 1, dtype=policy, name="query")
        self.key = keras.layers.Conv2D(self.key_channels, 1, dtype=policy, name="key")
        self.value = keras.layers.Conv2D(channels, 1, dtype=policy, name="value")
        for layer in (self.query, self.key, self.value):
            layer.build(input_shape)
        self.gamma = self.add_weight(name="gamma", shape=(), initializer="zeros")

    def criss_cross(self, inputs):
        """One pass of the module (Eq. 2)."""
        height = ops.shape(inputs)[1]
        query = ops.cast(self.query(inputs), "float32")
        key = ops.cast(self.key(inputs), "float32")
        value = self.value(inputs)
        # Column energies [b, y, x, y'] = Q(y, x) . K(y', x), and row energies [b, y, x, x'].
        column = ops.einsum("byxc,bzxc->byxz", query, key)
        row = ops.einsum("byxc,byzc->byxz", query, key)
        rows = ops.arange(height)
        itself = ops.expand_dims(ops.equal(rows[:, None], rows[None, :]), 1)  # (H, 1, H): y' == y
        column = ops.where(itself, float("-inf"), column)
        attention = ops.cast(ops.softmax(ops.concatenate([column, row], axis=-1), axis=-1), value.dtype)
        column_attention, row_attention = attention[..., :height], attention[..., height:]
        aggregated = ops.einsum("byxz,bzxc->byxc", column_attention, value) + ops.einsum(
            "byxz,byzc->byxc", row_attention, value
        )
        return ops.cast(self.gamma, aggregated.dtype) * aggregated + inputs

    def call(self, inputs):
        x = inputs
        for _ in range(self.recurrence):
            x = self.criss_cross(x)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction, "recurrence": self.recurrence}
