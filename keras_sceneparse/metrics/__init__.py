"""Segmentation metrics: streaming ``keras.metrics.Metric`` classes and plain functions."""

from keras_sceneparse.metrics.confusion_matrix import (
    SCORE_NAMES,
    confusion_matrix,
    scores_from_confusion_matrix,
    segmentation_scores,
)
from keras_sceneparse.metrics.segmentation_metrics import (
    ConfusionMatrixMetric,
    F1Score,
    FrequencyWeightedIoU,
    MeanAccuracy,
    MeanIoU,
    PerClassIoU,
    PixelAccuracy,
    SegmentationScores,
)

__all__ = [
    "SCORE_NAMES",
    "ConfusionMatrixMetric",
    "F1Score",
    "FrequencyWeightedIoU",
    "MeanAccuracy",
    "MeanIoU",
    "PerClassIoU",
    "PixelAccuracy",
    "SegmentationScores",
    "confusion_matrix",
    "scores_from_confusion_matrix",
    "segmentation_scores",
]
