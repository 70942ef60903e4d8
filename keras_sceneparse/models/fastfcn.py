"""FastFCN: an undilated backbone with joint pyramid upsampling (Wu, Zhang, Huang, Liang and Yu, 2019)."""

import keras

from keras_sceneparse.backbones.backbone import Backbone
from keras_sceneparse.layers.joint_pyramid_upsampling import JointPyramidUpsampling
from keras_sceneparse.models.encnet import (
    EncodingSegmentationModel,
    check_encoding_arguments,
)
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


@serializable
@register_model("fastfcn")
class FastFCN(EncodingSegmentationModel):
    """FastFCN: EncNet on a plain (stride-32) ResNet whose stride-8 features come from JPU.

    Wu, Zhang, Huang, Liang and Yu, "FastFCN: Rethinking Dilated Convolution in the
    Backbone for Semantic Segmentation", 2019, https://arxiv.org/abs/1903.11816 (reference
    code: wuhuikai/FastFCN, built on PyTorch-Encoding).

    Architecture (Sec. 3, Fig. 2): the backbone keeps its strides (output stride 32, no
    dilated convolutions: the expensive part of DilatedFCN); the
    :class:`~keras_sceneparse.layers.JointPyramidUpsampling` module takes ``C3``, ``C4``
    and ``C5`` and produces 2048-channel features at stride 8 (Sec. 3.3, Fig. 4), which a
    segmentation head of DilatedFCN reads unchanged. The paper evaluates JPU under FCN,
    PSPNet and EncNet heads and reports its main results with EncNet (Sec. 4); this
    model uses the EncNet head (:func:`~keras_sceneparse.models.encnet.encoding_head`: 3x3
    convolution to 512, context encoding with 32 codewords, classifier; the semantic
    encoding loss with weight 0.2) and the FCN auxiliary head on ``C4`` (stride 16 here,
    256 channels, weight 0.2), as the reference code's ``encnet`` with ``--jpu``.
    Outputs: ``{"logits", "se", "aux"}``; ``predict`` returns the logits.

    Choices:

    - Backbone: ``keras.applications``' ResNet-101 at output stride 32 (7x7 stem and
      convolution biases; the reference uses a deep-stem ResNet), no ImageNet weights
      offline. ResNet-50 is the paper's other backbone; any
      :func:`~keras_sceneparse.backbones.list_backbones` name works.
    - The head is EncNet's; for a PSPNet head compose
      :class:`~keras_sceneparse.layers.JointPyramidUpsampling` with
      :class:`~keras_sceneparse.layers.PyramidPoolingModule` (not registered).
    - Sizes: JPU upsamples ``C4`` and ``C5`` to the exact size of ``C3`` and the logits are
      resized to the input, so any size works.

    Parameters: the paper reports speed, not counts. Ours, by ``count_params`` (batch-norm
    statistics included), ResNet-101 with the auxiliary and SE heads, asserted by a (slow)
    test: 21 classes 74,783,071 (74,655,647 trainable); 59 classes 74,831,825; 150 classes
    74,948,578: exactly EncNet's count plus JPU's, since undilating the backbone changes no
    weight. JPU with 512 channels on ResNet's ``C3``/``C4``/``C5`` (512/1024/2048 channels)
    holds 19,755,008 (asserted from its formula); it outputs 2048 channels like the
    dilated ``C5``, so the head is EncNet's unchanged.

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones` (``"resnet101"``).
        weights: ``None`` or ``"imagenet"`` for the backbone.
        jpu_filters: channels of JPU's reductions and of each dilated branch (512).
        dilation_rates: JPU's separable convolution rates (1, 2, 4, 8).
        head_filters: channels of the encoding head (512).
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
        >>> model = FastFCN(21, backbone="resnet18", backbone_kwargs={"base_filters": 8}, jpu_filters=32)
        >>> model.predict(np.zeros((1, 65, 97, 3), "float32"), verbose=0).shape
        (1, 65, 97, 21)
    """

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet101",
        weights=None,
        jpu_filters=512,
        dilation_rates=(1, 2, 4, 8),
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
            num_classes, input_shape, backbone, 8, head_filters, dropout, aux_filters, auxiliary_loss_weight
        )
        jpu_filters = check_int("jpu_filters", jpu_filters, minimum=1)
        num_codewords, se_loss_weight, ignore_class = check_encoding_arguments(
            num_codewords, se_loss_weight, ignore_class
        )
        residual = bool(residual)

        # === Layers ===
        encoder = Backbone(
            backbone,
            input_shape=input_shape,
            weights=weights,
            output_stride=32,
            application_kwargs=backbone_kwargs,
            name=f"{backbone}_backbone",
        )
        jpu = JointPyramidUpsampling(jpu_filters, dilation_rates, name="joint_pyramid_upsampling")

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, encoder.normalization, include_preprocessing)
        features = encoder(x)
        x = jpu(features["C3"], features["C4"], features["C5"])
        outputs, loss_weights, losses = self.build_outputs(
            x, features["C4"], inputs, num_classes, head_filters, num_codewords, dropout, aux, aux_filters,
            auxiliary_loss_weight, se_loss_weight, ignore_class, residual,
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
            backbone, 32, head_filters, dropout, bool(aux), aux_filters, auxiliary_loss_weight, backbone_kwargs
        )
        self.store_encoding_config(num_codewords, se_loss_weight, ignore_class, residual)
        self.jpu_filters = jpu_filters
        self.dilation_rates = jpu.dilation_rates

    def get_config(self):
        config = super().get_config()
        config.pop("output_stride")
        return {**config, "jpu_filters": self.jpu_filters, "dilation_rates": self.dilation_rates}
