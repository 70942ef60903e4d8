"""keras_sceneparse: semantic scene parsing for Keras 3 and TensorFlow.

Backend-agnostic parts (``layers``, ``backbones``, ``models``, ``losses``, ``metrics``,
``structure``, ``viz``) are imported with the package, so every serialisable class is
registered as soon as ``import keras_sceneparse`` runs. TensorFlow-only parts (``data``,
``distribute``), the caption parser (``text``, which loads nltk) and the command line
(``cli``) are imported on first access.
"""

import importlib

from keras_sceneparse import backbones, layers, losses, metrics, models, structure, viz
from keras_sceneparse.version import __version__

_LAZY_SUBPACKAGES = ("data", "distribute", "cli", "text")


def __getattr__(name):
    if name in _LAZY_SUBPACKAGES:
        module = importlib.import_module(f"keras_sceneparse.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'keras_sceneparse' has no attribute {name!r}")


__all__ = ["__version__", "backbones", "layers", "losses", "metrics", "models", "structure", "viz", *_LAZY_SUBPACKAGES]
