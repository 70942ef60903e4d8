"""Synthetic street scenes for the geometric (H-LSTM) tests and the distribution tests that
train H-LSTM: no pytest here, so worker processes can import it too."""

import numpy as np
from PIL import Image

from keras_sceneparse.data.geometric import prepare_example

SIZE = (48, 64)
#: The smallest H-LSTM worth training in a test.
TINY = {"backbone_kwargs": {"alpha": 0.35}, "feature_channels": 8, "units": 4, "pixel_layers": 1}
SCALES, MAX_NODES, MAX_REGIONS, MAX_PAIRS = (6,), (25,), 8, 16


def scene(rng, size=SIZE):
    """Sky above a horizon, ground below, a building standing on the ground and a car beside it."""
    height, width = size
    horizon = int(height * rng.uniform(0.35, 0.5))
    surfaces = np.full(size, 2, np.uint8)
    surfaces[:horizon] = 0
    surfaces[int(height * 0.75):] = 1
    layers = np.zeros(size, np.uint8)
    layers[int(height * 0.75):] = 1
    left = int(width * rng.uniform(0.1, 0.3))
    layers[horizon:int(height * 0.75), left:left + width // 3] = 2
    layers[horizon:int(height * 0.75), left + width // 3:] = 3
    layers[horizon:int(height * 0.75), :left] = 4
    semantics = np.array([0, 2, 5, 7, 1], np.uint8)[layers]
    image = np.stack([layers * 50 + 20, 255 - layers * 40, (surfaces * 90).astype(np.uint8)], -1).astype(np.uint8)
    image = np.clip(image + rng.integers(0, 20, image.shape), 0, 255).astype(np.uint8)
    return image, surfaces, semantics, layers


def write_scenes(root, rng, count=6):
    for folder in ("images", "surfaces", "regions", "layers", "splits"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    stems = [f"{i:07d}" for i in range(count)]
    for stem in stems:
        image, surfaces, semantics, layers = scene(rng)
        Image.fromarray(image).save(root / "images" / f"{stem}.jpg")
        for folder, values in (("surfaces", surfaces), ("regions", semantics), ("layers", layers)):
            Image.fromarray(values).save(root / folder / f"{stem}.png")
    (root / "splits" / "train.txt").write_text("\n".join(stems[:-2]))
    (root / "splits" / "val.txt").write_text("\n".join(stems[-2:]))
    return stems


def tiny_model(**kwargs):
    from keras_sceneparse.structure.h_lstm import HLSTM

    return HLSTM(max_nodes=MAX_NODES, max_regions=MAX_REGIONS, **TINY, **kwargs)


def scene_arrays(count, seed=0):
    """``(inputs, targets)`` dicts of ``count`` prepared scenes, stacked (for tf.data)."""
    rng = np.random.default_rng(seed)
    examples = [prepare_example(*scene(rng), size=SIZE, scales=SCALES, max_nodes=MAX_NODES,
                                max_regions=MAX_REGIONS, max_pairs=MAX_PAIRS) for _ in range(count)]
    stacked = {key: np.stack([example[key] for example in examples]) for key in examples[0]}
    stacked.pop("dropped_pairs")
    stacked["images"] = stacked["images"].astype("float32")
    targets = {"surfaces": stacked.pop("surfaces").astype("int32"), "relations": stacked.pop("relations")}
    return stacked, targets
