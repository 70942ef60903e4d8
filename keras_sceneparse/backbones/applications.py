"""The ``keras.applications`` encoders the backbones are built on, and their pyramid layers.

ResNet-18 and ResNet-34, which ``keras.applications`` lacks, come from
:mod:`keras_sceneparse.backbones.resnet` with the same interface and layer names.

For each architecture: the constructor, the input normalisation its ImageNet weights
expect, and the layer whose output is the last feature map at stride 2, 4, 8, 16 and 32
(``C1`` ... ``C5``, named after FPN's ``C_i``, Lin et al., CVPR 2017). The pyramid layers
are taken just before each downsampling, after the activation where the network has one
there; they are the skip features that segmentation_models and keras-hub use.
"""

import dataclasses
from collections.abc import Callable

import keras

from keras_sceneparse.backbones.resnet import ResNet18, ResNet34


@dataclasses.dataclass(frozen=True)
class ApplicationSpec:
    """How to build one encoder: ``constructor`` names a ``keras.applications`` function,
    unless ``builder`` gives a function of the same interface (the networks Keras lacks)."""

    constructor: str
    normalization: str
    pyramid_layers: tuple
    constructor_kwargs: tuple = ()
    builder: Callable | None = None

    def build(self, input_shape, weights, **kwargs):
        builder = self.builder or getattr(keras.applications, self.constructor)
        return builder(
            include_top=False,
            weights=weights,
            input_shape=tuple(input_shape),
            **dict(self.constructor_kwargs),
            **kwargs,
        )


APPLICATIONS = {
    "vgg16": ApplicationSpec(
        "VGG16",
        "caffe",
        ("block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3", "block5_pool"),
    ),
    "vgg19": ApplicationSpec(
        "VGG19",
        "caffe",
        ("block2_conv2", "block3_conv4", "block4_conv4", "block5_conv4", "block5_pool"),
    ),
    # Not in keras.applications: built by backbones/resnet.py in torchvision's layout, with
    # torchvision's input normalisation (ImageNet mean and std on [0, 1] RGB).
    "resnet18": ApplicationSpec(
        "ResNet18",
        "imagenet",
        ("conv1_relu", "conv2_block2_out", "conv3_block2_out", "conv4_block2_out", "conv5_block2_out"),
        builder=ResNet18,
    ),
    "resnet34": ApplicationSpec(
        "ResNet34",
        "imagenet",
        ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
        builder=ResNet34,
    ),
    "resnet50": ApplicationSpec(
        "ResNet50",
        "caffe",
        ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
    ),
    "resnet101": ApplicationSpec(
        "ResNet101",
        "caffe",
        ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block23_out", "conv5_block3_out"),
    ),
    "resnet152": ApplicationSpec(
        "ResNet152",
        "caffe",
        ("conv1_relu", "conv2_block3_out", "conv3_block8_out", "conv4_block36_out", "conv5_block3_out"),
    ),
    "mobilenet_v2": ApplicationSpec(
        "MobileNetV2",
        "tf",
        ("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu", "out_relu"),
    ),
    # keras' Xception is the original one (Chollet, CVPR 2017), with a 'valid' stem, so its
    # maps are a few pixels smaller than input/stride; decoders resize to match.
    "xception": ApplicationSpec(
        "Xception",
        "tf",
        ("block2_sepconv2_bn", "block3_sepconv2_bn", "block4_sepconv2_bn", "block13_sepconv2_bn", "block14_sepconv2_act"),
    ),
}
