import numpy as np
import pytest
from dataset_fixtures import collect, iteration_error, write_stanford_iccv09, write_stanford_png

from keras_sceneparse.data import StanfordBackground


def test_png_layout_with_split_lists(tmp_path, rng):
    written = write_stanford_png(tmp_path, rng)
    data = StanfordBackground(tmp_path)
    assert data.layout == "png" and data.splits() == ["all", "train", "val"]
    assert [f.split("/")[-1] for f, _ in data.files("train")] == ["0000047.jpg", "6000014.jpg", "9003116.jpg"]
    assert len(data.files("all")) == 4
    _, labels = collect(data.dataset("val", batch_size=1))
    np.testing.assert_array_equal(labels[0], written["0000051"][1])
    surfaces = StanfordBackground(tmp_path, target="surfaces")
    assert surfaces.class_names == ["sky", "horizontal", "vertical"]
    _, labels = collect(surfaces.dataset("all", batch_size=4, shuffle=False))
    for stem, got in zip(sorted(written), labels):
        np.testing.assert_array_equal(got, written[stem][2])


@pytest.mark.parametrize("target, column", [("regions", 1), ("surfaces", 2)])
def test_iccv09_text_labels(tmp_path, rng, target, column):
    written = write_stanford_iccv09(tmp_path, rng)
    data = StanfordBackground(tmp_path, target=target)
    assert data.layout == "iccv09" and data.num_classes == (8 if target == "regions" else 3)
    _, labels = collect(data.dataset("all", batch_size=5, shuffle=False))
    for stem, got in zip(sorted(written), labels):
        raw = written[stem][column]
        np.testing.assert_array_equal(got, np.where(raw == -1, 255, raw))
    expected = np.zeros(data.num_classes, np.int64)
    for stem in written:
        raw = written[stem][column]
        expected += np.bincount(raw[raw >= 0], minlength=data.num_classes)
    np.testing.assert_array_equal(data.class_frequencies("all"), expected)


def test_fixed_split_without_lists(tmp_path, rng):
    written = write_stanford_iccv09(tmp_path, rng, count=10)
    data = StanfordBackground(tmp_path / "iccv09Data")
    assert data.splits() == ["all", "train", "val"]
    stems = sorted(written)
    val = [f.split("/")[-1][:-4] for f, _ in data.files("val")]
    train = [f.split("/")[-1][:-4] for f, _ in data.files("train")]
    assert val == [stems[4], stems[9]]
    assert train == [stem for stem in stems if stem not in val]


def test_text_label_errors_name_the_file(tmp_path, rng):
    write_stanford_iccv09(tmp_path, rng, count=2)
    data = StanfordBackground(tmp_path)
    image, label = data.files("all")[1]
    with open(label, "w") as handle:
        handle.write("0 1 2\n3 x 5\n")
    assert label in iteration_error(data.dataset("all", batch_size=1, shuffle=False))
    with open(label, "w") as handle:
        handle.write("0 1\n2 3\n")  # readable, but 2x2 for a 12x16 image
    message = iteration_error(data.dataset("all", batch_size=1, shuffle=False))
    assert label in message and image in message
    with open(label, "w") as handle:
        handle.write("")
    with pytest.raises(ValueError, match=r"regions\.txt is empty"):
        data.dataset("all")


def test_missing_layout_and_bad_target(tmp_path):
    with pytest.raises(FileNotFoundError, match="images/ with regions/.*labels/"):
        StanfordBackground(tmp_path)
    with pytest.raises(ValueError, match="target"):
        StanfordBackground(tmp_path, target="layers")
