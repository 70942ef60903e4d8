"""Cityscapes fine annotations, the 19 evaluation classes."""

import numpy as np

from keras_sceneparse.data.base import SegmentationDataset, pair_with_labels, require_folder

# cityscapesScripts helpers/labels.py: (name, labelId, trainId, color) of every label with
# a labelId in 0..33; trainId 255 marks the labels left out of training and evaluation.
CITYSCAPES_LABELS = [
    ("unlabeled", 0, 255, (0, 0, 0)),
    ("ego vehicle", 1, 255, (0, 0, 0)),
    ("rectification border", 2, 255, (0, 0, 0)),
    ("out of roi", 3, 255, (0, 0, 0)),
    ("static", 4, 255, (0, 0, 0)),
    ("dynamic", 5, 255, (111, 74, 0)),
    ("ground", 6, 255, (81, 0, 81)),
    ("road", 7, 0, (128, 64, 128)),
    ("sidewalk", 8, 1, (244, 35, 232)),
    ("parking", 9, 255, (250, 170, 160)),
    ("rail track", 10, 255, (230, 150, 140)),
    ("building", 11, 2, (70, 70, 70)),
    ("wall", 12, 3, (102, 102, 156)),
    ("fence", 13, 4, (190, 153, 153)),
    ("guard rail", 14, 255, (180, 165, 180)),
    ("bridge", 15, 255, (150, 100, 100)),
    ("tunnel", 16, 255, (150, 120, 90)),
    ("pole", 17, 5, (153, 153, 153)),
    ("polegroup", 18, 255, (153, 153, 153)),
    ("traffic light", 19, 6, (250, 170, 30)),
    ("traffic sign", 20, 7, (220, 220, 0)),
    ("vegetation", 21, 8, (107, 142, 35)),
    ("terrain", 22, 9, (152, 251, 152)),
    ("sky", 23, 10, (70, 130, 180)),
    ("person", 24, 11, (220, 20, 60)),
    ("rider", 25, 12, (255, 0, 0)),
    ("car", 26, 13, (0, 0, 142)),
    ("truck", 27, 14, (0, 0, 70)),
    ("bus", 28, 15, (0, 60, 100)),
    ("caravan", 29, 255, (0, 0, 90)),
    ("trailer", 30, 255, (0, 0, 110)),
    ("train", 31, 16, (0, 80, 100)),
    ("motorcycle", 32, 17, (0, 0, 230)),
    ("bicycle", 33, 18, (119, 11, 32)),
]
CITYSCAPES_IGNORE_CLASS = 255
_TRAIN_LABELS = sorted((label for label in CITYSCAPES_LABELS if label[2] != 255), key=lambda label: label[2])
CITYSCAPES_CLASS_NAMES = [label[0] for label in _TRAIN_LABELS]
CITYSCAPES_PALETTE = [label[3] for label in _TRAIN_LABELS]


def label_id_to_train_id_table():
    """``table[labelId] = trainId`` over 0..255.

    Ids 0..33 follow :data:`CITYSCAPES_LABELS`; 255 (how a negative id such as the licence
    plate's -1 reads as an 8-bit value) is void too; 34..254 are no Cityscapes label and map
    to -1, an error in the pipeline.
    """
    table = np.full(256, -1, np.int32)
    for _, label_id, train_id, _ in CITYSCAPES_LABELS:
        table[label_id] = train_id
    table[255] = CITYSCAPES_IGNORE_CLASS
    return table


class Cityscapes(SegmentationDataset):
    """Cityscapes urban scenes (Cordts et al., CVPR 2016), fine annotations, 19 classes.

    Layout under ``root``: ``leftImg8bit/{train,val,test}/<city>/<name>_leftImg8bit.png``
    and ``gtFine/<split>/<city>/<name>_gtFine_labelIds.png``. Label ids are mapped to the
    19 training ids of cityscapesScripts' ``labels.py`` (road 0 ... bicycle 18; every other
    label is void, 255). When every image of a split has a ``<name>_gtFine_labelTrainIds.png``
    (written by ``createTrainIdLabelImgs.py``), those are read as they are instead.

    Classes, ``ignore_class=255``: road, sidewalk, building, wall, fence, pole, traffic light,
    traffic sign, vegetation, terrain, sky, person, rider, car, truck, bus, train,
    motorcycle, bicycle, with the official colours.
    """

    def __init__(self, root):
        super().__init__(
            root,
            num_classes=19,
            ignore_class=CITYSCAPES_IGNORE_CLASS,
            class_names=CITYSCAPES_CLASS_NAMES,
            palette=CITYSCAPES_PALETTE,
        )
        images, labels = self.root / "leftImg8bit", self.root / "gtFine"
        if not (images.is_dir() and labels.is_dir()):
            raise FileNotFoundError(
                f"No Cityscapes layout found under {self.root}. Looked for leftImg8bit/<split>/<city>/ "
                "with gtFine/<split>/<city>/."
            )
        self._splits = [
            split for split in ("train", "val", "test") if (images / split).is_dir() and (labels / split).is_dir()
        ]
        if not self._splits:
            raise FileNotFoundError(
                f"Cityscapes at {self.root} has no split: looked for leftImg8bit/{{train,val,test}} with "
                "gtFine/{train,val,test}."
            )
        self._uses_train_ids = {}

    def splits(self):
        return list(self._splits)

    def _find_files(self, split):
        image_folder = self.root / "leftImg8bit" / split
        label_folder = require_folder(self.root / "gtFine" / split, f"Cityscapes {split} labels")
        images = sorted(image_folder.glob("*/*_leftImg8bit.png"))

        def label_path(image, kind):
            name = image.name[: -len("_leftImg8bit.png")]
            return label_folder / image.parent.name / f"{name}_gtFine_{kind}.png"

        self._uses_train_ids[split] = bool(images) and all(
            label_path(image, "labelTrainIds").is_file() for image in images
        )
        kind = "labelTrainIds" if self._uses_train_ids[split] else "labelIds"
        return pair_with_labels(images, lambda image: label_path(image, kind), f"{image_folder}/<city>/")

    def label_table(self, split):
        if split not in self._uses_train_ids:
            self._find_files(split)
        return None if self._uses_train_ids[split] else label_id_to_train_id_table()
