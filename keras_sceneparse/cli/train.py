"""``sceneparse train``: fit a registered model on a data set and keep the best checkpoint."""

import argparse
import math
import time
from pathlib import Path

import keras

from keras_sceneparse import losses, metrics
from keras_sceneparse.cli import common

HELP = "train a model; writes model.keras, dataset.json, history.json and history.csv"

LOSSES = {
    "cross_entropy": losses.SparseCategoricalCrossentropy,
    "dice": losses.DiceLoss,
    "focal": losses.FocalLoss,
    "lovasz": losses.LovaszSoftmaxLoss,
}
OPTIMIZERS = ("adam", "sgd")
DEFAULT_LEARNING_RATES = {"adam": 1e-3, "sgd": 1e-2}
SGD_MOMENTUM = 0.9
#: The monitored quantity of the checkpoint: validation mean IoU, the survey's main score.
MONITOR = "val_mean_iou"

EXAMPLES = """\
examples:
  sceneparse train --model unet --dataset camvid --data-dir data/camvid \\
      --epochs 40 --batch-size 8 --image-size 256 256 --output runs/unet-camvid \\
      --model-arg base_filters=32 --model-arg padding='"same"'
  sceneparse train --model deeplabv3plus --backbone mobilenet_v2 --weights imagenet \\
      --dataset folder --data-dir my_data --num-classes 4 --ignore-class 255 \\
      --loss focal --class-weights median-frequency --epochs 10 --output runs/dlv3p
"""


def add_parser(subparsers):
    parser = common.add_subcommand(
        subparsers,
        "train",
        HELP,
        (
            "Train a segmentation model with Keras fit. The best model by validation mean IoU "
            "(the last one without a validation split) is saved to OUTPUT/model.keras, next to "
            "OUTPUT/dataset.json (classes, colours, model arguments), OUTPUT/history.json and "
            "OUTPUT/history.csv. The same --seed and data give the same weights."
        ),
        EXAMPLES,
    )
    model = parser.add_argument_group("model")
    model.add_argument("--model", required=True, metavar="NAME", help="registered model name (see 'sceneparse models')")
    model.add_argument(
        "--model-arg", action="append", default=[], type=common.model_argument, metavar="KEY=VALUE",
        help="model constructor argument, repeatable; VALUE is parsed as JSON when it is JSON, "
        "else taken as a string (e.g. base_filters=16, padding=same, backbone_kwargs='{\"alpha\": 0.35}')",
    )
    model.add_argument("--backbone", metavar="NAME", help="backbone of models that take one (e.g. deeplabv3plus)")
    model.add_argument(
        "--weights", choices=("none", "imagenet"), default="none",
        help="initial backbone weights (default: none, i.e. random)",
    )

    common.add_dataset_arguments(parser)
    data = parser.add_argument_group("training data")
    data.add_argument("--train-split", default="train", metavar="SPLIT", help="split to train on (default: train)")
    data.add_argument(
        "--val-split", metavar="SPLIT",
        help="split to validate on after each epoch (default: 'val' when the data set has it); 'none' to skip",
    )
    data.add_argument(
        "--image-size", nargs=2, type=common.positive_int, metavar=("H", "W"),
        help="training crop size (default: whole images, padded to the largest in a batch)",
    )
    data.add_argument(
        "--augment", action=argparse.BooleanOptionalAction, default=True,
        help="random scale, crop, flip and colour jitter of training images (default: on)",
    )

    fit = parser.add_argument_group("optimisation")
    fit.add_argument("--epochs", type=common.positive_int, default=10, metavar="N", help="epochs (default: 10)")
    fit.add_argument(
        "--steps-per-epoch", type=common.positive_int, metavar="N",
        help="batches per epoch, repeating the data as needed (default: one pass over the training split)",
    )
    fit.add_argument(
        "--batch-size", type=common.positive_int, default=8, metavar="N", help="images per batch (default: 8)"
    )
    fit.add_argument(
        "--loss", choices=list(LOSSES), default="cross_entropy", help="training loss (default: cross_entropy)"
    )
    fit.add_argument(
        "--class-weights", choices=("none", "median-frequency"), default="none",
        help="per-class loss weights; median-frequency is SegNet's balancing, computed on the training split",
    )
    fit.add_argument(
        "--optimizer", choices=OPTIMIZERS, default="adam", help="adam, or sgd with momentum 0.9 (default: adam)"
    )
    fit.add_argument(
        "--learning-rate", type=common.positive_float, metavar="LR",
        help="learning rate (default: 1e-3 for adam, 1e-2 for sgd)",
    )
    fit.add_argument("--seed", type=common.non_negative_int, default=0, metavar="N", help="random seed (default: 0)")
    fit.add_argument(
        "--deterministic", action=argparse.BooleanOptionalAction,
        help="enable TensorFlow op determinism so a seed reproduces the weights exactly (default: on, "
        "off with --jit-compile); --no-deterministic for ops without a deterministic GPU kernel",
    )
    fit.add_argument("--mixed-precision", action="store_true", help="compute in float16 (mixed_float16 policy)")
    fit.add_argument(
        "--jit-compile", action="store_true",
        help="compile the training step with XLA (Keras allows it only without op determinism)",
    )
    fit.add_argument(
        "--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras fit verbosity (default: 1, progress bar)"
    )

    scale = parser.add_argument_group("distribution (see docs/distribute.md)")
    scale.add_argument(
        "--strategy", choices=("none", "mirrored", "multi-worker"), default="none",
        help="none: one device; mirrored: every GPU of this machine (tf.distribute.MirroredStrategy); "
        "multi-worker: the workers of TF_CONFIG, or --workers local processes (default: none)",
    )
    scale.add_argument(
        "--workers", type=common.positive_int, default=1, metavar="N",
        help="with --strategy multi-worker: start N worker processes on 127.0.0.1 and gather their output",
    )
    scale.add_argument(
        "--backup-dir", metavar="DIR",
        help="checkpoints to resume an interrupted run from (the multi-worker loop every --backup-frequency steps)",
    )
    scale.add_argument(
        "--backup-frequency", default="epoch", metavar="STEPS",
        help="steps between multi-worker backups, or 'epoch' (default: epoch)",
    )
    scale.add_argument(
        "--max-restarts", type=common.non_negative_int, default=0, metavar="N",
        help="with --workers: restart all workers up to N times when one fails (they resume from --backup-dir)",
    )
    scale.add_argument(
        "--collective-timeout", type=common.positive_float, default=None, metavar="SECONDS",
        help="fail a multi-worker collective that waits longer (default: none; a dead worker is "
             "found by TensorFlow's heartbeats within about 10 s)",
    )

    parser.add_argument("--output", required=True, metavar="DIR", help="folder for the model, metadata and history")
    parser.set_defaults(run=run)
    return parser


class TrainingTimer(keras.callbacks.Callback):
    """Wall time spent in training batches, validation left out (for images per second);
    ``epoch_seconds`` per epoch (the first includes graph tracing)."""

    def __init__(self):
        super().__init__()
        self.seconds = 0.0
        self.epoch_seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = self.last_batch_end = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.last_batch_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_seconds.append(self.last_batch_end - self.epoch_start)
        self.seconds += self.epoch_seconds[-1]


def build_loss(name, ignore_class, class_weights):
    if name == "lovasz" and class_weights is not None:
        raise common.UsageError("--loss lovasz does not take --class-weights")
    return LOSSES[name](from_logits=True, ignore_class=ignore_class, class_weights=class_weights)


def build_optimizer(name, learning_rate):
    learning_rate = learning_rate or DEFAULT_LEARNING_RATES[name]
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=SGD_MOMENTUM)
    return keras.optimizers.Adam(learning_rate)


def model_arguments(args):
    """``--model-arg`` pairs plus ``--backbone`` and ``--weights`` as constructor arguments."""
    arguments = dict(args.model_arg)
    for flag, key, value in (
        ("--backbone", "backbone", args.backbone),
        ("--weights", "weights", None if args.weights == "none" else args.weights),
    ):
        if value is not None:
            if key in arguments and arguments[key] != value:
                raise common.UsageError(f"{flag} {value} contradicts --model-arg {key}={arguments[key]}")
            arguments[key] = value
    return arguments


def use_op_determinism(args):
    """Whether to enable op determinism: by default yes, except with XLA, which Keras then turns off."""
    if args.deterministic and args.jit_compile:
        raise common.UsageError(
            "--jit-compile and --deterministic exclude each other: Keras trains without XLA while "
            "TensorFlow op determinism is on"
        )
    return not args.jit_compile if args.deterministic is None else args.deterministic


def validation_split(dataset, requested):
    if requested is None:
        return dataset.resolve_split("val") if common.has_split(dataset, "val") else None
    if requested.lower() == "none":
        return None
    return common.check_split(dataset, requested, "--val-split")


def run(args):
    if args.workers > 1:
        return launch_workers(args)
    train(args)
    return 0


def launch_workers(args):
    """``--workers N``: this process starts N workers of the same command and waits for them."""
    import os

    from keras_sceneparse.distribute.launcher import run_local_job

    if args.strategy != "multi-worker":
        raise common.UsageError("--workers needs --strategy multi-worker")
    if os.environ.get("TF_CONFIG"):
        raise common.UsageError("--workers starts its own workers; unset TF_CONFIG (which describes a cluster)")
    argv = ["-m", "keras_sceneparse.cli", *_without_launcher_flags(args.argv)]
    return run_local_job(argv, args.workers, max_restarts=args.max_restarts)


def _without_launcher_flags(argv):
    kept, skip = [], False
    for item in argv:
        if skip:
            skip = False
            continue
        name = item.split("=", 1)[0]
        if name in ("--workers", "--max-restarts"):
            skip = "=" not in item
            continue
        kept.append(item)
    return kept


def backup_frequency(value):
    if value == "epoch":
        return value
    try:
        steps = int(value)
    except ValueError:
        steps = 0
    if steps < 1:
        raise common.UsageError(f"--backup-frequency must be 'epoch' or a positive number of steps, got {value!r}")
    return steps


def train(args):
    """Trains as the parsed ``sceneparse train`` arguments say; returns ``(model, history)``.

    ``model`` is the one in memory after the last epoch; OUTPUT/model.keras holds the best.
    In a multi-worker job every worker trains; only the chief writes OUTPUT.
    """
    import tempfile

    from keras_sceneparse import distribute

    # First: a multi-worker strategy must exist before TensorFlow runs any operation.
    plan = distribute.get_strategy(args.strategy, collective_timeout=args.collective_timeout)
    frequency = backup_frequency(args.backup_frequency)
    is_chief = distribute.cluster_info().is_chief
    common.check_model_name(args.model)
    arguments = model_arguments(args)
    output = common.prepare_output_dir(args.output) if is_chief else Path(tempfile.mkdtemp(prefix="sceneparse_worker_"))
    dataset = common.load_dataset(args.dataset, args.data_dir, args.num_classes, args.ignore_class, args.class_names)
    train_split = common.check_split(dataset, args.train_split, "--train-split")
    val_split = validation_split(dataset, args.val_split)
    image_size = None if args.image_size is None else list(args.image_size)
    seed_everything(args)
    class_weights = None
    if args.class_weights == "median-frequency":
        class_weights = [float(w) for w in dataset.median_frequency_weights(train_split)]
    build_loss(args.loss, dataset.ignore_class, class_weights)  # argument errors before any work
    common.write_json(output / common.METADATA_FILE, {
        **common.dataset_metadata(args.dataset, args.data_dir, dataset),
        "image_size": image_size,
        "model": args.model,
        "model_args": arguments,
        "train_split": train_split,
        "val_split": val_split,
        "seed": args.seed,
        "loss": args.loss,
        "class_weights": class_weights,
        "strategy": args.strategy,
    })

    repeat = args.steps_per_epoch is not None

    def train_data(epoch):
        # The order and augmentation of an epoch depend only on (seed, epoch), so a resumed
        # multi-worker run repeats no step; a single fit() call reshuffles the epoch-0 data set.
        return dataset.dataset(
            train_split, batch_size=args.batch_size, crop_size=image_size, augment=args.augment,
            shuffle=True, repeat=repeat, seed=args.seed + epoch, limit=args.limit,
        )

    val_data = None
    if val_split is not None:
        val_data = dataset.dataset(val_split, batch_size=args.batch_size, augment=False, shuffle=False, limit=args.limit)

    model_path = output / common.MODEL_FILE
    model_path.unlink(missing_ok=True)  # a model left by an earlier run must not pass for this one's
    checkpoint = keras.callbacks.ModelCheckpoint(
        model_path,
        monitor=MONITOR if val_data is not None else "loss",
        mode="max" if val_data is not None else "min",
        save_best_only=val_data is not None,
        verbose=1 if args.verbose else 0,
    )
    timer = TrainingTimer()
    model, history = distribute.fit(
        lambda: compiled_model(args, dataset, arguments, class_weights),
        train_data,
        validation_data=val_data,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        strategy=plan,
        callbacks=[checkpoint, keras.callbacks.CSVLogger(output / common.HISTORY_CSV), timer],
        verbose=args.verbose,
        backup_dir=args.backup_dir,
        backup_frequency=frequency,
    )
    if not model_path.exists():  # an undefined (NaN) validation score never "improves"
        model.save(model_path)
    common.write_json(output / common.HISTORY_JSON, history.history)

    if repeat:
        num_images = args.epochs * args.steps_per_epoch * args.batch_size
    else:
        num_images = args.epochs * common.count_files(dataset, train_split, args.limit)
    if is_chief:
        _print_summary(history.history, val_data is not None, num_images, timer.seconds, output)
    return model, history


def seed_everything(args):
    """Seeds Python, NumPy and the backend, and makes TensorFlow ops deterministic if asked."""
    import tensorflow as tf

    keras.utils.set_random_seed(args.seed)
    if use_op_determinism(args):
        tf.config.experimental.enable_op_determinism()


def compiled_model(args, dataset, arguments, class_weights):
    """Builds and compiles the model (under mixed precision if asked)."""
    previous_policy = keras.mixed_precision.global_policy()
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = common.build_model(args.model, dataset.num_classes, arguments)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    model.compile(
        optimizer=build_optimizer(args.optimizer, args.learning_rate),
        loss=build_loss(args.loss, dataset.ignore_class, class_weights),
        metrics=[metrics.SegmentationScores(dataset.num_classes, dataset.ignore_class)],
        jit_compile=args.jit_compile,
    )
    return model


def _print_summary(history, validated, num_images, seconds, output):
    rate = num_images / seconds if seconds > 0 else math.inf
    lines = [f"trained on {num_images} images in {seconds:.1f} s: {rate:.1f} images/s"]
    if validated and history.get(MONITOR):
        scores = history[MONITOR]
        finite = [value for value in scores if math.isfinite(value)]
        if finite:
            best = max(finite)
            epoch = scores.index(best) + 1
            lines.append(f"best validation mean IoU {best:.4f} (epoch {epoch})")
    lines.append(f"saved {Path(output) / common.MODEL_FILE}")
    print("\n".join(lines))
