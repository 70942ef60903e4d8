"""``sceneparse train-parser``: train the CNN-RsNN scene parser on SYSU-Scenes."""

from pathlib import Path

from keras_sceneparse.cli import common
from keras_sceneparse.cli.parser_training import (
    DEFAULT_SEGMENTER,
    build_scene_parser_model,
    evaluate_scene_parser,
    train_scene_parser,
)

HELP = "train the CNN-RsNN scene parser on SYSU-Scenes; writes a preset for 'sceneparse parse --model'"

EXAMPLES = """\
examples:
  sceneparse train-parser --data-dir ../shared/datasets/sysu_scenes --epochs 20 --output runs/parser-full
  sceneparse train-parser --data-dir ../shared/datasets/sysu_scenes --supervision weak --epochs 20 \\
      --output runs/parser-weak
"""


def add_parser(subparsers):
    parser = common.add_subcommand(
        subparsers,
        "train-parser",
        HELP,
        (
            "Train the structured scene parser (Lin et al., CVPR 2016): a segmentation CNN and a "
            "recursive network that merges its objects into a tree, learned from the SYSU-Scenes "
            "sentences, parsed into trees by keras_sceneparse.text. --supervision full also uses "
            "the label maps; weak uses the sentences alone (the pixel labels latent, estimated "
            "at each step from the scores restricted to the classes the sentence names). Writes "
            "OUTPUT/preset (config.json + model.weights.h5), OUTPUT/history.json, and with "
            "--evaluate OUTPUT/test_metrics.json."
        ),
        EXAMPLES,
    )
    parser.add_argument("--data-dir", required=True, metavar="DIR", help="SYSU-Scenes root")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for the preset and history")
    parser.add_argument("--supervision", choices=("full", "weak"), default="full")
    parser.add_argument("--segmenter", default=DEFAULT_SEGMENTER, metavar="NAME", help="registered segmentation model")
    parser.add_argument(
        "--segmenter-arg", action="append", default=[], type=common.model_argument, metavar="KEY=VALUE",
        help="segmentation model argument, repeatable (default: a small MobileNetV2 DeepLabV3+)",
    )
    parser.add_argument("--max-objects", type=common.positive_int, default=6, metavar="N")
    parser.add_argument("--embedding-dim", type=common.positive_int, default=128, metavar="D")
    parser.add_argument("--epochs", type=common.positive_int, default=20, metavar="N")
    parser.add_argument("--batch-size", type=common.positive_int, default=8, metavar="N")
    parser.add_argument("--crop-size", nargs=2, type=common.positive_int, default=(224, 224), metavar=("H", "W"))
    parser.add_argument("--learning-rate", type=common.positive_float, default=1e-3, metavar="LR")
    parser.add_argument("--min-area", type=float, default=0.01, metavar="F", help="object area threshold of the preset")
    parser.add_argument("--seed", type=common.non_negative_int, default=0, metavar="N")
    parser.add_argument("--limit", type=common.positive_int, metavar="N", help="use only N images per split")
    parser.add_argument("--evaluate", action="store_true", help="evaluate on the test split afterwards")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)
    parser.set_defaults(run=run)
    return parser


def run(args):
    from keras_sceneparse import data, text
    from keras_sceneparse.structure import SceneParser

    output = common.prepare_output_dir(args.output)
    dataset = data.SYSUScenes(args.data_dir)
    caption_parser = text.CaptionParser("sysu_scenes")
    model = build_scene_parser_model(
        dataset.class_names, caption_parser.relations, args.segmenter, dict(args.segmenter_arg) or None,
        max_objects=args.max_objects, embedding_dim=args.embedding_dim,
    )
    history, statistics = train_scene_parser(
        model, dataset, caption_parser, supervision=args.supervision, epochs=args.epochs,
        batch_size=args.batch_size, crop_size=tuple(args.crop_size), learning_rate=args.learning_rate,
        seed=args.seed, limit=args.limit, verbose=args.verbose,
    )
    common.write_json(output / "history.json", history)
    scene_parser = SceneParser(model, min_area=args.min_area)
    command = "sceneparse train-parser " + " ".join(_command_flags(args))
    result = {"command": command, "supervision": args.supervision, "training": statistics}
    if args.evaluate:
        result["test"] = evaluate_scene_parser(scene_parser, dataset, caption_parser, "test", limit=args.limit)
        common.write_json(output / "test_metrics.json", result["test"])
    scene_parser.save_preset(Path(output) / "preset", **result)
    print(f"{statistics['training_images_per_second']} training images/s; wrote {Path(output) / 'preset'}")
    return 0


def _command_flags(args):
    flags = [f"--data-dir {args.data_dir}", f"--output {args.output}", f"--supervision {args.supervision}",
             f"--segmenter {args.segmenter}", f"--max-objects {args.max_objects}",
             f"--embedding-dim {args.embedding_dim}", f"--epochs {args.epochs}", f"--batch-size {args.batch_size}",
             f"--crop-size {args.crop_size[0]} {args.crop_size[1]}", f"--learning-rate {args.learning_rate}",
             f"--min-area {args.min_area}", f"--seed {args.seed}"]
    flags += [f"--segmenter-arg {key}={value}" for key, value in args.segmenter_arg]
    if args.limit:
        flags.append(f"--limit {args.limit}")
    return flags
