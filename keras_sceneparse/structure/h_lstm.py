"""H-LSTM: geometric scene parsing with a pixel LSTM and a multi-scale superpixel LSTM."""

import keras
import numpy as np
from keras import ops

from keras_sceneparse.backbones import Backbone
from keras_sceneparse.layers import (
    ConvBNReLU,
    GraphLSTM,
    ImageNormalization,
    LocalGlobalLSTM,
    RegionPooling,
    RegionUnpooling,
    ResizeToReference,
    confidence_order,
)
from keras_sceneparse.layers.region_pooling import resize_segments
from keras_sceneparse.losses import SparseCategoricalCrossentropy
from keras_sceneparse.structure.geometry import RELATIONS, SURFACES
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float, check_int

UNKNOWN = 255
#: Weight of the auxiliary surface loss on the P-LSTM alone (deep supervision of the pixel branch).
PIXEL_BRANCH_LOSS_WEIGHT = 0.4
#: Region statistics appended to the pooled features: mass, centre x, y, spread x, y.
REGION_GEOMETRY = 5


@serializable
class HLSTM(keras.Model):
    """Hierarchical LSTM for geometric scene parsing: surfaces per pixel, relations per region pair.

    Peng, Zhang, Liang, Liu and Lin, "Geometric Scene Parsing with Hierarchical LSTM", IJCAI
    2016, https://arxiv.org/abs/1604.01931. Two coupled sub-networks share a CNN:

    - the **pixel LSTM (P-LSTM)**, a stack of
      :class:`~keras_sceneparse.layers.LocalGlobalLSTM` layers over the CNN feature map, whose
      hidden states label each pixel with a geometric surface (sky, horizontal, vertical);
    - the **multi-scale superpixel LSTM (MS-LSTM)**, one
      :class:`~keras_sceneparse.layers.GraphLSTM` per superpixel scale over the superpixel
      adjacency graph, its nodes the superpixels' pooled CNN and P-LSTM features, updated in
      the confidence-driven order of the P-LSTM's surface predictions; its states, brought
      back to the pixels, join the P-LSTM's to label surfaces (the coupling) and describe
      regions.

    A relation classifier labels every pair of adjacent regions with one of
    :data:`~keras_sceneparse.structure.RELATIONS` (layering, supporting, siding, affinity)
    from the two regions' pooled features. Surfaces and relations are trained jointly
    (cross-entropy each; the pixel branch alone also gets a weighted surface loss).

    Choices the paper leaves to us (or that we could not read): the CNN is a small
    ImageNet backbone's stride-8 and stride-32 features fused (``backbone``), not the
    paper's VGG; the pair features are symmetric in the two regions (sum, absolute
    difference and product of their vectors, since relations are unordered here) and include
    each region's position and extent; the relation loss is class-weighted (layering is half
    the pairs of Stanford Background). ``use_lstm=False`` replaces the P-LSTM by as many
    3x3 convolutions and each Graph LSTM by a dense layer: the plain CNN baseline against
    which the LSTMs' contribution is measured.

    Parameters: the paper gives no count (its CNN is VGG-16's, about 15M weights in the
    convolutions alone). Ours with the defaults has 6,610,170 (706,224 in the MobileNetV2
    x0.5 backbone, most of the rest in the LG-LSTM gates, which see 8 neighbours' states);
    the shipped Stanford Background preset is smaller (see docs/geometry.md).

    Inputs (a dict, see :mod:`keras_sceneparse.data.geometric`): ``images`` ``(B, H, W, 3)``
    in ``[0, 255]``; per scale ``s``: ``superpixels_s`` ``(B, H, W)``, ``adjacency_s``
    ``(B, N_s, N_s)``, ``node_mask_s`` ``(B, N_s)``; ``regions`` ``(B, H, W)`` region ids
    (``-1`` none) and ``pairs`` ``(B, P, 2)`` (``-1`` padding). Outputs:
    ``{"surfaces": (B, H, W, 3) logits, "pixel_surfaces": the P-LSTM's, "relations":
    (B, P, 4) logits}``. Targets for ``fit``: ``{"surfaces": (B, H, W) ids or 255,
    "relations": (B, P) ids or -1}``.

    Args:
        backbone, backbone_kwargs, weights: the CNN (:class:`~keras_sceneparse.backbones.Backbone`).
        feature_channels: channels of the fused CNN features.
        units: hidden size of every LSTM.
        pixel_layers: stacked LG-LSTM layers in the P-LSTM.
        max_nodes: padded node count of each superpixel scale (one entry per scale).
        max_regions: padded region count.
        use_lstm: ``False`` for the plain CNN baseline.
        relation_weights: per-relation loss weights (default: uniform).
        relation_loss_weight: weight of the relation loss against the surface loss.
    """

    def __init__(
        self,
        backbone="mobilenet_v2",
        backbone_kwargs=None,
        weights=None,
        feature_channels=64,
        units=64,
        pixel_layers=2,
        max_nodes=(80, 144),
        max_regions=64,
        use_lstm=True,
        relation_weights=None,
        relation_loss_weight=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.backbone_name = backbone
        self.backbone_kwargs = dict(backbone_kwargs if backbone_kwargs is not None else {"alpha": 0.5})
        self.feature_channels = check_int("feature_channels", feature_channels, minimum=1)
        self.units = check_int("units", units, minimum=1)
        self.pixel_layers = check_int("pixel_layers", pixel_layers, minimum=1)
        self.max_nodes = tuple(check_int("max_nodes[i]", n, minimum=2) for n in max_nodes)
        self.max_regions = check_int("max_regions", max_regions, minimum=2)
        self.use_lstm = bool(use_lstm)
        if relation_weights is not None and len(relation_weights) != len(RELATIONS):
            raise ValueError(f"`relation_weights` needs {len(RELATIONS)} entries, got {len(relation_weights)}.")
        self.relation_weights = None if relation_weights is None else [float(w) for w in relation_weights]
        self.relation_loss_weight = check_float("relation_loss_weight", relation_loss_weight, minimum=0.0)
        self.num_surfaces, self.num_relations = len(SURFACES), len(RELATIONS)

        # === Layers ===
        self.encoder = Backbone(
            backbone, weights=weights, application_kwargs=self.backbone_kwargs,
            feature_layers=None, name="backbone",
        )
        self.normalization = ImageNormalization(self.encoder.normalization, name="image_normalization")
        self.lateral_fine = ConvBNReLU(self.feature_channels, 1, name="lateral_stride8")
        self.lateral_coarse = ConvBNReLU(self.feature_channels, 1, name="lateral_stride32")
        self.upsample = ResizeToReference(name="upsample_coarse")
        self.fuse = ConvBNReLU(self.feature_channels, 3, name="fuse")
        if self.use_lstm:
            self.pixel_network = [LocalGlobalLSTM(self.units, name=f"p_lstm_{i}") for i in range(self.pixel_layers)]
        else:
            self.pixel_network = [ConvBNReLU(self.units, 3, name=f"p_conv_{i}") for i in range(self.pixel_layers)]
        self.pixel_classifier = keras.layers.Conv2D(self.num_surfaces, 1, name="pixel_surface_classifier")
        self.region_pooling = [RegionPooling(n, name=f"superpixel_pooling_{s}") for s, n in enumerate(self.max_nodes)]
        if self.use_lstm:
            self.superpixel_network = [GraphLSTM(self.units, name=f"ms_lstm_{s}") for s in range(len(self.max_nodes))]
        else:
            self.superpixel_network = [
                keras.layers.Dense(self.units, activation="tanh", name=f"ms_dense_{s}") for s in range(len(self.max_nodes))
            ]
        self.unpooling = RegionUnpooling(name="superpixel_unpooling")
        self.surface_classifier = keras.layers.Conv2D(self.num_surfaces, 1, name="surface_classifier")
        self.output_upsample = ResizeToReference(name="upsample_logits")
        self.region_features = RegionPooling(self.max_regions, name="region_pooling")
        self.relation_hidden = keras.layers.Dense(self.units, activation="relu", name="relation_hidden")
        self.relation_classifier = keras.layers.Dense(self.num_relations, name="relation_classifier")
        self.surface_loss = SparseCategoricalCrossentropy(from_logits=True, ignore_class=UNKNOWN)
        self.loss_trackers = {name: keras.metrics.Mean(name=f"{name}_loss") for name in ("surface", "relation")}
        self.relation_accuracy = keras.metrics.Mean(name="relation_accuracy")
        self.surface_accuracy = keras.metrics.Mean(name="surface_accuracy")
        # Build every weight now, on a small dummy batch, so saved weights load before any call.
        self(self.dummy_inputs(), training=False)

    # --- inputs -------------------------------------------------------------------------------

    def dummy_inputs(self, height=64, width=64):
        """A batch of one blank example with this model's padding sizes (for building)."""
        inputs = {"images": np.zeros((1, height, width, 3), "float32"),
                  "regions": np.zeros((1, height, width), "int32"),
                  "pairs": np.array([[[0, 1]]], "int32")}
        for scale, nodes in enumerate(self.max_nodes):
            inputs[f"superpixels_{scale}"] = np.zeros((1, height, width), "int32")
            inputs[f"adjacency_{scale}"] = np.zeros((1, nodes, nodes), "float32")
            mask = np.zeros((1, nodes), "float32")
            mask[0, 0] = 1.0
            inputs[f"node_mask_{scale}"] = mask
        return inputs

    # --- forward ------------------------------------------------------------------------------

    def _check_inputs(self, inputs):
        """Names the missing input or the padding size that disagrees with ``max_nodes``."""
        expected = self.dummy_inputs(1, 1)
        missing = sorted(set(expected) - set(inputs))
        if missing:
            raise ValueError(f"HLSTM: missing inputs {missing}; expected the keys {sorted(expected)}.")
        for scale, nodes in enumerate(self.max_nodes):
            for name in (f"adjacency_{scale}", f"node_mask_{scale}"):
                padded = inputs[name].shape[1]
                if padded is not None and padded != nodes:
                    raise ValueError(
                        f"HLSTM: `{name}` is padded to {padded} nodes but the model was built with "
                        f"max_nodes[{scale}]={nodes}; use the same max_nodes for the data set and the model."
                    )

    def call(self, inputs, training=None):
        self._check_inputs(inputs)
        images = ops.cast(inputs["images"], "float32")
        pyramid = self.encoder(self.normalization(images), training=training)
        fine = self.lateral_fine(pyramid["C3"], training=training)
        coarse = self.upsample(self.lateral_coarse(pyramid["C5"], training=training), fine)
        features = self.fuse(fine + coarse, training=training)

        hidden, state = features, None
        for layer in self.pixel_network:
            if self.use_lstm:
                hidden, state = layer(features if state is None else hidden, state=state)
            else:
                hidden = layer(hidden, training=training)
        pixel_logits = self.pixel_classifier(hidden)

        node_inputs = ops.concatenate([features, hidden], axis=-1)
        pixel_probabilities = ops.softmax(ops.cast(pixel_logits, "float32"), axis=-1)
        size = ops.shape(features)
        superpixel_maps = []
        for scale, pooling in enumerate(self.region_pooling):
            segments = ops.cast(inputs[f"superpixels_{scale}"], "int32")
            mask = ops.cast(inputs[f"node_mask_{scale}"], "float32")
            nodes = pooling(node_inputs, segments)
            if self.use_lstm:
                confidence = ops.max(pooling(pixel_probabilities, segments), axis=-1)
                order = confidence_order(ops.stop_gradient(confidence), mask)
                nodes, _ = self.superpixel_network[scale](nodes, inputs[f"adjacency_{scale}"], order, mask)
            else:
                nodes = self.superpixel_network[scale](nodes) * ops.expand_dims(mask, -1)
            small_segments = resize_segments(segments, size[1], size[2])
            superpixel_maps.append(self.unpooling(nodes, small_segments))
        context = superpixel_maps[0]
        for extra in superpixel_maps[1:]:
            context = context + extra
        joint = ops.concatenate([hidden, context], axis=-1)
        surface_logits = self.surface_classifier(joint)

        regions = ops.cast(inputs["regions"], "int32")
        region_vectors = self.region_features(ops.concatenate([features, joint], axis=-1), regions)
        region_vectors = ops.concatenate([region_vectors, self._region_geometry(regions)], axis=-1)
        relation_logits = self._relations(region_vectors, ops.cast(inputs["pairs"], "int32"))
        return {
            "surfaces": ops.cast(self.output_upsample(surface_logits, images), "float32"),
            "pixel_surfaces": ops.cast(self.output_upsample(pixel_logits, images), "float32"),
            "relations": ops.cast(relation_logits, "float32"),
        }

    def _region_geometry(self, regions):
        """Mass, centre and spread of every region, from coordinate maps pooled per region."""
        shape = ops.shape(regions)
        height, width = shape[1], shape[2]
        ys = (ops.cast(ops.arange(height), "float32") + 0.5) / ops.cast(height, "float32")
        xs = (ops.cast(ops.arange(width), "float32") + 0.5) / ops.cast(width, "float32")
        grid_y = ops.broadcast_to(ys[None, :, None], (shape[0], height, width))
        grid_x = ops.broadcast_to(xs[None, None, :], (shape[0], height, width))
        ones = ops.ones_like(grid_x)
        maps = ops.stack([ones, grid_x, grid_y, grid_x * grid_x, grid_y * grid_y], axis=-1)
        pooled = self.region_features(maps, regions)  # means over each region's pixels
        counts = ops.sum(ops.one_hot(ops.maximum(regions, 0), self.max_regions) * ops.cast(
            ops.expand_dims(regions >= 0, -1), "float32"), axis=(1, 2))
        mass = counts / ops.cast(height * width, "float32")
        centre_x, centre_y = pooled[..., 1], pooled[..., 2]
        spread_x = ops.sqrt(ops.maximum(pooled[..., 3] - centre_x**2, 0.0))
        spread_y = ops.sqrt(ops.maximum(pooled[..., 4] - centre_y**2, 0.0))
        return ops.stack([mass, centre_x, centre_y, spread_x, spread_y], axis=-1)

    def _relations(self, region_vectors, pairs):
        valid = ops.cast(pairs[..., 0] >= 0, region_vectors.dtype)
        first = ops.take_along_axis(region_vectors, ops.maximum(pairs[..., :1], 0), axis=1)
        second = ops.take_along_axis(region_vectors, ops.maximum(pairs[..., 1:], 0), axis=1)
        # Relations are unordered here: features symmetric in the two regions.
        pair = ops.concatenate([first + second, ops.abs(first - second), first * second], axis=-1)
        return self.relation_classifier(self.relation_hidden(pair)) * ops.expand_dims(valid, -1)

    # --- training -----------------------------------------------------------------------------

    def _relation_losses(self, relations, logits):
        """Per-pair weighted cross-entropy and the per-image sums of weights, ``(B,)`` each."""
        valid = relations >= 0
        targets = ops.where(valid, relations, 0)
        log_probabilities = ops.log_softmax(logits, axis=-1)
        picked = -ops.squeeze(ops.take_along_axis(log_probabilities, ops.expand_dims(targets, -1), axis=-1), -1)
        weights = ops.cast(valid, "float32")
        if self.relation_weights is not None:
            weights = weights * ops.take(ops.convert_to_tensor(self.relation_weights, "float32"), targets)
        return ops.sum(picked * weights, axis=-1), ops.sum(weights, axis=-1)

    def per_example_loss(self, x, y, y_pred):
        """``(B,)``: surface loss (+ the pixel branch's, weighted) + relation loss per image."""
        surfaces = self.surface_loss.call(y["surfaces"], y_pred["surfaces"])
        surfaces = surfaces + PIXEL_BRANCH_LOSS_WEIGHT * self.surface_loss.call(y["surfaces"], y_pred["pixel_surfaces"])
        relation_sum, relation_weight = self._relation_losses(ops.cast(y["relations"], "int32"), y_pred["relations"])
        relations = ops.where(relation_weight > 0, relation_sum / ops.maximum(relation_weight, 1e-6), 0.0)
        return surfaces + self.relation_loss_weight * relations

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        from keras_sceneparse.structure.cnn_rsnn import PerExampleMean

        values = self.per_example_loss(x, y, y_pred)
        return PerExampleMean()(values, values, sample_weight)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        # Per-example values through `Loss.call`, not `Loss.__call__`, which under
        # tf.distribute divides by the number of replicas (right for gradients, wrong for a
        # logged value); each update weighted by what it averages, so that the replicas'
        # Mean metrics sum to the global batch's value.
        surfaces = ops.cast(y["surfaces"], "int32")
        surface_losses = self.surface_loss.call(surfaces, y_pred["surfaces"])
        self.loss_trackers["surface"].update_state(ops.mean(surface_losses), ops.shape(surface_losses)[0])
        relation_sum, relation_weight = self._relation_losses(ops.cast(y["relations"], "int32"), y_pred["relations"])
        total_weight = ops.sum(relation_weight)
        self.loss_trackers["relation"].update_state(ops.sum(relation_sum) / ops.maximum(total_weight, 1e-6), total_weight)
        known = ops.cast(surfaces != UNKNOWN, "float32")
        correct = ops.cast(ops.argmax(y_pred["surfaces"], axis=-1) == surfaces, "float32") * known
        self.surface_accuracy.update_state(ops.sum(correct) / ops.maximum(ops.sum(known), 1.0), ops.sum(known))
        relations = ops.cast(y["relations"], "int32")
        valid = ops.cast(relations >= 0, "float32")
        hits = ops.cast(ops.argmax(y_pred["relations"], axis=-1) == relations, "float32") * valid
        self.relation_accuracy.update_state(ops.sum(hits) / ops.maximum(ops.sum(valid), 1.0), ops.sum(valid))
        return {metric.name: metric.result() for metric in self.metrics}

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": self.backbone_name,
            "backbone_kwargs": self.backbone_kwargs,
            "weights": None,
            "feature_channels": self.feature_channels,
            "units": self.units,
            "pixel_layers": self.pixel_layers,
            "max_nodes": self.max_nodes,
            "max_regions": self.max_regions,
            "use_lstm": self.use_lstm,
            "relation_weights": self.relation_weights,
            "relation_loss_weight": self.relation_loss_weight,
        }
