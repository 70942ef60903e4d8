import keras
from keras import ops

from keras_sceneparse.backend import resize_images
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice


@serializable
class ResizeToReference(keras.layers.Layer):
    """Resizes ``inputs`` to the spatial size of ``reference``; works with unknown sizes.

    Called as ``ResizeToReference()(inputs, reference)``: the decoders of this library
    upsample coarse features to the exact size of a skip connection or of the input image,
    which ``UpSampling2D`` cannot do when the input size is not a multiple of the stride.

    Args:
        interpolation: ``"bilinear"`` (features, logits) or ``"nearest"`` (label maps).
        align_corners: corner-aligned bilinear sampling, as in the Caffe/TF DeepLab code.
    """

    def __init__(self, interpolation="bilinear", align_corners=False, **kwargs):
        super().__init__(**kwargs)
        self.interpolation = check_choice("interpolation", interpolation, {"bilinear", "nearest"})
        self.align_corners = bool(align_corners)

    def call(self, inputs, reference):
        target = ops.shape(reference)
        if self.align_corners and self.interpolation == "bilinear":
            # keras.ops.image.resize has no align_corners: sample the corner-aligned grid.
            source = ops.shape(inputs)
            rows = _aligned_coordinates(source[1], target[1], inputs.dtype)
            cols = _aligned_coordinates(source[2], target[2], inputs.dtype)
            return _bilinear_sample(inputs, rows, cols)
        return resize_images(inputs, (target[1], target[2]), interpolation=self.interpolation)

    def compute_output_shape(self, inputs_shape, reference_shape):
        return (inputs_shape[0], reference_shape[1], reference_shape[2], inputs_shape[3])

    def get_config(self):
        return {
            **super().get_config(),
            "interpolation": self.interpolation,
            "align_corners": self.align_corners,
        }


def _aligned_coordinates(source_size, target_size, dtype):
    scale = ops.cast(source_size - 1, dtype) / ops.cast(ops.maximum(target_size - 1, 1), dtype)
    return ops.cast(ops.arange(target_size), dtype) * scale


def _bilinear_sample(images, rows, cols):
    height = ops.shape(images)[1]
    width = ops.shape(images)[2]
    row0 = ops.cast(ops.floor(rows), "int32")
    col0 = ops.cast(ops.floor(cols), "int32")
    row1 = ops.minimum(row0 + 1, height - 1)
    col1 = ops.minimum(col0 + 1, width - 1)
    row_weight = ops.reshape(rows - ops.cast(row0, rows.dtype), (1, -1, 1, 1))
    col_weight = ops.reshape(cols - ops.cast(col0, cols.dtype), (1, 1, -1, 1))
    top = ops.take(images, row0, axis=1)
    bottom = ops.take(images, row1, axis=1)
    rows_mixed = top + (bottom - top) * row_weight
    left = ops.take(rows_mixed, col0, axis=2)
    right = ops.take(rows_mixed, col1, axis=2)
    return left + (right - left) * col_weight
