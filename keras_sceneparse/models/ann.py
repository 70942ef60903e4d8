"""ANN, the asymmetric non-local network (Zhu, Xu, Bai, Huang and Bai, ICCV 2019)."""

import keras

from keras_sceneparse.layers.asymmetric_non_local import (
    PYRAMID_BINS,
    AsymmetricFusionNonLocalBlock,
    AsymmetricPyramidNonLocalBlock,
)
from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.models.attention_head import AttentionSegmentationModel
from keras_sceneparse.models.heads import segmentation_head
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


@serializable
@register_model("ann")
class ANN(AttentionSegmentationModel):
    """ANN: a dilated ResNet whose head fuses ``C4`` into ``C5``, then adds context, by pyramid-sampled attention.

    Zhu, Xu, Bai, Huang and Bai, "Asymmetric Non-local Neural Networks for Semantic
    Segmentation", ICCV 2019, https://arxiv.org/abs/1908.07678 (reference code:
    MendelXu/ANN; mmsegmentation's ``ANNHead``).

    Architecture (Sec. 3, Fig. 2): a ResNet-101 with dilated last two stages (output
    stride 8). The :class:`~keras_sceneparse.layers.AsymmetricFusionNonLocalBlock` (AFNB,
    Sec. 3.3) fuses the stage-4 and stage-5 features: queries from ``C5`` (2048 channels),
    keys and values from ``C4`` (1024), both sampled by pyramid pooling into 1 + 9 + 36 +
    64 = 110 bins, 256-channel keys and values; the result (2048 channels) goes through
    channel dropout, a 3x3 convolution to 512 channels with batch norm and ReLU
    (``head_bottleneck``) and the
    :class:`~keras_sceneparse.layers.AsymmetricPyramidNonLocalBlock` (APNB, Sec. 3.2),
    self-attention of every position over the 110 pyramid samples of the same features.
    Dropout and a 1x1 convolution score the classes, upsampled bilinearly to the input.
    Deep supervision on ``C4`` (the released code's ``dsn`` branch, loss weight 0.4 in its
    configurations): an FCN auxiliary head (3x3 convolution to 256 channels, dropout,
    classifier).

    Choices: mmsegmentation's ``ann_r50-d8`` configuration where the paper is silent:
    convolutions followed by batch norm have no bias, dropout 0.1 (whole channels) after
    the AFNB and before the classifier (the released code drops 0.05 at the same two
    places, inside the blocks), the auxiliary head has 256 channels (512 in the released
    code) and weight 0.4 (as the released code). One query scale (both codes' default).
    ResNets come from ``keras.applications`` (7x7 stem, convolutions with biases), not
    the reference's deep-stem ResNet.

    Parameters: the paper reports none (it compares the blocks' FLOPs, GPU memory and time
    with the non-local block's). Ours, 19 classes (Cityscapes), output stride 8, with the
    auxiliary head (``count_params``, batch-norm moving statistics included; asserted by a
    test):
    ResNet-101 65,367,718 (65,254,182 trainable). Counting the layer shapes of
    mmsegmentation's ``ann_r101-d8`` configuration (ResNet-V1c backbone, trainable
    parameters as PyTorch counts them) gives 65,220,742: ours is 0.05% larger, because
    Keras' ResNets have a 7x7 stem and biases in their convolutions. The head (everything
    but the backbone), 22,709,542, equals the sum of mmsegmentation's ANNHead and FCNHead
    layer shapes (also asserted).

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones` (``"resnet101"``
            in the paper).
        weights: ``None`` or ``"imagenet"`` for the backbone.
        output_stride: 8 (default) or 16.
        head_filters: channels of the convolution after the AFNB and of the APNB (512).
        key_channels: channels of the queries and keys of both blocks (256).
        value_channels: channels of the values of both blocks (256).
        pool_sizes: pyramid levels sampling the keys and values ((1, 3, 6, 8): 110 samples).
        dropout: channel dropout after the AFNB and before the classifiers (0.1).
        aux: add the FCN auxiliary head on ``C4`` (not with ``auxiliary_loss_weight=0``);
            the model then returns ``{"logits": ..., "aux": ...}`` (``predict`` returns the
            logits only).
        aux_filters: channels of the auxiliary head's convolution (256).
        auxiliary_loss_weight: weight of the auxiliary loss (0.4).
        backbone_kwargs: extra ``keras.applications`` arguments (e.g. ``{"alpha": 0.35}``).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = ANN(19, backbone="mobilenet_v2", head_filters=64, key_channels=32, aux=False)
        >>> model(np.zeros((1, 65, 97, 3), "float32")).shape
        TensorShape([1, 65, 97, 19])
    """

    feature_layer = "asymmetric_pyramid_non_local"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet101",
        weights=None,
        output_stride=8,
        head_filters=512,
        key_channels=256,
        value_channels=256,
        pool_sizes=PYRAMID_BINS,
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
        key_channels = check_int("key_channels", key_channels, minimum=1)
        value_channels = check_int("value_channels", value_channels, minimum=1)

        # === Layers ===
        fusion = AsymmetricFusionNonLocalBlock(
            key_channels=key_channels,
            value_channels=value_channels,
            pool_sizes=pool_sizes,
            name="asymmetric_fusion_non_local",
        )
        context = AsymmetricPyramidNonLocalBlock(
            key_channels=key_channels,
            value_channels=value_channels,
            pool_sizes=pool_sizes,
            name="asymmetric_pyramid_non_local",
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
        x = fusion(features["C4"], features["C5"])
        x = keras.layers.SpatialDropout2D(dropout, name="fusion_dropout")(x)
        x = ConvBNReLU(head_filters, 3, name="head_bottleneck")(x)
        x = context(x)
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
        self.key_channels = key_channels
        self.value_channels = value_channels
        self.pool_sizes = fusion.pool_sizes

    def get_config(self):
        return {
            **super().get_config(),
            "key_channels": self.key_channels,
            "value_channels": self.value_channels,
            "pool_sizes": self.pool_sizes,
        }
