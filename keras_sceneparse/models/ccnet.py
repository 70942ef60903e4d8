"""CCNet, the criss-cross network (Huang, Wang, Huang, Huang, Wei and Liu, ICCV 2019)."""

import keras

from keras_sceneparse.layers.criss_cross_attention import CrissCrossAttention
from keras_sceneparse.models.attention_head import AttentionSegmentationModel, attention_head
from keras_sceneparse.models.heads import segmentation_head
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


@serializable
@register_model("ccnet")
class CCNet(AttentionSegmentationModel):
    """CCNet: recurrent criss-cross attention on a dilated ResNet, full-image context at low cost.

    Huang, Wang, Huang, Huang, Wei and Liu, "CCNet: Criss-Cross Attention for Semantic
    Segmentation", ICCV 2019, https://arxiv.org/abs/1811.11721.

    Architecture (Sec. 3.1, Fig. 2): a ResNet-101 dilated to output stride 8 (its last two
    stages). A convolution reduces ``C5`` to ``H`` (512 channels, 3x3 with batch norm in
    the released code, ``conva``); the recurrent criss-cross attention module (RCCA,
    Sec. 3.3) applies :class:`~keras_sceneparse.layers.CrissCrossAttention` ``R = 2``
    times with shared weights (``recurrence``), so every position reaches every other;
    a convolution (``convb``, 3x3) transforms the result to ``H''``, which is
    concatenated with the local representation ``X`` (``C5``) and fused by convolution,
    batch norm and activation (the paper allows "one or several" such layers; the released
    code's ``bottleneck`` has one 3x3 convolution to 512 channels);
    dropout 0.1 and a 1x1 convolution score the classes, upsampled bilinearly to the input.
    The released code also trains a deep-supervision head on ``C4`` with loss weight 0.4
    (its ``dsn``); we use mmsegmentation's FCN auxiliary head there (256 channels instead of
    the released code's 512; ``aux_filters=512`` gives the latter).

    Choices: the released code's normalisation is InPlace-ABN, batch norm with leaky ReLU
    (slope 0.01); we use batch norm and ReLU as mmsegmentation's ``ccnet_r50-d8`` does. The
    attention scale ``gamma`` of the released code (initialised to 0) is kept (see
    :class:`~keras_sceneparse.layers.CrissCrossAttention`). ResNets come from
    ``keras.applications`` (7x7 stem, convolutions with biases), not the released code's
    deep-stem ResNet-101, so the backbone counts differ slightly.

    Parameters: the paper reports GFLOPs and memory but no parameter count, nor do its
    released code and mmsegmentation. Ours, 19 classes (Cityscapes), output stride 8, with
    the auxiliary head (``count_params``, batch-norm moving statistics included; asserted by
    a test): ResNet-101 68,960,551; ResNet-50 49,890,087 (68,851,623 and 49,833,383
    trainable). Counting the layer shapes of mmsegmentation's ``ccnet_r{101,50}-d8``
    configurations (ResNet-V1c backbone, trainable parameters as PyTorch counts them) gives
    68,818,183 and 49,826,055: ours are 0.05% and 0.015% larger, because Keras' ResNets have
    a 7x7 stem and biases in their convolutions. The head (everything but the backbone),
    26,302,375, equals the sum of mmsegmentation's CCHead and FCNHead layer shapes (also
    asserted).

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones` (``"resnet101"``
            in the paper).
        weights: ``None`` or ``"imagenet"`` for the backbone.
        output_stride: 8 (default) or 16.
        head_filters: channels of the head convolutions (512).
        attention_reduction: queries and keys have ``head_filters // attention_reduction``
            channels (8).
        recurrence: loops ``R`` of the criss-cross module (2, Sec. 3.3).
        concat_input: concatenate ``C5`` with ``H''`` and fuse (Sec. 3.1).
        dropout: channel dropout before the classifiers (0.1).
        aux: add the FCN auxiliary head on ``C4`` (not with ``auxiliary_loss_weight=0``);
            the model then returns ``{"logits": ..., "aux": ...}`` (``predict`` returns the
            logits only).
        aux_filters: channels of the auxiliary head's convolution (256).
        auxiliary_loss_weight: weight of the auxiliary loss (0.4).
        backbone_kwargs: extra ``keras.applications`` arguments (e.g. ``{"alpha": 0.35}``).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = CCNet(19, backbone="mobilenet_v2", head_filters=64, aux=False)
        >>> model(np.zeros((1, 65, 97, 3), "float32")).shape
        TensorShape([1, 65, 97, 19])
    """

    feature_layer = "head_fusion"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet101",
        weights=None,
        output_stride=8,
        head_filters=512,
        attention_reduction=8,
        recurrence=2,
        concat_input=True,
        dropout=0.1,
        aux=True,
        aux_filters=256,
        auxiliary_loss_weight=0.4,
        backbone_kwargs=None,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.check_shared_arguments(
            num_classes, input_shape, backbone, output_stride, head_filters, dropout, aux_filters,
            auxiliary_loss_weight,
        )
        attention_reduction = check_int("attention_reduction", attention_reduction, minimum=1)
        recurrence = check_int("recurrence", recurrence, minimum=1)

        # === Layers ===
        criss_cross = CrissCrossAttention(
            reduction=attention_reduction, recurrence=recurrence, name="criss_cross_attention"
        )

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        features = self.encode(inputs, backbone, weights, output_stride, backbone_kwargs, include_preprocessing)
        x = attention_head(features["C5"], criss_cross, head_filters, concat_input)
        logits = segmentation_head(x, num_classes, inputs, dropout=dropout)
        outputs, loss_weights = self.with_auxiliary_head(
            logits, features, inputs, num_classes, aux, aux_filters, dropout, auxiliary_loss_weight
        )
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            num_classes=num_classes,
            image_shape=input_shape,
            include_preprocessing=include_preprocessing,
            auxiliary_loss_weights=loss_weights,
            **kwargs,
        )

        # === Config ===
        self.store_shared_config(
            backbone, output_stride, head_filters, dropout, bool(aux), aux_filters,
            auxiliary_loss_weight, backbone_kwargs,
        )
        self.attention_reduction = attention_reduction
        self.recurrence = recurrence
        self.concat_input = bool(concat_input)
        if not self.concat_input:
            self.feature_layer = "head_refinement"

    def get_config(self):
        return {
            **super().get_config(),
            "attention_reduction": self.attention_reduction,
            "recurrence": self.recurrence,
            "concat_input": self.concat_input,
        }
