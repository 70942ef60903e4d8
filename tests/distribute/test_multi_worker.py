import pytest
"""Multi-worker training with two worker processes on 127.0.0.1 (tf.distribute collectives)."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from keras_sceneparse.distribute.launcher import start_workers, wait_for_workers

SCRIPT = str(Path(__file__).with_name("worker_script.py"))
ROOT = str(Path(__file__).parents[2])
ENVIRONMENT = {"PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_single(tmp_path, *extra):
    output = tmp_path / "single.npz"
    process = subprocess.run([sys.executable, SCRIPT, "none", str(output), *extra], capture_output=True, text=True,
                             env={**os.environ, **ENVIRONMENT}, timeout=300)
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-2000:]
    return np.load(output)


def run_workers(output, *extra, timeout=300):
    log = io.StringIO()
    codes = wait_for_workers(start_workers([SCRIPT, "multi-worker", str(output), *extra], 2, ENVIRONMENT, log), timeout)
    return codes, log.getvalue()


def assert_same_training(a, b, rtol=1e-7):
    assert int(a["iterations"]) == int(b["iterations"])
    weights = [key for key in a.files if key.startswith("arr_")]
    assert weights and len(weights) == len([key for key in b.files if key.startswith("arr_")])
    for key in weights:
        np.testing.assert_allclose(a[key], b[key], atol=1e-5, rtol=rtol)


def test_two_workers_train_exactly_like_one_process(tmp_path):
    """Same model, seed, data order and global batch: equal weights after 3 epochs of 3 steps
    (the last of each epoch a partial batch of 3 examples split over 2 workers)."""
    single = run_single(tmp_path)
    codes, log = run_workers(tmp_path / "multi.npz")
    assert codes == [0, 0], log[-3000:]
    multi = np.load(tmp_path / "multi.npz")
    assert int(single["iterations"]) == 9
    assert_same_training(single, multi)
    single_history, multi_history = json.loads(str(single["history"])), json.loads(str(multi["history"]))
    np.testing.assert_allclose(single_history["loss"], multi_history["loss"], rtol=1e-5)
    np.testing.assert_allclose(single_history["mean_iou"], multi_history["mean_iou"], rtol=1e-5)


def test_killed_worker_fails_the_others_and_a_restart_resumes_without_lost_or_repeated_steps(tmp_path):
    reference = run_single(tmp_path)
    backup = tmp_path / "backup"
    output = tmp_path / "resumed.npz"
    log = io.StringIO()
    processes = start_workers([SCRIPT, "multi-worker", str(output), "--backup", str(backup),
                               "--step-delay", "0.5"], 2, ENVIRONMENT, log)
    # Kill worker 1 in the middle of the second epoch (steps 0-2 of epoch 1 print "STEP done").
    deadline = time.monotonic() + 240
    while log.getvalue().count("[worker 1] STEP done") < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert time.monotonic() < deadline, log.getvalue()[-3000:]
    processes[1].send_signal(signal.SIGKILL)
    started = time.monotonic()
    codes = wait_for_workers(processes, timeout=120)
    waited = time.monotonic() - started
    assert codes[0] == 3 and codes[1] == -signal.SIGKILL, log.getvalue()[-3000:]
    assert "[worker 0] UNAVAILABLE A worker of this 2-worker job stopped answering" in log.getvalue()
    assert "resume from the last backup" in log.getvalue()
    assert waited < 60  # bounded, not a hang
    assert (backup / "checkpoint").is_file() and not output.exists()

    # Start the job again: it resumes at the next step and ends like the uninterrupted run.
    codes, resumed_log = run_workers(output, "--backup", str(backup), "--timeout", "20")
    assert codes == [0, 0], resumed_log[-3000:]
    assert "Resuming from the backup" not in resumed_log  # verbose=0 prints nothing; the steps tell
    assert resumed_log.count("[worker 0] STEP done") < 9  # only the remaining steps ran
    resumed = np.load(output)
    assert int(resumed["iterations"]) == 9  # 3 epochs x 3 steps: none lost, none repeated
    assert_same_training(reference, resumed)
    assert not backup.exists()  # cleared after the run completed


def test_the_structured_parser_trains_on_two_workers_like_one_process(tmp_path):
    single = run_single(tmp_path, "--model", "rsnn", "--epochs", "2")
    codes, log = run_workers(tmp_path / "multi.npz", "--model", "rsnn", "--epochs", "2")
    assert codes == [0, 0], log[-3000:]
    multi = np.load(tmp_path / "multi.npz")
    assert int(single["iterations"]) == 6
    assert_same_training(single, multi)
    single_history, multi_history = json.loads(str(single["history"])), json.loads(str(multi["history"]))
    for key in ("loss", "segmentation_loss", "structure_loss", "relation_loss", "mean_iou"):
        np.testing.assert_allclose(single_history[key], multi_history[key], rtol=1e-4, atol=1e-6)


@pytest.mark.slow  # the suite's time budget; runs with -m slow
def test_hlstm_scores_on_two_workers_like_one_process(tmp_path):
    single = run_single(tmp_path, "--model", "hlstm", "--epochs", "1")
    codes, log = run_workers(tmp_path / "multi.npz", "--model", "hlstm", "--epochs", "1")
    assert codes == [0, 0], log[-3000:]
    multi = np.load(tmp_path / "multi.npz")
    assert int(single["iterations"]) == 2
    # The batch-norm statistics included: synchronised ones (E[x^2] - E[x]^2 over the workers)
    # round differently from one process's two-pass moments, by up to 2e-5 relative.
    assert_same_training(single, multi, rtol=1e-4)
    single_history, multi_history = json.loads(str(single["history"])), json.loads(str(multi["history"]))
    for key in ("loss", "surface_loss", "relation_loss", "surface_accuracy", "relation_accuracy"):
        np.testing.assert_allclose(single_history[key], multi_history[key], rtol=1e-4, atol=1e-4)
