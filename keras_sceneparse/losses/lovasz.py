from keras import ops

from keras_sceneparse.losses.segmentation_loss import SegmentationLoss
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice


@serializable
class LovaszSoftmaxLoss(SegmentationLoss):
    """Lovasz-softmax: a convex surrogate that optimises the mean IoU directly.

    Berman, Rannen Triki and Blaschko, "The Lovasz-Softmax Loss: A Tractable Surrogate for
    the Optimization of the Intersection-Over-Union Measure in Neural Networks", CVPR 2018,
    Eq. 8-12 and Algorithm 1: for each class ``c`` the pixel errors ``m_i(c) = |1[y_i = c]
    - p_i(c)|`` are sorted in decreasing order and dotted with the gradient of the Lovasz
    extension of the Jaccard loss, ``g_i = J(i) - J(i - 1)``, computed from the sorted
    ground truth; the loss averages the classes.

    Args:
        classes: ``"present"`` (average over classes present in the ground truth, the
            reference default) or ``"all"``.
        per_image: compute the loss for each image (default) or once over the whole batch
            (the value is then repeated per image, so Keras' mean reduction returns it).
        class_weights: not supported (the surrogate is of the unweighted IoU).
        Other arguments: see :class:`SegmentationLoss`.

    Ignored pixels get error 0 and are sorted last, where they change no term of the sum:
    the same value as removing them, with static shapes.
    """

    def __init__(
        self, classes="present", per_image=True, from_logits=False, ignore_class=None, name="lovasz_softmax_loss",
        **kwargs,
    ):
        if kwargs.get("class_weights") is not None:
            raise ValueError("LovaszSoftmaxLoss does not support `class_weights`.")
        kwargs.pop("class_weights", None)
        super().__init__(from_logits=from_logits, ignore_class=ignore_class, name=name, **kwargs)
        self.classes = check_choice("classes", classes, {"present", "all"})
        self.per_image = bool(per_image)

    def call(self, y_true, y_pred):
        labels, valid, probabilities, _, num_classes = self.prepare(y_true, y_pred)
        batch = ops.shape(probabilities)[0]
        # (groups, pixels, classes): one group per image, or the whole batch as one group.
        groups = batch if self.per_image else 1
        probabilities = ops.reshape(probabilities, (groups, -1, num_classes))
        truth = ops.reshape(ops.one_hot(labels, num_classes), (groups, -1, num_classes))
        valid = ops.reshape(valid, (groups, -1, 1))
        truth = truth * valid
        errors = ops.abs(truth - probabilities) * valid

        order = ops.argsort(-errors, axis=1)
        errors_sorted = ops.take_along_axis(errors, order, axis=1)
        truth_sorted = ops.take_along_axis(truth, order, axis=1)
        gradient = _lovasz_jaccard_gradient(truth_sorted)
        per_class = ops.sum(errors_sorted * ops.stop_gradient(gradient), axis=1)

        if self.classes == "present":
            present = ops.cast(ops.sum(truth, axis=1) > 0, "float32")
        else:
            present = ops.ones_like(per_class)
        count = ops.sum(present, axis=-1)
        loss = ops.where(count > 0, ops.sum(per_class * present, axis=-1) / ops.maximum(count, 1.0), 0.0)
        if not self.per_image:
            loss = ops.broadcast_to(loss, (batch,))
        return loss

    def get_config(self):
        config = super().get_config()
        config.pop("class_weights")
        return {**config, "classes": self.classes, "per_image": self.per_image}


def _lovasz_jaccard_gradient(truth_sorted):
    """Gradient of the Lovasz extension of the Jaccard loss w.r.t. sorted errors (Alg. 1)."""
    total = ops.sum(truth_sorted, axis=1, keepdims=True)
    intersection = total - ops.cumsum(truth_sorted, axis=1)
    union = total + ops.cumsum(1.0 - truth_sorted, axis=1)
    jaccard = 1.0 - intersection / ops.maximum(union, 1e-12)
    return ops.concatenate([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], axis=1)
