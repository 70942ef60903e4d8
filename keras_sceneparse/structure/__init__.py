"""Structured scene parsing: parse trees as networkx graphs, their metrics and drawings.

See :mod:`keras_sceneparse.structure.tree` for the tree contract.
"""

from keras_sceneparse.structure.cnn_rsnn import CNNRsNN
from keras_sceneparse.structure.encoding import decode_merges, encode_tree
from keras_sceneparse.structure.geometry import (
    RELATIONS,
    SURFACES,
    derive_relations,
    region_graph,
    region_graph_from_json,
    region_graph_to_json,
)
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
from keras_sceneparse.structure.geometric_parser import GeometricParser
from keras_sceneparse.structure.h_lstm import HLSTM
from keras_sceneparse.structure.popup import estimate_horizon, popup_mesh, write_obj, write_ply
from keras_sceneparse.structure.scene_parser import SceneParser, list_presets
from keras_sceneparse.structure.superpixels import multiscale_superpixels, pad_graphs, region_adjacency, superpixels

__all__ = [
    "CNNRsNN",
    "GeometricParser",
    "HLSTM",
    "OBJECT",
    "RELATIONS",
    "SURFACES",
    "RELATION",
    "children",
    "SceneParser",
    "corpus_tree_accuracies",
    "decode_merges",
    "derive_relations",
    "encode_tree",
    "estimate_horizon",
    "from_bracketed",
    "from_json",
    "leaves",
    "list_presets",
    "multiscale_superpixels",
    "pad_graphs",
    "popup_mesh",
    "region_adjacency",
    "region_graph",
    "region_graph_from_json",
    "region_graph_to_json",
    "object_tree",
    "post_order",
    "relation_accuracy",
    "relation_tree",
    "relations",
    "structure_accuracy",
    "superpixels",
    "to_bracketed",
    "to_json",
    "validate_tree",
    "write_obj",
    "write_ply",
]
