"""The command line itself: help, argument types, model arguments, one-line user errors."""

import argparse
import json
import math

import numpy as np
import pytest

from keras_sceneparse.cli import common, main

TRAIN = ["train", "--model", "unet", "--dataset", "folder", "--data-dir", "x", "--output", "o"]

CONTRACT_FLAGS = {
    "train": [
        "--model", "--dataset", "--data-dir", "--epochs", "--steps-per-epoch", "--batch-size", "--image-size",
        "--seed", "--output", "--num-classes", "--ignore-class", "--class-names", "--train-split", "--val-split",
        "--model-arg", "--backbone", "--weights", "--loss", "--class-weights", "--learning-rate", "--optimizer",
        "--limit", "--no-augment", "--mixed-precision", "--jit-compile",
        "camvid", "stanford_background", "cross_entropy", "lovasz", "median-frequency", "sgd", "imagenet",
    ],
    "evaluate": ["--model-path", "--dataset", "--data-dir", "--split", "--batch-size", "--num-classes",
                 "--ignore-class", "--limit", "--output"],
    "predict": ["--model-path", "IMAGE", "--output", "--palette-from"],
    "demo": ["--output", "--epochs", "--seed"],
    "models": [],
}


@pytest.mark.parametrize("command", sorted(CONTRACT_FLAGS))
def test_help_of_each_subcommand_exits_0_and_names_its_flags(command, capsys):
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: sceneparse {command}")
    for flag in CONTRACT_FLAGS[command]:
        assert flag in text, f"{flag} missing from 'sceneparse {command} --help'"


def test_top_level_help_lists_subcommands(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in CONTRACT_FLAGS:
        assert command in text


def test_no_subcommand_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "usage: sceneparse" in capsys.readouterr().err


def test_models_lists_registered_names_with_descriptions(capsys):
    import keras_sceneparse as ksp

    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert names == ksp.models.list_models()
    assert "unet" in names
    unet_line = lines[names.index("unet")]
    assert ksp.models.describe("unet") in unet_line


@pytest.mark.parametrize(
    "argv, message",
    [
        # argparse's own checks and the argument types of keras_sceneparse.cli.common
        (["train", "--model", "unet"], "the following arguments are required"),
        ([*TRAIN, "--image-size", "0", "8"], "argument --image-size: expected a positive integer, got '0'"),
        ([*TRAIN, "--image-size", "8"], "argument --image-size: expected 2 arguments"),
        ([*TRAIN, "--image-size", "8", "x"], "argument --image-size: expected a positive integer, got 'x'"),
        (["train", "--model", "unet", "--dataset", "mnist", "--data-dir", "x", "--output", "o"],
         "argument --dataset: invalid choice: 'mnist'"),
        ([*TRAIN, "--model-arg", "nokey"], "expected KEY=VALUE"),
        ([*TRAIN, "--epochs", "-1"], "argument --epochs: expected a positive integer, got '-1'"),
        ([*TRAIN, "--learning-rate", "nan"], "argument --learning-rate: expected a positive number, got 'nan'"),
        (["evaluate", "--model-path", "missing.keras"], "model file 'missing.keras' does not exist"),
        (["predict", "--model-path", "missing.keras", "a.png", "--output", "o"],
         "model file 'missing.keras' does not exist"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_user_errors_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("sceneparse: error: ")
    assert message in lines[0]
    assert "Traceback" not in captured.err + captured.out


def test_unknown_model_is_reported_before_touching_the_data(tmp_path, capsys):
    code = main(["train", "--model", "unett", "--dataset", "folder", "--data-dir", tmp_path / "nowhere",
                 "--num-classes", "3", "--output", tmp_path / "run"])
    assert code == 2
    err = capsys.readouterr().err
    assert "Unknown model 'unett'" in err and "Did you mean 'unet'" in err
    assert not (tmp_path / "run").exists()


def test_missing_data_dir_is_a_user_error(tmp_path, capsys):
    code = main(["train", "--model", "unet", "--dataset", "folder", "--data-dir", tmp_path / "nowhere",
                 "--num-classes", "3", "--output", tmp_path / "run"])
    assert code == 2
    assert f"data directory {str(tmp_path / 'nowhere')!r} does not exist" in capsys.readouterr().err


def test_traceback_flag_reraises():
    with pytest.raises(common.UsageError, match="does not exist"):
        main(["--traceback", "evaluate", "--model-path", "missing.keras"])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("base_filters=16", ("base_filters", 16)),
        ('padding="same"', ("padding", "same")),
        ("padding=same", ("padding", "same")),
        ("dropout=0.25", ("dropout", 0.25)),
        ('backbone_kwargs={"alpha": 0.35}', ("backbone_kwargs", {"alpha": 0.35})),
        ("atrous_rates=[2, 4]", ("atrous_rates", [2, 4])),
        ("separable=true", ("separable", True)),
        ("weights=null", ("weights", None)),
        ("name=a=b", ("name", "a=b")),
    ],
)
def test_model_argument_parses_json_or_keeps_strings(text, expected):
    assert common.model_argument(text) == expected


@pytest.mark.parametrize("text", ["base_filters", "=3", "2x=3"])
def test_model_argument_rejects_malformed_pairs(text):
    with pytest.raises(argparse.ArgumentTypeError, match="KEY=VALUE"):
        common.model_argument(text)


def test_to_json_writes_nan_as_null(tmp_path):
    path = tmp_path / "x.json"
    common.write_json(path, {"a": float("nan"), "b": np.float32(0.5), "c": np.array([1, 2]), "d": [math.inf, 1]})
    assert json.loads(path.read_text()) == {"a": None, "b": 0.5, "c": [1, 2], "d": [None, 1]}
    assert "NaN" not in path.read_text()


def test_majority_class_baseline():
    from keras_sceneparse.cli.demo import majority_class_mean_iou

    # Truth: 6 pixels of class 0, 2 of class 1, none of class 2 -> 0.75 IoU for class 0, 0 for class 1.
    matrix = np.array([[5, 1, 0], [2, 0, 0], [0, 0, 0]])
    assert majority_class_mean_iou(matrix) == pytest.approx(0.375)
