"""PSPNet (Zhao, Shi, Qi, Wang and Jia, CVPR 2017)."""

import keras

from keras_sceneparse.backbones.backbone import Backbone, list_backbones
from keras_sceneparse.layers.pyramid_pooling import PyramidPoolingModule
from keras_sceneparse.models.heads import AUXILIARY_OUTPUT, segmentation_head
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import MAIN_OUTPUT, SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int


@serializable
@register_model("pspnet")
class PSPNet(SegmentationModel):
    """PSPNet: a dilated ResNet whose last features are enriched by pyramid pooling of context.

    Zhao, Shi, Qi, Wang and Jia, "Pyramid Scene Parsing Network", CVPR 2017,
    https://arxiv.org/abs/1612.01105 (reference code: hszhao/PSPNet in Caffe, hszhao/semseg
    in PyTorch).

    Architecture (Sec. 3.3, Fig. 3): a ResNet with dilated convolutions in its last two
    stages ("pretrained ResNet model with the dilated network strategy", Sec. 3.3) gives
    features at 1/8 of the input. The
    :class:`~keras_sceneparse.layers.PyramidPoolingModule` pools them into 1x1, 2x2, 3x3
    and 6x6 bins, reduces each level to 1/4 of the channels with a 1x1 convolution,
    upsamples the levels bilinearly and concatenates them with the features. As in the
    reference models, a 3x3 convolution of 512 channels with batch normalisation and ReLU,
    dropout 0.1 and a 1x1 convolution then score the classes, bilinearly upsampled to the
    input (Fig. 3(d)).

    Deep supervision (Sec. 4, Fig. 4): an auxiliary loss on ``res4b22`` (ResNet-101's last
    block at stride 16: the backbone's ``C4``) with weight 0.4 "helps optimize the learning
    process". Its head follows the reference code: a 3x3 convolution of 256 channels with
    batch normalisation and ReLU, dropout 0.1, a 1x1 convolution to the classes, upsampled
    to the input. The model then returns ``{"logits": main, "aux": auxiliary}`` with
    ``auxiliary_loss_weights={"aux": 0.4}``; ``fit`` weights the auxiliary loss in and
    ``predict`` returns the main logits only (:class:`SegmentationModel`). The paper drops
    the auxiliary branch in testing; ``aux=False`` builds the network without it.

    Choices:

    - Backbone: keras.applications' ResNet has the original 7x7 stem, not the stem of
      three 3x3 convolutions (64, 64, 128 channels) of the reference's modified
      ResNet-50/101, and its convolutions have biases: ``backbone="resnet50"`` is PSPNet on
      the ResNet that Keras ships (ImageNet weights optional). Any
      :func:`~keras_sceneparse.backbones.list_backbones` name works, e.g.
      ``"mobilenet_v2"``: its ``C4`` feeds the auxiliary head and its ``C5`` the pyramid.
      Dilation is :class:`~keras_sceneparse.backbones.Backbone`'s ``output_stride`` (8 as
      in the paper; 16 divides the cost of the head by 4).
    - Cost: the 3x3 head convolution reads ``2 C`` channels at 1/8 of the input; on
      MobileNetV2 (``C5`` = 1280 channels) it is ~12 GMACs of a 256x256 image's ~16, and
      a training step takes about 4 times DeepLabV3+'s on the same backbone. Smaller
      ``head_filters`` or ``output_stride=16`` make it lighter.
    - Sizes: the reference assumes inputs of ``8k + 1`` pixels and upsamples the logits
      corner-aligned; we resize them to the exact input size with half-pixel centres (as
      mmsegmentation does), so any size works. The pyramid levels are upsampled
      corner-aligned, as in the reference. Adaptive bins follow PyTorch's edges; the Caffe
      model's fixed windows are the same on its 60x60 maps.
    - Dropout is element-wise, as the Caffe model's ``Dropout`` layer (semseg and
      mmsegmentation drop whole channels).

    Parameters: the paper gives none. mmsegmentation's PSPNet R-50-D8 (the reference's
    deep stem, no auxiliary head, 21 classes) is listed with 46.5827 M in OpenVINO's model
    zoo (``pspnet-pytorch``, counted on the exported graph, where each batch norm is folded
    into a per-channel bias). Ours, by ``count_params`` (batch-norm moving statistics
    included), at output stride 8, asserted by a test:

    ==========  =======  ===================  ===================
    backbone    classes  with auxiliary head  without (inference)
    ==========  =======  ===================  ===================
    ResNet-50   150      49,142,444           46,743,574
    ResNet-50   21       49,043,114           46,677,397
    ResNet-101  150      68,212,908           65,814,038
    ResNet-101  21       68,113,578           65,747,861
    ==========  =======  ===================  ===================

    Counted as OpenVINO counts (batch norms and Keras' convolution biases folded into one
    bias per channel), ours for ResNet-50, 21 classes, without the auxiliary head has
    46,563,477, 0.04% below 46.5827 M; the deep stem's 19,104 extra weights and 64 extra
    channels account for the difference. On MobileNetV2 with 12 classes (CamVid): 17,037,400
    with the auxiliary head.

    Args:
        num_classes: number of classes (150 for ADE20K, 21 for PASCAL VOC in the paper).
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones`.
        weights: ``None`` or ``"imagenet"`` for the backbone.
        output_stride: 8 (the paper) or 16.
        bins: pyramid levels of the pyramid pooling module.
        pyramid_filters: channels of each pyramid level; ``None`` gives the backbone's
            ``C5`` channels divided by the number of levels (512 for ResNet).
        head_filters: channels of the 3x3 convolution after the pyramid (512).
        dropout: dropout rate before both classifiers (0.1).
        aux: build the auxiliary head for deep supervision.
        aux_filters: channels of the auxiliary head's 3x3 convolution (256).
        auxiliary_loss_weight: weight of the auxiliary loss (0.4); 0 builds no auxiliary
            head, like ``aux=False``.
        backbone_kwargs: extra ``keras.applications`` arguments (e.g. ``{"alpha": 0.35}``).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = PSPNet(num_classes=12, backbone="mobilenet_v2")
        >>> sorted(model(np.zeros((1, 64, 80, 3)), training=True))
        ['aux', 'logits']
        >>> model.predict(np.zeros((1, 64, 80, 3)), verbose=0).shape  # main logits only
        (1, 64, 80, 12)
    """

    feature_layer = "head_conv"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet50",
        weights=None,
        output_stride=8,
        bins=(1, 2, 3, 6),
        pyramid_filters=None,
        head_filters=512,
        dropout=0.1,
        aux=True,
        aux_filters=256,
        auxiliary_loss_weight=0.4,
        backbone_kwargs=None,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("backbone", backbone, list_backbones())
        output_stride = check_choice("output_stride", output_stride, {8, 16})
        bins = tuple(check_int("bins[i]", size, minimum=1) for size in bins)
        if pyramid_filters is not None:
            pyramid_filters = check_int("pyramid_filters", pyramid_filters, minimum=1)
        head_filters = check_int("head_filters", head_filters, minimum=1)
        dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)
        aux = bool(aux)
        aux_filters = check_int("aux_filters", aux_filters, minimum=1)
        auxiliary_loss_weight = check_float("auxiliary_loss_weight", auxiliary_loss_weight, minimum=0.0)
        with_aux = aux and auxiliary_loss_weight > 0

        # === Layers ===
        encoder = Backbone(
            backbone,
            input_shape=input_shape,
            weights=weights,
            output_stride=output_stride,
            application_kwargs=backbone_kwargs,
            name=f"{backbone}_backbone",
        )
        pyramid = PyramidPoolingModule(bins, filters=pyramid_filters, name="pyramid_pooling")

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, encoder.normalization, include_preprocessing)
        features = encoder(x)
        x = pyramid(features["C5"])
        # Element-wise dropout (Choices).
        outputs = segmentation_head(x, num_classes, inputs, head_filters, dropout, channel_dropout=False)
        auxiliary_loss_weights = None
        if with_aux:
            auxiliary = segmentation_head(
                features["C4"], num_classes, inputs, aux_filters, dropout, channel_dropout=False,
                name=AUXILIARY_OUTPUT,
            )
            outputs = {MAIN_OUTPUT: outputs, AUXILIARY_OUTPUT: auxiliary}
            auxiliary_loss_weights = {AUXILIARY_OUTPUT: auxiliary_loss_weight}
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            num_classes=num_classes,
            image_shape=input_shape,
            include_preprocessing=include_preprocessing,
            auxiliary_loss_weights=auxiliary_loss_weights,
            **kwargs,
        )

        # === Config ===
        self.backbone_name = backbone
        self.output_stride = output_stride
        self.bins = bins
        self.pyramid_filters = pyramid_filters
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
            "bins": self.bins,
            "pyramid_filters": self.pyramid_filters,
            "head_filters": self.head_filters,
            "dropout": self.dropout,
            "aux": self.aux,
            "aux_filters": self.aux_filters,
            "auxiliary_loss_weight": self.auxiliary_loss_weight,
            "backbone_kwargs": self.backbone_kwargs,
        }
