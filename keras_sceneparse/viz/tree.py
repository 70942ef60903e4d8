"""Parse trees drawn as pictures (Pillow only)."""

from PIL import Image, ImageDraw, ImageFont

from keras_sceneparse.structure.tree import OBJECT, children, post_order, validate_tree

OBJECT_FILL = (222, 235, 247)
RELATION_FILL = (253, 224, 196)
OUTLINE = (60, 60, 60)


def _layout(tree):
    """``{node: (column, depth)}``: leaves on consecutive columns left to right, parents centred."""
    positions = {}
    column = 0
    for node in post_order(tree):
        kids = children(tree, node)
        if not kids:
            positions[node] = (float(column), 0)
            column += 1
        else:
            positions[node] = (sum(positions[k][0] for k in kids) / 2.0, 0)
    depth = {tree.graph["root"]: 0}
    for node in reversed(post_order(tree)):
        for kid in children(tree, node):
            depth[kid] = depth[node] + 1
    return {node: (x, depth[node]) for node, (x, _) in positions.items()}


def draw_tree(tree, path=None, column_width=120, row_height=70, margin=20):
    """Draws a parse tree: objects as blue boxes on the bottom row, relations as orange boxes
    above the subtrees they join; the edge to the subject (position 0) is drawn thicker than
    the edge to the object (position 1). Node scores, when present, follow the labels.

    Returns the ``PIL.Image``; also saves it as PNG when ``path`` is given.
    """
    validate_tree(tree)
    layout = _layout(tree)
    max_depth = max(depth for _, depth in layout.values())
    columns = max(x for x, _ in layout.values()) + 1
    width = int(columns * column_width + 2 * margin)
    height = int((max_depth + 1) * row_height + 2 * margin)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()

    def centre(node):
        x, depth = layout[node]
        # Leaves sit on the bottom row whatever their depth, so objects read as one line.
        row = max_depth if tree.nodes[node]["kind"] == OBJECT else depth
        return margin + (x + 0.5) * column_width, margin + (row + 0.5) * row_height

    for parent, kid, data in tree.edges(data=True):
        draw.line([centre(parent), centre(kid)], fill=OUTLINE, width=2 if data["position"] == 0 else 1)
    for node, data in tree.nodes(data=True):
        cx, cy = centre(node)
        text = data["label"]
        if "score" in data:
            text = f"{text} {data['score']:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        half_w, half_h = (right - left) / 2 + 6, (bottom - top) / 2 + 5
        fill = OBJECT_FILL if data["kind"] == OBJECT else RELATION_FILL
        draw.rounded_rectangle([cx - half_w, cy - half_h, cx + half_w, cy + half_h], radius=6, fill=fill, outline=OUTLINE)
        draw.text((cx - (right - left) / 2, cy - (bottom - top) / 2 - top), text, fill="black", font=font)
    if path is not None:
        image.save(path, format="PNG")
    return image
