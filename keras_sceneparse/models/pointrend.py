"""PointRend for semantic segmentation (Kirillov, Wu, He and Girshick, CVPR 2020)."""

import math

import keras
from keras import ops

from keras_sceneparse.backbones import Backbone, list_backbones
from keras_sceneparse.backend import resize_images
from keras_sceneparse.layers.atrous_spatial_pyramid_pooling import (
    AtrousSpatialPyramidPooling,
)
from keras_sceneparse.layers.point_sampling import (
    PointHead,
    importance_sampled_points,
    most_uncertain_grid_points,
    point_sample,
    sample_labels,
)
from keras_sceneparse.losses import per_example_loss
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import MAIN_OUTPUT, SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int

POINTS_OUTPUT = "points"
POINT_COORDINATES_OUTPUT = "point_coords"


@serializable
class PointRendRefinement(keras.layers.Layer):
    """PointRend's rendering of a coarse prediction: point selection, point head, subdivision.

    Called as ``PointRendRefinement(...)(coarse_logits, fine_features, images)`` with the
    coarse model's logits ``(B, h, w, K)``, a fine feature map ``(B, H_f, W_f, C_f)`` and the
    input images (only their size is used). Returns a dict:

    - in training (Sec. 3.1, "point selection for training"): ``"points"``, the point head's
      logits ``(B, N, K)`` at ``N`` points chosen by
      :func:`~keras_sceneparse.layers.point_sampling.importance_sampled_points` (``k N``
      uniform candidates, the ``beta N`` most uncertain, ``(1 - beta) N`` uniform),
      ``"point_coords"`` ``(B, N, 2)`` and ``"logits"``, the coarse logits upsampled
      bilinearly to the input (trained by the coarse model's own loss);
    - in inference (Sec. 3.1, "adaptive subdivision"): ``"logits"`` rendered coarse to
      fine: ``subdivision_steps`` times, the prediction is upsampled 2x bilinearly, its
      ``N`` most uncertain pixels are selected, and the point head re-predicts them from
      the fine features and the coarse logits interpolated there; the last step reaches the
      input size. ``"points"``/``"point_coords"`` are the last step's points.

    Args:
        num_classes: number of classes.
        subdivision_steps: 2x upsampling steps from the coarse logits to the input
            (``log2`` of their stride).
        filters: channels of the point head's hidden layers (256).
        num_layers: hidden layers of the point head (3).
        train_num_points: ``N`` in training.
        subdivision_num_points: ``N`` per subdivision step.
        oversample_ratio: ``k`` (3).
        importance_ratio: ``beta`` (0.75).
        seed: seed of the training point sampler.
    """

    def __init__(
        self,
        num_classes,
        subdivision_steps,
        filters=256,
        num_layers=3,
        train_num_points=2048,
        subdivision_num_points=8192,
        oversample_ratio=3,
        importance_ratio=0.75,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, minimum=1)
        self.subdivision_steps = check_int("subdivision_steps", subdivision_steps, minimum=0)
        self.filters = check_int("filters", filters, minimum=1)
        self.num_layers = check_int("num_layers", num_layers, minimum=0)
        self.train_num_points = check_int("train_num_points", train_num_points, minimum=1)
        self.subdivision_num_points = check_int("subdivision_num_points", subdivision_num_points, minimum=1)
        self.oversample_ratio = check_float("oversample_ratio", oversample_ratio, minimum=1.0)
        self.importance_ratio = check_float("importance_ratio", importance_ratio, minimum=0.0, maximum=1.0)
        self.seed = seed
        self.point_head = PointHead(self.num_classes, self.filters, self.num_layers, dtype=self.dtype_policy,
                                    name="point_head")
        self.seed_generator = keras.random.SeedGenerator(seed, name="point_sampler")

    def build(self, coarse_logits_shape, fine_features_shape, images_shape):
        self.point_head.build((None, None, fine_features_shape[-1]), (None, None, coarse_logits_shape[-1]))

    def predict_points(self, coarse_logits, fine_features, points):
        """The point head's logits at ``points``: fine features and coarse logits interpolated there."""
        return ops.cast(
            self.point_head(point_sample(fine_features, points), point_sample(coarse_logits, points)), "float32"
        )

    def call(self, coarse_logits, fine_features, images, training=None):
        coarse = ops.cast(coarse_logits, "float32")
        fine = ops.cast(fine_features, "float32")
        size = ops.shape(images)
        if training:
            points = importance_sampled_points(
                coarse, self.train_num_points, self.oversample_ratio, self.importance_ratio, seed=self.seed_generator
            )
            return {
                MAIN_OUTPUT: resize_images(coarse, (size[1], size[2])),
                POINTS_OUTPUT: self.predict_points(coarse, fine, points),
                POINT_COORDINATES_OUTPUT: points,
            }
        logits = coarse
        points = ops.zeros((ops.shape(coarse)[0], 0, 2))
        point_logits = ops.zeros((ops.shape(coarse)[0], 0, self.num_classes))
        for step in range(self.subdivision_steps):
            # Each step doubles the resolution; the last one lands on the input's exact size.
            factor = 2 ** (self.subdivision_steps - 1 - step)
            logits = resize_images(logits, (_ceil_divide(size[1], factor), _ceil_divide(size[2], factor)))
            indices, points = most_uncertain_grid_points(logits, self.subdivision_num_points)
            point_logits = self.predict_points(coarse, fine, points)
            logits = _replace_pixels(logits, indices, point_logits)
        if not self.subdivision_steps:
            logits = resize_images(logits, (size[1], size[2]))
        return {MAIN_OUTPUT: logits, POINTS_OUTPUT: point_logits, POINT_COORDINATES_OUTPUT: points}

    def compute_output_shape(self, coarse_logits_shape, fine_features_shape, images_shape):
        batch = coarse_logits_shape[0]
        return {
            MAIN_OUTPUT: (batch, images_shape[1], images_shape[2], self.num_classes),
            POINTS_OUTPUT: (batch, None, self.num_classes),
            POINT_COORDINATES_OUTPUT: (batch, None, 2),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "subdivision_steps": self.subdivision_steps,
            "filters": self.filters,
            "num_layers": self.num_layers,
            "train_num_points": self.train_num_points,
            "subdivision_num_points": self.subdivision_num_points,
            "oversample_ratio": self.oversample_ratio,
            "importance_ratio": self.importance_ratio,
            "seed": self.seed,
        }


def _ceil_divide(size, factor):
    if isinstance(size, int):
        return -(-size // factor)
    return (size + factor - 1) // factor


def _replace_pixels(logits, indices, values):
    """``logits`` ``(B, H, W, K)`` with the flat pixels ``indices`` ``(B, N)`` set to ``values`` ``(B, N, K)``."""
    shape = ops.shape(logits)
    pixels = shape[1] * shape[2]
    flat = ops.reshape(logits, (-1, shape[3]))
    offsets = ops.expand_dims(ops.arange(shape[0], dtype="int32") * pixels, -1)
    positions = ops.reshape(ops.cast(indices, "int32") + offsets, (-1, 1))
    flat = ops.scatter_update(flat, positions, ops.reshape(values, (-1, shape[3])))
    return ops.reshape(flat, shape)


@serializable
@register_model("pointrend")
class PointRend(SegmentationModel):
    """PointRend on DeepLabV3: a coarse prediction rendered at the input resolution point by point.

    Kirillov, Wu, He and Girshick, "PointRend: Image Segmentation as Rendering", CVPR 2020,
    https://arxiv.org/abs/1912.08193; semantic segmentation, Sec. 5 (Table 6: DeepLabV3 with
    PointRend).

    Architecture: the coarse model is DeepLabV3 (a dilated backbone at output stride 16 or
    8, ASPP, a 1x1 classifier: coarse logits at 1/16 or 1/8). The fine-grained features are
    the backbone's stride-4 ``C2`` (``res2``, as the paper uses for DeepLabV3). The point head
    (:class:`~keras_sceneparse.layers.point_sampling.PointHead`, Sec. 3.2) is an MLP of 3
    layers of 256 channels on each point's concatenated fine features and coarse logits,
    the coarse logits concatenated to every layer. :class:`PointRendRefinement` selects the
    points: in inference by adaptive subdivision (upsample 2x, re-predict the ``N`` most
    uncertain pixels, ``-(top1 - top2)`` of the logits, until the input resolution), in
    training by importance sampling (``k = 3`` over-generation, ``beta = 0.75``, Sec. 3.1).

    Training, without a custom ``train_step``: in training the model returns
    ``{"logits": coarse logits upsampled to the input, "points": (B, N, K) point logits,
    "point_coords": (B, N, 2)}``; :meth:`compute_loss` applies the compiled loss to the
    logits (the coarse model's loss) and to the point logits against the labels sampled
    at the same coordinates by nearest neighbour
    (:func:`~keras_sceneparse.layers.point_sampling.sample_labels`), the point loss
    weighted by ``point_loss_weight`` (1). In inference ``"logits"`` is the subdivided
    prediction; ``predict`` returns it alone.

    Choices: ``N`` = 2048 training points and 8192 points per subdivision step are the
    values of the reference implementation's semantic segmentation configuration
    (detectron2 ``projects/PointRend``), which the paper does not restate for Sec. 5; our
    subdivision steps go from the coarse stride to 1 (4 steps at stride 16), the last
    step landing on the input's exact size for sizes that are not multiples of 16. The
    coarse DeepLabV3 head has no image-level dropout beyond ASPP's.

    Parameters: the paper gives none for this configuration. Ours (ResNet-101, output
    stride 16, 19 Cityscapes classes; asserted by a test): 58,418,447, of which the point
    head has 217,212 (three hidden layers of (256 + 19) x 256 weights and 256 biases, on
    256-channel ``res2`` features, and a classifier of (256 + 19) x 19 + 19).

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones`.
        weights: ``None`` or ``"imagenet"`` for the backbone.
        output_stride: 16 (default) or 8.
        atrous_rates: ASPP rates at output stride 16 (doubled at 8).
        aspp_filters: ASPP channels (256).
        point_filters: channels of the point head's hidden layers (256).
        point_layers: hidden layers of the point head (3).
        train_num_points: points per image in training (2048).
        subdivision_num_points: points per image and subdivision step (8192).
        oversample_ratio: ``k`` (3).
        importance_ratio: ``beta`` (0.75).
        point_loss_weight: weight of the point loss (1).
        backbone_kwargs: extra backbone arguments (e.g. ``{"base_filters": 8}``).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = PointRend(num_classes=19, backbone="resnet101")
        >>> model.predict(np.zeros((1, 512, 1024, 3))).shape
        (1, 512, 1024, 19)
    """

    feature_layer = "aspp"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet101",
        weights=None,
        output_stride=16,
        atrous_rates=(6, 12, 18),
        aspp_filters=256,
        point_filters=256,
        point_layers=3,
        train_num_points=2048,
        subdivision_num_points=8192,
        oversample_ratio=3,
        importance_ratio=0.75,
        point_loss_weight=1.0,
        backbone_kwargs=None,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("backbone", backbone, list_backbones())
        output_stride = check_choice("output_stride", output_stride, {8, 16})
        atrous_rates = tuple(check_int("atrous_rates[i]", rate, minimum=1) for rate in atrous_rates)
        aspp_filters = check_int("aspp_filters", aspp_filters, minimum=1)
        point_loss_weight = check_float("point_loss_weight", point_loss_weight, minimum=0.0)

        # === Layers ===
        encoder = Backbone(
            backbone,
            input_shape=input_shape,
            weights=weights,
            output_stride=output_stride,
            application_kwargs=backbone_kwargs,
            name=f"{backbone}_backbone",
        )
        aspp = AtrousSpatialPyramidPooling(
            aspp_filters, atrous_rates=tuple(rate * 16 // output_stride for rate in atrous_rates), name="aspp"
        )
        classifier = keras.layers.Conv2D(num_classes, 1, name="classifier")
        refinement = PointRendRefinement(
            num_classes,
            subdivision_steps=int(math.log2(output_stride)),
            filters=point_filters,
            num_layers=point_layers,
            train_num_points=train_num_points,
            subdivision_num_points=subdivision_num_points,
            oversample_ratio=oversample_ratio,
            importance_ratio=importance_ratio,
            name="pointrend",
        )

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, encoder.normalization, include_preprocessing)
        features = encoder(x)
        coarse_logits = classifier(aspp(features["C5"]))
        rendered = refinement(coarse_logits, features["C2"], inputs)
        outputs = {
            MAIN_OUTPUT: self.logits_output(rendered[MAIN_OUTPUT]),
            POINTS_OUTPUT: rendered[POINTS_OUTPUT],
            POINT_COORDINATES_OUTPUT: rendered[POINT_COORDINATES_OUTPUT],
        }
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            num_classes=num_classes,
            image_shape=input_shape,
            include_preprocessing=include_preprocessing,
            # The base class then returns the main logits from `predict` and computes the
            # metrics on them; the point loss itself is added by `compute_loss` below.
            auxiliary_loss_weights={POINTS_OUTPUT: point_loss_weight},
            **kwargs,
        )

        # === Config ===
        self.backbone_name = backbone
        self.output_stride = output_stride
        self.atrous_rates = atrous_rates
        self.aspp_filters = aspp_filters
        self.point_filters = refinement.filters
        self.point_layers = refinement.num_layers
        self.train_num_points = refinement.train_num_points
        self.subdivision_num_points = refinement.subdivision_num_points
        self.oversample_ratio = refinement.oversample_ratio
        self.importance_ratio = refinement.importance_ratio
        self.point_loss_weight = point_loss_weight
        self.backbone_kwargs = dict(backbone_kwargs or {})

    # --- the point loss (Sec. 3.3) ----------------------------------------------------------

    @staticmethod
    def point_targets(labels, outputs):
        """Labels and logits at the sampled points, shaped as ``(B, N, 1)`` "images" so that
        any per-pixel segmentation loss (ignore label, class weights) applies unchanged."""
        point_labels = sample_labels(labels, outputs[POINT_COORDINATES_OUTPUT])
        return ops.expand_dims(point_labels, -1), ops.expand_dims(outputs[POINTS_OUTPUT], 2)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not (isinstance(y_pred, dict) and POINTS_OUTPUT in y_pred and not isinstance(y, dict)):
            return super().compute_loss(x, y, y_pred, sample_weight=sample_weight, training=training)
        total = keras.Model.compute_loss(
            self, x, y, y_pred[MAIN_OUTPUT], sample_weight=sample_weight, training=training
        )
        if self.point_loss_weight:
            point_labels, point_logits = self.point_targets(y, y_pred)
            total = total + self.point_loss_weight * keras.losses.get(self.loss)(point_labels, point_logits)
        return total

    def per_example_loss(self, x, y, y_pred):
        if not (isinstance(y_pred, dict) and POINTS_OUTPUT in y_pred):
            return super().per_example_loss(x, y, y_pred)
        total = per_example_loss(self.loss, y, y_pred[MAIN_OUTPUT])
        if self.point_loss_weight:
            total = total + self.point_loss_weight * per_example_loss(self.loss, *self.point_targets(y, y_pred))
        return total

    def get_config(self):
        return {
            **self.base_config(),
            "backbone": self.backbone_name,
            "weights": None,
            "output_stride": self.output_stride,
            "atrous_rates": self.atrous_rates,
            "aspp_filters": self.aspp_filters,
            "point_filters": self.point_filters,
            "point_layers": self.point_layers,
            "train_num_points": self.train_num_points,
            "subdivision_num_points": self.subdivision_num_points,
            "oversample_ratio": self.oversample_ratio,
            "importance_ratio": self.importance_ratio,
            "point_loss_weight": self.point_loss_weight,
            "backbone_kwargs": self.backbone_kwargs,
        }
