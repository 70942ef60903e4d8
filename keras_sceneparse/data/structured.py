"""Images, label maps and the parse trees of their sentences, batched for the CNN-RsNN."""

import collections

import numpy as np

from keras_sceneparse.structure.encoding import encode_tree
from keras_sceneparse.structure.tree import leaves


def sentence_trees(dataset, split, caption_parser):
    """The tree of each image's first parsable sentence, in ``dataset.files(split)`` order.

    Returns ``(trees, statistics)``: ``None`` where no sentence gives a tree, and counts of
    images, complete parses, partial parses and images without a tree.
    """
    statistics = collections.Counter()
    trees = []
    for sentences in dataset.sentences(split).values():
        tree = None
        for sentence in sentences:
            analysis = caption_parser.analyse(sentence)
            if analysis.tree is not None:
                tree = analysis.tree
                statistics["complete" if analysis.complete else "partial"] += 1
                break
        if tree is None:
            statistics["without_tree"] += 1
        statistics["images"] += 1
        trees.append(tree)
    return trees, dict(statistics)


def encode_trees(trees, class_names, relation_names, max_objects):
    """Stacked :func:`~keras_sceneparse.structure.encode_tree` arrays for a list of trees.

    A missing tree (``None``) or one with more than ``max_objects`` leaves contributes only
    padding (its image then trains the segmentation alone). Returns ``(extras, dropped)``
    where ``dropped`` counts the trees left out for size.
    """
    n = max_objects
    extras = {
        "entities": np.full((len(trees), n), -1, np.int32),
        "merges": np.full((len(trees), max(n - 1, 0), 3), -1, np.int32),
        "spans": np.zeros((len(trees), max(n - 1, 0), n), np.float32),
    }
    dropped = 0
    for index, tree in enumerate(trees):
        if tree is None:
            continue
        if len(leaves(tree)) > n:
            dropped += 1
            continue
        for key, value in encode_tree(tree, class_names, relation_names, n).items():
            extras[key][index] = value
    return extras, dropped


def structured_dataset(dataset, split, caption_parser, relation_names, max_objects, **dataset_kwargs):
    """``dataset.dataset(split, **dataset_kwargs)`` with each image's encoded sentence tree.

    Yields ``({"images", "entities", "merges", "spans"}, labels)``, the inputs of
    :class:`~keras_sceneparse.structure.CNNRsNN`. ``dataset`` must offer ``sentences(split)``
    (e.g. :class:`~keras_sceneparse.data.SYSUScenes`). Returns ``(tf.data.Dataset,
    statistics)``.
    """
    trees, statistics = sentence_trees(dataset, split, caption_parser)
    extras, dropped = encode_trees(trees, dataset.class_names, relation_names, max_objects)
    statistics["dropped_for_size"] = dropped
    return dataset.dataset(split, extras=extras, **dataset_kwargs), statistics
