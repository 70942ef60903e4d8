"""Registration of public classes with Keras' serialization registry.

Every public layer, model, loss and metric is decorated with
:data:`serializable`, so that ``model.save("x.keras")`` followed by
``keras.models.load_model("x.keras")`` finds the class by its registered name
(``"keras_sceneparse>ClassName"``) without ``custom_objects``.
"""

import keras

PACKAGE = "keras_sceneparse"

serializable = keras.saving.register_keras_serializable(package=PACKAGE)
