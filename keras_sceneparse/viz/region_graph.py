"""Region graphs (geometric scene parses) drawn over their photos."""

import numbers

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from keras_sceneparse.structure.geometry import (
    HORIZONTAL,
    RELATIONS,
    SKY,
    SURFACES,
    UNKNOWN_ID,
    VERTICAL,
    as_label_map,
    node_positions,
)
from keras_sceneparse.viz.overlay import as_rgb_image

#: Drawing colours (RGB) of surfaces and relations, and the relations' one-letter tags.
SURFACE_COLORS = {SKY: (80, 170, 255), HORIZONTAL: (60, 200, 60), VERTICAL: (230, 50, 50), None: (160, 160, 160)}
RELATION_COLORS = {
    "layering": (40, 90, 255),
    "supporting": (0, 190, 0),
    "siding": (255, 150, 0),
    "affinity": (250, 250, 250),
    None: (160, 160, 160),
}
RELATION_TAGS = {"layering": "L", "supporting": "S", "siding": "D", "affinity": "A", None: "?"}


def draw_region_graph(image, region_ids, graph, path=None, *, scale=2, legend=True, unknown_id=UNKNOWN_ID):
    """Draws a region graph over its photo.

    Region outlines in black, a dot at each region's centroid coloured by its surface
    (:data:`SURFACE_COLORS`), and a line between the centroids of adjacent regions coloured
    by its relation (:data:`RELATION_COLORS`) with the relation's letter at its middle
    (L layering, S supporting, D siding, A affinity). For layering and supporting a short
    arrow at the middle points from the occluder / supporter to the other region. With
    ``legend``, a legend sits in the top-left corner. The picture is ``scale`` times the
    image's size.

    Returns the ``PIL.Image``; also saves it as PNG when ``path`` is given.
    """
    picture = as_rgb_image(image)
    ids = as_label_map("region_ids", region_ids, picture.shape[:2], reference="image")
    if isinstance(scale, bool) or not isinstance(scale, numbers.Integral) or scale < 1:
        raise ValueError(f"`scale` must be a positive integer, got {scale!r}.")
    _, labels = node_positions(graph.nodes, np.where(ids == unknown_id, -1, ids))
    big = np.repeat(np.repeat(labels, scale, axis=0), scale, axis=1)
    outline = np.zeros(big.shape, bool)
    outline[:-1] |= big[:-1] != big[1:]
    outline[:, :-1] |= big[:, :-1] != big[:, 1:]
    pixels = np.repeat(np.repeat(picture, scale, axis=0), scale, axis=1)
    pixels = (pixels * 0.75).astype(np.uint8)  # dimmed, so the marks stand out
    pixels[outline] = 0
    canvas = Image.fromarray(pixels)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()

    def centre(node):
        x, y = graph.nodes[node]["centroid"]
        return x * scale, y * scale

    for u, v, data in graph.edges(data=True):
        relation = data.get("relation")
        color = RELATION_COLORS.get(relation, RELATION_COLORS[None])
        (xu, yu), (xv, yv) = centre(u), centre(v)
        draw.line([(xu, yu), (xv, yv)], fill=color, width=2)
        mx, my = (xu + xv) / 2, (yu + yv) / 2
        source = data.get("occluder", data.get("supporter"))
        if source is not None:
            (xs, ys), (xt, yt) = (centre(u), centre(v)) if source == u else (centre(v), centre(u))
            length = max(np.hypot(xt - xs, yt - ys), 1e-9)
            dx, dy = (xt - xs) / length, (yt - ys) / length
            tip = (mx + 8 * dx, my + 8 * dy)
            draw.polygon([tip, (mx - 4 * dy, my + 4 * dx), (mx + 4 * dy, my - 4 * dx)], fill=color)
        draw.text((mx + 3, my - 12), RELATION_TAGS.get(relation, "?"), fill=color, font=font, stroke_width=1,
                  stroke_fill=(0, 0, 0))
    for node, surface in graph.nodes(data="surface"):
        x, y = centre(node)
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=SURFACE_COLORS.get(surface, SURFACE_COLORS[None]),
                     outline=(0, 0, 0))

    entries = [(name, SURFACE_COLORS[name]) for name in SURFACES]
    entries += [(f"{name} ({RELATION_TAGS[name]})", RELATION_COLORS[name]) for name in RELATIONS]
    y = 4
    for text, color in entries if legend else ():
        draw.rectangle([4, y + 2, 12, y + 10], fill=color, outline=(0, 0, 0))
        draw.text((16, y), text, fill=(255, 255, 255), font=font, stroke_width=1, stroke_fill=(0, 0, 0))
        y += 13
    if path is not None:
        canvas.save(path, format="PNG")
    return canvas
