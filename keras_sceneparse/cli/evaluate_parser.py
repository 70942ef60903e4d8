"""``sceneparse evaluate-parser``: mIoU and tree accuracies of a scene parser on SYSU-Scenes."""

from keras_sceneparse.cli import common
from keras_sceneparse.cli.parser_training import evaluate_scene_parser

HELP = "score a scene parser on SYSU-Scenes: mIoU, relation and structure accuracy, and a baseline"


def add_parser(subparsers):
    parser = common.add_subcommand(
        subparsers,
        "evaluate-parser",
        HELP,
        (
            "Parse every image of a SYSU-Scenes split and score the label maps (mIoU and the other "
            "segmentation scores) and the trees against the trees of the sentences (relation and "
            "structure accuracy), over the objects found in the image and over the objects the "
            "sentence names, next to a baseline that merges the same objects in a random order "
            "with the most frequent relation. Writes the scores as JSON."
        ),
        "examples:\n  sceneparse evaluate-parser --model sysu_scenes --data-dir ../shared/datasets/sysu_scenes\n",
    )
    parser.add_argument("--model", default="sysu_scenes", metavar="PRESET", help="preset name, folder or .keras file")
    parser.add_argument("--data-dir", required=True, metavar="DIR", help="SYSU-Scenes root")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=common.positive_int, metavar="N", help="only the first N images")
    parser.add_argument("--seed", type=common.non_negative_int, default=0, metavar="N", help="baseline seed")
    parser.add_argument("--output", metavar="FILE", help="JSON file for the scores")
    parser.set_defaults(run=run)
    return parser


def run(args):
    from keras_sceneparse import data, text
    from keras_sceneparse.structure import SceneParser

    scene_parser = SceneParser.from_preset(args.model)
    dataset = data.SYSUScenes(args.data_dir)
    split = common.check_split(dataset, args.split, "--split")
    result = evaluate_scene_parser(
        scene_parser, dataset, text.CaptionParser("sysu_scenes"), split, limit=args.limit, seed=args.seed
    )
    segmentation, trees = result["segmentation"], result["trees"]
    print(f"{split}: {result['num_images']} images, mIoU {common.format_score(segmentation['mean_iou'])}, "
          f"pixel accuracy {common.format_score(segmentation['pixel_accuracy'])}")
    for method in ("model", "baseline"):
        for mode, scores in trees[method].items():
            print(f"  {method:8s} {mode:17s} relation accuracy {common.format_score(scores['relation_accuracy'])}"
                  f"  structure accuracy {common.format_score(scores['structure_accuracy'])}")
    if args.output:
        common.write_json(common.prepare_output_file(args.output), result)
    return 0
