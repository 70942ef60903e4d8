import keras
from keras import ops

from keras_sceneparse.backend import resize_images
from keras_sceneparse.layers import ImageNormalization
from keras_sceneparse.losses import per_example_loss
from keras_sceneparse.utils.validation import check_float, check_image_shape, check_num_classes

MAIN_OUTPUT = "logits"


class SegmentationModel(keras.Model):
    """Base class of the segmentation models: images in, per-pixel class logits out.

    Subclasses build a functional graph in ``__init__`` (layers, then the graph, then the
    config, as in keras-hub) and call ``super().__init__(inputs=..., outputs=...)``. The
    output is a ``(batch, height, width, num_classes)`` float32 tensor of logits at the
    input resolution. Models with auxiliary outputs (deep supervision: PSPNet's auxiliary
    head, LRN's stages, ICNet's cascade) instead return a dict ``{"logits": main,
    name: auxiliary, ...}``; this class then makes them behave like single-output models:

    - ``compile(loss=...)`` takes one loss, applied to the main output and to each auxiliary
      output with the weights in ``auxiliary_loss_weights`` (labels are resized with nearest
      neighbour when an auxiliary output is coarser than them);
    - metrics are computed on the main output only;
    - ``predict`` returns the main output only: auxiliary heads exist for training.

    An auxiliary output that the compiled per-pixel loss cannot score (EncNet's
    ``(batch, num_classes)`` class-presence logits) declares its own loss in
    ``auxiliary_losses``, e.g. ``{"se": ClassPresenceLoss(num_classes)}``: that loss takes
    the labels as they are (not resized) and that output's prediction, and is weighted by
    ``auxiliary_loss_weights`` like the others. The total is then
    ``loss(y, main) + sum_k w_k * loss_k(y, output_k)`` with ``loss_k`` the declared loss or
    the compiled one. Declared losses belong to the architecture (the model builds them
    from its own arguments), so they are not part of the compiled state or of the config.

    Args shared by every model: ``num_classes`` (at least 2), ``input_shape``
    (``(height, width, channels)``, sizes may be ``None``), ``include_preprocessing``
    (put :class:`~keras_sceneparse.layers.ImageNormalization` first, so the model takes
    RGB images in ``[0, 255]``).
    """

    #: Name of the layer whose output is the model's last feature map before the classifier
    #: (what structured parsers pool into entity features); set by each architecture.
    feature_layer = None

    def __init__(
        self, *args, num_classes=None, image_shape=None, include_preprocessing=None, auxiliary_loss_weights=None,
        auxiliary_losses=None, **kwargs,
    ):
        super().__init__(*args, **kwargs)
        # The arguments every architecture takes, kept for `base_config`.
        self.num_classes = num_classes
        self.image_shape = image_shape
        self.include_preprocessing = include_preprocessing
        self.auxiliary_loss_weights = {
            key: check_float(f"auxiliary_loss_weights[{key!r}]", value, minimum=0.0)
            for key, value in (auxiliary_loss_weights or {}).items()
        }
        if self.auxiliary_loss_weights:
            outputs = self.output if isinstance(self.output, dict) else {}
            missing = sorted(set(self.auxiliary_loss_weights) - set(outputs))
            if MAIN_OUTPUT not in outputs or missing:
                raise ValueError(
                    f"`auxiliary_loss_weights` names outputs {missing or list(self.auxiliary_loss_weights)} "
                    f"but the model's outputs are {sorted(outputs) or 'a single tensor'}; a model with "
                    f"auxiliary outputs must return a dict with a {MAIN_OUTPUT!r} entry."
                )
        self.auxiliary_losses = {key: keras.losses.get(loss) for key, loss in (auxiliary_losses or {}).items()}
        undeclared = sorted(set(self.auxiliary_losses) - set(self.auxiliary_loss_weights))
        if undeclared:
            raise ValueError(
                f"`auxiliary_losses` names outputs {undeclared} that have no entry in `auxiliary_loss_weights` "
                f"({sorted(self.auxiliary_loss_weights)}); give each auxiliary output a weight."
            )

    # --- configuration -------------------------------------------------------------------

    def base_config(self):
        """Config entries every model shares; subclasses add their own constructor arguments."""
        config = {"name": self.name, "trainable": self.trainable, "dtype_policy": self.dtype_policy.name}
        shared = {
            "num_classes": self.num_classes,
            "input_shape": self.image_shape,
            "include_preprocessing": self.include_preprocessing,
        }
        return {**config, **{key: value for key, value in shared.items() if value is not None}}

    @classmethod
    def from_config(cls, config):
        # Layers take the global dtype policy when they are built, so a model saved under
        # mixed precision is rebuilt under its policy, whatever the policy at load time.
        config = dict(config)
        policy = config.pop("dtype_policy", None)
        if policy is None:
            return cls(**config)
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            return cls(**config)
        finally:
            keras.config.set_dtype_policy(previous)

    # --- helpers for subclasses -------------------------------------------------------

    @staticmethod
    def validate_arguments(num_classes, input_shape, **shape_constraints):
        return check_num_classes(num_classes), check_image_shape(input_shape, **shape_constraints)

    @staticmethod
    def preprocess(inputs, normalization, include_preprocessing):
        """Applies ``ImageNormalization(normalization)`` when ``include_preprocessing``."""
        if not include_preprocessing or normalization is None:
            return inputs
        return ImageNormalization(normalization, name="image_normalization")(inputs)

    @staticmethod
    def logits_output(x, name=MAIN_OUTPUT):
        """Marks the final logits, in float32 even under a mixed-precision policy."""
        return keras.layers.Activation("linear", dtype="float32", name=name)(x)

    def make_train_function(self, force=False):
        # Without a distribution strategy, Keras' TensorFlow trainer creates the optimizer's
        # slot variables while tracing the first train step, one tf.function-lifted variable
        # at a time: that doubles the time to the first step (12 s instead of 25 s for
        # MobileNetV2 on two CPU cores). Create them eagerly first, as the other backends do.
        # (Not in `compile`: Keras skips restoring the compiled state of models that
        # override `compile`.)
        if self.optimizer is not None and not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)
        return super().make_train_function(force=force)

    def feature_model(self):
        """A functional model sharing this model's layers: images -> ``(features, logits)``.

        ``features`` is the output of :attr:`feature_layer`, the last feature map before the
        classifier (often coarser than the logits).
        """
        if self.feature_layer is None:
            raise ValueError(f"{type(self).__name__} does not declare a feature layer.")
        logits = self.output[MAIN_OUTPUT] if isinstance(self.output, dict) else self.output
        return keras.Model(self.input, [self.get_layer(self.feature_layer).output, logits])

    # --- deep supervision ---------------------------------------------------------------

    @property
    def has_auxiliary_outputs(self):
        return isinstance(self.output, dict) and bool(self.auxiliary_loss_weights)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not (self.has_auxiliary_outputs and isinstance(y_pred, dict) and not isinstance(y, dict)):
            return super().compute_loss(x, y, y_pred, sample_weight=sample_weight, training=training)
        total = super().compute_loss(x, y, y_pred[MAIN_OUTPUT], sample_weight=sample_weight, training=training)
        compiled_loss = keras.losses.get(self.loss)
        for key, weight in self.auxiliary_loss_weights.items():
            if weight:
                auxiliary = y_pred[key]
                if key in self.auxiliary_losses:
                    value = self.auxiliary_losses[key](y, auxiliary, sample_weight=sample_weight)
                else:
                    value = compiled_loss(_labels_like(y, auxiliary), auxiliary, sample_weight=sample_weight)
                total = total + weight * value
        return total

    def per_example_loss(self, x, y, y_pred):
        """The compiled loss for each example ``(B,)``, auxiliary outputs weighted in (each
        with its declared loss from ``auxiliary_losses`` where it has one).

        What ``compute_loss`` averages; distributed loops sum it and normalise by the global
        batch themselves (:mod:`keras_sceneparse.distribute`).
        """
        if not (self.has_auxiliary_outputs and isinstance(y_pred, dict)):
            return per_example_loss(self.loss, y, y_pred)
        total = per_example_loss(self.loss, y, y_pred[MAIN_OUTPUT])
        for key, weight in self.auxiliary_loss_weights.items():
            if weight:
                if key in self.auxiliary_losses:
                    value = per_example_loss(self.auxiliary_losses[key], y, y_pred[key])
                else:
                    value = per_example_loss(self.loss, _labels_like(y, y_pred[key]), y_pred[key])
                total = total + weight * value
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if self.has_auxiliary_outputs and isinstance(y_pred, dict) and not isinstance(y, dict):
            y_pred = y_pred[MAIN_OUTPUT]
        return super().compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def predict(self, x, *args, **kwargs):
        # `predict` rather than `predict_step`: the step's signature differs per backend.
        outputs = super().predict(x, *args, **kwargs)
        if self.has_auxiliary_outputs and isinstance(outputs, dict):
            return outputs[MAIN_OUTPUT]
        return outputs


def _labels_like(labels, logits):
    """Nearest-neighbour resize of a label map to the spatial size of ``logits``."""
    if labels.shape[1:3] == logits.shape[1:3] and None not in labels.shape[1:3]:
        return labels
    squeeze = len(labels.shape) == 3
    maps = ops.expand_dims(labels, -1) if squeeze else labels
    target = ops.shape(logits)
    resized = resize_images(ops.cast(maps, "float32"), (target[1], target[2]), interpolation="nearest")
    resized = ops.cast(resized, labels.dtype)
    return ops.squeeze(resized, -1) if squeeze else resized
