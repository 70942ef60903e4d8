"""Point sampling and the point head of PointRend (Kirillov, Wu, He and Girshick, CVPR 2020).

Kirillov et al., "PointRend: Image Segmentation as Rendering", CVPR 2020,
https://arxiv.org/abs/1912.08193.

Points are ``(x, y)`` in ``[0, 1]`` image coordinates: ``(0, 0)`` is the top-left corner of
the top-left pixel and ``(1, 1)`` the bottom-right corner of the bottom-right pixel, so the
centre of pixel ``(i, j)`` of an ``H x W`` map is ``((j + 0.5) / W, (i + 0.5) / H)``: the
same point falls on the same image location at every resolution (PyTorch's
``grid_sample(..., align_corners=False)``, which the reference code uses).
"""

import keras
from keras import ops

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


def point_sample(features, points):
    """Bilinear interpolation of ``features`` ``(B, H, W, C)`` at ``points`` ``(B, N, 2)``.

    Returns ``(B, N, C)``. ``points`` hold ``(x, y)`` in ``[0, 1]`` (module docstring);
    the map is zero outside the image (``grid_sample``'s zero padding), which matters only
    within half a pixel of the border. PointRend Sec. 3.1: "features ... are computed by
    bilinear interpolation at the selected points".
    """
    shape = ops.shape(features)
    height, width, channels = shape[1], shape[2], shape[3]
    dtype = features.dtype
    points = ops.cast(points, dtype)
    # Continuous pixel coordinates whose integers are pixel centres.
    x = points[..., 0] * ops.cast(width, dtype) - 0.5
    y = points[..., 1] * ops.cast(height, dtype) - 0.5
    x0, y0 = ops.floor(x), ops.floor(y)
    flat = ops.reshape(features, (shape[0], -1, channels))
    result = 0.0
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            weight = (1.0 - ops.abs(x - xi)) * (1.0 - ops.abs(y - yi))
            inside = (xi >= 0) & (xi <= ops.cast(width - 1, dtype)) & (yi >= 0) & (yi <= ops.cast(height - 1, dtype))
            weight = ops.where(inside, weight, ops.zeros_like(weight))
            column = ops.clip(ops.cast(xi, "int32"), 0, width - 1)
            row = ops.clip(ops.cast(yi, "int32"), 0, height - 1)
            index = ops.expand_dims(row * width + column, -1)
            result = result + ops.take_along_axis(flat, index, axis=1) * ops.expand_dims(weight, -1)
    return result


def sample_labels(labels, points):
    """Nearest-neighbour label of ``labels`` ``(B, H, W)`` (or ``(B, H, W, 1)``) at ``points``.

    Returns ``(B, N)`` with the labels' dtype: the label of the pixel containing each point,
    the ground truth of PointRend's point loss (Sec. 3.3: "the point-wise ... labels are
    obtained by ... sampling the ground truth at the points").
    """
    if len(labels.shape) == 4:
        labels = labels[..., 0]
    shape = ops.shape(labels)
    height, width = shape[1], shape[2]
    points = ops.cast(points, "float32")
    column = ops.clip(ops.cast(ops.floor(points[..., 0] * ops.cast(width, "float32")), "int32"), 0, width - 1)
    row = ops.clip(ops.cast(ops.floor(points[..., 1] * ops.cast(height, "float32")), "int32"), 0, height - 1)
    flat = ops.reshape(labels, (shape[0], -1))
    return ops.take_along_axis(flat, row * width + column, axis=1)


def uncertainty(logits):
    """PointRend's uncertainty of a semantic prediction: ``-(top1 - top2)`` of the logits.

    The reference semantic segmentation head ranks points by the negative margin between
    the two highest class scores; the most ambiguous points (equal top scores) score 0, the
    highest possible. Works on any ``(..., num_classes)`` tensor.
    """
    top = ops.top_k(logits, 2, sorted=True)[0]
    return top[..., 1] - top[..., 0]


def grid_points(height, width, indices):
    """The centres of the flat pixel ``indices`` ``(B, N)`` of an ``height x width`` grid, ``(B, N, 2)``."""
    rows = ops.cast(indices // width, "float32")
    columns = ops.cast(indices % width, "float32")
    x = (columns + 0.5) / ops.cast(width, "float32")
    y = (rows + 0.5) / ops.cast(height, "float32")
    return ops.stack([x, y], axis=-1)


def most_uncertain_grid_points(logits, num_points):
    """Inference point selection (Sec. 3.1, "adaptive subdivision"): the ``N`` pixels of
    ``logits`` ``(B, H, W, K)`` with the highest :func:`uncertainty`.

    Returns ``(indices, points)``: flat pixel indices ``(B, N')`` and their centres
    ``(B, N', 2)``, with ``N' = min(N, H W)``.
    """
    shape = ops.shape(logits)
    height, width = shape[1], shape[2]
    scores = ops.reshape(uncertainty(logits), (shape[0], -1))
    if isinstance(height, int) and isinstance(width, int):
        count = min(num_points, height * width)
    else:
        count = ops.minimum(num_points, height * width)
    indices = ops.top_k(scores, count, sorted=False)[1]
    return indices, grid_points(height, width, indices)


def importance_sampled_points(logits, num_points, oversample_ratio=3, importance_ratio=0.75, seed=None):
    """Training point selection (Sec. 3.1, "point selection for training"): ``(B, N, 2)``.

    Over-generation: ``k N`` points drawn uniformly; importance sampling: the ``beta N``
    most uncertain of them (uncertainty of ``logits`` interpolated at the points); coverage:
    ``(1 - beta) N`` more drawn uniformly. The paper's semantic segmentation setting is
    ``k = 3``, ``beta = 0.75``.

    Args:
        logits: the coarse prediction ``(B, H, W, K)``.
        num_points: ``N``.
        oversample_ratio: ``k`` (>= 1).
        importance_ratio: ``beta`` in ``[0, 1]``.
        seed: a ``keras.random.SeedGenerator`` or an int.
    """
    batch = ops.shape(logits)[0]
    num_candidates = int(oversample_ratio * num_points)
    num_important = int(importance_ratio * num_points)
    num_random = num_points - num_important
    parts = []
    if num_important:
        candidates = keras.random.uniform((batch, num_candidates, 2), seed=seed)
        scores = uncertainty(point_sample(ops.cast(logits, "float32"), candidates))
        chosen = ops.top_k(scores, num_important, sorted=False)[1]
        chosen = ops.repeat(ops.expand_dims(chosen, -1), 2, axis=-1)
        parts.append(ops.take_along_axis(candidates, chosen, axis=1))
    if num_random:
        parts.append(keras.random.uniform((batch, num_random, 2), seed=seed))
    return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=1)


@serializable
class PointHead(keras.layers.Layer):
    """PointRend's point head: an MLP applied to each point's feature vector (Sec. 3.2).

    Called as ``PointHead(num_classes)(fine_features, coarse_predictions)`` on point
    features ``(B, N, C_f)`` and ``(B, N, K)`` (both from :func:`point_sample`). The point
    representation is the concatenation of the two; the MLP is ``num_layers`` fully
    connected layers of ``filters`` channels with ReLU (3 of 256 in the paper), shared by
    all points (a 1x1 convolution), and a linear layer to ``num_classes`` logits. As in the
    paper ("the MLP ... concatenate[s] the coarse prediction features to the input of each
    layer") and the reference ``StandardPointHead``, the coarse predictions are
    concatenated to the input of every layer, the classifier included.

    Args:
        num_classes: number of classes.
        filters: channels of the hidden layers (256).
        num_layers: hidden layers (3).
    """

    def __init__(self, num_classes, filters=256, num_layers=3, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, minimum=1)
        self.filters = check_int("filters", filters, minimum=1)
        self.num_layers = check_int("num_layers", num_layers, minimum=0)
        self.hidden = [
            keras.layers.Dense(self.filters, activation="relu", dtype=self.dtype_policy, name=f"fc{index}")
            for index in range(1, self.num_layers + 1)
        ]
        self.classifier = keras.layers.Dense(self.num_classes, dtype=self.dtype_policy, name="classifier")

    def build(self, fine_features_shape, coarse_predictions_shape):
        coarse = coarse_predictions_shape[-1]
        width = fine_features_shape[-1]
        for layer in self.hidden:
            layer.build((*fine_features_shape[:-1], width + coarse))
            width = self.filters
        self.classifier.build((*fine_features_shape[:-1], width + coarse))

    def call(self, fine_features, coarse_predictions):
        coarse = ops.cast(coarse_predictions, self.compute_dtype)
        x = ops.cast(fine_features, self.compute_dtype)
        for layer in self.hidden:
            x = layer(ops.concatenate([x, coarse], axis=-1))
        return self.classifier(ops.concatenate([x, coarse], axis=-1))

    def compute_output_shape(self, fine_features_shape, coarse_predictions_shape):
        return (*fine_features_shape[:-1], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "filters": self.filters,
            "num_layers": self.num_layers,
        }
