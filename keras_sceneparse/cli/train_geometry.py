"""``sceneparse train-geometry``: train H-LSTM (or its plain-CNN baseline) on Stanford Background."""

from pathlib import Path

from keras_sceneparse.cli import common
from keras_sceneparse.cli.geometry_training import evaluate_hlstm, train_hlstm

HELP = "train the H-LSTM geometric parser on Stanford Background; writes a preset for 'sceneparse geometry'"


def add_parser(subparsers):
    parser = common.add_subcommand(
        subparsers,
        "train-geometry",
        HELP,
        (
            "Train H-LSTM (Peng et al., IJCAI 2016): surfaces per pixel and relations between adjacent "
            "regions, the relations derived from Stanford Background's geometry (docs/geometry.md). "
            "--no-lstm trains the plain-CNN baseline. Writes OUTPUT/preset, OUTPUT/history.json and, "
            "with --evaluate, OUTPUT/val_metrics.json."
        ),
        "examples:\n  sceneparse train-geometry --data-dir ../shared/datasets/stanford_background --epochs 30 "
        "--output runs/hlstm --evaluate\n",
    )
    parser.add_argument("--data-dir", required=True, metavar="DIR", help="Stanford Background root (PNG layout)")
    parser.add_argument("--output", required=True, metavar="DIR")
    parser.add_argument("--lstm", action="store_true", default=True, help="H-LSTM (default)")
    parser.add_argument("--no-lstm", dest="lstm", action="store_false", help="the plain CNN baseline")
    parser.add_argument("--epochs", type=common.positive_int, default=30, metavar="N")
    parser.add_argument("--batch-size", type=common.positive_int, default=8, metavar="N")
    parser.add_argument("--learning-rate", type=common.positive_float, default=1e-3, metavar="LR")
    parser.add_argument("--units", type=common.positive_int, default=32, metavar="U")
    parser.add_argument("--feature-channels", type=common.positive_int, default=48, metavar="C")
    parser.add_argument("--image-size", nargs=2, type=common.positive_int, default=(240, 320), metavar=("H", "W"),
                        help="size every image is resized to (default: 240 320)")
    parser.add_argument("--scales", nargs="+", type=common.positive_int, default=(48, 96), metavar="N",
                        help="superpixels aimed at per scale of the MS-LSTM (default: 48 96)")
    parser.add_argument("--pixel-layers", type=common.positive_int, default=2, metavar="N", help="LG-LSTM layers")
    parser.add_argument("--seed", type=common.non_negative_int, default=0, metavar="N")
    parser.add_argument("--limit", type=common.positive_int, metavar="N", help="only N images per split")
    parser.add_argument("--cache", metavar="DIR", help="cache of the prepared arrays (default: OUTPUT/cache)")
    parser.add_argument("--evaluate", action="store_true", help="evaluate on the val split afterwards")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)
    parser.set_defaults(run=run)
    return parser


def run(args):
    from keras_sceneparse.data.geometric import GeometricDataset
    from keras_sceneparse.structure.geometric_parser import GeometricParser

    output = common.prepare_output_dir(args.output)
    dataset = GeometricDataset(args.data_dir, size=tuple(args.image_size), scales=tuple(args.scales),
                               cache=args.cache or output / "cache")
    model, history, statistics = train_hlstm(
        dataset, use_lstm=args.lstm, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        seed=args.seed, limit=args.limit, verbose=args.verbose, units=args.units,
        feature_channels=args.feature_channels, pixel_layers=args.pixel_layers,
    )
    common.write_json(output / "history.json", history)
    result = {"command": "sceneparse " + " ".join(args.argv), "use_lstm": args.lstm, "training": statistics}
    if args.evaluate:
        result["val"] = evaluate_hlstm(model, dataset, "val", limit=args.limit, verbose=bool(args.verbose))
        common.write_json(output / "val_metrics.json", result["val"])
        surfaces, relations = result["val"]["surfaces"], result["val"]["relations"]
        print(f"val: surface pixel accuracy {surfaces['pixel_accuracy']:.4f}, relation accuracy "
              f"{relations['accuracy']:.4f} (mean per class {relations['mean_class_accuracy']:.4f})")
    parser = GeometricParser(model, size=tuple(dataset.settings["size"]), scales=tuple(dataset.settings["scales"]))
    parser.save_preset(Path(output) / "preset", **result)
    steady = statistics.get("steady_images_per_second")
    print(f"{statistics['training_images_per_second']} training images/s"
          + (f" ({steady} after the first epoch)" if steady else "") + f"; wrote {Path(output) / 'preset'}")
    return 0
