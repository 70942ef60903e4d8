"""ENet (Paszke, Chaurasia, Kim and Culurciello, arXiv 2016)."""

import keras

from keras_sceneparse.layers.cropping import CropToReference
from keras_sceneparse.layers.enet_blocks import (
    ACTIVATIONS,
    ENetBottleneck,
    ENetInitialBlock,
)
from keras_sceneparse.layers.padding import PadToMultiple
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int

#: Bottlenecks 2.1-2.8 (Table 1), repeated as 3.1-3.8: ``(type, dilation rate)``.
STAGE_2_3_BOTTLENECKS = (
    ("regular", 1),
    ("dilated", 2),
    ("asymmetric", 1),
    ("dilated", 4),
    ("regular", 1),
    ("dilated", 8),
    ("asymmetric", 1),
    ("dilated", 16),
)
#: Regular bottlenecks after the downsampling one in stage 1 (1.1-1.4), and after the
#: upsampling ones in stages 4 (4.1, 4.2) and 5 (5.1).
STAGE_1_REPEATS = 4
STAGE_4_REPEATS = 2
STAGE_5_REPEATS = 1
#: Three 2x2 downsamplings (initial block, 1.0, 2.0): the encoder's output stride.
OUTPUT_STRIDE = 8


@serializable
@register_model("enet")
class ENet(SegmentationModel):
    """ENet: a real-time encoder-decoder of bottleneck modules, large encoder, small decoder.

    Paszke, Chaurasia, Kim and Culurciello, "ENet: A Deep Neural Network Architecture for
    Real-Time Semantic Segmentation", arXiv 2016, https://arxiv.org/abs/1606.02147.

    Architecture (Sec. 3, Table 1, Fig. 2), for a ``H x W`` image:

    - initial block (:class:`~keras_sceneparse.layers.ENetInitialBlock`, Fig. 2a): a 3x3
      stride-2 convolution with 13 filters beside a 2x2 max pooling: 16 x H/2 x W/2;
    - stage 1: bottleneck 1.0 downsampling to 64 x H/4 x W/4, then 1.1-1.4 regular
      (:class:`~keras_sceneparse.layers.ENetBottleneck`, Fig. 2b), spatial dropout 0.01;
    - stage 2: 2.0 downsampling to 128 x H/8 x W/8, then 2.1 regular, 2.2 dilated 2,
      2.3 asymmetric 5, 2.4 dilated 4, 2.5 regular, 2.6 dilated 8, 2.7 asymmetric 5,
      2.8 dilated 16; dropout 0.1 from here on;
    - stage 3: 3.1-3.8 as 2.1-2.8 (no downsampling);
    - stage 4: 4.0 upsampling to 64 x H/4 x W/4 with the max-pooling indices of 2.0, then
      4.1, 4.2 regular;
    - stage 5: 5.0 upsampling to 16 x H/2 x W/2 with the indices of 1.0, then 5.1;
    - ``fullconv``: a 2x2 transposed convolution of stride 2 to the classes at H x W.

    Every bottleneck projects to a quarter of its channels; PReLU everywhere (Sec. 4,
    "Nonlinear operations"). Max unpooling needs the exact sizes that were pooled, so the
    image is zero-padded (after normalisation) to a multiple of 8 and the logits are cropped
    back: any size works.

    Training: the paper trains in two stages (Sec. 5), first the encoder alone "to
    categorize downsampled regions of the input image", then with the decoder appended.
    This model has no encoder-only output: we train it end to end, in one stage.

    Choices: where the paper is silent the blocks follow the authors' Torch code
    (e-lab/ENet-training): batch normalisation after every convolution (epsilon 1e-3),
    PReLU slopes per channel initialised at 0.25, biases on the main 3x3 (and second
    asymmetric) convolutions but not on the projections (Sec. 3), the asymmetric
    convolution as 1x5 then 5x1 with nothing between, the upsampling bottleneck's
    extension a 3x3 transposed convolution, and a plain 2x2 transposed convolution with a
    bias as ``fullconv``. That code's decoder uses ReLU and no dropout, but the paper
    describes PReLUs in the decoder (Sec. 4, Fig. 3: the decoder's slopes become more
    positive, closer to the identity) and dropout 0.1 after bottleneck 2.0 without an
    exception for the decoder; we follow the paper by default
    (``decoder_activation="relu", dropout_rates=(0.01, 0.1, 0.0)`` gives the released
    code's decoder). The last batch-norm scale of each extension starts at zero (Goyal et
    al. 2017), so an untrained ENet is well scaled in inference mode: with scales of one,
    its 27 residual additions make the untrained logits thousands until the moving
    statistics adapt. Inputs in ``[0, 255]`` are normalised with ImageNet mean and standard
    deviation (the reference standardises with its datasets' own statistics).

    Parameters: the paper gives 0.37M (Table 3). Ours, for the paper's 11 CamVid classes:
    364,127 trainable weights (convolutions, batch-norm scales and offsets, 4,096 PReLU
    slopes) plus 8,352 batch-norm moving statistics, 372,479 in all. The trainable count
    is 1.6% below 0.37M; the authors' Torch code, which has the same layers but a ReLU
    decoder, has 363,791 (1.7% below; 336 slopes fewer). 0.37M is
    met within 1% only if the moving statistics are counted, as a saved model stores them
    (Table 3 gives the parameters beside the fp16 model size); we take that to be what the
    paper counted. A test asserts both counts exactly and the total within 1% of 0.37M.

    Args:
        num_classes: number of classes (11 for CamVid, 19 for Cityscapes in the paper).
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        weights: ``None`` (no pretrained weights: the model trains from scratch).
        filters: channels of the initial block (and stage 5), of stage 1 (and stage 4) and
            of stages 2-3: ``(16, 64, 128)`` in Table 1. Each must be at least
            ``projection_ratio``; the first must exceed the input channels.
        projection_ratio: channel reduction inside the bottlenecks (4).
        asymmetric_size: kernel length of the asymmetric bottlenecks (5).
        dropout_rates: spatial-dropout rates of stage 1, stages 2-3 and the decoder
            (stages 4-5): ``(0.01, 0.1, 0.1)``.
        decoder_activation: ``"prelu"`` (paper) or ``"relu"`` (the released code).
        include_preprocessing: normalise ``[0, 255]`` inputs first (ImageNet statistics
            for 3 channels, ``x / 127.5 - 1`` otherwise).

    Example:
        >>> model = ENet(num_classes=12, filters=(8, 16, 32))
        >>> model.predict(np.zeros((1, 101, 75, 3)), verbose=0).shape
        (1, 101, 75, 12)
    """

    feature_layer = "bottleneck5_1"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        weights=None,
        filters=(16, 64, 128),
        projection_ratio=4,
        asymmetric_size=5,
        dropout_rates=(0.01, 0.1, 0.1),
        decoder_activation="prelu",
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        # The authors released Torch weights only; nothing to load into a Keras model.
        check_choice("weights", weights, {None})
        projection_ratio = check_int("projection_ratio", projection_ratio, minimum=1)
        filters = tuple(check_int(f"filters[{i}]", f, minimum=projection_ratio) for i, f in enumerate(filters))
        if len(filters) != 3 or not filters[0] <= filters[1] <= filters[2]:
            raise ValueError(
                f"`filters` must be 3 non-decreasing channel counts (initial block, stage 1, stages 2-3), e.g. "
                f"(16, 64, 128); got {filters}."
            )
        if filters[0] <= input_shape[2]:
            raise ValueError(
                f"`filters[0]` ({filters[0]}) must exceed the {input_shape[2]} input channels: the initial block "
                "concatenates its convolution with the pooled image."
            )
        asymmetric_size = check_int("asymmetric_size", asymmetric_size, minimum=1)
        dropout_rates = tuple(
            check_float(f"dropout_rates[{i}]", rate, minimum=0.0, maximum=1.0) for i, rate in enumerate(dropout_rates)
        )
        if len(dropout_rates) != 3:
            raise ValueError(
                f"`dropout_rates` must give 3 rates (stage 1, stages 2-3, decoder); got {dropout_rates}."
            )
        check_choice("decoder_activation", decoder_activation, ACTIVATIONS)
        initial_filters, stage1_filters, stage2_filters = filters
        stage1_dropout, encoder_dropout, decoder_dropout = dropout_rates
        normalization = "imagenet" if input_shape[2] == 3 else "tf"

        def bottleneck(name, channels, block_type="regular", dilation_rate=1, dropout=encoder_dropout,
                       activation="prelu"):
            return ENetBottleneck(
                channels,
                block_type=block_type,
                dilation_rate=dilation_rate,
                asymmetric_size=asymmetric_size,
                projection_ratio=projection_ratio,
                dropout=dropout,
                activation=activation,
                name=name,
            )

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, normalization, include_preprocessing)
        # Max unpooling restores exactly the pooled sizes: pad so that every pooling is exact.
        padded = PadToMultiple(OUTPUT_STRIDE, name="pad_to_multiple")(x)
        x = ENetInitialBlock(initial_filters, name="initial")(padded)

        # Stage 1.
        stage1_input = x
        x, stage1_indices = bottleneck("bottleneck1_0", stage1_filters, "downsampling", dropout=stage1_dropout)(x)
        for index in range(1, STAGE_1_REPEATS + 1):
            x = bottleneck(f"bottleneck1_{index}", stage1_filters, dropout=stage1_dropout)(x)

        # Stages 2 and 3.
        stage2_input = x
        x, stage2_indices = bottleneck("bottleneck2_0", stage2_filters, "downsampling")(x)
        for stage in (2, 3):
            for index, (block_type, rate) in enumerate(STAGE_2_3_BOTTLENECKS, start=1):
                x = bottleneck(f"bottleneck{stage}_{index}", stage2_filters, block_type, dilation_rate=rate)(x)

        # Stages 4 and 5: unpool with the indices of 2.0 then of 1.0.
        decoder = {"dropout": decoder_dropout, "activation": decoder_activation}
        x = bottleneck("bottleneck4_0", stage1_filters, "upsampling", **decoder)(x, stage2_indices, stage2_input)
        for index in range(1, STAGE_4_REPEATS + 1):
            x = bottleneck(f"bottleneck4_{index}", stage1_filters, **decoder)(x)
        x = bottleneck("bottleneck5_0", initial_filters, "upsampling", **decoder)(x, stage1_indices, stage1_input)
        for index in range(1, STAGE_5_REPEATS + 1):
            x = bottleneck(f"bottleneck5_{index}", initial_filters, **decoder)(x)

        x = keras.layers.Conv2DTranspose(num_classes, 2, strides=2, name="fullconv")(x)
        x = CropToReference("top_left", name="crop_to_input")(x, inputs)
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
        self.projection_ratio = projection_ratio
        self.asymmetric_size = asymmetric_size
        self.dropout_rates = dropout_rates
        self.decoder_activation = decoder_activation

    def get_config(self):
        return {
            **self.base_config(),
            "weights": None,
            "filters": self.filters,
            "projection_ratio": self.projection_ratio,
            "asymmetric_size": self.asymmetric_size,
            "dropout_rates": self.dropout_rates,
            "decoder_activation": self.decoder_activation,
        }
