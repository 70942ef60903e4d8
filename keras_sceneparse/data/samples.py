"""A small synthetic street-scene data set, for demos and tests that need no download."""

from pathlib import Path

import numpy as np
from PIL import Image

from keras_sceneparse.data.folder import ImageFolder
from keras_sceneparse.data.pipeline import check_size
from keras_sceneparse.utils.validation import check_int

SAMPLE_CLASS_NAMES = ["sky", "ground", "building", "tree"]
SAMPLE_PALETTE = [(70, 130, 180), (152, 251, 152), (70, 70, 70), (107, 142, 35)]
SAMPLE_IGNORE_CLASS = 255
SKY, GROUND, BUILDING, TREE = range(4)
# Grass, earth and asphalt, jittered per scene.
GROUND_COLORS = ((90, 125, 60), (125, 100, 70), (105, 105, 105))


def _texture(rng, height, width, scale):
    """Smooth noise: white noise on a coarse grid, upsampled bilinearly (blotches of about ``scale`` pixels)."""
    coarse = rng.normal(size=(max(2, height // scale + 2), max(2, width // scale + 2))).astype(np.float32)
    noise = Image.fromarray(coarse).resize((width, height), Image.BILINEAR)
    return np.asarray(noise)


def draw_scene(rng, height, width, void_boundaries=True):
    """One scene: ``(image uint8 (H, W, 3), label uint8 (H, W))``.

    A sky gradient on top, ground below a random horizon, rectangular buildings with
    windows standing on the horizon, round trees on trunks in front; colours, sizes and
    textures vary per scene and overlap between classes enough that colour alone does not
    separate them. With ``void_boundaries`` the pixels where classes meet are void (255).
    """
    rows, columns = np.mgrid[0:height, 0:width]
    image = np.zeros((height, width, 3), np.float32)
    label = np.full((height, width), SKY, np.uint8)

    # Sky: a vertical gradient between two blues or greys, with faint noise.
    top = rng.uniform((40, 80, 140), (140, 170, 230))
    bottom = rng.uniform((150, 170, 190), (230, 235, 250))
    mix = (rows / max(height - 1, 1))[..., None]
    image[:] = top * (1 - mix) + bottom * mix + rng.normal(0, 4, (height, width, 1))

    # Ground below a random horizon: grass-green to earth-brown to asphalt-grey, textured.
    horizon = int(rng.uniform(0.4, 0.7) * height)
    ground_color = np.array(GROUND_COLORS[rng.integers(len(GROUND_COLORS))]) + rng.uniform(-25, 25, 3)
    ground = ground_color + 30 * _texture(rng, height, width, 4)[..., None] + rng.normal(0, 6, (height, width, 3))
    below = rows >= horizon
    image[below] = ground[below]
    label[below] = GROUND

    # Buildings: rectangles on the horizon with a grid of darker (or lit) windows.
    for _ in range(rng.integers(1, 4)):
        building_width = int(rng.uniform(0.12, 0.3) * width)
        building_height = int(rng.uniform(0.2, 0.55) * height)
        left = int(rng.integers(0, max(1, width - building_width)))
        base = min(height, horizon + int(rng.integers(0, max(1, height // 12))))
        top_row = max(0, base - building_height)
        inside = (rows >= top_row) & (rows < base) & (columns >= left) & (columns < left + building_width)
        wall = rng.uniform((70, 60, 60), (200, 180, 170))
        spacing = int(rng.integers(5, 9))
        windows = ((rows - top_row) % spacing >= 2) & ((columns - left) % spacing >= 2) & (rows - top_row >= 2)
        window_shade = rng.uniform(0.4, 1.4)
        facade = np.where(windows[..., None], wall * window_shade, wall) + rng.normal(0, 5, (height, width, 3))
        image[inside] = facade[inside]
        label[inside] = BUILDING

    # Trees: a trunk and a round canopy of blotchy greens, in front of the buildings.
    for _ in range(rng.integers(1, 4)):
        radius = rng.uniform(0.06, 0.14) * min(height, width) * 1.5
        center_column = rng.uniform(0, width)
        base = min(height - 1, horizon + int(rng.integers(0, max(1, height // 6))))
        trunk_height = rng.uniform(0.5, 1.2) * radius
        center_row = base - trunk_height - radius
        trunk = (rows <= base) & (rows >= center_row) & (np.abs(columns - center_column) <= max(1.0, radius / 5))
        canopy = (rows - center_row) ** 2 + (columns - center_column) ** 2 <= radius**2
        leaves = rng.uniform((20, 70, 10), (110, 160, 70))
        foliage = leaves + 35 * _texture(rng, height, width, 2)[..., None] + rng.normal(0, 8, (height, width, 3))
        bark = rng.uniform((60, 40, 20), (110, 80, 50))
        image[trunk] = bark + rng.normal(0, 5, (int(trunk.sum()), 3))
        image[canopy] = foliage[canopy]
        label[trunk | canopy] = TREE

    if void_boundaries:
        boundary = np.zeros_like(label, bool)
        boundary[:, 1:] |= label[:, 1:] != label[:, :-1]
        boundary[1:, :] |= label[1:, :] != label[:-1, :]
        label[boundary] = SAMPLE_IGNORE_CLASS
    return np.clip(np.round(image), 0, 255).astype(np.uint8), label


def write_sample_dataset(root, num_train=24, num_val=8, size=(96, 128), seed=0, void_boundaries=True):
    """Writes synthetic street scenes as an :class:`ImageFolder` and returns the reader for them.

    Layout: ``root/{train,val}/images/NNNN.png`` (RGB) and ``root/{train,val}/labels/NNNN.png``
    (8-bit ids): 0 sky, 1 ground, 2 building, 3 tree (:data:`SAMPLE_CLASS_NAMES`), and 255 on
    the boundaries between classes when ``void_boundaries``. The scenes
    (:func:`draw_scene`) are the same for the same ``seed``; a small model learns them in
    minutes, but not from colour alone.

    Args:
        root: folder to write into (created if missing; existing sample files are overwritten).
        num_train, num_val: numbers of scenes per split (``num_val`` may be 0).
        size: ``(height, width)`` of the scenes.
        seed: seed of the NumPy generator that draws the scenes.
        void_boundaries: mark class boundaries as void.
    """
    num_train = check_int("num_train", num_train, minimum=1)
    num_val = check_int("num_val", num_val, minimum=0)
    height, width = check_size("size", size)
    if height < 8 or width < 8:
        raise ValueError(f"`size` must be at least (8, 8), got {size!r}.")
    seed = check_int("seed", seed, minimum=0)
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", num_train), ("val", num_val)):
        if count == 0:
            continue
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "labels").mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, label = draw_scene(rng, height, width, void_boundaries=void_boundaries)
            Image.fromarray(image).save(root / split / "images" / f"{index:04d}.png")
            Image.fromarray(label).save(root / split / "labels" / f"{index:04d}.png")
    return ImageFolder(
        root,
        num_classes=len(SAMPLE_CLASS_NAMES),
        ignore_class=SAMPLE_IGNORE_CLASS,
        class_names=SAMPLE_CLASS_NAMES,
        palette=SAMPLE_PALETTE,
    )
