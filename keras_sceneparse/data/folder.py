"""Any data set stored as folders of images and label PNGs."""

from keras_sceneparse.data.base import SegmentationDataset, find_images, pair_with_labels
from keras_sceneparse.data.voc import voc_colormap
from keras_sceneparse.utils.validation import check_num_classes


class ImageFolder(SegmentationDataset):
    """Images with label PNGs of class ids in parallel folders.

    Layouts under ``root``:

    - ``images/*`` and ``labels/*.png`` (same stem): one split named ``"all"``;
    - ``<split>/images/*`` and ``<split>/labels/*.png`` for every sub-folder that has both
      (``train``, ``val``, ``test`` or any other name).

    Images may be JPEG, PNG or BMP. Label PNGs hold one id per pixel: 8-bit grayscale,
    16-bit, or palette PNGs whose indices are the ids.

    Args:
        root: the data set folder.
        num_classes: number of scored classes (>= 2); label ids are ``0 .. num_classes - 1``.
        ignore_class: the id of pixels not scored; None means 255, the usual void id. It is
            also the value labels are padded with.
        class_names: names in id order; default ``class_0``, ``class_1``, ...
        palette: RGB triples in id order; default the PASCAL VOC colour map.
        channels: 3 (RGB) or 1 (grayscale) decoded image channels.

    Example:
        >>> data = ImageFolder("my_scenes", num_classes=4)
        >>> train = data.dataset("train", batch_size=8, crop_size=(256, 256), augment=True)
    """

    def __init__(self, root, num_classes, ignore_class=None, class_names=None, palette=None, channels=3):
        num_classes = check_num_classes(num_classes)
        super().__init__(
            root,
            num_classes=num_classes,
            ignore_class=255 if ignore_class is None else ignore_class,
            class_names=[f"class_{index}" for index in range(num_classes)] if class_names is None else class_names,
            palette=voc_colormap(num_classes) if palette is None else palette,
            channels=channels,
        )
        self._folders = {}
        if (self.root / "images").is_dir() and (self.root / "labels").is_dir():
            self._folders["all"] = self.root
        for folder in sorted(self.root.iterdir()):
            if folder.name != "all" and (folder / "images").is_dir() and (folder / "labels").is_dir():
                self._folders[folder.name] = folder
        if not self._folders:
            raise FileNotFoundError(
                f"No image folder layout found under {self.root}. Looked for images/ with labels/, and for "
                "<split>/images/ with <split>/labels/."
            )

    def splits(self):
        return list(self._folders)

    def _find_files(self, split):
        folder = self._folders[split]
        images, labels = folder / "images", folder / "labels"
        return pair_with_labels(find_images(images), lambda image: labels / f"{image.stem}.png", images)
