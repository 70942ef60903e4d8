"""OCRNet, object-contextual representations (Yuan, Chen and Wang, ECCV 2020)."""

import keras

from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.layers.object_context import (
    ObjectContextualRepresentation,
    SpatialGather,
)
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.attention_head import AttentionSegmentationModel
from keras_sceneparse.models.heads import AUXILIARY_OUTPUT, segmentation_head
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import MAIN_OUTPUT, SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


@serializable
@register_model("ocrnet")
class OCRNet(AttentionSegmentationModel):
    """OCRNet: each pixel augmented with the representations of the object regions it relates to.

    Yuan, Chen and Wang, "Object-Contextual Representations for Semantic Segmentation",
    ECCV 2020, https://arxiv.org/abs/1909.11065 (reference code: openseg-group/openseg.pytorch,
    ``SpatialOCRNet`` for ResNet-101).

    Architecture (Sec. 3.3, Fig. 3), for the paper's dilated ResNet-101 at output stride 8:

    - soft object regions: an auxiliary head on stage 3 (``C4``, 1024 channels) predicts a
      coarse segmentation, supervised by the per-pixel loss with weight 0.4 (the
      ``"aux"`` output, upsampled to the input). Its head follows the reference code: a
      3x3 convolution to 512 channels with batch normalisation and ReLU, channel dropout
      0.05, a 1x1 convolution to the classes;
    - pixel representations: stage 4 (``C5``) through a 3x3 convolution to 512 channels
      with batch normalisation and ReLU;
    - object region representations (:class:`~keras_sceneparse.layers.SpatialGather`):
      pixel representations averaged under the spatial softmax of each region's coarse
      logits, one region per class;
    - pixel-region relations, object contextual representation and augmented
      representation (:class:`~keras_sceneparse.layers.ObjectContextualRepresentation`):
      query/key transforms of 256 channels, context transformed back to 512, and a
      1x1 conv-BN-ReLU of ``[pixel; context]`` to 512 channels;
    - channel dropout 0.05 and a 1x1 convolution score the classes, bilinearly upsampled to
      the input.

    The model returns ``{"logits": main, "aux": soft object regions}`` with
    ``auxiliary_loss_weights={"aux": 0.4}``; ``predict`` returns the main logits. The
    coarse regions are part of the architecture (the OCR module reads them), so
    ``auxiliary_loss_weight=0`` keeps the head and only drops its loss and output.

    Choices:

    - Backbone: HRNet-W48, the paper's other (and best) backbone, is not available here;
      ``backbone="resnet101"`` (``keras.applications``, 7x7 stem and convolution biases,
      not the reference's deep-stem ResNet; no ImageNet weights offline) dilated to output
      stride 8 as in the paper's ResNet-101 experiments. Any
      :func:`~keras_sceneparse.backbones.list_backbones` name works.
    - Transforms follow the reference code where it details the paper: the query and key
      transforms ``phi`` and ``psi`` are two 1x1 conv-BN-ReLU each (the text says "1x1
      conv -> BN -> ReLU"), relations are scaled by ``256 ** -0.5``, dropout rates 0.05
      (openseg); mmsegmentation's port uses dropout 0.1 and a 256-channel auxiliary head.
    - Sizes: features and soft regions are at 1/8 of the input; the logits are resized to
      the exact input size, so any size works.

    Parameters: the paper reports no whole-model count (it compares the cost of context
    modules on a 2048-channel input, a figure we could not check offline). Ours, by
    ``count_params`` (batch-norm moving statistics included), dilated ResNet-101 at output
    stride 8, asserted by a (slow) test: 19 classes (Cityscapes) 58,026,406 (57,914,406
    trainable); 150 classes (ADE20K) 58,160,812. The head on ``C5`` (3x3 conv-BN-ReLU
    2048 -> 512 and the OCR module with 512/256 channels, without the classifier) holds
    10,628,096 (10,622,464 trainable); a fast test asserts the head's count from its
    formula on a narrow backbone.

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones` (``"resnet101"``).
        weights: ``None`` or ``"imagenet"`` for the backbone.
        output_stride: 8 (the paper) or 16.
        head_filters: channels of the pixel and augmented representations (512).
        key_channels: channels of the query, key and value transforms (256).
        dropout: channel dropout before both classifiers (0.05).
        aux_filters: channels of the soft-object-region head's 3x3 convolution (512).
        auxiliary_loss_weight: weight of the soft object regions' loss (0.4).
        backbone_kwargs: extra ``keras.applications`` arguments (e.g. ``{"alpha": 0.35}``).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = OCRNet(19, backbone="resnet18", backbone_kwargs={"base_filters": 8})
        >>> sorted(model(np.zeros((1, 65, 97, 3), "float32")))
        ['aux', 'logits']
        >>> model.predict(np.zeros((1, 65, 97, 3), "float32"), verbose=0).shape
        (1, 65, 97, 19)
    """

    feature_layer = "object_context"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet101",
        weights=None,
        output_stride=8,
        head_filters=512,
        key_channels=256,
        dropout=0.05,
        aux_filters=512,
        auxiliary_loss_weight=0.4,
        backbone_kwargs=None,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.check_shared_arguments(
            num_classes, input_shape, backbone, output_stride, head_filters, dropout, aux_filters,
            auxiliary_loss_weight,
        )
        key_channels = check_int("key_channels", key_channels, minimum=1)

        # === Layers ===
        gather = SpatialGather(name="spatial_gather")
        object_context = ObjectContextualRepresentation(key_channels, head_filters, name="object_context")

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        features = self.encode(inputs, backbone, weights, output_stride, backbone_kwargs, include_preprocessing)
        # Soft object regions (Sec. 3.3): coarse class scores at the features' resolution.
        y = ConvBNReLU(aux_filters, 3, name="aux_conv")(features["C4"])
        y = keras.layers.SpatialDropout2D(dropout, name="aux_dropout")(y)
        regions = keras.layers.Conv2D(num_classes, 1, name="aux_classifier")(y)
        x = ConvBNReLU(head_filters, 3, name="head_conv")(features["C5"])
        x = object_context(x, gather(x, regions))
        logits = segmentation_head(x, num_classes, inputs, dropout=dropout)
        if auxiliary_loss_weight > 0:
            coarse = ResizeToReference(name="aux_output_upsampling")(regions, inputs)
            outputs = {MAIN_OUTPUT: logits, AUXILIARY_OUTPUT: SegmentationModel.logits_output(coarse, AUXILIARY_OUTPUT)}
            loss_weights = {AUXILIARY_OUTPUT: auxiliary_loss_weight}
        else:
            outputs, loss_weights = logits, None
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
            backbone, output_stride, head_filters, dropout, True, aux_filters, auxiliary_loss_weight, backbone_kwargs
        )
        self.key_channels = key_channels

    def get_config(self):
        config = super().get_config()
        config.pop("aux")
        return {**config, "key_channels": self.key_channels}
