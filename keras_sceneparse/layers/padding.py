import keras
from keras import ops

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_int


@serializable
class PadToMultiple(keras.layers.Layer):
    """Pads the spatial axes so that a network's strides divide them, for any input size.

    The padded size ``p`` of an axis of size ``s`` is the smallest ``p >= s + 2 * margin``
    with ``p % multiple == offset % multiple``; ``margin`` pixels go before the image and
    the rest after it, so output pixel ``i`` of a size-preserving network lines up with
    input pixel ``i`` and is recovered by :class:`CropToReference` with ``position="top_left"``.

    The default ``PadToMultiple(32)`` lets an encoder of output stride 32 take any image.
    U-Net's overlap-tile strategy (Ronneberger et al. 2015, Sec. 3) is
    ``PadToMultiple(16, offset=124, margin=92, mode="reflect")``: the image is mirrored by
    92 pixels each side, up to the next valid tile size.

    Args:
        multiple: the padded size is ``offset`` modulo this.
        offset: residue of the padded size modulo ``multiple`` (default 0).
        margin: pixels of padding before the image (and at least as many after it).
        mode: ``"constant"`` (zeros), ``"reflect"`` or ``"symmetric"``. ``"reflect"``
            needs images larger than the padding on each side.
    """

    def __init__(self, multiple, offset=0, margin=0, mode="constant", **kwargs):
        super().__init__(**kwargs)
        self.multiple = check_int("multiple", multiple, minimum=1)
        self.offset = check_int("offset", offset, minimum=0)
        self.margin = check_int("margin", margin, minimum=0)
        self.mode = check_choice("mode", mode, {"constant", "reflect", "symmetric"})

    def padded_size(self, size):
        """The padded length of an axis of length ``size`` (an int or a scalar tensor)."""
        minimum = size + 2 * self.margin
        return minimum + (self.offset - minimum) % self.multiple

    def call(self, images):
        shape = ops.shape(images)
        paddings = [[0, 0]]
        for axis in (1, 2):
            size = shape[axis]
            paddings.append([self.margin, self.padded_size(size) - size - self.margin])
        paddings.append([0, 0])
        return ops.pad(images, paddings, mode=self.mode)

    def compute_output_shape(self, input_shape):
        sizes = [None if s is None else self.padded_size(s) for s in input_shape[1:3]]
        return (input_shape[0], *sizes, input_shape[3])

    def get_config(self):
        return {
            **super().get_config(),
            "multiple": self.multiple,
            "offset": self.offset,
            "margin": self.margin,
            "mode": self.mode,
        }
