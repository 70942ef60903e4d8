import numpy as np
import pytest
from PIL import Image

from keras_sceneparse.data import SAMPLE_CLASS_NAMES, ImageFolder, write_sample_dataset


def read_folder(root):
    return {
        path.relative_to(root).as_posix(): np.asarray(Image.open(path)) for path in sorted(root.rglob("*.png"))
    }


def test_same_seed_same_scenes_other_seed_other_scenes(tmp_path):
    write_sample_dataset(tmp_path / "a", num_train=3, num_val=1, size=(32, 40), seed=7)
    write_sample_dataset(tmp_path / "b", num_train=3, num_val=1, size=(32, 40), seed=7)
    write_sample_dataset(tmp_path / "c", num_train=3, num_val=1, size=(32, 40), seed=8)
    a, b, c = (read_folder(tmp_path / name) for name in "abc")
    assert sorted(a) == [
        "train/images/0000.png", "train/images/0001.png", "train/images/0002.png",
        "train/labels/0000.png", "train/labels/0001.png", "train/labels/0002.png",
        "val/images/0000.png", "val/labels/0000.png",
    ]
    assert all(np.array_equal(a[name], b[name]) for name in a)
    assert not np.array_equal(a["train/images/0000.png"], c["train/images/0000.png"])


def test_scenes_hold_every_class_and_load_through_image_folder(tmp_path):
    data = write_sample_dataset(tmp_path, num_train=6, num_val=2, size=(48, 64), seed=0)
    assert isinstance(data, ImageFolder)
    assert data.class_names == SAMPLE_CLASS_NAMES == ["sky", "ground", "building", "tree"]
    assert (data.num_classes, data.ignore_class, data.splits()) == (4, 255, ["train", "val"])
    counts = data.class_frequencies("train")
    assert np.all(counts > 0)
    images, labels = next(iter(data.dataset("train", batch_size=6, shuffle=False)))
    assert images.shape == (6, 48, 64, 3) and labels.shape == (6, 48, 64)
    labels = labels.numpy()
    assert set(np.unique(labels)) <= {0, 1, 2, 3, 255}
    # Sky is on top, ground at the bottom.
    assert np.all(labels[:, 0, :][labels[:, 0, :] != 255] != 1)
    assert np.all(labels[:, -1, :][labels[:, -1, :] != 255] != 0)
    # Void marks the one-pixel boundaries between classes only.
    assert 0 < (labels == 255).mean() < 0.15
    # Not a colour-coding: each class spans a range of colours across scenes.
    images = images.numpy()
    for class_id in range(4):
        colours = images[labels == class_id]
        assert colours.std(axis=0).mean() > 5


def test_without_void_boundaries(tmp_path):
    data = write_sample_dataset(tmp_path, num_train=2, num_val=0, size=(32, 32), seed=1, void_boundaries=False)
    assert data.splits() == ["train"]
    assert data.class_frequencies("train").sum() == 2 * 32 * 32


def test_argument_checks(tmp_path):
    with pytest.raises(ValueError, match="num_train"):
        write_sample_dataset(tmp_path, num_train=0)
    with pytest.raises(ValueError, match="size"):
        write_sample_dataset(tmp_path, size=(4, 4))
