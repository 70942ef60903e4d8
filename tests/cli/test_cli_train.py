"""``sceneparse train``: outputs, reproducibility, options and user errors."""

import csv
import json

import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.cli import main
from keras_sceneparse.cli.main import build_parser
from keras_sceneparse.cli.train import train
from tests.cli.cli_helpers import CLASS_NAMES, IGNORE_CLASS, NUM_CLASSES, TINY_UNET, train_argv

SCORES = ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou", "f1")


def saved_weights(output):
    model = keras.models.load_model(output / "model.keras")
    return model.get_weights()


def test_train_writes_model_history_and_metadata(trained_run, sample_data):
    root, sample = sample_data
    assert {"model.keras", "history.json", "history.csv", "dataset.json"} <= {p.name for p in trained_run.iterdir()}

    history = json.loads((trained_run / "history.json").read_text())
    for key in ("loss", "val_loss", *SCORES, *(f"val_{s}" for s in SCORES)):
        assert len(history[key]) == 1 and isinstance(history[key][0], float), key
    with open(trained_run / "history.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 1 and float(rows[0]["val_mean_iou"]) == pytest.approx(history["val_mean_iou"][0])

    metadata = json.loads((trained_run / "dataset.json").read_text())
    assert metadata["dataset"] == "folder"
    assert metadata["num_classes"] == NUM_CLASSES and metadata["ignore_class"] == IGNORE_CLASS
    assert metadata["class_names"] == CLASS_NAMES
    assert metadata["palette"] == [list(c) for c in ksp.viz.default_palette(NUM_CLASSES).tolist()]
    assert metadata["image_size"] == [32, 32]
    assert metadata["model"] == "unet"
    assert metadata["model_args"] == {"base_filters": 4, "depth": 2, "padding": "same", "dropout": 0}
    assert metadata["train_split"] == "train" and metadata["val_split"] == "val"


def test_saved_model_loads_without_custom_objects(trained_run):
    model = keras.models.load_model(trained_run / "model.keras")
    assert isinstance(model, ksp.models.UNet)
    assert model.base_filters == 4 and model.padding == "same"
    logits = model.predict(np.zeros((1, 20, 28, 3), "float32"), verbose=0)
    assert logits.shape == (1, 20, 28, NUM_CLASSES)


def test_one_pass_over_limited_files_and_throughput(sample_data, tmp_path, capsys):
    """Without --steps-per-epoch an epoch is one pass; --limit 3 keeps 3 of the 8 training files."""
    root, _ = sample_data
    argv = train_argv(root, tmp_path / "run", "--limit", "3", "--epochs", "2")
    index = argv.index("--steps-per-epoch")
    del argv[index:index + 2]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "trained on 6 images in" in out and "images/s" in out
    assert "best validation mean IoU" in out
    with open(tmp_path / "run" / "history.csv") as file:
        assert len(list(csv.DictReader(file))) == 2


def test_same_seed_same_weights_other_seed_other_weights(sample_data, tmp_path):
    root, _ = sample_data
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        # Augmentation on (the default) and shuffling: the data pipeline must be seeded too.
        assert main(train_argv(root, tmp_path / name, "--seed", str(seed), "--val-split", "none")) == 0
        runs[name] = saved_weights(tmp_path / name)
    for first, second in zip(runs["a"], runs["b"]):
        np.testing.assert_array_equal(first, second)
    assert any(not np.array_equal(first, second) for first, second in zip(runs["a"], runs["c"]))


def test_without_validation_the_last_model_is_saved(sample_data, tmp_path):
    root, _ = sample_data
    assert main(train_argv(root, tmp_path / "run", "--val-split", "none", "--epochs", "2")) == 0
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert "val_loss" not in history and len(history["loss"]) == 2
    assert json.loads((tmp_path / "run" / "dataset.json").read_text())["val_split"] is None


@pytest.mark.parametrize(
    "options",
    [
        ["--loss", "focal", "--class-weights", "median-frequency", "--optimizer", "sgd", "--learning-rate", "0.05"],
        ["--loss", "lovasz", "--no-augment", "--limit", "3"],
        ["--loss", "dice", "--mixed-precision", "--jit-compile", "--val-split", "none"],
    ],
    ids=["focal-median-frequency-sgd", "lovasz-no-augment-limit", "dice-mixed-precision-xla"],
)
def test_training_options(sample_data, tmp_path, options):
    root, sample = sample_data
    args = build_parser().parse_args(train_argv(root, tmp_path / "run", *options))
    model, history = train(args)
    assert np.isfinite(history.history["loss"][0])

    loss = model.loss
    expected_loss = {"focal": ksp.losses.FocalLoss, "lovasz": ksp.losses.LovaszSoftmaxLoss, "dice": ksp.losses.DiceLoss}
    assert type(loss) is expected_loss[args.loss]
    assert loss.from_logits and loss.ignore_class == IGNORE_CLASS
    metadata = json.loads((tmp_path / "run" / "dataset.json").read_text())
    if "median-frequency" in options:
        np.testing.assert_allclose(metadata["class_weights"], sample.median_frequency_weights("train"))
        np.testing.assert_allclose(loss.class_weights, sample.median_frequency_weights("train"))
    optimizer = model.optimizer
    if "--mixed-precision" in options:
        assert model.dtype_policy.name == "mixed_float16"
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
        optimizer = optimizer.inner_optimizer
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the run
    # Keras falls back to jit_compile=False, with a warning, where XLA cannot be used.
    assert model.jit_compile is ("--jit-compile" in options)
    if "sgd" in options:
        assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.momentum == 0.9
        assert float(optimizer.learning_rate) == pytest.approx(0.05)
    else:
        assert isinstance(optimizer, keras.optimizers.Adam)
        assert float(optimizer.learning_rate) == pytest.approx(1e-3)
    reloaded = keras.models.load_model(tmp_path / "run" / "model.keras", compile=False)
    assert reloaded.predict(np.zeros((1, 16, 16, 3), "float32"), verbose=0).dtype == np.float32


def test_full_images_without_crop_size_are_padded_into_batches(sample_data, tmp_path):
    root, _ = sample_data
    argv = train_argv(root, tmp_path / "run")
    index = argv.index("--image-size")
    del argv[index:index + 3]
    assert main(argv) == 0
    assert json.loads((tmp_path / "run" / "dataset.json").read_text())["image_size"] is None


@pytest.mark.parametrize(
    "options, message",
    [
        (["--model-arg", "bogus=1"], "cannot build model 'unet'"),
        (["--model-arg", "padding=diagonal"], "`padding` must be one of"),
        (["--val-split", "test"], "--val-split 'test': Unknown split 'test'"),
        (["--train-split", "everything"], "--train-split 'everything'"),
        (["--class-names", "a", "b"], "`class_names` must have num_classes=4 entries, got 2"),
        (["--loss", "lovasz", "--class-weights", "median-frequency"], "--loss lovasz does not take --class-weights"),
        (["--backbone", "resnet50"], "cannot build model 'unet'"),
        (["--jit-compile", "--deterministic"], "--jit-compile and --deterministic exclude each other"),
    ],
)
def test_bad_training_values_are_user_errors(sample_data, tmp_path, capsys, options, message):
    root, _ = sample_data
    assert main(train_argv(root, tmp_path / "run", *options)) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("sceneparse: error: ") and len(captured.err.strip().splitlines()) == 1
    assert message in captured.err


def test_folder_needs_num_classes(sample_data, tmp_path, capsys):
    root, _ = sample_data
    argv = train_argv(root, tmp_path / "run")
    index = argv.index("--num-classes")
    del argv[index:index + 2]
    assert main(argv) == 2
    assert "--dataset folder needs --num-classes" in capsys.readouterr().err


def test_data_dir_without_the_layout_is_a_user_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(train_argv(tmp_path / "empty", tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert err.startswith("sceneparse: error: No image folder layout found under")


def test_output_that_is_a_file_is_a_user_error(sample_data, tmp_path, capsys):
    root, _ = sample_data
    (tmp_path / "taken").write_text("x")
    assert main(train_argv(root, tmp_path / "taken")) == 2
    assert "exists and is not a directory" in capsys.readouterr().err


def test_named_dataset_rejects_contradicting_class_flags(tmp_path, capsys):
    camvid = tmp_path / "camvid"
    for split in ("train", "val", "test"):
        (camvid / split / "images").mkdir(parents=True)
        (camvid / split / "labels").mkdir(parents=True)
    argv = ["train", *TINY_UNET, "--dataset", "camvid", "--data-dir", str(camvid), "--num-classes", "5",
            "--output", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("sceneparse: error: ")
    assert "--num-classes 5 does not match the camvid data set" in err or "camvid" in err.lower()


def test_failed_weight_download_is_a_user_error(sample_data, tmp_path, capsys, monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid/weights.h5: None -- no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    root, _ = sample_data
    argv = ["train", "--model", "deeplabv3plus", "--backbone", "mobilenet_v2", "--weights", "imagenet",
            "--dataset", "folder", "--data-dir", str(root), "--num-classes", "4", "--output", str(tmp_path / "run")]
    assert main(argv) == 2
    last_line = capsys.readouterr().err.strip().splitlines()[-1]  # after Keras' own warnings, if any
    assert last_line.startswith("sceneparse: error: cannot download the pretrained weights (URL fetch failure")
    assert "--weights none" in last_line
