"""Segmentation losses: one value per image, ignore labels, class weights, any backend.

Deep supervision (auxiliary outputs weighted into the loss) is handled by
:class:`keras_sceneparse.models.SegmentationModel` through ``auxiliary_loss_weights``:
compile with one of these losses and every output is scored against the same labels. An
auxiliary output that is not a per-pixel map (EncNet's class-presence vector) declares its own
loss (``auxiliary_losses``), such as :class:`ClassPresenceLoss`.
"""

from keras_sceneparse.losses.class_presence import ClassPresenceLoss, class_presence
from keras_sceneparse.losses.cross_entropy import SparseCategoricalCrossentropy
from keras_sceneparse.losses.dice import DiceLoss
from keras_sceneparse.losses.focal import FocalLoss
from keras_sceneparse.losses.lovasz import LovaszSoftmaxLoss
from keras_sceneparse.losses.segmentation_loss import SegmentationLoss, per_example_loss, per_image_mean

__all__ = [
    "ClassPresenceLoss",
    "DiceLoss",
    "FocalLoss",
    "LovaszSoftmaxLoss",
    "SegmentationLoss",
    "SparseCategoricalCrossentropy",
    "class_presence",
    "per_example_loss",
    "per_image_mean",
]
