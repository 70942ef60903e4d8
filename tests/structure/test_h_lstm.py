import json

import keras
import numpy as np
import pytest
from PIL import Image

from keras_sceneparse.cli import main
from keras_sceneparse.data.geometric import GeometricDataset, prepare_example
from keras_sceneparse.structure import RELATIONS, region_graph, region_graph_from_json
from keras_sceneparse.structure.geometric_parser import GeometricParser
from keras_sceneparse.structure.scene_parser import SceneParser
from keras_sceneparse.structure.h_lstm import HLSTM

from tests.structure.geometric_fixtures import SIZE, TINY, scene, tiny_model, write_scenes


@pytest.fixture(scope="module")
def geometric_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("stanford")
    write_scenes(root, np.random.default_rng(0))
    return root, GeometricDataset(root, size=SIZE, scales=(6,), max_regions=8, max_pairs=16)


def test_prepare_example_matches_the_region_graph(rng):
    image, surfaces, semantics, layers = scene(rng)
    example = prepare_example(image, surfaces, semantics, layers, size=SIZE, scales=(6,), max_nodes=(24,),
                              max_regions=8, max_pairs=16)
    assert example["images"].shape == (*SIZE, 3) and example["regions"].max() == 4
    graph = region_graph(layers, surfaces, semantics)
    pairs = {tuple(sorted(p)) for p in example["pairs"].tolist() if p[0] >= 0}
    assert len(pairs) == graph.number_of_edges()
    assert set(example["relations"][example["relations"] >= 0].tolist()) <= set(range(len(RELATIONS)))
    count = int(example["node_mask_0"].sum())
    assert np.array_equal(example["adjacency_0"], example["adjacency_0"].T) and example["superpixels_0"].max() == count - 1


def test_dataset_batches_and_flips_consistently(geometric_data):
    _, dataset = geometric_data
    inputs, targets = next(iter(dataset.dataset("train", batch_size=2, augment=True, seed=1)))
    assert inputs["images"].dtype == "float32" and inputs["images"].shape == (2, *SIZE, 3)
    assert targets["surfaces"].shape == (2, *SIZE) and targets["relations"].shape == (2, 16)
    # The flip moves the images and maps together: sky stays where the surfaces say sky.
    surfaces, regions = targets["surfaces"].numpy(), inputs["regions"].numpy()
    assert np.all((surfaces == 0) == (regions == 0))


def test_padding_that_disagrees_with_the_model_is_named(geometric_data):
    _, dataset = geometric_data
    inputs, _ = next(iter(dataset.dataset("train", batch_size=2)))
    model = HLSTM(max_nodes=(24,), max_regions=8, **TINY)
    with pytest.raises(ValueError, match=r"adjacency_0.*25 nodes.*max_nodes\[0\]=24"):
        model(inputs)
    with pytest.raises(ValueError, match="missing inputs.*pairs"):
        model({key: value for key, value in inputs.items() if key != "pairs"})


def test_hlstm_trains_saves_and_reloads(geometric_data, tmp_path):
    _, dataset = geometric_data
    data = dataset.dataset("train", batch_size=2, augment=True)
    for use_lstm in (True, False):
        model = tiny_model(use_lstm=use_lstm)
        # Eager here (tracing costs ~20 s); the train-geometry command test below fits in graph mode.
        model.compile(keras.optimizers.Adam(1e-2), run_eagerly=True)
        history = model.fit(data, epochs=1, verbose=0).history
        assert np.all(np.isfinite(history["loss"])) and {"surface_accuracy", "relation_accuracy"} <= set(history)
    inputs, _ = next(iter(data))
    model.save(tmp_path / "hlstm.keras")
    restored = keras.models.load_model(tmp_path / "hlstm.keras")
    np.testing.assert_allclose(restored(inputs)["surfaces"], model(inputs)["surfaces"], atol=1e-5)
    assert restored.use_lstm is False


def test_relations_are_symmetric_and_padding_is_silent(geometric_data):
    _, dataset = geometric_data
    inputs, targets = next(iter(dataset.dataset("train", batch_size=2)))
    model = tiny_model()
    outputs = model(inputs)
    swapped = {**inputs, "pairs": inputs["pairs"].numpy()[..., ::-1]}
    np.testing.assert_allclose(model(swapped)["relations"], outputs["relations"], atol=1e-5)
    padded = inputs["pairs"].numpy()[..., 0] < 0
    assert np.all(outputs["relations"].numpy()[padded] == 0)
    losses = model.per_example_loss(inputs, targets, outputs)
    assert losses.shape == (2,) and np.all(np.isfinite(losses))


def test_region_geometry_is_each_regions_mass_centre_and_spread():
    model = tiny_model()
    regions = np.full((1, 4, 8), -1, np.int32)
    regions[0, :2, :4] = 0  # the top-left quarter
    geometry = keras.ops.convert_to_numpy(model._region_geometry(regions))[0]
    np.testing.assert_allclose(geometry[0], [0.25, 0.25, 0.25, np.std((np.arange(4) + 0.5) / 8), 0.125], atol=1e-6)
    assert np.all(geometry[1:] == 0)


def test_geometric_parser_parses_and_round_trips_a_half_precision_preset(tmp_path, rng):
    parser = GeometricParser(tiny_model(), size=SIZE, scales=(6,), region_segments=6)
    image, _, _, _ = scene(rng, size=(60, 80))
    surface_map, graph = parser.parse(image)
    assert surface_map.shape == (60, 80) and set(np.unique(surface_map)) <= {0, 1, 2}
    assert graph.number_of_nodes() > 0
    for _, _, data in graph.edges(data=True):
        assert data["relation"] in RELATIONS and 0 <= data["score"] <= 1
    for _, data in graph.nodes(data=True):
        assert {"surface", "area", "bbox", "centroid"} <= set(data)
    parser.save_preset(tmp_path / "preset", note="test")
    import h5py

    with h5py.File(tmp_path / "preset" / "model.weights.h5") as stored:
        dtypes = set()
        stored.visititems(lambda name, item: dtypes.add(item.dtype) if isinstance(item, h5py.Dataset) else None)
    assert np.dtype("float16") in dtypes and np.dtype("float32") not in dtypes
    again = GeometricParser.from_preset(tmp_path / "preset")
    # Stored in half precision: the weights come back rounded, and the parse barely moves.
    for original, restored in zip(parser.model.weights, again.model.weights):
        expected = keras.ops.convert_to_numpy(original).astype("float16").astype("float32")
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored), expected)
    assert np.mean(again.parse(image)[0] == surface_map) > 0.99
    with pytest.raises(ValueError, match="RGB"):
        parser.parse(np.zeros((20, 20)))
    with pytest.raises(ValueError, match="'geometric' preset.*GeometricParser"):
        SceneParser.from_preset(tmp_path / "preset")


def test_train_geometry_and_geometry_commands(geometric_data, tmp_path, capsys):
    root, _ = geometric_data
    output = tmp_path / "run"
    assert main(["train-geometry", "--data-dir", str(root), "--output", str(output), "--epochs", "1",
                 "--batch-size", "2", "--image-size", *map(str, SIZE), "--scales", "6", "--units", "4",
                 "--feature-channels", "8", "--pixel-layers", "1", "--evaluate", "--verbose", "0"]) == 0
    scores = json.loads((output / "val_metrics.json").read_text())
    assert scores["num_images"] == 2 and 0 <= scores["surfaces"]["pixel_accuracy"] <= 1
    assert set(scores["relations"]["per_class_accuracy"]) == set(RELATIONS)
    photo = tmp_path / "street.png"
    Image.fromarray(scene(np.random.default_rng(3), size=(60, 80))[0]).save(photo)
    out = tmp_path / "out"
    assert main(["geometry", str(photo), "--model", str(output / "preset"), "--output", str(out), "--popup", "ply"]) == 0
    assert "street:" in capsys.readouterr().out
    graph = region_graph_from_json(json.loads((out / "street_regions.json").read_text()))
    assert graph.number_of_nodes() > 0
    for name in ("street_surfaces.png", "street_graph.png", "street.ply"):
        assert (out / name).stat().st_size > 0
    assert main(["geometry", str(photo), "--model", str(tmp_path / "nothing"), "--output", str(out)]) == 2


def test_default_parameter_count_is_the_documented_one():
    assert HLSTM().count_params() == 6_610_170
    assert HLSTM(use_lstm=False).count_params() < 2_000_000
