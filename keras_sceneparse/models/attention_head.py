"""What the attention segmentation models share: a dilated backbone, an attention head, an FCN auxiliary head.

DANet and CCNet evaluate their attention modules in the frame of PSPNet and DeepLab, and
mmsegmentation puts the non-local and global-context blocks (whose papers have no semantic
segmentation experiment) in the same one: a ResNet dilated to output stride 8 (DANet
Sec. 3.1, CCNet Sec. 3.1), a head that reduces the 2048-channel ``C5`` features to 512 with a 3x3
convolution, applies its attention module, refines with another 3x3 convolution, and
scores the classes with dropout 0.1 and a 1x1 convolution; the logits are upsampled
bilinearly to the input. Training adds an FCN auxiliary head on ``C4`` (stride 8 too) with
loss weight 0.4 (CCNet's released code; PSPNet's deep supervision, Zhao et al., CVPR 2017,
Sec. 4).

mmsegmentation's configurations of the four models (``configs/_base_/models/*_r50-d8.py``)
fix what the papers leave open, and this module follows them: convolutions without
biases followed by batch normalisation and ReLU, ``nn.Dropout2d`` (whole channels) before
each classifier, an auxiliary head of one 3x3 convolution to 256 channels, and for the
non-local, criss-cross and global-context heads the ``concat_input`` fusion: the ``C5``
features are concatenated with the refined attention output and fused by a third 3x3
convolution to 512 channels (CCNet Sec. 3.1 and Fig. 2 describe this concatenation; the
others inherit it from mmsegmentation's ``FCNHead``).
"""

import keras

from keras_sceneparse.backbones.backbone import Backbone, list_backbones
from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.models.heads import AUXILIARY_OUTPUT, fcn_auxiliary_head
from keras_sceneparse.models.segmentation_model import MAIN_OUTPUT, SegmentationModel
from keras_sceneparse.utils.validation import check_choice, check_float, check_int



class AttentionSegmentationModel(SegmentationModel):
    """Base of :class:`NonLocalNet`, :class:`DANet`, :class:`CCNet` and :class:`GCNet`.

    Holds their shared arguments (checked by :meth:`check_shared_arguments`), builds the
    shared parts (:meth:`encode`, :func:`attention_head`, :meth:`with_auxiliary_head`) and writes
    the shared config. Not registered: it has no head of its own.
    """

    @staticmethod
    def check_shared_arguments(
        num_classes, input_shape, backbone, output_stride, head_filters, dropout, aux_filters,
        auxiliary_loss_weight,
    ):
        num_classes, input_shape = SegmentationModel.validate_arguments(num_classes, input_shape)
        check_choice("backbone", backbone, list_backbones())
        check_choice("output_stride", output_stride, {8, 16})
        check_int("head_filters", head_filters, minimum=1)
        check_float("dropout", dropout, minimum=0.0, maximum=1.0)
        check_int("aux_filters", aux_filters, minimum=1)
        check_float("auxiliary_loss_weight", auxiliary_loss_weight, minimum=0.0)
        return num_classes, input_shape

    @staticmethod
    def encode(inputs, backbone, weights, output_stride, backbone_kwargs, include_preprocessing):
        """The dilated backbone's pyramid ``{"C1": ..., "C5": ...}`` for ``inputs``."""
        encoder = Backbone(
            backbone,
            input_shape=inputs.shape[1:],
            weights=weights,
            output_stride=output_stride,
            application_kwargs=backbone_kwargs,
            name=f"{backbone}_backbone",
        )
        x = SegmentationModel.preprocess(inputs, encoder.normalization, include_preprocessing)
        return encoder(x)

    @staticmethod
    def with_auxiliary_head(logits, features, reference, num_classes, aux, aux_filters, dropout, auxiliary_loss_weight):
        """The model's outputs and auxiliary loss weights: ``logits`` alone, or with
        :func:`~keras_sceneparse.models.heads.fcn_auxiliary_head` on ``features["C4"]``
        when ``aux`` and ``auxiliary_loss_weight > 0``."""
        if not aux or auxiliary_loss_weight <= 0:
            return logits, None
        auxiliary = fcn_auxiliary_head(features["C4"], num_classes, aux_filters, dropout, reference)
        return {MAIN_OUTPUT: logits, AUXILIARY_OUTPUT: auxiliary}, {AUXILIARY_OUTPUT: auxiliary_loss_weight}

    def store_shared_config(
        self, backbone, output_stride, head_filters, dropout, aux, aux_filters, auxiliary_loss_weight,
        backbone_kwargs,
    ):
        self.backbone_name = backbone
        self.output_stride = output_stride
        self.head_filters = head_filters
        self.dropout = dropout
        self.aux = aux
        self.aux_filters = aux_filters
        self.auxiliary_loss_weight = auxiliary_loss_weight
        self.backbone_kwargs = dict(backbone_kwargs or {})

    def get_config(self):
        return {
            **self.base_config(),
            "backbone": self.backbone_name,
            "weights": None,
            "output_stride": self.output_stride,
            "head_filters": self.head_filters,
            "dropout": self.dropout,
            "aux": self.aux,
            "aux_filters": self.aux_filters,
            "auxiliary_loss_weight": self.auxiliary_loss_weight,
            "backbone_kwargs": self.backbone_kwargs,
        }


def attention_head(features, attention, filters, concat_input, prefix="head"):
    """mmsegmentation's ``FCNHead`` with an attention module between its two convolutions.

    ``features`` -> 3x3 conv to ``filters`` + BN + ReLU (``{prefix}_reduction``) ->
    ``attention`` -> 3x3 conv + BN + ReLU (``{prefix}_refinement``) -> with
    ``concat_input``, concatenation with ``features`` and a 3x3 conv + BN + ReLU
    (``{prefix}_fusion``).
    """
    x = ConvBNReLU(filters, 3, name=f"{prefix}_reduction")(features)
    x = attention(x)
    x = ConvBNReLU(filters, 3, name=f"{prefix}_refinement")(x)
    if concat_input:
        x = keras.layers.Concatenate(name=f"{prefix}_concat")([features, x])
        x = ConvBNReLU(filters, 3, name=f"{prefix}_fusion")(x)
    return x

