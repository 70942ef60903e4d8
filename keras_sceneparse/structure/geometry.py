"""Geometric scene parsing: region adjacency graphs with surfaces and their pairwise relations.

Peng, Zhang, Liang, Liu and Lin, "Geometric Scene Parsing with Hierarchical LSTM" (IJCAI
2016), label every pixel with a geometric surface (sky, horizontal ground, vertical) and
every pair of adjacent regions with one of four relations: *layering* (one region occludes
the other), *supporting* (one holds the other up), *siding* (side by side) and *affinity*
(parts of the same thing).

A region graph is an undirected ``networkx.Graph``:

- graph attributes ``height``, ``width`` (the image size);
- one node per region, keyed by its id in the region map, with ``surface`` (a name of
  :data:`SURFACES`, the majority over its labelled pixels, or None when it has none),
  ``semantic`` (the majority semantic class, a name when ``semantic_names`` is given, else
  the id; None when no pixel is labelled; absent without a semantic map), ``area`` (pixels),
  ``perimeter`` (pixel edges on its outline, image border included), ``bbox``
  ``[x0, y0, x1, y1]`` and ``centroid`` ``[x, y]``;
- one edge per pair of 4-adjacent regions, with ``boundary``: the number of adjacent pixel
  pairs. :func:`derive_relations` adds ``relation`` (a name of :data:`RELATIONS`) and, for
  the two directed relations, the node in front (``occluder``, layering) or underneath
  (``supporter``, supporting).

Coordinates are continuous pixel coordinates: pixel (row ``r``, column ``c``) covers
``[c, c + 1) x [r, r + 1)``, so ``bbox`` bounds are exclusive on the right and bottom
(``[min col, min row, max col + 1, max row + 1]``, as the parse trees' ``bbox``) and a
pixel's centre is ``(c + 0.5, r + 0.5)``.

Stanford Background (Gould et al., ICCV 2009) has surfaces, semantic classes and region ids
(``layers/``) but no relations; :func:`derive_relation` derives them from the geometry with
the rule documented there and in ``docs/geometry.md``.
"""

import dataclasses
import json
import numbers

import networkx as nx
import numpy as np


RELATIONS = ("layering", "supporting", "siding", "affinity")
SURFACES = ("sky", "horizontal", "vertical")
SKY, HORIZONTAL, VERTICAL = SURFACES
#: The id of unknown pixels in region, surface and semantic maps (the library's ignore id).
UNKNOWN_ID = 255
#: Regions smaller than this (pixels) are dropped: in Stanford Background's 320x240 region
#: maps they are annotation slivers (about 1 region in 10), not surfaces with a relation.
MIN_AREA = 50
#: :func:`derive_relation` calls a region enclosed by another when this fraction of its
#: outline touches it.
ENCLOSURE = 0.5
#: :func:`derive_relation` calls one of two vertical regions side by side nearer when its
#: bottom is lower by more than this fraction of the image height.
BOTTOM_GAP = 0.05
#: Semantic classes of countable things: two regions of such a class are two objects, not
#: parts of one, so they get no affinity. Stanford Background's "foreground" class holds
#: every object (people, cars, buses, cows); its regions (``layers/``) are single objects.
THING_CLASSES = ("foreground",)

@dataclasses.dataclass(frozen=True)
class Contact:
    """How two adjacent regions ``a`` and ``b`` meet, in 4-adjacent pixel pairs.

    Attributes:
        a_above_b: pairs where a pixel of ``a`` lies directly above a pixel of ``b``.
        b_above_a: pairs where a pixel of ``b`` lies directly above a pixel of ``a``.
        side_by_side: pairs in the same row (one pixel left of the other).
    """

    a_above_b: int
    b_above_a: int
    side_by_side: int

    @property
    def boundary(self):
        return self.a_above_b + self.b_above_a + self.side_by_side

    def swapped(self):
        return Contact(self.b_above_a, self.a_above_b, self.side_by_side)


# --- Checks ------------------------------------------------------------------------------


def as_label_map(name, values, shape=None, reference="region_ids"):
    """``values`` as a 2-D int64 array (of ``shape``, that of ``reference``, when given), or a
    ValueError naming ``name``."""
    array = np.asarray(values)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"`{name}` must be a non-empty (H, W) map, got shape {array.shape}.")
    if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise ValueError(f"`{name}` must hold integer ids, got dtype {array.dtype}.")
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"`{name}` has shape {array.shape}; expected {tuple(shape)}, the shape of `{reference}`.")
    return array.astype(np.int64)


def check_ids(name, values, count, unknown_id=UNKNOWN_ID):
    """Raises naming ``name`` when ``values`` holds ids outside ``[0, count)`` other than ``unknown_id``."""
    bad = np.unique(values[((values < 0) | (values >= count)) & (values != unknown_id)])
    if bad.size:
        raise ValueError(
            f"`{name}` holds ids {bad[:5].tolist()} outside [0, {count}) that are not the unknown id {unknown_id}."
        )


def node_positions(nodes, region_ids):
    """``region_ids`` as positions in the sorted ``nodes`` (int64), -1 where the id is no node."""
    nodes = np.asarray(sorted(nodes), np.int64)
    if nodes.size == 0:
        return nodes, np.full(region_ids.shape, -1, np.int64)
    positions = np.clip(np.searchsorted(nodes, region_ids), 0, nodes.size - 1)
    return nodes, np.where(nodes[positions] == region_ids, positions, -1)


def _neighbour_pairs(labels):
    """The 4-adjacent pixel pairs whose labels differ: ``(first, second, vertical)``.

    ``first`` is the label of the upper pixel of a vertical pair and of the left pixel of a
    horizontal pair, ``second`` the other one; ``vertical`` says which kind each pair is.
    """
    upper, lower = labels[:-1, :], labels[1:, :]
    left, right = labels[:, :-1], labels[:, 1:]
    stacked, beside = upper != lower, left != right
    first = np.concatenate([upper[stacked], left[beside]])
    second = np.concatenate([lower[stacked], right[beside]])
    vertical = np.zeros(first.size, bool)
    vertical[: int(stacked.sum())] = True
    return first, second, vertical


def _majority(votes):
    """Row-wise arg-max of a vote matrix, -1 for rows without votes (ties: the lowest index)."""
    winner = np.argmax(votes, axis=1)
    return np.where(votes.sum(axis=1) > 0, winner, -1)


# --- The region graph --------------------------------------------------------------------


def region_graph(region_ids, surfaces, semantics=None, *, semantic_names=None, min_area=MIN_AREA,
                 unknown_id=UNKNOWN_ID):
    """The region adjacency graph of a region map (see the module docstring for its attributes).

    Args:
        region_ids: ``(H, W)`` integer region ids; ``unknown_id`` and negative ids belong to
            no region.
        surfaces: ``(H, W)`` surface ids, indices into :data:`SURFACES` (0 sky,
            1 horizontal, 2 vertical) or ``unknown_id``.
        semantics: optional ``(H, W)`` semantic class ids (``unknown_id`` for unknown).
        semantic_names: optional class names, indexed by the ids of ``semantics``; then the
            nodes' ``semantic`` is a name, else the id.
        min_area: regions with fewer pixels are left out, and their pixels count as
            unknown (so they join no edge).
        unknown_id: the id of unknown pixels in every map.

    Returns:
        A ``networkx.Graph``. Everything is computed with NumPy over whole arrays; the only
        Python loops run over regions and edges.
    """
    ids = as_label_map("region_ids", region_ids)
    surfaces = as_label_map("surfaces", surfaces, ids.shape)
    check_ids("surfaces", surfaces, len(SURFACES), unknown_id)
    if semantic_names is not None:
        semantic_names = [str(name) for name in semantic_names]
    if semantics is not None:
        semantics = as_label_map("semantics", semantics, ids.shape)
        if semantic_names is not None:
            check_ids("semantics", semantics, len(semantic_names), unknown_id)
        else:
            check_ids("semantics", semantics, max(int(semantics.max()) + 1, 1), unknown_id)
    if isinstance(min_area, bool) or not isinstance(min_area, numbers.Integral) or min_area < 1:
        raise ValueError(f"`min_area` must be a positive integer (pixels), got {min_area!r}.")
    height, width = ids.shape

    # Compact labels 0..R-1 for the kept regions, -1 elsewhere.
    in_region = (ids >= 0) & (ids != unknown_id)
    candidates, counts = np.unique(ids[in_region], return_counts=True)
    nodes, labels = node_positions(candidates[counts >= min_area], np.where(in_region, ids, -1))
    count = nodes.size

    inside = labels >= 0
    members = labels[inside]
    rows, cols = np.nonzero(inside)
    area = np.bincount(members, minlength=count)
    row_sum = np.bincount(members, weights=rows, minlength=count)
    col_sum = np.bincount(members, weights=cols, minlength=count)
    x0, y0 = np.full(count, width), np.full(count, height)
    x1, y1 = np.zeros(count, np.int64), np.zeros(count, np.int64)
    np.minimum.at(x0, members, cols)
    np.minimum.at(y0, members, rows)
    np.maximum.at(x1, members, cols + 1)
    np.maximum.at(y1, members, rows + 1)

    surface_of = surfaces[inside]
    known = surface_of != unknown_id
    surface_votes = np.bincount(
        members[known] * len(SURFACES) + surface_of[known], minlength=count * len(SURFACES)
    ).reshape(count, len(SURFACES))
    surface = _majority(surface_votes)
    if semantics is not None:
        semantic_of = semantics[inside]
        known = semantic_of != unknown_id
        classes = max(int(semantic_of[known].max(initial=-1)) + 1, 0 if semantic_names is None else len(semantic_names), 1)
        semantic = _majority(
            np.bincount(members[known] * classes + semantic_of[known], minlength=count * classes).reshape(count, classes)
        )

    # Outline: edges to other labels (unknown included) plus edges on the image border.
    first, second, _ = _neighbour_pairs(labels)
    perimeter = np.bincount(first[first >= 0], minlength=count) + np.bincount(second[second >= 0], minlength=count)
    perimeter += np.bincount(labels[[0, -1], :].ravel() + 1, minlength=count + 1)[1:]
    perimeter += np.bincount(labels[:, [0, -1]].ravel() + 1, minlength=count + 1)[1:]
    both = (first >= 0) & (second >= 0)
    keys, boundary = np.unique(
        np.minimum(first[both], second[both]) * count + np.maximum(first[both], second[both]), return_counts=True
    )

    graph = nx.Graph(height=int(height), width=int(width))
    for index, node in enumerate(nodes.tolist()):
        attributes = {
            "surface": SURFACES[surface[index]] if surface[index] >= 0 else None,
            "area": int(area[index]),
            "perimeter": int(perimeter[index]),
            "bbox": [int(x0[index]), int(y0[index]), int(x1[index]), int(y1[index])],
            "centroid": [float(col_sum[index] / area[index] + 0.5), float(row_sum[index] / area[index] + 0.5)],
        }
        if semantics is not None:
            value = int(semantic[index])
            attributes["semantic"] = None if value < 0 else (value if semantic_names is None else semantic_names[value])
        graph.add_node(node, **attributes)
    for key, pairs in zip(keys.tolist(), boundary.tolist()):
        a, b = divmod(key, count)
        graph.add_edge(int(nodes[a]), int(nodes[b]), boundary=int(pairs))
    return graph


def region_contacts(graph, region_ids, unknown_id=UNKNOWN_ID):
    """``{(u, v): Contact}`` for every edge ``(u, v)`` of ``graph`` (``a`` = ``u``), from ``region_ids``.

    Pixels whose id is no node of ``graph`` (unknown, or dropped by ``min_area``) join no pair.
    """
    ids = as_label_map("region_ids", region_ids)
    expected = (graph.graph.get("height"), graph.graph.get("width"))
    if None not in expected and ids.shape != expected:
        raise ValueError(f"`region_ids` has shape {ids.shape}; the graph was built from a {expected} map.")
    nodes, labels = node_positions(graph.nodes, np.where(ids == unknown_id, -1, ids))
    count = max(nodes.size, 1)
    first, second, vertical = _neighbour_pairs(labels)
    both = (first >= 0) & (second >= 0)
    above = dict(zip(*np.unique(first[both & vertical] * count + second[both & vertical], return_counts=True)))
    low, high = np.minimum(first, second), np.maximum(first, second)
    beside_mask = both & ~vertical
    beside = dict(zip(*np.unique(low[beside_mask] * count + high[beside_mask], return_counts=True)))
    index = {int(node): position for position, node in enumerate(nodes.tolist())}
    contacts = {}
    for u, v in graph.edges:
        a, b = index[u], index[v]
        contacts[(u, v)] = Contact(
            int(above.get(a * count + b, 0)), int(above.get(b * count + a, 0)),
            int(beside.get(min(a, b) * count + max(a, b), 0)),
        )
    return contacts


# --- Relations ---------------------------------------------------------------------------


def derive_relation(a, b, contact, *, height, enclosure=ENCLOSURE, bottom_gap=BOTTOM_GAP,
                    thing_classes=THING_CLASSES):
    """The relation of two adjacent regions, derived from their geometry.

    Args:
        a, b: node attribute dicts of a region graph (``surface``, optional ``semantic``,
            ``perimeter``, ``bbox``).
        contact: their :class:`Contact` (``a`` first).
        height: the image height in pixels.
        enclosure: fraction of a region's outline that must touch the other region for it
            to count as enclosed by it.
        bottom_gap: fraction of ``height`` by which the bottoms of two vertical regions
            side by side must differ for the lower one to count as nearer.
        thing_classes: semantic classes whose regions are separate objects, never affine.

    Returns:
        ``(relation, subject)``: a name of :data:`RELATIONS`, or None when a surface is
        unknown; ``subject`` is 0 (``a``) or 1 (``b``) for the region in front (layering) or
        underneath (supporting), None for siding and affinity.

    The rule, in order (``docs/geometry.md`` says how it was checked on Stanford Background
    and gives the relations it produces there):

    1. the same surface, and the same semantic class when both regions have one (not a
       thing class) -> affinity; two sky regions are always affine;
    2. anything against sky -> layering, the other region in front (it occludes the sky);
    3. vertical against horizontal: supporting, the horizontal region underneath, when the
       vertical region stands on it (at least as many pixel pairs with the vertical pixel
       on top as with the horizontal pixel on top); otherwise the ground shows above the
       vertical region, which stands in front of it -> layering, the vertical one in front;
    4. horizontal against horizontal (different classes) -> siding: both lie in the ground
       plane, next to each other;
    5. vertical against vertical (different classes, or two things): a region enclosed by
       the other (``enclosure`` of its outline touches it) -> layering, the enclosed one in
       front; a boundary mostly stacked (more pairs one above the other than side by side)
       -> layering, the lower region in front; side by side with bottoms more than
       ``bottom_gap * height`` apart -> layering, the one with the lower bottom in front (on
       a ground plane, lower in the image is nearer, Hoiem et al. 2005); otherwise siding.
    """
    surfaces = (a.get("surface"), b.get("surface"))
    if None in surfaces:
        return None, None
    semantics = (a.get("semantic"), b.get("semantic"))
    same_stuff = semantics[0] == semantics[1] and semantics[0] not in thing_classes
    if surfaces[0] == surfaces[1] and (surfaces[0] == SKY or None in semantics or same_stuff):
        return "affinity", None
    if SKY in surfaces:
        return "layering", 1 if surfaces[0] == SKY else 0
    if set(surfaces) == {HORIZONTAL, VERTICAL}:
        vertical_is_a = surfaces[0] == VERTICAL
        on_top = contact.a_above_b if vertical_is_a else contact.b_above_a
        underneath = contact.b_above_a if vertical_is_a else contact.a_above_b
        if on_top >= underneath:
            return "supporting", 1 if vertical_is_a else 0
        return "layering", 0 if vertical_is_a else 1
    if surfaces == (HORIZONTAL, HORIZONTAL):
        return "siding", None
    # Both vertical.
    enclosed = [contact.boundary / max(node.get("perimeter", 0), 1) for node in (a, b)]
    if max(enclosed) >= enclosure:
        return "layering", int(np.argmax(enclosed))
    if contact.a_above_b + contact.b_above_a > contact.side_by_side:
        return "layering", 0 if contact.b_above_a > contact.a_above_b else 1
    bottoms = (a["bbox"][3], b["bbox"][3])
    if abs(bottoms[0] - bottoms[1]) > bottom_gap * height:
        return "layering", int(np.argmax(bottoms))
    return "siding", None


def derive_relations(graph, region_ids, *, unknown_id=UNKNOWN_ID, enclosure=ENCLOSURE, bottom_gap=BOTTOM_GAP,
                     thing_classes=THING_CLASSES):
    """Sets ``relation`` (and ``occluder`` / ``supporter``) on every edge of ``graph`` with
    :func:`derive_relation`; returns ``graph``.

    ``region_ids`` is the map the graph was built from. Edges with an unknown surface get
    ``relation=None``.
    """
    height = graph.graph.get("height") or as_label_map("region_ids", region_ids).shape[0]
    for (u, v), contact in region_contacts(graph, region_ids, unknown_id).items():
        relation, subject = derive_relation(
            graph.nodes[u], graph.nodes[v], contact, height=height, enclosure=enclosure, bottom_gap=bottom_gap,
            thing_classes=thing_classes,
        )
        data = graph.edges[u, v]
        data.pop("occluder", None)
        data.pop("supporter", None)
        data["relation"] = relation
        if subject is not None:
            data["occluder" if relation == "layering" else "supporter"] = (u, v)[subject]
    return graph


def relation_counts(graph):
    """``{relation: edges}`` over :data:`RELATIONS` (and None when some relation is unknown)."""
    counts = dict.fromkeys(RELATIONS, 0)
    for _, _, relation in graph.edges(data="relation"):
        counts[relation] = counts.get(relation, 0) + 1
    return counts


# --- Serialisation -----------------------------------------------------------------------


def region_graph_to_json(graph):
    """``networkx.node_link_data`` of a region graph (a JSON-serialisable dict), as for parse trees."""
    return nx.node_link_data(graph, edges="edges")


def region_graph_from_json(data):
    """The region graph back from :func:`region_graph_to_json` output (a dict or a JSON string)."""
    if isinstance(data, (str, bytes)):
        data = json.loads(data)
    if not isinstance(data, dict) or data.get("directed") or data.get("multigraph"):
        raise ValueError("`data` must be the node-link dict of an undirected region graph (region_graph_to_json).")
    return nx.node_link_graph(data, directed=False, multigraph=False, edges="edges")
