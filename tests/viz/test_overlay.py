import numpy as np
import pytest
from PIL import Image

from keras_sceneparse import viz


def test_overlay_blends_by_alpha_and_keeps_ignored_pixels():
    image = np.array([[[100, 100, 100], [0, 50, 200]], [[255, 255, 255], [10, 20, 30]]], dtype=np.uint8)
    labels = np.array([[0, 1], [255, 1]])
    palette = [(0, 0, 0), (200, 100, 0)]
    result = viz.overlay(image, labels, palette, alpha=0.25, ignore_class=255)
    # 0.75 * image + 0.25 * colour, rounded half to even by np.round.
    expected = np.array(
        [[[75, 75, 75], [50, 62, 150]], [[255, 255, 255], [58, 40, 22]]],
        dtype=np.uint8,
    )
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, expected)


def test_overlay_alpha_extremes_and_grey_images():
    image = np.full((2, 3), 40, dtype=np.uint8)
    labels = np.ones((2, 3), dtype=np.int64)
    palette = [(0, 0, 0), (200, 10, 90)]
    np.testing.assert_array_equal(viz.overlay(image, labels, palette, alpha=0.0), np.full((2, 3, 3), 40))
    np.testing.assert_array_equal(viz.overlay(image, labels, palette, alpha=1.0)[0, 0], (200, 10, 90))
    rgba = np.concatenate([np.full((2, 3, 3), 40), np.zeros((2, 3, 1))], axis=-1)
    np.testing.assert_array_equal(viz.overlay(rgba, labels, palette, alpha=0.0), np.full((2, 3, 3), 40))


def test_overlay_rejects_mismatched_shapes_and_bad_alpha():
    with pytest.raises(ValueError, match="does not match"):
        viz.overlay(np.zeros((4, 4, 3)), np.zeros((4, 5), int), [(0, 0, 0)])
    with pytest.raises(ValueError, match="alpha"):
        viz.overlay(np.zeros((4, 4, 3)), np.zeros((4, 4), int), [(0, 0, 0)], alpha=1.5)
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        viz.overlay(np.full((4, 4, 3), 300.0), np.zeros((4, 4), int), [(0, 0, 0)])
    with pytest.raises(ValueError, match="shaped"):
        viz.overlay(np.zeros((4, 4, 2)), np.zeros((4, 4), int), [(0, 0, 0)])


def test_save_label_png_stores_ids_and_palette(tmp_path):
    labels = np.array([[0, 1, 2], [2, 255, 0]])
    palette = [(10, 20, 30), (40, 50, 60), (70, 80, 90)]
    path = tmp_path / "labels.png"
    viz.save_label_png(path, labels, palette)
    with Image.open(path) as picture:
        assert picture.mode == "P"
        np.testing.assert_array_equal(np.asarray(picture), labels)
        stored = np.array(picture.getpalette()).reshape(-1, 3)
        np.testing.assert_array_equal(stored[:3], palette)
        np.testing.assert_array_equal(np.asarray(picture.convert("RGB"))[0, 1], (40, 50, 60))


@pytest.mark.parametrize("bad_id", [256, -1])
def test_save_label_png_rejects_ids_that_do_not_fit_a_byte(tmp_path, bad_id):
    with pytest.raises(ValueError, match=str(bad_id)):
        viz.save_label_png(tmp_path / "x.png", np.array([[0, bad_id]]), viz.default_palette(300))


def test_legend_has_a_row_per_class_with_its_colour():
    palette = [(255, 0, 0), (0, 0, 255), (0, 255, 0)]
    picture = viz.legend(["sky", "road", "tree"], palette, swatch_size=10, padding=2)
    assert picture.mode == "RGB"
    assert picture.height == 2 + 3 * 12
    pixels = np.asarray(picture)
    for row, colour in enumerate(palette):
        centre = 2 + row * 12 + 5
        np.testing.assert_array_equal(pixels[centre, 2 + 5], colour)
    with pytest.raises(ValueError, match="2 colours for 3 class names"):
        viz.legend(["a", "b", "c"], palette[:2])
