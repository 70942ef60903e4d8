"""Run under a given KERAS_BACKEND by tests/backends/test_backends.py, in its own process.

Trains two small models with the library's losses and metrics, saves and reloads them,
evaluates the losses and scores, and prints one JSON line of results for the test to
compare against the TensorFlow backend.
"""

import json
import os
import sys
import tempfile

import keras
import numpy as np

import keras_sceneparse as ksp

MODELS = {
    "unet": {"base_filters": 4, "padding": "same"},
    # On our own ResNet-18 (a third of MobileNetV2's layers to compile under JAX); the
    # keras.applications backbones run under JAX in the slow tests.
    "deeplabv3plus": {
        "backbone": "resnet18",
        "backbone_kwargs": {"base_filters": 4},
        "aspp_filters": 8,
        "decoder_filters": 8,
        "low_level_filters": 4,
    },
}


def main():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, 35, 45, 3)).astype("float32")
    labels = rng.integers(0, 4, (2, 35, 45)).astype("int32")
    labels[0, :3] = 255
    logits = rng.normal(size=(2, 35, 45, 4)).astype("float32")
    results = {"backend": keras.backend.backend(), "losses": {}, "models": {}}

    for cls in (ksp.losses.SparseCategoricalCrossentropy, ksp.losses.DiceLoss, ksp.losses.FocalLoss, ksp.losses.LovaszSoftmaxLoss):
        results["losses"][cls.__name__] = float(cls(from_logits=True, ignore_class=255)(labels, logits))
    results["scores"] = ksp.metrics.segmentation_scores(labels, logits, 4, ignore_class=255)["mean_iou"]

    for name, kwargs in MODELS.items():
        model = ksp.models.get(name, num_classes=4, **kwargs)
        model.compile(
            "adam",
            ksp.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255),
            metrics=[ksp.metrics.SegmentationScores(4, ignore_class=255)],
        )
        history = model.fit(images, labels, epochs=2, batch_size=2, verbose=0).history
        predictions = model.predict(images, verbose=0)
        path = os.path.join(tempfile.mkdtemp(), f"{name}.keras")
        model.save(path)
        restored = keras.models.load_model(path)
        results["models"][name] = {
            "shape": list(predictions.shape),
            "finite_loss": bool(np.all(np.isfinite(history["loss"]))),
            # An eager call: compiling the restored model's predict again would double the
            # check's cost under JAX, where every compiled function goes through XLA.
            "reload_difference": float(
                np.abs(keras.ops.convert_to_numpy(restored(images, training=False)) - predictions).max()
            ),
            "mean_iou_logged": float(history["mean_iou"][-1]),
        }

    # tf.data pipelines feed `fit` under every backend.
    sample = ksp.data.write_sample_dataset(tempfile.mkdtemp(), num_train=4, num_val=2, size=(32, 48), seed=0)
    model = ksp.models.get("unet", num_classes=sample.num_classes, **MODELS["unet"])
    model.compile("adam", ksp.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=sample.ignore_class))
    history = model.fit(sample.dataset("train", batch_size=2, crop_size=(32, 32), augment=True, seed=0), verbose=0)
    results["tf_data_fit_loss"] = float(history.history["loss"][-1])

    bad = labels.copy()
    bad[1, 0, 0] = 9
    try:
        model.evaluate(images, bad, verbose=0)
        results["bad_label_error"] = None
    except Exception as error:  # the backend's own error type wraps our message under jit
        results["bad_label_error"] = str(error)
    print("RESULTS " + json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
