"""Structured scene parsing: parse trees as networkx graphs, their metrics and drawings.

See :mod:`keras_sceneparse.structure.tree` for the tree contract.
"""

from keras_sceneparse.structure.metrics import corpus_tree_accuracies, relation_accuracy, structure_accuracy
from keras_sceneparse.structure.tree import (
    OBJECT,
    RELATION,
    children,
    from_bracketed,
    from_json,
    leaves,
    object_tree,
    post_order,
    relation_tree,
    relations,
    to_bracketed,
    to_json,
    validate_tree,
)

__all__ = [
    "OBJECT",
    "RELATION",
    "children",
    "corpus_tree_accuracies",
    "from_bracketed",
    "from_json",
    "leaves",
    "object_tree",
    "post_order",
    "relation_accuracy",
    "relation_tree",
    "relations",
    "structure_accuracy",
    "to_bracketed",
    "to_json",
    "validate_tree",
]
