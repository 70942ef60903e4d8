"""Structured scene parsing: parse trees as networkx graphs, their metrics and drawings.

See :mod:`keras_sceneparse.structure.tree` for the tree contract.
"""

from keras_sceneparse.structure.cnn_rsnn import CNNRsNN
from keras_sceneparse.structure.encoding import decode_merges, encode_tree
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
from keras_sceneparse.structure.scene_parser import SceneParser, list_presets

__all__ = [
    "CNNRsNN",
    "OBJECT",
    "RELATION",
    "children",
    "SceneParser",
    "corpus_tree_accuracies",
    "decode_merges",
    "encode_tree",
    "from_bracketed",
    "from_json",
    "leaves",
    "list_presets",
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
