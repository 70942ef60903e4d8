"""``sceneparse evaluate``: scores equal to an independent computation, JSON layout, errors."""

import json
import shutil

import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.cli import main
from tests.cli.cli_helpers import CLASS_NAMES, IGNORE_CLASS, NUM_CLASSES, read_ids, read_rgb

SCORES = ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou", "f1")


def independent_scores(model, pairs, batch_size, num_classes=NUM_CLASSES):
    """Scores computed without the CLI: batches padded by hand (images with 0, labels with the ignore id)."""
    truths, predictions = [], []
    for start in range(0, len(pairs), batch_size):
        batch = pairs[start:start + batch_size]
        images = [read_rgb(image) for image, _ in batch]
        labels = [read_ids(label) for _, label in batch]
        height = max(image.shape[0] for image in images)
        width = max(image.shape[1] for image in images)
        padded = np.zeros((len(batch), height, width, 3), np.float32)
        for index, image in enumerate(images):
            padded[index, : image.shape[0], : image.shape[1]] = image
        predicted = np.argmax(model.predict(padded, verbose=0), axis=-1)
        for index, label in enumerate(labels):
            truths.append(label.reshape(-1))
            predictions.append(predicted[index, : label.shape[0], : label.shape[1]].reshape(-1))
    # One long row of pixels: the scores only depend on the pixel pairs.
    return ksp.metrics.segmentation_scores(
        np.concatenate(truths)[None], np.concatenate(predictions)[None], num_classes, IGNORE_CLASS
    )


def assert_report_matches(report, expected, class_names):
    for key in SCORES:
        assert report["scores"][key] == pytest.approx(expected[key], abs=1e-6), key
    assert report["confusion_matrix"] == expected["confusion_matrix"]
    assert list(report["per_class_iou"]) == class_names
    for name, value in zip(class_names, expected["per_class_iou"]):
        if np.isnan(value):
            assert report["per_class_iou"][name] is None
        else:
            assert report["per_class_iou"][name] == pytest.approx(value, abs=1e-6)


def test_evaluate_scores_equal_an_independent_computation(trained_run, sample_data, tmp_path, capsys):
    root, sample = sample_data
    output = tmp_path / "metrics.json"
    argv = ["evaluate", "--model-path", trained_run / "model.keras", "--dataset", "folder", "--data-dir", root,
            "--num-classes", "4", "--class-names", *CLASS_NAMES, "--split", "val", "--batch-size", "3",
            "--output", output]
    assert main(argv) == 0
    report = json.loads(output.read_text())
    assert report["num_images"] == 4 and report["split"] == "val" and report["dataset"] == "folder"
    assert report["model"] == str(trained_run / "model.keras")

    model = keras.models.load_model(trained_run / "model.keras")
    expected = independent_scores(model, sample.files("val"), batch_size=1)
    assert_report_matches(report, expected, CLASS_NAMES)

    table = capsys.readouterr().out
    for name in (*CLASS_NAMES, *SCORES):
        assert name in table
    assert f"{report['scores']['mean_iou']:.4f}" in table


def test_evaluate_reads_data_set_and_classes_from_the_run(trained_run, sample_data, tmp_path):
    """Without --dataset/--data-dir the dataset.json of the run says where the data is."""
    output = tmp_path / "nested" / "metrics.json"
    assert main(["evaluate", "--model-path", trained_run / "model.keras", "--split", "val", "--limit", "2",
                 "--quiet", "--output", output]) == 0
    report = json.loads(output.read_text())
    assert report["num_images"] == 2
    assert list(report["per_class_iou"]) == CLASS_NAMES


def test_evaluate_pads_images_of_different_sizes(trained_run, tmp_path):
    """Mixed sizes in one batch: padding must be ignored and predictions cropped back."""
    root = tmp_path / "mixed"
    ksp.data.write_sample_dataset(root, num_train=1, num_val=3, size=(32, 48), seed=1)
    other = ksp.data.write_sample_dataset(tmp_path / "other", num_train=1, num_val=2, size=(40, 36), seed=2)
    for index, (image, label) in enumerate(other.files("val")):
        shutil.copy(image, root / "val" / "images" / f"extra{index}.png")
        shutil.copy(label, root / "val" / "labels" / f"extra{index}.png")
    dataset = ksp.data.get_dataset("folder", str(root), num_classes=NUM_CLASSES)
    output = tmp_path / "metrics.json"
    argv = ["evaluate", "--model-path", trained_run / "model.keras", "--dataset", "folder", "--data-dir", root,
            "--num-classes", "4", "--split", "val", "--batch-size", "4", "--output", output]
    assert main(argv) == 0
    report = json.loads(output.read_text())
    assert report["num_images"] == 5
    model = keras.models.load_model(trained_run / "model.keras")
    expected = independent_scores(model, dataset.files("val"), batch_size=4)
    assert_report_matches(report, expected, CLASS_NAMES)  # the names given at training (dataset.json)
    total_pixels = 3 * 32 * 48 + 2 * 40 * 36
    assert 0 < np.sum(report["confusion_matrix"]) < total_pixels  # void boundaries and padding left out


def test_undefined_scores_are_written_as_null(sample_data, tmp_path):
    """A class absent from truth and prediction has no IoU: JSON null, not NaN."""
    root, _ = sample_data
    model = ksp.models.get("unet", num_classes=5, base_filters=4, depth=2, padding="same", dropout=0.0)
    classifier = model.get_layer("classifier")
    kernel, bias = classifier.get_weights()
    bias[4] = -1e4  # class 4 is never predicted, and the sample labels never contain it
    classifier.set_weights([kernel, bias])
    model.save(tmp_path / "model.keras")
    output = tmp_path / "metrics.json"
    argv = ["evaluate", "--model-path", tmp_path / "model.keras", "--dataset", "folder", "--data-dir", root,
            "--num-classes", "5", "--split", "val", "--output", output]
    assert main(argv) == 0
    text = output.read_text()
    assert "NaN" not in text
    report = json.loads(text)
    assert report["per_class_iou"]["class_4"] is None
    assert report["confusion_matrix"][4] == [0, 0, 0, 0, 0]
    assert all(row[4] == 0 for row in report["confusion_matrix"])


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "--split 'test': Unknown split 'test'"),
        (["--split", "val", "--num-classes", "5"], "the model scores 4 classes but the data set has 5"),
        (["--split", "val", "--data-dir", "/nonexistent/data"], "data directory '/nonexistent/data' does not exist"),
    ],
)
def test_evaluate_user_errors(trained_run, capsys, extra, message):
    assert main(["evaluate", "--model-path", trained_run / "model.keras", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sceneparse: error: ") and message in err


def test_evaluate_rejects_a_corrupt_model_file(tmp_path, capsys):
    (tmp_path / "model.keras").write_bytes(b"not a zip archive")
    assert main(["evaluate", "--model-path", tmp_path / "model.keras", "--dataset", "folder",
                 "--data-dir", tmp_path, "--num-classes", "4"]) == 2
    assert f"cannot load model {str(tmp_path / 'model.keras')!r}" in capsys.readouterr().err
