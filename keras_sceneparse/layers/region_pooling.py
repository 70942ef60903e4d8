import keras
from keras import ops

from keras_sceneparse.backend import assert_labels_in_range
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int

#: Segment id of pixels that belong to no region (padding around smaller images).
NO_REGION = -1


@serializable
class RegionPooling(keras.layers.Layer):
    """One feature vector per superpixel: the mean of the features under it.

    The node features of superpixel graphs: the Graph LSTM (Liang et al., ECCV 2016) and the
    multi-scale superpixel LSTM of H-LSTM (Peng et al., IJCAI 2016) give each superpixel
    node the average of the CNN features of its pixels. Called as
    ``RegionPooling(num_regions)(features, segments)`` with ``features`` ``(B, h, w, C)`` and
    ``segments`` ``(B, H, W)`` integer region ids in ``[0, num_regions)`` or ``-1`` (no
    region); returns ``(B, num_regions, C)``.

    The segment map is resized to the features' ``h x w`` by nearest neighbour with
    half-pixel centres (feature row ``r`` takes segment row ``floor((r + 1/2) H / h)``), so a
    region smaller than the feature stride may vanish: regions without a feature pixel (and
    ids beyond a graph's real regions) pool to zeros. Sums and counts are one
    ``segment_sum`` over the batch, each image's ids offset by ``b * num_regions``; ids
    outside ``[0, num_regions)`` other than ``-1`` are errors, in eager code and in graphs.

    :meth:`scatter_to_pixels` (and the layer :class:`RegionUnpooling`, for functional
    models) goes back: every pixel of a segment map gets its region's vector (zeros where
    the id is ``-1``).

    Args:
        num_regions: ``N``, the static number of regions (the node count of a padded
            batch, see :func:`keras_sceneparse.structure.superpixels.pad_graphs`).
    """

    def __init__(self, num_regions, **kwargs):
        super().__init__(**kwargs)
        self.num_regions = check_int("num_regions", num_regions, minimum=1)

    def call(self, features, segments):
        num_regions = self.num_regions
        _check_segments_shape(segments.shape)
        segments = assert_labels_in_range(segments, num_regions, ignore_class=NO_REGION, name="segments")
        shape = ops.shape(features)
        segments = resize_segments(segments, shape[1], shape[2])
        ids = _batch_offset_ids(segments, num_regions)
        channels = features.shape[-1]
        total = shape[0] * num_regions + 1  # the last segment collects pixels without a region
        flat_ids = ops.reshape(ids, (-1,))
        sums = ops.segment_sum(ops.reshape(features, (-1, channels)), flat_ids, num_segments=total)
        counts = ops.segment_sum(ops.ones_like(flat_ids, dtype=features.dtype), flat_ids, num_segments=total)
        means = sums[:-1] / ops.maximum(counts[:-1], 1.0)[:, None]
        return ops.reshape(means, (-1, num_regions, channels))

    def scatter_to_pixels(self, region_features, segments):
        """``(B, N, C)`` region vectors -> ``(B, H, W, C)``, each pixel its region's vector;
        see :func:`scatter_to_pixels`."""
        return scatter_to_pixels(region_features, segments)

    def compute_output_shape(self, features_shape, segments_shape):
        return (features_shape[0], self.num_regions, features_shape[-1])

    def get_config(self):
        return {**super().get_config(), "num_regions": self.num_regions}


@serializable
class RegionUnpooling(keras.layers.Layer):
    """The inverse of :class:`RegionPooling`: ``RegionUnpooling()(region_features,
    segments)`` with ``region_features`` ``(B, N, C)`` and ``segments`` ``(B, H, W)`` returns
    ``(B, H, W, C)``, each pixel its region's vector and zeros where the id is ``-1``
    (:func:`scatter_to_pixels` as a layer, so that functional models can use it)."""

    def call(self, region_features, segments):
        return scatter_to_pixels(region_features, segments)

    def compute_output_shape(self, region_features_shape, segments_shape):
        return (*segments_shape, region_features_shape[-1])


def scatter_to_pixels(region_features, segments):
    """Unpooling: ``region_features`` ``(B, N, C)`` and ``segments`` ``(B, H, W)`` ->
    ``(B, H, W, C)``, where pixel ``p`` gets ``region_features[b, segments[b, p]]``, or
    zeros where the id is ``-1``. One gather over the flattened batch."""
    _check_segments_shape(segments.shape)
    num_regions, channels = region_features.shape[1], region_features.shape[2]
    if num_regions is None:
        num_regions = ops.shape(region_features)[1]
    segments = assert_labels_in_range(segments, num_regions, ignore_class=NO_REGION, name="segments")
    valid = ops.greater_equal(segments, 0)
    flat = ops.reshape(region_features, (-1, channels))
    # Clipped so that a bad id fails in the assertion above, with its message, not in the gather.
    ids = ops.clip(ops.where(valid, _batch_offset_ids(segments, num_regions), 0), 0, ops.shape(flat)[0] - 1)
    gathered = ops.take(flat, ids, axis=0)
    return ops.where(valid[..., None], gathered, ops.zeros((), dtype=region_features.dtype))


def resize_segments(segments, height, width):
    """Nearest-neighbour resizing of ``(B, H, W)`` segment ids to ``height x width`` with
    half-pixel centres: output row ``r`` reads input row ``floor((2 r + 1) H / (2 height))``,
    in integer arithmetic. Sizes may be tensors known only at run time."""
    shape = ops.shape(segments)

    def source(size, target):
        return ((2 * ops.arange(target, dtype="int32") + 1) * size) // (2 * target)

    return ops.take(ops.take(segments, source(shape[1], height), axis=1), source(shape[2], width), axis=2)


def _batch_offset_ids(segments, num_regions):
    """Ids unique across the batch: ``b * N + id``; ``-1`` maps to ``B * N``."""
    segments = ops.cast(segments, "int32")
    batch = ops.shape(segments)[0]
    offsets = ops.arange(batch, dtype="int32")[:, None, None] * num_regions
    return ops.where(ops.greater_equal(segments, 0), segments + offsets, batch * num_regions)


def _check_segments_shape(shape):
    if len(shape) != 3:
        raise ValueError(f"`segments` must have shape (batch, height, width) of region ids, got {tuple(shape)}.")
