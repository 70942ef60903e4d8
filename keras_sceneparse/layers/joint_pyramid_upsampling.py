"""FastFCN's joint pyramid upsampling (Wu, Zhang, Huang, Liang and Yu, 2019)."""

import keras
from keras import ops

from keras_sceneparse.layers.conv_bn_relu import BATCH_NORM_MOMENTUM, ConvBNReLU
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


@serializable
class JointPyramidUpsampling(keras.layers.Layer):
    """Joint pyramid upsampling (JPU): stride-8 features from an undilated backbone's last stages.

    Wu, Zhang, Huang, Liang and Yu, "FastFCN: Rethinking Dilated Convolution in the Backbone
    for Semantic Segmentation", 2019, https://arxiv.org/abs/1903.11816, Sec. 3.3 and Fig. 4.
    FastFCN drops the dilation of the backbone's last two stages (output stride 32) and
    recovers stride-8 features by treating their extraction as joint upsampling guided by
    the higher-resolution ``C3``:

    - each of ``C3`` (stride 8), ``C4`` (16) and ``C5`` (32) is reduced by a 3x3
      convolution, batch normalisation and ReLU to ``filters`` (512) channels;
    - the reduced ``C4`` and ``C5`` are bilinearly upsampled to the size of ``C3``
      (corner-aligned, as the reference code) and the three maps are concatenated
      (``3 * filters`` channels) ;
    - four parallel separable convolutions with dilation rates 1, 2, 4 and 8 ("to extract
      multi-scale context information", Fig. 4) each output ``filters`` channels; they are
      concatenated (``4 * filters``, 2048 for the paper's 512).

    Each separable convolution follows the reference code (PyTorch-Encoding's
    ``SeparableConv2d`` + ``BatchNorm`` + ``ReLU``): a 3x3 depthwise convolution, batch
    normalisation, a 1x1 pointwise convolution (no activation in between), batch
    normalisation and ReLU; convolutions have no bias.

    Called as ``JointPyramidUpsampling()(c3, c4, c5)``; returns ``(B, H3, W3, 4 filters)``
    at the size of ``c3``.

    Args:
        filters: channels of the reductions and of each dilated branch (512).
        dilation_rates: rates of the parallel separable convolutions (1, 2, 4, 8).
    """

    def __init__(self, filters=512, dilation_rates=(1, 2, 4, 8), **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.dilation_rates = tuple(check_int("dilation_rates[i]", rate, minimum=1) for rate in dilation_rates)
        if not self.dilation_rates:
            raise ValueError("`dilation_rates` must name at least one branch, got an empty sequence.")
        policy = self.dtype_policy
        self.reductions = [ConvBNReLU(self.filters, 3, dtype=policy, name=f"reduction_{level}") for level in (3, 4, 5)]
        self.upsampling = ResizeToReference(align_corners=True, dtype=policy, name="upsampling")
        self.branches = [self._separable_branch(rate) for rate in self.dilation_rates]

    def _separable_branch(self, rate):
        policy = self.dtype_policy
        return [
            keras.layers.DepthwiseConv2D(
                3, dilation_rate=rate, padding="same", use_bias=False, dtype=policy, name=f"dilation_{rate}_depthwise"
            ),
            keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, dtype=policy, name=f"dilation_{rate}_depthwise_bn"),
            keras.layers.Conv2D(
                self.filters, 1, use_bias=False, kernel_initializer="he_normal", dtype=policy,
                name=f"dilation_{rate}_pointwise",
            ),
            keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, dtype=policy, name=f"dilation_{rate}_bn"),
            keras.layers.Activation("relu", dtype=policy, name=f"dilation_{rate}_relu"),
        ]

    def build(self, c3_shape, c4_shape, c5_shape):
        for reduction, shape in zip(self.reductions, (c3_shape, c4_shape, c5_shape)):
            reduction.build(shape)
        shape = (None, None, None, 3 * self.filters)
        for branch in self.branches:
            branch_shape = shape
            for layer in branch:
                layer.build(branch_shape)
                branch_shape = layer.compute_output_shape(branch_shape)

    def call(self, c3, c4, c5, training=None):
        c3, c4, c5 = (reduction(x, training=training) for reduction, x in zip(self.reductions, (c3, c4, c5)))
        x = ops.concatenate([c3, self.upsampling(c4, c3), self.upsampling(c5, c3)], axis=-1)
        outputs = []
        for branch in self.branches:
            y = x
            for layer in branch:
                y = layer(y, training=training) if isinstance(layer, keras.layers.BatchNormalization) else layer(y)
            outputs.append(y)
        return ops.concatenate(outputs, axis=-1)

    def compute_output_shape(self, c3_shape, c4_shape, c5_shape):
        return (*c3_shape[:-1], len(self.dilation_rates) * self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "dilation_rates": self.dilation_rates}
