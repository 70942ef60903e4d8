"""Value assertions that work in eager mode and inside compiled graphs of every backend."""

import keras
import numpy as np


def _describe_range(num_classes, ignore_class):
    allowed = f"[0, {num_classes})"
    if ignore_class is not None:
        allowed += f" or the ignore class {ignore_class}"
    return allowed


def _check_numpy_labels(values, num_classes, ignore_class, name):
    values = np.asarray(values)
    if values.size == 0:
        return
    invalid = (values < 0) | (values >= num_classes)
    if ignore_class is not None:
        invalid &= values != ignore_class
    if np.any(invalid):
        bad = np.unique(values[invalid])[:5]
        raise ValueError(
            f"`{name}` contains label ids {bad.tolist()} outside {_describe_range(num_classes, ignore_class)}. "
            f"Check `num_classes` ({num_classes}) and `ignore_class` ({ignore_class}), or remap the labels."
        )


def assert_labels_in_range(labels, num_classes, ignore_class=None, name="y_true"):
    """Raises when ``labels`` holds an id outside ``[0, num_classes)`` that is not ``ignore_class``.

    Returns ``labels`` unchanged so that it can be used inline. Under TensorFlow the check
    is a ``tf.debugging`` assertion (``InvalidArgumentError`` carrying the same message
    inside ``tf.function``); under a JAX trace a host callback raises ``ValueError``;
    elsewhere the values are checked directly. XLA drops TensorFlow assertions, so with
    ``jit_compile=True`` under TensorFlow the check only happens in the data pipelines of
    :mod:`keras_sceneparse.data`, which validate every label map they decode.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if tf.executing_eagerly():
            _check_numpy_labels(keras.ops.convert_to_numpy(labels), num_classes, ignore_class, name)
            return labels
        labels_int = tf.cast(labels, "int64")
        invalid = tf.logical_or(labels_int < 0, labels_int >= num_classes)
        if ignore_class is not None:
            invalid = tf.logical_and(invalid, labels_int != ignore_class)
        # min/max rather than a boolean mask: the assertion must not need dynamic shapes.
        smallest_bad = tf.reduce_min(tf.where(invalid, labels_int, tf.int64.max))
        largest_bad = tf.reduce_max(tf.where(invalid, labels_int, tf.int64.min))
        tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(invalid)),
            [
                f"`{name}` contains label ids outside {_describe_range(num_classes, ignore_class)}; "
                f"check `num_classes` ({num_classes}) and `ignore_class` ({ignore_class}). "
                "Smallest and largest offending ids:",
                smallest_bad,
                largest_bad,
            ],
        )
        return labels
    if backend == "jax":
        import jax

        if isinstance(labels, jax.core.Tracer):
            jax.debug.callback(
                lambda values: _check_numpy_labels(values, num_classes, ignore_class, name), labels
            )
            return labels
    _check_numpy_labels(keras.ops.convert_to_numpy(labels), num_classes, ignore_class, name)
    return labels
