"""Confusion matrices and the segmentation scores derived from them.

The scores follow the definitions used by the scene-parsing surveys (Long et al.,
"Fully Convolutional Networks for Semantic Segmentation", CVPR 2015, Sec. 5; Garcia-Garcia
et al., "A Review on Deep Learning Techniques Applied to Semantic Segmentation", 2017):
with ``n_ij`` the number of pixels of true class ``i`` predicted as ``j`` and
``t_i = sum_j n_ij`` the pixels of class ``i``,

- pixel accuracy           ``sum_i n_ii / sum_i t_i``
- mean (class) accuracy    ``mean_i n_ii / t_i``
- mean IoU                 ``mean_i n_ii / (t_i + sum_j n_ji - n_ii)``
- frequency weighted IoU   ``(sum_k t_k)^-1 sum_i t_i n_ii / (t_i + sum_j n_ji - n_ii)``
- f1                       ``(pixel accuracy + mean IoU) / 2``, the survey's single summary score.

Means are taken over the classes where the ratio is defined: a class absent from both
truth and prediction has no IoU and is left out of every mean (it is neither 1 nor 0); a
class that is predicted but never true has IoU 0 and counts, but has no class accuracy.
The ignore class, when it lies inside ``[0, num_classes)``, is never a true class: its
pixels are dropped and it is left out of every mean, but predicting it on a valid pixel
is an error for that pixel's true class.
"""

import keras
import numpy as np
from keras import ops

from keras_sceneparse.backend import assert_labels_in_range
from keras_sceneparse.utils.validation import check_int, check_num_classes

SCORE_NAMES = (
    "pixel_accuracy",
    "mean_accuracy",
    "mean_iou",
    "frequency_weighted_iou",
    "f1",
)


def _static_rank(x):
    return len(x.shape)


def labels_from_predictions(y_true, y_pred, num_classes):
    """Returns ``(y_true, y_pred)`` as label maps of equal rank.

    ``y_true`` is a label map ``(..., H, W)`` or ``(..., H, W, 1)``. ``y_pred`` is either a
    label map of the same shape or scores (logits or probabilities) with a last axis of
    ``num_classes``, whose argmax is taken.
    """
    y_true = ops.convert_to_tensor(y_true)
    y_pred = ops.convert_to_tensor(y_pred)
    if _static_rank(y_true) >= 3 and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    if _static_rank(y_pred) == _static_rank(y_true) + 1:
        channels = y_pred.shape[-1]
        if channels == 1 and num_classes != 1:
            y_pred = ops.squeeze(y_pred, axis=-1)
        else:
            if channels is not None and channels != num_classes:
                raise ValueError(
                    f"`y_pred` has {channels} channels (scores per class) but num_classes={num_classes}. "
                    f"Got y_true shape {tuple(y_true.shape)} and y_pred shape {tuple(y_pred.shape)}."
                )
            y_pred = ops.argmax(y_pred, axis=-1)
    elif _static_rank(y_pred) != _static_rank(y_true):
        raise ValueError(
            "`y_pred` must be a label map shaped like `y_true` or scores with one more axis of size "
            f"num_classes; got y_true shape {tuple(y_true.shape)} and y_pred shape {tuple(y_pred.shape)}."
        )
    for axis, (t, p) in enumerate(zip(y_true.shape, y_pred.shape)):
        if t is not None and p is not None and t != p:
            raise ValueError(
                f"`y_true` and `y_pred` disagree on axis {axis}: y_true shape {tuple(y_true.shape)}, "
                f"y_pred label shape {tuple(y_pred.shape)}. Resize the prediction (or the labels) first."
            )
    return y_true, y_pred


def confusion_matrix(y_true, y_pred, num_classes, ignore_class=None, sample_weight=None):
    """Counts pixels per (true class, predicted class): an int32 ``(num_classes, num_classes)`` tensor.

    Rows are true classes, columns predicted classes. Pixels whose truth is ``ignore_class``
    are dropped. ``sample_weight`` (broadcastable to the label map) acts as a mask: pixels
    with weight > 0 count once, pixels with weight 0 not at all (fractional weights would
    make the counts fractional). Label ids outside ``[0, num_classes)`` that are not the
    ignore class raise an error, in ``y_true`` and in a label-map ``y_pred`` alike.
    """
    num_classes = check_num_classes(num_classes)
    if ignore_class is not None:
        ignore_class = check_int("ignore_class", ignore_class)
    y_true, y_pred = labels_from_predictions(y_true, y_pred, num_classes)
    y_true = ops.cast(y_true, "int32")
    y_pred = ops.cast(y_pred, "int32")
    assert_labels_in_range(y_true, num_classes, ignore_class, name="y_true")
    assert_labels_in_range(y_pred, num_classes, None, name="y_pred")

    valid = ops.logical_and(y_true >= 0, y_true < num_classes)
    if ignore_class is not None:
        valid = ops.logical_and(valid, y_true != ignore_class)
    if sample_weight is not None:
        weight = ops.convert_to_tensor(sample_weight)
        while _static_rank(weight) < _static_rank(y_true):
            weight = ops.expand_dims(weight, -1)
        valid = ops.logical_and(valid, ops.broadcast_to(weight > 0, ops.shape(y_true)))
    # Invalid pixels are sent to cell 0 with a count of 0, so shapes stay static (jit friendly).
    index = ops.where(valid, y_true * num_classes + y_pred, 0)
    counts = ops.segment_sum(
        ops.reshape(ops.cast(valid, "int32"), (-1,)),
        ops.reshape(index, (-1,)),
        num_segments=num_classes * num_classes,
    )
    return ops.reshape(counts, (num_classes, num_classes))


def _safe_divide(numerator, denominator):
    """Elementwise ratio, NaN where the denominator is 0 (an undefined score)."""
    return ops.where(
        denominator > 0, numerator / ops.maximum(denominator, 1.0), float("nan")
    )


def _nanmean(values, axis=None):
    defined = ops.logical_not(ops.isnan(values))
    total = ops.sum(ops.where(defined, values, 0.0), axis=axis)
    count = ops.sum(ops.cast(defined, values.dtype), axis=axis)
    return _safe_divide(total, count)


def scores_from_confusion_matrix(matrix, ignore_class=None):
    """All survey scores from a confusion matrix, as a dict of float32 tensors.

    Keys: ``pixel_accuracy``, ``mean_accuracy``, ``mean_iou``, ``frequency_weighted_iou``,
    ``f1``, and ``per_class_iou``, ``per_class_accuracy`` (vectors, NaN where undefined).
    Every score is NaN when the matrix counts no pixel.
    """
    matrix = ops.cast(matrix, "float32")
    num_classes = matrix.shape[0]
    true_positives = ops.diagonal(matrix)
    true_totals = ops.sum(matrix, axis=1)
    predicted_totals = ops.sum(matrix, axis=0)
    union = true_totals + predicted_totals - true_positives

    per_class_iou = _safe_divide(true_positives, union)
    per_class_accuracy = _safe_divide(true_positives, true_totals)
    if ignore_class is not None and 0 <= ignore_class < num_classes:
        is_ignored = ops.arange(num_classes) == ignore_class
        per_class_iou = ops.where(is_ignored, float("nan"), per_class_iou)
        per_class_accuracy = ops.where(is_ignored, float("nan"), per_class_accuracy)

    total = ops.sum(true_totals)
    pixel_accuracy = _safe_divide(ops.sum(true_positives), total)
    mean_iou = _nanmean(per_class_iou)
    frequency = _safe_divide(true_totals, total)
    frequency_weighted_iou = ops.sum(
        ops.where(true_totals > 0, frequency * ops.where(ops.isnan(per_class_iou), 0.0, per_class_iou), 0.0)
    )
    frequency_weighted_iou = ops.where(total > 0, frequency_weighted_iou, float("nan"))
    return {
        "pixel_accuracy": pixel_accuracy,
        "mean_accuracy": _nanmean(per_class_accuracy),
        "mean_iou": mean_iou,
        "frequency_weighted_iou": frequency_weighted_iou,
        "f1": (pixel_accuracy + mean_iou) / 2.0,
        "per_class_iou": per_class_iou,
        "per_class_accuracy": per_class_accuracy,
    }


def segmentation_scores(y_true, y_pred, num_classes, ignore_class=None):
    """Scores a prediction against the truth in one call, as a dict of Python values.

    Args:
        y_true: label map(s), shape ``(H, W)``, ``(B, H, W)`` or with a trailing axis of 1.
        y_pred: label map(s) of the same shape, or logits/probabilities with a last axis of
            ``num_classes`` (the argmax is taken).
        num_classes: number of classes, at least 2.
        ignore_class: label id whose pixels are left out (e.g. 255 for VOC, 11 for CamVid).

    Returns:
        ``{"pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou", "f1"}``
        as floats, ``"per_class_iou"`` and ``"per_class_accuracy"`` as lists (NaN where a
        class is undefined: absent from truth and prediction, or the ignore class), and
        ``"confusion_matrix"`` as a nested list of ints.

    Example:
        >>> scores = segmentation_scores([[0, 1], [1, 1]], [[0, 1], [0, 1]], num_classes=2)
        >>> round(scores["pixel_accuracy"], 2), round(scores["mean_iou"], 3)
        (0.75, 0.583)
    """
    matrix = confusion_matrix(y_true, y_pred, num_classes, ignore_class)
    scores = scores_from_confusion_matrix(matrix, ignore_class)
    result = {}
    for key, value in scores.items():
        value = keras.ops.convert_to_numpy(value)
        result[key] = value.astype(float).tolist() if value.ndim else float(value)
    result["confusion_matrix"] = np.asarray(keras.ops.convert_to_numpy(matrix)).astype(int).tolist()
    return result
