"""EncNet's encoding layer and context encoding module (Zhang et al., CVPR 2018)."""

import keras
from keras import ops

from keras_sceneparse.layers.conv_bn_relu import BATCH_NORM_MOMENTUM, ConvBNReLU
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


@serializable
class Encoding(keras.layers.Layer):
    """The encoding layer: residuals to learned codewords, soft-assigned and aggregated.

    Zhang, Dana, Shi, Zhang, Wang, Tyagi and Agrawal, "Context Encoding for Semantic
    Segmentation", CVPR 2018, https://arxiv.org/abs/1803.08904, Sec. 3.1 (after Zhang,
    Xue and Dana, "Deep TEN", CVPR 2017). For the ``N = H W`` feature vectors ``x_i`` of
    an image (``D`` channels), ``K`` codewords ``d_k`` and smoothing factors ``s_k``:

    - residuals ``r_ik = x_i - d_k``;
    - soft assignments (Eq. 1)
      ``a_ik = exp(-s_k ||r_ik||^2) / sum_j exp(-s_j ||r_ij||^2)``;
    - encoders (Eq. 2) ``e_k = sum_i a_ik r_ik``, summed (not averaged) over the pixels.

    Input ``(B, H, W, D)``, output ``(B, K, D)``. ``||x_i - d_k||^2`` is expanded as
    ``||x||^2 - 2 x.d + ||d||^2`` and ``e_k = sum_i a_ik x_i - (sum_i a_ik) d_k``, so no
    ``(B, N, K, D)`` residual tensor is formed. Initialisation follows the reference code
    (PyTorch-Encoding): codewords uniform in ``+-1/sqrt(K D)``; smoothing factors uniform in
    ``[0, 1]`` (the reference stores ``-s_k``, uniform in ``[-1, 0]``).

    Args:
        num_codewords: ``K`` (32 in EncNet).
    """

    def __init__(self, num_codewords=32, **kwargs):
        super().__init__(**kwargs)
        self.num_codewords = check_int("num_codewords", num_codewords, minimum=1)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"Encoding needs a known number of input channels, got shape {tuple(input_shape)}.")
        bound = 1.0 / (self.num_codewords * channels) ** 0.5
        self.codewords = self.add_weight(
            name="codewords",
            shape=(self.num_codewords, channels),
            initializer=keras.initializers.RandomUniform(-bound, bound),
        )
        self.smoothing = self.add_weight(
            name="smoothing", shape=(self.num_codewords,), initializer=keras.initializers.RandomUniform(0.0, 1.0)
        )

    def call(self, inputs):
        shape = ops.shape(inputs)
        x = ops.reshape(inputs, (shape[0], -1, inputs.shape[-1]))
        codewords = ops.cast(self.codewords, x.dtype)
        smoothing = ops.cast(self.smoothing, x.dtype)
        distances = (
            ops.sum(ops.square(x), axis=-1, keepdims=True)
            - 2.0 * ops.einsum("bnd,kd->bnk", x, codewords)
            + ops.sum(ops.square(codewords), axis=-1)
        )
        assignments = ops.softmax(-smoothing * distances, axis=-1)  # Eq. 1, over the codewords
        weighted = ops.einsum("bnk,bnd->bkd", assignments, x)
        return weighted - ops.expand_dims(ops.sum(assignments, axis=1), -1) * codewords  # Eq. 2

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_codewords, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "num_codewords": self.num_codewords}


@serializable
class ContextEncoding(keras.layers.Layer):
    """EncNet's context encoding module: an encoded global context that rescales the channels.

    Zhang et al., "Context Encoding for Semantic Segmentation", CVPR 2018,
    https://arxiv.org/abs/1803.08904, Sec. 3.1-3.2 and Fig. 2. The input features ``X``
    (``D`` channels) pass a 1x1 convolution, batch normalisation and ReLU (the reference
    code's projection before the encoding), then the :class:`Encoding` layer with ``K``
    codewords; its ``(K, D)`` encoders go through batch normalisation (per codeword) and
    ReLU and are averaged over the codewords ("we use the sum instead of the
    concatenation"; the code takes the mean) into the encoded semantics ``e`` (``D``).
    A fully connected layer with sigmoid predicts channel scaling factors
    ``gamma = sigmoid(W e + b)`` ("featuremap attention"), and the output highlights the
    class-dependent channels of ``X``.

    The paper writes ``Y = X * gamma`` (channel-wise multiplication); the reference code
    (PyTorch-Encoding's ``EncModule``) returns ``relu(X + X * gamma)``, a residual form that
    keeps the features' scale. ``residual=True`` (default) follows the code,
    ``residual=False`` the paper.

    Called on ``(B, H, W, D)``; returns ``(scaled_features, encoded)``: ``(B, H, W, D)`` and
    the ``(B, D)`` encoded semantics, which EncNet's semantic encoding loss head reads.

    Args:
        num_codewords: ``K`` (32).
        residual: ``relu(X + X * gamma)`` as the reference code, else ``X * gamma``.
    """

    def __init__(self, num_codewords=32, residual=True, **kwargs):
        super().__init__(**kwargs)
        self.num_codewords = check_int("num_codewords", num_codewords, minimum=1)
        self.residual = bool(residual)
        policy = self.dtype_policy
        self.encoding = Encoding(self.num_codewords, dtype=policy, name="encoding")
        # Normalises each codeword's encoder (BatchNorm1d(K) of the (B, K, D) encoders).
        self.encoding_bn = keras.layers.BatchNormalization(
            axis=1, momentum=BATCH_NORM_MOMENTUM, dtype=policy, name="encoding_bn"
        )
        self.projection = None
        self.attention = None

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"ContextEncoding needs a known number of channels, got shape {tuple(input_shape)}.")
        self.projection = ConvBNReLU(channels, 1, dtype=self.dtype_policy, name="projection")
        self.attention = keras.layers.Dense(channels, activation="sigmoid", dtype=self.dtype_policy, name="attention")
        self.projection.build(input_shape)
        self.encoding.build(input_shape)
        self.encoding_bn.build((None, self.num_codewords, channels))
        self.attention.build((None, channels))

    def call(self, inputs, training=None):
        encoders = self.encoding(self.projection(inputs, training=training))
        encoders = ops.relu(self.encoding_bn(encoders, training=training))
        encoded = ops.mean(encoders, axis=1)
        gamma = self.attention(encoded)[:, None, None, :]
        scaled = ops.relu(inputs + inputs * gamma) if self.residual else inputs * gamma
        return scaled, encoded

    def compute_output_shape(self, input_shape):
        return tuple(input_shape), (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "num_codewords": self.num_codewords, "residual": self.residual}
