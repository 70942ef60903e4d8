import keras
from keras import ops

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


def window_offsets(pool_size):
    """The ``(row, col)`` offsets inside a pooling window, in argmax index order."""
    return [(row, col) for row in range(pool_size) for col in range(pool_size)]


@serializable
class MaxPoolingWithArgmax2D(keras.layers.Layer):
    """Max pooling that also returns where each maximum was: SegNet's pooling indices.

    Badrinarayanan et al., "SegNet: A Deep Convolutional Encoder-Decoder Architecture for
    Image Segmentation", TPAMI 2017, Sec. 3: the encoder stores "the locations of the
    maximum feature value in each pooling window ... for each encoder feature map", and the
    decoder (:class:`MaxUnpooling2D`) puts values back at those locations.

    Windows do not overlap (``strides == pool_size``). Sizes that the window does not
    divide are padded at the bottom/right with the smallest representable value (Caffe's
    ceil mode, as in the SegNet reference), so no row or column is dropped.

    Returns ``(pooled, indices)``: ``indices`` (int32, same shape as ``pooled``) is the
    position of the maximum inside its window, ``row * pool_size + col``. Local indices
    need no batch- or size-dependent arithmetic and are exactly what unpooling needs; they
    are not the flattened global indices of ``tf.nn.max_pool_with_argmax``.

    Args:
        pool_size: window size and stride (default 2).

    Example:
        >>> pooled, indices = MaxPoolingWithArgmax2D()(np.arange(16.0).reshape(1, 4, 4, 1))
        >>> indices[0, :, :, 0].numpy().tolist()
        [[3, 3], [3, 3]]
    """

    def __init__(self, pool_size=2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = check_int("pool_size", pool_size, minimum=2)

    def call(self, inputs):
        k = self.pool_size
        shape = ops.shape(inputs)
        pad_rows = (-shape[1]) % k
        pad_cols = (-shape[2]) % k
        lowest = ops.convert_to_tensor(_lowest(inputs.dtype), inputs.dtype)
        padded = ops.pad(inputs, [[0, 0], [0, pad_rows], [0, pad_cols], [0, 0]], constant_values=lowest)
        # One strided slice per window position: shape (batch, rows, cols, channels, k * k).
        candidates = ops.stack(
            [padded[:, row::k, col::k, :] for row, col in window_offsets(k)], axis=-1
        )
        pooled = ops.max(candidates, axis=-1)
        indices = ops.cast(ops.argmax(candidates, axis=-1), "int32")
        return pooled, indices

    def compute_output_shape(self, input_shape):
        k = self.pool_size
        sizes = [None if s is None else -(-s // k) for s in input_shape[1:3]]
        shape = (input_shape[0], *sizes, input_shape[3])
        return shape, shape

    def compute_output_spec(self, inputs):
        pooled_shape, indices_shape = self.compute_output_shape(inputs.shape)
        return (
            keras.KerasTensor(pooled_shape, dtype=inputs.dtype),
            keras.KerasTensor(indices_shape, dtype="int32"),
        )

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}


def _lowest(dtype):
    import numpy as np

    dtype = keras.backend.standardize_dtype(dtype)
    if "float" in dtype:
        return float(np.finfo(dtype if dtype != "bfloat16" else "float32").min)
    return int(np.iinfo(dtype).min)
