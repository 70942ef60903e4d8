"""Label maps drawn over images, saved as palette PNGs, and explained by a legend."""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from keras_sceneparse.viz.palette import as_label_map, as_palette, check_ids_in_palette, colorize

#: A paletted ('P' mode) PNG stores one byte per pixel.
MAX_PNG_ID = 255


def as_rgb_image(image, name="image"):
    """An ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` image as ``(H, W, 3)`` uint8.

    Grey images are repeated over the three channels and an alpha channel is dropped;
    values must lie in ``[0, 255]`` (floats are rounded).
    """
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"`{name}` must be shaped (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {array.shape}."
        )
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"`{name}` must hold numbers in [0, 255], got dtype {array.dtype}.")
    if array.size and (np.nanmin(array) < 0 or np.nanmax(array) > 255 or not np.all(np.isfinite(array))):
        raise ValueError(f"`{name}` values must lie in [0, 255].")
    array = array[..., :3] if array.shape[-1] == 4 else array
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.round(array).astype(np.uint8)


def overlay(image, label_map, palette, alpha=0.5, ignore_class=None):
    """Blends the colours of ``label_map`` over ``image``: ``(1 - alpha) * image + alpha * colour``.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` picture in ``[0, 255]`` (C = 1, 3 or 4).
        label_map: ``(H, W)`` integer class ids.
        palette: RGB triples, one per id.
        alpha: opacity of the label colours, in ``[0, 1]``.
        ignore_class: id whose pixels keep the image unchanged.

    Returns:
        ``(H, W, 3)`` uint8 RGB image (rounded to the nearest integer).
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"`alpha` must be a number in [0, 1], got {alpha!r}.")
    picture = as_rgb_image(image)
    labels = as_label_map(label_map)
    if labels.shape != picture.shape[:2]:
        raise ValueError(
            f"`label_map` shape {labels.shape} does not match the image's height and width {picture.shape[:2]}."
        )
    colors = colorize(labels, palette, ignore_class=ignore_class).astype(np.float64)
    blended = (1.0 - alpha) * picture.astype(np.float64) + alpha * colors
    if ignore_class is not None:
        blended[labels == ignore_class] = picture[labels == ignore_class]
    return np.round(blended).astype(np.uint8)


def label_image(label_map, palette):
    """A paletted ('P' mode) PIL image whose pixel values are the class ids.

    Ids must lie in ``[0, 255]`` (one byte per pixel); ids without a colour in
    ``palette`` (such as an ignore id of 255) are stored as they are and drawn black.
    """
    labels = as_label_map(label_map)
    if labels.ndim != 2:
        raise ValueError(f"`label_map` must be a (H, W) array, got shape {labels.shape}.")
    check_ids_in_palette(labels, MAX_PNG_ID + 1)
    colors = as_palette(palette)[: MAX_PNG_ID + 1]
    flat_palette = np.zeros((MAX_PNG_ID + 1, 3), dtype=np.uint8)
    flat_palette[: len(colors)] = colors
    height, width = labels.shape
    picture = Image.frombytes("P", (width, height), np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    picture.putpalette(flat_palette.reshape(-1).tolist())
    return picture


def save_label_png(path, label_map, palette):
    """Writes ``label_map`` as an 8-bit paletted PNG: pixel values are the ids, the colours the palette.

    Reading it back with ``np.asarray(PIL.Image.open(path))`` gives the ids; image viewers
    show the colours.
    """
    label_image(label_map, palette).save(path, format="PNG")


def legend(class_names, palette, swatch_size=16, padding=4, ignore=()):
    """A small RGB PIL image with one row per class: a colour swatch and the class name.

    Args:
        class_names: names, one per class id.
        palette: RGB triples; ``palette[i]`` is the colour of ``class_names[i]``.
        swatch_size: side of the square swatches, in pixels.
        padding: space around rows and between swatch and name, in pixels.
        ignore: ids to leave out (e.g. an ignore class inside the id range).
    """
    names = [str(name) for name in class_names]
    colors = as_palette(palette)
    if len(colors) < len(names):
        raise ValueError(f"`palette` has {len(colors)} colours for {len(names)} class names.")
    rows = [(i, name) for i, name in enumerate(names) if i not in set(ignore)]
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_width = max((measure.textlength(name, font=font) for _, name in rows), default=0)
    row_height = swatch_size + padding
    width = int(np.ceil(padding * 3 + swatch_size + text_width))
    height = padding + row_height * max(len(rows), 1)
    picture = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    for row, (class_id, name) in enumerate(rows):
        top = padding + row * row_height
        draw.rectangle(
            [padding, top, padding + swatch_size - 1, top + swatch_size - 1],
            fill=tuple(int(c) for c in colors[class_id]),
            outline=(0, 0, 0),
        )
        draw.text((2 * padding + swatch_size, top + swatch_size / 2), name, fill=(0, 0, 0), font=font, anchor="lm")
    return picture
