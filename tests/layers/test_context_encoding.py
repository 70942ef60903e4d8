"""EncNet's Encoding layer and ContextEncoding module (Zhang et al., CVPR 2018, Sec. 3.1)."""

import keras
import numpy as np
import pytest

from keras_sceneparse.layers.context_encoding import ContextEncoding, Encoding
from tests.harness import run_layer_test

rng = np.random.default_rng(0)
FEATURES = rng.normal(size=(2, 4, 5, 6)).astype("float32")


def test_encoding_harness():
    run_layer_test(Encoding, {"num_codewords": 3}, FEATURES, (2, 3, 6), symbolic_input_shape=[(None, None, 6)],
                   expected_num_trainable_weights=2)


@pytest.mark.parametrize("residual", [True, False])
def test_context_encoding_harness(residual):
    run_layer_test(
        ContextEncoding, {"num_codewords": 4, "residual": residual}, FEATURES, ((2, 4, 5, 6), (2, 6)),
        symbolic_input_shape=[(None, None, 6)],
    )


def numpy_encoding(x, codewords, smoothing):
    """Eq. 1-2 literally: residuals, softmax assignments over codewords, sum over pixels."""
    x = x.reshape(x.shape[0], -1, x.shape[-1])
    residuals = x[:, :, None, :] - codewords[None, None]  # r_ik, (B, N, K, D)
    logits = -smoothing * np.sum(residuals**2, axis=-1)  # -s_k ||r_ik||^2
    logits -= logits.max(axis=-1, keepdims=True)
    assignments = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)  # a_ik, Eq. 1
    return np.einsum("bnk,bnkd->bkd", assignments, residuals)  # e_k, Eq. 2


def test_encoding_matches_equations_1_and_2():
    layer = Encoding(num_codewords=3)
    layer(FEATURES)
    codewords = rng.normal(size=(3, 6)).astype("float32")
    smoothing = np.array([0.05, 0.2, 0.5], "float32")  # soft assignments: every codeword counts
    layer.codewords.assign(codewords)
    layer.smoothing.assign(smoothing)
    output = keras.ops.convert_to_numpy(layer(FEATURES))
    expected = numpy_encoding(FEATURES.astype("float64"), codewords, smoothing)
    np.testing.assert_allclose(output, expected, rtol=1e-4, atol=1e-4)
    # The assignments are soft, not one-hot: no codeword gets every pixel.
    assert np.all(np.abs(expected) > 1e-3)


def test_encoding_initialisation_follows_the_reference_code():
    layer = Encoding(num_codewords=32)
    layer.build((None, None, None, 512))
    bound = 1 / np.sqrt(32 * 512)
    codewords = keras.ops.convert_to_numpy(layer.codewords)
    smoothing = keras.ops.convert_to_numpy(layer.smoothing)
    assert codewords.shape == (32, 512) and np.abs(codewords).max() <= bound
    assert smoothing.shape == (32,) and 0 <= smoothing.min() and smoothing.max() <= 1


def test_context_encoding_scales_channels_by_the_encoded_context():
    layer = ContextEncoding(num_codewords=4)
    scaled, encoded = layer(FEATURES, training=False)
    # gamma = sigmoid(W e + b), one factor per channel and image; output relu(X + X gamma).
    dense = layer.attention
    gamma = 1 / (1 + np.exp(-(keras.ops.convert_to_numpy(encoded) @ keras.ops.convert_to_numpy(dense.kernel)
                              + keras.ops.convert_to_numpy(dense.bias))))
    expected = np.maximum(FEATURES * (1 + gamma[:, None, None, :]), 0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scaled), expected, rtol=1e-5, atol=1e-6)
    # The encoded semantics are the mean over codewords of relu(BN(e_k)) (inference BN: e / sqrt(1 + eps)).
    encoders = keras.ops.convert_to_numpy(layer.encoding(layer.projection(FEATURES, training=False)))
    bn = layer.encoding_bn
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(encoded), np.maximum(encoders / np.sqrt(1 + bn.epsilon), 0).mean(axis=1),
        rtol=1e-5, atol=1e-6,
    )
