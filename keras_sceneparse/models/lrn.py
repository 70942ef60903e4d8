"""Label Refinement Network (Islam, Naha, Rochan, Bruce and Wang, 2017)."""

import keras

from keras_sceneparse.backbones import Backbone, list_backbones
from keras_sceneparse.layers.gated_refinement import GatedRefinementUnit
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int

#: The VGG layers the coarse-to-fine decoders read, finest (stride 1) to coarsest (stride 32):
#: the last convolution of each block and ``pool5`` (LRN Fig. 2, G-FRNet Fig. 2).
VGG_STAGES = {
    "vgg16": {"conv1": "block1_conv2", "conv2": "block2_conv2", "conv3": "block3_conv3", "conv4": "block4_conv3",
              "conv5": "block5_conv3", "pool5": "block5_pool"},
    "vgg19": {"conv1": "block1_conv2", "conv2": "block2_conv2", "conv3": "block3_conv4", "conv4": "block4_conv4",
              "conv5": "block5_conv4", "pool5": "block5_pool"},
}
PYRAMID_STAGES = ("C1", "C2", "C3", "C4", "C5")


def coarse_to_fine_encoder(backbone, input_shape, weights, backbone_kwargs):
    """The encoder of LRN and G-FRNet and the keys of its stages, finest first.

    VGG returns its five blocks' last convolutions (strides 1 to 16) and ``pool5``
    (stride 32), as in the papers; other backbones return their pyramid ``C1``-``C5``
    (strides 2 to 32), whose finest stage is then at half the input resolution.
    """
    stages = VGG_STAGES.get(backbone)
    encoder = Backbone(
        backbone,
        input_shape=input_shape,
        weights=weights,
        feature_layers=stages,
        application_kwargs=backbone_kwargs,
        name=f"{backbone}_backbone",
    )
    return encoder, tuple(stages) if stages else PYRAMID_STAGES


def stage_output_names(num_stages):
    """``("stage1", ..., "stage{n-1}")``: the auxiliary label maps, coarse to fine."""
    return tuple(f"stage{index}" for index in range(1, num_stages))


@serializable
@register_model("lrn")
class LRN(SegmentationModel):
    """LRN: an encoder-decoder whose decoder refines a label map stage by stage, coarse to fine.

    Islam, Naha, Rochan, Bruce and Wang, "Label Refinement Network for Coarse-to-Fine
    Semantic Segmentation", arXiv 2017, https://arxiv.org/abs/1703.00551 (the basis of
    G-FRNet, :class:`~keras_sceneparse.models.gfrnet.GFRNet`).

    Architecture (Sec. 3, Fig. 2): the encoder is VGG-16's 13 convolutional layers. A
    3x3 convolution on its last feature map (``pool5``, 1/32 of the input) predicts a
    coarse label map ``s_1`` with one channel per class. Each decoder stage ``k`` refines
    the previous label map with the encoder features of the next finer block
    (:class:`~keras_sceneparse.layers.gated_refinement.GatedRefinementUnit`, here used
    ungated: the features go through a 3x3 convolution with batch normalisation and ReLU
    to as many channels as classes, are concatenated with ``s_{k-1}`` upsampled 2x, and a
    3x3 convolution predicts ``s_k``). With VGG the stages read ``conv5_3``, ``conv4_3``,
    ``conv3_3``, ``conv2_2`` and ``conv1_2``: six label maps at 1/32, 1/16, 1/8, 1/4, 1/2
    and full resolution. Every one is supervised by its own cross-entropy with the labels
    resized to its resolution (abstract: "loss functions at several stages"), all with
    weight 1 (we found no other weighting in the paper). The finest map is the model's output.

    Deep supervision uses the base class's auxiliary outputs: in training the model
    returns ``{"logits": finest, "stage1": coarsest, ..., "stage5": ...}`` and
    ``auxiliary_loss_weights`` gives each ``stage`` the weight ``auxiliary_loss_weight``
    (1); ``predict`` returns the finest logits only.

    Choices: the stages (``pool5`` for the coarsest map, then the last convolution of each
    block) are our reading of Fig. 2, not checked against the authors' code. The paper does
    not give the channels of the features fed to each stage; we
    use the number of classes (as G-FRNet states for its refinement units). Bilinear
    upsampling to the exact size of the next stage (instead of a fixed 2x) lets any
    input size work; VGG's pooling floors odd sizes. Other backbones than VGG can be used
    (their pyramid ``C1``-``C5``: five label maps from 1/32 to 1/2, the finest upsampled
    bilinearly to the input); no ImageNet weights offline.

    Parameters: we found no count in the paper. Ours with VGG-16 (batch-norm statistics included;
    asserted by a test): 11 CamVid classes 14,922,280; 21 PASCAL classes 15,129,900
    (VGG-16 14,714,688 of them).

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: ``"vgg16"`` (the paper) or another of
            :func:`~keras_sceneparse.backbones.list_backbones`.
        weights: ``None`` or ``"imagenet"`` for the backbone.
        refinement_filters: channels of each stage's feature projection (``None``: the
            number of classes).
        auxiliary_loss_weight: loss weight of each coarser stage (1, the paper's equal
            weights; 0 disables deep supervision and returns the logits alone).
        backbone_kwargs: extra backbone arguments (e.g. ``{"base_filters": 8}`` for a narrow
            ResNet-18).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = LRN(num_classes=11)
        >>> model.predict(np.zeros((1, 360, 480, 3))).shape
        (1, 360, 480, 11)
    """

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="vgg16",
        weights=None,
        refinement_filters=None,
        auxiliary_loss_weight=1.0,
        backbone_kwargs=None,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("backbone", backbone, list_backbones())
        if refinement_filters is not None:
            refinement_filters = check_int("refinement_filters", refinement_filters, minimum=1)
        auxiliary_loss_weight = check_float("auxiliary_loss_weight", auxiliary_loss_weight, minimum=0.0)

        # === Layers ===
        encoder, stages = coarse_to_fine_encoder(backbone, input_shape, weights, backbone_kwargs)
        coarse_classifier = keras.layers.Conv2D(num_classes, 3, padding="same", name="coarse_classifier")
        refinements = [
            GatedRefinementUnit(num_classes, refinement_filters, name=f"refinement{index}")
            for index in range(1, len(stages))
        ]

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, encoder.normalization, include_preprocessing)
        features = encoder(x)
        label_maps = [coarse_classifier(features[stages[-1]])]
        for refinement, stage in zip(refinements, reversed(stages[:-1])):
            label_maps.append(refinement(features[stage], label_maps[-1]))
        outputs, loss_weights = self.coarse_to_fine_outputs(label_maps, inputs, auxiliary_loss_weight)
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
        self.backbone_name = backbone
        self.refinement_filters = refinement_filters
        self.auxiliary_loss_weight = auxiliary_loss_weight
        self.backbone_kwargs = dict(backbone_kwargs or {})

    @classmethod
    def coarse_to_fine_outputs(cls, label_maps, inputs, auxiliary_loss_weight):
        """The outputs of a coarse-to-fine decoder and their loss weights.

        ``label_maps`` run coarse to fine; the finest, resized to the input, is the main
        output; with a positive weight the others are returned too (each at its own
        resolution, the labels are resized to it) for stage-wise supervision.
        """
        logits = cls.logits_output(ResizeToReference(name="output_upsampling")(label_maps[-1], inputs))
        if not auxiliary_loss_weight:
            return logits, None
        names = stage_output_names(len(label_maps))
        outputs = {"logits": logits}
        for name, label_map in zip(names, label_maps[:-1]):
            outputs[name] = cls.logits_output(label_map, name=name)
        return outputs, dict.fromkeys(names, auxiliary_loss_weight)

    def get_config(self):
        return {
            **self.base_config(),
            "backbone": self.backbone_name,
            "weights": None,
            "refinement_filters": self.refinement_filters,
            "auxiliary_loss_weight": self.auxiliary_loss_weight,
            "backbone_kwargs": self.backbone_kwargs,
        }
