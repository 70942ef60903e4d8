"""Time of structured parsing on this machine: the CNN, and what the tree adds to it.

    python benchmarks/parse_speed.py --model sysu_scenes --objects 2 4 8 16 32 50

Times (median of ``--repeats``): the CNN forward pass of ``SceneParser`` on a 320x240 image,
the whole ``parse`` of that image, and the greedy tree construction alone
(``RecursiveNetwork.greedy_parse``) for 2 to 50 objects with the preset's recursive network.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from keras_sceneparse.structure import SceneParser  # noqa: E402


def median_seconds(function, repeats):
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="sysu_scenes", help="preset name, folder or .keras file")
    parser.add_argument("--objects", nargs="+", type=int, default=[2, 4, 8, 16, 32, 50])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    scene_parser = SceneParser.from_preset(args.model)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (240, 320, 3)).astype("uint8")
    cnn = median_seconds(lambda: scene_parser.segment(image), args.repeats)
    whole = median_seconds(lambda: scene_parser.parse(image), args.repeats)
    found = len(scene_parser.objects(scene_parser.segment(image)))
    print(f"CNN on a 320x240 image: {cnn * 1e3:.1f} ms; parse (CNN + {found} objects + tree): {whole * 1e3:.1f} ms\n")
    print("| objects | greedy tree (ms) |")
    print("|---|---|")
    network = scene_parser.model.recursive_network
    for count in args.objects:
        leaves = np.tanh(rng.normal(size=(count, network.units)))
        seconds = median_seconds(lambda: network.greedy_parse(leaves), args.repeats)
        print(f"| {count} | {seconds * 1e3:.2f} |")


if __name__ == "__main__":
    main()
