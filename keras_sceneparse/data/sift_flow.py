"""SIFT Flow: 2,688 outdoor scenes with 33 semantic classes and 3 geometric classes."""

import re

import numpy as np
import tensorflow as tf

from keras_sceneparse.data.base import SegmentationDataset, find_images, pair_with_labels, require_folder
from keras_sceneparse.data.pipeline import remap_ids, remap_ids_numpy
from keras_sceneparse.data.matlab import read_label_matrix
from keras_sceneparse.data.voc import voc_colormap
from keras_sceneparse.utils.validation import check_choice

#: The 33 semantic classes (label numbers 1..33 of ``SemanticLabels``, class ids 0..32).
SIFT_FLOW_CLASS_NAMES = [
    "awning", "balcony", "bird", "boat", "bridge", "building", "bus", "car", "cow", "crosswalk", "desert", "door",
    "fence", "field", "grass", "moon", "mountain", "person", "plant", "pole", "river", "road", "rock", "sand", "sea",
    "sidewalk", "sign", "sky", "staircase", "streetlight", "sun", "tree", "window",
]
#: The geometric classes (label numbers 1..3 of ``GeoLabels``, class ids 0..2).
SIFT_FLOW_GEOMETRIC_CLASS_NAMES = ["sky", "horizontal", "vertical"]
SIFT_FLOW_TARGETS = {"semantic": SIFT_FLOW_CLASS_NAMES, "geometric": SIFT_FLOW_GEOMETRIC_CLASS_NAMES}
SIFT_FLOW_IGNORE_CLASS = 255
#: The one sub-folder of ``Images``, ``SemanticLabels`` and ``GeoLabels``.
SIFT_FLOW_FOLDER = "spatial_envelope_256x256_static_8outdoorcategories"
_LABEL_FOLDERS = {"semantic": "SemanticLabels", "geometric": "GeoLabels"}


def read_sift_flow_mat(path):
    """Reads a SIFT Flow annotation: the 2-D matrix ``S`` of label numbers, as int32.

    Semantic files hold 0 (unlabelled) or 1..33, geometric files -1 or 0 (unlabelled) or
    1..3; :class:`SIFTFlow` maps them to class ids.
    """
    return read_label_matrix(path, "S")


def sift_flow_label_table(target):
    """``table[label number] = class id``: 0 is unlabelled (255), ``k`` is class ``k - 1``.

    Geometric files also mark unlabelled pixels with -1; :class:`SIFTFlow` turns -1 into 0
    before the table.
    """
    names = SIFT_FLOW_TARGETS[check_choice("target", target, SIFT_FLOW_TARGETS)]
    return np.array([SIFT_FLOW_IGNORE_CLASS, *range(len(names))], np.int32)


class SIFTFlow(SegmentationDataset):
    """SIFT Flow (Liu, Yuen and Torralba, "SIFT Flow: Dense Correspondence across Scenes and
    its Applications", TPAMI 2011; "Nonparametric Scene Parsing: Label Transfer via Dense
    Scene Alignment", CVPR 2009): 2,688 outdoor photos of 256x256 pixels from LabelMe, with
    33 semantic classes and 3 geometric classes.

    ``target="semantic"``: the 33 classes of :data:`SIFT_FLOW_CLASS_NAMES` (awning ...
    window); ``target="geometric"``: sky, horizontal, vertical. Unlabelled pixels are the
    ignore id 255. The palette is the PASCAL VOC colour map without its black.

    The layout of the ``SiftFlowDataset`` archive, under ``root`` or ``root/SiftFlowDataset``
    (``<F>`` = :data:`SIFT_FLOW_FOLDER`)::

        Images/<F>/<stem>.jpg
        SemanticLabels/<F>/<stem>.mat    variable S: 0 unlabelled, 1..33 the classes
        GeoLabels/<F>/<stem>.mat         variable S: -1 or 0 unlabelled, 1..3 sky, horizontal, vertical
        TestSet1.txt                     the 200 test images, one per line (``<F>\\<stem>.jpg``)

    Label numbers ``k >= 1`` become class ids ``k - 1``; a number beyond the classes is an
    error naming the file. ``.mat`` files are read with ``scipy.io.loadmat`` (MATLAB v7.3
    files are not supported). Splits: ``"test"`` (the images of ``TestSet1.txt``),
    ``"train"`` (the other 2,488) and ``"all"``; without ``TestSet1.txt``, only ``"all"``.

    No copy of SIFT Flow was at hand: this reader was implemented from the published layout
    (the archive's folder names, the ``S`` matrices, the test list) and tested on generated
    copies only.

    Example:
        >>> sift_flow = SIFTFlow("datasets/SiftFlowDataset", target="geometric")
        >>> train = sift_flow.dataset("train", batch_size=8, augment=True)
    """

    def __init__(self, root, target="semantic"):
        self.target = check_choice("target", target, SIFT_FLOW_TARGETS)
        class_names = SIFT_FLOW_TARGETS[target]
        super().__init__(
            root,
            num_classes=len(class_names),
            ignore_class=SIFT_FLOW_IGNORE_CLASS,
            class_names=class_names,
            palette=voc_colormap(len(class_names) + 1)[1:],
        )
        base = next(
            (folder for folder in (self.root, self.root / "SiftFlowDataset") if (folder / "Images").is_dir()), None
        )
        if base is None:
            raise FileNotFoundError(
                f"No SIFT Flow layout found under {self.root}: looked for Images/{SIFT_FLOW_FOLDER}/ in {self.root} "
                f"and {self.root / 'SiftFlowDataset'}."
            )
        self.base = base
        self.images_folder = require_folder(base / "Images" / SIFT_FLOW_FOLDER, "SIFT Flow photos")
        self.labels_folder = require_folder(
            base / _LABEL_FOLDERS[target] / SIFT_FLOW_FOLDER, f"SIFT Flow {target} annotations"
        )
        self.test_list = base / "TestSet1.txt"
        self._table = sift_flow_label_table(target)

    def splits(self):
        return ["all", "train", "test"] if self.test_list.is_file() else ["all"]

    def test_stems(self):
        """The stems of the test images, in the order of ``TestSet1.txt``."""
        if not self.test_list.is_file():
            raise FileNotFoundError(f"SIFT Flow at {self.base} has no test list: expected {self.test_list}.")
        stems = []
        for line in self.test_list.read_text().splitlines():
            name = re.split(r"[\\/]", line.strip())[-1]
            if name:
                stems.append(name.rsplit(".", 1)[0] if name.lower().endswith((".jpg", ".jpeg", ".png")) else name)
        return stems

    def _find_files(self, split):
        images = find_images(self.images_folder)
        where = self.images_folder
        if split != "all":
            by_stem = {image.stem: image for image in images}
            test = self.test_stems()
            for number, stem in enumerate(test, start=1):
                if stem not in by_stem:
                    raise FileNotFoundError(
                        f"The test image {stem!r} of {self.test_list} (entry {number}) is not in {self.images_folder}."
                    )
            test = set(test)
            images = [image for image in images if (image.stem in test) == (split == "test")]
            where = f"{self.images_folder} ({split} split of {self.test_list.name})"
        return pair_with_labels(images, lambda image: self.labels_folder / f"{image.stem}.mat", where)

    def label_encoding(self, split):
        # .mat annotations are not images: the base class checks that they exist and are not
        # empty, and their size is checked when decoded (as for SYSU-Scenes).
        return "text"

    def label_table(self, split):
        return self._table

    def decode_label(self, label_path, split):
        label = tf.numpy_function(read_sift_flow_mat, [label_path], tf.int32, stateful=False)
        label.set_shape([None, None])
        if self.target == "geometric":
            label = tf.where(label == -1, 0, label)
        return remap_ids(label, self._table)

    def read_label(self, label_path, split):
        label = read_sift_flow_mat(label_path)
        if self.target == "geometric":
            label = np.where(label == -1, 0, label)
        return remap_ids_numpy(label, self._table)
