import math

import keras
from keras import ops

from keras_sceneparse.layers.conv_bn_relu import BATCH_NORM_MOMENTUM
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float, check_int


@serializable
class NonLocalBlock(keras.layers.Layer):
    """Non-local block, embedded Gaussian version: every position attends to every other.

    Wang, Girshick, Gupta and He, "Non-local Neural Networks", CVPR 2018,
    https://arxiv.org/abs/1711.07971.

    The generic non-local operation (Eq. 1) with the embedded Gaussian pairwise function
    ``f(x_i, x_j) = exp(theta(x_i)^T phi(x_j))`` (Eq. 3) normalised by
    ``C(x) = sum_j f(x_i, x_j)``, i.e. a softmax over ``j`` (Sec. 3.2), inside the residual
    non-local block of Sec. 3.3::

        y_i = sum_j softmax_j(theta(x_i)^T phi(x_j)) g(x_j)
        z_i = BN(W_z y_i) + x_i                                      (Eq. 6)

    ``theta``, ``phi`` and ``g`` are 1x1 convolutions to ``C / reduction`` channels (half
    the input, Sec. 3.3); ``W_z`` is a 1x1 convolution back to ``C`` followed by batch
    normalisation whose scale is initialised to zero (Sec. 4), so that the whole block
    starts as the identity. The sub-sampling trick of Sec. 3.3 adds a 2x2 max
    pooling after ``phi`` and ``g``, so each position attends to a quarter of the positions.

    ``use_scale`` divides the pairwise energies by ``sqrt(C / reduction)``, as
    mmsegmentation's segmentation head does (``use_scale=True`` in its configs); the paper
    does not scale (the default here).

    The attention map has ``(H W)^2`` entries per image (a quarter of that with
    ``sub_sample``): fine for the stride-8 features of segmentation crops, not for full
    resolution maps.

    Args:
        reduction: ``theta``/``phi``/``g`` have ``max(C // reduction, 1)`` channels (2).
        use_scale: divide the energies by the square root of that width.
        sub_sample: 2x2 max pooling of ``phi`` and ``g`` (odd sizes keep their last
            row and column: the pooling pads, "same").
        zero_init: initialise the batch-norm scale after ``W_z`` to zero (Sec. 4).
        batch_norm_momentum: momentum of that batch norm's moving statistics.

    Example:
        >>> block = NonLocalBlock(sub_sample=True)
        >>> block(np.zeros((1, 9, 7, 16), "float32")).shape
        TensorShape([1, 9, 7, 16])
    """

    def __init__(
        self,
        reduction=2,
        use_scale=False,
        sub_sample=False,
        zero_init=True,
        batch_norm_momentum=BATCH_NORM_MOMENTUM,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.reduction = check_int("reduction", reduction, minimum=1)
        self.use_scale = bool(use_scale)
        self.sub_sample = bool(sub_sample)
        self.zero_init = bool(zero_init)
        self.batch_norm_momentum = check_float("batch_norm_momentum", batch_norm_momentum, minimum=0.0, maximum=1.0)
        self.theta = self.phi = self.g = self.output_conv = self.output_norm = self.pooling = None

    def build(self, input_shape):
        channels = input_shape[-1]
        self.inter_channels = max(channels // self.reduction, 1)
        policy = self.dtype_policy

        def embedding(name):
            return keras.layers.Conv2D(self.inter_channels, 1, dtype=policy, name=name)

        self.theta, self.phi, self.g = embedding("theta"), embedding("phi"), embedding("g")
        # The batch norm makes a bias redundant.
        self.output_conv = keras.layers.Conv2D(channels, 1, use_bias=False, dtype=policy, name="output_conv")
        self.output_norm = keras.layers.BatchNormalization(
            momentum=self.batch_norm_momentum,
            gamma_initializer="zeros" if self.zero_init else "ones",
            dtype=policy,
            name="output_bn",
        )
        if self.sub_sample:
            self.pooling = keras.layers.MaxPooling2D(2, padding="same", dtype=policy, name="sub_sample")
        for layer in (self.theta, self.phi, self.g):
            layer.build(input_shape)
        inner_shape = (*input_shape[:-1], self.inter_channels)
        self.output_conv.build(inner_shape)
        self.output_norm.build(input_shape)

    def call(self, inputs, training=None):
        batch = ops.shape(inputs)[0]
        theta = ops.reshape(self.theta(inputs), (batch, -1, self.inter_channels))  # (B, N, C')
        phi, g = self.phi(inputs), self.g(inputs)
        if self.sub_sample:
            phi, g = self.pooling(phi), self.pooling(g)
        phi = ops.reshape(phi, (batch, -1, self.inter_channels))  # (B, M, C')
        g = ops.reshape(g, (batch, -1, self.inter_channels))
        energy = ops.matmul(theta, ops.transpose(phi, (0, 2, 1)))  # (B, N, M)
        if self.use_scale:
            energy = energy / math.sqrt(self.inter_channels)
        # Softmax in float32: under mixed precision the energies of N x M pairs overflow float16.
        attention = ops.cast(ops.softmax(ops.cast(energy, "float32"), axis=-1), g.dtype)
        y = ops.matmul(attention, g)
        shape = ops.shape(inputs)
        y = ops.reshape(y, (batch, shape[1], shape[2], self.inter_channels))
        return self.output_norm(self.output_conv(y), training=training) + inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "reduction": self.reduction,
            "use_scale": self.use_scale,
            "sub_sample": self.sub_sample,
            "zero_init": self.zero_init,
            "batch_norm_momentum": self.batch_norm_momentum,
        }
