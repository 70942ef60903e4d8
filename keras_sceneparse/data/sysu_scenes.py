"""SYSU-Scenes: photos with pixel labels over 37 tags and one human sentence per image."""

import dataclasses
import difflib
import json
import re
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_sceneparse.data.matlab import load_mat, read_label_matrix
from keras_sceneparse.utils.files import read_json_lines
from keras_sceneparse.data.base import SegmentationDataset, find_images, pair_with_labels, require_folder
from keras_sceneparse.data.pipeline import remap_ids, remap_ids_numpy
from keras_sceneparse.data.voc import voc_colormap

#: Class ids 0..37: background, then the 37 tags in the order of the converted copy's ``classes.txt``.
SYSU_SCENES_CLASS_NAMES = [
    "background", "aeroplane", "bag", "ball", "bench", "bicycle", "bird", "boat", "bottle", "building", "bus",
    "camera", "car", "cat", "cellphone", "chair", "cow", "cup", "dog", "glasses", "grass", "horse", "laptop",
    "motorbike", "person", "racket", "rail", "sea", "sheep", "sky", "sofa", "street/road", "suitcase", "table",
    "train", "tree", "tv/monitor", "umbrella",
]
SYSU_SCENES_IGNORE_CLASS = 255
SYSU_SCENES_SPLITS = ("train", "test")
#: The test split: the images whose number is a multiple of ``TEST_EVERY`` (1,009 of 5,046).
TEST_EVERY = 5
#: Other spellings of class names, in ``label_list.mat`` and :meth:`SYSUScenes.class_index`
#: (compared after lower-casing and collapsing white space).
SYSU_SCENES_NAME_ALIASES = {
    "bg": "background",
    "street": "street/road",
    "road": "street/road",
    "tv": "tv/monitor",
    "monitor": "tv/monitor",
    "tvmonitor": "tv/monitor",
}
_CLASS_IDS = {name: index for index, name in enumerate(SYSU_SCENES_CLASS_NAMES)}


def _normalize_name(name):
    name = " ".join(str(name).lower().split())
    name = re.sub(r"\s*/\s*", "/", name)
    return SYSU_SCENES_NAME_ALIASES.get(name, name)


def _as_sentences(value, where):
    """A sentence or a list of sentences as a list of strings; ValueError naming ``where`` otherwise."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(sentence, str) for sentence in value):
        return list(value)
    raise ValueError(f"{where}: sentences must be a string or a list of strings, got {value!r}.")


def read_groundtruth_mat(path):
    """Reads an original SYSU-Scenes annotation: the 2-D ``groundtruth`` matrix of label numbers, as int32."""
    return read_label_matrix(path, "groundtruth")


def _cell_text(cell, path):
    value = np.asarray(cell)
    if value.dtype == object and value.size == 1:
        return _cell_text(value.item(), path)
    if value.dtype.kind == "U":
        return "".join(value.ravel().tolist()).strip()
    raise ValueError(f"The label list {path} holds a cell of {value.dtype} values; expected label names.")


def read_label_list(path):
    """The label names of ``label_list.mat``; name ``i`` (from 1) is label number ``i``.

    Reads the variable ``label_list`` (or the file's only variable): a 1xN or Nx1 cell array
    of strings, or a char matrix with one name per row.
    """
    contents = load_mat(path, "label list")
    variables = {key: value for key, value in contents.items() if not key.startswith("__")}
    if "label_list" in variables:
        cells = variables["label_list"]
    elif len(variables) == 1:
        cells = next(iter(variables.values()))
    else:
        raise ValueError(
            f"The label list {path} holds the variables {sorted(variables)}; expected one cell array, label_list."
        )
    cells = np.asarray(cells)
    if cells.dtype.kind == "U":
        return [str(name).strip() for name in cells.ravel()]
    if cells.dtype != object or (cells.ndim == 2 and min(cells.shape) > 1):
        raise ValueError(
            f"The label list {path} holds a {cells.dtype} array of shape {cells.shape}; expected a 1xN cell array "
            "of names."
        )
    return [_cell_text(cell, path) for cell in cells.ravel()]


def label_list_table(names):
    """``table[label number] = class id`` for the names of ``label_list.mat``.

    Label number 0 is background (0); number ``i`` is ``names[i - 1]``, matched by name to
    :data:`SYSU_SCENES_CLASS_NAMES` (or :data:`SYSU_SCENES_NAME_ALIASES`); names that are
    none of the 37 tags map to the ignore id 255. Numbers beyond the list are -1, an error
    in the pipeline.
    """
    table = np.full(len(names) + 1, SYSU_SCENES_IGNORE_CLASS, np.int32)
    table[0] = 0
    for number, name in enumerate(names, start=1):
        table[number] = _CLASS_IDS.get(_normalize_name(name), SYSU_SCENES_IGNORE_CLASS)
    return table


@dataclasses.dataclass(frozen=True)
class _Entry:
    sentences: tuple
    split: str
    line: int


class SYSUScenes(SegmentationDataset):
    """SYSU-Scenes (Lin et al., "Deep Structured Scene Parsing by Learning with Image
    Descriptions", CVPR 2016; Zhang et al., "Hierarchical Scene Parsing by Weakly Supervised
    Learning with Image Descriptions", TPAMI 2019): 5,046 photos with pixel labels over 37
    tags and one human sentence each describing the objects and their relations.

    38 classes: 0 background (a scored class), 1..37 the tags of
    :data:`SYSU_SCENES_CLASS_NAMES` (aeroplane ... umbrella); ``ignore_class=255``. The
    palette is the PASCAL VOC colour map. Splits ``"train"``, ``"test"`` and ``"all"``: the
    test images are those whose number (the file stem) is a multiple of 5 (1,009 images),
    the split of the converted copy.

    Layouts under ``root`` (detected in this order):

    - the converted copy: ``images/N.jpg``, ``labels/N.png`` (8-bit ids: 0 background,
      ``k`` = line ``k`` of ``classes.txt``, counting from 0), ``classes.txt`` (must list
      :data:`SYSU_SCENES_CLASS_NAMES`) and ``sentences.jsonl``, one JSON object per image,
      ``{"image": "2", "sentences": ["A dog ..."], "split": "train"}``, which gives the
      splits. Every image must have a line and every line an image.
    - the original repository (github.com/ruixuejianfei/SYSU-Scene): ``images/N.jpg``,
      annotations of label numbers in ``ground truth/N.mat`` (a matrix ``groundtruth``) or,
      without that folder, ``seg/N.mat`` or ``seg/N.png`` (single-channel numbers), and
      ``label_list.mat``, a cell array whose ``i``-th name (from 1) is label number ``i``.
      Numbers become class ids by name (:func:`label_list_table`): 0 and the names
      ``background``/``bg`` are background, the 37 tag names (and
      :data:`SYSU_SCENES_NAME_ALIASES`) their class, every other name the ignore id 255.
      Sentences come from an optional ``sentences.json``: an object
      ``{stem: sentence or [sentences]}`` or a list of ``{"image": ..., "sentences": [...]}``
      (or ``"sentence"``); images it does not name have no sentences. The split is the
      multiple-of-5 rule. This layout was implemented from the repository's README and has
      only been tested on generated copies.

    Beyond :class:`SegmentationDataset`: :meth:`sentences`, :meth:`records` and
    :meth:`class_index`.

    Example:
        >>> sysu = SYSUScenes("../shared/datasets/sysu_scenes")
        >>> train = sysu.dataset("train", batch_size=8, crop_size=(224, 224), augment=True)
        >>> sysu.sentences("test")["5"]
    """

    def __init__(self, root):
        super().__init__(
            root,
            num_classes=len(SYSU_SCENES_CLASS_NAMES),
            ignore_class=SYSU_SCENES_IGNORE_CLASS,
            class_names=SYSU_SCENES_CLASS_NAMES,
            palette=voc_colormap(len(SYSU_SCENES_CLASS_NAMES)),
        )
        original_folders = [self.root / "ground truth", self.root / "seg"]
        if (self.root / "labels").is_dir():
            self.layout = "converted"
        elif any(folder.is_dir() for folder in original_folders):
            self.layout = "original"
        else:
            raise FileNotFoundError(
                f"No SYSU-Scenes layout found under {self.root}. Looked for images/ with labels/, classes.txt and "
                "sentences.jsonl (the converted copy), and for images/ with 'ground truth/' or seg/ and "
                "label_list.mat (the original repository)."
            )
        self.images_folder = require_folder(self.root / "images", "SYSU-Scenes photos")
        self._sentence_file = None
        self._sentences_by_stem = None
        #: The names of ``label_list.mat`` in label-number order (from 1); None for the converted copy.
        self.label_names = None
        if self.layout == "converted":
            self.labels_folder, self.label_suffix, self._table = self.root / "labels", ".png", None
            self._check_class_list(self.root / "classes.txt")
            self._sentence_file = self.root / "sentences.jsonl"
            self._entries = self._read_sentence_lines(self._sentence_file)
        else:
            self.labels_folder, self.label_suffix = self._find_original_labels(original_folders)
            label_list = self.root / "label_list.mat"
            if not label_list.is_file():
                raise FileNotFoundError(
                    f"SYSU-Scenes at {self.root} has no {label_list.name}: expected {label_list}, which names the "
                    "label numbers of the annotations."
                )
            self.label_names = read_label_list(label_list)
            self._table = label_list_table(self.label_names)
            candidate = self.root / "sentences.json"
            self._sentence_file = candidate if candidate.is_file() else None

    # --- Layouts ---------------------------------------------------------------------------

    @staticmethod
    def _check_class_list(path):
        if not path.is_file():
            raise FileNotFoundError(f"The SYSU-Scenes class list {path} does not exist.")
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        while names and not names[-1]:
            names.pop()
        for index, (got, expected) in enumerate(zip(names, SYSU_SCENES_CLASS_NAMES)):
            if got != expected:
                raise ValueError(
                    f"The class list {path} does not match SYSU-Scenes: line {index + 1} (class id {index}) is "
                    f"{got!r}, expected {expected!r}."
                )
        if len(names) != len(SYSU_SCENES_CLASS_NAMES):
            raise ValueError(
                f"The class list {path} names {len(names)} classes; expected {len(SYSU_SCENES_CLASS_NAMES)} "
                "(background and the 37 tags)."
            )

    @staticmethod
    def _read_sentence_lines(path):
        if not path.is_file():
            raise FileNotFoundError(f"The SYSU-Scenes sentence file {path} does not exist; it lists the splits.")
        entries = {}
        for number, row in read_json_lines(path):
            where = f"{path}, line {number}"
            image = row.get("image")
            if isinstance(image, int) and not isinstance(image, bool):
                image = str(image)
            if not isinstance(image, str) or not image:
                raise ValueError(f"{where}: 'image' must be an image name such as \"2\", got {image!r}.")
            if image in entries:
                raise ValueError(f"{where}: the image {image!r} is listed again (first on line {entries[image].line}).")
            if "sentences" not in row:
                raise ValueError(f"{where}: missing 'sentences'.")
            sentences = _as_sentences(row["sentences"], where)
            split = row.get("split")
            if split not in SYSU_SCENES_SPLITS:
                raise ValueError(f"{where}: 'split' must be one of {list(SYSU_SCENES_SPLITS)}, got {split!r}.")
            entries[image] = _Entry(tuple(sentences), split, number)
        if not entries:
            raise ValueError(f"The sentence file {path} lists no images.")
        return entries

    def _find_original_labels(self, folders):
        for folder, suffix in ((folders[0], ".mat"), (folders[1], ".mat"), (folders[1], ".png")):
            if folder.is_dir() and next(folder.glob(f"*{suffix}"), None) is not None:
                return folder, suffix
        raise FileNotFoundError(
            f"SYSU-Scenes at {self.root} has no annotations: looked for {folders[0]}/*.mat, {folders[1]}/*.mat and "
            f"{folders[1]}/*.png."
        )

    # --- SegmentationDataset ---------------------------------------------------------------

    def splits(self):
        if self.layout == "converted":
            present = {entry.split for entry in self._entries.values()}
            return ["all", *(split for split in SYSU_SCENES_SPLITS if split in present)]
        return ["all", *SYSU_SCENES_SPLITS]

    def _find_files(self, split):
        images = find_images(self.images_folder)
        if self.layout == "converted":
            by_stem = {image.stem: image for image in images}
            for image in images:
                if image.stem not in self._entries:
                    raise ValueError(f"The image {image} has no line in {self._sentence_file}.")
            selected = []
            for stem, entry in self._entries.items():
                if split not in ("all", entry.split):
                    continue
                if stem not in by_stem:
                    raise FileNotFoundError(
                        f"The image {stem!r} of {self._sentence_file}, line {entry.line}, is not in "
                        f"{self.images_folder}."
                    )
                selected.append(by_stem[stem])
            where = self._sentence_file
        else:
            selected = [image for image in images if split in ("all", self._split_of(image))]
            where = self.images_folder
        return pair_with_labels(selected, lambda image: self.labels_folder / f"{image.stem}{self.label_suffix}", where)

    @staticmethod
    def _split_of(image):
        if not image.stem.isdigit():
            raise ValueError(
                f"The image {image} is not named by a number; SYSU-Scenes test images are those whose number is a "
                f"multiple of {TEST_EVERY}."
            )
        return "test" if int(image.stem) % TEST_EVERY == 0 else "train"

    def label_encoding(self, split):
        # .mat annotations are not images: the base class then checks only that they exist
        # and are not empty, as for text matrices; their size is checked when decoded.
        return "text" if self.label_suffix == ".mat" else "ids"

    def label_table(self, split):
        return self._table

    def decode_label(self, label_path, split):
        if self.label_suffix != ".mat":
            return super().decode_label(label_path, split)
        label = tf.numpy_function(read_groundtruth_mat, [label_path], tf.int32, stateful=False)
        label.set_shape([None, None])
        return remap_ids(label, self._table)

    def read_label(self, label_path, split):
        if self.label_suffix != ".mat":
            return super().read_label(label_path, split)
        return remap_ids_numpy(read_groundtruth_mat(label_path), self._table)

    # --- Sentences -------------------------------------------------------------------------

    def _all_sentences(self):
        if self._sentences_by_stem is None:
            if self.layout == "converted":
                self._sentences_by_stem = {stem: list(entry.sentences) for stem, entry in self._entries.items()}
            elif self._sentence_file is None:
                raise FileNotFoundError(
                    f"SYSU-Scenes at {self.root} has no sentences: expected {self.root / 'sentences.json'}."
                )
            else:
                self._sentences_by_stem = self._read_sentence_json(self._sentence_file)
        return self._sentences_by_stem

    def _read_sentence_json(self, path):
        try:
            contents = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path} is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})."
            ) from None
        if isinstance(contents, dict):
            items = [(str(image), value, f"{path}, entry {image!r}") for image, value in contents.items()]
        elif isinstance(contents, list):
            items = []
            for index, row in enumerate(contents):
                where = f"{path}, item {index}"
                if not isinstance(row, dict) or "image" not in row or not ({"sentences", "sentence"} & set(row)):
                    raise ValueError(f"{where}: expected an object with 'image' and 'sentences' (or 'sentence').")
                items.append((str(row["image"]), row.get("sentences", row.get("sentence")), where))
        else:
            raise ValueError(
                f"{path} holds a JSON {type(contents).__name__}; expected an object {{image: sentences}} or a list "
                "of {\"image\": ..., \"sentences\": [...]}."
            )
        stems = {Path(image).stem for image, _ in self.files("all")}
        sentences = {}
        for image, value, where in items:
            stem = Path(image).stem  # "2.jpg" and "2" both name images/2.jpg
            if stem not in stems:
                raise FileNotFoundError(f"{where}: the image {image!r} is not in {self.images_folder}.")
            sentences.setdefault(stem, []).extend(_as_sentences(value, where))
        return sentences

    def sentences(self, split):
        """``{image stem: [sentences]}`` of the images of ``split``, in the order of :meth:`files`."""
        pairs = self.files(split)
        texts = self._all_sentences()
        return {Path(image).stem: list(texts.get(Path(image).stem, [])) for image, _ in pairs}

    def records(self, split):
        """``[(image_path, label_path, sentences)]`` of ``split``, in the order of :meth:`files`."""
        pairs = self.files(split)
        texts = self._all_sentences()
        return [(image, label, list(texts.get(Path(image).stem, []))) for image, label in pairs]

    def class_index(self, name):
        """The class id of ``name`` (a name of :attr:`class_names`, or an alias such as ``"road"``)."""
        key = _normalize_name(name)
        if key not in _CLASS_IDS:
            close = difflib.get_close_matches(str(name), SYSU_SCENES_CLASS_NAMES, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ValueError(
                f"Unknown SYSU-Scenes class {name!r}.{hint} Classes: {', '.join(SYSU_SCENES_CLASS_NAMES)}."
            )
        return _CLASS_IDS[key]
