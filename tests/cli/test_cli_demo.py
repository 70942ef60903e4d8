"""``sceneparse demo`` end to end, and the command as a separate process (console script)."""

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
from PIL import Image

import keras_sceneparse as ksp
from keras_sceneparse.cli import main

REPOSITORY = Path(__file__).resolve().parents[2]


def test_demo_trains_evaluates_and_predicts(tmp_path, capsys):
    assert main(["demo", "--output", tmp_path, "--epochs", "2", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "$ sceneparse train" in out and "$ sceneparse evaluate" in out and "$ sceneparse predict" in out
    assert "demo: validation mean IoU" in out
    run = tmp_path / "run"
    assert {"model.keras", "dataset.json", "history.json", "history.csv", "val_metrics.json"} <= {
        p.name for p in run.iterdir()
    }
    history = json.loads((run / "history.json").read_text())
    assert len(history["loss"]) == 2
    report = json.loads((run / "val_metrics.json").read_text())
    assert report["num_images"] == 8 and report["split"] == "val"
    assert report["per_class_iou"].keys() == {"sky", "ground", "building", "tree"}
    assert sorted(p.name for p in (tmp_path / "predictions").iterdir()) == [
        "0000_labels.png", "0000_overlay.png", "0001_labels.png", "0001_overlay.png",
    ]
    assert np.sum(report["confusion_matrix"]) > 0
    with Image.open(tmp_path / "predictions" / "0000_labels.png") as png:
        palette = np.array(png.getpalette()).reshape(-1, 3)[:4]
    np.testing.assert_array_equal(palette, ksp.data.SAMPLE_PALETTE)


def command_environment():
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))
    return environment


def run_command(command, tmp_path):
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=command_environment(), timeout=120)


def test_declared_entry_point_runs_as_a_process(tmp_path):
    """What the installed ``sceneparse`` script does: import the declared entry point, exit with its status."""
    scripts = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]["scripts"]
    module, function = scripts["sceneparse"].split(":")
    launcher = f"import sys; from {module} import {function}; sys.exit({function}())"

    listed = run_command([sys.executable, "-c", launcher, "models"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "unet" in listed.stdout.split()

    failed = run_command([sys.executable, "-c", launcher, "evaluate", "--model-path", "missing.keras"], tmp_path)
    assert failed.returncode == 2
    assert "sceneparse: error: model file 'missing.keras' does not exist" in failed.stderr
    assert "Traceback" not in failed.stderr

    module_run = run_command([sys.executable, "-m", "keras_sceneparse.cli", "--version"], tmp_path)
    assert module_run.returncode == 0 and module_run.stdout.startswith("sceneparse ")


def test_installed_console_script(tmp_path):
    """Runs only where the package is installed (pip install -e .); the in-process tests cover the rest."""
    import pytest

    script = shutil.which("sceneparse")
    if script is None:
        pytest.skip("the sceneparse console script is not installed")
    listed = run_command([script, "models"], tmp_path)
    assert listed.returncode == 0 and "unet" in listed.stdout.split()
    failed = run_command([script, "train", "--model", "unet", "--dataset", "folder", "--data-dir", "d",
                          "--output", "o", "--image-size", "0", "1"], tmp_path)
    assert failed.returncode == 2
    assert "argument --image-size: expected a positive integer, got '0'" in failed.stderr
