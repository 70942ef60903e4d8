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
the architecture arguments of its presets, DeepLabV3+ on a ResNet-50 (ASPP on stride 16, as
ours) and SegFormer-B0 (Xie et al., NeurIPS 2021); from segmentation_models 1.0.1 (imported
with ``SM_FRAMEWORK=tf.keras``, under which it runs on Keras 3), its U-Net on a ResNet-34,
its most used model (a different U-Net from ours, which is the original of Ronneberger et al.).
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


def keras_hub_deeplabv3plus_resnet50(num_classes):
    import keras_hub

    encoder = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[3, 4, 6, 3], stackwise_num_strides=[1, 2, 2, 2], block_type="bottleneck_block",
    )
    backbone = keras_hub.models.DeepLabV3Backbone(
        image_encoder=encoder, spatial_pyramid_pooling_key="P4", upsampling_size=4,
        dilation_rates=[6, 12, 18], low_level_feature_key="P2",
    )
    return keras_hub.models.DeepLabV3ImageSegmenter(backbone=backbone, num_classes=num_classes)


def keras_hub_segformer_b0(num_classes, crop):
    import keras_hub

    encoder = keras_hub.models.MiTBackbone(  # MiT-B0; its patch embedding needs a fixed size
        layerwise_depths=[2, 2, 2, 2], num_layers=4, layerwise_num_heads=[1, 2, 5, 8],
        layerwise_sr_ratios=[8, 4, 2, 1], max_drop_path_rate=0.1, layerwise_patch_sizes=[7, 3, 3, 3],
        layerwise_strides=[4, 2, 2, 2], hidden_dims=[32, 64, 160, 256], image_shape=(*crop, 3),
    )
    backbone = keras_hub.models.SegFormerBackbone(image_encoder=encoder, projection_filters=256)
    return keras_hub.models.SegFormerImageSegmenter(backbone=backbone, num_classes=num_classes)


def segmentation_models_unet_resnet34(num_classes):
    os.environ.setdefault("SM_FRAMEWORK", "tf.keras")
    import segmentation_models

    return segmentation_models.Unet("resnet34", encoder_weights=None, classes=num_classes,
                                    activation=None, input_shape=(None, None, 3))


PEERS = {
    "keras_hub-deeplabv3plus-resnet50": lambda num_classes, crop: keras_hub_deeplabv3plus_resnet50(num_classes),
    "keras_hub-segformer-b0": keras_hub_segformer_b0,
    "segmentation_models-unet-resnet34": lambda num_classes, crop: segmentation_models_unet_resnet34(num_classes),
}


def time_calls(function, steps):
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def benchmark_model(name, crop, batch_size, steps, warmup, num_classes):
    if name in PEERS:  # the peer's own loss and metric, from Keras
        model = PEERS[name](num_classes, crop)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=num_classes)
        metric = keras.metrics.MeanIoU(num_classes, sparse_y_pred=False, ignore_class=num_classes)
    else:
        model = ksp.models.get(name.split("-")[0], num_classes=num_classes, **CONFIGS[name])
        loss = ksp.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=num_classes)
        metric = ksp.metrics.MeanIoU(num_classes, ignore_class=num_classes)
    model.compile(keras.optimizers.Adam(1e-3), loss=loss, metrics=[metric])
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
