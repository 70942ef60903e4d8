"""The layers, models, losses and metrics use keras.ops only: check it under JAX and PyTorch.

Each backend runs tests/backends/backend_check.py in a fresh process (the Keras backend is
fixed at import). JAX is a test dependency, so CI runs it; PyTorch runs where it is installed
(its CPU wheel is not a default test dependency: a plain `pip install torch` pulls CUDA).
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHECK = Path(__file__).with_name("backend_check.py")


def run_check(backend):
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.run(
        [sys.executable, str(CHECK)], capture_output=True, text=True, env=environment, timeout=600,
        cwd=str(CHECK.parents[2]),
    )
    lines = [line for line in process.stdout.splitlines() if line.startswith("RESULTS ")]
    assert process.returncode == 0 and lines, process.stdout[-3000:] + process.stderr[-3000:]
    return json.loads(lines[-1][len("RESULTS "):])


@pytest.fixture(scope="module")
def tensorflow_results():
    return run_check("tensorflow")


@pytest.mark.parametrize(
    "backend,module",
    [
        ("jax", "jax"),
        pytest.param("torch", "torch", marks=pytest.mark.skipif(
            importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")),
    ],
)
def test_backend_agnostic_models_losses_and_metrics(backend, module, tensorflow_results):
    results = run_check(backend)
    assert results["backend"] == backend
    for name, value in tensorflow_results["losses"].items():
        assert results["losses"][name] == pytest.approx(value, rel=1e-4), name
    assert results["scores"] == pytest.approx(tensorflow_results["scores"], rel=1e-6)
    for name, model in results["models"].items():
        assert model["shape"] == [2, 35, 45, 4]
        assert model["finite_loss"] and model["reload_difference"] < 1e-4
        assert 0.0 <= model["mean_iou_logged"] <= 1.0
    assert "outside [0, 4)" in results["bad_label_error"]
    assert results["tf_data_fit_loss"] > 0
