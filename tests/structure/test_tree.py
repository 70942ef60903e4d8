import json

import networkx as nx
import numpy as np
import pytest

from keras_sceneparse import structure
from keras_sceneparse.structure import from_bracketed, object_tree, relation_tree, to_bracketed
from keras_sceneparse.viz import draw_tree

EXAMPLE = "(in_front_of (on dog boat) building)"


def test_relation_tree_follows_the_contract():
    tree = relation_tree("in front of", relation_tree("on", object_tree("dog"), object_tree("boat")), object_tree("building"))
    structure.validate_tree(tree)
    assert isinstance(tree, nx.DiGraph)
    root = tree.graph["root"]
    assert tree.nodes[root] == {"kind": "relation", "label": "in front of"}
    subject, object_ = structure.children(tree, root)
    assert tree.edges[root, subject]["position"] == 0 and tree.edges[root, object_]["position"] == 1
    assert tree.nodes[object_]["label"] == "building" and tree.nodes[object_]["kind"] == "object"
    assert sorted(tree.nodes) == list(range(5)) and structure.post_order(tree) == [0, 1, 2, 3, 4]
    assert structure.leaves(tree) == ["dog", "boat", "building"]
    assert structure.relations(tree) == [("on", ["dog"], ["boat"]), ("in front of", ["dog", "boat"], ["building"])]
    assert to_bracketed(tree) == EXAMPLE


def test_bracketed_and_json_round_trips():
    tree = from_bracketed("(ride (hold person umbrella) (on bicycle street/road))")
    tree.nodes[0]["score"] = 0.5
    tree.nodes[0]["bbox"] = [1, 2, 30, 40]
    assert to_bracketed(from_bracketed(to_bracketed(tree))) == to_bracketed(tree)
    data = json.loads(json.dumps(structure.to_json(tree)))
    restored = structure.from_json(data)
    assert nx.utils.graphs_equal(restored, tree) and restored.graph["root"] == tree.graph["root"]
    # The contract's promise: plain networkx calls work too.
    plain = nx.node_link_graph(nx.node_link_data(tree, edges="edges"), edges="edges")
    assert plain.nodes[0]["bbox"] == [1, 2, 30, 40]
    assert to_bracketed(structure.from_json(json.dumps(data))) == to_bracketed(tree)


@pytest.mark.parametrize("text", ["(on dog)", "(on dog boat cat)", "on dog boat)", "(on dog boat", "()", ""])
def test_malformed_bracketed_trees_raise(text):
    with pytest.raises(ValueError):
        from_bracketed(text)


def test_validate_tree_names_the_violation():
    tree = from_bracketed(EXAMPLE)
    broken = tree.copy()
    broken.nodes[0]["kind"] = "thing"
    with pytest.raises(ValueError, match="kind"):
        structure.validate_tree(broken)
    broken = tree.copy()
    broken.edges[4, 3]["position"] = 0
    with pytest.raises(ValueError, match="positions 0 and 1"):
        structure.validate_tree(broken)
    broken = tree.copy()
    broken.graph["root"] = 99
    with pytest.raises(ValueError, match="root"):
        structure.validate_tree(broken)
    broken = tree.copy()
    broken.add_edge(0, 3, position=0)
    with pytest.raises(ValueError):
        structure.validate_tree(broken)
    with pytest.raises(ValueError, match="DiGraph"):
        structure.validate_tree(nx.Graph())


def test_accuracies_on_hand_computed_examples():
    gt = from_bracketed(EXAMPLE)
    assert structure.relation_accuracy(gt, gt) == 1.0 == structure.structure_accuracy(gt, gt)
    wrong_inner = from_bracketed("(in_front_of (beside dog boat) building)")
    # Leaves dog, boat, building correct; (beside dog boat) wrong; the root's subtree differs.
    assert structure.relation_accuracy(wrong_inner, gt) == pytest.approx(3 / 5)
    assert structure.structure_accuracy(wrong_inner, gt) == 1.0
    regrouped = from_bracketed("(on dog (in_front_of boat building))")
    assert structure.relation_accuracy(regrouped, gt) == pytest.approx(3 / 5)
    assert structure.structure_accuracy(regrouped, gt) == pytest.approx(3 / 5)
    swapped = from_bracketed("(in_front_of (on boat dog) building)")  # order matters: subject first
    assert structure.relation_accuracy(swapped, gt) == pytest.approx(3 / 5)


def test_each_ground_truth_subtree_matches_once():
    gt = from_bracketed("(on dog boat)")
    pred = from_bracketed("(near (on dog boat) (on dog boat))")
    # 7 predicted nodes; gt has one 'dog', one 'boat', one '(on dog boat)'.
    assert structure.relation_accuracy(pred, gt) == pytest.approx(3 / 7)
    assert structure.relation_accuracy(object_tree("cat"), gt) == 0.0
    assert structure.relation_accuracy(object_tree("dog"), gt) == 1.0


def test_corpus_means_count_missing_predictions_as_zero():
    gt = from_bracketed(EXAMPLE)
    result = structure.corpus_tree_accuracies([gt, None, gt], [gt, gt, None])
    assert result == {"relation_accuracy": 0.5, "structure_accuracy": 0.5, "num_trees": 2}
    with pytest.raises(ValueError, match="pair up"):
        structure.corpus_tree_accuracies([gt], [])
    assert np.isnan(structure.corpus_tree_accuracies([], [])["relation_accuracy"])


def test_draw_tree_renders_every_label(tmp_path):
    tree = from_bracketed("(ride (hold person umbrella) (on bicycle street/road))")
    image = draw_tree(tree, tmp_path / "tree.png")
    assert (tmp_path / "tree.png").stat().st_size > 0
    assert image.size[0] >= 4 * 100 and image.size[1] >= 3 * 60
    pixels = np.asarray(image)
    assert (pixels < 128).any()  # text and edges were drawn
