from keras import ops

from keras_sceneparse.losses.segmentation_loss import SegmentationLoss, per_image_mean
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float


@serializable
class FocalLoss(SegmentationLoss):
    """Focal loss per pixel: cross-entropy down-weighted on pixels already classified well.

    Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, Eq. 5:
    ``FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t)``. ``class_weights`` play the role of
    ``alpha_t`` (the paper's binary ``alpha`` generalised to one weight per class); the
    per-image value is the mean over labelled pixels (the paper normalises by the number of
    assigned anchors; the labelled pixels are their counterpart here). ``gamma=0`` gives
    the (class-weighted) cross-entropy summed the same way.

    Args:
        gamma: focusing parameter (2 in the paper).
        Other arguments: see :class:`SegmentationLoss`.
    """

    def __init__(
        self, gamma=2.0, from_logits=False, ignore_class=None, class_weights=None, name="focal_loss", **kwargs
    ):
        super().__init__(
            from_logits=from_logits, ignore_class=ignore_class, class_weights=class_weights, name=name, **kwargs
        )
        self.gamma = check_float("gamma", gamma, minimum=0.0)

    def call(self, y_true, y_pred):
        labels, valid, probabilities, log_probabilities, _ = self.prepare(y_true, y_pred)
        index = ops.expand_dims(labels, -1)
        log_pt = ops.squeeze(ops.take_along_axis(log_probabilities, index, axis=-1), -1)
        pt = ops.squeeze(ops.take_along_axis(probabilities, index, axis=-1), -1)
        focal = -ops.power(1.0 - pt, self.gamma) * log_pt
        return per_image_mean(focal * self.pixel_weights(labels, valid), valid)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}
