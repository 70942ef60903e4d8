"""Relations derived from the geometry of Stanford Background, counted per split.

    python benchmarks/stanford_relations.py --data-dir ../shared/datasets/stanford_background

Builds the region graph of every image of each split (regions: ``layers/``, surfaces:
``surfaces/``, semantic classes: ``regions/``), derives the relations of adjacent regions
with ``keras_sceneparse.structure.geometry.derive_relations`` and prints, per split, the
number of images, regions and edges, the count and share of each relation, and the
relations by pair of surfaces. ``--horizons`` also compares the horizon that
``keras_sceneparse.structure.popup.estimate_horizon`` finds from the surfaces with the
annotated one of ``horizons.txt``.
"""

import argparse
import collections
import pathlib
import sys

import numpy as np
from PIL import Image

from keras_sceneparse.structure.geometry import MIN_AREA, RELATIONS, derive_relations, region_graph

#: Stanford Background's semantic classes (``regions/`` ids 0..7), as ``ksp.data.StanfordBackground``.
SEMANTIC_NAMES = ["sky", "tree", "road", "grass", "water", "building", "mountain", "foreground"]


def read_maps(root, stem):
    """``(image, layers, surfaces, regions)`` of one image of the PNG copy, as NumPy arrays."""
    root = pathlib.Path(root)
    image = np.asarray(Image.open(root / "images" / f"{stem}.jpg").convert("RGB"))
    maps = [np.asarray(Image.open(root / folder / f"{stem}.png")) for folder in ("layers", "surfaces", "regions")]
    return (image, *maps)


def split_stems(root, split):
    path = pathlib.Path(root) / "splits" / f"{split}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"No split list {path}; expected the PNG copy of Stanford Background.")
    return path.read_text().split()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="the Stanford Background folder (PNG copy)")
    parser.add_argument("--splits", nargs="+", default=["train", "val"])
    parser.add_argument("--min-area", type=int, default=MIN_AREA, help="smallest region kept (pixels)")
    parser.add_argument("--horizons", action="store_true", help="also measure the horizon estimate")
    args = parser.parse_args()

    annotated = {}
    if args.horizons:
        from keras_sceneparse.structure.popup import estimate_horizon

        for line in (pathlib.Path(args.data_dir) / "horizons.txt").read_text().splitlines():
            stem, _, _, row = line.split()
            annotated[stem] = float(row)

    print("| split | images | regions | edges | " + " | ".join(RELATIONS) + " |")
    print("|---|---|---|---|" + "---|" * len(RELATIONS))
    by_surfaces = {}
    horizon_errors = {}
    for split in args.splits:
        counts = collections.Counter()
        pairs = collections.Counter()
        stems = split_stems(args.data_dir, split)
        regions = edges = 0
        errors = []
        for stem in stems:
            _, layers, surfaces, semantics = read_maps(args.data_dir, stem)
            graph = region_graph(layers, surfaces, semantics, semantic_names=SEMANTIC_NAMES, min_area=args.min_area)
            derive_relations(graph, layers)
            regions += graph.number_of_nodes()
            edges += graph.number_of_edges()
            for u, v, relation in graph.edges(data="relation"):
                counts[relation] += 1
                key = tuple(sorted((str(graph.nodes[u]["surface"]), str(graph.nodes[v]["surface"]))))
                pairs[key, relation] += 1
            if args.horizons:
                errors.append(estimate_horizon(surfaces) - annotated[stem])
        by_surfaces[split] = pairs
        horizon_errors[split] = np.asarray(errors)
        shares = " | ".join(f"{counts[name]} ({100 * counts[name] / max(edges, 1):.1f}%)" for name in RELATIONS)
        unknown = f" (+{counts[None]} unknown)" if counts[None] else ""
        print(f"| {split} | {len(stems)} | {regions} | {edges}{unknown} | {shares} |")

    for split, pairs in by_surfaces.items():
        print(f"\nRelations by surfaces, {split}:")
        for surfaces in sorted({key for key, _ in pairs}):
            row = ", ".join(f"{name} {pairs[surfaces, name]}" for name in RELATIONS if pairs[surfaces, name])
            print(f"  {surfaces[0]:>10} - {surfaces[1]:<10} {row}")
    if args.horizons:
        print("\nHorizon estimated from the surfaces minus horizons.txt (rows):")
        for split, errors in horizon_errors.items():
            print(
                f"  {split}: median {np.median(errors):+.1f}, median |error| {np.median(np.abs(errors)):.1f}, "
                f"90th percentile |error| {np.percentile(np.abs(errors), 90):.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
