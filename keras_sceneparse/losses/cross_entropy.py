from keras import ops

from keras_sceneparse.losses.segmentation_loss import SegmentationLoss, per_image_mean
from keras_sceneparse.utils.serialization import serializable


@serializable
class SparseCategoricalCrossentropy(SegmentationLoss):
    """Per-pixel cross-entropy with an ignore label and per-class weights.

    The loss of FCN, SegNet, U-Net and most of the zoo: for each image,
    ``sum_p w_{y_p} (-log p_{y_p}) / sum_p w_{y_p}`` over the pixels ``p`` whose label is
    not ``ignore_class``, with ``w`` the class weights (1 by default): a weighted mean over
    labelled pixels, as in Caffe's ``SoftmaxWithLoss`` and PyTorch's ``CrossEntropyLoss``.
    Arguments are those of :class:`SegmentationLoss`.

    Example:
        >>> loss = SparseCategoricalCrossentropy(from_logits=True, ignore_class=11)
        >>> y_true = np.array([[[0, 11]]])                  # second pixel is void
        >>> y_pred = np.array([[[[2.0, 0.0], [0.0, 5.0]]]])
        >>> round(float(loss(y_true, y_pred)), 4)           # -log softmax([2, 0])[0]
        0.1269
    """

    def __init__(
        self,
        from_logits=False,
        ignore_class=None,
        class_weights=None,
        name="sparse_categorical_crossentropy",
        **kwargs,
    ):
        super().__init__(
            from_logits=from_logits, ignore_class=ignore_class, class_weights=class_weights, name=name, **kwargs
        )

    def call(self, y_true, y_pred):
        labels, valid, _, log_probabilities, _ = self.prepare(y_true, y_pred)
        true_log_probability = ops.squeeze(
            ops.take_along_axis(log_probabilities, ops.expand_dims(labels, -1), axis=-1), -1
        )
        return per_image_mean(-true_log_probability, self.pixel_weights(labels, valid))
