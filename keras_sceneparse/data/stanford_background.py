"""The Stanford Background Dataset: outdoor scenes with semantic and geometric labels."""

import numpy as np
import tensorflow as tf

from keras_sceneparse.data.base import SegmentationDataset, find_images, pair_with_labels
from keras_sceneparse.data.voc import voc_colormap
from keras_sceneparse.utils.validation import check_choice

STANFORD_TARGETS = {
    "regions": ["sky", "tree", "road", "grass", "water", "building", "mountain", "foreground"],
    "surfaces": ["sky", "horizontal", "vertical"],
}
STANFORD_IGNORE_CLASS = 255
#: Without split lists, every ``VALIDATION_EVERY``-th image (sorted by stem) is in "val".
VALIDATION_EVERY = 5


def read_text_label(path):
    """Reads an ``iccv09Data`` label matrix (whitespace-separated ints, -1 unknown) as int32, -1 -> 255."""
    path = path.decode() if isinstance(path, bytes) else str(path)
    try:
        values = np.loadtxt(path, dtype=np.int64, ndmin=2)
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot read the label matrix {path}: {error}") from None
    if values.size == 0:
        raise ValueError(f"The label matrix {path} holds no values.")
    values[values == -1] = STANFORD_IGNORE_CLASS
    return values.astype(np.int32)


class StanfordBackground(SegmentationDataset):
    """The Stanford Background Dataset (Gould, Fulton and Koller, ICCV 2009): 715 outdoor scenes.

    Two label sets, chosen with ``target``: ``"regions"``, 8 semantic classes (sky, tree,
    road, grass, water, building, mountain, foreground object), or ``"surfaces"``, 3
    geometric classes (sky, horizontal, vertical). Unknown pixels are the ignore id 255.

    Layouts under ``root`` (or ``root/iccv09Data``):

    - converted PNGs: ``images/<stem>.jpg`` with ``regions/<stem>.png`` and
      ``surfaces/<stem>.png`` (8-bit ids, 255 unknown), and split lists
      ``splits/<split>.txt`` of stems (e.g. ``train``, ``val``);
    - the original ``iccv09Data``: ``images/<stem>.jpg`` with
      ``labels/<stem>.regions.txt`` and ``labels/<stem>.surfaces.txt``, matrices of
      whitespace-separated ints where -1 is unknown.

    Every layout has the split ``"all"``. Without split lists, ``"train"`` and ``"val"`` are
    a fixed 80/20 split: with the images sorted by stem, every fifth one (positions 4, 9,
    14, ... counting from 0) is in ``"val"``, the others in ``"train"``.
    """

    def __init__(self, root, target="regions"):
        self.target = check_choice("target", target, STANFORD_TARGETS)
        class_names = STANFORD_TARGETS[target]
        super().__init__(
            root,
            num_classes=len(class_names),
            ignore_class=STANFORD_IGNORE_CLASS,
            class_names=class_names,
            palette=voc_colormap(len(class_names) + 1)[1:],
        )
        base = next(
            (
                folder
                for folder in (self.root, self.root / "iccv09Data")
                if (folder / "images").is_dir() and ((folder / target).is_dir() or (folder / "labels").is_dir())
            ),
            None,
        )
        if base is None:
            raise FileNotFoundError(
                f"No Stanford Background layout found under {self.root} for target={target!r}. Looked for images/ "
                f"with {target}/ (PNG labels) or labels/ (iccv09Data text labels), in {self.root} and "
                f"{self.root / 'iccv09Data'}."
            )
        self.base = base
        self.layout = "png" if (base / target).is_dir() else "iccv09"
        split_folder = base / "splits"
        self._split_lists = (
            {path.stem: path for path in sorted(split_folder.glob("*.txt"))}
            if self.layout == "png" and split_folder.is_dir()
            else {}
        )

    def splits(self):
        names = ["all", *self._split_lists]
        if not self._split_lists:
            names += ["train", "val"]
        return names

    def label_encoding(self, split):
        return "text" if self.layout == "iccv09" else "ids"

    def _label_path(self, image):
        if self.layout == "png":
            return self.base / self.target / f"{image.stem}.png"
        return self.base / "labels" / f"{image.stem}.{self.target}.txt"

    def _find_files(self, split):
        images = find_images(self.base / "images")
        where = self.base / "images"
        if split in self._split_lists:
            by_stem = {image.stem: image for image in images}
            selected = []
            for stem in self._split_lists[split].read_text().split():
                if stem not in by_stem:
                    raise FileNotFoundError(
                        f"The image {stem!r} listed in {self._split_lists[split]} is not in {self.base / 'images'}."
                    )
                selected.append(by_stem[stem])
            images, where = selected, self._split_lists[split]
        elif split != "all":
            images = sorted(images, key=lambda image: image.stem)
            in_val = [position % VALIDATION_EVERY == VALIDATION_EVERY - 1 for position in range(len(images))]
            images = [image for image, val in zip(images, in_val) if val == (split == "val")]
        return pair_with_labels(images, self._label_path, where)

    def decode_label(self, label_path, split):
        if self.layout == "png":
            return super().decode_label(label_path, split)
        label = tf.numpy_function(read_text_label, [label_path], tf.int32, stateful=False)
        label.set_shape([None, None])
        return label

    def read_label(self, label_path, split):
        if self.layout == "png":
            return super().read_label(label_path, split)
        return read_text_label(label_path).astype(np.int64)
