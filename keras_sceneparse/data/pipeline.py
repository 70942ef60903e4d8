"""TensorFlow ops shared by the dataset readers: decoding, label checks, joint augmentation.

Every function here works on one example, an image ``(H, W, C)`` float32 in ``[0, 255]``
and its label map ``(H, W)`` int32, or on a batch where the name says so. Geometric
transforms move image and label together (bilinear for the image, nearest neighbour for
the label, both with half-pixel centres so they stay aligned); photometric ones touch the
image only. Random transforms are stateless: they take a ``seed`` tensor of shape ``[2]``,
so an example's augmentation depends on its seed alone, not on thread scheduling.
"""

import dataclasses
import numbers

import numpy as np
import tensorflow as tf
from PIL import Image

from keras_sceneparse.layers.image_normalization import NORMALIZATIONS, normalization_parameters
from keras_sceneparse.utils.validation import check_choice, check_float

#: PIL format names of the image files ``tf.io.decode_image`` reads.
DECODABLE_IMAGE_FORMATS = ("BMP", "GIF", "JPEG", "PNG")
#: PIL modes of single-channel label PNGs that ``tf.io.decode_png(channels=1)`` returns
#: unchanged; palette ("P"), 16-bit and 1-bit label maps are read with PIL instead, since
#: TensorFlow would expand the palette to colours or rescale the values.
GRAYSCALE_LABEL_MODES = ("L", "LA")
#: PIL modes of label PNGs whose pixel values are class ids.
ID_LABEL_MODES = ("L", "LA", "P", "1", "I", "I;16", "I;16B", "I;16L")


def decode_image(path, channels=3):
    """Reads an image file (JPEG, PNG, BMP or GIF) as float32 ``(H, W, channels)`` in ``[0, 255]``.

    Grayscale files are replicated to 3 channels and colour files converted to gray when
    ``channels`` asks for it (``tf.io.decode_image`` does both).
    """
    image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    image.set_shape([None, None, channels])
    return tf.cast(image, tf.float32)


def decode_label_png(path):
    """Reads an 8-bit grayscale PNG of class ids as int32 ``(H, W)``."""
    label = tf.io.decode_png(tf.io.read_file(path), channels=1)
    return tf.cast(label[..., 0], tf.int32)


def read_label_with_pil(path):
    """Reads a single-channel label image (grayscale, palette indices, 16-bit) as an int64 array."""
    path = path.decode() if isinstance(path, bytes) else str(path)
    try:
        with Image.open(path) as label:
            values = np.asarray(label)
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot read the label map {path}: {error}") from None
    if values.ndim == 3 and values.shape[-1] == 2:  # "LA": ids and an alpha channel
        values = values[..., 0]
    if values.ndim != 2:
        raise ValueError(
            f"The label map {path} has shape {values.shape}; expected a single-channel image of class ids."
        )
    return values.astype(np.int64)


def decode_label_with_pil(path):
    """:func:`read_label_with_pil` as a TensorFlow op returning int32 ``(H, W)``."""
    label = tf.numpy_function(
        lambda file: read_label_with_pil(file).astype(np.int32), [path], tf.int32, stateful=False
    )
    label.set_shape([None, None])
    return label


def remap_ids(labels, table):
    """Maps raw ids through ``table`` (``table[raw] = class id``); ids beyond the table become -1.

    -1 is never a valid class id, so unmapped values fail :func:`check_example` instead of
    being silently counted as some class.
    """
    table = tf.constant(np.asarray(table), tf.int32)
    size = table.shape[0]
    inside = tf.logical_and(labels >= 0, labels < size)
    return tf.where(inside, tf.gather(table, tf.clip_by_value(labels, 0, size - 1)), -1)


def remap_ids_numpy(labels, table):
    """NumPy twin of :func:`remap_ids`."""
    table = np.asarray(table)
    labels = np.asarray(labels, np.int64)
    inside = (labels >= 0) & (labels < len(table))
    return np.where(inside, table[np.clip(labels, 0, len(table) - 1)], -1)


def invalid_label_mask(labels, num_classes, ignore_class):
    """True where a label is neither a class id in ``[0, num_classes)`` nor ``ignore_class``."""
    return ((labels < 0) | (labels >= num_classes)) & (labels != ignore_class)


def check_example(image, label, image_path, label_path, num_classes, ignore_class):
    """Asserts that ``label`` has the image's height and width and only valid ids.

    Returns ``label`` carrying the assertions as control dependencies. The error messages
    hold the file paths, so a bad file is named even from inside ``model.fit``.
    """
    image_size = tf.shape(image)[:2]
    label_size = tf.shape(label)
    same_size = tf.reduce_all(tf.equal(image_size, label_size))
    size_check = tf.debugging.Assert(
        same_size,
        ["The label map", label_path, "has size (height, width)", label_size, "but the image", image_path,
         "has size", image_size],
    )
    invalid = invalid_label_mask(label, num_classes, ignore_class)
    range_check = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(invalid)),
        [
            f"The label map holds ids outside [0, {num_classes}) that are not the ignore id {ignore_class}:",
            label_path,
            "smallest and largest offending ids:",
            tf.reduce_min(tf.where(invalid, label, tf.int32.max)),
            tf.reduce_max(tf.where(invalid, label, tf.int32.min)),
        ],
    )
    with tf.control_dependencies([size_check, range_check]):
        return tf.identity(label)


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Random training augmentation applied jointly to an image and its label map.

    In order: a random rescaling by a factor drawn uniformly from ``scale_range`` (image
    bilinear, label nearest neighbour), the random crop of ``dataset(crop_size=...)``
    (after padding images with 0 and labels with the ignore id where they are smaller), a
    horizontal flip with probability 1/2 (``flip``), then colour jitter on the image only:
    brightness shifted by up to ``brightness * 255``, contrast, saturation scaled by a
    factor in ``[1 - x, 1 + x]``, hue rotated by up to ``hue`` (a fraction of the colour
    circle); values are clipped to ``[0, 255]``. A zero disables a jitter.
    Saturation and hue apply to 3-channel images only.

    ``dataset(augment=True)`` uses ``Augmentation()``; pass an instance to change it, e.g.
    ``Augmentation(scale_range=(0.75, 1.25), hue=0.0)``.
    """

    scale_range: tuple = (0.5, 2.0)
    flip: bool = True
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02

    def __post_init__(self):
        try:
            low, high = self.scale_range
        except (TypeError, ValueError):
            raise ValueError(f"`scale_range` must be a (low, high) pair, got {self.scale_range!r}.") from None
        low = check_float("scale_range[0]", low, minimum=0.0, strict_minimum=True)
        high = check_float("scale_range[1]", high, minimum=low)
        object.__setattr__(self, "scale_range", (low, high))
        if not isinstance(self.flip, bool):
            raise TypeError(f"`flip` must be True or False, got {self.flip!r}.")
        object.__setattr__(self, "brightness", check_float("brightness", self.brightness, minimum=0.0, maximum=1.0))
        object.__setattr__(self, "contrast", check_float("contrast", self.contrast, minimum=0.0, maximum=1.0))
        object.__setattr__(self, "saturation", check_float("saturation", self.saturation, minimum=0.0, maximum=1.0))
        object.__setattr__(self, "hue", check_float("hue", self.hue, minimum=0.0, maximum=0.5))

    @classmethod
    def from_argument(cls, augment):
        """``True`` -> ``Augmentation()``; ``False``/``None`` -> ``None``; an instance is returned as is."""
        if augment is None or augment is False:
            return None
        if augment is True:
            return cls()
        if isinstance(augment, cls):
            return augment
        raise TypeError(f"`augment` must be True, False, None or an Augmentation, got {augment!r}.")

    @property
    def changes_size(self):
        return self.scale_range != (1.0, 1.0)


def resize_example(image, label, size):
    """Resizes the image bilinearly and the label by nearest neighbour to ``size = (H, W)``."""
    image = tf.image.resize(image, size, method="bilinear")
    label = tf.image.resize(label[..., None], size, method="nearest")[..., 0]
    return image, label


def random_scale(image, label, scale_range, seed):
    """Rescales image and label by one factor drawn uniformly from ``scale_range``."""
    factor = tf.random.stateless_uniform([], seed, scale_range[0], scale_range[1])
    size = tf.cast(tf.shape(image)[:2], tf.float32) * factor
    size = tf.maximum(tf.cast(tf.round(size), tf.int32), 1)
    return resize_example(image, label, size)


def pad_to_size(image, label, size, ignore_class):
    """Pads at the bottom and right so that the example is at least ``size``: image 0, label ``ignore_class``."""
    shape = tf.shape(image)
    pad_height = tf.maximum(size[0] - shape[0], 0)
    pad_width = tf.maximum(size[1] - shape[1], 0)
    image = tf.pad(image, [[0, pad_height], [0, pad_width], [0, 0]], constant_values=0.0)
    label = tf.pad(label, [[0, pad_height], [0, pad_width]], constant_values=ignore_class)
    return image, label


def crop_example(image, label, size, ignore_class, seed=None):
    """Crops ``size = (H, W)``: at a random offset with ``seed``, centred without; pads first if needed."""
    image, label = pad_to_size(image, label, size, ignore_class)
    shape = tf.shape(image)
    spare_height, spare_width = shape[0] - size[0], shape[1] - size[1]
    if seed is None:
        top, left = spare_height // 2, spare_width // 2
    else:
        seeds = tf.random.experimental.stateless_split(seed, 2)
        top = tf.random.stateless_uniform([], seeds[0], 0, spare_height + 1, dtype=tf.int32)
        left = tf.random.stateless_uniform([], seeds[1], 0, spare_width + 1, dtype=tf.int32)
    channels = image.shape[-1]
    image = tf.slice(image, [top, left, 0], [size[0], size[1], -1])
    label = tf.slice(label, [top, left], [size[0], size[1]])
    image.set_shape([size[0], size[1], channels])
    label.set_shape([size[0], size[1]])
    return image, label


def random_flip(image, label, seed):
    """Mirrors image and label left-right together with probability 1/2."""
    flip = tf.random.stateless_uniform([], seed) < 0.5
    image = tf.cond(flip, lambda: tf.reverse(image, axis=[1]), lambda: image)
    label = tf.cond(flip, lambda: tf.reverse(label, axis=[1]), lambda: label)
    return image, label


def color_jitter(image, augmentation, seed):
    """Brightness, contrast, saturation and hue jitter of an image in ``[0, 255]``, clipped to that range."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    # tf.image's photometric ops expect [0, 1] (brightness deltas, HSV conversions).
    image = image / 255.0
    if augmentation.brightness > 0:
        image = tf.image.stateless_random_brightness(image, augmentation.brightness, seeds[0])
        image = tf.clip_by_value(image, 0.0, 1.0)
    if augmentation.contrast > 0:
        low, high = 1.0 - augmentation.contrast, 1.0 + augmentation.contrast
        image = tf.image.stateless_random_contrast(image, low, high, seeds[1])
        image = tf.clip_by_value(image, 0.0, 1.0)
    if image.shape[-1] == 3:
        if augmentation.saturation > 0:
            low, high = 1.0 - augmentation.saturation, 1.0 + augmentation.saturation
            image = tf.image.stateless_random_saturation(image, low, high, seeds[2])
            image = tf.clip_by_value(image, 0.0, 1.0)
        if augmentation.hue > 0:
            image = tf.image.stateless_random_hue(image, augmentation.hue, seeds[3])
    return tf.clip_by_value(image * 255.0, 0.0, 255.0)


def transform_example(image, label, *, ignore_class, image_size=None, crop_size=None, augmentation=None, seed=None):
    """Resizing, augmentation and cropping of one example, in the order documented in :class:`Augmentation`.

    ``image_size`` resizes first; ``crop_size`` crops at random when ``augmentation`` is
    given (``seed`` required) and at the centre otherwise.
    """
    if image_size is not None:
        image, label = resize_example(image, label, image_size)
    if augmentation is None:
        if crop_size is not None:
            image, label = crop_example(image, label, crop_size, ignore_class)
        return image, label
    scale_seed, crop_seed, flip_seed, color_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    if augmentation.changes_size:
        image, label = random_scale(image, label, augmentation.scale_range, scale_seed)
    if crop_size is not None:
        image, label = crop_example(image, label, crop_size, ignore_class, seed=crop_seed)
    if augmentation.flip:
        image, label = random_flip(image, label, flip_seed)
    image = color_jitter(image, augmentation, color_seed)
    return image, label


def pad_batch_to_multiple(images, labels, multiple, ignore_class):
    """Pads a batch at the bottom and right so height and width are multiples of ``multiple``."""
    shape = tf.shape(images)
    pad_height = (-shape[1]) % multiple
    pad_width = (-shape[2]) % multiple
    images = tf.pad(images, [[0, 0], [0, pad_height], [0, pad_width], [0, 0]], constant_values=0.0)
    labels = tf.pad(labels, [[0, 0], [0, pad_height], [0, pad_width]], constant_values=ignore_class)
    return images, labels


def normalize(images, mode):
    """Applies :data:`~keras_sceneparse.layers.image_normalization.NORMALIZATIONS` ``[mode]`` to images in ``[0, 255]``.

    The same computation as :class:`~keras_sceneparse.layers.ImageNormalization`, written
    with ``tf`` ops so that it runs inside ``tf.data`` whatever the Keras backend.
    ``mode=None`` returns the images unchanged.
    """
    if mode is None:
        return images
    check_choice("normalization", mode, NORMALIZATIONS)
    scale, mean, std, bgr = normalization_parameters(mode, images.shape[-1])
    if bgr:
        images = tf.reverse(images, axis=[-1])
    return (images * scale - tf.constant(mean, images.dtype)) / tf.constant(std, images.dtype)


def check_size(name, size):
    """Validates an ``(height, width)`` pair of positive ints (an int means a square); None passes."""
    if size is None:
        return None
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (size, size)
    try:
        height, width = size
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a (height, width) pair of positive integers, got {size!r}.") from None
    for value in (height, width):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"`{name}` must be a (height, width) pair of positive integers, got {size!r}.")
    return (int(height), int(width))
