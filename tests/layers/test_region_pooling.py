import importlib.util

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_sceneparse.layers.region_pooling import (
    RegionPooling,
    RegionUnpooling,
    scatter_to_pixels,
)
from tests.harness import run_layer_test, run_under_backend

rng = np.random.default_rng(0)
NUM_REGIONS = 5
FEATURES = rng.normal(size=(2, 6, 5, 4)).astype("float32")
SEGMENTS = rng.integers(-1, NUM_REGIONS, size=(2, 12, 10)).astype("int32")
REGION_FEATURES = rng.normal(size=(2, NUM_REGIONS, 4)).astype("float32")


def test_harness():
    run_layer_test(
        RegionPooling,
        {"num_regions": NUM_REGIONS},
        (FEATURES, SEGMENTS),
        (2, NUM_REGIONS, 4),
        symbolic_input_shape=[(None, None, 4), (None, None)],
    )


def test_unpooling_harness():
    run_layer_test(
        RegionUnpooling,
        {},
        (REGION_FEATURES, SEGMENTS),
        (2, 12, 10, 4),
        symbolic_input_shape=[(NUM_REGIONS, 4), (None, None)],
    )


# --- independent NumPy computations ------------------------------------------------------


def numpy_region_means(features, segments, num_regions):
    """Means with explicit loops; the segment map resized by half-pixel nearest neighbour."""
    batch, height, width, channels = features.shape
    big_height, big_width = segments.shape[1:]
    sums = np.zeros((batch, num_regions, channels))
    counts = np.zeros((batch, num_regions))
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                region = segments[b, int((y + 0.5) * big_height / height), int((x + 0.5) * big_width / width)]
                if region >= 0:
                    sums[b, region] += features[b, y, x]
                    counts[b, region] += 1
    return sums / np.maximum(counts, 1)[..., None]


@pytest.mark.parametrize("feature_size", [(12, 10), (6, 5), (5, 3), (7, 9)])
def test_means_match_numpy(feature_size):
    features = rng.normal(size=(2, *feature_size, 3)).astype("float32")
    pooled = keras.ops.convert_to_numpy(RegionPooling(NUM_REGIONS)(features, SEGMENTS))
    np.testing.assert_allclose(pooled, numpy_region_means(features, SEGMENTS, NUM_REGIONS), atol=1e-5)


def test_region_without_pixels_pools_to_zeros():
    segments = np.zeros((1, 4, 4), "int32")
    segments[0, :, 2:] = 2  # region 1 and region 3 have no pixel
    pooled = keras.ops.convert_to_numpy(RegionPooling(4)(np.ones((1, 4, 4, 2), "float32"), segments))
    np.testing.assert_array_equal(pooled[0], [[1, 1], [0, 0], [1, 1], [0, 0]])


def test_scatter_to_pixels_and_round_trip():
    expected = np.zeros((2, 12, 10, 4), "float32")
    for b in range(2):
        for y in range(12):
            for x in range(10):
                if SEGMENTS[b, y, x] >= 0:
                    expected[b, y, x] = REGION_FEATURES[b, SEGMENTS[b, y, x]]
    layer = RegionPooling(NUM_REGIONS)
    scattered = keras.ops.convert_to_numpy(layer.scatter_to_pixels(REGION_FEATURES, SEGMENTS))
    np.testing.assert_array_equal(scattered, expected)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(RegionUnpooling()(REGION_FEATURES, SEGMENTS)), expected)
    # Features constant on each region pool back to the region's vector, and scatter to
    # themselves.
    pooled = keras.ops.convert_to_numpy(layer(scattered, SEGMENTS))
    present = np.stack([np.isin(np.arange(NUM_REGIONS), SEGMENTS[b]) for b in range(2)])
    np.testing.assert_allclose(pooled[present], REGION_FEATURES[present], atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scatter_to_pixels(pooled, SEGMENTS)), scattered, atol=1e-6)


SEGMENTS_SPEC = tf.TensorSpec((None, None, None), tf.int32)


def test_compiled_graph_with_unknown_sizes():
    layer = RegionPooling(NUM_REGIONS)

    def pool_and_scatter(features, segments):
        pooled = layer(features, segments)
        return pooled, scatter_to_pixels(pooled, segments)

    compiled = tf.function(
        pool_and_scatter, input_signature=[tf.TensorSpec((None, None, None, 4)), SEGMENTS_SPEC]
    )
    for expected, actual in zip(pool_and_scatter(FEATURES, SEGMENTS), compiled(FEATURES, SEGMENTS)):
        np.testing.assert_allclose(actual.numpy(), keras.ops.convert_to_numpy(expected), atol=1e-6)
    bad = SEGMENTS.copy()
    bad[1, 3, 3] = NUM_REGIONS
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside"):
        compiled(FEATURES, bad)
    compiled_scatter = tf.function(
        scatter_to_pixels, input_signature=[tf.TensorSpec((None, NUM_REGIONS, 4)), SEGMENTS_SPEC]
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside"):
        compiled_scatter(REGION_FEATURES, bad)


def test_rejects_bad_inputs():
    bad = SEGMENTS.copy()
    bad[0, 0, 0] = 7
    with pytest.raises(ValueError, match=r"\[7\] outside \[0, 5\)"):
        RegionPooling(NUM_REGIONS)(FEATURES, bad)
    with pytest.raises(ValueError, match="num_regions"):
        RegionPooling(0)
    with pytest.raises(ValueError, match="segments"):
        RegionPooling(NUM_REGIONS)(FEATURES, SEGMENTS[..., None])


# --- the same computation under another backend ------------------------------------------



@pytest.mark.parametrize(
    "backend",
    [
        "jax",
        pytest.param(
            "torch", marks=pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="no PyTorch")
        ),
    ],
)
def test_same_outputs_under_other_backend(backend, tmp_path):
    features, segments = keras.Input((None, None, 4)), keras.Input((None, None), dtype="int32")
    pooled = RegionPooling(NUM_REGIONS)(features, segments)
    model = keras.Model([features, segments], [pooled, RegionUnpooling()(pooled, segments)])
    expected = [keras.ops.convert_to_numpy(o) for o in model([FEATURES, SEGMENTS])]
    actual = run_under_backend(backend, model, [FEATURES, SEGMENTS], tmp_path)
    for e, a in zip(expected, actual):
        np.testing.assert_allclose(a, e, atol=1e-5)
