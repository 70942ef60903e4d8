"""``sceneparse models``: the registered architectures and what each one is."""

from keras_sceneparse import models
from keras_sceneparse.cli import common

HELP = "list the model names accepted by --model"


def add_parser(subparsers):
    parser = common.add_subcommand(
        subparsers, "models", HELP, "List the registered segmentation models, each with a one-line description."
    )
    parser.set_defaults(run=run)
    return parser


def run(args):
    names = models.list_models()
    width = max(len(name) for name in names)
    for name in names:
        print(f"{name:<{width}}  {models.describe(name)}")
    return 0
