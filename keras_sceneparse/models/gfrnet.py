"""Gated Feedback Refinement Network (Islam, Rochan, Bruce and Wang, CVPR 2017)."""

import keras

from keras_sceneparse.backbones import list_backbones
from keras_sceneparse.layers.gated_refinement import GatedRefinementUnit, GateUnit
from keras_sceneparse.models.lrn import LRN, coarse_to_fine_encoder
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int


@serializable
@register_model("gfrnet")
class GFRNet(SegmentationModel):
    """G-FRNet: LRN's coarse-to-fine decoder fed by skip features gated by the deeper stage.

    Islam, Rochan, Bruce and Wang, "Gated Feedback Refinement Network for Dense Image
    Labeling", CVPR 2017 (http://www.cs.umanitoba.ca/~ywang/papers/cvpr17.pdf; extended
    in https://arxiv.org/abs/1806.11266). It builds on LRN
    (:class:`~keras_sceneparse.models.lrn.LRN`).

    Architecture (Sec. 3; Fig. 2 the network, Fig. 3 the gate unit, Fig. 4 the gated
    refinement unit): the encoder is VGG-16's 13 convolutional layers. A
    3x3 convolution on ``pool5`` (1/32) predicts the coarse label map ``P_m^G``. Five gate
    units (:class:`~keras_sceneparse.layers.gated_refinement.GateUnit`) each combine two
    adjacent encoder stages, ``(conv5_3, pool5)``, ``(conv4_3, conv5_3)``, ``(conv3_3,
    conv4_3)``, ``(conv2_2, conv3_3)``, ``(conv1_2, conv2_2)``: both go through a 3x3
    convolution, batch normalisation and ReLU, the deeper is upsampled and the two are
    multiplied element-wise, so the deeper, more discriminative stage decides what the
    shallower one passes on. Five gated refinement units
    (:class:`~keras_sceneparse.layers.gated_refinement.GatedRefinementUnit`)
    each project their gate's output to as many channels as classes, concatenate the
    previous label map upsampled 2x, and predict the next label map with a 3x3
    convolution, at 1/16, 1/8, 1/4, 1/2 and full resolution. Every label map, ``P_m^G``
    included, is supervised by a cross-entropy against the labels resized to its size, with
    equal weights ("stage-wise supervision"); the finest is the output.

    Deep supervision uses the base class's auxiliary outputs: in training the model returns
    ``{"logits": finest, "stage1": P_m^G, ..., "stage5": ...}``; ``predict`` returns the
    finest logits only.

    Choices: the stage pairing above and the coarse map from ``pool5`` are our reading of
    Fig. 2, not checked against the authors' code. The gates' convolutions have as many
    channels as the shallower stage (the paper matches the two stages' channels without
    naming the figure); upsampling goes to
    the exact size of the next stage, so any input size works. Backbones other than VGG use
    their pyramid ``C1``-``C5`` (four gates; the finest map at 1/2 is upsampled bilinearly to
    the input). No ImageNet weights offline.

    Parameters: we found no figure for the whole network in the paper. Ours with VGG-16
    (batch-norm statistics included; asserted by a test): 11 CamVid classes 26,693,672;
    21 PASCAL classes 26,901,292 (VGG-16 14,714,688 of them, the five gates 11,771,392).

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: ``"vgg16"`` (the paper) or another of
            :func:`~keras_sceneparse.backbones.list_backbones`.
        weights: ``None`` or ``"imagenet"`` for the backbone.
        gate_filters: channels of every gate unit; ``None`` (the default) uses the channels
            of each gate's shallower stage.
        refinement_filters: channels of each refinement unit's feature projection
            (``None``: the number of classes).
        auxiliary_loss_weight: loss weight of each coarser label map (1, equal weights; 0
            returns the logits alone).
        backbone_kwargs: extra backbone arguments (e.g. ``{"base_filters": 8}``).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = GFRNet(num_classes=11)
        >>> model.predict(np.zeros((1, 360, 480, 3))).shape
        (1, 360, 480, 11)
    """

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="vgg16",
        weights=None,
        gate_filters=None,
        refinement_filters=None,
        auxiliary_loss_weight=1.0,
        backbone_kwargs=None,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("backbone", backbone, list_backbones())
        if gate_filters is not None:
            gate_filters = check_int("gate_filters", gate_filters, minimum=1)
        if refinement_filters is not None:
            refinement_filters = check_int("refinement_filters", refinement_filters, minimum=1)
        auxiliary_loss_weight = check_float("auxiliary_loss_weight", auxiliary_loss_weight, minimum=0.0)

        # === Layers ===
        encoder, stages = coarse_to_fine_encoder(backbone, input_shape, weights, backbone_kwargs)
        channels = encoder.pyramid_channels
        coarse_classifier = keras.layers.Conv2D(num_classes, 3, padding="same", name="coarse_classifier")
        # Gate and refinement unit k serve the k-th stage from the top (G1/RU1 next to pool5).
        shallow_stages = tuple(reversed(stages[:-1]))
        gates = [
            GateUnit(gate_filters or channels[stage], name=f"gate{index}")
            for index, stage in enumerate(shallow_stages, start=1)
        ]
        refinements = [
            GatedRefinementUnit(num_classes, refinement_filters, name=f"refinement{index}")
            for index in range(1, len(stages))
        ]

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, encoder.normalization, include_preprocessing)
        features = encoder(x)
        label_maps = [coarse_classifier(features[stages[-1]])]
        deeper = stages[-1]
        for gate, refinement, stage in zip(gates, refinements, shallow_stages):
            gated = gate(features[stage], features[deeper])
            label_maps.append(refinement(gated, label_maps[-1]))
            deeper = stage
        outputs, loss_weights = LRN.coarse_to_fine_outputs(label_maps, inputs, auxiliary_loss_weight)
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
        self.gate_filters = gate_filters
        self.refinement_filters = refinement_filters
        self.auxiliary_loss_weight = auxiliary_loss_weight
        self.backbone_kwargs = dict(backbone_kwargs or {})

    def get_config(self):
        return {
            **self.base_config(),
            "backbone": self.backbone_name,
            "weights": None,
            "gate_filters": self.gate_filters,
            "refinement_filters": self.refinement_filters,
            "auxiliary_loss_weight": self.auxiliary_loss_weight,
            "backbone_kwargs": self.backbone_kwargs,
        }
