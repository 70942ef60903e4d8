"""DeconvNet (Noh, Hong and Han, ICCV 2015)."""

import keras
from keras import ops

from keras_sceneparse.backend import resize_images
from keras_sceneparse.layers.conv_bn_relu import BATCH_NORM_MOMENTUM, ConvBNReLU
from keras_sceneparse.layers.max_pooling_with_argmax import MaxPoolingWithArgmax2D
from keras_sceneparse.layers.max_unpooling import MaxUnpooling2D
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.dilated_net import load_vgg16_weights, vgg16_widths
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_int

#: The fixed input size of the paper's network (Table 1): pool5 is 7x7, which fc6 (7x7,
#: unpadded) reduces to 1x1.
WINDOW_SIZE = 224
FC6_KERNEL = WINDOW_SIZE // 32
#: Deconvolution widths after each unpooling, deepest first (Table 1: deconv5_1 ... deconv1_2).
DECODER_BLOCKS = ((512, 512, 512), (512, 512, 256), (256, 256, 128), (128, 64), (64, 64))


@serializable
@register_model("deconvnet")
class DeconvNet(SegmentationModel):
    """DeconvNet: a VGG-16 encoder and its mirror of unpooling and deconvolution layers.

    Noh, Hong and Han, "Learning Deconvolution Network for Semantic Segmentation", ICCV
    2015, https://arxiv.org/abs/1505.04366.

    Architecture (Sec. 3, Fig. 2, Table 1): the 13 convolutions of VGG-16 with 2x2 max
    pooling that records its switch variables
    (:class:`~keras_sceneparse.layers.MaxPoolingWithArgmax2D`); ``fc6`` a 7x7 unpadded
    convolution with 4096 channels that takes the 7x7 pool5 map to 1x1, ``fc7`` a 1x1
    convolution with 4096 channels; ``deconv-fc6`` a 7x7 transposed convolution back to
    7x7x512. The decoder mirrors the encoder: each unpooling
    (:class:`~keras_sceneparse.layers.MaxUnpooling2D`) puts the activations back at the
    locations of its pooling's maxima, and 3x3 deconvolutions (transposed convolutions,
    stride 1) densify them: 512-512-512, 512-512-256, 256-256-128, 128-64, 64-64; a 1x1
    convolution scores the classes. Batch normalisation and ReLU follow every convolution
    and deconvolution (Sec. 4.1), ``fc6``, ``fc7`` and ``deconv-fc6`` included.

    Input size: the network itself takes 224x224 inputs only (``fc6`` is a 7x7 valid
    convolution on pool5). The paper applies it to object proposals, each cropped from the
    image and resized to the network's input, and maps each output back onto its proposal
    before aggregating them (Sec. 3.3, 5.1). This model does that for one window, the whole
    image: any image (after the Caffe normalisation) is
    resized bilinearly to 224x224, and the 224x224 class scores are resized bilinearly back
    to the image size. With a 224x224 input both resizings are the identity. Proposal
    extraction and aggregation (and the paper's FCN ensemble, "EDeconvNet") are not part
    of this network.

    Choices: convolutions and deconvolutions followed by batch normalisation have no bias
    (the normalisation's offset makes it redundant; 16,704 fewer weights than a reference with
    biases);
    the output 1x1 convolution has one. No dropout (the paper does not mention any; batch
    normalisation is its regulariser). ``base_filters`` and ``fc_filters`` shrink the
    network for tests; ``weights="imagenet"`` copies keras.applications' VGG-16 kernels
    into the encoder (the paper initialises from ImageNet VGG-16, Sec. 4.2).

    Parameters: the paper gives 252M for the whole network (Sec. 3.1, 21 classes).
    Ours: 251,788,949 trainable (convolution weights, the output convolution's biases and
    batch-norm scales and offsets over 16,704 channels) plus 33,408 batch-norm moving
    statistics, 251,822,357 in all; a test checks the trainable count within 1% of 252M
    (it is 0.08% below).

    Args:
        num_classes: number of classes (21 for PASCAL VOC).
        input_shape: ``(height, width, channels)``; sizes may be ``None`` (any size works
            through the resizing described above).
        weights: ``None`` or ``"imagenet"`` (needs ``base_filters=64`` and a download).
        base_filters: width of VGG-16's first block (64); every block, and the decoder,
            scales with it.
        fc_filters: channels of ``fc6``/``fc7`` (4096).
        include_preprocessing: apply VGG-16's Caffe normalisation to ``[0, 255]`` RGB inputs.

    Example:
        >>> model = DeconvNet(num_classes=21, input_shape=(224, 224, 3))
    """

    feature_layer = "deconv1_2"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        weights=None,
        base_filters=64,
        fc_filters=4096,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(
            num_classes, input_shape, channels=3 if weights == "imagenet" else None
        )
        check_choice("weights", weights, {None, "imagenet"})
        base_filters = check_int("base_filters", base_filters, minimum=1)
        if weights == "imagenet" and base_filters != 64:
            raise ValueError(f"`weights='imagenet'` needs `base_filters=64`, got base_filters={base_filters}.")
        fc_filters = check_int("fc_filters", fc_filters, minimum=1)
        encoder_widths = vgg16_widths(base_filters)
        decoder_widths = tuple(tuple(width * base_filters // 64 for width in block) for block in DECODER_BLOCKS)

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, "caffe", include_preprocessing)
        x = WindowResizing(WINDOW_SIZE, name="window_resizing")(x)
        encoder_convs = []
        switches = []
        for block, widths in enumerate(encoder_widths, start=1):
            for index, filters in enumerate(widths, start=1):
                conv = ConvBNReLU(filters, 3, name=f"conv{block}_{index}")
                encoder_convs.append(conv)
                x = conv(x)
            before_pool = x
            x, indices = MaxPoolingWithArgmax2D(2, name=f"pool{block}")(x)
            switches.append((before_pool, indices))

        x = _batch_norm_relu(keras.layers.Conv2D(fc_filters, FC6_KERNEL, use_bias=False, name="fc6")(x), "fc6")
        x = ConvBNReLU(fc_filters, 1, name="fc7")(x)
        x = keras.layers.Conv2DTranspose(encoder_widths[-1][-1], FC6_KERNEL, use_bias=False, name="deconv_fc6")(x)
        x = _batch_norm_relu(x, "deconv_fc6")

        for block, widths in zip(range(len(encoder_widths), 0, -1), decoder_widths):
            reference, indices = switches[block - 1]
            x = MaxUnpooling2D(2, name=f"unpool{block}")(x, indices, reference)
            for index, filters in enumerate(widths, start=1):
                name = f"deconv{block}_{index}"
                x = keras.layers.Conv2DTranspose(filters, 3, padding="same", use_bias=False, name=name)(x)
                x = _batch_norm_relu(x, name)
        x = keras.layers.Conv2D(num_classes, 1, name="score")(x)
        x = ResizeToReference(name="output_resizing")(x, inputs)
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
            load_vgg16_weights(encoder_convs)

        # === Config ===
        self.base_filters = base_filters
        self.fc_filters = fc_filters

    def get_config(self):
        return {
            **self.base_config(),
            "weights": None,
            "base_filters": self.base_filters,
            "fc_filters": self.fc_filters,
        }


@serializable
class WindowResizing(keras.layers.Layer):
    """Bilinearly resizes images of any size to DeconvNet's fixed ``size x size`` window.

    (``keras.layers.Resizing`` is not used: in a functional model it makes a call with
    ``training=None`` run the batch normalisation layers in training mode.)
    """

    def __init__(self, size=WINDOW_SIZE, **kwargs):
        super().__init__(**kwargs)
        self.size = check_int("size", size, minimum=1)

    def call(self, inputs):
        return ops.cast(resize_images(inputs, (self.size, self.size)), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size, self.size, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def _batch_norm_relu(x, name):
    x = keras.layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, name=f"{name}_bn")(x)
    return keras.layers.Activation("relu", name=f"{name}_relu")(x)
