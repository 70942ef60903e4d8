import keras
from keras import ops

from keras_sceneparse.backend import resize_images
from keras_sceneparse.utils.serialization import serializable

#: Per-class spatial statistics appended by ``EntityPooling(spatial_features=True)``.
SPATIAL_FEATURES = ("mass", "centre_x", "centre_y", "spread_x", "spread_y")


@serializable
class EntityPooling(keras.layers.Layer):
    """One feature vector per class: the feature map averaged under the class's probability map.

    The entity representation of the structured scene parser (Lin et al., CVPR 2016;
    Zhang et al., TPAMI 2019): the CNN's score maps say where each object class is, and the
    features under a class's map describe that object. Called as
    ``EntityPooling()(features, probabilities)`` with ``features`` ``(B, h, w, D)`` and class
    probabilities ``(B, H, W, C)`` (a softmax of the logits; resized to ``h x w``), it returns
    ``(B, C, D)``: for class ``c``, ``sum_p P_c(p) F(p) / sum_p P_c(p)``.

    Choice: averaging is translation invariant, so it forgets *where* an object is, which
    relations such as "on", "under" or "in front of" depend on; with ``spatial_features=True``
    five statistics of each class's probability map are appended (its mass, the fraction of
    the image it covers; its centre ``x, y`` and spread ``x, y`` in image-relative
    coordinates). The papers do not use them; the option is ours.

    Pooling weights are not differentiated (``stop_gradient``): the structure losses train the
    features, not the segmentation through the pooling weights.
    """

    def __init__(self, spatial_features=True, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.spatial_features = bool(spatial_features)
        self.epsilon = float(epsilon)

    def call(self, features, probabilities):
        target = ops.shape(features)
        weights = resize_images(ops.stop_gradient(probabilities), (target[1], target[2]))
        weights = ops.cast(weights, features.dtype)
        mass = ops.sum(weights, axis=(1, 2))  # (B, C)
        pooled = ops.einsum("bhwc,bhwd->bcd", weights, features) / (ops.expand_dims(mass, -1) + self.epsilon)
        if not self.spatial_features:
            return pooled
        height, width = target[1], target[2]
        ys = (ops.cast(ops.arange(height), features.dtype) + 0.5) / ops.cast(height, features.dtype)
        xs = (ops.cast(ops.arange(width), features.dtype) + 0.5) / ops.cast(width, features.dtype)
        norm = mass + self.epsilon
        centre_y = ops.einsum("bhwc,h->bc", weights, ys) / norm
        centre_x = ops.einsum("bhwc,w->bc", weights, xs) / norm
        spread_y = ops.sqrt(ops.maximum(ops.einsum("bhwc,h->bc", weights, ys * ys) / norm - centre_y**2, 0.0))
        spread_x = ops.sqrt(ops.maximum(ops.einsum("bhwc,w->bc", weights, xs * xs) / norm - centre_x**2, 0.0))
        fraction = mass / ops.cast(height * width, features.dtype)
        spatial = ops.stack([fraction, centre_x, centre_y, spread_x, spread_y], axis=-1)
        return ops.concatenate([pooled, spatial], axis=-1)

    def compute_output_shape(self, features_shape, probabilities_shape):
        extra = len(SPATIAL_FEATURES) if self.spatial_features else 0
        depth = None if features_shape[-1] is None else features_shape[-1] + extra
        return (features_shape[0], probabilities_shape[-1], depth)

    def get_config(self):
        return {**super().get_config(), "spatial_features": self.spatial_features, "epsilon": self.epsilon}
