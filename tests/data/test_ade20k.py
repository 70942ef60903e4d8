import numpy as np
import pytest
from dataset_fixtures import collect, iteration_error, write_ade20k, write_png

from keras_sceneparse.data import ADE20K


@pytest.mark.parametrize("relative_root", ["", "ADEChallengeData2016"])
def test_labels_are_shifted_down_and_zero_ignored(tmp_path, rng, relative_root):
    written = write_ade20k(tmp_path, rng)
    ade = ADE20K(tmp_path / relative_root)
    assert ade.splits() == ["train", "val"]
    assert (ade.num_classes, ade.ignore_class, len(ade.class_names), len(ade.palette)) == (150, 255, 150, 150)
    assert ade.class_names[:3] == ["wall", "building", "sky"] and ade.class_names[-1] == "flag"
    for split in ("train", "val"):
        _, labels = collect(ade.dataset(split, batch_size=2, shuffle=False))
        assert len(labels) == len(written[split])
        for (_, _, raw), got in zip(written[split], labels):
            expected = np.where(raw == 0, 255, raw.astype(np.int32) - 1)
            np.testing.assert_array_equal(got, expected)
            assert got[0, 0] == 255


def test_split_aliases(tmp_path, rng):
    write_ade20k(tmp_path, rng)
    ade = ADE20K(tmp_path)
    assert ade.files("training") == ade.files("train")
    assert ade.files("validation") == ade.files("val")
    assert len(ade.files("val")) == 1
    with pytest.raises(ValueError, match="'train', 'val'"):
        ade.files("test")


def test_ids_above_150_raise_with_the_file(tmp_path, rng):
    write_ade20k(tmp_path, rng)
    ade = ADE20K(tmp_path)
    bad = ade.files("val")[0][1]
    label = np.ones((12, 16), np.uint8)
    label[5, 5] = 151
    write_png(bad, label)
    assert bad in iteration_error(ade.dataset("val", batch_size=1))
    with pytest.raises(ValueError, match="holds ids"):
        ade.class_frequencies("val")


def test_missing_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="images/ with annotations/"):
        ADE20K(tmp_path)
