"""``sceneparse parse``: images to object-relation trees, the package's main job.

For each image it prints the tree as a bracketed string and writes ``<stem>_tree.json``
(node-link JSON of the tree contract), ``<stem>_tree.png`` (a drawing) and
``<stem>_overlay.png`` (the label map over the image). With no image it parses a bundled
public-domain photo (scikit-image's ``astronaut``, NASA).
"""

from pathlib import Path

import numpy as np
from PIL import Image

from keras_sceneparse import viz
from keras_sceneparse.cli import common
from keras_sceneparse.cli.predict import read_image

HELP = "parse images into object-relation trees; writes <stem>_tree.json, _tree.png and _overlay.png"

EXAMPLES = """\
examples:
  sceneparse parse                                  # the bundled sample photo, shipped weights
  sceneparse parse street.jpg kitchen.png --output parses/
  sceneparse parse photo.jpg --model runs/parser-full/preset --min-area 0.02
"""

SAMPLE_NAME = "astronaut"


def add_parser(subparsers):
    parser = common.add_subcommand(
        subparsers,
        "parse",
        HELP,
        (
            "Segment each IMAGE, take the classes covering at least --min-area of it as objects, and "
            "merge them bottom-up into a tree of relations with the CNN-RsNN (Lin et al., CVPR 2016). "
            "Prints the tree; writes OUTPUT/<stem>_tree.json (networkx node-link JSON), "
            "OUTPUT/<stem>_tree.png and OUTPUT/<stem>_overlay.png. Without IMAGE, parses scikit-image's "
            "public-domain 'astronaut' photo. Uses the weights shipped with the package unless --model "
            "names a preset folder (config.json + model.weights.h5) or a .keras file."
        ),
        EXAMPLES,
    )
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="image files (default: the bundled sample)")
    parser.add_argument(
        "--model", default="sysu_scenes", metavar="PRESET",
        help="a shipped preset name, a preset folder or a .keras file (default: sysu_scenes)",
    )
    parser.add_argument("--output", default="parses", metavar="DIR", help="folder for the outputs (default: parses)")
    parser.add_argument(
        "--min-area", type=float, metavar="F",
        help="smallest fraction of the image a class must cover to be an object (default: the preset's)",
    )
    parser.set_defaults(run=run)
    return parser


def load_images(paths):
    """``[(stem, RGB uint8 array)]`` of the given files, or the bundled sample."""
    if not paths:
        from skimage import data as samples

        return [(SAMPLE_NAME, np.asarray(samples.astronaut(), np.uint8))]
    stems = [Path(p).stem for p in paths]
    repeated = sorted({s for s in stems if stems.count(s) > 1})
    if repeated:
        raise common.UsageError(f"several images are named {repeated}: their outputs would overwrite each other")
    return [(Path(p).stem, read_image(p, 3).astype(np.uint8)) for p in paths]


def run(args):
    from keras_sceneparse.structure import SceneParser, to_bracketed, to_json

    options = {} if args.min_area is None else {"min_area": args.min_area}
    parser = SceneParser.from_preset(args.model, **options)
    output = common.prepare_output_dir(args.output)
    palette = viz.default_palette(len(parser.class_names))
    for stem, image in load_images(args.images):
        tree, label_map = parser.parse(image, return_label_map=True)
        print(f"{stem}: {to_bracketed(tree) if tree is not None else '(no object found)'}")
        common.write_json(output / f"{stem}_tree.json", to_json(tree) if tree is not None else None)
        if tree is not None:
            viz.draw_tree(tree, output / f"{stem}_tree.png")
        Image.fromarray(viz.overlay(image, label_map, palette, alpha=0.5)).save(output / f"{stem}_overlay.png")
    print(f"wrote {output}")
    return 0
