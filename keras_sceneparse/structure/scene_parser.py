"""Parse images into object-relation trees with a trained CNN-RsNN."""

import json
from pathlib import Path

import keras
import numpy as np

from keras_sceneparse.structure.cnn_rsnn import CNNRsNN
from keras_sceneparse.structure.encoding import decode_merges
from keras_sceneparse.utils.validation import check_float

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"


def list_presets():
    """Names of the parsers shipped with the package (``SceneParser.from_preset(name)``)."""
    if not PRESETS_DIR.is_dir():
        return []
    return sorted(p.name for p in PRESETS_DIR.iterdir() if (p / CONFIG_FILE).is_file() and (p / WEIGHTS_FILE).is_file())


def read_preset(preset, kind):
    """``(folder, config)`` of a preset given by folder or shipped name, checked to be of
    ``kind`` (``"tree"`` for :class:`SceneParser`, ``"geometric"`` for ``GeometricParser``;
    presets written before kinds existed are trees)."""
    path = Path(preset)
    if not path.is_dir():
        if str(preset) not in list_presets():
            raise ValueError(
                f"Unknown preset {preset!r}: not a folder, and not one of the shipped "
                f"presets {list_presets()}."
            )
        path = PRESETS_DIR / str(preset)
    config_path = path / CONFIG_FILE
    for required in (config_path, path / WEIGHTS_FILE):
        if not required.is_file():
            raise FileNotFoundError(f"The preset folder {path} has no {required.name}.")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_path} is not valid JSON: {error}") from None
    found = config.get("kind", "tree")
    if found != kind:
        loaders = {"tree": "SceneParser.from_preset (`sceneparse parse`)",
                   "geometric": "GeometricParser.from_preset (`sceneparse geometry`)"}
        raise ValueError(f"{path} is a {found!r} preset, not a {kind!r} one: load it with {loaders.get(found, '?')}.")
    return path, config


def save_model_weights(model, path, half_precision=True):
    """Saves the model's weights as a preset ships them: without the optimizer's state, and
    float32 arrays stored as float16 (half the size; Keras casts them back when loading).
    Rounding to float16 keeps about three significant digits: a parse barely moves (over
    99% of the pixels keep their label in ``tests/structure/test_h_lstm.py``).

    Keras writes a compiled model's optimizer variables into ``.weights.h5`` too (for Adam,
    twice the model's size); a clone built from the config carries the weights alone.
    """
    import h5py

    clone = type(model).from_config(model.get_config())
    clone.set_weights(model.get_weights())
    if not half_precision:
        clone.save_weights(path)
        return
    # Written anew rather than edited in place: HDF5 does not give back the space of deleted
    # datasets, so an in-place conversion would leave the file its float32 size.
    full = Path(path).with_name(Path(path).stem + ".float32.weights.h5")
    clone.save_weights(full)
    try:
        with h5py.File(full, "r") as source, h5py.File(path, "w") as target:
            _copy_as_float16(source, target)
    finally:
        full.unlink()


def _copy_as_float16(source, target):
    import h5py

    target.attrs.update(source.attrs)
    for name, item in source.items():
        if isinstance(item, h5py.Group):
            _copy_as_float16(item, target.create_group(name))
        else:
            values = item[()]
            if isinstance(values, np.ndarray) and values.dtype == np.float32:
                values = values.astype(np.float16)
            target.create_dataset(name, data=values).attrs.update(item.attrs)


class SceneParser:
    """Segments an image and parses it into an object-relation tree (a ``networkx.DiGraph``).

    Build one from shipped weights, ``SceneParser.from_preset("sysu_scenes")``, from a folder
    of your own (``config.json`` + ``model.weights.h5``, as :meth:`save_preset` writes), or
    from a trained :class:`~keras_sceneparse.structure.CNNRsNN`.

    ``parse(image)`` segments the image, takes every non-background class covering at least
    ``min_area`` of it as an object, pools its entity vector and merges the objects greedily
    (:meth:`~keras_sceneparse.layers.RecursiveNetwork.greedy_parse`). The tree follows the
    contract of :mod:`keras_sceneparse.structure.tree`; object nodes carry ``area`` (pixels),
    ``bbox`` (``[x0, y0, x1, y1]``) and ``score`` (mean class probability over the object),
    relation nodes ``score`` (the merge score) and ``relation_score`` (the categorizer's
    probability of the relation).

    Args:
        model: a trained ``CNNRsNN``.
        min_area: smallest fraction of the image a class must cover to become an object.
        max_side: images are resized so that their longer side is at most this many pixels
            before the CNN sees them (the label map is returned at the original size);
            ``None`` keeps the size.
    """

    def __init__(self, model, min_area=0.01, max_side=None):
        if not isinstance(model, CNNRsNN):
            raise TypeError(f"`model` must be a CNNRsNN, got {type(model).__name__}.")
        self.model = model
        self.min_area = check_float("min_area", min_area, minimum=0.0, maximum=1.0)
        self.max_side = max_side

    # --- loading and saving ------------------------------------------------------------------

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """Loads a shipped preset by name, or a folder / ``.keras`` file of your own."""
        path = Path(preset)
        if path.suffix == ".keras" and path.is_file():
            return cls(keras.models.load_model(path, compile=False), **kwargs)
        path, config = read_preset(preset, kind="tree")
        weights_path = path / WEIGHTS_FILE
        parser_options = config.pop("parser", {})
        model = CNNRsNN.from_config(config["model"])
        model(np.zeros((1, 32, 32, 3), "float32"))  # build the variables before loading
        model.load_weights(weights_path)
        return cls(model, **{**parser_options, **kwargs})

    def save_preset(self, folder, **metadata):
        """Writes ``config.json`` and ``model.weights.h5`` for :meth:`from_preset`.

        ``metadata`` (e.g. the training command and measured scores) is stored in the config.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "kind": "tree",
            "model": self.model.get_config(),
            "parser": {"min_area": self.min_area, "max_side": self.max_side},
            "metadata": metadata,
        }
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        save_model_weights(self.model, folder / WEIGHTS_FILE)
        return folder

    # --- inference ----------------------------------------------------------------------------

    @property
    def class_names(self):
        return self.model.class_names

    @property
    def relation_names(self):
        return self.model.relation_names

    def _prepare(self, image):
        array = np.asarray(image)
        if array.ndim != 3 or array.shape[-1] != 3:
            raise ValueError(f"`image` must be an RGB array shaped (height, width, 3), got shape {array.shape}.")
        if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"`image` must hold numbers in [0, 255], got dtype {array.dtype}.")
        if array.shape[0] < 8 or array.shape[1] < 8:
            raise ValueError(f"`image` is too small to parse: {array.shape[:2]}.")
        height, width = array.shape[:2]
        batch = array[None].astype("float32")
        if self.max_side is not None and max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            size = (max(1, round(height * scale)), max(1, round(width * scale)))
            batch = keras.ops.convert_to_numpy(keras.ops.image.resize(batch, size))
        return batch, (height, width)

    def _forward(self, image):
        batch, size = self._prepare(image)
        features, logits = self.model.cnn(batch, training=False)
        if tuple(logits.shape[1:3]) != size:
            logits = keras.ops.image.resize(logits, size)
        return features, logits, size

    def segment(self, image):
        """The label map ``(H, W)`` of an RGB image (class ids as in :attr:`class_names`)."""
        _, logits, _ = self._forward(image)
        return keras.ops.convert_to_numpy(keras.ops.argmax(logits, axis=-1))[0].astype(np.int32)

    def parse(self, image, return_label_map=False, objects=None):
        """The object-relation tree of an RGB image, or ``None`` when no object is found.

        ``objects`` (class names or ids) overrides the objects found by segmentation, e.g. to
        parse the objects a sentence names. With ``return_label_map=True`` returns
        ``(tree, label_map)``.
        """
        features, logits, _ = self._forward(image)
        probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))[0]
        label_map = probabilities.argmax(-1).astype(np.int32)
        objects = self.objects(label_map) if objects is None else self._class_ids(objects)
        tree = None
        if objects:
            entities = np.array([objects], np.int32)
            leaves, _ = self.model.embed_entities(features, logits, entities)
            merges = self.model.recursive_network.greedy_parse(keras.ops.convert_to_numpy(leaves)[0])
            rows = [(subject, object_, int(np.argmax(p))) for subject, object_, _, p in merges]
            merge_attributes = [{"score": float(score), "relation_score": float(p.max())} for _, _, score, p in merges]
            leaf_attributes = [self._object_attributes(c, label_map, probabilities) for c in objects]
            tree = decode_merges(objects, rows, self.class_names, self.relation_names, leaf_attributes, merge_attributes)
        return (tree, label_map) if return_label_map else tree

    def objects(self, label_map):
        """Class ids covering at least ``min_area`` of the label map, largest first (no background)."""
        counts = np.bincount(label_map.ravel(), minlength=len(self.class_names))
        threshold = self.min_area * label_map.size
        ids = [c for c in np.argsort(-counts, kind="stable") if counts[c] > 0 and counts[c] >= threshold]
        return [int(c) for c in ids if c != self.model.background_class]

    def _class_ids(self, objects):
        ids = []
        for item in objects:
            if isinstance(item, str):
                if item not in self.class_names:
                    raise ValueError(f"Unknown object class {item!r}; the parser knows {self.class_names}.")
                item = self.class_names.index(item)
            item = int(item)
            if not 0 <= item < len(self.class_names):
                raise ValueError(f"Object class id {item} is outside [0, {len(self.class_names)}).")
            if item not in ids:
                ids.append(item)
        return ids

    @staticmethod
    def _object_attributes(class_id, label_map, probabilities):
        rows, cols = np.nonzero(label_map == class_id)
        if rows.size == 0:  # an object given by the caller that the segmentation did not find
            return {"area": 0, "score": float(probabilities[..., class_id].mean())}
        return {
            "area": int(rows.size),
            "bbox": [int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1],
            "score": float(probabilities[rows, cols, class_id].mean()),
        }
