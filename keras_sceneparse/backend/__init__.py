"""The one place where code depends on the active Keras backend.

Layers, models, losses and metrics are written with ``keras.ops`` only. Keras has
no op that raises an error from a tensor's *values* inside a compiled function,
so the value checks those modules need (label ids in range, images large enough)
live here, dispatched per backend: ``tf.debugging`` asserts under TensorFlow
(they run inside ``tf.function``), ``jax.debug.callback`` under a JAX trace, and
plain Python checks on concrete values everywhere else. So does resizing to a size known
only at run time, which ``keras.ops.image.resize`` refuses inside ``tf.function``.
"""

from keras_sceneparse.backend.assertions import assert_labels_in_range
from keras_sceneparse.backend.image import resize_images

__all__ = ["assert_labels_in_range", "resize_images"]
