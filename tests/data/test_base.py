"""The pipeline of SegmentationDataset.dataset, exercised through ImageFolder fixtures."""

import numpy as np
import pytest
import tensorflow as tf
from dataset_fixtures import SIZE, collect, iteration_error, random_image, write_image_folder, write_png
from PIL import Image

import keras_sceneparse as ksp
from keras_sceneparse.data import Augmentation, ImageFolder
from keras_sceneparse.layers import ImageNormalization

# Classes whose colours are far apart: a pixel's colour says its class.
CLASS_COLORS = np.array([(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0)], np.uint8)


@pytest.fixture
def folder(tmp_path, rng):
    written = write_image_folder(tmp_path / "data", rng, counts=(5, 3))
    return ImageFolder(tmp_path / "data", num_classes=4, ignore_class=255), written


def test_files_pair_images_with_labels_by_stem(folder):
    data, written = folder
    files = data.files("train")
    assert [(p.split("/")[-3:], q.split("/")[-3:]) for p, q in files] == [
        (["train", "images", f"{stem}.png"], ["train", "labels", f"{stem}.png"]) for stem, _, _ in written["train"]
    ]


def test_batches_hold_the_files_in_order_without_shuffling(folder):
    data, written = folder
    dataset = data.dataset("train", batch_size=2, shuffle=False)
    shapes = [(tuple(images.shape), tuple(labels.shape)) for images, labels in dataset]
    assert shapes == [((2, *SIZE, 3), (2, *SIZE))] * 2 + [((1, *SIZE, 3), (1, *SIZE))]
    images, labels = collect(dataset)
    assert images[0].dtype == np.float32 and labels[0].dtype == np.int32
    for (_, image, label), got_image, got_label in zip(written["train"], images, labels):
        np.testing.assert_array_equal(got_image, image.astype(np.float32))
        np.testing.assert_array_equal(got_label, label)


def test_drop_remainder_and_limit(folder):
    data, _ = folder
    assert len(list(data.dataset("train", batch_size=2, drop_remainder=True))) == 2
    batches = list(data.dataset("train", batch_size=2, limit=3, shuffle=False))
    assert [int(images.shape[0]) for images, _ in batches] == [2, 1]
    assert data.dataset("train", batch_size=2, crop_size=(8, 8), drop_remainder=True).element_spec[0].shape == (
        2, 8, 8, 3
    )


def test_training_splits_are_shuffled_by_default_and_reproducibly(folder):
    data, written = folder
    expected = [label for _, _, label in written["train"]]

    def order(**kwargs):
        _, labels = collect(data.dataset("train", batch_size=1, **kwargs))
        return [next(i for i, label in enumerate(expected) if np.array_equal(label, got)) for got in labels]

    first = order(seed=3)
    assert sorted(first) == list(range(5))
    assert order(seed=3) == first
    assert any(order(seed=seed) != list(range(5)) for seed in range(4))
    assert order(shuffle=False) == list(range(5))
    # Validation splits keep their order unless asked.
    _, val_labels = collect(data.dataset("val", batch_size=1))
    for (_, _, label), got in zip(written["val"], val_labels):
        np.testing.assert_array_equal(got, label)


def test_repeat_cycles_through_the_files(folder):
    data, _ = folder
    batches = list(data.dataset("val", batch_size=2, repeat=True).take(5))
    assert len(batches) == 5


def test_augmentation_is_reproducible_and_independent_of_parallelism(folder):
    data, _ = folder

    def run(seed, parallel=tf.data.AUTOTUNE):
        return collect(data.dataset("train", batch_size=2, crop_size=(10, 10), augment=True, seed=seed,
                                    num_parallel_calls=parallel))

    first = run(0)
    for again in (run(0), run(0, parallel=1)):
        for a, b in zip(first[0] + first[1], again[0] + again[1]):
            np.testing.assert_array_equal(a, b)
    other = run(1)
    assert any(not np.array_equal(a, b) for a, b in zip(first[0], other[0]))


def test_each_epoch_draws_new_augmentations(folder):
    data, _ = folder
    dataset = data.dataset("val", batch_size=3, crop_size=(10, 10), augment=True, seed=5)
    first, second = collect(dataset), collect(dataset)
    assert not np.array_equal(np.stack(first[0]), np.stack(second[0]))
    again = collect(data.dataset("val", batch_size=3, crop_size=(10, 10), augment=True, seed=5))
    np.testing.assert_array_equal(np.stack(first[0]), np.stack(again[0]))


def test_labels_stay_aligned_with_pixels_under_augmentation(tmp_path, rng):
    # Images whose colour encodes the label, in blocks of 6 pixels.
    for index in range(3):
        blocks = rng.integers(0, 4, (5, 6))
        label = np.kron(blocks, np.ones((6, 6), np.int64)).astype(np.uint8)
        write_png(tmp_path / "images" / f"{index}.png", CLASS_COLORS[label])
        write_png(tmp_path / "labels" / f"{index}.png", label)
    data = ImageFolder(tmp_path, num_classes=4, ignore_class=255)
    augmentation = Augmentation(scale_range=(0.8, 1.8), brightness=0, contrast=0, saturation=0, hue=0)
    images, labels = collect(data.dataset("all", batch_size=3, crop_size=(24, 28), augment=augmentation, seed=2))
    for image, label in zip(images, labels):
        padded = np.pad(label, 1, mode="edge")
        interior = np.ones(label.shape, bool)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                interior &= padded[1 + dy : 1 + dy + label.shape[0], 1 + dx : 1 + dx + label.shape[1]] == label
        inside = interior & (label != 255)
        assert inside.mean() > 0.2
        np.testing.assert_allclose(image[inside], CLASS_COLORS[label[inside]], atol=1.0)


def test_crop_pads_small_images_with_the_ignore_id(folder):
    data, written = folder
    images, labels = collect(data.dataset("val", batch_size=3, crop_size=(16, 20), shuffle=False))
    for (_, image, label), got_image, got_label in zip(written["val"], images, labels):
        assert got_label.shape == (16, 20)
        np.testing.assert_array_equal(got_label[: SIZE[0], : SIZE[1]], label)
        np.testing.assert_array_equal(got_image[: SIZE[0], : SIZE[1]], image)
        assert np.all(got_label[SIZE[0] :] == 255) and np.all(got_label[:, SIZE[1] :] == 255)
        assert np.all(got_image[SIZE[0] :] == 0) and np.all(got_image[:, SIZE[1] :] == 0)


def test_image_size_resizes_labels_by_nearest_neighbour(folder):
    data, written = folder
    images, labels = collect(data.dataset("val", batch_size=3, image_size=(6, 8)))
    assert images[0].shape == (6, 8, 3)
    # Halving with half-pixel centres samples source pixel 2 i + 1.
    for (_, _, label), got in zip(written["val"], labels):
        np.testing.assert_array_equal(got, label[1::2, 1::2])


def test_variable_sizes_are_padded_per_batch(tmp_path, rng):
    sizes = [(10, 14), (7, 9), (12, 5)]
    written = write_image_folder(tmp_path, rng, splits=None, counts=(3,), sizes=sizes)
    data = ImageFolder(tmp_path, num_classes=4, ignore_class=7)
    (images, labels), = list(data.dataset("all", batch_size=3, shuffle=False))
    assert images.shape == (3, 12, 14, 3) and labels.shape == (3, 12, 14)
    for (_, image, label), got_image, got_label in zip(written["all"], images.numpy(), labels.numpy()):
        height, width = label.shape
        np.testing.assert_array_equal(got_label[:height, :width], label)
        np.testing.assert_array_equal(got_image[:height, :width], image)
        assert np.all(got_label[height:] == 7) and np.all(got_label[:, width:] == 7)
        assert np.all(got_image[height:] == 0) and np.all(got_image[:, width:] == 0)
    (images, labels), = list(data.dataset("all", batch_size=3, shuffle=False, pad_to_multiple=8))
    assert images.shape == (3, 16, 16, 3) and labels.shape == (3, 16, 16)
    assert np.all(labels.numpy()[:, 12:] == 7)
    # Batches of one keep each image's own size.
    assert [tuple(images.shape[1:3]) for images, _ in data.dataset("all", batch_size=1, shuffle=False)] == sizes


@pytest.mark.parametrize("mode", ["caffe", "imagenet", "tf", "unit"])
def test_normalization_matches_the_image_normalization_layer(folder, mode):
    data, _ = folder
    (raw, _), = list(data.dataset("val", batch_size=3))
    (normalized, _), = list(data.dataset("val", batch_size=3, normalization=mode))
    np.testing.assert_allclose(normalized.numpy(), ImageNormalization(mode)(raw).numpy(), rtol=1e-5, atol=1e-5)


def test_grayscale_images_with_channels_1(tmp_path, rng):
    write_image_folder(tmp_path, rng, splits=None, counts=(2,))
    data = ImageFolder(tmp_path, num_classes=4, channels=1)
    images, _ = next(iter(data.dataset("all", batch_size=2, crop_size=(8, 8), augment=True, seed=0)))
    assert images.shape == (2, 8, 8, 1)


def test_palette_and_16_bit_label_pngs_hold_ids(tmp_path, rng):
    label = rng.integers(0, 4, SIZE).astype(np.uint8)
    write_png(tmp_path / "images" / "a.png", random_image(rng))
    # A palette PNG whose colours are unrelated to the ids: the indices are the ids.
    write_png(tmp_path / "labels" / "a.png", label, palette=list(range(255, -1, -1)) * 3)
    write_png(tmp_path / "images" / "b.png", random_image(rng))
    Image.fromarray(label.astype(np.uint16) + 2).save(tmp_path / "labels" / "b.png")
    assert Image.open(tmp_path / "labels" / "a.png").mode == "P"
    assert Image.open(tmp_path / "labels" / "b.png").mode.startswith("I;16")
    data = ImageFolder(tmp_path, num_classes=6)
    _, labels = collect(data.dataset("all", batch_size=1, shuffle=False))
    np.testing.assert_array_equal(labels[0], label)
    np.testing.assert_array_equal(labels[1], label + 2)


# --- Errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": "2"}, TypeError, "batch_size"),
        ({"crop_size": (0, 4)}, ValueError, "crop_size"),
        ({"crop_size": (4, -1)}, ValueError, "crop_size"),
        ({"crop_size": (4.5, 4)}, ValueError, "crop_size"),
        ({"image_size": (4,)}, ValueError, "image_size"),
        ({"augment": "strong"}, TypeError, "augment"),
        ({"normalization": "zscore"}, ValueError, "normalization"),
        ({"pad_to_multiple": 0}, ValueError, "pad_to_multiple"),
        ({"limit": 0}, ValueError, "limit"),
        ({"seed": -1}, ValueError, "seed"),
        ({"num_parallel_calls": 0}, ValueError, "num_parallel_calls"),
    ],
)
def test_bad_arguments_are_named(folder, kwargs, error, match):
    data, _ = folder
    with pytest.raises(error, match=match):
        data.dataset("train", **kwargs)


def test_unknown_split_lists_the_splits(folder):
    data, _ = folder
    with pytest.raises(ValueError, match=r"'test'.*'train', 'val'"):
        data.dataset("test")
    with pytest.raises(ValueError, match="'train', 'val'"):
        data.files("training")


def test_missing_root_and_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolder(tmp_path / "nowhere", num_classes=3)
    with pytest.raises(FileNotFoundError, match="images/ with labels/"):
        ImageFolder(tmp_path, num_classes=3)


def test_missing_label_names_the_image(folder):
    data, _ = folder
    (data.root / "train" / "labels" / "002.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"train/images/002\.png has no label map"):
        data.files("train")


def test_split_without_images_is_named(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    with pytest.raises(FileNotFoundError, match="No images found"):
        ImageFolder(tmp_path, num_classes=3).files("all")


def test_empty_and_corrupt_files_are_named_before_tensorflow_sees_them(folder):
    data, _ = folder
    (data.root / "train" / "images" / "001.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"train/images/001\.png is empty"):
        data.dataset("train")
    (data.root / "train" / "images" / "001.png").write_bytes(b"\x89PNG not really an image" * 10)
    with pytest.raises(ValueError, match=r"train/images/001\.png is not a readable image"):
        data.dataset("train")
    (data.root / "val" / "labels" / "001.png").write_bytes(b"garbage" * 10)
    with pytest.raises(ValueError, match=r"val/labels/001\.png is not a readable image"):
        data.dataset("val")


def test_unsupported_image_format_is_named(tmp_path, rng):
    write_image_folder(tmp_path, rng, splits=None, counts=(1,))
    Image.fromarray(random_image(rng)).save(tmp_path / "images" / "000.png", format="TIFF")
    with pytest.raises(ValueError, match=r"000\.png is in TIFF format"):
        ImageFolder(tmp_path, num_classes=4).dataset("all")


def test_rgb_label_maps_are_rejected(tmp_path, rng):
    write_image_folder(tmp_path, rng, splits=None, counts=(1,))
    write_png(tmp_path / "labels" / "000.png", random_image(rng))
    with pytest.raises(ValueError, match=r"labels/000\.png has PIL mode 'RGB'"):
        ImageFolder(tmp_path, num_classes=4).dataset("all")


def test_size_mismatch_names_the_label_file(folder, rng):
    data, _ = folder
    write_png(data.root / "val" / "labels" / "001.png", np.zeros((SIZE[0] + 1, SIZE[1]), np.uint8))
    with pytest.raises(ValueError, match=r"val/labels/001\.png is 16x13"):
        data.dataset("val")


def test_out_of_range_label_ids_raise_with_the_file_path(folder):
    data, _ = folder
    label = np.zeros(SIZE, np.uint8)
    label[3, 4] = 6  # num_classes is 4, ignore 255
    write_png(data.root / "val" / "labels" / "001.png", label)
    message = iteration_error(data.dataset("val", batch_size=1, crop_size=(8, 8), augment=True, seed=0))
    assert "val/labels/001.png" in message
    assert "outside [0, 4)" in message and "ignore id 255" in message


# --- Class statistics --------------------------------------------------------------------


@pytest.fixture
def statistics_folder(tmp_path):
    # Hand-countable label maps, 2x3 each; class 3 never appears.
    first = np.array([[0, 0, 1], [1, 1, 255]], np.uint8)
    second = np.array([[0, 2, 2], [2, 2, 2]], np.uint8)
    for name, label in (("a", first), ("b", second)):
        write_png(tmp_path / "images" / f"{name}.png", np.zeros((2, 3, 3), np.uint8))
        write_png(tmp_path / "labels" / f"{name}.png", label)
    return ImageFolder(tmp_path, num_classes=4, ignore_class=255)


def test_class_frequencies_count_pixels(statistics_folder, capsys):
    counts = statistics_folder.class_frequencies("all")
    np.testing.assert_array_equal(counts, [3, 3, 5, 0])
    assert capsys.readouterr().out == ""
    statistics_folder.class_frequencies("all", verbose=True)
    assert "2/2" in capsys.readouterr().out


def test_median_frequency_weights_by_hand(statistics_folder):
    # freq = pixels of c / pixels of the images holding c: 3/12, 3/6, 5/6; median 1/2.
    weights = statistics_folder.median_frequency_weights("all")
    np.testing.assert_allclose(weights, [0.5 / 0.25, 0.5 / 0.5, 0.5 / (5 / 6), 0.0])


def test_class_frequencies_reject_invalid_ids(statistics_folder):
    write_png(statistics_folder.root / "labels" / "b.png", np.full((2, 3), 9, np.uint8))
    with pytest.raises(ValueError, match=r"labels/b\.png holds ids \[9\]"):
        statistics_folder.class_frequencies("all")


# --- Registry and repr -------------------------------------------------------------------


def test_repr_shows_root_splits_and_classes(folder):
    data, _ = folder
    text = repr(data)
    assert str(data.root) in text and "['train', 'val']" in text and "num_classes=4" in text


def test_get_dataset_by_name(tmp_path, rng):
    assert sorted(ksp.data.DATASETS) == sorted(
        ["camvid", "voc", "cityscapes", "ade20k", "stanford_background", "folder", "sysu_scenes", "pascal_sentences", "sift_flow"]
    )
    write_image_folder(tmp_path, rng, splits=None, counts=(1,))
    data = ksp.data.get_dataset("folder", tmp_path, num_classes=4)
    assert isinstance(data, ImageFolder) and data.splits() == ["all"]
    with pytest.raises(ValueError, match="Unknown data set 'camvids'.*'camvid'.*folder"):
        ksp.data.get_dataset("camvids", tmp_path)


def test_extras_travel_with_their_examples_through_shuffle_and_augmentation(folder):
    data, _ = folder
    pairs = data.files("train")
    ids = np.arange(len(pairs), dtype=np.int32)
    # Each example's extra row identifies its file; the image's mean tells the file too.
    expected = {}
    for index, (image_path, _) in enumerate(pairs):
        expected[index] = float(np.asarray(Image.open(image_path), np.float32).mean())
    batches = data.dataset("train", batch_size=2, shuffle=True, seed=3, extras={"file_id": ids, "pair": np.stack([ids, -ids], 1)})
    seen = []
    for inputs, labels in batches:
        assert set(inputs) == {"images", "file_id", "pair"}
        for image, file_id, pair in zip(inputs["images"].numpy(), inputs["file_id"].numpy(), inputs["pair"].numpy()):
            assert image.mean() == pytest.approx(expected[int(file_id)], rel=1e-5)
            assert list(pair) == [file_id, -file_id]
            seen.append(int(file_id))
    assert sorted(seen) == list(range(len(pairs))) and seen != sorted(seen)


def test_extras_must_have_one_row_per_file(folder):
    data, _ = folder
    with pytest.raises(ValueError, match="one row per file"):
        data.dataset("train", extras={"x": np.zeros(1)})
    with pytest.raises(ValueError, match="images"):
        data.dataset("train", extras={"images": np.zeros(len(data.files("train")))})
