import keras
import numpy as np
from keras import ops

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


@serializable
class RecursiveNetwork(keras.layers.Layer):
    """The recursive network that merges two nodes of a scene parse tree: combiner, scorer,
    categorizer.

    Socher, Lin, Ng and Manning, "Parsing Natural Scenes and Natural Language with Recursive
    Neural Networks", ICML 2011, Sec. 3 (Eq. 1-3), as used for object-relation trees by Lin
    et al., CVPR 2016 and Zhang et al., TPAMI 2019 ("CNN-RsNN"):

    - combiner: ``h = tanh(W [x_left; x_right] + b)``, the representation of the merged node
      in the same ``units``-dimensional space as its children;
    - scorer: ``s = w . h``, how confident the merge is (no bias, as in Socher's code);
    - categorizer: ``softmax(W_r h + b_r)`` over the relations between the two children.

    Order matters: ``[x_left; x_right]`` is subject then object. Called on explicit pairs,
    ``layer(left, right)`` returns ``(h, score, relation_logits)``. :meth:`compose_all_pairs`
    scores every ordered pair of a set of nodes at once (``W [a; b] = W_l a + W_r b``, so the
    two halves are computed once per node); :meth:`greedy_parse` is the inference-time
    bottom-up parser.

    Choice: ``tanh`` (Socher's code uses the logistic sigmoid; ``tanh`` keeps node vectors
    zero-centred, like the leaves of :class:`~keras_sceneparse.structure.CNNRsNN`).

    Args:
        units: dimension of node representations.
        num_relations: number of relation classes.
    """

    def __init__(self, units, num_relations, **kwargs):
        super().__init__(**kwargs)
        self.units = check_int("units", units, minimum=1)
        self.num_relations = check_int("num_relations", num_relations, minimum=1)
        self.combiner = keras.layers.Dense(self.units, activation="tanh", name="combiner", dtype=self.dtype_policy)
        self.scorer = keras.layers.Dense(1, use_bias=False, name="scorer", dtype=self.dtype_policy)
        self.categorizer = keras.layers.Dense(self.num_relations, name="categorizer", dtype=self.dtype_policy)
        # Inputs are always node vectors of size `units`: create the weights now, so that
        # compose_all_pairs and greedy_parse work before any call.
        self.combiner.build((None, 2 * self.units))
        self.scorer.build((None, self.units))
        self.categorizer.build((None, self.units))
        self.built = True

    def build(self, left_shape=None, right_shape=None):
        self.built = True

    def call(self, left, right):
        merged = self.combiner(ops.concatenate([left, right], axis=-1))
        return merged, ops.squeeze(self.scorer(merged), -1), self.categorizer(merged)

    def compose_all_pairs(self, nodes):
        """``(h, score)`` for every ordered pair ``(i, j)`` of ``nodes`` ``(..., M, units)``:
        shapes ``(..., M, M, units)`` and ``(..., M, M)``, row ``i`` the subject."""
        kernel = ops.cast(self.combiner.kernel, nodes.dtype)
        as_subject = ops.matmul(nodes, kernel[: self.units])
        as_object = ops.matmul(nodes, kernel[self.units :])
        merged = ops.tanh(
            ops.expand_dims(as_subject, -2) + ops.expand_dims(as_object, -3) + ops.cast(self.combiner.bias, nodes.dtype)
        )
        return merged, ops.squeeze(self.scorer(merged), -1)

    def compute_output_shape(self, left_shape, right_shape):
        batch = left_shape[:-1]
        return (*batch, self.units), tuple(batch), (*batch, self.num_relations)

    def greedy_parse(self, leaves):
        """Greedy bottom-up parse of ``leaves`` ``(n, units)`` (NumPy, any ``n``).

        At each step every ordered pair of the current roots is scored and the best pair is
        merged (Socher et al. 2011, Sec. 3.2), until one root is left. Scores of the pairs
        that do not involve the new node are kept from the previous step, so a parse costs
        ``O(n^2)`` pair evaluations in all. Returns ``[(subject, object, score,
        relation_probabilities)]``, one per merge, where nodes ``0 .. n-1`` are the leaves and
        node ``n + t`` is the result of merge ``t``.
        """
        kernel = np.asarray(keras.ops.convert_to_numpy(self.combiner.kernel), np.float64)
        bias = np.asarray(keras.ops.convert_to_numpy(self.combiner.bias), np.float64)
        score_w = np.asarray(keras.ops.convert_to_numpy(self.scorer.kernel), np.float64)[:, 0]
        cat_w = np.asarray(keras.ops.convert_to_numpy(self.categorizer.kernel), np.float64)
        cat_b = np.asarray(keras.ops.convert_to_numpy(self.categorizer.bias), np.float64)
        w_subject, w_object = kernel[: self.units], kernel[self.units :]

        nodes = [np.asarray(leaf, np.float64) for leaf in np.asarray(leaves)]
        subject_part = [node @ w_subject for node in nodes]
        object_part = [node @ w_object for node in nodes]
        roots = list(range(len(nodes)))
        pair_scores = {}

        def score(i, j):
            return float(np.tanh(subject_part[i] + object_part[j] + bias) @ score_w)

        for i in roots:
            for j in roots:
                if i != j:
                    pair_scores[i, j] = score(i, j)
        merges = []
        while len(roots) > 1:
            (i, j), best = max(pair_scores.items(), key=lambda item: item[1])
            merged = np.tanh(subject_part[i] + object_part[j] + bias)
            logits = merged @ cat_w + cat_b
            probabilities = np.exp(logits - logits.max())
            merges.append((i, j, best, probabilities / probabilities.sum()))
            new = len(nodes)
            nodes.append(merged)
            subject_part.append(merged @ w_subject)
            object_part.append(merged @ w_object)
            roots = [r for r in roots if r not in (i, j)]
            pair_scores = {pair: value for pair, value in pair_scores.items() if i not in pair and j not in pair}
            for r in roots:
                pair_scores[new, r] = score(new, r)
                pair_scores[r, new] = score(r, new)
            roots.append(new)
        return merges

    def get_config(self):
        return {**super().get_config(), "units": self.units, "num_relations": self.num_relations}
