"""Training and evaluating H-LSTM on Stanford Background (shared by the geometry commands)."""

import keras
import numpy as np

from keras_sceneparse import metrics
from keras_sceneparse.cli.train import TrainingTimer
from keras_sceneparse.structure.geometry import RELATIONS, SURFACES
from keras_sceneparse.structure.h_lstm import HLSTM


def relation_weights(counts):
    """Inverse-frequency loss weights, averaging 1 over the relations present."""
    frequencies = np.array([counts[name] for name in RELATIONS], float)
    weights = np.where(frequencies > 0, 1.0 / np.maximum(frequencies, 1.0), 0.0)
    return (weights * (weights > 0).sum() / weights.sum()).tolist()


def train_hlstm(dataset, use_lstm=True, epochs=30, batch_size=8, learning_rate=1e-3, seed=0, limit=None, verbose=1,
                **model_kwargs):
    """Trains an :class:`~keras_sceneparse.structure.HLSTM` on the training split; returns
    ``(model, history, statistics)``."""
    keras.utils.set_random_seed(seed)
    arrays = dataset.arrays("train", limit=limit, verbose=bool(verbose))
    counts = dataset.relation_counts(arrays)
    model = HLSTM(use_lstm=use_lstm, max_nodes=tuple(dataset.settings["max_nodes"]),
                  max_regions=dataset.settings["max_regions"], relation_weights=relation_weights(counts), **model_kwargs)
    model.compile(keras.optimizers.Adam(learning_rate))
    train = dataset.dataset("train", batch_size=batch_size, augment=True, seed=seed, arrays=arrays)
    timer = TrainingTimer()
    history = model.fit(train, epochs=epochs, verbose=verbose, callbacks=[timer])
    count = len(arrays["images"])
    statistics = {"train_images": count, "relation_counts": counts, "training_seconds": round(timer.seconds, 1),
                  "training_images_per_second": round(epochs * count / timer.seconds, 2)}
    if epochs > 1:  # without the first epoch, which traces the graph
        statistics["steady_images_per_second"] = round((epochs - 1) * count / sum(timer.epoch_seconds[1:]), 2)
    return model, history.history, statistics


def evaluate_hlstm(model, dataset, split="val", limit=None, batch_size=8, verbose=True):
    """Surface pixel and per-class accuracy, and relation accuracy per class, on ``split``
    (the data set's regions and their derived relations)."""
    arrays = dataset.arrays(split, limit=limit, verbose=verbose)
    surface_matrix = np.zeros((len(SURFACES),) * 2, np.int64)
    relation_matrix = np.zeros((len(RELATIONS),) * 2, np.int64)
    for inputs, targets in dataset.dataset(split, batch_size=batch_size, shuffle=False, arrays=arrays):
        outputs = model(inputs, training=False)
        surface_matrix += np.asarray(keras.ops.convert_to_numpy(metrics.confusion_matrix(
            targets["surfaces"], outputs["surfaces"], len(SURFACES), ignore_class=255)), np.int64)
        relation_matrix += np.asarray(keras.ops.convert_to_numpy(metrics.confusion_matrix(
            targets["relations"], outputs["relations"], len(RELATIONS), ignore_class=-1)), np.int64)
    return {
        "split": split,
        "num_images": int(len(arrays["images"])),
        "surfaces": _accuracies(surface_matrix, SURFACES),
        "relations": _accuracies(relation_matrix, RELATIONS),
    }


def _accuracies(matrix, names):
    totals = matrix.sum(axis=1)
    per_class = {name: (float(matrix[i, i] / totals[i]) if totals[i] else None) for i, name in enumerate(names)}
    defined = [value for value in per_class.values() if value is not None]
    return {
        "pixel_accuracy" if names is SURFACES else "accuracy": float(np.trace(matrix) / max(matrix.sum(), 1)),
        "mean_class_accuracy": float(np.mean(defined)) if defined else None,
        "per_class_accuracy": per_class,
        "counts": {name: int(total) for name, total in zip(names, totals)},
        "confusion_matrix": matrix.tolist(),
    }
