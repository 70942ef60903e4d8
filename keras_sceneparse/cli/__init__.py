"""The ``sceneparse`` command: train, evaluate and apply segmentation models from a shell.

Subcommands live in one module each (``models``, ``train``, ``evaluate``, ``predict``,
``demo``) and share :mod:`keras_sceneparse.cli.common`; :func:`main` dispatches to them.
See ``docs/cli.md`` or ``sceneparse --help``.
"""

from keras_sceneparse.cli.main import main

__all__ = ["main"]
