"""OCRNet's SpatialGather and ObjectContextualRepresentation (Yuan, Chen and Wang, ECCV 2020, Sec. 3.3)."""

import keras
import numpy as np
import pytest

from keras_sceneparse.layers.object_context import (
    ObjectContextualRepresentation,
    SpatialGather,
)
from tests.harness import run_layer_test

rng = np.random.default_rng(0)
PIXELS = rng.normal(size=(2, 5, 7, 6)).astype("float32")
REGION_LOGITS = rng.normal(size=(2, 5, 7, 3)).astype("float32")
REGIONS = rng.normal(size=(2, 3, 6)).astype("float32")


def test_spatial_gather_harness():
    run_layer_test(
        SpatialGather, {}, (PIXELS, REGION_LOGITS), (2, 3, 6), symbolic_input_shape=[(None, None, 6), (None, None, 3)]
    )


@pytest.mark.parametrize("kwargs", [{"key_channels": 4, "filters": 5}, {"key_channels": 3, "filters": 6,
                                                                          "num_transform_layers": 1}])
def test_object_contextual_representation_harness(kwargs):
    run_layer_test(
        ObjectContextualRepresentation, kwargs, (PIXELS, REGIONS), (2, 5, 7, kwargs["filters"]),
        symbolic_input_shape=[(None, None, 6), (3, 6)],
    )


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_spatial_gather_is_the_spatial_softmax_weighted_mean():
    # f_k = sum_i softmax_i(l_ik) x_i, for each image and region.
    regions = keras.ops.convert_to_numpy(SpatialGather()(PIXELS, REGION_LOGITS))
    weights = softmax(REGION_LOGITS.reshape(2, 35, 3), axis=1)
    expected = np.einsum("bnk,bnc->bkc", weights, PIXELS.reshape(2, 35, 6))
    np.testing.assert_allclose(regions, expected, rtol=1e-5, atol=1e-6)
    # Softmax over the pixels (not the regions): each region's weights sum to one.
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)


def conv_bn_relu(x, conv_bn_relu_layer):
    """NumPy 1x1 convolution + inference-mode batch norm + ReLU with the layer's weights."""
    conv, bn = conv_bn_relu_layer.sublayers[0], conv_bn_relu_layer.sublayers[1]
    kernel = keras.ops.convert_to_numpy(conv.kernel)[0, 0]
    gamma, beta, mean, variance = (keras.ops.convert_to_numpy(w) for w in (bn.gamma, bn.beta, bn.moving_mean,
                                                                           bn.moving_variance))
    y = (x @ kernel - mean) / np.sqrt(variance + bn.epsilon) * gamma + beta
    return np.maximum(y, 0.0)


def test_object_contextual_representation_matches_numpy():
    layer = ObjectContextualRepresentation(key_channels=4, filters=5)
    layer(PIXELS, REGIONS)
    # Non-trivial batch-norm parameters, so that the check covers them.
    for variable in layer.non_trainable_weights + [w for w in layer.trainable_weights if "gamma" in w.path
                                                   or "beta" in w.path]:
        variable.assign(rng.uniform(0.5, 1.5, size=variable.shape).astype("float32"))
    output = keras.ops.convert_to_numpy(layer(PIXELS, REGIONS, training=False))

    x = PIXELS.reshape(2, 35, 6)
    query, key = x, REGIONS
    for query_layer, key_layer in zip(layer.query_transform, layer.key_transform):
        query, key = conv_bn_relu(query, query_layer), conv_bn_relu(key, key_layer)
    value = conv_bn_relu(REGIONS, layer.value_transform)
    relations = softmax(np.einsum("bnc,bkc->bnk", query, key) / np.sqrt(4), axis=-1)  # w_ik
    context = conv_bn_relu(np.einsum("bnk,bkc->bnc", relations, value), layer.context_transform)  # y_i
    expected = conv_bn_relu(np.concatenate([x, context], axis=-1), layer.augmentation)  # z_i = g([x_i; y_i])
    np.testing.assert_allclose(output, expected.reshape(2, 5, 7, 5), rtol=1e-4, atol=1e-5)
    assert np.std(output) > 0.1


def test_transform_widths_follow_the_paper():
    layer = ObjectContextualRepresentation()
    layer(PIXELS, REGIONS)
    assert [t.filters for t in layer.query_transform] == [t.filters for t in layer.key_transform] == [256, 256]
    assert layer.value_transform.filters == 256
    assert layer.context_transform.filters == 6  # back to the pixel representation's channels
    assert layer.augmentation.filters == 512


def test_channel_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same known number of channels"):
        ObjectContextualRepresentation(4, 5)(PIXELS, REGIONS[..., :4])
