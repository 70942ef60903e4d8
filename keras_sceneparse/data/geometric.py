"""Training data of geometric scene parsing (H-LSTM): surfaces, superpixel graphs, region relations.

For each image of Stanford Background (Gould et al., ICCV 2009) the arrays the H-LSTM model
needs are prepared once with NumPy and scikit-image, then served by tf.data:

- ``images`` ``(H, W, 3)`` in ``[0, 255]`` (uint8 arrays, float32 batches) and ``surfaces`` ``(H, W)`` (0 sky,
  1 horizontal, 2 vertical, 255 unknown), resized to a fixed ``size``;
- per superpixel scale ``s``: ``superpixels_s`` ``(H, W)`` ids in ``[0, N_s)`` (SLIC),
  ``adjacency_s`` ``(N_s, N_s)`` and ``node_mask_s`` ``(N_s,)``, padded to ``max_nodes[s]``;
- ``regions`` ``(H, W)``: the data set's regions (``layers``), compacted to ``[0, R)``,
  ``-1`` for unknown pixels and slivers; ``pairs`` ``(P, 2)`` the adjacent regions and
  ``relations`` ``(P,)`` their relation ids (:data:`~keras_sceneparse.structure.RELATIONS`),
  derived from the geometry by :func:`~keras_sceneparse.structure.derive_relations`
  (Stanford Background has no relation annotations; see docs/geometry.md), ``-1`` padding.

Preparing all 715 images takes a minute or two on two cores; ``cache`` stores the arrays in
an ``.npz`` file so later runs load them instantly.
"""

import collections
import hashlib
import json
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from keras_sceneparse.data.pipeline import read_label_with_pil
from keras_sceneparse.data.stanford_background import STANFORD_TARGETS, StanfordBackground
from keras_sceneparse.structure.geometry import RELATIONS, derive_relations, region_graph
from keras_sceneparse.structure.superpixels import region_adjacency, superpixels

UNKNOWN = 255


def _resize(array, size, nearest):
    image = Image.fromarray(array)
    resample = Image.NEAREST if nearest else Image.BILINEAR
    return np.asarray(image.resize((size[1], size[0]), resample))


def _pad(array, length, value):
    out = np.full((length, *array.shape[1:]), value, array.dtype)
    out[: min(len(array), length)] = array[:length]
    return out


def prepare_example(image, surfaces, semantics, layers, size=(240, 320), scales=(48, 96), max_nodes=(80, 144),
                    max_regions=64, max_pairs=192, semantic_names=None):
    """The arrays of one image (see the module docstring), as a dict of NumPy arrays.

    Regions and pairs beyond ``max_regions`` / ``max_pairs`` are dropped (the count of dropped
    pairs is returned under ``"dropped_pairs"``); superpixel maps with more than
    ``max_nodes`` segments raise, since padding cannot hold them.
    """
    image = _resize(np.asarray(image, np.uint8), size, nearest=False)
    surfaces = _resize(np.asarray(surfaces, np.uint8), size, nearest=True).astype(np.int32)
    semantics = _resize(np.asarray(semantics, np.uint8), size, nearest=True).astype(np.int32)
    layers = _resize(np.asarray(layers, np.uint8), size, nearest=True).astype(np.int32)
    example = {"images": image, "surfaces": surfaces}  # uint8 until batched (a quarter of the memory)
    for index, (scale, capacity) in enumerate(zip(scales, max_nodes)):
        labels = superpixels(image, n_segments=scale).astype(np.int32)
        count = int(labels.max()) + 1
        if count > capacity:
            raise ValueError(f"SLIC gave {count} superpixels for scale {scale}, more than max_nodes={capacity}.")
        adjacency = np.zeros((capacity, capacity), np.float32)
        adjacency[:count, :count] = region_adjacency(labels, count)
        mask = np.zeros((capacity,), np.float32)
        mask[:count] = 1.0
        example[f"superpixels_{index}"] = labels
        example[f"adjacency_{index}"] = adjacency
        example[f"node_mask_{index}"] = mask

    graph = derive_relations(region_graph(layers, surfaces, semantics, semantic_names=semantic_names), layers)
    nodes = sorted(graph.nodes)[:max_regions]
    compact = {node: index for index, node in enumerate(nodes)}
    regions = np.full(layers.shape, -1, np.int32)
    for node, index in compact.items():
        regions[layers == node] = index
    pairs, relations = [], []
    for u, v, data in graph.edges(data=True):
        if u in compact and v in compact:
            pairs.append((compact[u], compact[v]))
            relations.append(RELATIONS.index(data["relation"]))
    dropped = max(0, len(pairs) - max_pairs)
    example["regions"] = regions
    example["pairs"] = _pad(np.asarray(pairs, np.int32).reshape(-1, 2), max_pairs, -1)
    example["relations"] = _pad(np.asarray(relations, np.int32), max_pairs, -1)
    example["dropped_pairs"] = np.int32(dropped)
    return example


class GeometricDataset:
    """Stanford Background as H-LSTM training data (PNG layout: images, surfaces, regions, layers).

    Args:
        root: the data set folder (the layout of ``../shared/datasets/stanford_background``).
        size: ``(height, width)`` every image is resized to.
        scales: superpixels aimed at per scale of the multi-scale superpixel LSTM.
        max_nodes, max_regions, max_pairs: padding sizes (``max_nodes`` defaults to 1.5 times
            each scale plus 16).
        cache: folder for the prepared arrays (one ``.npz`` per split and setting), or None.
    """

    def __init__(self, root, size=(240, 320), scales=(48, 96), max_nodes=None, max_regions=64, max_pairs=192,
                 cache=None):
        self.surfaces = StanfordBackground(root, target="surfaces")
        if self.surfaces.layout != "png":
            raise ValueError("GeometricDataset needs the PNG layout (images/, surfaces/, regions/, layers/).")
        for folder in ("regions", "layers"):
            if not (self.surfaces.base / folder).is_dir():
                raise FileNotFoundError(f"Missing folder {self.surfaces.base / folder} (needed for region relations).")
        if max_nodes is None:
            # SLIC returns about the number aimed at; leave room for its overshoot.
            max_nodes = tuple(int(1.5 * scale) + 16 for scale in scales)
        if len(scales) != len(max_nodes):
            raise ValueError(f"`scales` {scales} and `max_nodes` {max_nodes} must have one entry each per scale.")
        self.settings = {"size": list(size), "scales": list(scales), "max_nodes": list(max_nodes),
                         "max_regions": max_regions, "max_pairs": max_pairs}
        self.cache = None if cache is None else Path(cache)
        self.class_names = list(STANFORD_TARGETS["surfaces"])
        self.relation_names = list(RELATIONS)

    def splits(self):
        return self.surfaces.splits()

    def records(self, split):
        """``[(stem, image path, surfaces path, regions path, layers path)]``."""
        base = self.surfaces.base
        return [
            (Path(image).stem, image, surfaces, base / "regions" / f"{Path(image).stem}.png",
             base / "layers" / f"{Path(image).stem}.png")
            for image, surfaces in self.surfaces.files(split)
        ]

    def arrays(self, split, limit=None, verbose=True):
        """Every prepared example of ``split``, stacked: ``{name: (count, ...) array}``."""
        records = self.records(split)[:limit]
        key = hashlib.sha1(json.dumps([split, len(records), self.settings]).encode()).hexdigest()[:12]
        path = None if self.cache is None else self.cache / f"geometric_{split}_{key}.npz"
        if path is not None and path.is_file():
            with np.load(path) as stored:
                return {name: stored[name] for name in stored.files}
        examples = []
        progress = keras.utils.Progbar(len(records), unit_name="image") if verbose else None
        semantic_names = list(STANFORD_TARGETS["regions"])
        for step, (_, image, surfaces, regions, layers) in enumerate(records, start=1):
            examples.append(prepare_example(
                np.asarray(Image.open(image).convert("RGB")),
                read_label_with_pil(str(surfaces)), read_label_with_pil(str(regions)), read_label_with_pil(str(layers)),
                semantic_names=semantic_names, **{k: tuple(v) if isinstance(v, list) else v
                                                  for k, v in self.settings.items()},
            ))
            if progress is not None:
                progress.update(step)
        stacked = {name: np.stack([example[name] for example in examples]) for name in examples[0]}
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, **stacked)
        return stacked

    def relation_counts(self, arrays):
        counts = collections.Counter(arrays["relations"][arrays["relations"] >= 0].tolist())
        return {name: counts.get(index, 0) for index, name in enumerate(self.relation_names)}

    def dataset(self, split, batch_size=8, shuffle=None, augment=False, seed=0, limit=None, arrays=None):
        """A ``tf.data.Dataset`` of ``(inputs, targets)`` for ``HLSTM.fit``.

        ``inputs`` holds ``images`` and the superpixel, region and pair arrays; ``targets``
        ``{"surfaces", "relations"}``. ``augment`` flips images horizontally at random (with
        every map; relations do not change under a horizontal flip).
        """
        import tensorflow as tf

        arrays = self.arrays(split, limit=limit) if arrays is None else arrays
        inputs = {name: value for name, value in arrays.items() if name not in ("surfaces", "relations", "dropped_pairs")}
        targets = {"surfaces": arrays["surfaces"], "relations": arrays["relations"]}
        data = tf.data.Dataset.from_tensor_slices((inputs, targets))
        data = data.map(lambda x, y: ({**x, "images": tf.cast(x["images"], tf.float32)}, y))
        if shuffle if shuffle is not None else split in ("train", "all"):
            data = data.shuffle(len(arrays["images"]), seed=seed, reshuffle_each_iteration=True)
        if augment:
            # One seeded random draw per example and epoch decides its flip.
            draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
            data = tf.data.Dataset.zip(data, draws).map(
                lambda example, draw: _flip_example(*example, draw % 2 == 1), num_parallel_calls=tf.data.AUTOTUNE
            )
        return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


#: Inputs that are images or maps (flipped with the image); the rest (graphs, pairs) are not.
SPATIAL_PREFIXES = ("images", "superpixels_", "regions")


def _flip_example(inputs, targets, flip):
    import tensorflow as tf

    def maybe_flip(value):
        return tf.cond(flip, lambda: tf.reverse(value, [1]), lambda: value)

    inputs = {name: maybe_flip(value) if name.startswith(SPATIAL_PREFIXES) else value for name, value in inputs.items()}
    return inputs, {**targets, "surfaces": maybe_flip(targets["surfaces"])}
