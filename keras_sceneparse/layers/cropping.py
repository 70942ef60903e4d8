import keras
from keras import ops

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice


@serializable
class CropToReference(keras.layers.Layer):
    """Crops ``inputs`` spatially to the height and width of ``reference``.

    Called as ``CropToReference()(inputs, reference)``. ``position="center"`` is the crop
    of U-Net's skip connections (Ronneberger et al. 2015, Fig. 1) and of FCN's Caffe
    ``Crop`` layers; ``position="top_left"`` undoes :class:`PadToMultiple`.
    The reference must not be larger than the input.
    """

    def __init__(self, position="center", **kwargs):
        super().__init__(**kwargs)
        self.position = check_choice("position", position, {"center", "top_left"})

    def call(self, inputs, reference):
        input_shape = ops.shape(inputs)
        target = ops.shape(reference)
        starts = [0, 0, 0, 0]
        sizes = [input_shape[0], target[1], target[2], input_shape[3]]
        for axis in (1, 2):
            if inputs.shape[axis] is not None and reference.shape[axis] is not None:
                if reference.shape[axis] > inputs.shape[axis]:
                    raise ValueError(
                        f"CropToReference cannot crop axis {axis} of size {inputs.shape[axis]} to the "
                        f"larger reference size {reference.shape[axis]} (inputs {inputs.shape}, "
                        f"reference {reference.shape})."
                    )
            if self.position == "center":
                starts[axis] = (input_shape[axis] - target[axis]) // 2
        return ops.slice(inputs, starts, sizes)

    def compute_output_shape(self, inputs_shape, reference_shape):
        return (inputs_shape[0], reference_shape[1], reference_shape[2], inputs_shape[3])

    def get_config(self):
        return {**super().get_config(), "position": self.position}
