"""ADE20K as the MIT Scene Parsing Benchmark (SceneParse150)."""

import numpy as np

from keras_sceneparse.data.base import SegmentationDataset, find_images, pair_with_labels
from keras_sceneparse.data.voc import voc_colormap

# objectInfo150.csv of the benchmark, first name of each class, in id order (1..150).
ADE20K_CLASS_NAMES = [
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair",
    "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion",
    "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace",
    "refrigerator", "grandstand", "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway",
    "river", "bridge", "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine",
    "hovel", "bus", "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth",
    "television receiver", "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman",
    "bottle", "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer",
    "plaything", "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle",
    "oven", "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle",
    "lake", "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray",
    "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass",
    "clock", "flag",
]
ADE20K_IGNORE_CLASS = 255
ADE20K_FOLDERS = {"train": "training", "val": "validation"}


def ade20k_label_table():
    """``table[raw] = class id``: 0 ("other") -> 255, ``k`` -> ``k - 1`` for 1..150, larger ids -> -1 (an error)."""
    table = np.full(256, -1, np.int32)
    table[0] = ADE20K_IGNORE_CLASS
    table[1:151] = np.arange(150)
    return table


class ADE20K(SegmentationDataset):
    """ADE20K scene parsing, 150 classes (Zhou et al., CVPR 2017; the SceneParse150 benchmark).

    ``root`` is ``ADEChallengeData2016`` or its parent, holding
    ``images/{training,validation}/*.jpg`` and ``annotations/{training,validation}/*.png``
    (same stem). Splits are ``"train"`` and ``"val"`` (``"training"`` and ``"validation"``
    are accepted too). Annotation 0 ("other objects") becomes the ignore id 255 and ids
    1..150 become 0..149, as in the benchmark's evaluation (and mmsegmentation's
    ``reduce_zero_label``).

    The benchmark defines no colours: :attr:`palette` uses the PASCAL VOC colour map
    (indices 1..150).
    """

    def __init__(self, root):
        super().__init__(
            root,
            num_classes=150,
            ignore_class=ADE20K_IGNORE_CLASS,
            class_names=ADE20K_CLASS_NAMES,
            palette=voc_colormap(151)[1:],
        )
        candidates = [self.root, self.root / "ADEChallengeData2016"]
        self.ade_root = next(
            (folder for folder in candidates if (folder / "images").is_dir() and (folder / "annotations").is_dir()),
            None,
        )
        if self.ade_root is None:
            raise FileNotFoundError(
                f"No ADE20K layout found under {self.root}. Looked for images/ with annotations/ in "
                f"{', '.join(str(folder) for folder in candidates)}."
            )
        self._splits = [
            split
            for split, folder in ADE20K_FOLDERS.items()
            if (self.ade_root / "images" / folder).is_dir() and (self.ade_root / "annotations" / folder).is_dir()
        ]
        if not self._splits:
            raise FileNotFoundError(
                f"ADE20K at {self.ade_root} has no split: looked for images/{{training,validation}} with "
                "annotations/{training,validation}."
            )

    def splits(self):
        return list(self._splits)

    def split_aliases(self):
        return {folder: split for split, folder in ADE20K_FOLDERS.items()}

    def _find_files(self, split):
        images = self.ade_root / "images" / ADE20K_FOLDERS[split]
        labels = self.ade_root / "annotations" / ADE20K_FOLDERS[split]
        return pair_with_labels(find_images(images), lambda image: labels / f"{image.stem}.png", images)

    def label_table(self, split):
        return ade20k_label_table()
