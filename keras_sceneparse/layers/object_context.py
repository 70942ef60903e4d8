"""OCRNet's object-contextual representations (Yuan, Chen and Wang, ECCV 2020)."""

import keras
from keras import ops

from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float, check_int


@serializable
class SpatialGather(keras.layers.Layer):
    """Object region representations: pixel features averaged under soft object regions.

    Yuan, Chen and Wang, "Object-Contextual Representations for Semantic Segmentation",
    ECCV 2020, https://arxiv.org/abs/1909.11065, Sec. 3.3, "Object region representations":

    ``f_k = sum_i m~_ki x_i``

    where ``x_i`` is the representation of pixel ``i`` and ``m~_ki`` the degree to which it
    belongs to object region ``k``: the coarse segmentation scores of class ``k``
    normalised by a softmax over the pixels (``spatial softmax``), so each ``f_k`` is a
    weighted mean of the pixel features. There are as many regions as classes.

    Called as ``SpatialGather()(features, region_logits)`` with ``features``
    ``(B, H, W, C)`` and ``region_logits`` ``(B, H, W, K)`` (the auxiliary head's logits at
    the features' resolution); returns ``(B, K, C)``.

    Args:
        scale: the logits are multiplied by ``scale`` before the spatial softmax (1 in the
            reference code, openseg's ``SpatialGather_Module``).
    """

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = check_float("scale", scale, minimum=0.0)

    def call(self, features, region_logits):
        shape = ops.shape(features)
        pixels = ops.reshape(features, (shape[0], -1, features.shape[-1]))
        logits = ops.reshape(region_logits, (shape[0], -1, region_logits.shape[-1]))
        regions = ops.softmax(self.scale * ops.cast(logits, pixels.dtype), axis=1)  # over the pixels
        return ops.einsum("bnk,bnc->bkc", regions, pixels)

    def compute_output_shape(self, features_shape, region_logits_shape):
        return (features_shape[0], region_logits_shape[-1], features_shape[-1])

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@serializable
class ObjectContextualRepresentation(keras.layers.Layer):
    """Pixel-region relations, object contextual representation and augmented representation.

    Yuan, Chen and Wang, ECCV 2020, https://arxiv.org/abs/1909.11065, Sec. 3.3. For pixel
    representations ``x_i`` (``C`` channels) and object region representations ``f_k``
    (:class:`SpatialGather`):

    - pixel-region relation: ``w_ik = exp(k(x_i, f_k)) / sum_j exp(k(x_i, f_j))`` with
      ``k(x, f) = phi(x)^T psi(f)``, ``phi`` (query) and ``psi`` (key) transforms to
      ``key_channels`` (256) channels. As in the reference code (openseg's
      ``ObjectAttentionBlock``, mmsegmentation's ``SelfAttentionBlock``) each is two
      1x1 conv -> BN -> ReLU and the relation is scaled by ``key_channels ** -0.5``;
    - object contextual representation: ``y_i = rho(sum_k w_ik delta(f_k))``, ``delta`` a
      1x1 conv -> BN -> ReLU to ``key_channels``, ``rho`` one back to ``C``;
    - augmented representation: ``z_i = g([x_i; y_i])``, ``g`` a 1x1 conv -> BN -> ReLU of
      the concatenation to ``filters`` (512) channels.

    Convolutions have no bias (batch normalisation follows). On region representations
    (``(B, K, C)``) the 1x1 convolutions are applied as ``(B, K, 1, C)`` maps, so their batch
    normalisation pools statistics over images and regions, as the reference's ``Conv1d``
    + ``BatchNorm1d``.

    Called as ``ObjectContextualRepresentation(...)(pixels, regions)`` with ``pixels``
    ``(B, H, W, C)`` and ``regions`` ``(B, K, C)``; returns ``(B, H, W, filters)``.

    Args:
        key_channels: channels of the query, key and value transforms (256).
        filters: channels of the augmented representation (512).
        num_transform_layers: 1x1 conv -> BN -> ReLU layers of ``phi`` and ``psi`` (2 in
            the reference code; the paper's text describes one).
        scale_relations: divide the relations by ``sqrt(key_channels)`` as the reference code.
    """

    def __init__(self, key_channels=256, filters=512, num_transform_layers=2, scale_relations=True, **kwargs):
        super().__init__(**kwargs)
        self.key_channels = check_int("key_channels", key_channels, minimum=1)
        self.filters = check_int("filters", filters, minimum=1)
        self.num_transform_layers = check_int("num_transform_layers", num_transform_layers, minimum=1)
        self.scale_relations = bool(scale_relations)

        policy = self.dtype_policy
        self.query_transform = [
            ConvBNReLU(self.key_channels, 1, dtype=policy, name=f"query_{i}") for i in range(self.num_transform_layers)
        ]
        self.key_transform = [
            ConvBNReLU(self.key_channels, 1, dtype=policy, name=f"key_{i}") for i in range(self.num_transform_layers)
        ]
        self.value_transform = ConvBNReLU(self.key_channels, 1, dtype=policy, name="value")
        self.augmentation = ConvBNReLU(self.filters, 1, dtype=policy, name="augmentation")
        # Its width is the pixel features' channels: created in build.
        self.context_transform = None

    def build(self, pixels_shape, regions_shape):
        channels = pixels_shape[-1]
        if channels is None or regions_shape[-1] != channels:
            raise ValueError(
                "ObjectContextualRepresentation needs pixel and region representations with the same known "
                f"number of channels, got pixels {tuple(pixels_shape)} and regions {tuple(regions_shape)}."
            )
        self.context_transform = ConvBNReLU(channels, 1, dtype=self.dtype_policy, name="context")
        key_shape = (None, None, None, self.key_channels)
        for i, (query, key) in enumerate(zip(self.query_transform, self.key_transform)):
            query.build((None, None, None, channels) if i == 0 else key_shape)
            key.build((None, None, None, channels) if i == 0 else key_shape)
        self.value_transform.build((None, None, None, channels))
        self.context_transform.build(key_shape)
        self.augmentation.build((None, None, None, 2 * channels))

    def call(self, pixels, regions, training=None):
        shape = ops.shape(pixels)
        regions = ops.expand_dims(regions, 2)  # (B, K, 1, C): 1x1 convolutions over regions
        query, key = pixels, regions
        for query_layer, key_layer in zip(self.query_transform, self.key_transform):
            query = query_layer(query, training=training)
            key = key_layer(key, training=training)
        value = self.value_transform(regions, training=training)
        query = ops.reshape(query, (shape[0], -1, self.key_channels))
        key = ops.squeeze(key, 2)
        value = ops.squeeze(value, 2)
        relations = ops.einsum("bnc,bkc->bnk", query, key)
        if self.scale_relations:
            relations = relations * (self.key_channels**-0.5)
        relations = ops.softmax(relations, axis=-1)  # over the regions
        context = ops.einsum("bnk,bkc->bnc", relations, value)
        context = ops.reshape(context, (shape[0], shape[1], shape[2], self.key_channels))
        context = self.context_transform(context, training=training)
        return self.augmentation(ops.concatenate([pixels, context], axis=-1), training=training)

    def compute_output_shape(self, pixels_shape, regions_shape):
        return (*pixels_shape[:-1], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "key_channels": self.key_channels,
            "filters": self.filters,
            "num_transform_layers": self.num_transform_layers,
            "scale_relations": self.scale_relations,
        }
