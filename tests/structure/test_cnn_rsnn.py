import itertools

import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.layers.entity_pooling import EntityPooling
from keras_sceneparse.layers.recursive_network import RecursiveNetwork
from keras_sceneparse.structure import from_bracketed, to_bracketed, validate_tree
from keras_sceneparse.structure.cnn_rsnn import CNNRsNN
from keras_sceneparse.structure.encoding import decode_merges, encode_tree
from keras_sceneparse.structure.scene_parser import SceneParser

CLASSES = ["background", "person", "dog", "boat", "sea"]
RELATIONS = ["on", "beside", "hold"]


def tiny_model(max_objects=4, **kwargs):
    segmenter = ksp.models.get("unet", num_classes=len(CLASSES), base_filters=4, padding="same")
    return CNNRsNN(segmenter, CLASSES, RELATIONS, max_objects=max_objects, embedding_dim=8, **kwargs)


def batch(trees, rng, max_objects=4, size=32):
    encoded = [encode_tree(from_bracketed(t), CLASSES, RELATIONS, max_objects) for t in trees]
    inputs = {key: np.stack([e[key] for e in encoded]) for key in encoded[0]}
    inputs["images"] = rng.uniform(0, 255, (len(trees), size, size, 3)).astype("float32")
    return inputs


# --- encoding ------------------------------------------------------------------------------


def test_encode_decode_round_trip():
    text = "(hold (on person boat) (beside dog sea))"
    encoded = encode_tree(from_bracketed(text), CLASSES, RELATIONS, max_objects=5)
    np.testing.assert_array_equal(encoded["entities"], [1, 3, 2, 4, -1])
    np.testing.assert_array_equal(encoded["merges"][:3], [[0, 1, 0], [2, 3, 1], [5, 6, 2]])
    np.testing.assert_array_equal(encoded["spans"][2], [1, 1, 1, 1, 0])
    assert to_bracketed(decode_merges(encoded["entities"], encoded["merges"], CLASSES, RELATIONS)) == text


def test_encode_rejects_unknown_labels_and_large_trees():
    with pytest.raises(ValueError, match="not one of the classes"):
        encode_tree(from_bracketed("(on cat boat)"), CLASSES, RELATIONS, 4)
    with pytest.raises(ValueError, match="not one of the relations"):
        encode_tree(from_bracketed("(under dog boat)"), CLASSES, RELATIONS, 4)
    with pytest.raises(ValueError, match="max_objects"):
        encode_tree(from_bracketed("(on (on person dog) (on boat sea))"), CLASSES, RELATIONS, 3)


# --- layers ---------------------------------------------------------------------------------


def test_entity_pooling_matches_numpy(rng):
    features = rng.normal(size=(2, 4, 6, 3)).astype("float32")
    probabilities = rng.dirichlet(np.ones(5), size=(2, 4, 6)).astype("float32")
    pooled = keras.ops.convert_to_numpy(EntityPooling(spatial_features=True)(features, probabilities))
    assert pooled.shape == (2, 5, 3 + 5)
    b, c = 1, 2
    w = probabilities[b, :, :, c]
    np.testing.assert_allclose(pooled[b, c, :3], (w[..., None] * features[b]).sum((0, 1)) / w.sum(), rtol=1e-4)
    ys, xs = (np.arange(4) + 0.5) / 4, (np.arange(6) + 0.5) / 6
    centre_x = (w * xs[None, :]).sum() / w.sum()
    centre_y = (w * ys[:, None]).sum() / w.sum()
    np.testing.assert_allclose(pooled[b, c, 3:6], [w.sum() / 24, centre_x, centre_y], rtol=1e-4)


def test_compose_all_pairs_equals_pairwise_calls(rng):
    layer = RecursiveNetwork(6, 3)
    nodes = rng.normal(size=(2, 4, 6)).astype("float32")
    merged, scores = layer.compose_all_pairs(nodes)
    for i, j in [(0, 1), (3, 2), (1, 1)]:
        h, s, _ = layer(nodes[:, i], nodes[:, j])
        np.testing.assert_allclose(keras.ops.convert_to_numpy(merged)[:, i, j], keras.ops.convert_to_numpy(h), atol=1e-5)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(scores)[:, i, j], keras.ops.convert_to_numpy(s), atol=1e-5)


def brute_force_greedy(layer, leaves, bonus=None):
    """Greedy parse recomputing every pair at every step; ``bonus(span)`` adds loss augmentation."""
    nodes = {i: (leaf, frozenset([i])) for i, leaf in enumerate(leaves)}
    total, merges = 0.0, []
    while len(nodes) > 1:
        best = None
        for i, j in itertools.permutations(nodes, 2):
            h, s, r = layer(nodes[i][0][None], nodes[j][0][None])
            span = nodes[i][1] | nodes[j][1]
            value = float(s[0]) + (bonus(span) if bonus else 0.0)
            if best is None or value > best[0]:
                best = (value, i, j, keras.ops.convert_to_numpy(h)[0], span)
        value, i, j, h, span = best
        new = max(nodes) + 1 if max(nodes) + 1 >= len(leaves) else len(leaves)
        new = max(len(leaves), max(nodes) + 1)
        del nodes[i], nodes[j]
        nodes[new] = (h, span)
        total += value
        merges.append((i, j))
    return total, merges


def test_greedy_parse_equals_brute_force(rng):
    layer = RecursiveNetwork(5, 2)
    leaves = rng.normal(size=(6, 5)).astype("float32")
    fast = layer.greedy_parse(leaves)
    _, slow = brute_force_greedy(layer, leaves)
    assert [(i, j) for i, j, _, _ in fast] == slow
    assert all(abs(p.sum() - 1) < 1e-9 for _, _, _, p in fast)


# --- the model -------------------------------------------------------------------------------


def test_gold_and_loss_augmented_scores_match_brute_force(rng):
    model = tiny_model(margin=0.7)
    inputs = batch(["(hold (on person boat) (beside dog sea))", "(on dog boat)", "person"], rng)
    outputs = model(inputs)
    features, logits = model.cnn(inputs["images"])
    leaves, _ = model.embed_entities(features, logits, inputs["entities"])
    leaves = keras.ops.convert_to_numpy(leaves)
    network = model.recursive_network
    for b, count in enumerate([4, 2, 1]):
        gold_tree = inputs["merges"][b]
        gold_spans = {frozenset(np.nonzero(row)[0]) for row, m in zip(inputs["spans"][b], gold_tree) if m[0] >= 0}
        augmented, _ = brute_force_greedy(network, leaves[b, :count], bonus=lambda span: 0.0 if span in gold_spans else 0.7)
        # Gold score by explicit composition.
        nodes = list(leaves[b, :count]) + [None] * 4
        gold = 0.0
        for t, (i, j, _) in enumerate(gold_tree):
            if i < 0:
                continue
            h, s, _ = network(nodes_at(nodes, i, count)[None], nodes_at(nodes, j, count)[None])
            nodes[count + t] = keras.ops.convert_to_numpy(h)[0]
            gold += float(s[0])
        expected = max(augmented - gold, 0.0) if count > 1 else 0.0
        assert float(outputs["structure_loss"][b]) == pytest.approx(expected, abs=1e-4)


def nodes_at(nodes, slot, count, max_objects=4):
    """Gold merges use slots N + t (N = max_objects) for internal nodes."""
    return nodes[slot] if slot < max_objects else nodes[count + slot - max_objects]


def test_fit_learns_relations_and_round_trips(tmp_path, rng):
    model = tiny_model()
    trees = ["(on dog boat)", "(hold person dog)", "(beside (on person boat) sea)"] * 2
    inputs = batch(trees, rng)
    labels = rng.integers(0, len(CLASSES), (len(trees), 32, 32))
    model.compile(keras.optimizers.Adam(1e-2), metrics=[ksp.metrics.MeanIoU(len(CLASSES))])
    history = model.fit(inputs, labels, epochs=30, batch_size=6, verbose=0).history
    assert history["relation_loss"][-1] < 0.5 * history["relation_loss"][0]
    assert {"segmentation_loss", "structure_loss", "mean_iou"} <= set(history)
    model.save(tmp_path / "parser.keras")
    restored = keras.models.load_model(tmp_path / "parser.keras")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(restored(inputs)["structure_loss"]),
        keras.ops.convert_to_numpy(model(inputs)["structure_loss"]),
        atol=1e-5,
    )


def test_weak_supervision_pseudo_labels_use_only_sentence_classes(rng):
    model = tiny_model()
    inputs = batch(["(on dog boat)", "person"], rng)
    logits = keras.ops.convert_to_numpy(model(inputs)["logits"])
    labels = keras.ops.convert_to_numpy(model.pseudo_labels(logits, inputs["entities"]))
    assert set(np.unique(labels[0])) <= {0, 2, 3, 255} and set(np.unique(labels[1])) <= {0, 1, 255}
    model.compile(keras.optimizers.Adam(1e-2))
    history = model.fit(inputs, epochs=2, verbose=0).history  # no pixel labels at all
    assert np.all(np.isfinite(history["loss"]))


def test_model_argument_errors():
    segmenter = ksp.models.get("unet", num_classes=3, base_filters=2, padding="same")
    with pytest.raises(ValueError, match="class_names"):
        CNNRsNN(segmenter, CLASSES, RELATIONS)
    with pytest.raises(TypeError, match="SegmentationModel"):
        CNNRsNN("unet", CLASSES, RELATIONS)
    with pytest.raises(ValueError, match="loss_weights"):
        tiny_model(loss_weights={"segmentaton": 1.0})


# --- the user-facing parser ------------------------------------------------------------------


def test_scene_parser_parses_segments_and_reloads(tmp_path, rng):
    parser = SceneParser(tiny_model(), min_area=0.0)
    image = rng.integers(0, 256, (40, 50, 3)).astype("uint8")
    tree, label_map = parser.parse(image, return_label_map=True)
    validate_tree(tree)
    assert label_map.shape == (40, 50) and label_map.dtype == np.int32
    np.testing.assert_array_equal(parser.segment(image), label_map)
    present = {CLASSES[c] for c in np.unique(label_map) if c != 0}
    leaves = [d for _, d in tree.nodes(data=True) if d["kind"] == "object"]
    assert {d["label"] for d in leaves} == present
    for d in leaves:
        x0, y0, x1, y1 = d["bbox"]
        assert 0 < d["area"] <= (x1 - x0) * (y1 - y0) and 0 <= d["score"] <= 1
    assert all("score" in d for _, d in tree.nodes(data=True) if d["kind"] == "relation")

    parser.save_preset(tmp_path / "preset", command="test")
    again = SceneParser.from_preset(tmp_path / "preset")
    assert to_bracketed(again.parse(image)) == to_bracketed(tree)


def test_scene_parser_input_errors(tmp_path):
    parser = SceneParser(tiny_model())
    with pytest.raises(ValueError, match="RGB"):
        parser.parse(np.zeros((10, 10), "uint8"))
    with pytest.raises(ValueError, match="numbers"):
        parser.parse(np.full((10, 10, 3), "a"))
    with pytest.raises(ValueError, match="Unknown preset"):
        SceneParser.from_preset("no_such_preset")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        SceneParser.from_preset(tmp_path / "empty")


def test_weak_supervision_logs_with_compiled_metrics_that_need_labels(rng):
    model = tiny_model()
    model.compile(keras.optimizers.Adam(1e-2), metrics=[ksp.metrics.MeanIoU(len(CLASSES))])
    history = model.fit(batch(["(on dog boat)"], rng), epochs=1, verbose=0).history
    assert {"loss", "segmentation_loss", "structure_loss"} <= set(history) and "mean_iou" not in history
