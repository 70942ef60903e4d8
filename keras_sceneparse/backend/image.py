"""Image resizing to sizes that may only be known when the graph runs."""

import keras


def resize_images(images, size, interpolation="bilinear"):
    """``keras.ops.image.resize`` that also accepts sizes known only at run time.

    Keras checks ``size[0] <= 0`` in Python, which fails inside ``tf.function`` when the
    size is a tensor (images of unknown height and width, e.g. from ``padded_batch``).
    TensorFlow's own resize takes tensor sizes; under JAX and PyTorch shapes are concrete
    when the function runs, so the Keras op is used as is. Half-pixel centres either way.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly():
            method = {"bilinear": "bilinear", "nearest": "nearest"}[interpolation]
            resized = tf.image.resize(images, tf.stack(size), method=method)
            return tf.cast(resized, images.dtype)
    return keras.ops.image.resize(images, size, interpolation=interpolation)
