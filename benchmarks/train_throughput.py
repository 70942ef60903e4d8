"""Training and inference throughput of the segmentation models on this machine.

    python benchmarks/train_throughput.py --models unet segnet fcn8s deeplabv3plus \
        --crop 256 256 --batch-size 4 --steps 10

For each model: builds it (weights=None), compiles it with the library's loss and metric,
runs warm-up steps (graph tracing), then times ``--steps`` single ``train_on_batch`` calls
and ``--steps`` ``predict_on_batch`` calls on random data of the given size, and reports
the median images/s of each. Add ``--data-dir`` to also time the CamVid input pipeline
(decode + augment + batch) alone. Prints a Markdown table; ``--json`` writes the numbers.

``--peers`` adds, in the same run and on the same data, the models a user would otherwise
pick (``pip install ".[benchmarks]"``; weights=None everywhere): from keras-hub, built from
the architecture arguments of its presets, DeepLabV3+ on a ResNet-50 (ASPP on the stride-16
features, as ours, though keras-hub then leaves out the last ResNet stage) and SegFormer-B0 (Xie et al., NeurIPS 2021); from segmentation_models 1.0.1 (imported
with ``SM_FRAMEWORK=tf.keras``, under which it runs on Keras 3), its U-Net on a ResNet-34,
its most used model (a different U-Net from ours, which is the original of Ronneberger et al.).
"""

import argparse
import json
import os
import platform
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_sceneparse as ksp  # noqa: E402
import peers  # noqa: E402  (benchmarks/ is the script's folder)
from timing import StepTimer, time_calls  # noqa: E402

CONFIGS = {
    "unet": {"padding": "same"},
    "unet-valid": {"padding": "valid"},
    "segnet": {},
    "fcn8s": {},
    "deeplabv3plus": {"backbone": "mobilenet_v2"},
    "deeplabv3plus-resnet50": {"backbone": "resnet50"},
}


PEERS = {
    "keras_hub-deeplabv3plus-resnet50": lambda num_classes, crop: peers.keras_hub_deeplabv3plus_resnet50(
        num_classes, spatial_pyramid_pooling_key="P4"
    ),
    "keras_hub-segformer-b0": peers.keras_hub_segformer_b0,
    "segmentation_models-unet-resnet34": lambda num_classes, crop: peers.sm_unet(num_classes, "resnet34"),
}


def benchmark_model(name, crop, batch_size, steps, warmup, num_classes):
    if name in PEERS:  # the peer's own loss and metric, from Keras
        model = PEERS[name](num_classes, crop)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=num_classes)
        metric = keras.metrics.MeanIoU(num_classes, sparse_y_pred=False, ignore_class=num_classes)
    else:
        model = ksp.models.get(name.split("-")[0], num_classes=num_classes, **CONFIGS[name])
        loss = ksp.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=num_classes)
        metric = ksp.metrics.MeanIoU(num_classes, ignore_class=num_classes)
    timer = StepTimer(model, loss, [metric], crop, batch_size, num_classes)
    timer.warm_up(warmup)
    timer.time(steps)
    train, predict = timer.images_per_second()
    return {
        "model": name,
        "parameters": model.count_params(),
        "warmup_seconds": round(timer.warmup_seconds, 1),
        "train_step_seconds": round(batch_size / train, 4),
        "train_images_per_second": round(train, 2),
        "predict_images_per_second": round(predict, 2),
    }


def benchmark_pipeline(data_dir, crop, batch_size, steps):
    camvid = ksp.data.CamVid(data_dir)
    dataset = camvid.dataset("train", batch_size=batch_size, crop_size=crop, augment=True, repeat=True, seed=0)
    iterator = iter(dataset)
    next(iterator)
    seconds = statistics.median(time_calls(lambda: next(iterator), steps))
    return round(batch_size / seconds, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["unet", "segnet", "fcn8s", "deeplabv3plus"], choices=CONFIGS)
    parser.add_argument("--crop", nargs=2, type=int, default=(256, 256))
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--num-classes", type=int, default=11)
    parser.add_argument("--peers", action="store_true", help="also time keras-hub's DeepLabV3+ and SegFormer-B0 and segmentation_models' U-Net")
    parser.add_argument("--data-dir", help="CamVid root, to time the input pipeline too")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    rows = [
        benchmark_model(name, tuple(args.crop), args.batch_size, args.steps, args.warmup, args.num_classes)
        for name in [*args.models, *(PEERS if args.peers else ())]
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
