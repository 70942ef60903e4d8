"""ResNet-18 and ResNet-34 (He, Zhang, Ren and Sun, CVPR 2016), which ``keras.applications`` lacks.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016,
https://arxiv.org/abs/1512.03385. Table 1: a 7x7/2 convolution of 64 channels, a 3x3/2 max
pooling, then four stages of "basic blocks" (two 3x3 convolutions and an identity shortcut,
Fig. 5 left) of 64, 128, 256 and 512 channels: [2, 2, 2, 2] blocks for the 18-layer
network, [3, 4, 6, 3] for the 34-layer one. Batch normalisation follows every convolution
(Sec. 3.4). The first block of stages 3-5 halves the resolution with a stride-2 first
convolution and projects its shortcut with a 1x1 stride-2 convolution (option B, Sec. 3.3).

The layout is torchvision's (``torchvision.models.resnet18/34``): convolutions without
bias, the stride on the 3x3 convolution, padding of 3 (stem), 1 (max pooling and strided
3x3) on both sides, batch-norm epsilon 1e-5, convolution kernels drawn as torchvision draws
them (He normal over fan-out). Layer names follow ``keras.applications.ResNet50``
(``conv1_conv``, ``conv1_bn``, ``conv1_relu``, ``pool1_pool``, ``conv{stage}_block{block}_
{1,2}_{conv,bn,relu}``, the projection ``_0_conv`` / ``_0_bn``, ``_add``, ``_out``), so
:class:`~keras_sceneparse.backbones.Backbone` and its dilation rewrite treat them like the
applications. Strided convolutions are explicit ``ZeroPadding2D`` + ``"valid"``
convolutions, as in ``keras.applications``: that is torchvision's symmetric padding (Keras'
``"same"`` pads only after the image at stride 2), and what the dilation rewrite replaces
by ``"same"`` padding when a stage loses its stride.

Parameters (without the 1000-way classifier, which torchvision counts): ResNet-18
11,176,512 trainable (torchvision's 11,689,512 minus the 513,000 of ``fc``), ResNet-34
21,284,672 (21,797,672 minus 513,000); with ``include_top=True`` exactly torchvision's.

No ImageNet weights: Keras ships none for these depths, so ``weights="imagenet"`` raises.
"""

import keras

from keras_sceneparse.utils.validation import check_choice, check_image_shape, check_int

#: Basic blocks per stage (conv2_x ... conv5_x), He et al. 2016, Table 1.
BLOCKS_PER_STAGE = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}

# torchvision's BatchNorm2d epsilon; its momentum 0.1 is Keras' 0.9.
_BATCH_NORM_EPSILON = 1e-5
_BATCH_NORM_MOMENTUM = 0.9


def _kernel_initializer():
    # torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu").
    return keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="untruncated_normal")


def _conv_bn(x, filters, kernel_size, strides, name):
    """A bias-free convolution and batch normalisation, padded like torchvision's."""
    if strides > 1 and kernel_size > 1:
        pad = kernel_size // 2
        x = keras.layers.ZeroPadding2D(((pad, pad), (pad, pad)), name=f"{name}_pad")(x)
        padding = "valid"
    else:
        padding = "same"
    x = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=_kernel_initializer(),
        name=f"{name}_conv",
    )(x)
    return keras.layers.BatchNormalization(
        epsilon=_BATCH_NORM_EPSILON, momentum=_BATCH_NORM_MOMENTUM, name=f"{name}_bn"
    )(x)


def basic_block(x, filters, strides, name):
    """He et al. 2016, Fig. 5 (left): ``relu(F(x) + shortcut(x))`` with ``F`` two 3x3 convs.

    The shortcut is the identity, or a 1x1 convolution with batch normalisation (option B,
    Sec. 3.3) where the block changes resolution or width.
    """
    if strides > 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, strides, f"{name}_0")
    else:
        shortcut = x
    y = _conv_bn(x, filters, 3, strides, f"{name}_1")
    y = keras.layers.Activation("relu", name=f"{name}_1_relu")(y)
    y = _conv_bn(y, filters, 3, 1, f"{name}_2")
    y = keras.layers.Add(name=f"{name}_add")([shortcut, y])
    return keras.layers.Activation("relu", name=f"{name}_out")(y)


def ResNet(
    blocks_per_stage,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    base_filters=64,
    name="resnet",
):
    """A ResNet of basic blocks with the ``keras.applications`` interface.

    Args:
        blocks_per_stage: basic blocks in each of the four stages.
        include_top: add global average pooling and the ``classes``-way classifier.
        weights: must be ``None``; no ImageNet weights exist offline for these networks.
        input_tensor: optional ``keras.Input`` to build on.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        pooling: without the top, ``None`` (feature maps), ``"avg"`` or ``"max"``.
        classes: classifier width (with ``include_top``).
        classifier_activation: activation of the classifier.
        base_filters: width of the stem and of the first stage (64 in the paper); the
            stages have 1, 2, 4 and 8 times this. Smaller values make cheap test models.
        name: model name.
    """
    blocks_per_stage = tuple(check_int("blocks_per_stage[i]", count, minimum=1) for count in blocks_per_stage)
    if len(blocks_per_stage) != 4:
        raise ValueError(f"`blocks_per_stage` must give 4 stages, got {blocks_per_stage!r}.")
    if weights is not None:
        check_choice("weights", weights, {None, "imagenet"})
        depth = 2 * sum(blocks_per_stage) + 2
        raise ValueError(
            f"`weights='imagenet'`: no ImageNet weights are available for ResNet-{depth}. keras.applications "
            "ships ResNet-50/101/152 only, and this library downloads nothing else; use `weights=None` "
            "(random initialisation) or load converted weights into the model yourself."
        )
    base_filters = check_int("base_filters", base_filters, minimum=1)
    check_choice("pooling", pooling, {None, "avg", "max"})

    if input_tensor is None:
        input_shape = check_image_shape((None, None, 3) if input_shape is None else input_shape)
        inputs = keras.Input(shape=input_shape, name="input_layer")
    else:
        inputs = input_tensor

    # Table 1, conv1 and the start of conv2_x.
    x = _conv_bn(inputs, base_filters, 7, 2, "conv1")
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    # Zero padding equals torchvision's -inf padding here: the inputs are ReLU outputs.
    x = keras.layers.ZeroPadding2D(((1, 1), (1, 1)), name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)

    for stage, blocks in enumerate(blocks_per_stage):
        filters = base_filters * 2**stage
        for block in range(blocks):
            strides = 2 if stage > 0 and block == 0 else 1
            x = basic_block(x, filters, strides, name=f"conv{stage + 2}_block{block + 1}")

    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = keras.layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    model_inputs = keras.utils.get_source_inputs(input_tensor) if input_tensor is not None else inputs
    return keras.Model(model_inputs, x, name=name)


def ResNet18(include_top=True, weights=None, input_tensor=None, input_shape=None, name="resnet18", **kwargs):
    """ResNet-18 (He et al. 2016, Table 1): basic blocks [2, 2, 2, 2]. See :func:`ResNet`."""
    return ResNet(
        BLOCKS_PER_STAGE["resnet18"],
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        name=name,
        **kwargs,
    )


def ResNet34(include_top=True, weights=None, input_tensor=None, input_shape=None, name="resnet34", **kwargs):
    """ResNet-34 (He et al. 2016, Table 1): basic blocks [3, 4, 6, 3]. See :func:`ResNet`."""
    return ResNet(
        BLOCKS_PER_STAGE["resnet34"],
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        name=name,
        **kwargs,
    )
