"""Tree accuracies: how many nodes of a predicted parse tree the ground truth confirms.

The definitions of the structured scene parsing papers (Lin et al., CVPR 2016, Sec. 5;
Zhang et al., TPAMI 2019) as the survey states them: every node of the prediction roots a
subtree. A leaf is correct when the ground truth has a leaf with the same label; an internal
node is correct when the ground truth has an internal node whose subtree is identical: the
same relation, the first child's subtree identical to the first child's, the second to the
second, recursively. Each ground-truth subtree confirms at most one predicted subtree.
Accuracy is the number of correct nodes over the number of nodes of the prediction.
*Structure* accuracy is the same with every relation label ignored, so it scores the
grouping alone; *relation* accuracy scores grouping and relations together.
"""

from collections import Counter

from keras_sceneparse.structure.tree import OBJECT, children, post_order, validate_tree


def _subtree_keys(tree, with_relations):
    """A canonical, hashable key for the subtree under every node (post-order)."""
    keys = {}
    for node in post_order(tree):
        data = tree.nodes[node]
        if data["kind"] == OBJECT:
            keys[node] = ("object", data["label"])
        else:
            left, right = children(tree, node)
            label = data["label"] if with_relations else None
            keys[node] = ("relation", label, keys[left], keys[right])
    return keys


def _accuracy(pred, gt, with_relations):
    validate_tree(pred)
    validate_tree(gt)
    available = Counter(_subtree_keys(gt, with_relations).values())
    correct = 0
    # Identical subtrees are interchangeable, so matching each predicted subtree to any unused
    # identical ground-truth subtree is an optimal one-to-one matching.
    for key in _subtree_keys(pred, with_relations).values():
        if available[key] > 0:
            available[key] -= 1
            correct += 1
    return correct / pred.number_of_nodes()


def relation_accuracy(pred, gt):
    """Fraction of the nodes of ``pred`` whose subtree, relations included, appears in ``gt``.

    Example:
        >>> from keras_sceneparse.structure import from_bracketed
        >>> gt = from_bracketed("(in_front_of (on dog boat) building)")
        >>> relation_accuracy(from_bracketed("(in_front_of (beside dog boat) building)"), gt)
        0.6
    """
    return _accuracy(pred, gt, with_relations=True)


def structure_accuracy(pred, gt):
    """Like :func:`relation_accuracy` with every relation label ignored (grouping only).

    Example:
        >>> from keras_sceneparse.structure import from_bracketed
        >>> gt = from_bracketed("(in_front_of (on dog boat) building)")
        >>> structure_accuracy(from_bracketed("(in_front_of (beside dog boat) building)"), gt)
        1.0
    """
    return _accuracy(pred, gt, with_relations=False)


def corpus_tree_accuracies(predictions, ground_truths):
    """Corpus means of both accuracies over pairs of trees.

    Pairs whose ground truth is ``None`` (a sentence without a tree) are skipped; a missing
    prediction (``None``) scores 0. Returns ``{"relation_accuracy", "structure_accuracy",
    "num_trees"}`` with the means over the scored pairs (NaN when there are none).
    """
    predictions, ground_truths = list(predictions), list(ground_truths)
    if len(predictions) != len(ground_truths):
        raise ValueError(
            f"Got {len(predictions)} predictions for {len(ground_truths)} ground-truth trees; they must pair up."
        )
    relation, structure = [], []
    for pred, gt in zip(predictions, ground_truths):
        if gt is None:
            continue
        relation.append(0.0 if pred is None else relation_accuracy(pred, gt))
        structure.append(0.0 if pred is None else structure_accuracy(pred, gt))
    count = len(relation)
    mean = (lambda values: sum(values) / count) if count else (lambda values: float("nan"))
    return {"relation_accuracy": mean(relation), "structure_accuracy": mean(structure), "num_trees": count}
