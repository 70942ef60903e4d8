"""CNN-RsNN: a segmentation CNN and a recursive network that parse an image into a tree."""

import keras
from keras import ops

from keras_sceneparse.backend import assert_labels_in_range
from keras_sceneparse.layers.entity_pooling import EntityPooling
from keras_sceneparse.layers.recursive_network import RecursiveNetwork
from keras_sceneparse.losses import SparseCategoricalCrossentropy
from keras_sceneparse.models import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float, check_int

IGNORE = 255
DEFAULT_LOSS_WEIGHTS = {"segmentation": 1.0, "structure": 1.0, "relation": 1.0, "presence": 1.0}


@serializable
class CNNRsNN(keras.Model):
    """Deep structured scene parsing: pixels to objects to an object-relation tree.

    Lin, Wang, Zhang, Zhang, Liang and Zuo, "Deep Structured Scene Parsing by Learning with
    Image Descriptions", CVPR 2016, https://arxiv.org/abs/1604.02271, and Zhang, Lin, Wang,
    Wang and Zuo, "Hierarchical Scene Parsing by Weakly Supervised Learning with Image
    Descriptions", TPAMI 2019, https://arxiv.org/abs/1709.09490; the recursive part follows
    Socher et al., ICML 2011.

    The model:

    1. a segmentation CNN (any :class:`~keras_sceneparse.models.SegmentationModel`; the papers
       use DeepLab-LargeFOV) gives class logits and its last feature map;
    2. :class:`~keras_sceneparse.layers.EntityPooling` pools, for every class, the features
       under the class's probability map (plus its position and extent, our addition), the
       one-hot class identity is appended (our addition: pooled features alone can be alike
       for different classes early in training, and the relation often depends on which
       objects meet), and a *semantic mapper* (``tanh`` dense layer) maps each entity into
       the ``embedding_dim`` space of the tree nodes;
    3. :class:`~keras_sceneparse.layers.RecursiveNetwork` (combiner, scorer, categorizer)
       merges nodes bottom-up: greedily at inference, the highest-scoring ordered pair first.

    Training (``fit``), per image: the segmentation cross-entropy; Socher's structured margin
    ``max(0, s(y_hat) + Delta(y_hat) - s(y))`` between the ground-truth tree ``y`` (from the
    sentence, :mod:`keras_sceneparse.text`) and the greedy tree ``y_hat`` found with every
    merge not in ``y`` boosted by ``margin`` (loss-augmented inference, Delta = ``margin``
    times the number of such merges), where a tree's score ``s`` sums its merge scores; and
    the cross-entropy of the categorizer on the ground-truth merges. Inputs are a dict:
    ``images`` ``(B, H, W, 3)`` and the arrays of
    :func:`~keras_sceneparse.structure.encode_tree` (``entities``, ``merges``, ``spans``),
    padded to ``max_objects`` so images with different numbers of objects share a batch.

    Weak supervision (no pixel labels, ``y=None``): the sentence's classes are the only
    labels. Each step first estimates the latent label map (E-step) as the argmax of the
    current scores restricted to the background and the classes the sentence names, pixels
    whose restricted probability is below ``pseudo_label_threshold`` ignored, then trains on
    it (M-step) together with an image-level presence loss (sigmoid cross-entropy of the
    spatial log-sum-exp of each class's logits against the classes named by the sentence),
    which gives the first E-steps something to start from. This is an online form of the
    papers' EM; how they initialise it is not stated in what we could read, the presence
    loss is our choice.

    Args:
        segmenter: the segmentation CNN (a ``SegmentationModel``, or its serialised config).
        class_names: names of the segmenter's classes (id order; ``background_class`` first
            for SYSU-Scenes).
        relation_names: names of the relation classes.
        max_objects: leaves per training tree (padding size).
        embedding_dim: dimension of the semantic space of tree nodes.
        margin: the structured margin per wrong merge (Socher's kappa).
        spatial_features: append position and extent to the entity features.
        background_class: id of the background (never an entity), or ``None``.
        pseudo_label_threshold: minimum restricted probability of an E-step pixel label.
        loss_weights: weights of ``segmentation``, ``structure``, ``relation`` and
            ``presence`` (weak supervision only) losses.
    """

    def __init__(
        self,
        segmenter,
        class_names,
        relation_names,
        max_objects=6,
        embedding_dim=128,
        margin=1.0,
        spatial_features=True,
        background_class=0,
        pseudo_label_threshold=0.5,
        loss_weights=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(segmenter, dict):
            segmenter = keras.saving.deserialize_keras_object(segmenter)
        if not isinstance(segmenter, SegmentationModel):
            raise TypeError(f"`segmenter` must be a keras_sceneparse SegmentationModel, got {type(segmenter).__name__}.")
        self.class_names = [str(name) for name in class_names]
        self.relation_names = [str(name) for name in relation_names]
        if len(self.class_names) != segmenter.num_classes:
            raise ValueError(
                f"`class_names` has {len(self.class_names)} names but the segmenter scores {segmenter.num_classes} classes."
            )
        if len(self.relation_names) < 1:
            raise ValueError("`relation_names` must name at least one relation.")
        self.max_objects = check_int("max_objects", max_objects, minimum=1)
        self.embedding_dim = check_int("embedding_dim", embedding_dim, minimum=1)
        self.margin = check_float("margin", margin, minimum=0.0)
        self.spatial_features = bool(spatial_features)
        self.background_class = None if background_class is None else check_int(
            "background_class", background_class, minimum=0, maximum=len(self.class_names) - 1
        )
        self.pseudo_label_threshold = check_float("pseudo_label_threshold", pseudo_label_threshold, minimum=0.0, maximum=1.0)
        unknown = set(loss_weights or {}) - set(DEFAULT_LOSS_WEIGHTS)
        if unknown:
            raise ValueError(f"Unknown `loss_weights` keys {sorted(unknown)}; expected {sorted(DEFAULT_LOSS_WEIGHTS)}.")
        self.loss_weights = {**DEFAULT_LOSS_WEIGHTS, **(loss_weights or {})}

        # === Layers ===
        self._segmenter_config = keras.saving.serialize_keras_object(segmenter)
        self.num_classes = segmenter.num_classes
        self.cnn = segmenter.feature_model()
        self.entity_pooling = EntityPooling(self.spatial_features, name="entity_pooling")
        self.semantic_mapper = keras.layers.Dense(self.embedding_dim, activation="tanh", name="semantic_mapper")
        self.recursive_network = RecursiveNetwork(self.embedding_dim, len(self.relation_names), name="recursive_network")
        self.segmentation_loss = SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE)
        self._batch_mean = PerExampleMean(name="per_example_mean")
        self.loss_trackers = {
            name: keras.metrics.Mean(name=f"{name}_loss") for name in ("segmentation", "structure", "relation")
        }
        # Every weight exists from construction on, so weights load before any call.
        feature_channels = self.cnn.output[0].shape[-1]
        entity_shape = self.entity_pooling.compute_output_shape(
            (None, None, None, feature_channels), (None, None, None, self.num_classes)
        )
        self.semantic_mapper.build((None, self.max_objects, entity_shape[-1] + self.num_classes))
        self.built = True

    def build(self, input_shape=None):
        # All variables are created in __init__.
        self.built = True

    # --- forward ----------------------------------------------------------------------------

    def call(self, inputs, training=None):
        if not isinstance(inputs, dict):
            inputs = {"images": inputs}
        features, logits = self.cnn(inputs["images"], training=training)
        outputs = {"logits": logits}
        if "entities" not in inputs:
            return outputs
        entities = ops.cast(inputs["entities"], "int32")
        merges = ops.cast(inputs["merges"], "int32")
        assert_labels_in_range(entities, self.num_classes, -1, name="entities")
        leaves, leaf_mask = self.embed_entities(features, logits, entities)
        gold_score, relation_logits = self._gold_tree(leaves, merges)
        greedy_score = self._loss_augmented_greedy(leaves, leaf_mask, ops.cast(inputs["spans"], leaves.dtype), merges)
        has_tree = ops.cast(ops.sum(leaf_mask, axis=-1) > 1, leaves.dtype)
        outputs["structure_loss"] = ops.relu(greedy_score - gold_score) * has_tree
        outputs["relation_loss"] = self._relation_loss(relation_logits, merges)
        outputs["relation_logits"] = relation_logits
        return outputs

    def embed_entities(self, features, logits, entities):
        """Leaf vectors ``(B, N, embedding_dim)`` of the entity classes, and their mask."""
        probabilities = ops.softmax(ops.cast(logits, "float32"), axis=-1)
        pooled = self.entity_pooling(ops.cast(features, "float32"), probabilities)  # (B, C, D)
        mask = ops.cast(entities >= 0, "float32")
        classes = ops.maximum(entities, 0)
        gathered = ops.take_along_axis(pooled, ops.expand_dims(classes, -1), axis=1)
        gathered = ops.concatenate([gathered, ops.one_hot(classes, self.num_classes, dtype=gathered.dtype)], axis=-1)
        return self.semantic_mapper(gathered) * ops.expand_dims(mask, -1), mask

    def _slots(self, leaves):
        """Node buffer ``(B, 2N-1, d)``: the leaves, then one slot per merge."""
        batch = ops.shape(leaves)[0]
        empty = ops.zeros((batch, max(self.max_objects - 1, 0), self.embedding_dim), leaves.dtype)
        return ops.concatenate([leaves, empty], axis=1)

    def _write(self, nodes, slot, values):
        one_hot = ops.one_hot(slot, 2 * self.max_objects - 1, dtype=nodes.dtype)
        return nodes + one_hot[None, :, None] * ops.expand_dims(values, 1)

    def _gold_tree(self, leaves, merges):
        """Scores of the ground-truth merges, composed bottom-up (teacher forcing)."""
        nodes = self._slots(leaves)
        total = ops.zeros((ops.shape(leaves)[0],), leaves.dtype)
        relation_logits = []
        for t in range(self.max_objects - 1):
            valid = ops.cast(merges[:, t, 0] >= 0, leaves.dtype)
            subject = _gather_slot(nodes, ops.maximum(merges[:, t, 0], 0))
            object_ = _gather_slot(nodes, ops.maximum(merges[:, t, 1], 0))
            merged, score, logits = self.recursive_network(subject, object_)
            nodes = self._write(nodes, self.max_objects + t, merged * ops.expand_dims(valid, -1))
            total = total + score * valid
            relation_logits.append(logits)
        if not relation_logits:
            return total, ops.zeros((ops.shape(leaves)[0], 0, len(self.relation_names)), leaves.dtype)
        return total, ops.stack(relation_logits, axis=1)

    def _loss_augmented_greedy(self, leaves, leaf_mask, spans, merges):
        """Score plus margin of the greedy tree when every merge outside the gold tree gets
        ``margin`` more score (Socher et al. 2011, Sec. 3.2 with the loss of Sec. 3.3)."""
        n, slots = self.max_objects, 2 * self.max_objects - 1
        batch = ops.shape(leaves)[0]
        nodes = self._slots(leaves)
        active = ops.concatenate([leaf_mask, ops.zeros((batch, n - 1), leaf_mask.dtype)], axis=1)
        covered = ops.concatenate(
            [ops.eye(n, dtype=leaves.dtype)[None] * ops.expand_dims(leaf_mask, -1), ops.zeros((batch, n - 1, n), leaves.dtype)],
            axis=1,
        )
        gold_valid = ops.cast(merges[:, :, 0] >= 0, leaves.dtype)  # (B, N-1)
        leaf_count = ops.sum(leaf_mask, axis=-1)
        not_self = 1.0 - ops.eye(slots, dtype=leaves.dtype)
        total = ops.zeros((batch,), leaves.dtype)
        for t in range(n - 1):
            step_valid = ops.cast(leaf_count - 1 > t, leaves.dtype)
            merged, score = self.recursive_network.compose_all_pairs(nodes)  # (B, S, S, d), (B, S, S)
            union = ops.expand_dims(covered, 2) + ops.expand_dims(covered, 1)  # (B, S, S, N)
            # Is the union of the pair's leaves the span of a gold internal node?
            difference = ops.abs(ops.expand_dims(union, 3) - spans[:, None, None, :, :])  # (B, S, S, N-1, N)
            matches = ops.cast(ops.max(difference, axis=-1) < 0.5, leaves.dtype) * gold_valid[:, None, None, :]
            in_gold = ops.max(matches, axis=-1)
            loss = self.margin * (1.0 - in_gold)
            allowed = ops.expand_dims(active, 2) * ops.expand_dims(active, 1) * not_self
            candidate = ops.where(allowed > 0, score + loss, -1e9)
            best = ops.argmax(ops.reshape(candidate, (batch, slots * slots)), axis=-1)
            pick = lambda values: ops.take_along_axis(  # noqa: E731
                ops.reshape(values, (batch, slots * slots, -1)), best[:, None, None], axis=1
            )[:, 0]
            chosen = pick(ops.expand_dims(score + loss, -1))[:, 0]
            total = total + chosen * step_valid
            nodes = self._write(nodes, n + t, pick(merged) * ops.expand_dims(step_valid, -1))
            new_cover = pick(union) * ops.expand_dims(step_valid, -1)
            covered = covered + ops.one_hot(n + t, slots, dtype=leaves.dtype)[None, :, None] * ops.expand_dims(new_cover, 1)
            subject, object_ = best // slots, best % slots
            used = (ops.one_hot(subject, slots, dtype=leaves.dtype) + ops.one_hot(object_, slots, dtype=leaves.dtype))
            active = active * (1.0 - used * ops.expand_dims(step_valid, -1))
            active = active + ops.one_hot(n + t, slots, dtype=leaves.dtype)[None] * ops.expand_dims(step_valid, -1)
        return total

    def _relation_loss(self, relation_logits, merges):
        if relation_logits.shape[1] == 0:
            return ops.zeros((ops.shape(merges)[0],))
        valid = ops.cast(merges[:, :, 0] >= 0, "float32")
        targets = ops.maximum(merges[:, :, 2], 0)
        log_probabilities = ops.log_softmax(relation_logits, axis=-1)
        picked = ops.squeeze(ops.take_along_axis(log_probabilities, ops.expand_dims(targets, -1), axis=-1), -1)
        return -ops.sum(picked * valid, axis=-1) / ops.maximum(ops.sum(valid, axis=-1), 1.0)

    # --- training ---------------------------------------------------------------------------

    def per_example_loss(self, x, y, y_pred):
        """The weighted sum of the losses for each image, ``(B,)`` (what ``fit`` averages).

        ``y`` is the label maps, or ``None`` for weak supervision (the E-step's pseudo labels
        and the presence loss stand in for them).
        """
        logits = y_pred["logits"]
        weights = self.loss_weights
        if y is None:
            labels = self.pseudo_labels(logits, x["entities"])
            segmentation = self.segmentation_loss.call(labels, logits)
            segmentation = segmentation + weights["presence"] * self.presence_loss(logits, x["entities"])
        else:
            segmentation = self.segmentation_loss.call(y, logits)
        total = weights["segmentation"] * segmentation
        if "structure_loss" in y_pred:
            total = total + weights["structure"] * y_pred["structure_loss"]
            total = total + weights["relation"] * y_pred["relation_loss"]
        return total

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # Averaged through a Keras Loss, so that under tf.distribute the mean is scaled by
        # the number of replicas exactly as Keras scales its own losses.
        values = self.per_example_loss(x, y, y_pred)
        total = self._batch_mean(values, values, sample_weight)
        if self.losses:
            regularization = ops.reshape(ops.sum(self.losses), (1,))
            total = total + self._batch_mean(regularization, regularization)
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        labels = y if y is not None else self.pseudo_labels(y_pred["logits"], x["entities"])
        # `Loss.call` (per example), not `Loss.__call__`, which under tf.distribute divides by
        # the number of replicas: right for gradients, wrong for a logged value.
        segmentation = self.segmentation_loss.call(labels, y_pred["logits"])
        self.loss_trackers["segmentation"].update_state(ops.mean(segmentation), ops.shape(segmentation)[0])
        if "structure_loss" in y_pred:
            self.loss_trackers["structure"].update_state(y_pred["structure_loss"])
            self.loss_trackers["relation"].update_state(y_pred["relation_loss"])
        if y is not None:
            return super().compute_metrics(x, y, y_pred["logits"], sample_weight=sample_weight)
        return self.get_metrics_result()

    def get_metrics_result(self):
        # Compiled metrics need labels: under weak supervision they are never built, and are
        # left out of the logs instead of failing.
        results = {}
        for metric in self.metrics:
            if not getattr(metric, "built", True):
                continue
            value = metric.result()
            results.update(value if isinstance(value, dict) else {metric.name: value})
        return results

    def sentence_classes(self, entities):
        """Multi-hot ``(B, C)`` of the classes named by the sentence (plus the background)."""
        present = ops.max(ops.one_hot(ops.maximum(entities, 0), self.num_classes) * ops.expand_dims(
            ops.cast(entities >= 0, "float32"), -1), axis=1)
        if self.background_class is not None:
            present = ops.maximum(present, ops.one_hot(self.background_class, self.num_classes)[None])
        return present

    def pseudo_labels(self, logits, entities):
        """E-step: the latent label map, restricted to the classes the sentence names."""
        allowed = self.sentence_classes(ops.cast(entities, "int32"))[:, None, None, :]
        restricted = ops.where(allowed > 0, ops.cast(ops.stop_gradient(logits), "float32"), -1e9)
        probabilities = ops.softmax(restricted, axis=-1)
        labels = ops.argmax(probabilities, axis=-1)
        confident = ops.max(probabilities, axis=-1) >= self.pseudo_label_threshold
        return ops.where(confident, labels, IGNORE)

    def presence_loss(self, logits, entities):
        """Sigmoid cross-entropy of each class's spatial log-sum-exp score vs the sentence."""
        logits = ops.cast(logits, "float32")
        pixels = ops.cast(ops.shape(logits)[1] * ops.shape(logits)[2], "float32")
        # log-mean-exp: a smooth maximum over pixels that stays on the scale of the logits.
        image_scores = ops.logsumexp(logits, axis=(1, 2)) - ops.log(pixels)
        targets = self.sentence_classes(ops.cast(entities, "int32"))
        losses = ops.maximum(image_scores, 0) - image_scores * targets + ops.log1p(ops.exp(-ops.abs(image_scores)))
        return ops.mean(losses)

    # --- inference --------------------------------------------------------------------------

    @property
    def segmenter_config(self):
        return self._segmenter_config

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "segmenter": self._segmenter_config,
            "class_names": self.class_names,
            "relation_names": self.relation_names,
            "max_objects": self.max_objects,
            "embedding_dim": self.embedding_dim,
            "margin": self.margin,
            "spatial_features": self.spatial_features,
            "background_class": self.background_class,
            "pseudo_label_threshold": self.pseudo_label_threshold,
            "loss_weights": self.loss_weights,
        }


class PerExampleMean(keras.losses.Loss):
    """Averages per-example losses (given as ``y_pred``) with Keras' reduction and scaling."""

    def call(self, y_true, y_pred):
        return y_pred


def _gather_slot(nodes, index):
    return ops.take_along_axis(nodes, index[:, None, None], axis=1)[:, 0]
