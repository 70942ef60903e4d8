"""Run by test_jax_data_parallel under KERAS_BACKEND=jax with two host devices."""

import json
import os

os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_sceneparse as ksp  # noqa: E402
from keras_sceneparse import distribute  # noqa: E402

rng = np.random.default_rng(0)
images = rng.uniform(0, 1, (8, 16, 16, 3)).astype("float32")
labels = rng.integers(0, 3, (8, 16, 16)).astype("int32")
dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(4)


def build():
    model = ksp.models.get("unet", num_classes=3, base_filters=4, padding="same", dropout=0.0)
    model.compile(keras.optimizers.Adam(1e-2), ksp.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[ksp.metrics.MeanIoU(3)])
    return model


results = {"devices": len(keras.distribution.list_devices())}
for strategy in ("none", "data-parallel"):
    keras.utils.set_random_seed(0)
    plan = distribute.get_strategy(strategy)
    model, history = distribute.fit(build, dataset, epochs=2, strategy=plan, verbose=0)
    keras.distribution.set_distribution(None)
    results[strategy] = {
        "kind": plan.kind,
        "replicas": plan.num_replicas,
        "loss": history.history["loss"],
        "mean_iou": history.history["mean_iou"],
        "weights": [np.asarray(w.numpy()).tolist() for w in model.weights[:2]],
    }
print("RESULTS " + json.dumps(results))
