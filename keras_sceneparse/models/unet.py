"""U-Net (Ronneberger, Fischer and Brox, MICCAI 2015)."""

import keras

from keras_sceneparse.layers import CropToReference, PadToMultiple
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int

# Overlap-tile geometry of the valid-padding U-Net with 4 poolings (paper, Fig. 1 and Sec. 3):
# a 572 px tile gives a 388 px output, i.e. 92 px of context on each side, and a tile
# size is valid when every 2x2 pooling sees an even size: tiles of 16 k + 124 pixels.
VALID_MARGIN = 92
VALID_TILE_MULTIPLE = 16
VALID_TILE_OFFSET = 124


@serializable
@register_model("unet")
class UNet(SegmentationModel):
    """U-Net: a contracting path, a symmetric expanding path, and skip connections.

    Ronneberger, Fischer and Brox, "U-Net: Convolutional Networks for Biomedical Image
    Segmentation", MICCAI 2015, https://arxiv.org/abs/1505.04597.

    Architecture (Sec. 2, Fig. 1): each contracting level applies two unpadded 3x3
    convolutions with ReLU and a 2x2 max pooling of stride 2, doubling the channels
    (64, 128, 256, 512, 1024 at the bottom). Each expanding level upsamples with a 2x2
    "up-convolution" halving the channels, concatenates the centre-cropped feature map of
    the matching contracting level, and applies two 3x3 convolutions with ReLU; a final 1x1
    convolution maps the 64 channels to the classes: 23 convolutional layers in total.
    Dropout "at the end of the contracting path" (Sec. 3.1); the rate is not given, so we use
    0.5 after the last two contracting levels, as the authors' Caffe model does. Kernels use
    He initialisation, the paper's Gaussian with std sqrt(2/N) (Sec. 3).

    With ``padding="valid"`` (the paper's) the image is processed with the overlap-tile
    strategy (Sec. 3, Fig. 2): mirrored by 92 pixels on each side, and up to the next valid
    tile size, so that the output covers the input exactly; images must be at least 108
    pixels high and wide. ``padding="same"`` pads every convolution instead (zero-padded
    to a multiple of 16 first), the common variant for small images.

    Parameters: the paper gives no count. For 2 classes (its configuration) this model has
    31,030,658, all in its 23 convolutions (the test derives the figure layer by layer).

    Args:
        num_classes: number of output classes (2 in the paper).
        input_shape: ``(height, width, channels)``; the paper uses 1 channel.
        base_filters: channels of the first level (64 in the paper); level ``i`` has
            ``base_filters * 2**i``.
        depth: number of poolings (4 in the paper).
        padding: ``"valid"`` (paper, overlap-tile) or ``"same"``.
        dropout: rate of the dropout at the end of the contracting path.
        include_preprocessing: scale inputs from ``[0, 255]`` to ``[0, 1]`` first.

    Example:
        >>> model = UNet(num_classes=2, input_shape=(None, None, 1), base_filters=8)
        >>> model.predict(np.zeros((1, 128, 128, 1)), verbose=0).shape
        (1, 128, 128, 2)
    """

    feature_layer = "up1_conv2"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        base_filters=64,
        depth=4,
        padding="valid",
        dropout=0.5,
        include_preprocessing=True,
        **kwargs,
    ):
        check_choice("padding", padding, {"valid", "same"})
        min_size = VALID_MARGIN + VALID_TILE_MULTIPLE if padding == "valid" else None
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape, min_size=min_size)
        base_filters = check_int("base_filters", base_filters, minimum=1)
        depth = check_int("depth", depth, minimum=1)
        dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)
        if padding == "valid" and depth != 4:
            raise ValueError(
                f"padding='valid' implements the paper's overlap-tile geometry for depth=4; got depth={depth}. "
                "Use padding='same' for other depths."
            )

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, "unit", include_preprocessing)
        if padding == "valid":
            x = PadToMultiple(
                VALID_TILE_MULTIPLE, offset=VALID_TILE_OFFSET, margin=VALID_MARGIN, mode="reflect",
                name="overlap_tile_padding",
            )(x)
        else:
            x = PadToMultiple(2**depth, name="pad_to_multiple")(x)

        def double_conv(x, filters, name):
            for index in (1, 2):
                x = keras.layers.Conv2D(
                    filters, 3, padding=padding, activation="relu", kernel_initializer="he_normal",
                    name=f"{name}_conv{index}",
                )(x)
            return x

        skips = []
        for level in range(depth):
            x = double_conv(x, base_filters * 2**level, f"down{level + 1}")
            if level >= depth - 1 and dropout:
                x = keras.layers.Dropout(dropout, name=f"down{level + 1}_dropout")(x)
            skips.append(x)
            x = keras.layers.MaxPooling2D(2, name=f"down{level + 1}_pool")(x)
        x = double_conv(x, base_filters * 2**depth, "bottom")
        if dropout:
            x = keras.layers.Dropout(dropout, name="bottom_dropout")(x)

        for level in reversed(range(depth)):
            filters = base_filters * 2**level
            x = keras.layers.Conv2DTranspose(
                filters, 2, strides=2, kernel_initializer="he_normal", name=f"up{level + 1}_upconv"
            )(x)
            skip = CropToReference("center", name=f"up{level + 1}_crop")(skips[level], x)
            x = keras.layers.Concatenate(name=f"up{level + 1}_concat")([skip, x])
            x = double_conv(x, filters, f"up{level + 1}")

        x = keras.layers.Conv2D(num_classes, 1, name="classifier")(x)
        x = CropToReference("top_left", name="output_crop")(x, inputs)
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
        self.base_filters = base_filters
        self.depth = depth
        self.padding = padding
        self.dropout = dropout

    def get_config(self):
        return {
            **self.base_config(),
            "base_filters": self.base_filters,
            "depth": self.depth,
            "padding": self.padding,
            "dropout": self.dropout,
        }
