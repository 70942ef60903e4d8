"""The classification heads that many segmentation models end with, built in one place.

Most models of the zoo end the same way: an optional 3x3 convolution with batch norm and
ReLU, dropout, a 1x1 convolution that scores the classes, and bilinear upsampling of the
logits to the input (FCN's head as PSPNet, DANet, CCNet, OCRNet, EncNet, BiSeNet and
mmsegmentation's ``FCNHead`` use it). Their auxiliary heads for deep supervision are the
same head on an earlier feature map. :func:`segmentation_head` builds it in a functional
model with stable layer names, so that every model names its head's layers alike:

========================  ======================  =========================
layer                     main output             auxiliary output ``key``
========================  ======================  =========================
3x3 conv + BN + ReLU      ``head_conv``           ``{key}_conv``
dropout                   ``head_dropout``        ``{key}_dropout``
1x1 classifier            ``classifier``          ``{key}_classifier``
bilinear upsampling       ``output_upsampling``   ``{key}_upsampling``
========================  ======================  =========================
"""

import keras

from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.segmentation_model import MAIN_OUTPUT, SegmentationModel

#: Name of the FCN auxiliary head's output in the models' output dict.
AUXILIARY_OUTPUT = "aux"


def segmentation_head(
    features, num_classes, reference, filters=None, dropout=None, channel_dropout=True, name=MAIN_OUTPUT
):
    """Scores ``features`` for ``num_classes`` classes at the size of ``reference``.

    ``features`` -> [3x3 conv to ``filters`` + BN + ReLU] -> [dropout] -> 1x1 convolution
    -> bilinear upsampling to ``reference``'s size -> float32 logits named ``name``.

    Args:
        features: feature map ``(batch, h, w, channels)``, a Keras tensor.
        num_classes: number of classes scored by the 1x1 convolution.
        reference: tensor whose spatial size the logits take (usually the input images).
        filters: channels of the 3x3 convolution; ``None`` builds none.
        dropout: dropout rate before the classifier; ``None`` builds no dropout layer (a rate
            of 0 builds one that passes its input on, so that the layer names stay the same).
        channel_dropout: drop whole channels (``SpatialDropout2D``, PyTorch's
            ``nn.Dropout2d`` of mmsegmentation and the reference codes) or single
            activations (``Dropout``, Caffe's dropout layer of the PSPNet release).
        name: the output's name: ``"logits"`` for the main output, else the auxiliary
            output's key, which also prefixes the head's layer names.
    """
    prefix = "" if name == MAIN_OUTPUT else f"{name}_"
    x = features
    if filters is not None:
        x = ConvBNReLU(filters, 3, name=f"{prefix or 'head_'}conv")(x)
    if dropout is not None:
        layer = keras.layers.SpatialDropout2D if channel_dropout else keras.layers.Dropout
        x = layer(dropout, name=f"{prefix or 'head_'}dropout")(x)
    x = keras.layers.Conv2D(num_classes, 1, name=f"{prefix}classifier")(x)
    x = ResizeToReference(name=f"{prefix or 'output_'}upsampling")(x, reference)
    return SegmentationModel.logits_output(x, name=name)


def fcn_auxiliary_head(features, num_classes, filters, dropout, reference, name=AUXILIARY_OUTPUT):
    """FCN auxiliary head for deep supervision: 3x3 conv + BN + ReLU, channel dropout,
    1x1 classifier, upsampling to ``reference``.

    mmsegmentation's ``FCNHead(num_convs=1, concat_input=False)``, the auxiliary head on
    ``C4`` of all its dilated-ResNet models (256 channels; CCNet's and EncNet's released
    codes use 512 and 256); its logits are upsampled to the input like the main output's.
    """
    return segmentation_head(features, num_classes, reference, filters=filters, dropout=dropout, name=name)
