"""Dilated-Net (Yu and Koltun, ICLR 2016): a dilated VGG-16 front end and a context module."""

import keras

from keras_sceneparse.layers.context_module import ContextModule
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.models.segnet import ENCODER_BLOCKS
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int

CONTEXT_CHOICES = ("none", "basic", "large")


def vgg16_widths(base_filters):
    """VGG-16's five blocks of convolution widths, scaled so that the first is ``base_filters``."""
    return tuple(tuple(width * base_filters // 64 for width in block) for block in ENCODER_BLOCKS)


def load_vgg16_weights(convolutions):
    """Copies keras.applications' ImageNet VGG-16 kernels (and biases) into ``convolutions``,
    the 13 convolution layers of a full-width VGG-16 (``Conv2D`` or ``ConvBNReLU``)."""
    vgg = keras.applications.VGG16(include_top=False, weights="imagenet")
    theirs = [layer for layer in vgg.layers if isinstance(layer, keras.layers.Conv2D)]
    for ours, source in zip(convolutions, theirs, strict=True):
        conv = ours.sublayers[0] if hasattr(ours, "sublayers") else ours
        conv.kernel.assign(source.kernel)
        if conv.use_bias:
            conv.bias.assign(source.bias)


@serializable
@register_model("dilated_net")
class DilatedNet(SegmentationModel):
    """Dilated-Net: VGG-16 without its last two poolings, dilated, plus a context module.

    Yu and Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", ICLR 2016,
    https://arxiv.org/abs/1511.07122.

    Architecture. Front end (Sec. 4): VGG-16 with pool4 and pool5 removed (not replaced by
    stride-1 pooling as in DeepLab); the three conv5 layers are dilated by 2 and ``fc6``,
    a 7x7 convolution with 4096 channels, by 4, so the output stride is 8; ``fc7`` is a 1x1
    convolution with 4096 channels (both with ReLU and dropout 0.5, as in VGG-16), and a 1x1
    convolution (``fc_final``) scores the ``C`` classes. The optional context module (Sec. 3,
    Table 1, :class:`~keras_sceneparse.layers.ContextModule`) refines the ``C`` score maps at
    stride 8 with dilations 1, 1, 2, 4, 8, 16, 1 and a 1x1 layer, "basic" (``C`` channels)
    or "large" (2C ... 32C), initialised to the identity (Eq. 4/5). The scores are upsampled
    bilinearly to the input (the reference code's fixed bilinear deconvolution, 8x).

    Choices: the paper's front end uses unpadded convolutions on a reflection-padded input
    (Sec. 4); ours pads every convolution (``"same"``), so the stride-8 map covers the image
    without a margin, and bilinear resizing to the exact input size handles sizes that are
    not multiples of 8. Pooling uses ``"same"`` padding (Caffe's ceil mode). The VGG-16 is
    built here (not through ``keras.applications``) so that ``base_filters`` can shrink it
    for tests; ``weights="imagenet"`` copies keras.applications' VGG-16 convolutions into it
    (``fc6``/``fc7`` start from scratch: keras' VGG-16 has no convolutional fc weights).

    Parameters: the paper states none for the front end. Ours for 21 classes:
    front end 134,346,581 (VGG-16's convolutions 14,714,688, ``fc6`` 102,764,544, ``fc7``
    16,781,312, ``fc_final`` 86,037; the same as FCN-32s, since dilation adds no weights);
    the basic context module adds ``64 C^2 + 8 C`` = 28,392 and the large one
    ``15,422 C^2 + 97 C`` = 6,803,139 (from Table 1's widths). Tests assert them exactly.

    Args:
        num_classes: number of classes ``C`` (21 for PASCAL VOC).
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        context: ``"none"`` (front end only), ``"basic"`` or ``"large"`` (the default: the
            paper's best PASCAL VOC configuration, Sec. 5).
        weights: ``None`` or ``"imagenet"`` (needs ``base_filters=64`` and a download).
        base_filters: width of VGG-16's first block (64); the others scale with it.
        fc_filters: channels of ``fc6``/``fc7`` (4096).
        dropout: dropout after ``fc6`` and ``fc7`` (0.5).
        include_preprocessing: apply VGG-16's Caffe normalisation to ``[0, 255]`` RGB inputs.

    Example:
        >>> model = DilatedNet(num_classes=21, context="large")
    """

    feature_layer = "fc7"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        context="large",
        weights=None,
        base_filters=64,
        fc_filters=4096,
        dropout=0.5,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(
            num_classes, input_shape, channels=3 if weights == "imagenet" else None
        )
        context = check_choice("context", context, CONTEXT_CHOICES)
        check_choice("weights", weights, {None, "imagenet"})
        base_filters = check_int("base_filters", base_filters, minimum=1)
        if weights == "imagenet" and base_filters != 64:
            raise ValueError(f"`weights='imagenet'` needs `base_filters=64`, got base_filters={base_filters}.")
        fc_filters = check_int("fc_filters", fc_filters, minimum=1)
        dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, "caffe", include_preprocessing)
        convolutions = []
        for block, widths in enumerate(vgg16_widths(base_filters), start=1):
            # Sec. 4: conv5 follows the removed pool4, so it is dilated by 2.
            dilation = 2 if block == 5 else 1
            for index, filters in enumerate(widths, start=1):
                conv = keras.layers.Conv2D(
                    filters, 3, padding="same", dilation_rate=dilation, activation="relu",
                    name=f"conv{block}_{index}",
                )
                convolutions.append(conv)
                x = conv(x)
            if block <= 3:
                x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{block}")(x)
        x = keras.layers.Conv2D(fc_filters, 7, padding="same", dilation_rate=4, activation="relu", name="fc6")(x)
        x = keras.layers.Dropout(dropout, name="drop6")(x)
        x = keras.layers.Conv2D(fc_filters, 1, activation="relu", name="fc7")(x)
        x = keras.layers.Dropout(dropout, name="drop7")(x)
        x = keras.layers.Conv2D(num_classes, 1, name="fc_final")(x)
        if context != "none":
            x = ContextModule(context, name="context")(x)
        x = ResizeToReference(name="upsampling")(x, inputs)
        outputs = self.logits_output(x)
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            num_classes=num_classes,
            image_shape=input_shape,
            include_preprocessing=include_preprocessing,
            **kwargs,
        )

        if weights == "imagenet":
            load_vgg16_weights(convolutions)

        # === Config ===
        self.context = context
        self.base_filters = base_filters
        self.fc_filters = fc_filters
        self.dropout = dropout

    def get_config(self):
        return {
            **self.base_config(),
            "context": self.context,
            "weights": None,
            "base_filters": self.base_filters,
            "fc_filters": self.fc_filters,
            "dropout": self.dropout,
        }
