import numpy as np
import pytest
from dataset_fixtures import collect, write_image_folder

from keras_sceneparse.data import ImageFolder


def test_single_split_layout(tmp_path, rng):
    written = write_image_folder(tmp_path, rng, splits=None, counts=(3,))
    data = ImageFolder(tmp_path, num_classes=4)
    assert data.splits() == ["all"]
    assert data.ignore_class == 255
    assert data.class_names == ["class_0", "class_1", "class_2", "class_3"]
    assert data.palette[:2] == [(0, 0, 0), (128, 0, 0)]
    _, labels = collect(data.dataset("all", batch_size=3, shuffle=False))
    for (_, _, label), got in zip(written["all"], labels):
        np.testing.assert_array_equal(got, label)


def test_split_folders(tmp_path, rng):
    write_image_folder(tmp_path, rng, splits=("train", "val", "test"), counts=(2, 1, 1))
    (tmp_path / "notes").mkdir()
    data = ImageFolder(tmp_path, num_classes=4, ignore_class=0, class_names=list("abcd"), palette=[(1, 2, 3)] * 4)
    assert data.splits() == ["test", "train", "val"]
    assert [len(data.files(split)) for split in data.splits()] == [1, 2, 1]
    assert data.ignore_class == 0 and data.class_names == ["a", "b", "c", "d"]


def test_argument_checks(tmp_path, rng):
    write_image_folder(tmp_path, rng, splits=None, counts=(1,))
    with pytest.raises(ValueError, match="num_classes"):
        ImageFolder(tmp_path, num_classes=1)
    with pytest.raises(ValueError, match="class_names"):
        ImageFolder(tmp_path, num_classes=3, class_names=["a", "b"])
    with pytest.raises(ValueError, match="palette"):
        ImageFolder(tmp_path, num_classes=2, palette=[(0, 0, 0), (0, 0, 300)])
    with pytest.raises(ValueError, match="channels"):
        ImageFolder(tmp_path, num_classes=2, channels=4)
