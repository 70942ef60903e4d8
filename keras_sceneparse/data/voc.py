"""PASCAL VOC 2012 segmentation, with the SBD-augmented training set."""

from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from keras_sceneparse.data.base import SegmentationDataset, pair_with_labels

VOC_CLASS_NAMES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
]
VOC_IGNORE_CLASS = 255


def voc_colormap(count=256):
    """The PASCAL VOC colour map: the bits of index ``i`` interleaved into R, G and B from the top bit down.

    Index 0 is black, 1 is (128, 0, 0), ..., 255 (void) is (224, 224, 192); the devkit's
    ``VOClabelcolormap.m``. Returns ``count`` RGB tuples.
    """
    colors = []
    for index in range(count):
        red = green = blue = 0
        bits = index
        for shift in range(7, -1, -1):
            red |= (bits & 1) << shift
            green |= ((bits >> 1) & 1) << shift
            blue |= ((bits >> 2) & 1) << shift
            bits >>= 3
        colors.append((red, green, blue))
    return colors


def _color_codes(rgb):
    rgb = np.asarray(rgb, np.int64)
    return rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2]


class PascalVOC(SegmentationDataset):
    """PASCAL VOC 2012 semantic segmentation (Everingham et al., IJCV 2010), 21 classes.

    ``root`` may be ``VOCdevkit/VOC2012``, ``VOCdevkit`` or the folder holding
    ``VOCdevkit``. Images are ``JPEGImages/<id>.jpg``; the splits ``train``, ``val`` and
    ``trainval`` are the id lists ``ImageSets/Segmentation/<split>.txt``, labelled by
    ``SegmentationClass/<id>.png``. Those are palette PNGs, which TensorFlow decodes to
    colours: each colour is mapped back to its class id through the VOC colour map
    (:func:`voc_colormap`; (224, 224, 192), the object boundaries, is the void id 255). A
    colour outside the map is an error naming the file.

    The SBD-augmented set (Hariharan et al., ICCV 2011) of DeepLab: if
    ``SegmentationClassAug/`` (grayscale PNGs of ids) and a ``train_aug.txt`` list
    (in ``ImageSets/Segmentation/`` or next to ``JPEGImages``) exist, the split
    ``train_aug`` reads its labels from ``SegmentationClassAug``. A list line may be an id
    or DeepLab's ``/JPEGImages/<id>.jpg /SegmentationClassAug/<id>.png``.

    Ids: 0 background, 1..20 aeroplane ... tvmonitor in devkit order; ``ignore_class=255``.
    """

    def __init__(self, root):
        super().__init__(
            root,
            num_classes=21,
            ignore_class=VOC_IGNORE_CLASS,
            class_names=VOC_CLASS_NAMES,
            palette=voc_colormap(21),
        )
        candidates = [self.root, self.root / "VOC2012", self.root / "VOCdevkit" / "VOC2012"]
        self.voc_root = next(
            (
                folder
                for folder in candidates
                if (folder / "JPEGImages").is_dir()
                and ((folder / "SegmentationClass").is_dir() or (folder / "SegmentationClassAug").is_dir())
            ),
            None,
        )
        if self.voc_root is None:
            raise FileNotFoundError(
                f"No PASCAL VOC layout found under {self.root}. Looked for JPEGImages/ with SegmentationClass/ "
                f"(or SegmentationClassAug/) in {', '.join(str(folder) for folder in candidates)}."
            )
        lists = self.voc_root / "ImageSets" / "Segmentation"
        self._lists = {}
        if (self.voc_root / "SegmentationClass").is_dir():
            for split in ("train", "val", "trainval"):
                if (lists / f"{split}.txt").is_file():
                    self._lists[split] = lists / f"{split}.txt"
        if (self.voc_root / "SegmentationClassAug").is_dir():
            for candidate in (lists / "train_aug.txt", self.voc_root / "train_aug.txt", self.root / "train_aug.txt"):
                if candidate.is_file():
                    self._lists["train_aug"] = candidate
                    break
        if not self._lists:
            raise FileNotFoundError(
                f"PASCAL VOC at {self.voc_root} has no split lists: looked for ImageSets/Segmentation/"
                "{train,val,trainval}.txt (with SegmentationClass/) and train_aug.txt (with SegmentationClassAug/)."
            )
        self._color_table = None

    def splits(self):
        return list(self._lists)

    def label_encoding(self, split):
        return "ids" if split == "train_aug" else "colors"

    def _find_files(self, split):
        ids = []
        for line in self._lists[split].read_text().splitlines():
            fields = line.split()
            if fields:
                ids.append(Path(fields[0]).stem)
        label_folder = self.voc_root / ("SegmentationClassAug" if split == "train_aug" else "SegmentationClass")
        images = []
        for image_id in ids:
            image = self.voc_root / "JPEGImages" / f"{image_id}.jpg"
            if not image.is_file():
                raise FileNotFoundError(f"The image {image} listed in {self._lists[split]} does not exist.")
            images.append(image)
        return pair_with_labels(images, lambda image: label_folder / f"{image.stem}.png", self._lists[split])

    def _color_lookup(self):
        if self._color_table is None:
            colors = voc_colormap()
            class_ids = [*range(self.num_classes), VOC_IGNORE_CLASS]
            # Created outside any tf.data function trace, so every pipeline shares it.
            with tf.init_scope():
                self._color_table = tf.lookup.StaticHashTable(
                    tf.lookup.KeyValueTensorInitializer(
                        tf.constant(_color_codes([colors[index] for index in class_ids]), tf.int64),
                        tf.constant(class_ids, tf.int32),
                    ),
                    default_value=-1,
                )
        return self._color_table

    def decode_label(self, label_path, split):
        if self.label_encoding(split) == "ids":
            return super().decode_label(label_path, split)
        rgb = tf.cast(tf.io.decode_png(tf.io.read_file(label_path), channels=3), tf.int64)
        codes = rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2]
        labels = self._color_lookup().lookup(codes)
        unknown = labels < 0
        code = tf.reduce_max(tf.where(unknown, codes, -1))
        check = tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(unknown)),
            [
                "The label map",
                label_path,
                "holds a colour outside the PASCAL VOC colour map, (R, G, B) =",
                tf.stack([code // 65536, code // 256 % 256, code % 256]),
            ],
        )
        with tf.control_dependencies([check]):
            return tf.identity(labels)

    def read_label(self, label_path, split):
        if self.label_encoding(split) == "ids":
            return super().read_label(label_path, split)
        try:
            with Image.open(label_path) as label:
                codes = _color_codes(np.asarray(label.convert("RGB")))
        except (OSError, ValueError) as error:
            raise ValueError(f"Cannot read the label map {label_path}: {error}") from None
        colors = voc_colormap()
        class_ids = np.array([*range(self.num_classes), VOC_IGNORE_CLASS])
        known = _color_codes([colors[index] for index in class_ids])
        order = np.argsort(known)
        positions = np.clip(np.searchsorted(known[order], codes), 0, len(known) - 1)
        found = known[order][positions] == codes
        if not np.all(found):
            code = int(codes[~found][0])
            raise ValueError(
                f"The label map {label_path} holds a colour outside the PASCAL VOC colour map, (R, G, B) = "
                f"{(code // 65536, code // 256 % 256, code % 256)}."
            )
        return class_ids[order][positions]
