"""UIUC PASCAL Sentences: human captions of 1,000 PASCAL VOC images, with VOC class masks."""

import collections
import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from keras_sceneparse.data.pipeline import ID_LABEL_MODES, invalid_label_mask, read_label_with_pil
from keras_sceneparse.data.voc import VOC_CLASS_NAMES, VOC_IGNORE_CLASS, voc_colormap
from keras_sceneparse.utils.files import read_json_lines

PASCAL_SENTENCES_SPLITS = ("all", "train", "val")
#: Values of ``voc_split``: the VOC 2012 segmentation split of an image with a mask, or null.
VOC_SPLITS = ("train", "val")


@dataclasses.dataclass(frozen=True)
class PascalSentencesRecord:
    """One image of PASCAL Sentences.

    Attributes:
        image: the VOC image id, e.g. ``"2008_000716"``.
        category: the VOC class the image was chosen for (devkit spelling, e.g. ``"diningtable"``).
        captions: the human captions (five for most images).
        mask_path: the path of its VOC class mask, or None for the images without one.
        voc_split: ``"train"`` or ``"val"``, the VOC 2012 segmentation split of the mask, or None.
    """

    image: str
    category: str
    captions: tuple
    mask_path: str | None
    voc_split: str | None


class PascalSentences:
    """UIUC PASCAL Sentences (Rashtchian, Young, Hodosh and Hockenmaier, "Collecting Image
    Annotations Using Amazon's Mechanical Turk", NAACL-HLT 2010 Workshop): 1,000 PASCAL VOC
    2008 images, 50 for each of the 20 VOC classes, with five human captions each; here with
    the VOC 2012 class masks of the images that have one, and without the photos.

    It is not a :class:`SegmentationDataset` (there are no images to train on): it serves
    captions, and masks as NumPy arrays, e.g. to check what a caption names against what the
    mask holds. Layout under ``root``:

    - ``captions.jsonl``: one JSON object per image, ``{"image": "2008_000716", "category":
      "aeroplane", "captions": [...], "mask": true, "voc_split": "train"}``;
    - ``masks/<image>.png``: palette PNGs whose pixel values are VOC class ids (0 background,
      1..20 aeroplane ... tvmonitor, 255 boundary/void), for the images with ``"mask": true``.

    Splits: ``"all"``, and ``"train"``/``"val"``, the images whose ``voc_split`` is that
    (images without a mask are in ``"all"`` only).

    Attributes:
        root: the data set folder (a ``pathlib.Path``).
        num_classes, ignore_class, class_names, palette: the 21 VOC classes (background
            first, devkit spelling), 255, and the VOC colour map, as for
            :class:`~keras_sceneparse.data.PascalVOC`.

    Example:
        >>> pascal = PascalSentences("../shared/datasets/pascal_sentences")
        >>> record = pascal.records("val")[0]
        >>> record.captions, pascal.mask(record.image).shape
    """

    def __init__(self, root):
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"{type(self).__name__}: the data set folder {self.root} does not exist.")
        self.num_classes = len(VOC_CLASS_NAMES)
        self.ignore_class = VOC_IGNORE_CLASS
        self.class_names = list(VOC_CLASS_NAMES)
        self.palette = voc_colormap(self.num_classes)
        self.captions_path = self.root / "captions.jsonl"
        if not self.captions_path.is_file():
            raise FileNotFoundError(
                f"No PASCAL Sentences layout found under {self.root}: expected {self.captions_path} (and masks/)."
            )
        self._records = self._read_records(self.captions_path)

    def _read_records(self, path):
        categories = VOC_CLASS_NAMES[1:]
        records, lines = {}, {}
        for number, row in read_json_lines(path):
            where = f"{path}, line {number}"
            missing = [key for key in ("image", "category", "captions", "mask") if key not in row]
            if missing:
                raise ValueError(f"{where}: missing {', '.join(map(repr, missing))}.")
            image, category, captions = row["image"], row["category"], row["captions"]
            if not isinstance(image, str) or not image:
                raise ValueError(f"{where}: 'image' must be a VOC image id such as \"2008_000716\", got {image!r}.")
            if image in records:
                raise ValueError(f"{where}: the image {image!r} is listed again (first on line {lines[image]}).")
            if category not in categories:
                raise ValueError(
                    f"{where}: 'category' must be a VOC class ({', '.join(categories)}), got {category!r}."
                )
            if not isinstance(captions, list) or not all(isinstance(caption, str) for caption in captions):
                raise ValueError(f"{where}: 'captions' must be a list of strings, got {captions!r}.")
            if not isinstance(row["mask"], bool):
                raise ValueError(f"{where}: 'mask' must be true or false, got {row['mask']!r}.")
            voc_split = row.get("voc_split")
            if voc_split is not None and voc_split not in VOC_SPLITS:
                raise ValueError(
                    f"{where}: 'voc_split' must be one of {list(VOC_SPLITS)} or null, got {voc_split!r}."
                )
            mask_path = None
            if row["mask"]:
                mask_path = self.root / "masks" / f"{image}.png"
                if not mask_path.is_file():
                    raise FileNotFoundError(
                        f"{where}: the image {image!r} has a mask, but {mask_path} does not exist."
                    )
                mask_path = str(mask_path)
            records[image] = PascalSentencesRecord(image, category, tuple(captions), mask_path, voc_split)
            lines[image] = number
        if not records:
            raise ValueError(f"The caption file {path} lists no images.")
        return records

    def splits(self):
        """The split names: ``"all"``, ``"train"``, ``"val"``."""
        return list(PASCAL_SENTENCES_SPLITS)

    def resolve_split(self, split):
        """Returns ``split``, or raises listing the available splits."""
        if split not in PASCAL_SENTENCES_SPLITS:
            raise ValueError(
                f"Unknown split {split!r} for {type(self).__name__} at {self.root}; available splits: "
                f"{', '.join(map(repr, PASCAL_SENTENCES_SPLITS))}."
            )
        return split

    def records(self, split="all"):
        """The :class:`PascalSentencesRecord` of each image of ``split``, in the file's order."""
        split = self.resolve_split(split)
        return [record for record in self._records.values() if split in ("all", record.voc_split)]

    def captions(self, split="all"):
        """``{image: [captions]}`` of the images of ``split``, in the file's order."""
        return {record.image: list(record.captions) for record in self.records(split)}

    def categories(self, split="all"):
        """``{category: number of images}`` over the 20 VOC classes, in devkit order."""
        counts = collections.Counter(record.category for record in self.records(split))
        return {category: counts[category] for category in VOC_CLASS_NAMES[1:]}

    def mask(self, image):
        """The VOC class mask of ``image`` as an int64 ``(H, W)`` array of class ids (255 void).

        Reads the PNG's palette indices with PIL, not its colours. Raises ValueError naming
        the image when it is not in the data set or has no mask, and naming the file when
        the mask is not a single-channel image of valid ids.
        """
        if image not in self._records:
            raise ValueError(f"The image {image!r} is not in {self.captions_path}.")
        path = self._records[image].mask_path
        if path is None:
            raise ValueError(f"The image {image!r} has no mask ('mask' is false in {self.captions_path}).")
        try:
            with Image.open(path) as mask:
                mode = mask.mode
        except (OSError, ValueError, SyntaxError) as error:
            raise ValueError(f"The mask {path} is not a readable image: {error}") from None
        if mode not in ID_LABEL_MODES:
            raise ValueError(
                f"The mask {path} has PIL mode {mode!r}; expected palette indices or single-channel class ids "
                f"(modes {', '.join(ID_LABEL_MODES)})."
            )
        values = read_label_with_pil(path)
        invalid = invalid_label_mask(values, self.num_classes, self.ignore_class)
        if np.any(invalid):
            bad = np.unique(values[invalid])[:5].tolist()
            raise ValueError(
                f"The mask {path} holds ids {bad} outside [0, {self.num_classes}) that are not the void id "
                f"{self.ignore_class}."
            )
        return values

    def __len__(self):
        return len(self._records)

    def __repr__(self):
        masks = sum(record.mask_path is not None for record in self._records.values())
        return f"{type(self).__name__}(root={str(self.root)!r}, images={len(self)}, masks={masks})"
