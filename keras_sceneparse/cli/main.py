"""Entry point of the ``sceneparse`` command (``keras_sceneparse.cli.main:main``)."""

import sys

from keras_sceneparse.cli import (
    common,
    demo,
    evaluate,
    evaluate_parser,
    geometry,
    models,
    parse,
    predict,
    train,
    train_geometry,
    train_parser,
)
from keras_sceneparse.version import __version__

SUBCOMMANDS = (parse, geometry, models, train, evaluate, predict, demo, train_parser, evaluate_parser, train_geometry)

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser():
    parser = common.ArgumentParser(
        prog="sceneparse",
        description=(
            "Semantic scene parsing with keras_sceneparse: parse images into object-relation trees; "
            "train, evaluate and apply segmentation models."
        ),
        epilog="Run 'sceneparse COMMAND --help' for the flags of a command; 'sceneparse demo' shows a whole run.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--traceback", action="store_true", help="show the Python traceback of errors instead of one line"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for subcommand in SUBCOMMANDS:
        subcommand.add_parser(subparsers)
    return parser


def _user_error_types():
    """Exceptions that mean bad input (paths, values, data), reported without a traceback."""
    types = (common.UsageError, ValueError, OSError)
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        # Raised by the input pipeline and the graph-mode label checks (ids out of range, unreadable images).
        types += (tf.errors.InvalidArgumentError,)
    return types


def _describe(error):
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.strerror}: {error.filename!r}"
    message = common.first_line(error)
    if type(error).__module__.startswith("tensorflow"):
        message += " (run with --traceback for details)"
    return message


def main(argv=None):
    """Runs ``sceneparse`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    show_traceback = "--traceback" in argv
    try:
        args = parser.parse_args(argv)
        args.argv = argv
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return args.run(args) or 0
    except SystemExit as exit_request:  # --help and --version
        return exit_request.code if isinstance(exit_request.code, int) else 0
    except KeyboardInterrupt:
        print("sceneparse: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        if show_traceback or not isinstance(error, _user_error_types()):
            raise
        print(f"sceneparse: error: {_describe(error)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
