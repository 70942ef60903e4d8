"""LEDNet (Wang, Zhou, Liu, Xiong, Gao, Wu and Latecki, ICIP 2019)."""

import keras

from keras_sceneparse.layers.enet_blocks import ENetInitialBlock
from keras_sceneparse.layers.lednet_blocks import (
    AttentionPyramidNetwork,
    SplitShuffleNonBottleneck,
)
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int

#: SS-nbt units after the downsampling unit of stages 1 and 2 (Table 1, rows 2-4 and 6-7).
STAGE_1_UNITS = 3
STAGE_2_UNITS = 2
#: Dilation rates of the SS-nbt units of stage 3 (Table 1, rows 9-16).
STAGE_3_DILATION_RATES = (1, 2, 5, 9, 2, 5, 9, 17)
#: Three 2x downsamplings: the encoder's output stride, undone by the final upsampling.
OUTPUT_STRIDE = 8


@serializable
@register_model("lednet")
class LEDNet(SegmentationModel):
    """LEDNet: an asymmetric encoder-decoder of split-shuffle residual units, with an
    attention pyramid as its decoder; under 1M parameters, for real-time segmentation.

    Wang, Zhou, Liu, Xiong, Gao, Wu and Latecki, "LEDNet: A Lightweight Encoder-Decoder
    Network for Real-Time Semantic Segmentation", ICIP 2019,
    https://arxiv.org/abs/1905.02423.

    Architecture (Sec. 2, Table 1, Fig. 1), for a ``H x W`` image:

    - stage 1: a downsampling unit to 32 x H/2 x W/2, then 3 SS-nbt units;
    - stage 2: a downsampling unit to 64 x H/4 x W/4, then 2 SS-nbt units;
    - stage 3: a downsampling unit to 128 x H/8 x W/8, then 8 SS-nbt units with dilation
      rates 1, 2, 5, 9, 2, 5, 9, 17;
    - decoder: the attention pyramid network
      (:class:`~keras_sceneparse.layers.AttentionPyramidNetwork`, Sec. 2.3) to the classes
      at H/8 x W/8, then bilinear upsampling to H x W.

    The downsampling unit (Sec. 2.2: "stacking two parallel outputs of a single 3x3
    convolution with stride 2 and a max-pooling") is ENet's initial block
    (:class:`~keras_sceneparse.layers.ENetInitialBlock`) with ReLU: the convolution adds
    ``filters - input channels`` maps to the pooled input, then batch normalisation.
    The SS-nbt unit (:class:`~keras_sceneparse.layers.SplitShuffleNonBottleneck`, Sec. 2.1,
    Fig. 1(d)) splits the channels in two, runs a 3x1/1x3 pair and a dilated pair on each
    half, concatenates, adds the input and shuffles the channels. Every size works: the
    strided layers round up, and the APN and the final upsampling resize to the exact size
    of their reference, so the input need not be divisible by 8 (or by 32, as the
    reference code's fixed ``h // 4``, ``h // 2`` resizes need).

    Choices: where the paper is silent we follow the authors' PyTorch code
    (xiaoyufenfei/LEDNet, ``train/lednet.py``): the APN's pyramid has a single channel, a
    spatial attention map (see the APN's docstring: Fig. 1's wider pyramid would give 2.5M
    parameters), spatial dropout 0.03 in the SS-nbt units of stages 1-2 and 0.3 in stage 3,
    biases on every convolution of the SS-nbt units, batch-norm epsilon 1e-3, and
    corner-aligned bilinear upsampling. That code pre-trains the encoder alone with a 1x1
    classifier at H/8 (ERFNet's recipe) before training the whole network; this model has
    no encoder-only output: we train it end to end, in one stage. The last batch-norm scale
    of each SS-nbt branch starts at zero (Goyal et al. 2017), so that an untrained LEDNet
    is well scaled in inference mode (see ``zero_init_residual`` of the SS-nbt unit).
    Inputs in ``[0, 255]`` are normalised with ImageNet mean and standard deviation (the
    reference only scales to ``[0, 1]``).

    Parameters: the paper gives 0.94M (Table 3, Cityscapes). Ours, for Cityscapes' 19
    classes: 922,777 trainable weights (911,436 in the encoder, 11,341 in the APN) plus
    5,528 batch-norm moving statistics, 928,305 in all. The trainable count is 1.8% below
    0.94M, and the total 1.2% below: **not within 1%**. The authors' ``lednet.py`` has the
    same layers and 925,663 trainable weights (1.5% below 0.94M): 20 output channels
    (19 classes and a void class of zero loss weight), 2 * 20 + 6 biases before the APN's
    batch normalisations, and the encoder-only 1x1 classifier (2,580). No count of that
    code reaches 0.94M within 1% without the moving statistics (931,195 with them, 0.9%
    below); the paper's figure was probably rounded up or taken from an earlier version of
    the code. A test asserts our counts exactly and the gap to 0.94M.

    Args:
        num_classes: number of classes (19 for Cityscapes in the paper).
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        weights: ``None`` (no pretrained weights: the model trains from scratch).
        filters: channels of stages 1, 2 and 3: ``(32, 64, 128)`` in Table 1. Each must be
            even (the SS-nbt unit splits it in two) and larger than the previous one (the
            first larger than the input channels): the downsampling unit concatenates its
            convolution with the pooled input.
        dilation_rates: dilation rates of the 8 SS-nbt units of stage 3 (Table 1).
        dropout_rates: spatial-dropout rates of the SS-nbt units of stages 1-2 and of stage
            3: ``(0.03, 0.3)`` in the reference code.
        include_preprocessing: normalise ``[0, 255]`` inputs first (ImageNet statistics
            for 3 channels, ``x / 127.5 - 1`` otherwise).

    Example:
        >>> model = LEDNet(num_classes=12, filters=(8, 16, 32))
        >>> model.predict(np.zeros((1, 101, 75, 3)), verbose=0).shape
        (1, 101, 75, 12)
    """

    feature_layer = "ss_nbt16"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        weights=None,
        filters=(32, 64, 128),
        dilation_rates=STAGE_3_DILATION_RATES,
        dropout_rates=(0.03, 0.3),
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        # The authors released no trained weights; nothing to load into a Keras model.
        check_choice("weights", weights, {None})
        filters = tuple(
            check_int(f"filters[{i}]", f, minimum=2) for i, f in enumerate(filters)
        )
        if len(filters) != 3 or any(f % 2 for f in filters):
            raise ValueError(
                f"`filters` must be 3 even channel counts (stages 1, 2 and 3), e.g. (32, 64, 128); "
                f"got {filters}."
            )
        if not input_shape[2] < filters[0] < filters[1] < filters[2]:
            raise ValueError(
                f"`filters` must increase from stage to stage, and `filters[0]` must exceed the "
                f"{input_shape[2]} input channels: each downsampling unit concatenates its "
                f"convolution with its pooled input; got filters={filters}."
            )
        dilation_rates = tuple(
            check_int(f"dilation_rates[{i}]", rate, minimum=1)
            for i, rate in enumerate(dilation_rates)
        )
        if len(dilation_rates) != len(STAGE_3_DILATION_RATES):
            raise ValueError(
                f"`dilation_rates` must give {len(STAGE_3_DILATION_RATES)} rates (the SS-nbt "
                f"units of stage 3), e.g. {STAGE_3_DILATION_RATES}; got {dilation_rates}."
            )
        dropout_rates = tuple(
            check_float(f"dropout_rates[{i}]", rate, minimum=0.0, maximum=1.0)
            for i, rate in enumerate(dropout_rates)
        )
        if len(dropout_rates) != 2:
            raise ValueError(
                f"`dropout_rates` must give 2 rates (stages 1-2, stage 3); got {dropout_rates}."
            )
        early_dropout, late_dropout = dropout_rates
        normalization = "imagenet" if input_shape[2] == 3 else "tf"

        # Units are numbered by their row in Table 1 (1-16).
        stages = [
            (filters[0], [(1, early_dropout)] * STAGE_1_UNITS),
            (filters[1], [(1, early_dropout)] * STAGE_2_UNITS),
            (filters[2], [(rate, late_dropout) for rate in dilation_rates]),
        ]

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, normalization, include_preprocessing)
        row = 1
        for channels, units in stages:
            x = ENetInitialBlock(
                channels, activation="relu", name=f"downsampling{row}"
            )(x)
            row += 1
            for rate, dropout in units:
                x = SplitShuffleNonBottleneck(
                    dilation_rate=rate, dropout=dropout, name=f"ss_nbt{row}"
                )(x)
                row += 1
        x = AttentionPyramidNetwork(num_classes, name="apn")(x)
        x = ResizeToReference(align_corners=True, name="upsampling")(x, inputs)
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
        self.filters = filters
        self.dilation_rates = dilation_rates
        self.dropout_rates = dropout_rates

    def get_config(self):
        return {
            **self.base_config(),
            "weights": None,
            "filters": self.filters,
            "dilation_rates": self.dilation_rates,
            "dropout_rates": self.dropout_rates,
        }
