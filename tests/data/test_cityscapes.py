import numpy as np
import pytest
from dataset_fixtures import collect, iteration_error, write_cityscapes, write_png

from keras_sceneparse.data import Cityscapes
from keras_sceneparse.data.cityscapes import CITYSCAPES_CLASS_NAMES, CITYSCAPES_PALETTE

# Part of cityscapesScripts' labels.py, written out here to check the library's table.
EXPECTED_TRAIN_IDS = {
    0: 255, 1: 255, 4: 255, 6: 255, 7: 0, 8: 1, 9: 255, 11: 2, 13: 4, 15: 255, 17: 5, 18: 255, 19: 6,
    20: 7, 21: 8, 23: 10, 24: 11, 26: 13, 29: 255, 30: 255, 31: 16, 33: 18,
}


def test_label_ids_are_mapped_to_train_ids(tmp_path, rng):
    written = write_cityscapes(tmp_path, rng, label_ids=list(EXPECTED_TRAIN_IDS))
    cityscapes = Cityscapes(tmp_path)
    assert cityscapes.splits() == ["train", "val"]
    assert [label.rsplit("/", 2)[-2:] for _, label in cityscapes.files("train")] == [
        ["aachen", "aachen_000000_000019_gtFine_labelIds.png"],
        ["bochum", "bochum_000000_000313_gtFine_labelIds.png"],
    ]
    lookup = np.vectorize(EXPECTED_TRAIN_IDS.get)
    for split in ("train", "val"):
        _, labels = collect(cityscapes.dataset(split, batch_size=2, shuffle=False))
        assert len(labels) == len(written[split])
        for (_, _, raw), got in zip(written[split], labels):
            np.testing.assert_array_equal(got, lookup(raw))
    expected_counts = np.zeros(19, np.int64)
    for _, _, raw in written["train"]:
        mapped = lookup(raw)
        expected_counts += np.bincount(mapped[mapped != 255], minlength=19)
    np.testing.assert_array_equal(cityscapes.class_frequencies("train"), expected_counts)


def test_label_train_ids_are_used_when_present(tmp_path, rng):
    write_cityscapes(tmp_path, rng, label_ids=[7, 8], train_ids=True)
    cityscapes = Cityscapes(tmp_path)
    assert all(label.endswith("_gtFine_labelTrainIds.png") for _, label in cityscapes.files("val"))
    _, labels = collect(cityscapes.dataset("val", batch_size=1))
    assert np.all(labels[0] == 5)


def test_official_classes():
    assert CITYSCAPES_CLASS_NAMES == [
        "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
        "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
    ]
    assert CITYSCAPES_PALETTE[0] == (128, 64, 128) and CITYSCAPES_PALETTE[18] == (119, 11, 32)


def test_unknown_label_id_raises_with_the_file(tmp_path, rng):
    write_cityscapes(tmp_path, rng, label_ids=[7, 8])
    cityscapes = Cityscapes(tmp_path)
    bad = cityscapes.files("val")[0][1]
    label = np.full((12, 16), 7, np.uint8)
    label[0, 0] = 40
    write_png(bad, label)
    message = iteration_error(cityscapes.dataset("val", batch_size=1))
    assert bad in message


def test_layout_errors(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="leftImg8bit/<split>/<city>/ with gtFine"):
        Cityscapes(tmp_path)
    write_cityscapes(tmp_path, rng, label_ids=[7])
    label = tmp_path / "gtFine" / "train" / "bochum" / "bochum_000000_000313_gtFine_labelIds.png"
    label.unlink()
    with pytest.raises(FileNotFoundError, match=r"bochum_000000_000313_leftImg8bit\.png has no label map"):
        Cityscapes(tmp_path).files("train")
