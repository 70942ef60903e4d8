"""DFANet (Li, Xiong, Fan and Sun, CVPR 2019)."""

import keras

from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.layers.dfanet_blocks import (
    BOTTLENECK_RATIO,
    FCAttention,
    XceptionAStage,
)
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_int

#: Table 1: output channels of conv1 and of the stages enc2, enc3, enc4 of backbones A and B.
VARIANTS = {
    "A": {"stem_filters": 8, "stage_filters": (48, 96, 192)},
    "B": {"stem_filters": 8, "stage_filters": (32, 64, 128)},
}
#: Table 1: blocks in enc2, enc3, enc4 (both backbones).
STAGE_BLOCKS = (4, 6, 4)
#: Backbones in the aggregation (Sec. 3.3, Fig. 2).
NUM_BACKBONES = 3


@serializable
@register_model("dfanet", variant="A")
@register_model("dfanet_b", variant="B")
class DFANet(SegmentationModel):
    """DFANet: three light Xception backbones, each refining the previous one's output, with
    features aggregated across backbones at every stage.

    Li, Xiong, Fan and Sun, "DFANet: Deep Feature Aggregation for Real-time Semantic
    Segmentation", CVPR 2019, https://arxiv.org/abs/1904.02216. The authors released no code.

    Architecture (Sec. 3.3, Table 1, Fig. 2, 3):

    - Backbone (Table 1, "backbone A"): a modified Xception. ``conv1`` is a 3x3 stride-2
      convolution to 8 channels (BN, ReLU); the stages ``enc2``, ``enc3``, ``enc4``
      (:class:`~keras_sceneparse.layers.XceptionAStage`) have 4, 6 and 4 blocks of 48, 96
      and 192 channels (backbone B: 32, 64, 128), each block
      (:class:`~keras_sceneparse.layers.XceptionABlock`) three 3x3 depthwise-separable
      convolutions (``C/4``, ``C/4``, ``C``) with a residual connection, the first block of
      each stage with stride 2. The :class:`~keras_sceneparse.layers.FCAttention` on
      ``enc4`` pools globally, applies a fully-connected layer of 1000 units (the ImageNet
      classifier the backbone is pretrained with) and a 1x1 convolution back to 192
      channels, and multiplies the result onto ``enc4``'s features.
    - Sub-network aggregation (Sec. 3.2, Fig. 2): the fc-attention output of a backbone
      (stride 16 in the first) is upsampled 4x and becomes the input of the next backbone,
      which therefore starts at its ``enc2`` (no ``conv1``); each later backbone works at
      half the resolution of the previous one (``enc2`` at 1/4, 1/8, 1/16).
    - Sub-stage aggregation (Sec. 3.2, Fig. 2): each stage of a later backbone takes the
      concatenation of its own input and the output of the same stage of the previous
      backbone, which has the same resolution: ``x_i^n = enc_i^n([x_{i-1}^n, x_i^{n-1}])``.
      Backbone 2 and 3's ``enc2``, ``enc3``, ``enc4`` thus see 240, 144 and 288 input
      channels (backbone A).
    - Decoder (Sec. 3.3, Fig. 3), 32 channels: the three ``enc2`` outputs are reduced by
      1x1 convolutions, upsampled to the first one (1/4; x1, x2, x4), summed and fused by a
      1x1 convolution; the three fc-attention outputs are reduced to 32 channels, upsampled
      to 1/4 (x4, x8, x16) and added; a 1x1 classifier scores the classes, upsampled x4
      (bilinear) to the input.

    Choices: where the paper is silent, the re-implementations that agree with each other
    (Tramac/awesome-semantic-segmentation-pytorch, lxtGH/Fast_Seg, huaifeng1993/DFANet):
    the block internals (see :class:`~keras_sceneparse.layers.XceptionABlock`), the stride
    in the first block's last separable convolution, 1x1 convolutions with BN and ReLU in
    the decoder, the fc attention's BN and ReLU, the fused sum (not concatenation) of the
    decoder's ``enc2`` features. No ImageNet weights (the library is offline): the fc
    layers are trained from scratch. Strided convolutions use "same" padding, so a stage
    maps a size ``s`` to ``ceil(s / 2)`` and the maps that the sub-stage aggregation
    concatenates always have the same size; the upsampled fc attention, the decoder's
    inputs and the logits are resized to the exact size of their reference (Table 1's
    "x4" are the ratios for multiples of 64). Any input size works, including
    ``(None, None, 3)``, with no divisibility constraint. Inputs are RGB in ``[0, 255]``
    normalised with ImageNet statistics (``include_preprocessing``).

    Note: an untrained model called in inference mode (batch norm with its initial unit
    statistics) gives large logits (hundreds for DFANet A): nothing normalises the 42
    residual blocks or the three cascaded multiplicative attentions until batch norm has
    statistics. In training mode the logits are of order 1 from the start.

    Parameters (19 classes, Cityscapes; asserted by a test): ours have 1,831,051 (A) and
    1,099,883 (B) trainable parameters, 1,863,307 and 1,121,547 with batch-norm
    statistics. The paper (Tables 3, 4) gives 7.8M for DFANet A and 4.8M for B: ours are
    4.3 times fewer, far from 1%, and we do not pad the model to match. Table 1's widths
    cannot reach the paper's figures: in A, the three fc attentions hold 1,156,152
    parameters (each ``193 x 1000`` for the fc layer, ``1000 x 192`` for the 1x1
    convolution, 384 for its BN), the nine separable stages 649,528, the decoder 25,139;
    even full 3x3 convolutions in place of the separable ones would give about 4.7M.
    Re-implementations of Table 1 land where we do (Tramac's has the same layers plus an
    unused ImageNet classifier in the first backbone: about 2.0M by our reading of its
    code). The paper's figures most likely count layers or widths of the authors'
    unreleased code that Table 1 does not show.

    Args:
        num_classes: number of classes (19 for Cityscapes, 11 for CamVid in the paper).
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        variant: ``"A"`` (backbone A, DFANet A) or ``"B"`` (backbone B, DFANet B).
        weights: ``None`` only (no ImageNet-pretrained backbone ships with the library).
        stem_filters: channels of ``conv1``; ``None`` takes the variant's (8).
        stage_filters: channels of ``enc2``, ``enc3``, ``enc4`` (multiples of 4); ``None``
            takes the variant's.
        stage_blocks: blocks of ``enc2``, ``enc3``, ``enc4`` ((4, 6, 4)).
        attention_units: units of the fc attention's fully-connected layer (1000).
        decoder_filters: channels of the decoder (32).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs with ImageNet statistics.

    Example:
        >>> model = DFANet(num_classes=19)  # DFANet A; ksp.models.get("dfanet_b", ...) for B
        >>> model(np.zeros((1, 97, 131, 3))).shape
        (1, 97, 131, 19)
    """

    feature_layer = "decoder_sum"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        variant="A",
        weights=None,
        stem_filters=None,
        stage_filters=None,
        stage_blocks=STAGE_BLOCKS,
        attention_units=1000,
        decoder_filters=32,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("variant", variant, VARIANTS)
        # No ImageNet weights ship with this offline library.
        check_choice("weights", weights, {None})
        defaults = VARIANTS[variant]
        stem = check_int(
            "stem_filters",
            defaults["stem_filters"] if stem_filters is None else stem_filters,
            minimum=1,
        )
        widths = _three(
            "stage_filters",
            defaults["stage_filters"] if stage_filters is None else stage_filters,
        )
        for value in widths:
            if value < BOTTLENECK_RATIO or value % BOTTLENECK_RATIO:
                raise ValueError(
                    f"`stage_filters` must be multiples of {BOTTLENECK_RATIO} (each block narrows to a quarter "
                    f"of its channels, Table 1), got {widths!r}."
                )
        depths = _three("stage_blocks", stage_blocks)
        attention_units = check_int("attention_units", attention_units, minimum=1)
        decoder_filters = check_int("decoder_filters", decoder_filters, minimum=1)

        # === Layers ===
        conv1 = ConvBNReLU(stem, 3, strides=2, name="backbone1_conv1")
        stages = [
            [
                XceptionAStage(width, depth, name=f"backbone{n + 1}_enc{stage + 2}")
                for stage, (width, depth) in enumerate(zip(widths, depths))
            ]
            for n in range(NUM_BACKBONES)
        ]
        attentions = [
            FCAttention(attention_units, name=f"backbone{n + 1}_fc_attention")
            for n in range(NUM_BACKBONES)
        ]

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        normalization = "imagenet" if input_shape[2] == 3 else "tf"
        x = self.preprocess(inputs, normalization, include_preprocessing)

        # Backbone 1 (Table 1).
        encoded = [conv1(x)]
        for stage in stages[0]:
            encoded.append(stage(encoded[-1]))
        encoders = [encoded[1:]]
        attended = [attentions[0](encoded[-1])]

        # Backbones 2 and 3: sub-network and sub-stage aggregation (Sec. 3.2, Fig. 2).
        for n in range(1, NUM_BACKBONES):
            previous = encoders[-1]
            # The previous output, upsampled x4 to the previous enc2's size, is this backbone's input.
            x = ResizeToReference(name=f"backbone{n}_output_upsampling")(
                attended[-1], previous[0]
            )
            current = []
            for stage in range(3):
                x = keras.layers.Concatenate(
                    name=f"backbone{n + 1}_enc{stage + 2}_aggregation"
                )([x, previous[stage]])
                x = stages[n][stage](x)
                current.append(x)
            encoders.append(current)
            attended.append(attentions[n](x))

        # Decoder (Sec. 3.3, Fig. 3).
        low = []
        for n, features in enumerate(encoders):
            y = ConvBNReLU(decoder_filters, 1, name=f"decoder_enc2_reduce{n + 1}")(
                features[0]
            )
            if n:
                y = ResizeToReference(name=f"decoder_enc2_upsampling{n + 1}")(y, low[0])
            low.append(y)
        fused = keras.layers.Add(name="decoder_enc2_sum")(low)
        fused = ConvBNReLU(decoder_filters, 1, name="decoder_fusion")(fused)
        high = []
        for n, features in enumerate(attended):
            y = ConvBNReLU(decoder_filters, 1, name=f"decoder_attention_reduce{n + 1}")(
                features
            )
            high.append(
                ResizeToReference(name=f"decoder_attention_upsampling{n + 1}")(y, fused)
            )
        x = keras.layers.Add(name="decoder_sum")([fused, *high])
        x = keras.layers.Conv2D(num_classes, 1, name="classifier")(x)
        x = ResizeToReference(name="output_upsampling")(x, inputs)
        outputs = self.logits_output(x)
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            num_classes=num_classes,
            image_shape=input_shape,
            include_preprocessing=include_preprocessing,
            **kwargs,
        )

        # === Config ===
        self.variant = variant
        self.stem_filters = None if stem_filters is None else stem
        self.stage_filters = None if stage_filters is None else widths
        self.stage_blocks = depths
        self.attention_units = attention_units
        self.decoder_filters = decoder_filters

    def get_config(self):
        return {
            **self.base_config(),
            "weights": None,
            "variant": self.variant,
            "stem_filters": self.stem_filters,
            "stage_filters": self.stage_filters,
            "stage_blocks": self.stage_blocks,
            "attention_units": self.attention_units,
            "decoder_filters": self.decoder_filters,
        }


def _three(name, values):
    """Three positive ints, one per stage (enc2, enc3, enc4)."""
    try:
        values = tuple(values)
    except TypeError:
        raise TypeError(
            f"`{name}` must give 3 integers (enc2, enc3, enc4), got {values!r}."
        ) from None
    if len(values) != 3:
        raise ValueError(
            f"`{name}` must give 3 integers (enc2, enc3, enc4), got {values!r}."
        )
    return tuple(
        check_int(f"{name}[{index}]", value, minimum=1)
        for index, value in enumerate(values)
    )
