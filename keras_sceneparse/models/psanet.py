"""PSANet, the point-wise spatial attention network (Zhao, Zhang, Liu, Shi, Loy, Lin and Jia, ECCV 2018)."""

import keras

from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.layers.pointwise_spatial_attention import (
    PSA_MODES,
    PointwiseSpatialAttention,
)
from keras_sceneparse.models.attention_head import AttentionSegmentationModel
from keras_sceneparse.models.heads import segmentation_head
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_int


@serializable
@register_model("psanet")
class PSANet(AttentionSegmentationModel):
    """PSANet: a dilated ResNet whose head lets every position collect from and distribute to all others.

    Zhao, Zhang, Liu, Shi, Loy, Lin and Jia, "PSANet: Point-wise Spatial Attention Network
    for Scene Parsing", ECCV 2018, https://hszhao.github.io/papers/eccv18_psanet.pdf
    (reference code: hszhao/semseg ``model/psanet.py``; mmsegmentation's ``PSAHead``).

    Architecture (Sec. 3-4, Figs. 2-4): a ResNet with dilated last two stages (output
    stride 8). The :class:`~keras_sceneparse.layers.PointwiseSpatialAttention` module takes
    ``C5`` (2048 channels): in a "collect" and a "distribute" branch, a 1x1 convolution
    reduces it to 512 channels, two 1x1 convolutions predict for each position an
    over-completed ``(2H - 1) x (2W - 1)`` attention map whose ``H x W`` window is that
    position's attention over all others; the two aggregations are concatenated, projected
    back to 2048 channels and concatenated with ``C5``. A 3x3 convolution to 512 channels
    with batch norm and ReLU fuses them (``head_bottleneck``); dropout 0.1 and a 1x1
    convolution score the classes, upsampled bilinearly to the input. As in PSPNet, an
    auxiliary FCN head on ``C4`` (3x3 convolution to 256 channels, dropout, classifier) is
    trained with loss weight 0.4 (Sec. 4).

    Choices:

    - Over-complete map size (the attention convolution's output channels, so a weight
      shape): the paper's ``(2h - 1) x (2w - 1)`` of the training feature size cannot follow
      the size at run time. ``mask_size=(97, 97)`` by default, mmsegmentation's Cityscapes
      setting (the paper's map for 769x769 crops, ``h = w = 49`` after shrinking), which
      the parameter count below uses; ``mask_size=None`` derives the paper's map from a
      static ``input_shape`` (the released code's formula). Inputs of any size run: each
      position's window is gathered from its map at run time; pairs beyond its reach get
      logit 0 (the reference ``PSAMask``'s zero-filled buffers).
    - Attention at half resolution (``shrink_factor=2``, corner-aligned resizing, as the
      released code); softmax-normalised windows, ``1/N`` = 1 (``psa_softmax=True``,
      ``normalization_factor=1`` in every released configuration).
    - mmsegmentation's projection convolution pads its 1x1 kernel by one pixel (its output
      is then resized to ``C5``'s size); we follow the released code (no padding). Channel
      dropout (``nn.Dropout2d``) as both codes. ResNets come from ``keras.applications``
      (7x7 stem, convolutions with biases), not the reference's deep-stem ResNet.

    Parameters: neither the paper nor the released code reports a count. Ours, 19 classes
    (Cityscapes), output stride 8, ``mask_size=(97, 97)``, with the auxiliary head
    (``count_params``, batch-norm moving statistics included; asserted by a test):
    ResNet-101 78,279,334 (78,164,262 trainable). Counting the layer shapes of
    mmsegmentation's ``psanet_r101-d8`` Cityscapes configuration (ResNet-V1c backbone,
    trainable parameters as PyTorch counts them) gives 78,130,822: ours is 0.04% larger,
    because Keras' ResNets have a 7x7 stem and biases in their convolutions. The head
    (everything but the backbone), 35,621,158, equals the sum of mmsegmentation's PSAHead
    and FCNHead layer shapes (also asserted); 9,634,816 of it are the two ``97 x 97``
    attention predictors.

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None`` (unless
            ``mask_size=None``).
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones` (``"resnet101"``
            in the paper's best models).
        weights: ``None`` or ``"imagenet"`` for the backbone.
        output_stride: 8 (default) or 16.
        head_filters: channels of the PSA branches and of the bottleneck convolution (512).
        mask_size: odd ``(m_h, m_w)`` of each position's over-complete map, or ``None``.
        shrink_factor: sub-sampling of the attention (2).
        psa_mode: ``"bi-direction"`` (the paper), ``"collect"`` or ``"distribute"``.
        dropout: channel dropout before the classifiers (0.1).
        aux: add the FCN auxiliary head on ``C4`` (not with ``auxiliary_loss_weight=0``);
            the model then returns ``{"logits": ..., "aux": ...}`` (``predict`` returns the
            logits only).
        aux_filters: channels of the auxiliary head's convolution (256).
        auxiliary_loss_weight: weight of the auxiliary loss (0.4).
        backbone_kwargs: extra ``keras.applications`` arguments (e.g. ``{"alpha": 0.35}``).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = PSANet(19, backbone="mobilenet_v2", head_filters=64, mask_size=(31, 31), aux=False)
        >>> model(np.zeros((1, 65, 97, 3), "float32")).shape
        TensorShape([1, 65, 97, 19])
    """

    feature_layer = "head_bottleneck"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet101",
        weights=None,
        output_stride=8,
        head_filters=512,
        mask_size=(97, 97),
        shrink_factor=2,
        psa_mode="bi-direction",
        dropout=0.1,
        aux=True,
        aux_filters=256,
        auxiliary_loss_weight=0.4,
        backbone_kwargs=None,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.check_shared_arguments(
            num_classes,
            input_shape,
            backbone,
            output_stride,
            head_filters,
            dropout,
            aux_filters,
            auxiliary_loss_weight,
        )
        shrink_factor = check_int("shrink_factor", shrink_factor, minimum=1)
        psa_mode = check_choice("psa_mode", psa_mode, set(PSA_MODES))

        # === Layers ===
        attention = PointwiseSpatialAttention(
            filters=head_filters,
            mask_size=mask_size,
            shrink_factor=shrink_factor,
            mode=psa_mode,
            name="pointwise_spatial_attention",
        )

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        features = self.encode(
            inputs,
            backbone,
            weights,
            output_stride,
            backbone_kwargs,
            include_preprocessing,
        )
        x = attention(features["C5"])
        x = ConvBNReLU(head_filters, 3, name="head_bottleneck")(x)
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
            backbone,
            output_stride,
            head_filters,
            dropout,
            bool(aux),
            aux_filters,
            auxiliary_loss_weight,
            backbone_kwargs,
        )
        self.mask_size = attention.mask_size
        self.shrink_factor = shrink_factor
        self.psa_mode = psa_mode

    def get_config(self):
        return {
            **super().get_config(),
            "mask_size": self.mask_size,
            "shrink_factor": self.shrink_factor,
            "psa_mode": self.psa_mode,
        }
