"""Streaming segmentation metrics: one confusion matrix, summed over batches (and replicas).

Each metric keeps an integer confusion matrix as its only state, so averaging is done
once, at ``result()``, from the summed counts: the mIoU of a whole evaluation set, not a
mean of per-batch mIoUs. Its variable is aggregated with ``"sum"``, which is what
``tf.distribute`` needs to combine replicas exactly.
"""

import keras
from keras import ops

from keras_sceneparse.metrics.confusion_matrix import confusion_matrix, scores_from_confusion_matrix
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int, check_num_classes


@serializable
class ConfusionMatrixMetric(keras.metrics.Metric):
    """Base class: accumulates a ``(num_classes, num_classes)`` confusion matrix.

    Args:
        num_classes: number of classes (at least 2).
        ignore_class: label id whose pixels are not counted (e.g. 255 for VOC, 11 for CamVid).
            It may lie inside ``[0, num_classes)`` (then that class is left out of every
            mean) or outside it.
        name: metric name in logs.
        dtype: dtype of the result (the counts are always integers).

    ``y_true`` is a label map ``(B, H, W)`` or ``(B, H, W, 1)``; ``y_pred`` is a label map of
    the same shape or logits/probabilities ``(B, H, W, num_classes)`` (argmax taken).
    ``sample_weight`` acts as a pixel or image mask (weight > 0 counts). Label ids outside
    ``[0, num_classes)`` that are not ``ignore_class`` raise an error.

    The counts are int64 (int32 under JAX unless ``jax_enable_x64`` is set, which is exact
    up to 2**31 pixels per cell).
    """

    default_name = "confusion_matrix"

    def __init__(self, num_classes, ignore_class=None, name=None, dtype=None):
        super().__init__(name=name or self.default_name, dtype=dtype)
        self.num_classes = check_num_classes(num_classes)
        self.ignore_class = None if ignore_class is None else check_int("ignore_class", ignore_class)
        self.confusion_matrix = self.add_variable(
            shape=(self.num_classes, self.num_classes),
            initializer="zeros",
            dtype="int64",
            aggregation="sum",
            name="confusion_matrix",
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        counts = confusion_matrix(y_true, y_pred, self.num_classes, self.ignore_class, sample_weight)
        self.confusion_matrix.assign_add(ops.cast(counts, self.confusion_matrix.dtype))

    def reset_state(self):
        self.confusion_matrix.assign(ops.zeros(self.confusion_matrix.shape, self.confusion_matrix.dtype))

    def scores(self):
        """Every score of :func:`scores_from_confusion_matrix` for the counts so far."""
        return scores_from_confusion_matrix(self.confusion_matrix, self.ignore_class)

    def result(self):
        return self.confusion_matrix

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "ignore_class": self.ignore_class,
            "name": self.name,
            "dtype": self.dtype,
        }


class _ScoreMetric(ConfusionMatrixMetric):
    score_name = None

    def result(self):
        return ops.cast(self.scores()[self.score_name], self.dtype)


@serializable
class PixelAccuracy(_ScoreMetric):
    """Fraction of (non-ignored) pixels labelled correctly: ``sum_i n_ii / sum_i t_i``."""

    default_name = score_name = "pixel_accuracy"


@serializable
class MeanAccuracy(_ScoreMetric):
    """Mean over classes of the per-class recall ``n_ii / t_i`` (classes with ``t_i > 0``)."""

    default_name = score_name = "mean_accuracy"


@serializable
class MeanIoU(_ScoreMetric):
    """Mean intersection over union over the classes present in truth or prediction.

    Unlike ``keras.metrics.MeanIoU``, a class absent from both truth and prediction is left
    out of the mean, an in-range ``ignore_class`` is never averaged in, logits are accepted
    directly, and out-of-range labels raise instead of being miscounted.

    Example:
        >>> metric = MeanIoU(num_classes=3, ignore_class=2)
        >>> metric.update_state([[0, 1, 2]], [[0, 0, 1]])
        >>> round(float(metric.result()), 3)
        0.25
    """

    default_name = score_name = "mean_iou"


@serializable
class FrequencyWeightedIoU(_ScoreMetric):
    """Per-class IoU weighted by each class's share of the true pixels."""

    default_name = score_name = "frequency_weighted_iou"


@serializable
class F1Score(_ScoreMetric):
    """The survey's summary score ``(pixel accuracy + mean IoU) / 2``.

    This is the definition the scene-parsing survey uses to rank methods with one number;
    it is not the harmonic mean of precision and recall of ``keras.metrics.F1Score``.
    """

    default_name = "f1"
    score_name = "f1"


@serializable
class PerClassIoU(ConfusionMatrixMetric):
    """IoU of every class, as a dict ``{"iou_<class name>": value}`` merged into the logs.

    Args:
        class_names: optional names for the keys (default: the class ids). The ignore class
            is left out; a class absent from truth and prediction reports NaN.
    """

    default_name = "per_class_iou"

    def __init__(self, num_classes, ignore_class=None, class_names=None, name=None, dtype=None):
        super().__init__(num_classes, ignore_class=ignore_class, name=name, dtype=dtype)
        if class_names is not None and len(class_names) != self.num_classes:
            raise ValueError(
                f"`class_names` must have num_classes={self.num_classes} entries, got {len(class_names)}."
            )
        self.class_names = None if class_names is None else [str(n) for n in class_names]

    def result(self):
        per_class = ops.cast(self.scores()["per_class_iou"], self.dtype)
        names = self.class_names or [str(i) for i in range(self.num_classes)]
        return {
            f"iou_{names[i]}": per_class[i]
            for i in range(self.num_classes)
            if i != self.ignore_class
        }

    def get_config(self):
        return {**super().get_config(), "class_names": self.class_names}


@serializable
class SegmentationScores(ConfusionMatrixMetric):
    """All five survey scores from one confusion matrix, as a dict merged into the logs.

    Cheaper than five separate metrics (one confusion matrix instead of five). Keys:
    ``pixel_accuracy``, ``mean_accuracy``, ``mean_iou``, ``frequency_weighted_iou``, ``f1``.
    """

    default_name = "segmentation_scores"

    def result(self):
        scores = self.scores()
        return {
            key: ops.cast(scores[key], self.dtype)
            for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou", "f1")
        }
