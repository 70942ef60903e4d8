"""DUpsampling (Tian, He, Shen and Yan, CVPR 2019, Sec. 3.1-3.2) and the PCA basis of label patches."""

import keras
import numpy as np
import pytest

from keras_sceneparse.layers.data_dependent_upsampling import (
    DataDependentUpsampling,
    depth_to_space,
    fit_dupsampling_basis,
    label_patches,
)
from tests.harness import run_layer_test

rng = np.random.default_rng(0)
FEATURES = rng.normal(size=(2, 3, 4, 5)).astype("float32")


def test_harness():
    run_layer_test(DataDependentUpsampling, {"num_classes": 3, "ratio": 4}, FEATURES, (2, 12, 16, 3),
                   symbolic_input_shape=[(None, None, 5)], expected_num_trainable_weights=2)
    run_layer_test(DataDependentUpsampling, {"num_classes": 2, "ratio": 2, "learn_temperature": False}, FEATURES,
                   (2, 6, 8, 2), expected_num_trainable_weights=1)


def numpy_dupsampling(features, kernel, ratio, num_classes):
    """Eq. 2 pixel by pixel: the 1x1 convolution's r^2 N scores laid out as an r x r patch."""
    batch, height, width, _ = features.shape
    output = np.zeros((batch, height * ratio, width * ratio, num_classes))
    for b in range(batch):
        for i in range(height):
            for j in range(width):
                scores = features[b, i, j] @ kernel  # W x, r^2 N values
                patch = scores.reshape(ratio, ratio, num_classes)
                output[b, i * ratio : (i + 1) * ratio, j * ratio : (j + 1) * ratio] = patch
    return output


def test_output_is_the_depth_to_space_of_the_1x1_convolution_divided_by_the_temperature():
    layer = DataDependentUpsampling(num_classes=3, ratio=4)
    layer(FEATURES)
    layer.temperature.assign(2.5)
    output = keras.ops.convert_to_numpy(layer(FEATURES))
    kernel = keras.ops.convert_to_numpy(layer.kernel)[0, 0]
    np.testing.assert_allclose(output, numpy_dupsampling(FEATURES, kernel, 4, 3) / 2.5, rtol=1e-5, atol=1e-6)


def test_depth_to_space_matches_tensorflow():
    import tensorflow as tf

    x = rng.normal(size=(2, 3, 4, 2 * 2 * 5)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(depth_to_space(x, 2)), tf.nn.depth_to_space(x, 2))


def synthetic_labels(num_images=6, ratio=4, size=(16, 20), num_classes=3):
    """Label maps tiled with ratio x ratio patches drawn from three templates: the patches
    span a space of dimension 3, so a basis of 3 reconstructs them exactly."""
    templates = np.zeros((3, ratio, ratio), np.int64)
    templates[1, :, ratio // 2 :] = 1  # left/right split
    templates[2] = 2  # uniform class 2
    choice = rng.integers(0, 3, size=(num_images, size[0] // ratio, size[1] // ratio))
    return templates[choice].transpose(0, 1, 3, 2, 4).reshape(num_images, *size)


def test_basis_reconstructs_patches_from_a_low_dimensional_space():
    labels = synthetic_labels()
    basis = fit_dupsampling_basis(labels, num_classes=3, ratio=4, channels=3)
    assert basis.shape == (3, 4 * 4 * 3)
    np.testing.assert_allclose(basis @ basis.T, np.eye(3), atol=1e-5)  # orthonormal rows: P = W^T
    patches = label_patches(labels, 3, 4)
    reconstruction = (patches @ basis.T) @ basis  # v^ = W P v
    np.testing.assert_allclose(reconstruction, patches, atol=1e-5)
    # With fewer channels than the patches' dimension the reconstruction is lossy.
    small = fit_dupsampling_basis(labels, num_classes=3, ratio=4, channels=2)
    assert np.abs((patches @ small.T) @ small - patches).max() > 0.1


def test_layer_with_the_fitted_basis_decodes_compressed_labels_to_the_label_map():
    # Sec. 3.1: x = P v compresses each patch; DUpsampling with W = P^T decodes it back.
    labels = synthetic_labels(num_images=2)
    basis = fit_dupsampling_basis(labels, num_classes=3, ratio=4, channels=3)
    compressed = (label_patches(labels, 3, 4) @ basis.T).reshape(2, 4, 5, 3).astype("float32")
    layer = DataDependentUpsampling(num_classes=3, ratio=4, learn_temperature=False)
    layer(compressed)
    layer.kernel.assign(basis[None, None])
    decoded = keras.ops.convert_to_numpy(layer(compressed))
    np.testing.assert_allclose(decoded, np.eye(3)[labels], atol=1e-5)
    assert np.array_equal(decoded.argmax(-1), labels)


def test_label_patches_ignore_void_and_partial_patches():
    labels = np.array([[[0, 1, 2], [255, 1, 0], [2, 2, 2]]])
    patches = label_patches(labels, 3, 2, ignore_class=255)
    assert patches.shape == (1, 2 * 2 * 3)  # one full 2x2 patch; the last row and column are dropped
    expected = np.zeros((2, 2, 3))
    expected[0, 0, 0] = expected[0, 1, 1] = expected[1, 1, 1] = 1  # the void pixel is all zeros
    np.testing.assert_array_equal(patches[0], expected.ravel())


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="channels"):
        fit_dupsampling_basis(synthetic_labels(), num_classes=3, ratio=4, channels=49)
    with pytest.raises(ValueError, match="ratio"):
        DataDependentUpsampling(num_classes=3, ratio=0)
