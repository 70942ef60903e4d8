"""The one place where code depends on the active Keras backend.

Layers, models, losses and metrics are written with ``keras.ops`` only. Keras has
no op that raises an error from a tensor's *values* inside a compiled function,
so the value checks those modules need (label ids in range, images large enough)
live here, dispatched per backend: ``tf.debugging`` asserts under TensorFlow
(they run inside ``tf.function``), ``jax.debug.callback`` under a JAX trace, and
plain Python checks on concrete values everywhere else.
"""

from keras_sceneparse.backend.assertions import assert_labels_in_range

__all__ = ["assert_labels_in_range"]
