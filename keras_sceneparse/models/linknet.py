"""LinkNet (Chaurasia and Culurciello, VCIP 2017)."""

import keras

from keras_sceneparse.backbones.applications import APPLICATIONS
from keras_sceneparse.backbones.backbone import PYRAMID_LEVELS, Backbone, list_backbones
from keras_sceneparse.layers.conv_bn_relu import BATCH_NORM_MOMENTUM, ConvBNReLU
from keras_sceneparse.layers.cropping import CropToReference
from keras_sceneparse.layers.linknet_blocks import LinkNetDecoderBlock
from keras_sceneparse.layers.padding import PadToMultiple
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_int

#: The output of the paper's "initial block" (7x7/2 convolution and 3x3/2 max pooling, Fig. 1):
#: the stride-4 map that enters encoder block 1 and is bypassed to decoder block 1. ResNets
#: name it; other backbones have no such layer, and the model max-pools their C1 instead.
INITIAL_BLOCK_LAYERS = {
    name: "pool1_pool" for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
}

# The encoder has output stride 32; padding the image to a multiple of it makes every
# upsampled map exactly as large as its skip connection.
_ENCODER_STRIDE = 32


@serializable
@register_model("linknet")
class LinkNet(SegmentationModel):
    """LinkNet: a ResNet-18 encoder whose features are added to a light decoder, for real-time use.

    Chaurasia and Culurciello, "LinkNet: Exploiting Encoder Representations for Efficient
    Semantic Segmentation", VCIP 2017, https://arxiv.org/abs/1707.03718.

    Architecture (Sec. 3, Fig. 1-3): the initial block (7x7/2 convolution of 64 channels,
    batch normalisation, ReLU, 3x3/2 max pooling) and the four encoder blocks are ResNet-18
    (Fig. 2: two basic residual blocks each, 64, 128, 256, 512 channels). Each decoder
    block (:class:`~keras_sceneparse.layers.linknet_blocks.LinkNetDecoderBlock`, Fig. 3)
    maps ``m`` to ``n`` channels through a 1x1 convolution to ``m/4``, a 3x3 transposed
    convolution of stride 2 and a 1x1 convolution to ``n``, each with batch normalisation and
    ReLU. The input of every encoder block is added to the output of its decoder block
    (Fig. 1, the "link"): decoder 4 (512 to 256) meets the output of encoder 3, decoder 3
    (256 to 128) encoder 2's, decoder 2 (128 to 64) encoder 1's, and decoder 1 (64 to 64)
    the initial block's. The final block is a 3x3 transposed convolution of stride 2 (64 to
    32) with batch normalisation and ReLU, a 3x3 convolution (32 to 32) with batch
    normalisation and ReLU, and a 2x2 transposed convolution of stride 2 to the classes.

    Choices:

    - Decoder block 1 does not upsample (stride 1). Fig. 2 and 3 draw a stride 2 in the
      generic encoder and decoder block, but the first encoder block, ResNet-18's first
      stage, keeps the max pooling's resolution (the authors' project page says so), and
      with a stride in all four decoders the output would be twice the input; the authors'
      code (e-lab/LinkNet ``model.lua``, e-lab/pytorch-linknet ``linknet.py``) uses stride 1
      in decoder block 1, which we follow.
    - ResNet-18 is built by :mod:`keras_sceneparse.backbones.resnet` (torchvision's layout;
      Keras has no ResNet-18) and has no ImageNet weights offline: ``weights="imagenet"``
      raises for it, so the encoder starts from scratch, whereas the paper starts from
      ImageNet. Inputs are normalised with ImageNet's mean and standard deviation
      (:class:`~keras_sceneparse.layers.ImageNormalization` mode ``"imagenet"``, the
      torchvision convention; there is no separate ``"torch"`` mode).
    - Convolutions followed by batch normalisation have no bias (the reference's decoder
      convolutions do; normalisation cancels them); the last transposed convolution has one.
    - Sizes that are not multiples of 32: the normalised image is zero-padded after its
      bottom and right edges to a multiple of 32 and the logits are cropped back (top-left),
      so each transposed convolution's output is exactly the size of the skip it is added
      to and pixels stay aligned. Each upsampled map is also passed through
      :class:`~keras_sceneparse.layers.ResizeToReference` to its skip's size; that is the
      identity (equal sizes) for every backbone except Xception, whose unpadded stem makes
      its maps a few pixels smaller than ``input / stride``.
    - Other backbones (``backbone=`` any of
      :func:`~keras_sceneparse.backbones.list_backbones`): the encoder outputs C2, C3, C4,
      C5 of :class:`~keras_sceneparse.backbones.Backbone` play encoder blocks 1-4 and the
      channel counts ``m`` and ``n`` are read from them; the initial block's output is
      ``pool1_pool`` for the ResNets and a 3x3/2 max pooling of C1 for the others. The
      final block keeps 32 channels. segmentation_models' ``Linknet`` differs: it adds C4,
      C3, C2 and C1 after four stride-2 decoder blocks, has a fifth decoder block without
      skip and a 3x3 convolution to the classes, and upsamples with ``UpSampling2D`` plus a
      3x3 convolution by default. To compare the two at an equal encoder use
      ``backbone="mobilenet_v2"`` (keras.applications' MobileNetV2 in both) or
      ``"resnet34"`` (the same depth and widths; segmentation_models' ResNet-34, from
      classification_models, is a pre-activation variant with an input batch norm).

    Parameters: the paper gives 11.5M (Table 1, with 21.2 GFLOPs at 3x640x360). Ours, for
    the paper's 11 CamVid classes: 11,534,603 trainable (the ResNet-18 encoder's 11,176,512
    and a decoder of 358,091), 11,546,315 with the batch-norm moving statistics; a test
    checks the trainable count within 1% of 11.5M (0.3% above). Each further class adds 129
    (12 classes, CamVid with void: 11,534,732). Our convolutions cost 19.5 GFLOPs (two per
    multiply-add) at 3x640x360, 20.3 with the padding of 360 to 384 rows.

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones`; ``"resnet18"``
            is the paper's.
        weights: ``None`` or ``"imagenet"`` for the backbone (not available for
            ``"resnet18"`` and ``"resnet34"``).
        final_filters: channels of the final block's first two layers (32).
        backbone_kwargs: extra backbone constructor arguments (e.g. ``{"base_filters": 16}``
            for a narrow ResNet, ``{"alpha": 0.35}`` for MobileNetV2).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = LinkNet(num_classes=12)
        >>> model.predict(np.zeros((1, 360, 480, 3)), verbose=0).shape
        (1, 360, 480, 12)
    """

    feature_layer = "final_conv"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet18",
        weights=None,
        final_filters=32,
        backbone_kwargs=None,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("backbone", backbone, list_backbones())
        final_filters = check_int("final_filters", final_filters, minimum=1)
        backbone_kwargs = dict(backbone_kwargs or {})
        initial_layer = INITIAL_BLOCK_LAYERS.get(backbone)
        feature_layers = dict(zip(PYRAMID_LEVELS, APPLICATIONS[backbone].pyramid_layers))
        if initial_layer is not None:
            feature_layers["initial"] = initial_layer

        # === Layers ===
        pad = PadToMultiple(_ENCODER_STRIDE, name="pad_to_multiple")
        encoder = Backbone(
            backbone,
            input_shape=pad.compute_output_shape((None, *input_shape))[1:],
            weights=weights,
            feature_layers=feature_layers,
            application_kwargs=backbone_kwargs,
            name=f"{backbone}_backbone",
        )
        channels = encoder.pyramid_channels
        if initial_layer is None:
            channels["initial"] = channels["C1"]
        # Decoder block i takes the features of encoder block i (C_{i+1}, or the sum at that
        # level) and returns as many channels as encoder block i's input (Fig. 1).
        skip_of = {4: "C4", 3: "C3", 2: "C2", 1: "initial"}
        decoders = {
            level: LinkNetDecoderBlock(
                channels[skip_of[level]],
                max(channels[f"C{level + 1}"] // 4, 1),
                strides=1 if level == 1 else 2,
                name=f"decoder{level}",
            )
            for level in (4, 3, 2, 1)
        }

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, encoder.normalization, include_preprocessing)
        padded = pad(x)
        features = encoder(padded)
        if initial_layer is None:
            initial = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="initial_block_pool")(
                features["C1"]
            )
        else:
            initial = features["initial"]
        skips = {4: features["C4"], 3: features["C3"], 2: features["C2"], 1: initial}

        x = features["C5"]
        for level in (4, 3, 2, 1):
            x = decoders[level](x)
            x = ResizeToReference(name=f"decoder{level}_to_skip")(x, skips[level])
            x = keras.layers.Add(name=f"link{level}")([x, skips[level]])

        # Final block (Fig. 1): back to the input resolution in two transposed convolutions.
        x = keras.layers.Conv2DTranspose(
            final_filters, 3, strides=2, padding="same", use_bias=False, kernel_initializer="he_normal",
            name="final_full_conv",
        )(x)
        x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name="final_full_conv_bn")(x)
        x = keras.layers.Activation("relu", name="final_full_conv_relu")(x)
        x = ConvBNReLU(final_filters, 3, name="final_conv")(x)
        x = keras.layers.Conv2DTranspose(num_classes, 2, strides=2, padding="same", name="classifier")(x)
        x = ResizeToReference(name="output_to_padded")(x, padded)
        x = CropToReference("top_left", name="crop")(x, inputs)
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
        self.backbone_name = backbone
        self.final_filters = final_filters
        self.backbone_kwargs = backbone_kwargs

    def get_config(self):
        return {
            **self.base_config(),
            "backbone": self.backbone_name,
            "weights": None,
            "final_filters": self.final_filters,
            "backbone_kwargs": self.backbone_kwargs,
        }
