"""``sceneparse evaluate``: score a saved model on a split, from one confusion matrix.

Images are evaluated whole (batches padded, padding labelled with the ignore id), and the
counts of every batch are summed before any score is taken, so the scores are those of the
whole split, as the surveys report them (see :mod:`keras_sceneparse.metrics.confusion_matrix`).
"""

import math

import keras
import numpy as np

from keras_sceneparse import metrics
from keras_sceneparse.cli import common

HELP = "score a saved model on a split; prints a table and writes metrics JSON"

EXAMPLES = """\
examples:
  sceneparse evaluate --model-path runs/unet-camvid/model.keras --dataset camvid \\
      --data-dir data/camvid --split test --output runs/unet-camvid/test_metrics.json
  sceneparse evaluate --model-path runs/demo/model.keras --split val
      (data set, directory and classes taken from runs/demo/dataset.json)
"""


def add_parser(subparsers):
    parser = common.add_subcommand(
        subparsers,
        "evaluate",
        HELP,
        (
            "Run a saved model over every image of a split at full resolution, accumulate one "
            "confusion matrix, print per-class IoU and the five scores (pixel accuracy, mean "
            "accuracy, mean IoU, frequency weighted IoU, f1), and optionally write them as JSON. "
            "--dataset, --data-dir and the classes default to the dataset.json next to the model."
        ),
        EXAMPLES,
    )
    common.add_model_path_argument(parser)
    common.add_dataset_arguments(parser, required=False)
    parser.add_argument("--split", default="test", metavar="SPLIT", help="split to evaluate (default: test)")
    parser.add_argument(
        "--batch-size", type=common.positive_int, default=1, metavar="N",
        help="images per batch; above 1, images of different sizes are padded to the largest (default: 1)",
    )
    parser.add_argument(
        "--output", metavar="FILE",
        help="write {scores, per_class_iou, confusion_matrix, num_images, model, dataset, split} as JSON",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)
    return parser


def confusion_matrix_over(model, batches, num_classes, ignore_class, num_batches=None, verbose=True):
    """Sums the confusion matrix of ``model``'s predictions over ``(images, labels)`` batches.

    Returns ``(matrix, num_images)`` with ``matrix`` an int64 ``(num_classes, num_classes)``
    array, rows true classes and columns predicted classes.
    """
    predict = common.label_predictor(model)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    num_images = 0
    progress = keras.utils.Progbar(num_batches, unit_name="batch") if verbose else None
    for step, (images, labels) in enumerate(batches, start=1):
        predicted = common.crop_to(predict(images), labels.shape[1], labels.shape[2])
        counts = metrics.confusion_matrix(labels, predicted, num_classes, ignore_class)
        matrix += keras.ops.convert_to_numpy(counts).astype(np.int64)
        num_images += int(labels.shape[0])
        if progress is not None:
            progress.update(step)
    return matrix, num_images


def scores_report(matrix, ignore_class, class_names):
    """The JSON-ready ``scores`` and ``per_class_iou`` of a confusion matrix.

    ``per_class_iou`` maps each class name to its IoU (``NaN`` where the class is absent
    from truth and prediction); the ignore class is left out.
    """
    values = {
        key: keras.ops.convert_to_numpy(value)
        for key, value in metrics.scores_from_confusion_matrix(matrix, ignore_class).items()
    }
    scores = {key: float(values[key]) for key in metrics.SCORE_NAMES}
    per_class = {
        str(name): float(values["per_class_iou"][class_id])
        for class_id, name in enumerate(class_names)
        if class_id != ignore_class
    }
    return scores, per_class


def format_table(scores, per_class_iou):
    width = max([len(name) for name in list(per_class_iou) + list(scores)] + [5])
    lines = [f"{'class':<{width}}  IoU"]
    lines += [f"{name:<{width}}  {common.format_score(value)}" for name, value in per_class_iou.items()]
    lines.append("")
    lines += [f"{name:<{width}}  {common.format_score(value)}" for name, value in scores.items()]
    return "\n".join(lines)


def resolve_data_arguments(args, metadata):
    """Fills --dataset, --data-dir and, for folder data sets, the classes from the run's dataset.json."""
    metadata = metadata or {}
    if args.dataset is None:
        args.dataset = metadata.get("dataset")
    if args.data_dir is None:
        args.data_dir = metadata.get("data_dir")
    for flag, value in (("--dataset", args.dataset), ("--data-dir", args.data_dir)):
        if value is None:
            raise common.UsageError(f"{flag} is required (no dataset.json next to the model gives it)")
    if args.dataset != "folder" or metadata.get("dataset") != "folder":
        return  # a named data set defines its own classes
    if args.num_classes is None:
        args.num_classes = metadata.get("num_classes")
    if args.ignore_class is None:
        args.ignore_class = metadata.get("ignore_class")
    names = metadata.get("class_names")
    if args.class_names is None and names is not None and len(names) == args.num_classes:
        args.class_names = names


def run(args):
    model = common.load_model(args.model_path)
    resolve_data_arguments(args, common.load_metadata(args.model_path))
    dataset = common.load_dataset(args.dataset, args.data_dir, args.num_classes, args.ignore_class, args.class_names)
    split = common.check_split(dataset, args.split, "--split")
    output = None if args.output is None else common.prepare_output_file(args.output)
    model_classes = common.model_num_classes(model)
    if model_classes != dataset.num_classes:
        raise common.UsageError(f"the model scores {model_classes} classes but the data set has {dataset.num_classes}")

    num_files = common.count_files(dataset, split, args.limit)
    batches = dataset.dataset(split, batch_size=args.batch_size, augment=False, shuffle=False, limit=args.limit)
    matrix, num_images = confusion_matrix_over(
        model, batches, dataset.num_classes, dataset.ignore_class,
        num_batches=math.ceil(num_files / args.batch_size), verbose=not args.quiet,
    )
    scores, per_class_iou = scores_report(matrix, dataset.ignore_class, dataset.class_names)
    print(format_table(scores, per_class_iou))
    if output is not None:
        common.write_json(output, {
            "scores": scores,
            "per_class_iou": per_class_iou,
            "confusion_matrix": matrix,
            "num_images": num_images,
            "model": str(args.model_path),
            "dataset": args.dataset,
            "split": split,
        })
        print(f"wrote {output}")
    return 0
