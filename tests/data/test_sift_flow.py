from pathlib import Path

import numpy as np
import pytest
import scipy.io
from dataset_fixtures import (
    SIFT_FLOW_TEST_STEMS,
    SIFT_FLOW_TRAIN_STEMS,
    collect,
    iteration_error,
    random_image,
    write_jpeg,
    write_sift_flow,
)

import keras_sceneparse as ksp
from keras_sceneparse.data import SIFT_FLOW_CLASS_NAMES, SIFTFlow

FOLDER = "spatial_envelope_256x256_static_8outdoorcategories"


def stems(pairs):
    return [Path(image).stem for image, _ in pairs]


def expected_ids(raw):
    """Class ids by hand: 1..K -> 0..K-1; 0 (and -1 in geometric labels) -> 255."""
    return np.where(raw >= 1, raw - 1, 255)


@pytest.mark.parametrize("target, column, classes", [("semantic", 1, 33), ("geometric", 2, 3)])
def test_labels_map_to_class_ids(tmp_path, rng, target, column, classes):
    written = write_sift_flow(tmp_path, rng)
    data = SIFTFlow(tmp_path, target=target)
    assert (data.num_classes, data.ignore_class, len(data.palette)) == (classes, 255, classes)
    assert data.base == tmp_path / "SiftFlowDataset"
    _, labels = collect(data.dataset("all", batch_size=3, shuffle=False))
    order = stems(data.files("all"))
    assert order == sorted(written)
    for stem, got in zip(order, labels):
        np.testing.assert_array_equal(got, expected_ids(written[stem][column]))
    expected = np.zeros(classes, np.int64)
    for stem in written:
        ids = expected_ids(written[stem][column])
        expected += np.bincount(ids[ids != 255], minlength=classes)
    np.testing.assert_array_equal(data.class_frequencies("all"), expected)


def test_class_names():
    assert len(SIFT_FLOW_CLASS_NAMES) == 33 and len(set(SIFT_FLOW_CLASS_NAMES)) == 33
    assert SIFT_FLOW_CLASS_NAMES[0] == "awning" and SIFT_FLOW_CLASS_NAMES[27] == "sky"
    assert SIFT_FLOW_CLASS_NAMES[-1] == "window" and SIFT_FLOW_CLASS_NAMES == sorted(SIFT_FLOW_CLASS_NAMES)


def test_splits_from_the_test_list(tmp_path, rng):
    write_sift_flow(tmp_path, rng, nested=False)
    data = ksp.data.get_dataset("sift_flow", tmp_path, target="geometric")
    assert isinstance(data, SIFTFlow) and data.class_names == ["sky", "horizontal", "vertical"]
    assert data.splits() == ["all", "train", "test"]
    assert data.test_stems() == SIFT_FLOW_TEST_STEMS  # Windows paths and CRLF line ends
    assert stems(data.files("test")) == sorted(SIFT_FLOW_TEST_STEMS)
    assert stems(data.files("train")) == sorted(SIFT_FLOW_TRAIN_STEMS)
    for image, label in data.files("all"):
        assert Path(label) == tmp_path / "GeoLabels" / FOLDER / f"{Path(image).stem}.mat"
    images, labels = collect(data.dataset("train", batch_size=2, crop_size=(8, 8), augment=True, seed=0))
    assert len(images) == 4 and images[0].shape == (8, 8, 3) and labels[0].shape == (8, 8)
    (tmp_path / "TestSet1.txt").write_text(f"{FOLDER}/coast_arnat59\n\n")  # forward slashes, no extension
    assert SIFTFlow(tmp_path).test_stems() == ["coast_arnat59"]
    (tmp_path / "TestSet1.txt").unlink()
    data = SIFTFlow(tmp_path)
    assert data.splits() == ["all"]
    with pytest.raises(ValueError, match=r"Unknown split 'train'.*available splits: 'all'"):
        data.files("train")


def test_missing_layout_and_bad_target(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match=r"No SIFT Flow layout .*Images/spatial_envelope"):
        SIFTFlow(tmp_path)
    with pytest.raises(ValueError, match="target"):
        SIFTFlow(tmp_path, target="surfaces")
    write_sift_flow(tmp_path, rng)
    base = tmp_path / "SiftFlowDataset"
    (base / "GeoLabels" / FOLDER).rename(base / "GeoLabels" / "other")
    with pytest.raises(FileNotFoundError, match=r"Missing folder .*GeoLabels/spatial_envelope.*geometric annotations"):
        SIFTFlow(tmp_path, target="geometric")


def test_file_errors_name_the_files(tmp_path, rng):
    write_sift_flow(tmp_path, rng)
    base = tmp_path / "SiftFlowDataset"
    data = SIFTFlow(tmp_path)
    (base / "SemanticLabels" / FOLDER / "street_a232.mat").unlink()
    with pytest.raises(FileNotFoundError, match=r"street_a232\.jpg has no label map: expected .*street_a232\.mat"):
        data.files("train")
    (base / "Images" / FOLDER / "coast_arnat59.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"test image 'coast_arnat59' of .*TestSet1\.txt \(entry 2\)"):
        data.files("test")


def test_bad_annotations_name_the_file(tmp_path, rng):
    write_sift_flow(tmp_path, rng)
    base = tmp_path / "SiftFlowDataset"
    write_jpeg(base / "Images" / FOLDER / "zz_extra.jpg", random_image(rng))
    annotation = base / "SemanticLabels" / FOLDER / "zz_extra.mat"
    data = SIFTFlow(tmp_path)
    scipy.io.savemat(annotation, {"labels": np.zeros((12, 16), np.uint8)})
    message = iteration_error(data.dataset("train", batch_size=8, shuffle=False))
    assert str(annotation) in message and "no variable 'S'" in message
    scipy.io.savemat(annotation, {"S": np.full((12, 16), 34, np.uint8)})  # beyond the 33 classes
    message = iteration_error(data.dataset("train", batch_size=8, shuffle=False))
    assert str(annotation) in message
    with pytest.raises(ValueError, match=r"zz_extra\.mat holds ids \[-1\]"):
        data.class_frequencies("train")
    scipy.io.savemat(annotation, {"S": np.zeros((4, 4), np.uint8)})  # not the image's size
    message = iteration_error(data.dataset("train", batch_size=8, shuffle=False))
    assert str(annotation) in message and "zz_extra.jpg" in message
    annotation.write_bytes(b"not a mat file" * 10)
    with pytest.raises(ValueError, match=r"Cannot read the annotation .*zz_extra\.mat"):
        data.class_frequencies("train")
