"""Synchronised batch normalisation: statistics over the global batch, not each replica's."""

import keras


def _all_layers(model):
    # Keras has no public recursive layer listing; `_flatten_layers` is the traversal that
    # Keras itself uses for this (it is read, not patched).
    return list(model._flatten_layers(include_self=False, recursive=True))


def synchronize_batch_norm(model, enabled=True):
    """Makes every ``BatchNormalization`` layer of ``model`` (nested ones included) compute its
    batch statistics across all replicas and workers (TensorFlow backend).

    Per-replica batches are small (a 16-image batch on 8 GPUs is 2 images each), and batch
    statistics of 2 images are poor estimates; synchronised batch norm restores the
    statistics of the global batch, as PSPNet and DeepLab train with. It also makes a
    distributed run compute exactly what one process computes on the global batch. Returns
    the number of layers changed. Under other backends it is a no-op (Keras' synchronised
    batch norm exists only for tf.distribute).
    """
    if keras.backend.backend() != "tensorflow":
        return 0
    changed = 0
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization) and layer.synchronized != enabled:
            layer.synchronized = enabled
            changed += 1
    return changed
