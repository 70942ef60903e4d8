import numpy as np
import pytest
from dataset_fixtures import collect, iteration_error, random_image, voc_palette_colors, write_png, write_voc
from PIL import Image

from keras_sceneparse.data import PascalVOC, voc_colormap


def test_colour_map_known_entries():
    colors = voc_colormap()
    assert colors[0] == (0, 0, 0) and colors[1] == (128, 0, 0) and colors[2] == (0, 128, 0)
    assert colors[15] == (192, 128, 128) and colors[255] == (224, 224, 192)
    np.testing.assert_array_equal(np.array(colors), voc_palette_colors())


@pytest.mark.parametrize("relative_root", ["", "VOCdevkit", "VOCdevkit/VOC2012"])
def test_root_may_be_the_devkit_or_its_parents(tmp_path, rng, relative_root):
    write_voc(tmp_path, rng)
    voc = PascalVOC(tmp_path / relative_root)
    assert voc.voc_root == tmp_path / "VOCdevkit" / "VOC2012"
    assert voc.splits() == ["train", "val", "trainval"]
    assert (voc.num_classes, voc.ignore_class, voc.class_names[20]) == (21, 255, "tvmonitor")


def test_palette_labels_are_mapped_back_to_ids(tmp_path, rng):
    written = write_voc(tmp_path, rng)
    voc = PascalVOC(tmp_path)
    assert Image.open(voc.files("train")[0][1]).mode == "P"
    for split in ("train", "val", "trainval"):
        _, labels = collect(voc.dataset(split, batch_size=2, shuffle=False))
        assert len(labels) == len(written[split])
        for (_, _, expected), got in zip(written[split], labels):
            np.testing.assert_array_equal(got, expected)  # 255 (boundary colour) stays 255


def test_class_frequencies_read_palette_labels(tmp_path, rng):
    written = write_voc(tmp_path, rng)
    expected = np.zeros(21, np.int64)
    for _, _, label in written["train"]:
        expected += np.bincount(label[label != 255], minlength=21)
    np.testing.assert_array_equal(PascalVOC(tmp_path).class_frequencies("train"), expected)


@pytest.mark.parametrize("list_format", ["ids", "deeplab"])
def test_train_aug_reads_segmentation_class_aug(tmp_path, rng, list_format):
    written = write_voc(tmp_path, rng, with_aug=True, aug_list_format=list_format)
    voc = PascalVOC(tmp_path)
    assert voc.splits() == ["train", "val", "trainval", "train_aug"]
    files = voc.files("train_aug")
    assert all("SegmentationClassAug" in label for _, label in files)
    _, labels = collect(voc.dataset("train_aug", batch_size=1, shuffle=False))
    for (_, _, expected), got in zip(written["train_aug"], labels):
        np.testing.assert_array_equal(got, expected)


def test_unknown_colour_names_the_file(tmp_path, rng):
    write_voc(tmp_path, rng)
    voc = PascalVOC(tmp_path)
    bad = voc.files("val")[0][1]
    colors = np.zeros((12, 16, 3), np.uint8)
    colors[2, 3] = (10, 20, 30)
    write_png(bad, colors)
    message = iteration_error(voc.dataset("val", batch_size=1))
    assert bad in message and "colour outside the PASCAL VOC colour map" in message
    assert "10 20 30" in message
    with pytest.raises(ValueError, match=r"2008_000002\.png holds a colour .* \(10, 20, 30\)"):
        voc.class_frequencies("val")


def test_layout_errors(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="JPEGImages/ with SegmentationClass/"):
        PascalVOC(tmp_path)
    write_voc(tmp_path, rng)
    voc_root = tmp_path / "VOCdevkit" / "VOC2012"
    (voc_root / "ImageSets" / "Segmentation" / "val.txt").write_text("2099_000001\n")
    with pytest.raises(FileNotFoundError, match=r"2099_000001\.jpg listed in .*val\.txt does not exist"):
        PascalVOC(tmp_path).files("val")
    write_png(voc_root / "JPEGImages" / "2099_000001.jpg", random_image(rng))
    with pytest.raises(FileNotFoundError, match=r"2099_000001\.jpg has no label map"):
        PascalVOC(tmp_path).files("val")
    with pytest.raises(ValueError, match="'train', 'val', 'trainval'"):
        PascalVOC(tmp_path).dataset("train_aug")
