import keras
import numpy as np
import pytest

from keras_sceneparse.layers.l2_normalization import L2Normalization
from tests.harness import run_layer_test

rng = np.random.default_rng(0)
FEATURES = rng.normal(size=(2, 5, 7, 6)).astype("float32")

HARNESS_CASES = [
    (L2Normalization, {}, (2, 5, 7, 6)),
    (L2Normalization, {"scale": 1.0, "epsilon": 1e-6}, (2, 5, 7, 6)),
]


@pytest.mark.parametrize("layer_cls,kwargs,expected", HARNESS_CASES, ids=lambda v: getattr(v, "__name__", None))
def test_layer_harness(layer_cls, kwargs, expected):
    run_layer_test(layer_cls, kwargs, FEATURES, expected, symbolic_input_shape=[(None, None, 6)])


def test_matches_numpy_with_per_channel_scales():
    # Eq. 1-3: y_i = gamma_i * x_i / ||x||_2, the norm over the channels at each position.
    layer = L2Normalization(scale=10.0)
    layer(FEATURES)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.gamma), 10.0)
    gamma = rng.uniform(0.5, 20.0, size=6).astype("float32")
    layer.gamma.assign(gamma)
    expected = FEATURES / np.sqrt((FEATURES.astype("float64") ** 2).sum(axis=-1, keepdims=True)) * gamma
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(FEATURES)), expected, rtol=1e-5, atol=1e-6)
    # Each position's output divided by gamma has unit norm; not a norm over space or batch.
    unit = keras.ops.convert_to_numpy(layer(FEATURES)) / gamma
    np.testing.assert_allclose(np.linalg.norm(unit, axis=-1), 1.0, rtol=1e-5)


def test_zero_vector_stays_zero():
    x = np.zeros((1, 2, 2, 3), "float32")
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(L2Normalization()(x))))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(L2Normalization()(x)), 0.0)


def test_scales_are_trainable_per_channel():
    layer = L2Normalization()
    layer.build((None, None, None, 6))
    assert [tuple(w.shape) for w in layer.trainable_weights] == [(6,)]
