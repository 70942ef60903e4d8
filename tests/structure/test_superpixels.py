import numpy as np
import pytest

from keras_sceneparse.structure.superpixels import (
    METHODS,
    multiscale_superpixels,
    pad_graphs,
    region_adjacency,
    superpixels,
)


def blocks_image(seed=0):
    """Three flat colour blocks with a little noise: 48 x 64 RGB, uint8."""
    image = np.zeros((48, 64, 3), "uint8")
    image[:24] = (200, 30, 30)
    image[24:, :32] = (30, 200, 30)
    image[24:, 32:] = (30, 30, 200)
    noise = np.random.default_rng(seed).integers(0, 20, image.shape)
    return np.clip(image.astype(int) + noise, 0, 255).astype("uint8")


def assert_consecutive(labels):
    assert labels.dtype == np.int32
    assert labels.min() == 0
    np.testing.assert_array_equal(np.unique(labels), np.arange(labels.max() + 1))


@pytest.mark.parametrize("method", METHODS)
def test_superpixels_ids_consecutive_deterministic_and_near_the_count(method):
    image = blocks_image()
    labels = superpixels(image, n_segments=20, method=method)
    assert labels.shape == (48, 64)
    assert_consecutive(labels)
    assert 10 <= labels.max() + 1 <= 40
    np.testing.assert_array_equal(superpixels(image, n_segments=20, method=method), labels)
    # The same image as floats in [0, 1] or [0, 255] gives the same map.
    np.testing.assert_array_equal(superpixels(image.astype("float32") / 255.0, n_segments=20, method=method), labels)
    np.testing.assert_array_equal(superpixels(image.astype("float32"), n_segments=20, method=method), labels)


@pytest.mark.parametrize("shape", [(30, 40), (30, 40, 1)])
def test_grayscale_images(shape):
    image = np.random.default_rng(1).uniform(0, 1, shape)
    for method in METHODS:
        assert_consecutive(superpixels(image, n_segments=12, method=method))


def test_superpixels_do_not_cross_the_colour_blocks():
    labels = superpixels(blocks_image(), n_segments=12, method="felzenszwalb")
    blocks = np.zeros((48, 64), int)
    blocks[24:, :32], blocks[24:, 32:] = 1, 2
    for region in range(labels.max() + 1):
        assert len(np.unique(blocks[labels == region])) == 1


def test_multiscale_superpixels():
    maps = multiscale_superpixels(blocks_image(), scales=(8, 32))
    assert len(maps) == 2
    for labels in maps:
        assert_consecutive(labels)
    assert maps[0].max() < maps[1].max()


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="image"):
        superpixels(np.zeros((4, 4, 2)))
    with pytest.raises(ValueError, match="image"):
        superpixels(np.zeros((2, 4, 4, 3)))
    with pytest.raises(ValueError, match="image"):
        superpixels(np.zeros((0, 4, 3)))
    with pytest.raises(ValueError, match="n_segments"):
        superpixels(blocks_image(), n_segments=0)
    with pytest.raises(ValueError, match="method"):
        superpixels(blocks_image(), method="watershed")
    with pytest.raises(ValueError, match="scales"):
        multiscale_superpixels(blocks_image(), scales=())


HAND_MADE = np.array(
    [
        [0, 0, 1, 1],
        [0, 2, 2, 1],
        [3, 3, 2, 1],
        [3, 3, 4, 4],
    ]
)
# Its edges, read off by hand (4-connectivity): 0 and 4, 1 and 3 never meet.
HAND_EDGES = {(0, 1), (0, 2), (0, 3), (1, 2), (1, 4), (2, 3), (2, 4), (3, 4)}


def test_region_adjacency_on_a_hand_made_map():
    adjacency = region_adjacency(HAND_MADE)
    expected = np.zeros((5, 5), int)
    for a, b in HAND_EDGES:
        expected[a, b] = expected[b, a] = 1
    np.testing.assert_array_equal(adjacency, expected)
    np.testing.assert_array_equal(adjacency, adjacency.T)


def test_region_adjacency_diagonal_contact_padding_and_extra_nodes():
    diagonal = np.array([[0, 1], [1, 0]])
    np.testing.assert_array_equal(region_adjacency(diagonal), [[0, 1], [1, 0]])
    only_diagonal = np.array([[0, 2], [2, 1]])  # 0 and 1 meet at a corner only
    assert region_adjacency(only_diagonal)[0, 1] == 0
    padded = np.full((5, 6), -1)
    padded[:4, :4] = HAND_MADE
    adjacency = region_adjacency(padded, num_regions=7)
    assert adjacency.shape == (7, 7)
    np.testing.assert_array_equal(adjacency[:5, :5], region_adjacency(HAND_MADE))
    assert adjacency[5:].sum() == 0
    with pytest.raises(ValueError, match="num_regions"):
        region_adjacency(HAND_MADE, num_regions=3)
    with pytest.raises(ValueError, match="labels"):
        region_adjacency(HAND_MADE.astype(float))


def test_superpixel_adjacency_matches_brute_force():
    labels = superpixels(blocks_image(), n_segments=30)
    adjacency = region_adjacency(labels)
    expected = np.zeros_like(adjacency)
    height, width = labels.shape
    for y in range(height):
        for x in range(width):
            for ny, nx in ((y + 1, x), (y, x + 1)):
                if ny < height and nx < width and labels[y, x] != labels[ny, nx]:
                    expected[labels[y, x], labels[ny, nx]] = expected[labels[ny, nx], labels[y, x]] = 1
    np.testing.assert_array_equal(adjacency, expected)


def test_pad_graphs():
    small = HAND_MADE[:2, :2]  # ids 0 and 2: three nodes, node 1 isolated
    segments, adjacency, node_mask = pad_graphs([(HAND_MADE, None), (small, region_adjacency(small))], max_nodes=6)
    assert segments.shape == (2, 4, 4) and adjacency.shape == (2, 6, 6) and node_mask.shape == (2, 6)
    np.testing.assert_array_equal(segments[0], HAND_MADE)
    np.testing.assert_array_equal(segments[1, :2, :2], small)
    assert (segments[1, 2:] == -1).all() and (segments[1, :, 2:] == -1).all()
    np.testing.assert_array_equal(adjacency[0, :5, :5], region_adjacency(HAND_MADE))
    np.testing.assert_array_equal(adjacency[1, :3, :3], [[0, 0, 1], [0, 0, 0], [1, 0, 0]])
    assert adjacency[:, 5].sum() == 0 and adjacency[1, 3:].sum() == 0
    np.testing.assert_array_equal(node_mask, [[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]])
    with pytest.raises(ValueError, match="max_nodes"):
        pad_graphs([(HAND_MADE, None)], max_nodes=4)
    with pytest.raises(ValueError, match="graphs"):
        pad_graphs([])
    with pytest.raises(ValueError, match=r"graphs\[0\]"):
        pad_graphs([(HAND_MADE, np.zeros((3, 3)))])
