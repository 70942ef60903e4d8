"""The base class of the dataset readers: file listing, checks, the tf.data pipeline, class statistics."""

import os
import random
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from keras_sceneparse.data.pipeline import (
    DECODABLE_IMAGE_FORMATS,
    GRAYSCALE_LABEL_MODES,
    ID_LABEL_MODES,
    Augmentation,
    check_example,
    check_size,
    decode_image,
    decode_label_png,
    decode_label_with_pil,
    invalid_label_mask,
    normalize,
    pad_batch_to_multiple,
    read_label_with_pil,
    remap_ids,
    remap_ids_numpy,
    transform_example,
)
from keras_sceneparse.layers.image_normalization import NORMALIZATIONS
from keras_sceneparse.utils.validation import check_choice, check_int, check_num_classes

#: File name endings of the images the readers list.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def find_images(folder):
    """Sorted image files (:data:`IMAGE_EXTENSIONS`) directly inside ``folder``."""
    return sorted(
        path for path in Path(folder).iterdir() if path.is_file() and path.name.lower().endswith(IMAGE_EXTENSIONS)
    )


def require_folder(path, description):
    """Returns ``path`` if it is a folder, else raises FileNotFoundError naming it."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"Missing folder {path} ({description}).")
    return path


def pair_with_labels(images, label_path_for, where):
    """``[(image, label)]`` with ``label_path_for(image)``; raises naming the first image without a label."""
    if not images:
        raise FileNotFoundError(f"No images found in {where}.")
    pairs = []
    for image in images:
        label = Path(label_path_for(Path(image)))
        if not label.is_file():
            raise FileNotFoundError(f"The image {image} has no label map: expected {label}.")
        pairs.append((str(image), str(label)))
    return sorted(pairs)


class SegmentationDataset:
    """A semantic segmentation data set on disk, served as a ``tf.data.Dataset``.

    Subclasses find the files of each split (:meth:`splits`, :meth:`files`) and say how a
    label file encodes classes (:meth:`label_encoding`, :meth:`label_table`,
    :meth:`decode_label`); this class checks the files, builds the input pipeline
    (:meth:`dataset`) and computes class statistics (:meth:`class_frequencies`,
    :meth:`median_frequency_weights`).

    Label maps hold a class id in ``[0, num_classes)`` per pixel, or ``ignore_class`` for
    pixels that are not scored (void, unknown, padding). Any other value is an error, raised
    with the file's path, in the pipeline and in the statistics.

    Attributes:
        root: the data set folder (a ``pathlib.Path``).
        num_classes: number of scored classes.
        ignore_class: the id of pixels that losses and metrics skip; it may lie inside or
            outside ``[0, num_classes)``. Pass it to the losses and metrics of this library.
        class_names: ``num_classes`` names, in id order.
        palette: ``num_classes`` RGB triples for drawing label maps.
        channels: channels of the decoded images.
    """

    #: Splits that :meth:`dataset` shuffles by default.
    training_splits = ("train", "trainval", "train_aug", "all")

    def __init__(self, root, *, num_classes, ignore_class, class_names, palette, channels=3):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{type(self).__name__}: the data set folder {self.root} does not exist.")
        self.num_classes = check_num_classes(num_classes)
        self.ignore_class = check_int("ignore_class", ignore_class, minimum=0)
        self.class_names = [str(name) for name in class_names]
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"`class_names` must have num_classes={self.num_classes} entries, got {len(self.class_names)}."
            )
        self.palette = [tuple(int(value) for value in color) for color in palette]
        if len(self.palette) != self.num_classes or any(
            len(color) != 3 or not all(0 <= value <= 255 for value in color) for color in self.palette
        ):
            raise ValueError(
                f"`palette` must hold num_classes={self.num_classes} RGB triples in [0, 255], got {palette!r}."
            )
        self.channels = check_choice("channels", channels, (1, 3))
        # PIL modes of the label files checked so far, per split, and the (path, mtime, size)
        # of the files that passed the checks (see _check_files).
        self._label_modes = {}
        self._checked_files = set()

    # --- What subclasses provide ---------------------------------------------------------

    def splits(self):
        """Names of the splits found on disk."""
        raise NotImplementedError

    def _find_files(self, split):
        """``[(image_path, label_path)]`` of a split, for an already validated split name."""
        raise NotImplementedError

    def label_encoding(self, split):
        """How the label files of ``split`` encode classes: ``"ids"`` (single-channel PNG of ids),
        ``"colors"`` (RGB or palette PNG mapped through a colour table) or ``"text"`` (matrix
        of ids in a text file)."""
        return "ids"

    def label_table(self, split):
        """A NumPy array mapping raw ids to class ids (``table[raw]``), or None for ids used as they are."""
        return None

    def split_aliases(self):
        """Other accepted spellings of split names, ``{alias: split}``."""
        return {}

    # --- Files ---------------------------------------------------------------------------

    def resolve_split(self, split):
        """Returns the canonical name of ``split``, or raises listing the available splits."""
        split = self.split_aliases().get(split, split)
        available = self.splits()
        if split not in available:
            raise ValueError(
                f"Unknown split {split!r} for {type(self).__name__} at {self.root}; available splits: "
                f"{', '.join(map(repr, available))}."
            )
        return split

    def files(self, split):
        """Sorted ``(image_path, label_path)`` pairs of ``split``.

        Raises FileNotFoundError naming the missing folder or file when the layout is
        incomplete, a split has no images or an image has no label.
        """
        split = self.resolve_split(split)
        pairs = sorted(self._find_files(split))
        if not pairs:
            raise FileNotFoundError(f"The split {split!r} of {type(self).__name__} at {self.root} has no images.")
        return pairs

    def _check_files(self, split, pairs):
        """Checks that every file exists, is not empty and, for images, has a readable header.

        Reads headers only (``PIL.Image.open`` does not decode pixels), so it is cheap; it
        turns a missing, empty or corrupt file into an error naming it before TensorFlow
        meets it. Label files that are images must have the image's size and a mode that
        fits :meth:`label_encoding`.
        """
        encoding = self.label_encoding(split)
        modes = self._label_modes.setdefault(split, set())
        for image_path, label_path in pairs:
            # Files already checked are skipped unless they changed since.
            key = (_file_state(image_path), _file_state(label_path))
            if key in self._checked_files:
                continue
            image_format, _, image_size = _read_header(image_path, "image")
            if image_format not in DECODABLE_IMAGE_FORMATS:
                raise ValueError(
                    f"The image {image_path} is in {image_format} format; the pipeline decodes "
                    f"{', '.join(DECODABLE_IMAGE_FORMATS)}."
                )
            if encoding == "text":
                _check_nonempty(label_path, "label file")
            else:
                label_format, label_mode, label_size = _read_header(label_path, "label map")
                if label_format != "PNG":
                    raise ValueError(f"The label map {label_path} is in {label_format} format; expected PNG.")
                allowed = ID_LABEL_MODES if encoding == "ids" else ("P", "RGB", "RGBA")
                if label_mode not in allowed:
                    expected = "single-channel class ids" if encoding == "ids" else "an RGB or palette image"
                    raise ValueError(
                        f"The label map {label_path} has PIL mode {label_mode!r}; expected {expected} "
                        f"(modes {', '.join(allowed)})."
                    )
                if label_size != image_size:
                    raise ValueError(
                        f"The label map {label_path} is {label_size[0]}x{label_size[1]} (width x height) but "
                        f"its image {image_path} is {image_size[0]}x{image_size[1]}."
                    )
                modes.add(label_mode)
            self._checked_files.add(key)

    # --- Decoding ------------------------------------------------------------------------

    def decode_label(self, label_path, split):
        """TensorFlow op reading one label file of ``split`` as int32 ``(H, W)`` class ids."""
        if self._label_modes.get(split, set()) <= set(GRAYSCALE_LABEL_MODES):
            label = decode_label_png(label_path)
        else:
            label = decode_label_with_pil(label_path)
        table = self.label_table(split)
        return label if table is None else remap_ids(label, table)

    def read_label(self, label_path, split):
        """NumPy twin of :meth:`decode_label`, for statistics: an int64 ``(H, W)`` array."""
        label = read_label_with_pil(label_path)
        table = self.label_table(split)
        return label if table is None else remap_ids_numpy(label, table)

    # --- The pipeline --------------------------------------------------------------------

    def dataset(
        self,
        split,
        batch_size=8,
        crop_size=None,
        image_size=None,
        augment=False,
        shuffle=None,
        repeat=False,
        seed=None,
        normalization=None,
        drop_remainder=False,
        pad_to_multiple=None,
        num_parallel_calls=tf.data.AUTOTUNE,
        limit=None,
        extras=None,
    ):
        """A ``tf.data.Dataset`` of ``(images, labels)`` batches of ``split``.

        Images are float32 ``(B, H, W, C)`` in ``[0, 255]`` (models of this library
        normalise inside) unless ``normalization`` is given; labels are int32 ``(B, H, W)``.

        Args:
            split: a name from :meth:`splits`.
            batch_size: examples per batch (>= 1).
            crop_size: ``(H, W)`` crop, at random with augmentation and at the centre
                otherwise; smaller examples are padded first (bottom and right; images with
                0, labels with ``ignore_class``).
            image_size: ``(H, W)`` to resize every example to before augmentation (images
                bilinearly, labels by nearest neighbour).
            augment: True for :class:`~keras_sceneparse.data.Augmentation` defaults, an
                ``Augmentation`` instance, or False/None for none.
            shuffle: shuffle the files each epoch; defaults to True for training splits
                (:attr:`training_splits`) and False otherwise.
            repeat: repeat indefinitely (then give ``steps_per_epoch`` to ``fit``).
            seed: seeds shuffling and augmentation. Each example's augmentation is drawn
                with stateless ops from a seed of its own, taken from a per-epoch stream
                seeded by ``seed`` and its position, so the batches do not depend on
                ``num_parallel_calls``; every pass over the data set (epoch) draws anew.
                The same ``seed`` gives the same batches, given the same global TensorFlow
                seed when the program sets one (``tf.data`` combines both). None draws a
                seed once.
            normalization: None, or a mode of
                :class:`~keras_sceneparse.layers.ImageNormalization` ("caffe", "imagenet",
                "tf", "unit"), applied after batching so that padding is normalised black.
            drop_remainder: drop the last incomplete batch.
            pad_to_multiple: pad batches (bottom and right) so height and width are
                multiples of this, for models whose strides need it.
            num_parallel_calls: parallelism of decoding and augmentation.
            limit: keep only the first ``limit`` files (sorted), for quick runs.
            extras: optional ``{name: array}`` with one row per file of ``split`` (in
                :meth:`files` order), carried along each example unchanged (shuffled,
                batched, never augmented), e.g. the encoded parse tree of each image. The
                dataset then yields ``({"images": images, name: batch, ...}, labels)``.

        Examples without a fixed size (no ``crop_size``, and no ``image_size`` or one
        changed by random scaling) are batched with ``padded_batch``.
        """
        split = self.resolve_split(split)
        batch_size = check_int("batch_size", batch_size, minimum=1)
        crop_size = check_size("crop_size", crop_size)
        image_size = check_size("image_size", image_size)
        augmentation = Augmentation.from_argument(augment)
        if normalization is not None:
            check_choice("normalization", normalization, NORMALIZATIONS)
        if pad_to_multiple is not None:
            pad_to_multiple = check_int("pad_to_multiple", pad_to_multiple, minimum=1)
        if num_parallel_calls is not None and num_parallel_calls != tf.data.AUTOTUNE:
            num_parallel_calls = check_int("num_parallel_calls", num_parallel_calls, minimum=1)
        if limit is not None:
            limit = check_int("limit", limit, minimum=1)
        for name, value in (("shuffle", shuffle), ("repeat", repeat), ("drop_remainder", drop_remainder)):
            if value is not None and not isinstance(value, bool):
                raise TypeError(f"`{name}` must be True or False, got {value!r}.")
        if shuffle is None:
            shuffle = split in self.training_splits
        if seed is None:
            seed = random.SystemRandom().randrange(2**31 - 1)
        seed = check_int("seed", seed, minimum=0)

        all_pairs = self.files(split)
        pairs = all_pairs[:limit]
        self._check_files(split, pairs)
        image_paths, label_paths = (list(paths) for paths in zip(*pairs))
        extras = _check_extras(extras, len(all_pairs), split)
        extras = {name: values[: len(pairs)] for name, values in extras.items()}

        files = tf.data.Dataset.from_tensor_slices((image_paths, label_paths, extras))
        if shuffle:
            files = files.shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            files = files.repeat()

        def load(image_path, label_path, extra, element_seed=None):
            image = decode_image(image_path, self.channels)
            label = self.decode_label(label_path, split)
            label = check_example(image, label, image_path, label_path, self.num_classes, self.ignore_class)
            image, label = transform_example(
                image,
                label,
                ignore_class=self.ignore_class,
                image_size=image_size,
                crop_size=crop_size,
                augmentation=augmentation,
                seed=element_seed,
            )
            return image, label, extra

        if augmentation is None:
            examples = files.map(load, num_parallel_calls=num_parallel_calls)
        else:
            # One random draw per element from a stream that is deterministic given `seed` and
            # changes each epoch, plus the element's position: a seed for stateless ops.
            draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
            examples = tf.data.Dataset.zip(files, draws).enumerate().map(
                lambda index, element: load(*element[0], element_seed=tf.stack([element[1], index])),
                num_parallel_calls=num_parallel_calls,
            )

        fixed_size = crop_size is not None or (
            image_size is not None and (augmentation is None or not augmentation.changes_size)
        )
        if fixed_size or batch_size == 1:
            batches = examples.batch(batch_size, drop_remainder=drop_remainder)
        else:
            extra_spec = examples.element_spec[2]
            batches = examples.padded_batch(
                batch_size,
                padded_shapes=([None, None, self.channels], [None, None], {k: v.shape for k, v in extra_spec.items()}),
                padding_values=(
                    tf.constant(0.0, tf.float32),
                    tf.constant(self.ignore_class, tf.int32),
                    {k: tf.zeros((), v.dtype) for k, v in extra_spec.items()},  # extras have fixed shapes
                ),
                drop_remainder=drop_remainder,
            )
        if pad_to_multiple is not None:
            batches = batches.map(
                lambda images, labels, extra: (*pad_batch_to_multiple(images, labels, pad_to_multiple, self.ignore_class), extra)
            )
        if normalization is not None:
            batches = batches.map(lambda images, labels, extra: (normalize(images, normalization), labels, extra))
        if extras:
            batches = batches.map(lambda images, labels, extra: ({"images": images, **extra}, labels))
        else:
            batches = batches.map(lambda images, labels, extra: (images, labels))
        return batches.prefetch(tf.data.AUTOTUNE)

    # --- Class statistics ----------------------------------------------------------------

    def _pixel_statistics(self, split, verbose):
        """Per class: pixels labelled with it, and pixels of the images in which it appears."""
        split = self.resolve_split(split)
        pairs = self.files(split)
        counts = np.zeros(self.num_classes, np.int64)
        image_pixels = np.zeros(self.num_classes, np.int64)
        progress = keras.utils.Progbar(len(pairs), unit_name="label map") if verbose else None
        for step, (_, label_path) in enumerate(pairs, start=1):
            _check_nonempty(label_path, "label file")
            label = self.read_label(label_path, split)
            invalid = invalid_label_mask(label, self.num_classes, self.ignore_class)
            if np.any(invalid):
                bad = np.unique(label[invalid])[:5].tolist()
                raise ValueError(
                    f"The label map {label_path} holds ids {bad} outside [0, {self.num_classes}) that are "
                    f"not the ignore id {self.ignore_class}."
                )
            image_counts = np.bincount(label[label != self.ignore_class].ravel(), minlength=self.num_classes)
            counts += image_counts
            image_pixels += np.where(image_counts > 0, label.size, 0)
            if progress is not None:
                progress.update(step)
        return counts, image_pixels

    def class_frequencies(self, split, verbose=False):
        """Pixel count of each class over the label maps of ``split`` (ignored pixels left out).

        Reads the labels with PIL/NumPy; ``verbose=True`` shows a progress bar.
        Returns an int64 array of length ``num_classes``.
        """
        return self._pixel_statistics(split, verbose)[0]

    def median_frequency_weights(self, split, verbose=False):
        """Class weights ``median(freq) / freq_c`` ("median frequency balancing").

        Eigen and Fergus, ICCV 2015 (Sec. 4.1), used by SegNet (Sec. 3.1):
        ``freq_c`` is the number of pixels of class ``c`` divided by the total number of
        pixels (all of them, ignored ones included) of the images in which ``c`` is present;
        the median is taken over the classes present in ``split``. Classes never present
        get weight 0. Returns a float64 array of length ``num_classes``.
        """
        counts, image_pixels = self._pixel_statistics(split, verbose)
        present = counts > 0
        frequencies = np.zeros(self.num_classes, np.float64)
        frequencies[present] = counts[present] / image_pixels[present]
        weights = np.zeros(self.num_classes, np.float64)
        if np.any(present):
            weights[present] = np.median(frequencies[present]) / frequencies[present]
        return weights

    def __repr__(self):
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, splits={self.splits()}, "
            f"num_classes={self.num_classes}, ignore_class={self.ignore_class})"
        )


def _check_extras(extras, count, split):
    """``extras`` as ``{name: array}`` with ``count`` rows each (an empty dict for None)."""
    if extras is None:
        return {}
    if not isinstance(extras, dict):
        raise TypeError(f"`extras` must be a dict of arrays, got {type(extras).__name__}.")
    checked = {}
    for name, values in extras.items():
        if name == "images":
            raise ValueError("`extras` cannot be named 'images': that key holds the images.")
        values = np.asarray(values)
        if values.dtype == object or values.ndim == 0 or len(values) != count:
            raise ValueError(
                f"`extras[{name!r}]` must be an array with one row per file of split {split!r} ({count}), "
                f"got shape {values.shape} and dtype {values.dtype}."
            )
        checked[name] = values
    return checked


def _file_state(path):
    try:
        status = os.stat(path)
    except OSError:
        return (path, None)
    return (path, status.st_mtime_ns, status.st_size)


def _check_nonempty(path, description):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"The {description} {path} does not exist.")
    if os.path.getsize(path) == 0:
        raise ValueError(f"The {description} {path} is empty (0 bytes).")


def _read_header(path, description):
    """``(format, mode, (width, height))`` from an image file's header, or a ValueError naming it."""
    _check_nonempty(path, description)
    try:
        with Image.open(path) as image:
            return image.format, image.mode, image.size
    except (OSError, ValueError, SyntaxError) as error:
        raise ValueError(f"The {description} {path} is not a readable image: {error}") from None
