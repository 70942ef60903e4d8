"""GCNet, the global context network, as a segmentation head (Cao, Xu, Lin, Wei and Hu, ICCVW 2019)."""

import keras

from keras_sceneparse.layers.global_context import GlobalContextBlock
from keras_sceneparse.models.attention_head import AttentionSegmentationModel, attention_head
from keras_sceneparse.models.heads import segmentation_head
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


@serializable
@register_model("gcnet")
class GCNet(AttentionSegmentationModel):
    """GCNet: a dilated ResNet whose head adds one attention-pooled global context vector.

    Cao, Xu, Lin, Wei and Hu, "GCNet: Non-local Networks Meet Squeeze-Excitation Networks
    and Beyond", ICCV Workshops 2019, https://arxiv.org/abs/1904.11492.

    Architecture: the paper defines the global context block (Sec. 4, Fig. 4(d);
    :class:`~keras_sceneparse.layers.GlobalContextBlock`) and inserts it in the backbones
    of COCO detectors, ImageNet classifiers and Kinetics video networks (Sec. 5); it has no
    semantic segmentation experiment and gives no segmentation head. The head here is
    mmsegmentation's ``GCHead`` (``configs/_base_/models/gcnet_r50-d8.py``), the "dilated
    ResNet + attention head" of the non-local and CCNet models: a ResNet dilated to output
    stride 8; ``C5`` reduced to 512 channels by a 3x3 convolution with batch norm and ReLU;
    one GC block; a 3x3 convolution; concatenation with ``C5`` and a fusing 3x3
    convolution; dropout 0.1 and a 1x1 classifier, upsampled bilinearly to the input. An
    FCN auxiliary head on ``C4`` (3x3 convolution to 256 channels, dropout, classifier) is
    trained with loss weight 0.4.

    Choices: bottleneck ratio ``r = 4`` (mmsegmentation's ``ratio=1/4``, a 128-channel
    transform on the 512-channel head), not the paper's default ``r = 16`` (Sec. 4),
    which was chosen for blocks inserted throughout a backbone, where parameters add up;
    ``bottleneck_ratio=16`` gives it. Attention
    pooling and fusion by addition (Fig. 4(d), mmsegmentation's ``pooling_type="att"``,
    ``fusion_types=("channel_add",)``). ResNets come from ``keras.applications`` (7x7 stem,
    convolutions with biases), not mmsegmentation's ResNet-V1c, so the backbone counts
    differ slightly.

    Parameters: neither the paper nor mmsegmentation reports a count for this model. Ours,
    19 classes (Cityscapes), output stride 8, with the auxiliary head (``count_params``,
    batch-norm moving statistics included; asserted by a test): ResNet-101 68,764,711;
    ResNet-50 49,694,247 (68,655,783 and 49,637,543 trainable). Counting the layer shapes of
    mmsegmentation's ``gcnet_r{101,50}-d8`` configurations (ResNet-V1c backbone, trainable
    parameters as PyTorch counts them) gives 68,622,343 and 49,630,215: ours are 0.05% and
    0.015% larger, because Keras' ResNets have a 7x7 stem and biases in their convolutions.
    The head (everything but the backbone), 26,106,535, equals the sum of mmsegmentation's
    GCHead and FCNHead layer shapes (also asserted).

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones`.
        weights: ``None`` or ``"imagenet"`` for the backbone.
        output_stride: 8 (default) or 16.
        head_filters: channels of the head convolutions (512).
        bottleneck_ratio: ``r``; the GC transform has ``head_filters // r`` channels (4).
        concat_input: concatenate ``C5`` with the head output and fuse (mmsegmentation).
        dropout: channel dropout before the classifiers (0.1).
        aux: add the FCN auxiliary head on ``C4`` (not with ``auxiliary_loss_weight=0``);
            the model then returns ``{"logits": ..., "aux": ...}`` (``predict`` returns the
            logits only).
        aux_filters: channels of the auxiliary head's convolution (256).
        auxiliary_loss_weight: weight of the auxiliary loss (0.4).
        backbone_kwargs: extra ``keras.applications`` arguments (e.g. ``{"alpha": 0.35}``).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = GCNet(19, backbone="mobilenet_v2", head_filters=64, aux=False)
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
        bottleneck_ratio=4,
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
        bottleneck_ratio = check_int("bottleneck_ratio", bottleneck_ratio, minimum=1)

        # === Layers ===
        global_context = GlobalContextBlock(bottleneck_ratio=bottleneck_ratio, name="global_context")

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        features = self.encode(inputs, backbone, weights, output_stride, backbone_kwargs, include_preprocessing)
        x = attention_head(features["C5"], global_context, head_filters, concat_input)
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
        self.bottleneck_ratio = bottleneck_ratio
        self.concat_input = bool(concat_input)
        if not self.concat_input:
            self.feature_layer = "head_refinement"

    def get_config(self):
        return {
            **super().get_config(),
            "bottleneck_ratio": self.bottleneck_ratio,
            "concat_input": self.concat_input,
        }
