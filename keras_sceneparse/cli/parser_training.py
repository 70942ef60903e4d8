"""Training and evaluating the CNN-RsNN scene parser on SYSU-Scenes (shared by the commands).

The recipe behind the shipped ``sysu_scenes`` preset: the SYSU-Scenes images with their
label maps (full supervision) or without them (``supervision="weak"``: the sentence's classes
are the only labels, the pixel labels latent, see :class:`~keras_sceneparse.structure.CNNRsNN`),
and the trees that :class:`~keras_sceneparse.text.CaptionParser` reads from the sentences.
"""

import collections
import math
import time

import keras
import numpy as np

from keras_sceneparse import metrics, models
from keras_sceneparse.structure import (
    CNNRsNN,
    corpus_tree_accuracies,
    leaves,
    object_tree,
    relation_tree,
)
from keras_sceneparse.structure.tree import relations as tree_relations

#: The segmentation CNN of the shipped preset: small enough to ship (a few MB) and to train
#: on CPU. The papers use DeepLab-LargeFOV (``--segmenter deeplab_largefov``), 20.5M weights.
DEFAULT_SEGMENTER = "deeplabv3plus"
DEFAULT_SEGMENTER_ARGS = {
    "backbone": "mobilenet_v2",
    "backbone_kwargs": {"alpha": 0.5},
    "aspp_filters": 96,
    "low_level_filters": 24,
    "decoder_filters": 96,
}


def build_scene_parser_model(class_names, relation_names, segmenter=DEFAULT_SEGMENTER, segmenter_args=None,
                             max_objects=6, embedding_dim=128, **kwargs):
    if segmenter_args is None:
        segmenter_args = DEFAULT_SEGMENTER_ARGS if segmenter == DEFAULT_SEGMENTER else {}
    cnn = models.get(segmenter, num_classes=len(class_names), **segmenter_args)
    return CNNRsNN(cnn, class_names, relation_names, max_objects=max_objects, embedding_dim=embedding_dim, **kwargs)


def train_scene_parser(model, dataset, caption_parser, supervision="full", epochs=10, batch_size=8,
                       crop_size=(224, 224), learning_rate=1e-3, seed=0, limit=None, verbose=1, callbacks=()):
    """Fits ``model`` on the training split of ``dataset`` (e.g. ``ksp.data.SYSUScenes``).

    Returns ``(history, statistics)``: the Keras History dict and the counts of the sentence
    trees (complete, partial, without tree, dropped for size) and of training images/s.
    """
    from keras_sceneparse.data.structured import structured_dataset

    if supervision not in ("full", "weak"):
        raise ValueError(f"`supervision` must be 'full' or 'weak', got {supervision!r}.")
    keras.utils.set_random_seed(seed)
    train, statistics = structured_dataset(
        dataset, "train", caption_parser, model.relation_names, model.max_objects,
        batch_size=batch_size, crop_size=crop_size, augment=True, shuffle=True, seed=seed, limit=limit,
        drop_remainder=True,
    )
    if supervision == "weak":
        train = train.map(lambda inputs, labels: inputs)  # the label maps stay unseen
    scores = [metrics.MeanIoU(model.num_classes, ignore_class=dataset.ignore_class)] if supervision == "full" else None
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), metrics=scores)
    start = time.perf_counter()
    history = model.fit(train, epochs=epochs, verbose=verbose, callbacks=list(callbacks))
    seconds = time.perf_counter() - start
    images = epochs * (min(len(dataset.files("train")), limit or math.inf) // batch_size) * batch_size
    statistics["training_images_per_second"] = round(images / seconds, 2)
    statistics["training_seconds"] = round(seconds, 1)
    return history.history, statistics


def most_frequent_relation(trees):
    counts = collections.Counter(relation for tree in trees if tree is not None for relation, _, _ in tree_relations(tree))
    return counts.most_common(1)[0][0] if counts else None


def random_tree(class_names, relation, rng):
    """The baseline: objects merged in a random order, every relation the given one."""
    roots = [object_tree(name) for name in class_names]
    if not roots:
        return None
    while len(roots) > 1:
        i, j = rng.choice(len(roots), size=2, replace=False)
        merged = relation_tree(relation, roots[i], roots[j])
        roots = [root for k, root in enumerate(roots) if k not in (i, j)] + [merged]
    return roots[0]


def evaluate_scene_parser(scene_parser, dataset, caption_parser, split="test", limit=None, baseline_relation=None,
                          seed=0, progress=True):
    """mIoU and tree accuracies of a parser on ``split``, next to the random-merge baseline.

    Trees are scored against the sentence trees two ways: over the objects the parser finds
    in the image (``predicted_objects``), and over the objects the sentence names
    (``sentence_objects``: the recursive network alone, given the right leaves). The
    baseline merges the same objects in a random order with ``baseline_relation`` (the most
    frequent relation of the training sentences by default) everywhere.
    """
    from keras_sceneparse.data.structured import sentence_trees

    rng = np.random.default_rng(seed)
    if baseline_relation is None:
        baseline_relation = most_frequent_relation(sentence_trees(dataset, "train", caption_parser)[0])
    gold_trees, statistics = sentence_trees(dataset, split, caption_parser)
    records = dataset.records(split)
    if limit is not None:
        records, gold_trees = records[:limit], gold_trees[:limit]
    matrix = np.zeros((dataset.num_classes, dataset.num_classes), np.int64)
    predicted = {"model": {"predicted_objects": [], "sentence_objects": []},
                 "baseline": {"predicted_objects": [], "sentence_objects": []}}
    bar = keras.utils.Progbar(len(records), unit_name="image") if progress else None
    from PIL import Image

    for step, ((image_path, label_path, _), gold) in enumerate(zip(records, gold_trees), start=1):
        image = np.asarray(Image.open(image_path).convert("RGB"))
        truth = np.asarray(Image.open(label_path), np.int64)
        tree, label_map = scene_parser.parse(image, return_label_map=True)
        matrix += np.asarray(keras.ops.convert_to_numpy(
            metrics.confusion_matrix(truth, label_map, dataset.num_classes, dataset.ignore_class)), np.int64)
        found = [scene_parser.class_names[c] for c in scene_parser.objects(label_map)]
        named = leaves(gold) if gold is not None else []
        predicted["model"]["predicted_objects"].append(tree)
        predicted["model"]["sentence_objects"].append(
            scene_parser.parse(image, objects=named) if named else None)
        predicted["baseline"]["predicted_objects"].append(random_tree(found, baseline_relation, rng))
        predicted["baseline"]["sentence_objects"].append(random_tree(named, baseline_relation, rng))
        if bar is not None:
            bar.update(step)
    scores = metrics.scores_from_confusion_matrix(matrix, dataset.ignore_class)
    segmentation = {key: float(keras.ops.convert_to_numpy(scores[key]))
                    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou", "f1")}
    trees = {
        method: {mode: corpus_tree_accuracies(values, gold_trees) for mode, values in modes.items()}
        for method, modes in predicted.items()
    }
    return {
        "split": split,
        "num_images": len(records),
        "segmentation": segmentation,
        "trees": trees,
        "baseline_relation": baseline_relation,
        "sentence_statistics": statistics,
    }
