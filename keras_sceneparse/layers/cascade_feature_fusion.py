"""ICNet's cascade feature fusion unit (Zhao, Qi, Shen, Shi and Jia, ECCV 2018)."""

import keras
from keras import ops

from keras_sceneparse.layers.conv_bn_relu import BATCH_NORM_MOMENTUM
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


@serializable
class CascadeFeatureFusion(keras.layers.Layer):
    """ICNet's cascade feature fusion unit (CFF, Zhao et al. 2018, Sec. 3.3, Fig. 3).

    Zhao, Qi, Shen, Shi and Jia, "ICNet for Real-Time Semantic Segmentation on
    High-Resolution Images", ECCV 2018, https://arxiv.org/abs/1704.08545.

    Called as ``CascadeFeatureFusion(filters)(low, high)`` with the coarser branch's
    features ``F1`` and the finer branch's ``F2`` (twice the size). ``F1`` is upsampled 2x
    bilinearly to the size of ``F2`` and refined by a 3x3 convolution of dilation 2; ``F2``
    is projected by a 1x1 convolution; both have batch normalisation, then

        ``F2' = ReLU(BN(conv3x3_dilated2(up(F1))) + BN(conv1x1(F2)))``.

    With ``num_classes``, the unit also returns the cascade label guidance of Sec. 3.4:
    a 1x1 classifier on the upsampled ``F1``, ``(F2', logits)``.

    Choices: the convolutions have no bias (they are followed by batch normalisation, as in
    the reference prototxt); the upsampling aligns corners, as Caffe's ``Interp`` does, and
    resizes to the exact size of ``F2``, so odd sizes work.

    Args:
        filters: output channels ``C3`` (128 in the reference model).
        num_classes: classes of the auxiliary classifier; ``None`` for none.
        dilation_rate: dilation of the 3x3 convolution on ``F1`` (2).
    """

    def __init__(self, filters=128, num_classes=None, dilation_rate=2, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.num_classes = None if num_classes is None else check_int("num_classes", num_classes, minimum=1)
        self.dilation_rate = check_int("dilation_rate", dilation_rate, minimum=1)
        policy = self.dtype_policy
        self.upsampling = ResizeToReference(align_corners=True, dtype=policy, name="upsampling")
        self.low_conv = keras.layers.Conv2D(
            self.filters, 3, dilation_rate=self.dilation_rate, padding="same", use_bias=False,
            kernel_initializer="he_normal", dtype=policy, name="low_conv",
        )
        self.low_bn = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, dtype=policy, name="low_bn")
        self.high_conv = keras.layers.Conv2D(
            self.filters, 1, use_bias=False, kernel_initializer="he_normal", dtype=policy, name="high_conv"
        )
        self.high_bn = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, dtype=policy, name="high_bn")
        self.classifier = None
        if self.num_classes is not None:
            self.classifier = keras.layers.Conv2D(self.num_classes, 1, dtype=policy, name="classifier")

    def build(self, low_shape, high_shape):
        upsampled = (low_shape[0], high_shape[1], high_shape[2], low_shape[-1])
        self.low_conv.build(upsampled)
        self.low_bn.build(tuple(upsampled[:-1]) + (self.filters,))
        self.high_conv.build(high_shape)
        self.high_bn.build(tuple(high_shape[:-1]) + (self.filters,))
        if self.classifier is not None:
            self.classifier.build(upsampled)

    def call(self, low, high, training=None):
        upsampled = self.upsampling(low, high)
        fused = ops.relu(
            self.low_bn(self.low_conv(upsampled), training=training)
            + self.high_bn(self.high_conv(high), training=training)
        )
        if self.classifier is None:
            return fused
        return fused, self.classifier(upsampled)

    def compute_output_shape(self, low_shape, high_shape):
        fused = tuple(high_shape[:-1]) + (self.filters,)
        if self.classifier is None:
            return fused
        return fused, tuple(high_shape[:-1]) + (self.num_classes,)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "num_classes": self.num_classes,
            "dilation_rate": self.dilation_rate,
        }
