import keras
import numpy as np
import pytest

from keras_sceneparse.layers.atrous_spatial_pyramid_pooling_v2 import (
    ASPP_L_RATES,
    ASPP_S_RATES,
    AtrousSpatialPyramidPoolingV2,
)
from tests.harness import run_layer_test

rng = np.random.default_rng(0)
FEATURES = rng.normal(size=(2, 9, 7, 6)).astype("float32")
UNKNOWN = (None, None, 6)

HARNESS_CASES = [
    ({"filters": 4, "atrous_rates": (1, 2)}, 2 * 2),
    ({"filters": 3, "atrous_rates": (2, 3, 5), "hidden_filters": 5, "dropout": 0.5}, 3 * 3 * 2),
]


@pytest.mark.parametrize("kwargs,num_weights", HARNESS_CASES)
def test_layer_harness(kwargs, num_weights):
    run_layer_test(
        AtrousSpatialPyramidPoolingV2, kwargs, FEATURES, (2, 9, 7, kwargs["filters"]),
        symbolic_input_shape=[UNKNOWN], expected_num_trainable_weights=num_weights,
    )


# --- numerical checks against an independent NumPy computation ------------------------------


def numpy_atrous_conv(x, kernel, bias, rate):
    """'same' dilated convolution of NHWC ``x`` with an HWIO ``kernel`` (odd size)."""
    size = kernel.shape[0]
    reach = rate * (size // 2)
    padded = np.pad(x, ((0, 0), (reach, reach), (reach, reach), (0, 0)))
    height, width = x.shape[1:3]
    out = np.zeros((*x.shape[:3], kernel.shape[-1]), "float64")
    for i in range(size):
        for j in range(size):
            window = padded[:, i * rate : i * rate + height, j * rate : j * rate + width]
            out += window @ kernel[i, j]
    return out + bias


def weights_of(layer):
    return keras.ops.convert_to_numpy(layer.kernel).astype("float64"), keras.ops.convert_to_numpy(layer.bias)


def test_output_is_the_sum_of_independent_atrous_convolutions():
    # Sec. 3.1 / Fig. 7 and the ResNet-101 prototxt: y = sum_i conv3x3_{rate r_i}(x).
    x = rng.normal(size=(1, 11, 13, 3)).astype("float32")
    layer = AtrousSpatialPyramidPoolingV2(4, atrous_rates=(1, 2, 5))
    layer.build(x.shape)
    for branch in layer.branches:  # biases start at zero; make them count
        branch[0].bias.assign(rng.normal(size=4).astype("float32"))
    actual = keras.ops.convert_to_numpy(layer(x))
    expected = sum(
        numpy_atrous_conv(x.astype("float64"), *weights_of(branch[0]), rate)
        for branch, rate in zip(layer.branches, (1, 2, 5))
    )
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)
    # Each branch alone is not the answer: the sum is.
    single = numpy_atrous_conv(x.astype("float64"), *weights_of(layer.branches[0][0]), 1)
    assert not np.allclose(actual, single, atol=1e-3)


def test_vgg_branches_are_fc6_fc7_fc8_and_are_summed_at_inference():
    # Fig. 7b: each branch fc6 (3x3, rate r) -> ReLU -> fc7 (1x1) -> ReLU -> fc8 (1x1); dropout off.
    x = rng.normal(size=(2, 8, 9, 3)).astype("float32")
    rates = (1, 3)
    layer = AtrousSpatialPyramidPoolingV2(2, atrous_rates=rates, hidden_filters=5, dropout=0.5)
    layer.build(x.shape)
    actual = keras.ops.convert_to_numpy(layer(x, training=False))
    expected = 0.0
    for branch, rate in zip(layer.branches, rates):
        fc6, _, fc7, _, fc8 = branch
        h = np.maximum(numpy_atrous_conv(x.astype("float64"), *weights_of(fc6), rate), 0)
        h = np.maximum(numpy_atrous_conv(h, *weights_of(fc7), 1), 0)
        expected = expected + numpy_atrous_conv(h, *weights_of(fc8), 1)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)
    assert [l.name for l in layer.branches[1]] == [f"branch2_{n}" for n in ("fc6", "drop6", "fc7", "drop7", "fc8")]
    assert layer.branches[1][0].dilation_rate == (3, 3) and layer.branches[1][0].filters == 5
    # Dropout 0.5 acts in training only.
    assert not np.allclose(keras.ops.convert_to_numpy(layer(x, training=True)), actual)


def test_rates_and_errors():
    assert ASPP_L_RATES == (6, 12, 18, 24) and ASPP_S_RATES == (2, 4, 8, 12)
    layer = AtrousSpatialPyramidPoolingV2(21)
    layer.build((None, None, None, 16))
    assert [branch[0].dilation_rate for branch in layer.branches] == [(r, r) for r in ASPP_L_RATES]
    assert all(len(branch) == 1 and branch[0].filters == 21 for branch in layer.branches)
    with pytest.raises(ValueError, match="atrous_rates"):
        AtrousSpatialPyramidPoolingV2(3, atrous_rates=())
    with pytest.raises(ValueError, match="hidden_filters"):
        AtrousSpatialPyramidPoolingV2(3, hidden_filters=-1)
    with pytest.raises(TypeError, match="filters"):
        AtrousSpatialPyramidPoolingV2(2.5)
