"""One worker of the multi-worker tests (tests/distribute/test_multi_worker.py).

    python worker_script.py STRATEGY OUTPUT.npz [--epochs N] [--backup DIR] [--step-delay S]

Trains a small batch-normalised model on fixed data (11 examples, global batch 4: a partial
last batch) with keras_sceneparse.distribute.fit and, on the chief, writes the final
weights, the optimizer's iteration count and the history to OUTPUT.npz.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_sceneparse import distribute  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("strategy")
parser.add_argument("output")
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--backup")
parser.add_argument("--step-delay", type=float, default=0.0)
parser.add_argument("--timeout", type=float, default=None)
parser.add_argument("--model", choices=("bn", "rsnn", "hlstm"), default="bn")
args = parser.parse_args()

# The strategy before anything else runs TensorFlow operations.
plan = distribute.get_strategy(args.strategy, collective_timeout=args.timeout)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_sceneparse as ksp  # noqa: E402

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
images = rng.uniform(0, 1, (11, 16, 16, 3)).astype("float32")
labels = rng.integers(0, 3, (11, 16, 16)).astype("int32")


def build():
    inputs = keras.Input((None, None, 3))
    x = ksp.layers.ConvBNReLU(8)(inputs)
    x = ksp.layers.ConvBNReLU(8, dilation_rate=2)(x)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(x))
    model.compile(keras.optimizers.Adam(1e-2), ksp.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[ksp.metrics.MeanIoU(3)])
    return model


def epoch_data(epoch):
    # The order depends only on the epoch, so a resumed epoch is the same epoch.
    return tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(11, seed=epoch).batch(4)


CLASSES, RELATIONS = ["background", "person", "dog", "boat"], ["on", "beside"]
TREES = ["(on dog boat)", "(beside (on person boat) dog)", "person", "(on person dog)"] * 3


def build_rsnn():
    from keras_sceneparse.structure import CNNRsNN

    segmenter = ksp.models.get("unet", num_classes=4, base_filters=4, padding="same", dropout=0.0)
    model = CNNRsNN(segmenter, CLASSES, RELATIONS, max_objects=3, embedding_dim=8)
    model.compile(keras.optimizers.Adam(1e-2), metrics=[ksp.metrics.MeanIoU(4)])
    return model


def rsnn_data(epoch):
    from keras_sceneparse.structure import encode_tree, from_bracketed

    encoded = [encode_tree(from_bracketed(t), CLASSES, RELATIONS, 3) for t in TREES[:11]]
    inputs = {key: np.stack([e[key] for e in encoded]) for key in encoded[0]}
    inputs["images"] = images * 255
    return tf.data.Dataset.from_tensor_slices((inputs, labels)).shuffle(11, seed=epoch).batch(4)


def build_hlstm():
    # A zero learning rate: the workers and the single process then hold the same weights at
    # every step, and their logged scores and batch-norm statistics must agree (see the
    # mirrored H-LSTM test for why a real step is not compared).
    from tests.structure.geometric_fixtures import tiny_model

    model = tiny_model()
    model.compile(keras.optimizers.SGD(0.0))
    return model


def hlstm_data(epoch):
    from tests.structure.geometric_fixtures import scene_arrays

    inputs, targets = scene_arrays(8)
    return tf.data.Dataset.from_tensor_slices((inputs, targets)).shuffle(8, seed=epoch).batch(4)


class Progress(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        print(f"STEP done {batch}", flush=True)
        time.sleep(args.step_delay)


try:
    model_fn, data_fn = {"bn": (build, epoch_data), "rsnn": (build_rsnn, rsnn_data), "hlstm": (build_hlstm, hlstm_data)}[
        args.model]
    model, history = distribute.fit(model_fn, data_fn, epochs=args.epochs, strategy=plan, verbose=0,
                                    backup_dir=args.backup, backup_frequency=1, callbacks=[Progress()])
except distribute.WorkerUnavailableError as error:
    print(f"UNAVAILABLE {error}", flush=True)
    sys.exit(3)
if distribute.cluster_info().is_chief:
    np.savez(args.output, iterations=int(model.optimizer.iterations.numpy()),
             history=json.dumps(history.history), *[w.numpy() for w in model.weights])
print("FINISHED", flush=True)
