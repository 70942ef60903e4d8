"""What the subcommands share: argument types, data sets from arguments, models and their metadata.

A training run leaves a folder that the other commands read::

    DIR/model.keras    the best (or last) model, loadable without custom_objects
    DIR/dataset.json   the classes, their colours and how the model was built (METADATA_FILE)
    DIR/history.json   the Keras History, one list per logged value
    DIR/history.csv    the same, one row per epoch

User errors (bad flags, paths, values, data layouts) are raised as :class:`UsageError`,
``ValueError`` or ``OSError``; :func:`keras_sceneparse.cli.main.main` prints them as one
line and exits with status 2. Anything else is a bug and keeps its traceback.
"""

import argparse
import json
import math
import os
import textwrap
from pathlib import Path

import numpy as np

from keras_sceneparse import models

MODEL_FILE = "model.keras"
METADATA_FILE = "dataset.json"
HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"

DATASET_NAMES = ("camvid", "voc", "cityscapes", "ade20k", "stanford_background", "sysu_scenes", "sift_flow", "folder")


class UsageError(Exception):
    """A mistake in the command line or its inputs: reported as one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """Reports a bad command line as a :class:`UsageError`, so it reads like every other user error."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


def add_subcommand(subparsers, name, summary, description, examples=None):
    """A subcommand parser whose description is wrapped and whose examples keep their layout."""
    return subparsers.add_parser(
        name,
        help=summary,
        description=textwrap.fill(" ".join(description.split()), width=88),
        epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


# --- argument types -----------------------------------------------------------------------


def _number_type(convert, description, accept):
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {description}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {description}, got {text!r}")
        return value

    parse.__name__ = description
    return parse


positive_int = _number_type(int, "a positive integer", lambda v: v > 0)
non_negative_int = _number_type(int, "an integer >= 0", lambda v: v >= 0)
positive_float = _number_type(float, "a positive number", lambda v: math.isfinite(v) and v > 0)


def model_argument(text):
    """Parses one ``--model-arg KEY=VALUE``: the value as JSON when it is JSON, else as a string."""
    key, separator, value = text.partition("=")
    key = key.strip()
    if not separator or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY a Python identifier, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_model_path_argument(parser):
    """The saved model that evaluate and predict apply."""
    parser.add_argument(
        "--model-path", required=True, metavar="FILE",
        help="a .keras model, e.g. OUTPUT/model.keras of 'sceneparse train'",
    )


def add_dataset_arguments(parser, required=True):
    """The flags that choose a data set and its classes (train and evaluate)."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset", choices=DATASET_NAMES, required=required,
        help="data set layout; 'folder' is DIR/<split>/{images,labels} with label ids in 8-bit PNGs",
    )
    group.add_argument("--data-dir", required=required, metavar="DIR", help="root folder of the data set")
    group.add_argument(
        "--num-classes", type=positive_int, metavar="N",
        help="number of classes (default: the data set's; required for --dataset folder)",
    )
    group.add_argument(
        "--ignore-class", type=int, metavar="ID",
        help="label id left out of losses and scores (default: the data set's)",
    )
    group.add_argument(
        "--class-names", nargs="+", metavar="NAME",
        help="one name per class, for --dataset folder (default: the data set's, or the ids)",
    )
    group.add_argument(
        "--limit", type=positive_int, metavar="N", help="use only the first N files of each split (quick runs)"
    )
    return group


# --- data sets ------------------------------------------------------------------------------


def load_dataset(name, data_dir, num_classes=None, ignore_class=None, class_names=None):
    """The data set object of ``keras_sceneparse.data`` that the arguments describe."""
    from keras_sceneparse import data

    if name not in DATASET_NAMES:
        raise UsageError(f"unknown data set {name!r}; expected one of {', '.join(DATASET_NAMES)}")
    root = Path(data_dir)
    if not root.exists():
        raise UsageError(f"data directory {str(root)!r} does not exist")
    if not root.is_dir():
        raise UsageError(f"data directory {str(root)!r} is not a directory")
    if name == "folder":
        if num_classes is None:
            raise UsageError("--dataset folder needs --num-classes")
        kwargs = {"num_classes": num_classes, "ignore_class": ignore_class}
        if class_names is not None:
            kwargs["class_names"] = list(class_names)
        return data.get_dataset(name, str(root), **kwargs)
    dataset = data.get_dataset(name, str(root))
    # A named data set defines its classes; the flags may only restate them.
    for flag, given, actual in (
        ("--num-classes", num_classes, dataset.num_classes),
        ("--ignore-class", ignore_class, dataset.ignore_class),
        ("--class-names", None if class_names is None else list(class_names), list(dataset.class_names)),
    ):
        if given is not None and given != actual:
            raise UsageError(
                f"{flag} {given} does not match the {name} data set, which defines {actual}; "
                "use --dataset folder for another labelling"
            )
    return dataset


def check_split(dataset, split, flag):
    """The data set's name for ``split`` (aliases resolved), or a :class:`UsageError` naming ``flag``."""
    try:
        return dataset.resolve_split(split)
    except ValueError as error:
        raise UsageError(f"{flag} {split!r}: {first_line(error)}") from error


def has_split(dataset, split):
    try:
        dataset.resolve_split(split)
    except ValueError:
        return False
    return True


def count_files(dataset, split, limit=None):
    count = len(dataset.files(split))
    return count if limit is None else min(count, limit)


def dataset_metadata(name, data_dir, dataset):
    """The part of the metadata that describes the classes and their colours."""
    return {
        "dataset": name,
        "data_dir": str(Path(data_dir).resolve()),
        "num_classes": int(dataset.num_classes),
        "ignore_class": None if dataset.ignore_class is None else int(dataset.ignore_class),
        "class_names": [str(n) for n in dataset.class_names],
        "palette": [[int(c) for c in color] for color in dataset.palette],
    }


# --- models ---------------------------------------------------------------------------------


def check_model_name(name):
    """Raises, with close matches and the list of models, when ``name`` is not registered."""
    models.model_class(name)
    return name


def build_model(name, num_classes, model_args):
    """``ksp.models.get(name, num_classes=..., **model_args)`` for any image size."""
    try:
        return models.get(name, num_classes=num_classes, input_shape=(None, None, 3), **model_args)
    except TypeError as error:
        raise UsageError(f"cannot build model {name!r} with {model_args}: {error}") from error
    except Exception as error:
        # keras.utils.get_file reports a failed download as a bare Exception.
        if not str(error).startswith("URL fetch failure"):
            raise
        raise UsageError(
            f"cannot download the pretrained weights ({first_line(error)}); connect to the internet "
            "once (Keras caches them in ~/.keras/models) or use --weights none"
        ) from error


def model_num_classes(model):
    """Number of classes a segmentation model scores (its last output axis)."""
    # Models with auxiliary outputs return a dict; Keras lists its shapes, so read the tensor.
    output = model.output["logits"] if isinstance(model.output, dict) else model.output
    return output.shape[-1]


def load_model(path):
    """Loads a ``.keras`` model, naming the file when it is missing or unreadable."""
    import keras

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"model file {str(path)!r} does not exist")
    try:
        # The commands only run inference: the loss, metrics and optimizer state are not needed.
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a bad archive.
        raise UsageError(f"cannot load model {str(path)!r}: {first_line(error)}") from error


def load_metadata(model_path, metadata_path=None):
    """The ``dataset.json`` given, or the one next to the model; ``None`` when there is none."""
    if metadata_path is None:
        metadata_path = Path(model_path).parent / METADATA_FILE
        if not metadata_path.is_file():
            return None
    metadata_path = Path(metadata_path)
    if not metadata_path.is_file():
        raise UsageError(f"metadata file {str(metadata_path)!r} does not exist")
    try:
        metadata = json.loads(metadata_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{str(metadata_path)!r} is not valid JSON: {error}") from error
    if not isinstance(metadata, dict):
        raise UsageError(f"{str(metadata_path)!r} must hold a JSON object, got {type(metadata).__name__}")
    return metadata


def label_predictor(model):
    """A compiled function: ``(B, H, W, C)`` float32 images to ``(B, H', W')`` int32 class ids.

    One trace serves every batch and image size, so full-resolution images of varying sizes
    do not recompile the model for each new shape.
    """
    import tensorflow as tf

    signature = [tf.TensorSpec((None, None, None, model.input_shape[-1]), tf.float32)]

    @tf.function(input_signature=signature)
    def predict(images):
        logits = model(images, training=False)
        if isinstance(logits, dict):
            logits = logits["logits"]
        return tf.argmax(logits, axis=-1, output_type=tf.int32)

    return predict


def crop_to(predicted, height, width):
    """Crops predicted ids ``(B, H', W')`` to the label size ``(height, width)`` (top left)."""
    if predicted.shape[1] < height or predicted.shape[2] < width:
        raise ValueError(
            f"the model predicted {predicted.shape[1]}x{predicted.shape[2]} ids for "
            f"{height}x{width} labels; segmentation models must predict at the input size"
        )
    return predicted[:, :height, :width]


# --- files ----------------------------------------------------------------------------------


def prepare_output_dir(path):
    """Creates the output folder (and its parents); raises when a file is in the way."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"output {str(path)!r} exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    return path


def prepare_output_file(path):
    """Creates the parent folder of an output file."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"output {str(path)!r} is a directory; give a file name such as metrics.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def to_json(value):
    """Plain JSON types for NumPy/TensorFlow values; NaN and infinities become ``null``."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return str(value)
    return value


def dumps_json(value, indent=0):
    """JSON with one key per line and lists of numbers or strings on one line (matrices: one row per line)."""
    pad = " " * indent
    if isinstance(value, dict) and value:
        items = [f'{pad}  {json.dumps(key)}: {dumps_json(item, indent + 2)}' for key, item in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and value and any(isinstance(item, (dict, list)) for item in value):
        items = [f"{pad}  {dumps_json(item, indent + 2)}" for item in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(value, allow_nan=False)


def write_json(path, value):
    """Writes ``value`` as JSON, NaN as ``null`` (see :func:`to_json`)."""
    Path(path).write_text(dumps_json(to_json(value)) + "\n")


def first_line(error):
    """A one-line description of an exception, for ``sceneparse: error: ...``."""
    text = str(error).strip() or type(error).__name__
    return " ".join(text.splitlines()[0].split())


def format_score(value):
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"
