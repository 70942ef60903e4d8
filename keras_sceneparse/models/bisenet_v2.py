"""BiSeNet V2 (Yu, Gao, Wang, Yu, Shen and Sang, IJCV 2021)."""

import keras

from keras_sceneparse.layers.bisenet_blocks import (
    BilateralGuidedAggregation,
    ContextEmbedding,
    GatherExpansion,
    StemBlock,
)
from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.models.heads import segmentation_head
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import MAIN_OUTPUT, SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int

#: Booster outputs (Sec. 4.4, Fig. 7): segmentation heads on these semantic-branch stages.
BOOSTER_OUTPUTS = ("semantic_s2", "semantic_s3", "semantic_s4", "semantic_s5_4")


@serializable
@register_model("bisenet_v2")
class BiSeNetV2(SegmentationModel):
    """BiSeNet V2: a wide, shallow detail branch and a narrow, deep semantic branch, aggregated
    with mutual guidance; trained with booster heads that cost nothing at inference.

    Yu, Gao, Wang, Yu, Shen and Sang, "BiSeNet V2: Bilateral Network with Guided Aggregation
    for Real-time Semantic Segmentation", IJCV 2021, https://arxiv.org/abs/2004.02147
    (reference code: CoinCheung/BiSeNet).

    Architecture (Sec. 4, Table 1, Fig. 3):

    - Detail branch (Sec. 4.1, Table 1): stages S1-S3 of 3x3 convolutions with BN and ReLU,
      the first of each with stride 2: S1 64, 64; S2 64, 64, 64; S3 128, 128, 128 (1/8).
    - Semantic branch (Sec. 4.2, Table 1), ``lambda = 1/4`` of the detail widths: a
      :class:`~keras_sceneparse.layers.StemBlock` (16 channels, 1/4: S1-S2); S3 and S4 a
      stride-2 and a stride-1 :class:`~keras_sceneparse.layers.GatherExpansion` (32, 64);
      S5 a stride-2 and three stride-1 GE layers (128) then a
      :class:`~keras_sceneparse.layers.ContextEmbedding` (1/32). Expansion ratio 6.
    - :class:`~keras_sceneparse.layers.BilateralGuidedAggregation` (Sec. 4.3, Fig. 6) fuses
      the branches at 1/8 (128 channels); the segmentation head (Fig. 7: 3x3 conv-BN-ReLU to
      ``C_t`` = 1024 channels, dropout, 1x1 classifier) is upsampled bilinearly to the input.

    Booster training (Sec. 4.4): segmentation heads on the semantic branch's S2, S3, S4 and
    S5_4 (the last GE layer before the context embedding), each with its own loss of weight
    1 (Eq. 1). The model returns ``{"logits": main, "semantic_s2": ..., "semantic_s3": ...,
    "semantic_s4": ..., "semantic_s5_4": ...}``, all at the input size, with
    ``auxiliary_loss_weights`` 1.0 each; ``fit`` adds them and ``predict`` returns the main
    logits only. ``booster=False`` builds the inference network alone.

    Choices: the booster heads have 128 channels and dropout 0.1 as the main head (the
    reference code's heads also upsample 2x and add a further convolution before their
    classifier, which the paper does not describe). Strided convolutions use "same"
    padding (PyTorch pads symmetrically): the maps are ``ceil(size / stride)``, and every
    upsampling resizes to the exact finer size, so any input size works. The BGA's
    upsampling is bilinear (the reference upsamples nearest). No ImageNet pretraining: the
    network is trained from scratch, as in the paper.

    Parameters: the paper reports FLOPs and speed, not parameters. Ours (19 classes, with
    batch-norm statistics; asserted by a test): 3,375,955 for the inference network and
    3,664,287 with the four booster heads.

    Args:
        num_classes: number of classes (19 for Cityscapes in the paper).
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        weights: ``None`` only: no pretrained weights exist for this network here.
        detail_filters: channels of the detail branch's stages S1-S3 ((64, 64, 128)).
        semantic_filters: channels of the stem and of stages S3-S5 ((16, 32, 64, 128)).
        expansion: expansion ratio of the GE layers (6).
        aggregation_filters: channels of the aggregation layer (128).
        head_filters: channels ``C_t`` of the segmentation head (1024).
        booster: build the four booster heads for training.
        booster_filters: channels of the booster heads' 3x3 convolution (128).
        booster_loss_weight: weight of each booster loss (1.0).
        dropout: dropout before every classifier (0.1).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs with ImageNet statistics.

    Example:
        >>> model = BiSeNetV2(num_classes=19)
        >>> model.compile("adam", loss=ksp.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> model.fit(images, labels)  # main loss + 4 booster losses
        >>> model.predict(images).shape
        (batch, height, width, 19)
    """

    feature_layer = "head_conv"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        weights=None,
        detail_filters=(64, 64, 128),
        semantic_filters=(16, 32, 64, 128),
        expansion=6,
        aggregation_filters=128,
        head_filters=1024,
        booster=True,
        booster_filters=128,
        booster_loss_weight=1.0,
        dropout=0.1,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("weights", weights, {None})
        detail_filters = tuple(check_int("detail_filters[i]", value, minimum=1) for value in detail_filters)
        semantic_filters = tuple(check_int("semantic_filters[i]", value, minimum=2) for value in semantic_filters)
        if len(detail_filters) != 3:
            raise ValueError(f"`detail_filters` must give 3 stages (S1-S3), got {detail_filters!r}.")
        if len(semantic_filters) != 4:
            raise ValueError(f"`semantic_filters` must give 4 widths (stem, S3, S4, S5), got {semantic_filters!r}.")
        expansion = check_int("expansion", expansion, minimum=1)
        aggregation_filters = check_int("aggregation_filters", aggregation_filters, minimum=1)
        head_filters = check_int("head_filters", head_filters, minimum=1)
        booster = bool(booster)
        booster_filters = check_int("booster_filters", booster_filters, minimum=1)
        booster_loss_weight = check_float("booster_loss_weight", booster_loss_weight, minimum=0.0)
        dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)
        normalization = "imagenet" if input_shape[2] == 3 else "tf"

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, normalization, include_preprocessing)

        # Detail branch (Table 1): conv layers per stage 2, 3, 3; the first of each strided.
        detail = x
        for stage, (filters, layers) in enumerate(zip(detail_filters, (2, 3, 3)), start=1):
            for index in range(layers):
                detail = ConvBNReLU(
                    filters, 3, strides=2 if index == 0 else 1, name=f"detail_s{stage}_conv{index + 1}"
                )(detail)

        # Semantic branch (Table 1).
        semantic = StemBlock(semantic_filters[0], name="semantic_stem")(x)
        boosted = {"semantic_s2": semantic}
        for stage, (filters, repeats) in enumerate(zip(semantic_filters[1:], (1, 1, 3)), start=3):
            semantic = GatherExpansion(filters, strides=2, expansion=expansion, name=f"semantic_s{stage}_ge1")(semantic)
            for index in range(repeats):
                semantic = GatherExpansion(filters, expansion=expansion, name=f"semantic_s{stage}_ge{index + 2}")(
                    semantic
                )
            boosted[f"semantic_s{stage}" if stage < 5 else "semantic_s5_4"] = semantic
        semantic = ContextEmbedding(name="semantic_context_embedding")(semantic)

        # Aggregation and head.
        x = BilateralGuidedAggregation(aggregation_filters, name="aggregation")(detail, semantic)
        # Segmentation heads (Sec. 4.4, Fig. 7): 3x3 conv-BN-ReLU, dropout, 1x1 classifier, upsampling.
        outputs = segmentation_head(x, num_classes, inputs, head_filters, dropout, channel_dropout=False)

        auxiliary_loss_weights = None
        if booster:
            outputs = {MAIN_OUTPUT: outputs}
            for key in BOOSTER_OUTPUTS:
                outputs[key] = segmentation_head(
                    boosted[key], num_classes, inputs, booster_filters, dropout, channel_dropout=False, name=key
                )
            auxiliary_loss_weights = {key: booster_loss_weight for key in BOOSTER_OUTPUTS}
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
        self.detail_filters = detail_filters
        self.semantic_filters = semantic_filters
        self.expansion = expansion
        self.aggregation_filters = aggregation_filters
        self.head_filters = head_filters
        self.booster = booster
        self.booster_filters = booster_filters
        self.booster_loss_weight = booster_loss_weight
        self.dropout = dropout

    def get_config(self):
        return {
            **self.base_config(),
            "weights": None,
            "detail_filters": self.detail_filters,
            "semantic_filters": self.semantic_filters,
            "expansion": self.expansion,
            "aggregation_filters": self.aggregation_filters,
            "head_filters": self.head_filters,
            "booster": self.booster,
            "booster_filters": self.booster_filters,
            "booster_loss_weight": self.booster_loss_weight,
            "dropout": self.dropout,
        }
