import keras
from keras import ops

from keras_sceneparse.backend import assert_labels_in_range
from keras_sceneparse.utils.validation import check_int


class SegmentationLoss(keras.losses.Loss):
    """Base of the per-pixel losses: label checks, ignore masks and class weights in one place.

    ``y_true`` is a label map ``(B, H, W)`` or ``(B, H, W, 1)``; ``y_pred`` holds logits
    (``from_logits=True``) or probabilities ``(B, H, W, C)``. Each loss returns one value per
    image, so Keras' reduction averages images, ``sample_weight`` weighs images, and under
    ``tf.distribute`` the mean is over the global batch.

    Args:
        from_logits: whether ``y_pred`` are logits (else probabilities).
        ignore_class: label id whose pixels carry no loss (e.g. 255, or CamVid's void 11).
        class_weights: optional sequence of ``C`` per-class weights (e.g. SegNet's median
            frequency balancing).
        reduction, name, dtype: as for ``keras.losses.Loss``.
    """

    def __init__(
        self,
        from_logits=False,
        ignore_class=None,
        class_weights=None,
        reduction="sum_over_batch_size",
        name=None,
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.from_logits = bool(from_logits)
        self.ignore_class = None if ignore_class is None else check_int("ignore_class", ignore_class)
        if class_weights is not None:
            class_weights = [float(w) for w in class_weights]
            if any(w < 0 for w in class_weights):
                raise ValueError(f"`class_weights` must be non-negative, got {class_weights}.")
        self.class_weights = class_weights

    def prepare(self, y_true, y_pred):
        """Returns ``(labels, valid, probabilities, log_probabilities, num_classes)``.

        ``labels`` is an int32 ``(B, H, W)`` map with ignored pixels set to 0, ``valid`` a
        float32 mask of the pixels that count, and the probabilities are float32.
        """
        y_pred = ops.cast(y_pred, "float32")
        num_classes = y_pred.shape[-1]
        if num_classes is None:
            raise ValueError(f"`y_pred` must have a known number of classes (last axis); got {y_pred.shape}.")
        if num_classes < 2:
            raise ValueError(
                f"`y_pred` has {num_classes} channel; these losses need one score per class (at least 2). "
                "For binary segmentation output 2 logits."
            )
        if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
            y_true = ops.squeeze(y_true, axis=-1)
        if len(y_true.shape) != len(y_pred.shape) - 1:
            raise ValueError(
                "`y_true` must be a label map with one axis fewer than `y_pred` (or a trailing axis of 1); "
                f"got y_true shape {tuple(y_true.shape)} and y_pred shape {tuple(y_pred.shape)}."
            )
        for axis, (t, p) in enumerate(zip(y_true.shape, y_pred.shape[:-1])):
            if t is not None and p is not None and t != p:
                raise ValueError(
                    f"`y_true` shape {tuple(y_true.shape)} does not match `y_pred` shape {tuple(y_pred.shape)} "
                    f"(axis {axis}). Labels and predictions must have the same height and width."
                )
        if self.class_weights is not None and len(self.class_weights) != num_classes:
            raise ValueError(
                f"`class_weights` has {len(self.class_weights)} entries but `y_pred` scores {num_classes} classes."
            )
        labels = ops.cast(y_true, "int32")
        assert_labels_in_range(labels, num_classes, self.ignore_class, name="y_true")
        valid = ops.logical_and(labels >= 0, labels < num_classes)
        if self.ignore_class is not None:
            valid = ops.logical_and(valid, labels != self.ignore_class)
        labels = ops.where(valid, labels, 0)
        if self.from_logits:
            log_probabilities = ops.log_softmax(y_pred, axis=-1)
            probabilities = ops.exp(log_probabilities)
        else:
            probabilities = ops.clip(y_pred, keras.config.epsilon(), 1.0)
            log_probabilities = ops.log(probabilities)
        return labels, ops.cast(valid, "float32"), probabilities, log_probabilities, num_classes

    def pixel_weights(self, labels, valid):
        """``valid`` times the weight of each pixel's class."""
        if self.class_weights is None:
            return valid
        weights = ops.convert_to_tensor(self.class_weights, "float32")
        return ops.take(weights, labels) * valid

    def get_config(self):
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "ignore_class": self.ignore_class,
            "class_weights": self.class_weights,
        }


def per_image_mean(values, weights):
    """``sum(values * weights) / sum(weights)`` over all but the batch axis; 0 where the
    weights sum to 0 (an image with no labelled pixel contributes nothing)."""
    axes = tuple(range(1, len(values.shape)))
    total = ops.sum(values * weights, axis=axes)
    norm = ops.sum(weights, axis=axes)
    return ops.where(norm > 0, total / ops.maximum(norm, 1e-12), 0.0)


def per_example_loss(loss, y_true, y_pred):
    """One loss value per example ``(B,)`` from any Keras loss (object, function or name).

    A ``keras.losses.Loss`` is applied without its reduction (``loss.call``); per-pixel
    values are averaged over all but the batch axis. Distributed training loops weight and
    sum these values themselves, normalising by the global batch.
    """
    loss = keras.losses.get(loss)
    values = loss.call(y_true, y_pred) if isinstance(loss, keras.losses.Loss) else loss(y_true, y_pred)
    values = ops.convert_to_tensor(values)
    if len(values.shape) > 1:
        values = ops.mean(values, axis=tuple(range(1, len(values.shape))))
    return values
