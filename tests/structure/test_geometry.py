import json
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from PIL import Image

from keras_sceneparse.structure import geometry
from keras_sceneparse.structure.geometry import (
    RELATIONS,
    SURFACES,
    Contact,
    derive_relation,
    derive_relations,
    region_contacts,
    region_graph,
    region_graph_from_json,
    region_graph_to_json,
)
from keras_sceneparse.viz import draw_region_graph
from keras_sceneparse.viz.region_graph import SURFACE_COLORS

REAL_STANFORD = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "stanford_background"
STANFORD_SEMANTICS = ["sky", "tree", "road", "grass", "water", "building", "mountain", "foreground"]
SKY, HORIZONTAL, VERTICAL = 0, 1, 2


def three_regions():
    """A 6x8 scene: sky (id 1) on rows 0-1, a building (id 2) on rows 2-3, columns 0-4, and
    the road (id 3) on rows 4-5 and on rows 2-3, columns 5-7."""
    ids = np.full((6, 8), 3)
    ids[:2] = 1
    ids[2:4, :5] = 2
    surfaces = np.choose(ids - 1, [SKY, VERTICAL, HORIZONTAL])
    semantics = np.choose(ids - 1, [0, 5, 2])  # sky, building, road
    return ids, surfaces, semantics


def test_region_graph_attributes_by_hand():
    ids, surfaces, semantics = three_regions()
    graph = region_graph(ids, surfaces, semantics, semantic_names=STANFORD_SEMANTICS, min_area=1)
    assert graph.graph == {"height": 6, "width": 8}
    assert sorted(graph.nodes) == [1, 2, 3]
    nodes = graph.nodes
    assert [nodes[n]["surface"] for n in (1, 2, 3)] == ["sky", "vertical", "horizontal"]
    assert [nodes[n]["semantic"] for n in (1, 2, 3)] == ["sky", "building", "road"]
    assert [nodes[n]["area"] for n in (1, 2, 3)] == [16, 10, 22]
    assert [nodes[n]["bbox"] for n in (1, 2, 3)] == [[0, 0, 8, 2], [0, 2, 5, 4], [0, 2, 8, 6]]
    # Centroids of pixel centres: the road has 16 pixels on rows 4-5 (mean column 3.5, row 4.5)
    # and 6 on rows 2-3, columns 5-7 (mean column 6, row 2.5).
    np.testing.assert_allclose(nodes[1]["centroid"], [4.0, 1.0])
    np.testing.assert_allclose(nodes[2]["centroid"], [2.5, 3.0])
    np.testing.assert_allclose(nodes[3]["centroid"], [(16 * 3.5 + 6 * 6) / 22 + 0.5, (16 * 4.5 + 6 * 2.5) / 22 + 0.5])
    # Outlines: neighbours plus image border (sky: 8 below + 8 top + 2 + 2; building: 5 + 5 + 2
    # + 2 on the left; road: 3 + 7 + 8 bottom + 2 left + 4 right).
    assert [nodes[n]["perimeter"] for n in (1, 2, 3)] == [20, 14, 24]
    assert sorted(graph.edges) == [(1, 2), (1, 3), (2, 3)]
    assert [graph.edges[e]["boundary"] for e in [(1, 2), (1, 3), (2, 3)]] == [5, 3, 7]
    contacts = region_contacts(graph, ids)
    assert contacts[(2, 3)] == Contact(a_above_b=5, b_above_a=0, side_by_side=2)
    assert contacts[(1, 2)] == Contact(5, 0, 0) and contacts[(1, 3)] == Contact(3, 0, 0)


def test_small_and_unknown_regions_are_left_out():
    ids, surfaces, _ = three_regions()
    ids[4, 2] = 7  # a one-pixel region inside the road
    ids[5, 7] = 255  # unknown
    surfaces[0, :3] = 255  # unknown surface inside the sky: the majority stays sky
    graph = region_graph(ids, surfaces, min_area=2)
    assert sorted(graph.nodes) == [1, 2, 3] and "semantic" not in graph.nodes[1]
    assert graph.nodes[3]["area"] == 20 and graph.nodes[1]["surface"] == "sky"
    assert graph.edges[2, 3]["boundary"] == 6  # the building's pixel above (4, 2) now meets no region
    # The dropped pixel gives 3 road sides and takes the one it shared with the building (which
    # was on the road's outline); (5, 7) trades 2 border sides for 2 inner ones.
    assert graph.nodes[3]["perimeter"] == 24 + 3 - 1
    graph = region_graph(ids, surfaces, min_area=1)
    assert graph.nodes[7]["area"] == 1 and sorted(graph[7]) == [2, 3]
    ids[:] = 255
    assert region_graph(ids, surfaces).number_of_nodes() == 0


def test_region_graph_errors():
    ids, surfaces, semantics = three_regions()
    with pytest.raises(ValueError, match=r"`surfaces` has shape \(5, 8\); expected \(6, 8\)"):
        region_graph(ids, surfaces[:5])
    surfaces[0, 0] = 3
    with pytest.raises(ValueError, match=r"`surfaces` holds ids \[3\] outside \[0, 3\)"):
        region_graph(ids, surfaces)
    surfaces[0, 0] = SKY
    with pytest.raises(ValueError, match=r"`semantics` holds ids \[2, 5\] outside \[0, 2\)"):
        region_graph(ids, surfaces, semantics, semantic_names=["sky", "tree"])
    with pytest.raises(ValueError, match="min_area"):
        region_graph(ids, surfaces, min_area=0)
    with pytest.raises(ValueError, match="region_ids"):
        region_graph(np.zeros((2, 2, 3)), surfaces)


def node(surface, semantic=None, perimeter=100, bottom=50):
    attributes = {"surface": surface, "perimeter": perimeter, "bbox": [0, 0, 10, bottom]}
    if semantic is not None:
        attributes["semantic"] = semantic
    return attributes


SIDE = Contact(0, 0, 10)


@pytest.mark.parametrize(
    "a, b, contact, expected",
    [
        # 1. same surface and class: affinity; without semantics the surface decides.
        (node("vertical", "building"), node("vertical", "building"), SIDE, ("affinity", None)),
        (node("horizontal"), node("horizontal"), SIDE, ("affinity", None)),
        # ... but two regions of a thing class are two objects, and a class split over two
        # surfaces (labels that disagree) is no affinity either.
        (node("vertical", "foreground"), node("vertical", "foreground"), SIDE, ("siding", None)),
        (node("vertical", "road"), node("horizontal", "road"), Contact(6, 0, 0), ("supporting", 1)),
        # 2. sky: affinity with sky, occluded by anything else.
        (node("sky", "sky"), node("sky", "tree"), SIDE, ("affinity", None)),
        (node("sky"), node("vertical"), Contact(9, 0, 1), ("layering", 1)),
        (node("horizontal", "water"), node("sky", "sky"), Contact(0, 9, 0), ("layering", 0)),
        # 3. vertical on horizontal: supported; ground above a vertical region: occluded by it.
        (node("vertical", "tree"), node("horizontal", "grass"), Contact(8, 3, 4), ("supporting", 1)),
        (node("horizontal", "grass"), node("vertical", "tree"), Contact(3, 8, 4), ("supporting", 0)),
        (node("vertical", "tree"), node("horizontal", "grass"), Contact(3, 3, 0), ("supporting", 1)),
        (node("vertical", "tree"), node("horizontal", "grass"), Contact(2, 8, 4), ("layering", 0)),
        # 4. different ground classes side by side.
        (node("horizontal", "road"), node("horizontal", "grass"), Contact(5, 0, 5), ("siding", None)),
        # 5. vertical against vertical: enclosed, stacked, or side by side.
        (node("vertical", "tree", perimeter=20), node("vertical", "building"), Contact(4, 3, 3), ("layering", 0)),
        (node("vertical", "tree"), node("vertical", "building", perimeter=18), Contact(4, 1, 4), ("layering", 1)),
        (node("vertical", "building"), node("vertical", "foreground"), Contact(8, 1, 2), ("layering", 1)),
        (node("vertical", "building"), node("vertical", "foreground"), Contact(1, 8, 2), ("layering", 0)),
        (node("vertical", "building", bottom=100), node("vertical", "mountain", bottom=96), Contact(1, 1, 8),
         ("siding", None)),
        (node("vertical", "building", bottom=70), node("vertical", "tree", bottom=96), Contact(1, 1, 8),
         ("layering", 1)),
        # Unknown surface: no relation.
        (node(None, "tree"), node("vertical", "tree"), SIDE, (None, None)),
    ],
)
def test_relation_rule(a, b, contact, expected):
    # height 200: bottoms further apart than 5% of it (10 pixels) tell the nearer region.
    assert derive_relation(a, b, contact, height=200) == expected
    relation, subject = expected
    swapped = None if subject is None else 1 - subject
    assert derive_relation(b, a, contact.swapped(), height=200) == (relation, swapped)


def scene_with_person():
    """``three_regions`` made 12x16 with a person (id 4, foreground) standing on the road."""
    ids, surfaces, semantics = (np.kron(array, np.ones((2, 2), int)) for array in three_regions())
    ids[5:10, 9:11] = 4  # rows 5-9, columns 9-10: beside the building and on the road
    surfaces[5:10, 9:11] = VERTICAL
    semantics[5:10, 9:11] = 7
    return ids, surfaces, semantics


def test_derive_relations_sets_relations_and_directions():
    ids, surfaces, semantics = scene_with_person()
    graph = region_graph(ids, surfaces, semantics, semantic_names=STANFORD_SEMANTICS, min_area=1)
    assert derive_relations(graph, ids) is graph
    relations = {edge: graph.edges[edge]["relation"] for edge in graph.edges}
    assert relations == {
        (1, 2): "layering", (1, 3): "layering", (2, 3): "supporting", (3, 4): "supporting", (2, 4): "layering"
    }
    assert graph.edges[1, 2]["occluder"] == 2 and graph.edges[1, 3]["occluder"] == 3
    assert graph.edges[2, 3]["supporter"] == 3 and graph.edges[3, 4]["supporter"] == 3
    # The person's head rises into the building's rows, beside it: its bottom is lower, so it is in front.
    assert graph.edges[2, 4]["occluder"] == 4 and "supporter" not in graph.edges[2, 4]
    assert geometry.relation_counts(graph) == {"layering": 3, "supporting": 2, "siding": 0, "affinity": 0}
    with pytest.raises(ValueError, match=r"`region_ids` has shape \(6, 8\); the graph was built from a \(12, 16\)"):
        derive_relations(graph, ids[:6, :8])


def test_json_round_trip():
    ids, surfaces, semantics = scene_with_person()
    graph = derive_relations(region_graph(ids, surfaces, semantics, semantic_names=STANFORD_SEMANTICS, min_area=1), ids)
    text = json.dumps(region_graph_to_json(graph))
    for data in (json.loads(text), text):
        restored = region_graph_from_json(data)
        assert nx.utils.graphs_equal(restored, graph)
        assert restored.graph == graph.graph and restored.nodes[3]["bbox"] == graph.nodes[3]["bbox"]
    assert nx.node_link_graph(json.loads(text), edges="edges").edges[2, 3]["supporter"] == 3
    with pytest.raises(ValueError, match="undirected region graph"):
        region_graph_from_json({"directed": True, "multigraph": False, "graph": {}, "nodes": [], "edges": []})


def test_drawing(tmp_path):
    ids, surfaces, semantics = scene_with_person()
    graph = derive_relations(region_graph(ids, surfaces, semantics, min_area=1), ids)
    image = np.full((*ids.shape, 3), 200, np.uint8)
    picture = draw_region_graph(image, ids, graph, tmp_path / "graph.png", scale=3, legend=False)
    assert isinstance(picture, Image.Image) and picture.size == (16 * 3, 12 * 3)
    with Image.open(tmp_path / "graph.png") as saved:
        assert saved.size == picture.size and saved.mode == "RGB"
    pixels = np.asarray(picture)
    x, y = (int(value * 3) for value in graph.nodes[3]["centroid"])
    assert tuple(pixels[y, x]) == SURFACE_COLORS["horizontal"]  # the road's dot
    assert not np.array_equal(np.asarray(draw_region_graph(image, ids, graph, scale=3)), pixels)  # with a legend
    with pytest.raises(ValueError, match=r"`region_ids` has shape \(12, 16\); expected \(5, 16\), the shape of `image`"):
        draw_region_graph(image[:5], ids, graph)


def test_constants():
    assert RELATIONS == ("layering", "supporting", "siding", "affinity")
    assert SURFACES == ("sky", "horizontal", "vertical")


@pytest.mark.slow
@pytest.mark.skipif(not REAL_STANFORD.is_dir(), reason="the real Stanford Background copy is not available")
def test_real_stanford_background_graphs():
    stems = (REAL_STANFORD / "splits" / "train.txt").read_text().split()[:5]
    for stem in stems:
        ids, surfaces, semantics = (
            np.asarray(Image.open(REAL_STANFORD / folder / f"{stem}.png")) for folder in ("layers", "surfaces", "regions")
        )
        graph = derive_relations(region_graph(ids, surfaces, semantics, semantic_names=STANFORD_SEMANTICS), ids)
        assert graph.number_of_nodes() >= 3 and graph.number_of_edges() >= 2
        kept = np.isin(ids, list(graph.nodes))
        assert sum(area for _, area in graph.nodes(data="area")) == kept.sum()
        # Every 4-adjacent pair of pixels in two different kept regions is on exactly one edge.
        labels = np.where(kept, ids, -1)
        pairs = sum(
            int(((first != second) & (first >= 0) & (second >= 0)).sum())
            for first, second in ((labels[:-1], labels[1:]), (labels[:, :-1], labels[:, 1:]))
        )
        assert sum(boundary for _, _, boundary in graph.edges(data="boundary")) == pairs
        for u, v, data in graph.edges(data=True):
            assert data["relation"] in RELATIONS
            if data["relation"] == "supporting":
                assert graph.nodes[data["supporter"]]["surface"] == "horizontal"
            if "sky" in (graph.nodes[u]["surface"], graph.nodes[v]["surface"]):
                assert data["relation"] in ("layering", "affinity")
        assert nx.utils.graphs_equal(region_graph_from_json(json.dumps(region_graph_to_json(graph))), graph)
