"""The presets shipped with the package: present, small, documented, and working offline."""

import json

import numpy as np
import pytest

from keras_sceneparse.cli import main
from keras_sceneparse.structure import GeometricParser, SceneParser, from_json, list_presets, validate_tree
from keras_sceneparse.structure.scene_parser import CONFIG_FILE, PRESETS_DIR, WEIGHTS_FILE

SHIPPED = {"sysu_scenes": "sceneparse train-parser", "stanford_background": "sceneparse train-geometry"}


@pytest.mark.parametrize("name,command", SHIPPED.items())
def test_each_preset_is_small_and_records_the_command_that_trained_it(name, command):
    assert name in list_presets()
    folder = PRESETS_DIR / name
    assert (folder / WEIGHTS_FILE).stat().st_size < 8 * 2**20
    metadata = json.loads((folder / CONFIG_FILE).read_text())["metadata"]
    assert metadata["command"].startswith(command)


def test_the_tree_preset_parses_the_sample_photo(tmp_path, capsys):
    parser = SceneParser.from_preset("sysu_scenes")
    assert parser.class_names[0] == "background" and len(parser.class_names) == 38
    assert main(["parse", "--output", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("astronaut: ")
    tree = from_json(json.loads((tmp_path / "astronaut_tree.json").read_text()))
    validate_tree(tree)


def test_the_geometric_preset_parses_the_sample_photo(tmp_path, capsys):
    parser = GeometricParser.from_preset("stanford_background")
    image = np.zeros((120, 160, 3), np.uint8)
    image[:50] = (120, 170, 230)  # sky over ground
    image[50:] = (90, 110, 60)
    surfaces, graph = parser.parse(image)
    assert surfaces.shape == (120, 160) and graph.number_of_nodes() > 0
    assert main(["geometry", "--output", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("astronaut: ")
    assert (tmp_path / "astronaut_regions.json").stat().st_size > 0
