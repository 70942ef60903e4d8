"""Use keras_sceneparse blocks inside your own Keras model (any backend).

    python examples/blocks_in_your_own_model.py

A small SegNet-style encoder-decoder that keeps its pooling indices, with a DeepLab
ASPP in the middle, trained for a few steps on random data and saved/loaded as .keras
without custom_objects.
"""

import os
import tempfile

import keras
import numpy as np

import keras_sceneparse as ksp
from keras_sceneparse.layers import (
    AtrousSpatialPyramidPooling,
    ConvBNReLU,
    MaxPoolingWithArgmax2D,
    MaxUnpooling2D,
)


def build(num_classes=5):
    inputs = keras.Input((None, None, 3))
    x = ConvBNReLU(16)(inputs)
    pooled, indices = MaxPoolingWithArgmax2D()(x)
    x = AtrousSpatialPyramidPooling(filters=16, atrous_rates=(2, 4))(pooled)
    x = MaxUnpooling2D()(x, indices, inputs)
    outputs = keras.layers.Conv2D(num_classes, 3, padding="same")(x)
    return keras.Model(inputs, outputs)


def main():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (8, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 5, (8, 32, 32))
    model = build()
    model.compile("adam", ksp.losses.DiceLoss(from_logits=True), metrics=[ksp.metrics.MeanIoU(5)])
    model.fit(images, labels, epochs=2, verbose=2)
    path = os.path.join(tempfile.mkdtemp(), "blocks.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    print("reloaded, max difference:", float(np.abs(restored.predict(images, verbose=0) - model.predict(images, verbose=0)).max()))


if __name__ == "__main__":
    main()
