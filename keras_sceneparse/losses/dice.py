from keras import ops

from keras_sceneparse.losses.segmentation_loss import SegmentationLoss
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float


@serializable
class DiceLoss(SegmentationLoss):
    """Soft Dice loss, averaged over classes, per image.

    Milletari, Navab and Ahmadi, "V-Net", 3DV 2016, Eq. 1, extended to several classes as
    in Sudre et al., "Generalised Dice Overlap...", 2017: for each class ``c``,
    ``1 - (2 sum_p p_c g_c + s) / (sum_p p_c + sum_p g_c + s)`` over the labelled pixels,
    where ``g_c`` is the one-hot truth. V-Net squares the sums in the denominator; we use
    the plain sums, the common form, which gives the same optimum. Classes are averaged with
    ``class_weights`` (uniform by default); ``smooth`` (``s``) keeps a class absent from
    both prediction and truth at loss 0 instead of 0/0.

    Args:
        smooth: additive smoothing ``s`` (1.0).
        Other arguments: see :class:`SegmentationLoss`.
    """

    def __init__(
        self, smooth=1.0, from_logits=False, ignore_class=None, class_weights=None, name="dice_loss", **kwargs
    ):
        super().__init__(
            from_logits=from_logits, ignore_class=ignore_class, class_weights=class_weights, name=name, **kwargs
        )
        self.smooth = check_float("smooth", smooth, minimum=0.0)

    def call(self, y_true, y_pred):
        labels, valid, probabilities, _, num_classes = self.prepare(y_true, y_pred)
        mask = ops.expand_dims(valid, -1)
        truth = ops.one_hot(labels, num_classes) * mask
        probabilities = probabilities * mask
        axes = tuple(range(1, len(probabilities.shape) - 1))
        intersection = ops.sum(probabilities * truth, axis=axes)
        total = ops.sum(probabilities, axis=axes) + ops.sum(truth, axis=axes)
        dice = (2.0 * intersection + self.smooth) / (total + self.smooth)
        weights = ops.ones((num_classes,)) if self.class_weights is None else ops.convert_to_tensor(
            self.class_weights, "float32"
        )
        return ops.sum((1.0 - dice) * weights, axis=-1) / ops.maximum(ops.sum(weights), 1e-12)

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth}
