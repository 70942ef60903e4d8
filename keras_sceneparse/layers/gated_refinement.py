"""Gate units and (gated) refinement units of LRN and G-FRNet (Islam et al., 2017).

Islam, Rochan, Bruce and Wang, "Gated Feedback Refinement Network for Dense Image
Labeling", CVPR 2017 (extended as "Gated Feedback Refinement Network for Coarse-to-Fine
Dense Semantic Image Labeling", https://arxiv.org/abs/1806.11266, Sec. 3, Fig. 3-4), and
Islam, Naha, Rochan, Bruce and Wang, "Label Refinement Network for Coarse-to-Fine Semantic
Segmentation", https://arxiv.org/abs/1703.00551.
"""

import keras
from keras import ops

from keras_sceneparse.backend import resize_images
from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


def _resize_like(inputs, reference):
    target = ops.shape(reference)
    return resize_images(inputs, (target[1], target[2]))


@serializable
class GateUnit(keras.layers.Layer):
    """G-FRNet's gate unit: deeper features gate the adjacent shallower ones (Fig. 3).

    Called as ``GateUnit(filters)(features, deeper)``. ``features`` ``f_i`` come from an
    encoder stage and ``deeper`` ``f_{i+1}`` from the next, coarser one. Each passes
    through a 3x3 convolution, batch normalisation and ReLU to ``filters`` channels, the
    deeper map is upsampled bilinearly to the size of the shallower one, and the gated
    features are their element-wise product:

        u = ReLU(BN(W_u * f_i)),  v = up(ReLU(BN(W_v * f_{i+1}))),  M_f = u ⊙ v.

    The deeper, more discriminative features thus decide which of the shallow, ambiguous
    ones pass to the decoder (Fig. 3). Sizes need not be a factor 2 apart.

    Args:
        filters: channels of ``u``, ``v`` and of the gated output (G-FRNet uses the
            channels of the shallower stage).
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.features_conv = ConvBNReLU(self.filters, 3, dtype=self.dtype_policy, name="features_conv")
        self.deeper_conv = ConvBNReLU(self.filters, 3, dtype=self.dtype_policy, name="deeper_conv")

    def build(self, features_shape, deeper_shape):
        self.features_conv.build(features_shape)
        self.deeper_conv.build(deeper_shape)

    def call(self, features, deeper, training=None):
        u = self.features_conv(features, training=training)
        v = _resize_like(self.deeper_conv(deeper, training=training), u)
        return u * v

    def compute_output_shape(self, features_shape, deeper_shape):
        return (*features_shape[:3], self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@serializable
class GatedRefinementUnit(keras.layers.Layer):
    """The refinement unit of LRN and G-FRNet: a coarse label map refined with finer features.

    Called as ``GatedRefinementUnit(num_classes)(features, coarse_labels)``. ``features``
    (G-FRNet: a :class:`GateUnit`'s output ``M_f``; LRN: the encoder features of that
    stage, ungated) pass through a 3x3 convolution, batch normalisation and ReLU to
    ``filters`` channels (``m_f``; the number of classes in the papers); the coarser
    stage's label map ``R_f`` is upsampled bilinearly to their size; the two are
    concatenated and a 3x3 convolution gives the refined label map of ``num_classes``
    channels (G-FRNet Fig. 4):

        R'_f = W_r * concat(up(R_f), ReLU(BN(W_m * M_f))).

    The papers upsample ``R'_f`` by 2 after the unit; here the next unit upsamples its
    coarse input to the exact size of its features, so sizes need not be multiples of 2.

    Args:
        num_classes: channels of the refined label map.
        filters: channels of ``m_f``; ``None`` means ``num_classes``, as in the papers.
    """

    def __init__(self, num_classes, filters=None, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, minimum=1)
        self.filters = None if filters is None else check_int("filters", filters, minimum=1)
        self.features_conv = ConvBNReLU(self.filters or self.num_classes, 3, dtype=self.dtype_policy, name="features_conv")
        self.concat = keras.layers.Concatenate(dtype=self.dtype_policy, name="concat")
        self.refine_conv = keras.layers.Conv2D(
            self.num_classes, 3, padding="same", dtype=self.dtype_policy, name="refine_conv"
        )

    def build(self, features_shape, coarse_labels_shape):
        self.features_conv.build(features_shape)
        width = (self.filters or self.num_classes) + coarse_labels_shape[-1]
        self.refine_conv.build((*features_shape[:3], width))

    def call(self, features, coarse_labels, training=None):
        m = self.features_conv(features, training=training)
        coarse = _resize_like(ops.cast(coarse_labels, m.dtype), m)
        return self.refine_conv(self.concat([coarse, m]))

    def compute_output_shape(self, features_shape, coarse_labels_shape):
        return (*features_shape[:3], self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "filters": self.filters}
