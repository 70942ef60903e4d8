"""EncNet's semantic encoding loss (Zhang et al., CVPR 2018): which classes does the image contain?"""

import keras
from keras import ops

from keras_sceneparse.backend import assert_labels_in_range
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int, check_num_classes


def class_presence(labels, num_classes, ignore_class=None):
    """``(B, num_classes)`` float32: 1 where class ``c`` labels at least one pixel of image ``b``.

    ``labels`` is a ``(B, H, W)`` or ``(B, H, W, 1)`` label map; ``ignore_class`` pixels (and
    ids outside ``[0, num_classes)``, which :func:`assert_labels_in_range` rejects unless they
    are ``ignore_class``) mark no class. The reference code builds the same vector with a
    histogram of each label map (``torch.histc`` over ``[0, num_classes - 1]``).
    """
    if len(labels.shape) == 4:
        labels = ops.squeeze(labels, axis=-1)
    labels = ops.cast(labels, "int32")
    # Compared class by class rather than one-hot encoded: a (B, H, W) boolean map per class
    # instead of a float (B, H, W, C) tensor (150 ADE20K classes on 512x512 crops).
    present = [ops.any(ops.equal(labels, c), axis=(1, 2)) for c in range(num_classes)]
    if ignore_class is not None and 0 <= ignore_class < num_classes:
        present[ignore_class] = ops.zeros_like(present[ignore_class])
    return ops.cast(ops.stack(present, axis=-1), "float32")


@serializable
class ClassPresenceLoss(keras.losses.Loss):
    """Semantic encoding loss (SE-loss): binary cross-entropy of predicted class presence.

    Zhang, Dana, Shi, Zhang, Wang, Tyagi and Agrawal, "Context Encoding for Semantic
    Segmentation", CVPR 2018, https://arxiv.org/abs/1803.08904, Sec. 3.2 ("Semantic
    Encoding Loss"): a fully connected layer on the encoded context predicts, for each
    class, whether it is present in the image, and "binary cross entropy" against the
    presence vector of the ground truth regularises the encoding with global semantics at
    no per-pixel cost (small objects weigh as much as large ones).

    ``y_true`` is the label map ``(B, H, W)`` or ``(B, H, W, 1)`` the segmentation losses
    take; the target ``t = class_presence(y_true)`` is derived from it. ``y_pred`` is a
    ``(B, num_classes)`` vector of logits (``from_logits=True``, the default) or of
    probabilities. The loss of an image is ``mean_c BCE(t_c, sigmoid(y_c))``, as PyTorch's
    ``BCELoss`` with the default mean in the reference code (PyTorch-Encoding), so a batch
    mean over images equals the reference's mean over all entries.

    Pass it to a model as an auxiliary loss, not to ``compile``: EncNet returns its
    presence logits as the ``"se"`` output and declares
    ``auxiliary_losses={"se": ClassPresenceLoss(num_classes)}``
    (:class:`~keras_sceneparse.models.SegmentationModel`).

    Args:
        num_classes: number of classes of the label maps.
        ignore_class: label id whose pixels mark no class (e.g. 255).
        from_logits: whether ``y_pred`` are logits (else probabilities).
        reduction, name, dtype: as for ``keras.losses.Loss``.

    Example:
        >>> loss = ClassPresenceLoss(3)
        >>> y_true = np.array([[[0, 0], [2, 2]]])           # classes 0 and 2 present
        >>> y_pred = np.array([[4.0, -4.0, 4.0]])
        >>> round(float(loss(y_true, y_pred)), 4)           # -log sigmoid(4)
        0.0181
    """

    def __init__(
        self,
        num_classes,
        ignore_class=None,
        from_logits=True,
        reduction="sum_over_batch_size",
        name="class_presence_loss",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.num_classes = check_num_classes(num_classes)
        self.ignore_class = None if ignore_class is None else check_int("ignore_class", ignore_class)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        if len(y_pred.shape) != 2 or y_pred.shape[-1] != self.num_classes:
            raise ValueError(
                f"`y_pred` must be a (batch, {self.num_classes}) vector of class-presence scores, "
                f"got shape {tuple(y_pred.shape)}."
            )
        labels = assert_labels_in_range(ops.cast(y_true, "int32"), self.num_classes, self.ignore_class)
        target = class_presence(labels, self.num_classes, self.ignore_class)
        if self.from_logits:
            # log(1 + exp(-|z|)) + max(z, 0) - z t: BCE of sigmoid(z), stable for large |z|.
            values = ops.relu(y_pred) - y_pred * target + ops.log1p(ops.exp(-ops.abs(y_pred)))
        else:
            p = ops.clip(y_pred, keras.config.epsilon(), 1.0 - keras.config.epsilon())
            values = -(target * ops.log(p) + (1.0 - target) * ops.log(1.0 - p))
        return ops.mean(values, axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "ignore_class": self.ignore_class,
            "from_logits": self.from_logits,
        }
