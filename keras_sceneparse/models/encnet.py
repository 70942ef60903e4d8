"""EncNet, the context encoding network (Zhang, Dana, Shi, Zhang, Wang, Tyagi and Agrawal, CVPR 2018)."""

import keras

from keras_sceneparse.layers.context_encoding import ContextEncoding
from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.losses.class_presence import ClassPresenceLoss
from keras_sceneparse.models.attention_head import AttentionSegmentationModel
from keras_sceneparse.models.heads import AUXILIARY_OUTPUT, fcn_auxiliary_head, segmentation_head
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import MAIN_OUTPUT
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float, check_int

#: Name of the class-presence (semantic encoding loss) output.
SEMANTIC_ENCODING_OUTPUT = "se"


def encoding_head(features, num_classes, filters, num_codewords, dropout, reference, residual=True):
    """EncNet's head (PyTorch-Encoding's ``EncHead``): logits and class-presence logits.

    ``features`` -> 3x3 conv to ``filters`` + BN + ReLU (``head_conv``) ->
    :class:`~keras_sceneparse.layers.ContextEncoding` (``context_encoding``) -> channel
    dropout, 1x1 classifier, upsampling to ``reference`` (the ``"logits"`` output); the
    encoded semantics -> a fully connected layer to the classes (``se_classifier``, the
    ``"se"`` output, float32). Shared by :class:`EncNet` and FastFCN.
    """
    x = ConvBNReLU(filters, 3, name="head_conv")(features)
    x, encoded = ContextEncoding(num_codewords, residual=residual, name="context_encoding")(x)
    logits = segmentation_head(x, num_classes, reference, dropout=dropout)
    presence = keras.layers.Dense(num_classes, name="se_classifier")(encoded)
    presence = keras.layers.Activation("linear", dtype="float32", name=SEMANTIC_ENCODING_OUTPUT)(presence)
    return logits, presence


class EncodingSegmentationModel(AttentionSegmentationModel):
    """What :class:`EncNet` and FastFCN share: the encoding head, its two auxiliary losses, the config."""

    # The context encoding module returns two tensors; the classifier's dropout passes its
    # scaled features on unchanged at inference.
    feature_layer = "head_dropout"

    def build_outputs(
        self, features, auxiliary_features, inputs, num_classes, head_filters, num_codewords, dropout, aux,
        aux_filters, auxiliary_loss_weight, se_loss_weight, ignore_class, residual,
    ):
        """``(outputs, loss weights, auxiliary losses)`` for ``super().__init__``."""
        logits, presence = encoding_head(features, num_classes, head_filters, num_codewords, dropout, inputs, residual)
        outputs, loss_weights, losses = {MAIN_OUTPUT: logits}, {}, {}
        if se_loss_weight > 0:
            outputs[SEMANTIC_ENCODING_OUTPUT] = presence
            loss_weights[SEMANTIC_ENCODING_OUTPUT] = se_loss_weight
            losses[SEMANTIC_ENCODING_OUTPUT] = ClassPresenceLoss(num_classes, ignore_class=ignore_class)
        if aux and auxiliary_loss_weight > 0:
            outputs[AUXILIARY_OUTPUT] = fcn_auxiliary_head(auxiliary_features, num_classes, aux_filters, dropout, inputs)
            loss_weights[AUXILIARY_OUTPUT] = auxiliary_loss_weight
        if not loss_weights:
            return logits, None, None
        return outputs, loss_weights, losses

    def store_encoding_config(self, num_codewords, se_loss_weight, ignore_class, residual):
        self.num_codewords = num_codewords
        self.se_loss_weight = se_loss_weight
        self.ignore_class = ignore_class
        self.residual = residual

    def get_config(self):
        return {
            **super().get_config(),
            "num_codewords": self.num_codewords,
            "se_loss_weight": self.se_loss_weight,
            "ignore_class": self.ignore_class,
            "residual": self.residual,
        }


def check_encoding_arguments(num_codewords, se_loss_weight, ignore_class):
    num_codewords = check_int("num_codewords", num_codewords, minimum=1)
    se_loss_weight = check_float("se_loss_weight", se_loss_weight, minimum=0.0)
    ignore_class = None if ignore_class is None else check_int("ignore_class", ignore_class)
    return num_codewords, se_loss_weight, ignore_class


@serializable
@register_model("encnet")
class EncNet(EncodingSegmentationModel):
    """EncNet: a dilated ResNet whose features are rescaled by an encoded global context.

    Zhang, Dana, Shi, Zhang, Wang, Tyagi and Agrawal, "Context Encoding for Semantic
    Segmentation", CVPR 2018, https://arxiv.org/abs/1803.08904 (reference code:
    zhanghang1989/PyTorch-Encoding, ``encoding/models/encnet.py``).

    Architecture (Sec. 3.3, Fig. 2): a ResNet dilated to output stride 8 (stages 3 and 4
    with dilation 2 and 4). On ``C5``, a 3x3 convolution to 512 channels with batch norm and
    ReLU, then the context encoding module
    (:class:`~keras_sceneparse.layers.ContextEncoding`: the
    :class:`~keras_sceneparse.layers.Encoding` layer with ``K = 32`` codewords, batch norm,
    ReLU, mean over codewords, and a fully connected layer with sigmoid that scales the
    channels); channel dropout 0.1 and a 1x1 convolution score the classes, upsampled
    bilinearly to the input.

    Losses (Sec. 3.2): the semantic encoding loss: a fully connected layer on the encoded
    semantics predicts which classes the image contains (the ``"se"`` output,
    ``(batch, num_classes)`` logits), scored by binary cross-entropy against the presence
    vector of the label map (:class:`~keras_sceneparse.losses.ClassPresenceLoss`, declared
    as this output's own loss through ``auxiliary_losses``), weight 0.2. As in the
    reference code, an FCN head on
    ``C4`` (3x3 convolution to ``1024 / 4 = 256`` channels, batch norm, ReLU, channel
    dropout 0.1, 1x1 classifier; the ``"aux"`` output) adds a per-pixel loss with weight
    0.2 (the code's ``--aux-weight`` and ``--se-weight`` defaults; mmsegmentation uses 0.4
    for the auxiliary head). ``fit`` with the compiled per-pixel loss adds
    ``0.2 * aux + 0.2 * SE``; ``predict`` returns the main logits.

    Choices:

    - Backbone: ``keras.applications``' ResNet-101 (7x7 stem, convolution biases; the
      reference uses a deep-stem ResNet), no ImageNet weights offline. The paper's
      ResNet-50 and -101 both work (``backbone=``), as does any
      :func:`~keras_sceneparse.backbones.list_backbones` name.
    - The scaling is the reference code's ``relu(X + X * gamma)``; ``residual=False``
      gives the paper's ``X * gamma``.
    - The presence target ignores ``ignore_class`` pixels (the reference drops labels
      outside ``[0, num_classes)``, its ignore label being -1): pass the dataset's void id.
    - The reference's optional ``lateral`` connections (multi-level features into the
      encoding, off by default) are not built.

    Parameters: the paper gives none. Ours, by ``count_params`` (batch-norm statistics
    included), dilated ResNet-101 at output stride 8, with the auxiliary and SE heads,
    asserted by a (slow) test: 21 classes (PASCAL VOC) 55,028,063 (54,920,095 trainable);
    59 classes (PASCAL-Context) 55,076,817; 150 classes (ADE20K) 55,193,570. The encoding head on
    ``C5`` (3x3 conv, context encoding module, classifier, SE layer) is asserted from its
    formula on a narrow backbone.

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones` (``"resnet101"``).
        weights: ``None`` or ``"imagenet"`` for the backbone.
        output_stride: 8 (the paper) or 16.
        head_filters: channels of the head's 3x3 convolution and of the encoding (512).
        num_codewords: ``K`` (32).
        dropout: channel dropout before the classifiers (0.1).
        se_loss_weight: weight of the semantic encoding loss (0.2); 0 drops the ``"se"`` output.
        ignore_class: label id that marks no class in the SE loss's presence target.
        aux: add the FCN auxiliary head on ``C4`` (the ``"aux"`` output).
        aux_filters: channels of the auxiliary head's convolution (256).
        auxiliary_loss_weight: weight of the auxiliary head's loss (0.2).
        residual: channel scaling ``relu(X + X gamma)`` (reference code) or ``X gamma`` (paper).
        backbone_kwargs: extra ``keras.applications`` arguments (e.g. ``{"alpha": 0.35}``).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = EncNet(21, backbone="resnet18", backbone_kwargs={"base_filters": 8})
        >>> outputs = model(np.zeros((1, 65, 97, 3), "float32"))
        >>> {key: tuple(outputs[key].shape) for key in sorted(outputs)}
        {'aux': (1, 65, 97, 21), 'logits': (1, 65, 97, 21), 'se': (1, 21)}
    """

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet101",
        weights=None,
        output_stride=8,
        head_filters=512,
        num_codewords=32,
        dropout=0.1,
        se_loss_weight=0.2,
        ignore_class=None,
        aux=True,
        aux_filters=256,
        auxiliary_loss_weight=0.2,
        residual=True,
        backbone_kwargs=None,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.check_shared_arguments(
            num_classes, input_shape, backbone, output_stride, head_filters, dropout, aux_filters,
            auxiliary_loss_weight,
        )
        num_codewords, se_loss_weight, ignore_class = check_encoding_arguments(
            num_codewords, se_loss_weight, ignore_class
        )
        residual = bool(residual)

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        features = self.encode(inputs, backbone, weights, output_stride, backbone_kwargs, include_preprocessing)
        outputs, loss_weights, losses = self.build_outputs(
            features["C5"], features["C4"], inputs, num_classes, head_filters, num_codewords, dropout, aux,
            aux_filters, auxiliary_loss_weight, se_loss_weight, ignore_class, residual,
        )
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            num_classes=num_classes,
            image_shape=input_shape,
            include_preprocessing=include_preprocessing,
            auxiliary_loss_weights=loss_weights,
            auxiliary_losses=losses,
            **kwargs,
        )

        # === Config ===
        self.store_shared_config(
            backbone, output_stride, head_filters, dropout, bool(aux), aux_filters, auxiliary_loss_weight,
            backbone_kwargs,
        )
        self.store_encoding_config(num_codewords, se_loss_weight, ignore_class, residual)
