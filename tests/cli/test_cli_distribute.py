import json

from keras_sceneparse.cli import main
from tests.cli.cli_helpers import train_argv


def test_train_with_a_mirrored_strategy(sample_data, tmp_path):
    root, _ = sample_data
    assert main(train_argv(root, tmp_path, "--strategy", "mirrored")) == 0
    assert (tmp_path / "model.keras").is_file()
    assert json.loads((tmp_path / "dataset.json").read_text())["strategy"] == "mirrored"


def test_train_with_two_local_workers(sample_data, tmp_path, capfd):
    root, _ = sample_data
    backup = tmp_path / "backup"
    argv = train_argv(root, tmp_path / "out", "--strategy", "multi-worker", "--workers", "2",
                      "--backup-dir", str(backup), "--backup-frequency", "1")
    assert main(argv) == 0
    output = capfd.readouterr().out
    assert "[worker 0]" in output and "[worker 1]" in output
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert len(history["loss"]) == 1
    assert (tmp_path / "out" / "model.keras").is_file() and not backup.exists()


def test_distribution_flag_errors(sample_data, tmp_path, capsys, monkeypatch):
    root, _ = sample_data
    assert main(train_argv(root, tmp_path, "--workers", "2")) == 2
    assert "--workers needs --strategy multi-worker" in capsys.readouterr().err
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert main(train_argv(root, tmp_path, "--strategy", "multi-worker")) == 2
    assert "TF_CONFIG" in capsys.readouterr().err
    assert main(train_argv(root, tmp_path, "--backup-frequency", "often")) == 2
