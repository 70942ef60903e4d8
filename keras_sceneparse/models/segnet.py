"""SegNet (Badrinarayanan, Kendall and Cipolla, TPAMI 2017)."""

import keras

from keras_sceneparse.layers import ConvBNReLU, MaxPoolingWithArgmax2D, MaxUnpooling2D
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float

# VGG16's 13 convolutions in 5 blocks (Simonyan and Zisserman 2015, configuration D).
ENCODER_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
# Decoder convolutions after each unpooling, deepest block first, as in the reference
# segnet_train.prototxt (conv5_3_D ... conv1_2_D); conv1_1_D, the classifier, follows.
DECODER_BLOCKS = ((512, 512, 512), (512, 512, 256), (256, 256, 128), (128, 64), (64,))


@serializable
@register_model("segnet")
class SegNet(SegmentationModel):
    """SegNet: a VGG16 encoder and a decoder that upsamples with the encoder's pooling indices.

    Badrinarayanan, Kendall and Cipolla, "SegNet: A Deep Convolutional Encoder-Decoder
    Architecture for Image Segmentation", TPAMI 2017, https://arxiv.org/abs/1511.00561.

    Architecture (Sec. 3, Fig. 2): the encoder is "topologically identical to the 13
    convolutional layers in the VGG16 network", each followed by batch normalisation and
    ReLU, with 2x2 max pooling of stride 2 that stores its argmax indices
    (:class:`~keras_sceneparse.layers.MaxPoolingWithArgmax2D`). Each of the five decoder
    stages unpools with the stored indices
    (:class:`~keras_sceneparse.layers.MaxUnpooling2D`, no learned upsampling) and applies
    3x3 convolutions with batch normalisation and ReLU mirroring the encoder (the reference
    ``segnet_train.prototxt``: 512-512-512, 512-512-256, 256-256-128, 128-64, 64); the last
    3x3 convolution outputs the class scores for the soft-max. Pooling uses Caffe's ceil
    mode and unpooling crops back to the pooled size, so any input size works.

    Choice: the reference convolutions have a bias before batch normalisation, which the
    normalisation cancels; ours have none (7,936 fewer weights, same function).

    Parameters: the paper gives 14.7M for the encoder (Sec. 3: "from 134M to 14.7M"); ours
    has 14,718,912 (convolutions and batch-norm scales and offsets), a test checks it within
    1%. The whole model has 29,441,419 trainable weights for the 11 CamVid classes (plus
    15,872 batch-norm moving statistics), in line with the 117 MB model of Table 6.

    Args:
        num_classes: number of classes (11 for CamVid in the paper, 12 with void).
        input_shape: ``(height, width, channels)``; 360x480x3 for CamVid.
        weights: ``None`` or ``"imagenet"``: initialise the encoder kernels from VGG16
            (the paper's initialisation; needs 3 channels and a download).
        dropout: the Bayesian SegNet variant's dropout after the deepest encoder and decoder
            stages; 0 (the default) is the SegNet of the paper.
        include_preprocessing: apply VGG16's Caffe normalisation to ``[0, 255]`` RGB inputs.
    """

    feature_layer = "conv1_2_D"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        weights=None,
        dropout=0.0,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(
            num_classes, input_shape, channels=3 if weights == "imagenet" else None
        )
        check_choice("weights", weights, {None, "imagenet"})
        dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, "caffe", include_preprocessing)
        encoder_convs = []
        pooled = []
        for block, widths in enumerate(ENCODER_BLOCKS, start=1):
            for index, filters in enumerate(widths, start=1):
                conv = ConvBNReLU(filters, 3, name=f"conv{block}_{index}")
                encoder_convs.append(conv)
                x = conv(x)
            if dropout and block == len(ENCODER_BLOCKS):
                x = keras.layers.Dropout(dropout, name=f"encoder{block}_dropout")(x)
            before_pool = x
            x, indices = MaxPoolingWithArgmax2D(2, name=f"pool{block}")(x)
            pooled.append((before_pool, indices))

        for block, widths in zip(range(len(ENCODER_BLOCKS), 0, -1), DECODER_BLOCKS):
            reference, indices = pooled[block - 1]
            x = MaxUnpooling2D(2, name=f"upsample{block}")(x, indices, reference)
            for index, filters in zip(range(len(ENCODER_BLOCKS[block - 1]), 0, -1), widths):
                x = ConvBNReLU(filters, 3, name=f"conv{block}_{index}_D")(x)
            if dropout and block == len(ENCODER_BLOCKS):
                x = keras.layers.Dropout(dropout, name=f"decoder{block}_dropout")(x)
        x = keras.layers.Conv2D(num_classes, 3, padding="same", name="conv1_1_D")(x)
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
            _load_vgg16_kernels(encoder_convs)

        # === Config ===
        self.dropout = dropout

    def get_config(self):
        return {
            **self.base_config(),
            "weights": None,
            "dropout": self.dropout,
        }


def _load_vgg16_kernels(encoder_convs):
    vgg = keras.applications.VGG16(include_top=False, weights="imagenet")
    vgg_convs = [layer for layer in vgg.layers if isinstance(layer, keras.layers.Conv2D)]
    for ours, theirs in zip(encoder_convs, vgg_convs, strict=True):
        ours.sublayers[0].kernel.assign(theirs.kernel)
