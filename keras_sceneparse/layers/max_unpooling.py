import keras
from keras import ops

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


@serializable
class MaxUnpooling2D(keras.layers.Layer):
    """Places each value at the position its max-pooling window recorded; zeros elsewhere.

    The decoder upsampling of SegNet (Badrinarayanan et al., TPAMI 2017, Sec. 3, Fig. 3):
    "the appropriate decoder ... upsamples its input feature map(s) using the memorized
    max-pooling indices from the corresponding encoder feature map(s). This step produces
    sparse feature map(s)." It has no weights.

    Called as ``MaxUnpooling2D(pool_size)(updates, indices)`` or
    ``MaxUnpooling2D(pool_size)(updates, indices, reference)``, where ``indices`` come from
    :class:`MaxPoolingWithArgmax2D` with the same ``pool_size``. The output is
    ``pool_size`` times larger; given ``reference`` (the tensor that was pooled), it is
    cropped to the reference's height and width, undoing the ceil-mode padding of odd sizes.
    """

    def __init__(self, pool_size=2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = check_int("pool_size", pool_size, minimum=2)

    def call(self, updates, indices, reference=None):
        k = self.pool_size
        for axis, (u, i) in enumerate(zip(updates.shape, indices.shape)):
            if u is not None and i is not None and u != i:
                raise ValueError(
                    f"MaxUnpooling2D: `updates` {updates.shape} and `indices` {indices.shape} must have "
                    f"the same shape (axis {axis} differs)."
                )
        shape = ops.shape(updates)
        # (batch, rows, cols, channels, k * k) with the value at its recorded position.
        scattered = ops.one_hot(indices, k * k, dtype=updates.dtype) * ops.expand_dims(updates, -1)
        scattered = ops.reshape(scattered, (shape[0], shape[1], shape[2], shape[3], k, k))
        scattered = ops.transpose(scattered, (0, 1, 4, 2, 5, 3))
        outputs = ops.reshape(scattered, (shape[0], shape[1] * k, shape[2] * k, shape[3]))
        if reference is not None:
            target = ops.shape(reference)
            outputs = outputs[:, : target[1], : target[2], :]
        return outputs

    def compute_output_shape(self, updates_shape, indices_shape, reference_shape=None):
        if reference_shape is not None:
            sizes = reference_shape[1:3]
        else:
            sizes = [None if s is None else s * self.pool_size for s in updates_shape[1:3]]
        return (updates_shape[0], *sizes, updates_shape[3])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}
