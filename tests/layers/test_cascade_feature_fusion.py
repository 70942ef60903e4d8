"""ICNet's cascade feature fusion unit: harness entries and a NumPy recomposition."""

import keras
import numpy as np
import pytest

from keras_sceneparse.layers.cascade_feature_fusion import CascadeFeatureFusion
from tests.harness import run_layer_test

rng = np.random.default_rng(0)
LOW = rng.normal(size=(2, 5, 4, 6)).astype("float32")
HIGH = rng.normal(size=(2, 9, 7, 3)).astype("float32")


@pytest.mark.parametrize(
    "kwargs,expected",
    [({"filters": 5}, (2, 9, 7, 5)), ({"filters": 4, "num_classes": 3}, ((2, 9, 7, 4), (2, 9, 7, 3)))],
)
def test_layer_harness(kwargs, expected):
    run_layer_test(
        CascadeFeatureFusion, kwargs, (LOW, HIGH), expected, symbolic_input_shape=[(None, None, 6), (None, None, 3)]
    )


def numpy_corner_aligned_resize(x, height, width):
    """Bilinear resize with the corner pixels aligned (Caffe's Interp)."""
    in_h, in_w = x.shape[1:3]
    rows = np.arange(height) * ((in_h - 1) / max(height - 1, 1))
    cols = np.arange(width) * ((in_w - 1) / max(width - 1, 1))
    out = np.zeros((x.shape[0], height, width, x.shape[3]))
    for i, r in enumerate(rows):
        r0 = int(np.floor(r)); r1 = min(r0 + 1, in_h - 1); fr = r - r0
        for j, c in enumerate(cols):
            c0 = int(np.floor(c)); c1 = min(c0 + 1, in_w - 1); fc = c - c0
            out[:, i, j] = (
                (1 - fr) * (1 - fc) * x[:, r0, c0] + (1 - fr) * fc * x[:, r0, c1]
                + fr * (1 - fc) * x[:, r1, c0] + fr * fc * x[:, r1, c1]
            )
    return out


def numpy_dilated_conv(x, kernel, rate):
    """'same' convolution of a k x k kernel with dilation ``rate``, no bias."""
    k = kernel.shape[0]
    pad = rate * (k // 2)
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    height, width = x.shape[1:3]
    out = np.zeros(x.shape[:3] + (kernel.shape[3],))
    for a in range(k):
        for b in range(k):
            out += padded[:, a * rate : a * rate + height, b * rate : b * rate + width] @ kernel[a, b]
    return out


def numpy_batch_norm(x, bn):
    gamma, beta, mean, variance = (keras.ops.convert_to_numpy(w) for w in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance))
    return gamma * (x - mean) / np.sqrt(variance + bn.epsilon) + beta


def test_cascade_feature_fusion_matches_numpy_recomposition():
    # Sec. 3.3, Fig. 3: F2' = ReLU(BN(dilated_conv(up(F1))) + BN(conv1x1(F2))); guidance = W up(F1).
    layer = CascadeFeatureFusion(4, num_classes=3)
    layer(LOW, HIGH)
    for bn in (layer.low_bn, layer.high_bn):
        bn.gamma.assign(rng.uniform(0.5, 1.5, 4))
        bn.beta.assign(rng.normal(size=4))
        bn.moving_mean.assign(rng.normal(size=4))
        bn.moving_variance.assign(rng.uniform(0.5, 2.0, 4))
    layer.classifier.bias.assign(rng.normal(size=3))
    fused, guidance = (keras.ops.convert_to_numpy(t) for t in layer(LOW, HIGH, training=False))

    upsampled = numpy_corner_aligned_resize(LOW.astype("float64"), 9, 7)
    low = numpy_batch_norm(numpy_dilated_conv(upsampled, keras.ops.convert_to_numpy(layer.low_conv.kernel), 2), layer.low_bn)
    high = numpy_batch_norm(HIGH @ keras.ops.convert_to_numpy(layer.high_conv.kernel)[0, 0], layer.high_bn)
    np.testing.assert_allclose(fused, np.maximum(low + high, 0), rtol=1e-4, atol=1e-4)
    classifier = keras.ops.convert_to_numpy(layer.classifier.kernel)[0, 0]
    expected_guidance = upsampled @ classifier + keras.ops.convert_to_numpy(layer.classifier.bias)
    np.testing.assert_allclose(guidance, expected_guidance, rtol=1e-4, atol=1e-4)


def test_the_dilated_convolution_matters():
    # A rate-1 recomposition must not match: the test can tell the dilation apart.
    layer = CascadeFeatureFusion(4, dilation_rate=2)
    layer(LOW, HIGH)
    upsampled = numpy_corner_aligned_resize(LOW.astype("float64"), 9, 7)
    kernel = keras.ops.convert_to_numpy(layer.low_conv.kernel)
    assert layer.low_conv.dilation_rate == (2, 2)
    assert not np.allclose(numpy_dilated_conv(upsampled, kernel, 1), numpy_dilated_conv(upsampled, kernel, 2), atol=1e-3)
