"""Parse a photo into geometric surfaces and a graph of region relations with a trained H-LSTM."""

import json
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from keras_sceneparse.structure.geometry import RELATIONS, SURFACES, region_graph
from keras_sceneparse.structure.h_lstm import HLSTM
from keras_sceneparse.structure.scene_parser import CONFIG_FILE, WEIGHTS_FILE, read_preset, save_model_weights
from keras_sceneparse.structure.superpixels import region_adjacency, superpixels


class GeometricParser:
    """Surfaces for every pixel and relations between adjacent regions, from one RGB image.

    ``parse(image)`` returns ``(surface_map, region_graph)``: an ``(H, W)`` int32 map of
    surface ids (0 sky, 1 horizontal, 2 vertical) and a ``networkx.Graph`` whose nodes are
    regions (``surface``, ``area``, ``bbox``, ``centroid``) and whose edges carry the
    predicted ``relation`` and its ``score``; it serialises with
    :func:`~keras_sceneparse.structure.region_graph_to_json`.

    The H-LSTM is trained on a data set's regions; on a new photo, regions are a coarse
    Felzenszwalb-Huttenlocher segmentation (about ``region_segments`` of them), the
    superpixel scales those the model was trained with.

    Args:
        model: a trained :class:`~keras_sceneparse.structure.HLSTM`.
        size: ``(height, width)`` the model sees (images are resized, maps resized back).
        scales: superpixels aimed at per scale (as in training).
        region_segments: regions aimed at on a new photo.
    """

    def __init__(self, model, size=(240, 320), scales=(48, 96), region_segments=24):
        if not isinstance(model, HLSTM):
            raise TypeError(f"`model` must be an HLSTM, got {type(model).__name__}.")
        if len(scales) != len(model.max_nodes):
            raise ValueError(f"`scales` {scales} must have one entry per scale of the model ({model.max_nodes}).")
        self.model = model
        self.size = tuple(int(s) for s in size)
        self.scales = tuple(int(s) for s in scales)
        self.region_segments = int(region_segments)

    # --- presets -------------------------------------------------------------------------------

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """A shipped preset by name (``"stanford_background"``) or a folder of your own."""
        path, config = read_preset(preset, kind="geometric")
        model = HLSTM.from_config(config["model"])
        model.load_weights(path / WEIGHTS_FILE)
        return cls(model, **{**config.get("parser", {}), **kwargs})

    def save_preset(self, folder, **metadata):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "kind": "geometric",
            "model": self.model.get_config(),
            "parser": {"size": list(self.size), "scales": list(self.scales), "region_segments": self.region_segments},
            "metadata": metadata,
        }
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        save_model_weights(self.model, folder / WEIGHTS_FILE)
        return folder

    # --- inference -------------------------------------------------------------------------------

    def _check(self, image):
        array = np.asarray(image)
        if array.ndim != 3 or array.shape[-1] != 3:
            raise ValueError(f"`image` must be an RGB array shaped (height, width, 3), got shape {array.shape}.")
        if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"`image` must hold numbers in [0, 255], got dtype {array.dtype}.")
        if min(array.shape[:2]) < 16:
            raise ValueError(f"`image` is too small to parse: {array.shape[:2]}.")
        return np.clip(array, 0, 255).astype(np.uint8)

    def inputs(self, image):
        """The model's input arrays for one image, and the region map at the image's size."""
        image = self._check(image)
        height, width = image.shape[:2]
        small = np.asarray(Image.fromarray(image).resize((self.size[1], self.size[0]), Image.BILINEAR))
        inputs = {"images": small[None].astype("float32")}
        for index, (scale, capacity) in enumerate(zip(self.scales, self.model.max_nodes)):
            labels = superpixels(small, n_segments=scale)
            count = min(int(labels.max()) + 1, capacity)
            labels = np.where(labels < capacity, labels, -1)
            adjacency = np.zeros((capacity, capacity), "float32")
            adjacency[:count, :count] = region_adjacency(np.where(labels >= 0, labels, -1), count)
            mask = np.zeros((capacity,), "float32")
            mask[:count] = 1.0
            inputs.update({f"superpixels_{index}": labels[None].astype("int32"), f"adjacency_{index}": adjacency[None],
                           f"node_mask_{index}": mask[None]})
        regions = superpixels(image, n_segments=self.region_segments, method="felzenszwalb")
        regions = np.where(regions < self.model.max_regions, regions, -1).astype("int32")
        small_regions = np.asarray(Image.fromarray(regions.astype("int32")).resize((self.size[1], self.size[0]), Image.NEAREST))
        adjacency = region_adjacency(regions, self.model.max_regions)
        pairs = np.argwhere(np.triu(adjacency, 1))
        inputs["regions"] = small_regions[None].astype("int32")
        inputs["pairs"] = (pairs if len(pairs) else np.zeros((1, 2), int) - 1)[None].astype("int32")
        return inputs, regions, pairs, (height, width)

    def parse(self, image):
        """``(surface_map, region_graph)`` of an RGB image (see the class docstring)."""
        inputs, regions, pairs, (height, width) = self.inputs(image)
        outputs = self.model.predict_on_batch(inputs)  # a compiled graph after the first image
        logits = keras.ops.image.resize(outputs["surfaces"], (height, width))
        surface_map = keras.ops.convert_to_numpy(keras.ops.argmax(logits, axis=-1))[0].astype(np.int32)
        probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(outputs["relations"], axis=-1))[0]
        graph = region_graph(regions, surface_map, unknown_id=-1)
        for (a, b), p in zip(pairs, probabilities):
            if graph.has_edge(int(a), int(b)):
                graph.edges[int(a), int(b)].update(relation=RELATIONS[int(p.argmax())], score=float(p.max()))
        return surface_map, graph

    @property
    def surface_names(self):
        return list(SURFACES)
