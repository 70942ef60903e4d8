"""Parse trees as fixed-size arrays, so that images with different numbers of objects batch together.

A tree over at most ``max_objects`` leaves becomes (``N = max_objects``):

- ``entities``: int32 ``(N,)``, the class id of each leaf (left to right), -1 for padding;
- ``merges``: int32 ``(N - 1, 3)``, one row per internal node in post-order:
  ``(subject slot, object slot, relation id)``, -1 for padding. Slots ``0 .. N-1`` are the
  leaves; internal node ``t`` occupies slot ``N + t``;
- ``spans``: float32 ``(N - 1, N)``, which leaves each internal node covers (1/0), the
  ground truth of the structured margin of :class:`~keras_sceneparse.structure.CNNRsNN`.
"""

import numpy as np

from keras_sceneparse.structure.tree import OBJECT, children, object_tree, post_order, relation_tree, validate_tree


def encode_tree(tree, class_names, relation_names, max_objects):
    """Arrays of :mod:`this module <keras_sceneparse.structure.encoding>` for ``tree``.

    Raises ``ValueError`` for a leaf or relation label outside the given vocabularies or a
    tree with more than ``max_objects`` leaves.
    """
    validate_tree(tree)
    class_index = {name: i for i, name in enumerate(class_names)}
    relation_index = {name: i for i, name in enumerate(relation_names)}
    n = max_objects
    entities = np.full((n,), -1, np.int32)
    merges = np.full((max(n - 1, 0), 3), -1, np.int32)
    spans = np.zeros((max(n - 1, 0), n), np.float32)
    slots, covered = {}, {}
    leaf_count = internal_count = 0
    for node in post_order(tree):
        data = tree.nodes[node]
        if data["kind"] == OBJECT:
            if data["label"] not in class_index:
                raise ValueError(f"Leaf label {data['label']!r} is not one of the classes {list(class_names)}.")
            if leaf_count >= n:
                raise ValueError(f"The tree has more than max_objects={n} leaves.")
            entities[leaf_count] = class_index[data["label"]]
            slots[node], covered[node] = leaf_count, {leaf_count}
            leaf_count += 1
        else:
            if data["label"] not in relation_index:
                raise ValueError(f"Relation {data['label']!r} is not one of the relations {list(relation_names)}.")
            left, right = children(tree, node)
            merges[internal_count] = (slots[left], slots[right], relation_index[data["label"]])
            covered[node] = covered[left] | covered[right]
            spans[internal_count, sorted(covered[node])] = 1.0
            slots[node] = n + internal_count
            internal_count += 1
    return {"entities": entities, "merges": merges, "spans": spans}


def decode_merges(entities, merges, class_names, relation_names, leaf_attributes=None, merge_attributes=None):
    """The tree that :func:`encode_tree` arrays (or a parser's merges) describe.

    ``entities`` lists leaf class ids (-1 padding ignored); ``merges`` rows
    ``(subject slot, object slot, relation id)`` refer to slots ``0 .. N-1`` for leaves and
    ``N + t`` for merge ``t`` with ``N = len(entities)``. Optional ``leaf_attributes`` (one
    dict per entity) and ``merge_attributes`` (one dict per merge, e.g. its ``score``) are
    set on the corresponding nodes. Returns ``None`` when there is no leaf.
    """
    entities = [int(e) for e in entities]
    n = len(entities)
    trees = {
        slot: object_tree(class_names[c], **(leaf_attributes[slot] if leaf_attributes else {}))
        for slot, c in enumerate(entities)
        if c >= 0
    }
    last = None
    for t, (subject, object_, relation) in enumerate(np.asarray(merges, int).reshape(-1, 3)):
        if subject < 0:
            continue
        attributes = merge_attributes[t] if merge_attributes else {}
        trees[n + t] = relation_tree(relation_names[relation], trees.pop(subject), trees.pop(object_), **attributes)
        last = n + t
    if not trees:
        return None
    if len(trees) != 1:
        raise ValueError(f"The merges leave {len(trees)} separate trees; a parse tree has one root.")
    return trees[last] if last is not None else next(iter(trees.values()))
