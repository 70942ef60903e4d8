import json

import numpy as np
import pytest
from PIL import Image

from keras_sceneparse.cli import main
from keras_sceneparse.structure import SceneParser, from_json, validate_tree
from tests.data.dataset_fixtures import write_sysu_converted

TINY_PARSER = [
    "--segmenter", "unet", "--segmenter-arg", "base_filters=2", "--segmenter-arg", "depth=2",
    "--segmenter-arg", "padding=same", "--embedding-dim", "4", "--max-objects", "3",
    "--epochs", "1", "--batch-size", "2", "--crop-size", "16", "16", "--verbose", "0",
]


@pytest.fixture(scope="module")
def sysu(tmp_path_factory):
    root = tmp_path_factory.mktemp("sysu")
    write_sysu_converted(root, np.random.default_rng(0), count=10)
    return root


@pytest.fixture(scope="module")
def trained_parser(sysu, tmp_path_factory):
    output = tmp_path_factory.mktemp("parser")
    assert main(["train-parser", "--data-dir", str(sysu), "--output", str(output), *TINY_PARSER, "--evaluate"]) == 0
    return output


def test_train_parser_writes_a_loadable_preset_and_scores(trained_parser):
    preset = trained_parser / "preset"
    config = json.loads((preset / "config.json").read_text())
    assert config["metadata"]["command"].startswith("sceneparse train-parser")
    assert config["metadata"]["training"]["images"] == 8
    scores = json.loads((trained_parser / "test_metrics.json").read_text())
    assert scores["num_images"] == 2 and 0.0 <= scores["segmentation"]["mean_iou"] <= 1.0
    for method in ("model", "baseline"):
        assert set(scores["trees"][method]) == {"predicted_objects", "sentence_objects"}
    assert scores["baseline_relation"] == "ride"
    parser = SceneParser.from_preset(preset)
    assert "ride" in parser.relation_names and parser.class_names[0] == "background"


def test_weak_supervision_trains_without_label_maps(sysu, tmp_path):
    assert main(["train-parser", "--data-dir", str(sysu), "--output", str(tmp_path), *TINY_PARSER,
                 "--supervision", "weak"]) == 0
    history = json.loads((tmp_path / "history.json").read_text())
    assert "mean_iou" not in history and np.isfinite(history["loss"][0])


def test_parse_writes_tree_json_drawing_and_overlay(trained_parser, tmp_path, capsys):
    image = tmp_path / "street.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 56, 3)).astype("uint8")).save(image)
    out = tmp_path / "out"
    assert main(["parse", str(image), "--model", str(trained_parser / "preset"), "--output", str(out),
                 "--min-area", "0"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("street: ")
    data = json.loads((out / "street_tree.json").read_text())
    tree = validate_tree(from_json(data))
    assert printed.split(": ", 1)[1].splitlines()[0].replace("(", "").split()  # the bracketed tree
    assert (out / "street_tree.png").stat().st_size > 0 or tree.number_of_nodes() == 1
    overlay = np.asarray(Image.open(out / "street_overlay.png"))
    assert overlay.shape == (40, 56, 3)


def test_parse_without_image_uses_the_bundled_sample(trained_parser, tmp_path, capsys):
    assert main(["parse", "--model", str(trained_parser / "preset"), "--output", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("astronaut: ")
    assert (tmp_path / "astronaut_overlay.png").is_file() and (tmp_path / "astronaut_tree.json").is_file()


def test_evaluate_parser_writes_scores(trained_parser, sysu, tmp_path):
    output = tmp_path / "scores.json"
    assert main(["evaluate-parser", "--model", str(trained_parser / "preset"), "--data-dir", str(sysu),
                 "--output", str(output)]) == 0
    scores = json.loads(output.read_text())
    assert scores["split"] == "test" and scores["num_images"] == 2


def test_parse_errors_are_one_line(tmp_path, capsys):
    assert main(["parse", "--model", str(tmp_path / "missing"), "--output", str(tmp_path)]) == 2
    assert "Unknown preset" in capsys.readouterr().err
    assert main(["parse", str(tmp_path / "nope.jpg"), "--output", str(tmp_path)]) == 2
