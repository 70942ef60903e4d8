"""Multi-scale and flipped inference (test-time augmentation) for any segmentation model."""

import numbers

import keras
from keras import ops

from keras_sceneparse.backend import resize_images
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.segmentation_model import MAIN_OUTPUT, SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float

#: The evaluation scales of DeepLab (Chen et al., TPAMI 2018, Sec. 4.1: "multi-scale inputs
#: ... 0.5, 0.75, 1, 1.25, 1.5, 1.75") and of PSPNet's multi-scale testing (Zhao et al. 2017).
DEEPLAB_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


@serializable
class MultiScaleFlipInference(SegmentationModel):
    """Test-time augmentation: a segmentation model run at several scales and flipped, averaged.

    Wraps a trained model (any :class:`~keras_sceneparse.models.SegmentationModel`, or any
    Keras model from ``(B, H, W, C)`` images to ``(B, H, W, K)`` logits or to a dict with a
    ``"logits"`` entry). For each scale ``s`` the images are resized bilinearly to
    ``round(s * H) x round(s * W)``; with ``flip`` each scaled image is also mirrored
    left-right. Every view's logits are flipped back where needed, resized bilinearly to
    ``H x W`` and averaged. This is the multi-scale and flipped evaluation of DeepLab
    (Chen et al., "DeepLab: Semantic Image Segmentation with Deep Convolutional Nets,
    Atrous Convolution, and Fully Connected CRFs", TPAMI 2018, https://arxiv.org/abs/1606.00915,
    Sec. 4.1; DeepLabV3, https://arxiv.org/abs/1706.05587, Sec. 4.1) and of PSPNet (Zhao et al.,
    CVPR 2017, https://arxiv.org/abs/1612.01105, Sec. 5.1), with the scales of
    :data:`DEEPLAB_SCALES`.

    What is averaged: with ``average="probabilities"`` (the default) the per-view soft-max
    probabilities are averaged, as the reference evaluation code of PSPNet and
    mmsegmentation's ``aug_test`` do: each view then contributes a normalised vote, so a view
    whose logits happen to have a larger range (e.g. at a scale the network saw less in
    training) does not dominate. The output is ``log`` of the averaged probabilities,
    computed stably as ``logsumexp_v(log_softmax(z_v)) - log V``: it is a valid logit map
    (its soft-max is exactly the averaged probabilities, its argmax the averaged decision),
    so the wrapper keeps the logits contract of every model here and works with
    ``sceneparse evaluate``/``predict``, the metrics and a ``from_logits`` loss.
    ``average="logits"`` averages the logits themselves (DeepLab's TensorFlow code before
    its soft-max); with one view it returns the wrapped model's logits unchanged.

    The wrapper is a functional model whose graph calls the wrapped model once per view,
    so it is saved to ``.keras`` with the wrapped model inside and loads without
    ``custom_objects``. It is meant for inference; it can be fit (the gradients reach the
    wrapped model through every view), but the wrapped model's auxiliary outputs are not
    used.

    Args:
        model: the trained segmentation model.
        scales: image scales, each > 0 (``(1.0,)`` for flips only).
        flip: also run each scale mirrored left-right.
        average: ``"probabilities"`` (default) or ``"logits"``, as above.

    Example:
        >>> model = ksp.models.get("deeplabv3plus", num_classes=21)
        >>> tta = MultiScaleFlipInference(model, scales=DEEPLAB_SCALES, flip=True)
        >>> logits = tta.predict(images)  # (B, H, W, 21), argmax = averaged decision
    """

    def __init__(self, model, scales=(1.0,), flip=False, average="probabilities", **kwargs):
        if not isinstance(model, keras.Model):
            raise TypeError(f"`model` must be a keras.Model, got {model!r} ({type(model).__name__}).")
        if isinstance(scales, numbers.Real):
            scales = (scales,)
        scales = tuple(check_float("scales[i]", scale, minimum=0.0, strict_minimum=True) for scale in scales)
        if not scales:
            raise ValueError("`scales` must name at least one scale, got ().")
        average = check_choice("average", average, {"probabilities", "logits"})
        flip = bool(flip)

        # === Layers ===
        resize_back = ResizeToReference(name="resize_to_input")
        flip_layer = HorizontalFlip(name="horizontal_flip")
        averaging = AverageViews(average, name=MAIN_OUTPUT)

        # === Functional model ===
        inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="images")
        views = []
        for index, scale in enumerate(scales):
            scaled = inputs if scale == 1.0 else ScaleImages(scale, name=f"scale_{index}")(inputs)
            for flipped in (False, True) if flip else (False,):
                logits = model(flip_layer(scaled) if flipped else scaled)
                if isinstance(logits, dict):
                    logits = logits[MAIN_OUTPUT]
                if flipped:
                    logits = flip_layer(logits)
                if scale != 1.0:
                    logits = resize_back(logits, inputs)
                views.append(logits)
        outputs = averaging(views)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.segmentation_model = model
        self.scales = scales
        self.flip = flip
        self.average = average
        self.num_classes = outputs.shape[-1]

    @property
    def num_views(self):
        return len(self.scales) * (2 if self.flip else 1)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype_policy": self.dtype_policy.name,
            "model": keras.saving.serialize_keras_object(self.segmentation_model),
            "scales": self.scales,
            "flip": self.flip,
            "average": self.average,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        return super().from_config(config)


@serializable
class ScaleImages(keras.layers.Layer):
    """Bilinear resize by a factor: ``(B, H, W, C)`` to ``(B, round(s H), round(s W), C)``.

    Sizes are rounded half up and at least 1; they may be unknown until run time.

    Args:
        scale: the factor, > 0.
    """

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = check_float("scale", scale, minimum=0.0, strict_minimum=True)

    def _scaled(self, size):
        if isinstance(size, int):
            return max(1, int(size * self.scale + 0.5))
        scaled = ops.floor(ops.cast(size, "float32") * self.scale + 0.5)
        return ops.cast(ops.maximum(scaled, 1.0), "int32")

    def call(self, inputs):
        shape = ops.shape(inputs)
        return resize_images(inputs, (self._scaled(shape[1]), self._scaled(shape[2])))

    def compute_output_shape(self, input_shape):
        height, width = (None if size is None else self._scaled(size) for size in input_shape[1:3])
        return (input_shape[0], height, width, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@serializable
class HorizontalFlip(keras.layers.Layer):
    """Mirrors ``(B, H, W, C)`` maps left-right (reverses the width axis)."""

    def call(self, inputs):
        return ops.flip(inputs, axis=2)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


@serializable
class AverageViews(keras.layers.Layer):
    """Averages a list of logit maps of one size into one logit map (float32).

    ``"probabilities"``: ``log(mean_v softmax(z_v)) = logsumexp_v(log_softmax(z_v)) - log V``,
    whose soft-max is the mean probability; ``"logits"``: ``mean_v z_v``.

    Args:
        average: ``"probabilities"`` or ``"logits"``.
    """

    def __init__(self, average="probabilities", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.average = check_choice("average", average, {"probabilities", "logits"})

    def call(self, views):
        stacked = ops.stack([ops.cast(view, "float32") for view in views], axis=0)
        if self.average == "logits":
            return ops.mean(stacked, axis=0)
        log_probabilities = ops.log_softmax(stacked, axis=-1)
        return ops.logsumexp(log_probabilities, axis=0) - ops.log(float(len(views)))

    def compute_output_shape(self, views_shape):
        return tuple(views_shape[0])

    def get_config(self):
        return {**super().get_config(), "average": self.average}
