import keras
import numpy as np
import pytest

from keras_sceneparse.layers.point_sampling import (
    PointHead,
    grid_points,
    importance_sampled_points,
    most_uncertain_grid_points,
    point_sample,
    sample_labels,
    uncertainty,
)
from tests.harness import run_layer_test

rng = np.random.default_rng(0)


def numpy_point_sample(features, points):
    """Bilinear interpolation, zero outside the map, pixel centres at (i + 0.5) / size
    (grid_sample with align_corners=False), one point at a time."""
    batch, height, width, channels = features.shape
    out = np.zeros((batch, points.shape[1], channels))
    for b in range(batch):
        for n, (px, py) in enumerate(points[b]):
            x, y = px * width - 0.5, py * height - 0.5
            for row in (int(np.floor(y)), int(np.floor(y)) + 1):
                for col in (int(np.floor(x)), int(np.floor(x)) + 1):
                    if 0 <= row < height and 0 <= col < width:
                        out[b, n] += (1 - abs(x - col)) * (1 - abs(y - row)) * features[b, row, col]
    return out


def test_point_sample_matches_numpy():
    features = rng.normal(size=(2, 5, 7, 3)).astype("float32")
    # Inside, on the borders and slightly outside the image.
    points = rng.uniform(-0.05, 1.05, size=(2, 40, 2)).astype("float32")
    expected = numpy_point_sample(features, points)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(point_sample(features, points)), expected, atol=1e-5)


def test_point_sample_at_pixel_centres_returns_the_pixels():
    features = rng.normal(size=(1, 4, 6, 2)).astype("float32")
    indices = np.array([[0, 5, 7, 23, 12]])
    points = keras.ops.convert_to_numpy(grid_points(4, 6, indices))
    np.testing.assert_allclose(points[0, 2], [(1 + 0.5) / 6, (1 + 0.5) / 4])
    sampled = keras.ops.convert_to_numpy(point_sample(features, points))
    np.testing.assert_allclose(sampled[0], features.reshape(1, 24, 2)[0, indices[0]], atol=1e-6)


def test_sample_labels_takes_the_containing_pixel():
    labels = rng.integers(0, 9, size=(2, 5, 7)).astype("int32")
    points = rng.uniform(0, 1, size=(2, 30, 2)).astype("float32")
    rows = np.minimum((points[..., 1] * 5).astype(int), 4)
    cols = np.minimum((points[..., 0] * 7).astype(int), 6)
    expected = np.stack([labels[b, rows[b], cols[b]] for b in range(2)])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(sample_labels(labels, points)), expected)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(sample_labels(labels[..., None], points)), expected)


def test_uncertainty_is_the_negative_top_two_margin():
    logits = rng.normal(size=(3, 4, 5)).astype("float32")
    top = np.sort(logits, -1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(uncertainty(logits)), top[..., -2] - top[..., -1], atol=1e-6)


def test_most_uncertain_grid_points_matches_numpy():
    logits = rng.normal(size=(2, 6, 5, 4)).astype("float32")
    indices, points = most_uncertain_grid_points(logits, 7)
    top = np.sort(logits, -1)
    scores = (top[..., -2] - top[..., -1]).reshape(2, -1)
    for b in range(2):
        assert set(keras.ops.convert_to_numpy(indices)[b]) == set(np.argsort(-scores[b])[:7])
    points = keras.ops.convert_to_numpy(points)
    flat = keras.ops.convert_to_numpy(indices)
    np.testing.assert_allclose(points[..., 0], (flat % 5 + 0.5) / 5, atol=1e-6)
    np.testing.assert_allclose(points[..., 1], (flat // 5 + 0.5) / 6, atol=1e-6)
    # Never more points than pixels.
    assert tuple(most_uncertain_grid_points(logits, 1000)[0].shape) == (2, 30)


def test_importance_sampling_concentrates_on_uncertain_regions():
    # Certain everywhere but in columns 8-11 of 16, where the two classes tie.
    logits = np.zeros((2, 8, 16, 2), "float32")
    logits[..., 0] = 5.0
    logits[:, :, 8:12, :] = 0.0
    seed = keras.random.SeedGenerator(1)
    points = keras.ops.convert_to_numpy(importance_sampled_points(logits, 200, 3, 0.75, seed=seed))
    assert points.shape == (2, 200, 2) and points.min() >= 0 and points.max() <= 1
    in_band = (points[..., 0] > 7.5 / 16) & (points[..., 0] < 11.5 / 16)  # bilinear blur of half a pixel
    # A quarter of the image; the 150 important points come from ~0.3 * 600 candidates in the band.
    assert in_band.mean() > 0.5
    uniform = keras.ops.convert_to_numpy(importance_sampled_points(logits, 400, 3, 0.0, seed=seed))
    assert abs(((uniform[..., 0] > 0.5) & (uniform[..., 0] < 0.75)).mean() - 0.25) < 0.06


def numpy_point_head(head, fine, coarse):
    x = fine
    for layer in head.hidden:
        x = np.maximum(np.concatenate([x, coarse], -1) @ layer.kernel.numpy() + layer.bias.numpy(), 0)
    return np.concatenate([x, coarse], -1) @ head.classifier.kernel.numpy() + head.classifier.bias.numpy()


def test_point_head_harness_and_numpy():
    fine = rng.normal(size=(2, 11, 6)).astype("float32")
    coarse = rng.normal(size=(2, 11, 3)).astype("float32")
    run_layer_test(PointHead, {"num_classes": 3, "filters": 8}, (fine, coarse), (2, 11, 3),
                   symbolic_input_shape=[(None, 6), (None, 3)], expected_num_trainable_weights=8)
    head = PointHead(3, filters=8)
    out = keras.ops.convert_to_numpy(head(fine, coarse))
    np.testing.assert_allclose(out, numpy_point_head(head, fine, coarse), atol=1e-5)
    # The coarse prediction enters every layer (fine + coarse, then hidden + coarse).
    assert [layer.kernel.shape[0] for layer in head.hidden] == [9, 11, 11]
    assert head.classifier.kernel.shape == (11, 3)


def test_argument_errors():
    with pytest.raises(ValueError, match="num_classes"):
        PointHead(0)
    with pytest.raises(ValueError, match="num_layers"):
        PointHead(3, num_layers=-1)
