"""DANet, the dual attention network (Fu, Liu, Tian, Li, Bao, Fang and Lu, CVPR 2019)."""

import keras

from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.layers.dual_attention import ChannelAttention, PositionAttention
from keras_sceneparse.models.attention_head import AttentionSegmentationModel
from keras_sceneparse.models.heads import AUXILIARY_OUTPUT, fcn_auxiliary_head, segmentation_head
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float, check_int

#: Names of the branch outputs supervised with ``branch_supervision``.
POSITION_OUTPUT = "position"
CHANNEL_OUTPUT = "channel"


@serializable
@register_model("danet")
class DANet(AttentionSegmentationModel):
    """DANet: position and channel self-attention in two parallel branches of a dilated ResNet.

    Fu, Liu, Tian, Li, Bao, Fang and Lu, "Dual Attention Network for Scene Segmentation",
    CVPR 2019, https://arxiv.org/abs/1809.02983.

    Architecture (Sec. 3.1, Fig. 2; Sec. 3.4): a ResNet dilated to output stride 8 (the
    last two stages). Each branch reduces ``C5`` with a convolution to ``C5 / 4`` = 512
    channels (3x3 with batch norm and ReLU in the released code), applies its attention
    module (:class:`~keras_sceneparse.layers.PositionAttention`, Sec. 3.2, or
    :class:`~keras_sceneparse.layers.ChannelAttention`, Sec. 3.3) and transforms the result
    with another convolution (3x3, batch norm, ReLU). The two are summed (Sec. 3.4) and a
    convolution scores the classes: dropout 0.1 and a 1x1 convolution in the code,
    upsampled bilinearly to the input. The paper and the released
    code also supervise each branch with its own classifier: with
    ``branch_supervision`` the model returns those logits as ``"position"`` and
    ``"channel"`` outputs, trained with weight 1 each (the released code sums the three
    losses; mmsegmentation weights each 1.0). Like mmsegmentation's
    ``danet_r50-d8`` configuration we add the FCN auxiliary head on ``C4`` (3x3
    convolution to 256 channels, dropout, classifier; loss weight 0.4), which the released
    DANet code leaves off by default (``aux=False`` removes it).

    Choices: the released code's channel attention (softmax of ``max - energy``, see
    :class:`~keras_sceneparse.layers.ChannelAttention`; ``subtract_from_max=False`` gives
    the paper's Eq. 3). Head widths are fixed at 512 (``head_filters``) rather than
    ``C5 / 4``, so other backbones get the ResNet head. ResNets come from
    ``keras.applications`` (7x7 stem, convolutions with biases), not the released code's
    deep-stem ResNet, so the backbone counts differ slightly.

    Parameters: neither the paper nor mmsegmentation reports a count. Ours, 19 classes
    (Cityscapes), output stride 8, with the branch and auxiliary outputs (``count_params``,
    batch-norm moving statistics included; asserted by a test): ResNet-101 68,982,094;
    ResNet-50 49,911,630 (68,872,142 and 49,853,902 trainable). Counting the layer shapes of
    mmsegmentation's ``danet_r{101,50}-d8`` configurations (ResNet-V1c backbone, trainable
    parameters as PyTorch counts them) gives 68,838,702 and 49,846,574: ours are 0.05% and
    0.015% larger, because Keras' ResNets have a 7x7 stem and biases in their convolutions.
    The head (everything but the backbone), 26,323,918, equals the sum of mmsegmentation's
    DAHead and FCNHead layer shapes (also asserted).

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones` (``"resnet101"``
            in the paper).
        weights: ``None`` or ``"imagenet"`` for the backbone.
        output_stride: 8 (default) or 16.
        head_filters: channels of both branches (512).
        attention_reduction: position attention's query/key channels are
            ``head_filters // attention_reduction`` (8).
        subtract_from_max: channel attention as in the released code (``True``) or as in
            Eq. 3 (``False``).
        dropout: channel dropout before the classifiers (0.1).
        branch_supervision: add the ``"position"`` and ``"channel"`` branch outputs.
        branch_loss_weight: weight of each branch's loss (1.0).
        aux: add the FCN auxiliary head on ``C4``, output ``"aux"`` (not with
            ``auxiliary_loss_weight=0``).
        aux_filters: channels of the auxiliary head's convolution (256).
        auxiliary_loss_weight: weight of the auxiliary loss (0.4).
        backbone_kwargs: extra ``keras.applications`` arguments (e.g. ``{"alpha": 0.35}``).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    With any auxiliary output the model returns a dict (``"logits"`` and the auxiliary
    names); ``predict`` returns the logits only.

    Example:
        >>> model = DANet(19, backbone="mobilenet_v2", head_filters=64, branch_supervision=False,
        ...               aux=False)
        >>> model(np.zeros((1, 65, 97, 3), "float32")).shape
        TensorShape([1, 65, 97, 19])
    """

    feature_layer = "attention_sum"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet101",
        weights=None,
        output_stride=8,
        head_filters=512,
        attention_reduction=8,
        subtract_from_max=True,
        dropout=0.1,
        branch_supervision=True,
        branch_loss_weight=1.0,
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
        branch_loss_weight = check_float("branch_loss_weight", branch_loss_weight, minimum=0.0)

        # === Layers ===
        position_attention = PositionAttention(reduction=attention_reduction, name="position_attention")
        channel_attention = ChannelAttention(subtract_from_max=subtract_from_max, name="channel_attention")

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        features = self.encode(inputs, backbone, weights, output_stride, backbone_kwargs, include_preprocessing)
        branches = {}
        for prefix, attention in ((POSITION_OUTPUT, position_attention), (CHANNEL_OUTPUT, channel_attention)):
            x = ConvBNReLU(head_filters, 3, name=f"{prefix}_reduction")(features["C5"])
            x = attention(x)
            branches[prefix] = ConvBNReLU(head_filters, 3, name=f"{prefix}_refinement")(x)
        fused = keras.layers.Add(name="attention_sum")(list(branches.values()))
        logits = segmentation_head(fused, num_classes, inputs, dropout=dropout)
        outputs, loss_weights = {"logits": logits}, {}
        if branch_supervision:
            for prefix, x in branches.items():
                outputs[prefix] = segmentation_head(x, num_classes, inputs, dropout=dropout, name=prefix)
                loss_weights[prefix] = branch_loss_weight
        if aux and auxiliary_loss_weight > 0:
            outputs[AUXILIARY_OUTPUT] = fcn_auxiliary_head(features["C4"], num_classes, aux_filters, dropout, inputs)
            loss_weights[AUXILIARY_OUTPUT] = auxiliary_loss_weight
        super().__init__(
            inputs=inputs,
            outputs=outputs if loss_weights else logits,
            num_classes=num_classes,
            image_shape=input_shape,
            include_preprocessing=include_preprocessing,
            auxiliary_loss_weights=loss_weights or None,
            **kwargs,
        )

        # === Config ===
        self.store_shared_config(
            backbone, output_stride, head_filters, dropout, bool(aux), aux_filters,
            auxiliary_loss_weight, backbone_kwargs,
        )
        self.attention_reduction = attention_reduction
        self.subtract_from_max = bool(subtract_from_max)
        self.branch_supervision = bool(branch_supervision)
        self.branch_loss_weight = branch_loss_weight

    def get_config(self):
        return {
            **super().get_config(),
            "attention_reduction": self.attention_reduction,
            "subtract_from_max": self.subtract_from_max,
            "branch_supervision": self.branch_supervision,
            "branch_loss_weight": self.branch_loss_weight,
        }
