"""Colour palettes for label maps, and label maps to colour images.

The default palette is the PASCAL VOC devkit's colour map (``VOClabelcolormap.m``): the
bits of a class id are dealt out in turn to red, green and blue, most significant bit
first, so neighbouring ids get clearly different colours. Dealing out 24 bits gives a
distinct colour to every id below ``2**24``; the first 21 are the familiar VOC colours
(background black, aeroplane ``(128, 0, 0)``, ...).
"""

import numpy as np

#: Number of ids that get distinct colours: the map deals 8 bits to each of R, G and B.
MAX_PALETTE_SIZE = 2**24


def default_palette(n=256):
    """The PASCAL VOC colour map for ids ``0 .. n-1``, as an ``(n, 3)`` uint8 array.

    Example:
        >>> default_palette(3).tolist()
        [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= MAX_PALETTE_SIZE:
        raise ValueError(f"`n` must be an integer in [0, {MAX_PALETTE_SIZE}], got {n!r}.")
    ids = np.arange(int(n), dtype=np.int64)
    palette = np.zeros((int(n), 3), dtype=np.int64)
    for bit in range(8):
        shift = 7 - bit
        for channel in range(3):
            palette[:, channel] |= ((ids >> (3 * bit + channel)) & 1) << shift
    return palette.astype(np.uint8)


def as_palette(palette, name="palette"):
    """Checks a palette (a sequence of RGB triples in ``[0, 255]``) and returns it as ``(n, 3)`` uint8."""
    array = np.asarray(palette)
    if array.ndim != 2 or array.shape[1] != 3 or array.shape[0] == 0:
        raise ValueError(f"`{name}` must be a non-empty sequence of RGB triples, got an array of shape {array.shape}.")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"`{name}` must hold numbers, got dtype {array.dtype}.")
    if np.any(array < 0) or np.any(array > 255) or np.any(array != np.round(array)):
        raise ValueError(f"`{name}` colours must be integers in [0, 255].")
    return array.astype(np.uint8)


def as_label_map(label_map, name="label_map"):
    """Returns an integer label map as an int64 array, or raises naming the problem."""
    array = np.asarray(label_map)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"`{name}` must be an array of integer class ids, got dtype {array.dtype}.")
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise ValueError(f"`{name}` must hold integer class ids, got non-integer values.")
    return array.astype(np.int64)


def check_ids_in_palette(label_map, num_colors, ignore_class=None, name="label_map"):
    """Raises when ``label_map`` holds an id with no colour (and which is not ``ignore_class``)."""
    invalid = (label_map < 0) | (label_map >= num_colors)
    if ignore_class is not None:
        invalid &= label_map != ignore_class
    if np.any(invalid):
        bad = np.unique(label_map[invalid])[:5].tolist()
        allowed = f"[0, {num_colors})" + ("" if ignore_class is None else f" or the ignore class {ignore_class}")
        raise ValueError(
            f"`{name}` contains ids {bad} outside {allowed}: the palette has {num_colors} colours. "
            "Pass a longer palette (e.g. default_palette(n)) or check the labels."
        )


def colorize(label_map, palette, ignore_class=None, ignore_color=(0, 0, 0)):
    """Paints a label map: ``(..., H, W)`` ids to a ``(..., H, W, 3)`` uint8 RGB image.

    Args:
        label_map: integer class ids.
        palette: RGB triples, one per id (e.g. :func:`default_palette` or a dataset's).
        ignore_class: id painted ``ignore_color`` whatever the palette says (it may lie
            outside the palette, like VOC's 255).
        ignore_color: RGB triple for ``ignore_class``.

    Example:
        >>> colorize([[0, 1], [255, 1]], [(0, 0, 0), (200, 10, 10)], ignore_class=255).tolist()
        [[[0, 0, 0], [200, 10, 10]], [[0, 0, 0], [200, 10, 10]]]
    """
    labels = as_label_map(label_map)
    colors = as_palette(palette)
    ignore_rgb = as_palette([ignore_color], name="ignore_color")[0]
    check_ids_in_palette(labels, len(colors), ignore_class)
    if ignore_class is None:
        return colors[labels]
    ignored = labels == ignore_class
    image = colors[np.where(ignored, 0, labels)]
    image[ignored] = ignore_rgb
    return image
