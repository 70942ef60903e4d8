"""Training and inference throughput of the segmentation models on this machine.

    python benchmarks/train_throughput.py --models unet segnet fcn8s deeplabv3plus \
        --crop 256 256 --batch-size 4 --steps 10

For each model: builds it (weights=None), compiles it with the library's loss and metric,
runs warm-up steps (graph tracing), then times ``--steps`` single ``train_on_batch`` calls
and ``--steps`` ``predict_on_batch`` calls on random data of the given size, and reports
the median images/s of each. Add ``--data-dir`` to also time the CamVid input pipeline
(decode + augment + batch) alone. Prints a Markdown table; ``--json`` writes the numbers.
"""

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_sceneparse as ksp  # noqa: E402

CONFIGS = {
    "unet": {"padding": "same"},
    "unet-valid": {"padding": "valid"},
    "segnet": {},
    "fcn8s": {},
    "deeplabv3plus": {"backbone": "mobilenet_v2"},
    "deeplabv3plus-resnet50": {"backbone": "resnet50"},
}


def time_calls(function, steps):
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def benchmark_model(name, crop, batch_size, steps, warmup, num_classes):
    registry_name = name.split("-")[0]
    model = ksp.models.get(registry_name, num_classes=num_classes, **CONFIGS[name])
    model.compile(
        keras.optimizers.Adam(1e-3),
        loss=ksp.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=num_classes),
        metrics=[ksp.metrics.MeanIoU(num_classes, ignore_class=num_classes)],
    )
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch_size, *crop, 3)).astype("float32")
    labels = rng.integers(0, num_classes + 1, (batch_size, *crop)).astype("int32")
    start = time.perf_counter()
    for _ in range(warmup):
        model.train_on_batch(images, labels)
    first = time.perf_counter() - start
    train_step = time_calls(lambda: model.train_on_batch(images, labels), steps)
    for _ in range(warmup):
        model.predict_on_batch(images)
    predict_step = time_calls(lambda: model.predict_on_batch(images), steps)
    return {
        "model": name,
        "parameters": model.count_params(),
        "warmup_seconds": round(first, 1),
        "train_step_seconds": round(train_step, 4),
        "train_images_per_second": round(batch_size / train_step, 2),
        "predict_images_per_second": round(batch_size / predict_step, 2),
    }


def benchmark_pipeline(data_dir, crop, batch_size, steps):
    camvid = ksp.data.CamVid(data_dir)
    dataset = camvid.dataset("train", batch_size=batch_size, crop_size=crop, augment=True, repeat=True, seed=0)
    iterator = iter(dataset)
    next(iterator)
    seconds = time_calls(lambda: next(iterator), steps)
    return round(batch_size / seconds, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["unet", "segnet", "fcn8s", "deeplabv3plus"], choices=CONFIGS)
    parser.add_argument("--crop", nargs=2, type=int, default=(256, 256))
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--num-classes", type=int, default=11)
    parser.add_argument("--data-dir", help="CamVid root, to time the input pipeline too")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    rows = [
        benchmark_model(name, tuple(args.crop), args.batch_size, args.steps, args.warmup, args.num_classes)
        for name in args.models
    ]
    header = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Keras {keras.__version__} ({keras.backend.backend()})"
    print(f"\n{header}; crop {args.crop[0]}x{args.crop[1]}, batch {args.batch_size}, median of {args.steps} steps\n")
    print("| model | parameters | train images/s | predict images/s | first steps (s) |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['model']} | {row['parameters']:,} | {row['train_images_per_second']} | "
            f"{row['predict_images_per_second']} | {row['warmup_seconds']} |"
        )
    results = {"machine": header, "crop": args.crop, "batch_size": args.batch_size, "models": rows}
    if args.data_dir:
        results["pipeline_images_per_second"] = benchmark_pipeline(args.data_dir, tuple(args.crop), args.batch_size, args.steps)
        print(f"\nCamVid input pipeline (decode + augment + batch): {results['pipeline_images_per_second']} images/s")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
