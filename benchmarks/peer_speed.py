"""Our models beside the same architecture in segmentation_models and keras-hub, in one run.

    python benchmarks/peer_speed.py --crop 256 256 --batch-size 4 --steps 5 --rounds 3

Each pair is built at an equal backbone, input size, batch and number of classes (weights
None), compiled with the same optimiser (Adam) and each library's own loss and mean IoU
metric, warmed up, then timed in ``--rounds`` interleaved rounds (ours, theirs, ours, ...) of
``--steps`` ``train_on_batch`` and ``predict_on_batch`` calls each, so both share any load on
the machine. Reported: the median images/s over every timed step and the ratio ours/theirs
(above 1: ours is faster). ``--fast`` also times our model on the fast path for CPUs with
bfloat16 units (AVX-512 BF16, AMX): the ``mixed_bfloat16`` policy (``--mixed-precision`` of
``sceneparse train`` is float16, the GPU fast path). ``--xla`` adds XLA (``jit_compile=True``),
which Keras leaves off on CPU-only machines.

Where the two libraries' networks differ beyond the backbone, the table says how: the ratio
then measures the libraries' designs, not only their implementations.
"""

import argparse
import json
import os
import platform

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_sceneparse as ksp  # noqa: E402
import peers  # noqa: E402  (benchmarks/ is the script's folder)
from timing import StepTimer  # noqa: E402

#: name -> (our registered model and arguments, their builder(num_classes, crop), how they differ)
PAIRS = {
    "linknet-resnet18": (
        ("linknet", {"backbone": "resnet18"}),
        lambda num_classes, crop: peers.sm_linknet(num_classes, "resnet18"),
        (
            "segmentation_models Linknet('resnet18', decoder_block_type='transpose'); its head is a fifth "
            "decoder block and a 3x3 convolution, the paper's (ours) two transposed convolutions and a 3x3 "
            "convolution; its ResNet-18 normalises the input with a batch norm layer"
        ),
    ),
    "semantic_fpn-mobilenet_v2": (
        ("semantic_fpn", {"backbone": "mobilenet_v2"}),
        lambda num_classes, crop: peers.sm_fpn(num_classes, "mobilenetv2"),
        (
            "segmentation_models FPN('mobilenetv2', pyramid_aggregation='sum'); it applies two 3x3 "
            "convolutions per level and upsamples by nearest neighbour, where the semantic FPN of "
            "Kirillov et al. (ours) repeats 3x3 conv + GroupNorm + 2x bilinear upsampling per octave"
        ),
    ),
    "pspnet-mobilenet_v2": (
        ("pspnet", {"backbone": "mobilenet_v2", "auxiliary_loss_weight": 0.0}),
        lambda num_classes, crop: peers.sm_pspnet(num_classes, crop, "mobilenetv2"),
        (
            "segmentation_models PSPNet('mobilenetv2', downsample_factor=8) cuts the backbone at its "
            "stride-8 layer and pools there; the paper's PSPNet (ours) keeps the whole backbone, dilated "
            "to stride 8, so it computes far more; neither has the auxiliary head here"
        ),
    ),
    "deeplabv3plus-resnet50": (
        ("deeplabv3plus", {"backbone": "resnet50", "output_stride": 32, "atrous_rates": (12, 24, 36)}),
        lambda num_classes, crop: peers.keras_hub_deeplabv3plus_resnet50(num_classes, "P5"),
        (
            "keras-hub DeepLabV3+ as its preset: ASPP at stride 32 with rates 6/12/18 (ours set to the "
            "same), but its decoder is one 1x1 convolution where the paper's (ours) has two 3x3 "
            "convolutions of 256 channels at stride 4"
        ),
    ),
}

FAST_PATHS = {"bfloat16": {"policy": "mixed_bfloat16"}}
# XLA compiles slowly on CPU (minutes per model here) and Keras leaves it off on CPU-only
# machines; ask for it explicitly.
XLA_PATHS = {"xla": {"jit_compile": True}, "xla+bfloat16": {"jit_compile": True, "policy": "mixed_bfloat16"}}


def build_timer(side, pair, num_classes, crop, batch_size, jit_compile=False, policy=None):
    (name, kwargs), theirs, _ = PAIRS[pair]
    previous = keras.config.dtype_policy()
    if policy:
        keras.config.set_dtype_policy(policy)
    try:
        if side == "ours":
            model = ksp.models.get(name, num_classes=num_classes, **kwargs)
            loss = ksp.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=num_classes)
            metric = ksp.metrics.MeanIoU(num_classes, ignore_class=num_classes)
        else:
            model = theirs(num_classes, crop)
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=num_classes)
            metric = keras.metrics.MeanIoU(num_classes, sparse_y_pred=False, ignore_class=num_classes)
    finally:
        keras.config.set_dtype_policy(previous)
    return StepTimer(model, loss, [metric], crop, batch_size, num_classes, jit_compile=jit_compile)


def benchmark_pair(pair, args):
    crop = tuple(args.crop)
    if pair.startswith("pspnet"):  # segmentation_models' PSPNet needs sizes divisible by 48
        crop = tuple(-(-size // 48) * 48 for size in crop)
    timers = {
        "ours": build_timer("ours", pair, args.num_classes, crop, args.batch_size),
        "theirs": build_timer("theirs", pair, args.num_classes, crop, args.batch_size),
    }
    fast_paths = {**(FAST_PATHS if args.fast else {}), **(XLA_PATHS if args.xla else {})}
    for label, options in fast_paths.items():
        timers[f"ours {label}"] = build_timer("ours", pair, args.num_classes, crop, args.batch_size, **options)
    for timer in timers.values():
        timer.warm_up(args.warmup)
    for _ in range(args.rounds):
        for timer in timers.values():
            timer.time(args.steps)
    theirs_train, theirs_predict = timers["theirs"].images_per_second()
    rows = []
    for label, timer in timers.items():
        train, predict = timer.images_per_second()
        rows.append({
            "pair": pair,
            "model": label,
            "crop": crop,
            "parameters": timer.model.count_params(),
            "train_images_per_second": round(train, 2),
            "predict_images_per_second": round(predict, 2),
            "train_ratio": round(train / theirs_train, 2),
            "predict_ratio": round(predict / theirs_predict, 2),
        })
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=PAIRS)
    parser.add_argument("--crop", nargs=2, type=int, default=(256, 256))
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per round (default: 5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default: 3)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--num-classes", type=int, default=11)
    parser.add_argument("--fast", action="store_true", help="also time our models under mixed_bfloat16")
    parser.add_argument("--xla", action="store_true", help="also time our models compiled with XLA (jit_compile)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    header = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Keras {keras.__version__} ({keras.backend.backend()})"
    )
    print(f"\n{header}; batch {args.batch_size}, median of {args.rounds} x {args.steps} steps\n")
    print("| pair | model | crop | parameters | train img/s | predict img/s | train ours/theirs | predict ours/theirs |")
    print("|---|---|---|---|---|---|---|---|", flush=True)
    rows = []
    for pair in args.pairs:  # each pair's rows as soon as they are measured
        for row in benchmark_pair(pair, args):
            rows.append(row)
            print(
                f"| {row['pair']} | {row['model']} | {row['crop'][0]}x{row['crop'][1]} | {row['parameters']:,} | "
                f"{row['train_images_per_second']} | {row['predict_images_per_second']} | "
                f"{row['train_ratio']} | {row['predict_ratio']} |",
                flush=True,
            )
        keras.backend.clear_session()
    print()
    for pair in args.pairs:
        print(f"- {pair}: {PAIRS[pair][2]}.")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": header, "batch_size": args.batch_size, "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
