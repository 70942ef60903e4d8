"""Non-local network for segmentation (Wang, Girshick, Gupta and He, CVPR 2018)."""

import keras

from keras_sceneparse.layers.non_local import NonLocalBlock
from keras_sceneparse.models.attention_head import AttentionSegmentationModel, attention_head
from keras_sceneparse.models.heads import segmentation_head
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


@serializable
@register_model("nonlocal_net")
class NonLocalNet(AttentionSegmentationModel):
    """Non-local network: a dilated ResNet whose head relates every position to every other.

    Wang, Girshick, Gupta and He, "Non-local Neural Networks", CVPR 2018,
    https://arxiv.org/abs/1711.07971.

    Architecture: the paper defines the non-local block (Sec. 3, Fig. 2;
    :class:`~keras_sceneparse.layers.NonLocalBlock`, embedded Gaussian, ``C/2`` embeddings,
    zero-initialised output batch norm) and evaluates it on video classification and COCO
    detection, not on semantic segmentation; it gives no segmentation head. The head here
    is mmsegmentation's ``NLHead`` (``configs/_base_/models/nonlocal_r50-d8.py``), the
    common "dilated ResNet + attention head" of the segmentation papers that compare with
    it (DANet, CCNet): a ResNet dilated to output stride 8; ``C5`` reduced to 512 channels by
    a 3x3 convolution with batch norm and ReLU; one non-local block; a 3x3 convolution;
    concatenation with ``C5`` and a fusing 3x3 convolution; dropout 0.1 and a 1x1
    classifier, upsampled bilinearly to the input. An FCN auxiliary head on ``C4``
    (3x3 convolution to 256 channels, dropout, classifier) is trained with loss weight 0.4.

    Choices: energies scaled by ``1 / sqrt(256)`` (``use_scale=True``, mmsegmentation's
    setting; the paper's Eq. 2 has no scale: set ``use_scale=False``); no sub-sampling
    (``sub_sample=False``, mmsegmentation's default; the paper's Sec. 3.3 trick is
    available). ResNets come from ``keras.applications`` (a 7x7 stem, biases in the
    convolutions), not mmsegmentation's ResNet-V1c (three 3x3 stem convolutions), so the
    backbone counts differ slightly; no ImageNet weights are downloaded unless
    ``weights="imagenet"``.

    Parameters: neither the paper nor mmsegmentation reports a count for the segmentation
    model. Ours, 19 classes (Cityscapes), output stride 8, with the auxiliary head
    (``count_params``, batch-norm moving statistics included; asserted by a test):
    ResNet-101 69,159,334; ResNet-50 50,088,870 (69,049,382 and 50,031,142 trainable).
    Counting the layer shapes of mmsegmentation's ``nonlocal_r{101,50}-d8`` configurations
    (ResNet-V1c backbone, trainable parameters as PyTorch counts them) gives 69,015,942 and
    50,023,814: ours are 0.05% and 0.015% larger, because Keras' ResNets have a 7x7 stem and
    biases in their convolutions. The head (everything but the backbone), 26,501,158, equals
    the sum of mmsegmentation's NLHead and FCNHead layer shapes (also asserted).

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones` (``"resnet101"``
            in the paper's comparisons).
        weights: ``None`` or ``"imagenet"`` for the backbone.
        output_stride: 8 (default) or 16.
        head_filters: channels of the head convolutions (512).
        reduction: the non-local embeddings have ``head_filters // reduction`` channels (2).
        use_scale: scale the energies by ``1 / sqrt(embedding channels)``.
        sub_sample: 2x2 max pooling of ``phi`` and ``g`` (Sec. 3.3).
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
        >>> model = NonLocalNet(19, backbone="mobilenet_v2", head_filters=64, aux=False)
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
        reduction=2,
        use_scale=True,
        sub_sample=False,
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
        reduction = check_int("reduction", reduction, minimum=1)

        # === Layers ===
        non_local = NonLocalBlock(reduction=reduction, use_scale=use_scale, sub_sample=sub_sample, name="non_local")

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        features = self.encode(inputs, backbone, weights, output_stride, backbone_kwargs, include_preprocessing)
        x = attention_head(features["C5"], non_local, head_filters, concat_input)
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
        self.reduction = reduction
        self.use_scale = bool(use_scale)
        self.sub_sample = bool(sub_sample)
        self.concat_input = bool(concat_input)
        if not self.concat_input:
            self.feature_layer = "head_refinement"

    def get_config(self):
        return {
            **super().get_config(),
            "reduction": self.reduction,
            "use_scale": self.use_scale,
            "sub_sample": self.sub_sample,
            "concat_input": self.concat_input,
        }
