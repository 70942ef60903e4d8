import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from keras_sceneparse.data.pipeline import (
    Augmentation,
    check_size,
    crop_example,
    normalize,
    pad_batch_to_multiple,
    remap_ids,
    transform_example,
)
from keras_sceneparse.layers import ImageNormalization

IGNORE = 9
# Well-separated colours, one per class, so a pixel's colour tells its label.
CLASS_COLORS = np.array([(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0)], np.float32)
NO_JITTER = dict(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)


def blocky_example(height=40, width=48, block=8, seed=0):
    """Labels constant on ``block``-sized squares (no left-right symmetry), image = colour of the label."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, len(CLASS_COLORS), (height // block, width // block))
    label = np.kron(blocks, np.ones((block, block), np.int64)).astype(np.int32)
    return CLASS_COLORS[label], label


@pytest.mark.parametrize("mode", ["caffe", "imagenet", "tf", "unit"])
def test_normalize_matches_the_image_normalization_layer(mode, rng):
    images = rng.uniform(0, 255, (2, 5, 6, 3)).astype(np.float32)
    expected = ImageNormalization(mode)(images).numpy()
    np.testing.assert_allclose(normalize(tf.constant(images), mode).numpy(), expected, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("mode", ["tf", "unit"])
def test_normalize_grayscale_matches_the_layer(mode, rng):
    images = rng.uniform(0, 255, (1, 4, 4, 1)).astype(np.float32)
    expected = ImageNormalization(mode)(images).numpy()
    np.testing.assert_allclose(normalize(tf.constant(images), mode).numpy(), expected, rtol=1e-6, atol=1e-5)


def test_normalize_caffe_by_hand():
    pixel = np.array([[[[10.0, 20.0, 30.0]]]], np.float32)  # RGB
    # BGR order, minus the Caffe ImageNet means (B, G, R) = (103.939, 116.779, 123.68).
    expected = [[[[30 - 103.939, 20 - 116.779, 10 - 123.68]]]]
    np.testing.assert_allclose(normalize(tf.constant(pixel), "caffe").numpy(), expected, rtol=1e-6)


def test_normalize_rejects_per_channel_modes_on_grayscale_and_unknown_modes():
    with pytest.raises(ValueError, match="3 channels"):
        normalize(tf.zeros((1, 2, 2, 1)), "imagenet")
    with pytest.raises(ValueError, match="normalization"):
        normalize(tf.zeros((1, 2, 2, 3)), "zscore")
    assert normalize(tf.ones((1, 2, 2, 3)), None).numpy().max() == 1.0


def test_augmentation_argument_conversion_and_validation():
    assert Augmentation.from_argument(True) == Augmentation()
    assert Augmentation.from_argument(False) is None
    assert Augmentation.from_argument(None) is None
    custom = Augmentation(scale_range=(1, 1), flip=False)
    assert Augmentation.from_argument(custom) is custom
    assert custom.scale_range == (1.0, 1.0) and not custom.changes_size
    with pytest.raises(TypeError, match="augment"):
        Augmentation.from_argument("yes")
    with pytest.raises(ValueError, match="scale_range"):
        Augmentation(scale_range=(2.0, 1.0))
    with pytest.raises(ValueError, match="scale_range"):
        Augmentation(scale_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="scale_range"):
        Augmentation(scale_range=1.5)
    with pytest.raises(ValueError, match="hue"):
        Augmentation(hue=0.7)
    with pytest.raises(ValueError, match="brightness"):
        Augmentation(brightness=-0.1)
    with pytest.raises(TypeError, match="flip"):
        Augmentation(flip="no")
    with pytest.raises(dataclasses.FrozenInstanceError):
        Augmentation().flip = False


def test_check_size():
    assert check_size("crop_size", 5) == (5, 5)
    assert check_size("crop_size", [3, 4]) == (3, 4)
    assert check_size("crop_size", None) is None
    for bad in [(0, 4), (4,), (-1, 2), (2.5, 3), "ab", (True, 2)]:
        with pytest.raises(ValueError, match="crop_size"):
            check_size("crop_size", bad)


def test_centre_crop_pads_small_examples_with_zero_and_the_ignore_id(rng):
    image = rng.uniform(0, 255, (3, 4, 3)).astype(np.float32)
    label = rng.integers(0, 4, (3, 4)).astype(np.int32)
    out_image, out_label = crop_example(tf.constant(image), tf.constant(label), (6, 8), IGNORE)
    out_image, out_label = out_image.numpy(), out_label.numpy()
    assert out_image.shape == (6, 8, 3) and out_label.shape == (6, 8)
    np.testing.assert_array_equal(out_image[:3, :4], image)
    np.testing.assert_array_equal(out_label[:3, :4], label)
    padded = np.ones((6, 8), bool)
    padded[:3, :4] = False
    assert np.all(out_label[padded] == IGNORE)
    assert np.all(out_image[padded] == 0)


def test_centre_crop_of_a_large_example(rng):
    image = rng.uniform(0, 255, (20, 30, 3)).astype(np.float32)
    label = rng.integers(0, 4, (20, 30)).astype(np.int32)
    out_image, out_label = crop_example(tf.constant(image), tf.constant(label), (10, 10), IGNORE)
    np.testing.assert_array_equal(out_image.numpy(), image[5:15, 10:20])
    np.testing.assert_array_equal(out_label.numpy(), label[5:15, 10:20])


def test_random_crop_takes_the_same_window_of_image_and_label(rng):
    image = rng.uniform(0, 255, (20, 30, 3)).astype(np.float32)
    label = rng.integers(0, 4, (20, 30)).astype(np.int32)
    offsets = set()
    for seed in range(8):
        out_image, out_label = crop_example(
            tf.constant(image), tf.constant(label), (7, 9), IGNORE, seed=tf.constant([seed, 1], tf.int64)
        )
        out_image, out_label = out_image.numpy(), out_label.numpy()
        matches = [
            (top, left)
            for top in range(20 - 7 + 1)
            for left in range(30 - 9 + 1)
            if np.array_equal(image[top : top + 7, left : left + 9], out_image)
        ]
        assert len(matches) == 1
        top, left = matches[0]
        np.testing.assert_array_equal(out_label, label[top : top + 7, left : left + 9])
        offsets.add(matches[0])
    assert len(offsets) > 1  # the offset is random


def test_flip_moves_image_and_label_together():
    image, label = blocky_example()
    augmentation = Augmentation(scale_range=(1.0, 1.0), flip=True, **NO_JITTER)
    outcomes = set()
    for seed in range(12):
        out_image, out_label = transform_example(
            tf.constant(image), tf.constant(label), ignore_class=IGNORE, augmentation=augmentation,
            seed=tf.constant([seed, 7], tf.int64),
        )
        out_image, out_label = out_image.numpy(), out_label.numpy()
        if np.array_equal(out_label, label):
            np.testing.assert_allclose(out_image, image, atol=1e-3)
            outcomes.add("kept")
        else:
            np.testing.assert_array_equal(out_label, label[:, ::-1])
            np.testing.assert_allclose(out_image, image[:, ::-1], atol=1e-3)
            outcomes.add("flipped")
    assert outcomes == {"kept", "flipped"}


def constant_neighbourhood(label):
    """True where the 3x3 neighbourhood of a pixel holds one label (away from class borders)."""
    padded = np.pad(label, 1, mode="edge")
    same = np.ones(label.shape, bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            same &= padded[1 + dy : 1 + dy + label.shape[0], 1 + dx : 1 + dx + label.shape[1]] == label
    return same


@pytest.mark.parametrize("seed", range(6))
def test_scale_crop_and_flip_keep_labels_aligned_with_pixels(seed):
    image, label = blocky_example(seed=seed)
    augmentation = Augmentation(scale_range=(0.5, 2.0), **NO_JITTER)
    out_image, out_label = transform_example(
        tf.constant(image), tf.constant(label), ignore_class=IGNORE, crop_size=(48, 56),
        augmentation=augmentation, seed=tf.constant([seed, 3], tf.int64),
    )
    out_image, out_label = out_image.numpy(), out_label.numpy()
    assert out_image.shape == (48, 56, 3) and out_label.shape == (48, 56)
    interior = constant_neighbourhood(out_label) & (out_label != IGNORE)
    assert interior.mean() > 0.2
    np.testing.assert_allclose(out_image[interior], CLASS_COLORS[out_label[interior]], atol=1.0)
    padding = out_label == IGNORE
    assert np.all(out_image[padding & constant_neighbourhood(out_label)] == 0)


def test_colour_jitter_changes_the_image_only_and_stays_in_range():
    image, label = blocky_example()
    seed = tf.constant([4, 2], tf.int64)
    plain = transform_example(
        tf.constant(image), tf.constant(label), ignore_class=IGNORE, crop_size=(32, 32),
        augmentation=Augmentation(**NO_JITTER), seed=seed,
    )
    jittered = transform_example(
        tf.constant(image), tf.constant(label), ignore_class=IGNORE, crop_size=(32, 32),
        augmentation=Augmentation(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.1), seed=seed,
    )
    np.testing.assert_array_equal(plain[1].numpy(), jittered[1].numpy())
    assert np.abs(plain[0].numpy() - jittered[0].numpy()).max() > 1.0
    assert jittered[0].numpy().min() >= 0.0 and jittered[0].numpy().max() <= 255.0


def test_grayscale_images_are_augmented_without_colour_ops():
    image, label = blocky_example()
    gray = image.mean(axis=-1, keepdims=True)
    out_image, out_label = transform_example(
        tf.constant(gray), tf.constant(label), ignore_class=IGNORE, crop_size=(16, 16),
        augmentation=Augmentation(), seed=tf.constant([1, 1], tf.int64),
    )
    assert out_image.shape == (16, 16, 1) and out_label.shape == (16, 16)


def test_pad_batch_to_multiple(rng):
    images = rng.uniform(0, 255, (2, 5, 9, 3)).astype(np.float32)
    labels = rng.integers(0, 4, (2, 5, 9)).astype(np.int32)
    out_images, out_labels = pad_batch_to_multiple(tf.constant(images), tf.constant(labels), 4, IGNORE)
    assert out_images.shape == (2, 8, 12, 3) and out_labels.shape == (2, 8, 12)
    np.testing.assert_array_equal(out_images.numpy()[:, :5, :9], images)
    np.testing.assert_array_equal(out_labels.numpy()[:, :5, :9], labels)
    assert np.all(out_labels.numpy()[:, 5:] == IGNORE) and np.all(out_labels.numpy()[:, :, 9:] == IGNORE)
    assert np.all(out_images.numpy()[:, 5:] == 0) and np.all(out_images.numpy()[:, :, 9:] == 0)


def test_remap_ids_marks_values_outside_the_table():
    table = np.array([255, 0, 1], np.int32)
    labels = tf.constant([[0, 1, 2, 3, -2]], tf.int32)
    np.testing.assert_array_equal(remap_ids(labels, table).numpy(), [[255, 0, 1, -1, -1]])
