"""``sceneparse geometry``: surfaces, region relations and a pop-up 3D model of each photo."""

import time

import numpy as np
from PIL import Image

from keras_sceneparse import viz
from keras_sceneparse.cli import common
from keras_sceneparse.cli.parse import load_images

HELP = "geometric parse of photos: surface overlay, region graph JSON and drawing, optional 3D pop-up"

#: Display colours of sky, horizontal and vertical surfaces.
SURFACE_PALETTE = [(80, 170, 255), (60, 200, 60), (230, 50, 50)]


def add_parser(subparsers):
    parser = common.add_subcommand(
        subparsers,
        "geometry",
        HELP,
        (
            "Label every pixel of each IMAGE with a geometric surface (sky, horizontal, vertical) and "
            "every pair of adjacent regions with a relation (layering, supporting, siding, affinity) "
            "with H-LSTM (Peng et al., IJCAI 2016). Writes OUTPUT/<stem>_surfaces.png (overlay), "
            "OUTPUT/<stem>_regions.json (networkx node-link JSON), OUTPUT/<stem>_graph.png, and with "
            "--popup a textured 3D model (OBJ or PLY). Without IMAGE, parses scikit-image's "
            "public-domain 'astronaut' photo."
        ),
        "examples:\n  sceneparse geometry street.jpg --output geometry/ --popup obj\n",
    )
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="image files (default: the bundled sample)")
    parser.add_argument(
        "--model", default="stanford_background", metavar="PRESET",
        help="a shipped preset name or a preset folder (default: stanford_background)",
    )
    parser.add_argument("--output", default="geometry", metavar="DIR")
    parser.add_argument("--popup", choices=("obj", "ply"), help="also write a pop-up 3D model in this format")
    parser.set_defaults(run=run)
    return parser


def run(args):
    from keras_sceneparse.structure import popup, region_graph_to_json
    from keras_sceneparse.structure.geometric_parser import GeometricParser

    parser = GeometricParser.from_preset(args.model)
    output = common.prepare_output_dir(args.output)
    for stem, image in load_images(args.images):
        start = time.perf_counter()
        surfaces, graph = parser.parse(image)
        seconds = time.perf_counter() - start
        relations = sorted({data.get("relation") for _, _, data in graph.edges(data=True)} - {None})
        print(f"{stem}: {graph.number_of_nodes()} regions, {graph.number_of_edges()} relations "
              f"({', '.join(relations) or 'none'}) in {seconds:.2f} s")
        Image.fromarray(viz.overlay(image, surfaces, SURFACE_PALETTE, alpha=0.45)).save(output / f"{stem}_surfaces.png")
        common.write_json(output / f"{stem}_regions.json", region_graph_to_json(graph))
        regions = _region_map(parser, image)
        viz.draw_region_graph(image, regions, graph, output / f"{stem}_graph.png")
        if args.popup:
            mesh = popup.popup_mesh(image, surfaces, regions)
            writer = popup.write_obj if args.popup == "obj" else popup.write_ply
            writer(output / f"{stem}.{args.popup}", mesh, image)
    print(f"wrote {output}")
    return 0


def _region_map(parser, image):
    """The regions the parser used, at the image's size (-1 none)."""
    _, regions, _, _ = parser.inputs(np.asarray(image))
    return regions
