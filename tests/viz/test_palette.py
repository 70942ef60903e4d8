import numpy as np
import pytest

from keras_sceneparse import viz

# The first entries of the PASCAL VOC devkit's colour map (VOClabelcolormap.m), as printed
# in the devkit documentation: background, aeroplane, bicycle, bird, boat, bottle, bus, car.
VOC_COLORS = [
    (0, 0, 0),
    (128, 0, 0),
    (0, 128, 0),
    (128, 128, 0),
    (0, 0, 128),
    (128, 0, 128),
    (0, 128, 128),
    (128, 128, 128),
    (64, 0, 0),
]


def test_default_palette_matches_voc_colour_map():
    palette = viz.default_palette(256)
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    np.testing.assert_array_equal(palette[: len(VOC_COLORS)], VOC_COLORS)
    # Id 20 (tvmonitor) = 0b010100: bits 2 and 4 -> blue gets 128, green gets 64.
    np.testing.assert_array_equal(palette[20], (0, 64, 128))


def test_default_palette_extends_beyond_256_with_distinct_colours():
    palette = viz.default_palette(1000)
    np.testing.assert_array_equal(palette[:256], viz.default_palette(256))
    assert len({tuple(c) for c in palette}) == 1000
    # Id 256 = bit 8 -> third bit of red in the third round: 128 >> 2 = 32.
    np.testing.assert_array_equal(palette[256], (0, 0, 32))


@pytest.mark.parametrize("n", [-1, 2.5, True, 2**24 + 1])
def test_default_palette_rejects_bad_sizes(n):
    with pytest.raises(ValueError, match="`n`"):
        viz.default_palette(n)


def test_colorize_paints_each_id():
    palette = [(10, 20, 30), (40, 50, 60), (70, 80, 90)]
    labels = np.array([[0, 1], [2, 0]])
    expected = np.array([[[10, 20, 30], [40, 50, 60]], [[70, 80, 90], [10, 20, 30]]], dtype=np.uint8)
    result = viz.colorize(labels, palette)
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, expected)


def test_colorize_ignore_class_outside_and_inside_palette():
    palette = [(10, 20, 30), (40, 50, 60)]
    labels = np.array([[0, 255, 1]])
    result = viz.colorize(labels, palette, ignore_class=255, ignore_color=(1, 2, 3))
    np.testing.assert_array_equal(result, [[[10, 20, 30], [1, 2, 3], [40, 50, 60]]])
    inside = viz.colorize(labels[:, [0, 2]], palette, ignore_class=1)
    np.testing.assert_array_equal(inside, [[[10, 20, 30], [0, 0, 0]]])


def test_colorize_batch_of_label_maps():
    labels = np.zeros((2, 3, 4), dtype=np.int32)
    labels[1] = 1
    result = viz.colorize(labels, viz.default_palette(2))
    assert result.shape == (2, 3, 4, 3)
    np.testing.assert_array_equal(result[1, 0, 0], (128, 0, 0))


@pytest.mark.parametrize("bad_id", [3, -1, 255])
def test_colorize_rejects_ids_outside_palette(bad_id):
    with pytest.raises(ValueError, match=rf"ids \[{bad_id}\].*palette has 3 colours"):
        viz.colorize(np.array([[0, bad_id]]), viz.default_palette(3))


def test_colorize_rejects_bad_palette_and_labels():
    with pytest.raises(ValueError, match="RGB triples"):
        viz.colorize(np.zeros((2, 2), int), [(1, 2)])
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        viz.colorize(np.zeros((2, 2), int), [(1, 2, 300)])
    with pytest.raises(ValueError, match="integer class ids"):
        viz.colorize(np.full((2, 2), 0.5), [(1, 2, 3)])
