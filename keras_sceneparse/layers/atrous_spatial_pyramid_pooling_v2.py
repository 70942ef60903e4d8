import keras
from keras import ops

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float, check_int

#: DeepLab v2's two pyramids (Sec. 4.1.2, Table 3): ASPP-L (large rates) and ASPP-S (small).
ASPP_L_RATES = (6, 12, 18, 24)
ASPP_S_RATES = (2, 4, 8, 12)


@serializable
class AtrousSpatialPyramidPoolingV2(keras.layers.Layer):
    """DeepLab v2's Atrous Spatial Pyramid Pooling: parallel atrous branches, scores summed.

    Chen, Papandreou, Kokkinos, Murphy and Yuille, "DeepLab: Semantic Image Segmentation
    with Deep Convolutional Nets, Atrous Convolution, and Fully Connected CRFs", TPAMI 2018,
    https://arxiv.org/abs/1606.00915, Sec. 3.1 and Fig. 7: "multiple parallel atrous
    convolutional layers with different sampling rates. The features extracted for each
    sampling rate are further processed in separate branches and fused to generate the final
    result". Each branch ``i`` with rate ``r_i`` maps the features ``x`` to class scores
    ``f_i(x)`` and the layer returns

        ``y = sum_i f_i(x)``

    (the reference prototxt fuses the branches with an element-wise ``SUM``). DeepLabV3
    instead concatenates the branches' features and adds image pooling
    (:class:`~keras_sceneparse.layers.AtrousSpatialPyramidPooling`).

    Two branch types, as in the paper's two networks:

    - ``hidden_filters > 0`` (VGG-16, Fig. 7b): ``fc6`` a 3x3 convolution with rate ``r_i``
      and ``hidden_filters`` (1024) channels, ReLU, dropout; ``fc7`` a 1x1 convolution with
      ``hidden_filters`` channels, ReLU, dropout; ``fc8`` a 1x1 convolution to ``filters``.
    - ``hidden_filters == 0`` (ResNet-101, reference prototxt ``fc1_voc12_c0..c3``): a single
      3x3 convolution with rate ``r_i`` to ``filters``.

    All convolutions have biases and no batch normalisation, as in the reference.
    ASPP-L uses rates ``(6, 12, 18, 24)`` (:data:`ASPP_L_RATES`), ASPP-S ``(2, 4, 8, 12)``
    (:data:`ASPP_S_RATES`).

    Args:
        filters: output channels of every branch (the number of classes).
        atrous_rates: one rate per branch.
        hidden_filters: channels of ``fc6``/``fc7``; 0 for single-convolution branches.
        dropout: dropout rate after ``fc6`` and ``fc7`` (0.5); unused when
            ``hidden_filters == 0``.
    """

    def __init__(self, filters, atrous_rates=ASPP_L_RATES, hidden_filters=0, dropout=0.5, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.atrous_rates = tuple(check_int("atrous_rates[i]", rate, minimum=1) for rate in atrous_rates)
        if not self.atrous_rates:
            raise ValueError("`atrous_rates` must name at least one rate, got ().")
        self.hidden_filters = check_int("hidden_filters", hidden_filters, minimum=0)
        self.dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)

        self.branches = [self._branch(index, rate) for index, rate in enumerate(self.atrous_rates, start=1)]

    def _branch(self, index, rate):
        policy = self.dtype_policy
        if not self.hidden_filters:
            return [
                keras.layers.Conv2D(
                    self.filters, 3, padding="same", dilation_rate=rate, dtype=policy, name=f"branch{index}_conv"
                )
            ]
        return [
            keras.layers.Conv2D(
                self.hidden_filters, 3, padding="same", dilation_rate=rate, activation="relu", dtype=policy,
                name=f"branch{index}_fc6",
            ),
            keras.layers.Dropout(self.dropout, dtype=policy, name=f"branch{index}_drop6"),
            keras.layers.Conv2D(
                self.hidden_filters, 1, activation="relu", dtype=policy, name=f"branch{index}_fc7"
            ),
            keras.layers.Dropout(self.dropout, dtype=policy, name=f"branch{index}_drop7"),
            keras.layers.Conv2D(self.filters, 1, dtype=policy, name=f"branch{index}_fc8"),
        ]

    def build(self, input_shape):
        for branch in self.branches:
            shape = input_shape
            for layer in branch:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)

    def call(self, inputs, training=None):
        scores = []
        for branch in self.branches:
            x = inputs
            for layer in branch:
                x = layer(x, training=training) if isinstance(layer, keras.layers.Dropout) else layer(x)
            scores.append(x)
        # Sec. 3.1, Fig. 7: the branches' class scores are fused by summation.
        total = scores[0]
        for score in scores[1:]:
            total = ops.add(total, score)
        return total

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "atrous_rates": self.atrous_rates,
            "hidden_filters": self.hidden_filters,
            "dropout": self.dropout,
        }
