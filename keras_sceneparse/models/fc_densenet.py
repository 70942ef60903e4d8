"""FC-DenseNet, the One Hundred Layers Tiramisu (Jégou, Drozdzal, Vazquez, Romero and Bengio, CVPRW 2017)."""

import numbers

import keras

from keras_sceneparse.layers.dense_blocks import (
    DenseBlock,
    TransitionDown,
    TransitionUp,
)
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_float, check_int

#: Layers per dense block of FC-DenseNet103 (Table 2): five downsampling blocks, the
#: bottleneck, five upsampling blocks.
FC_DENSENET103_LAYERS = (4, 5, 7, 10, 12, 15, 12, 10, 7, 5, 4)
#: Transition downs of the three networks of the paper (Table 2).
PAPER_NUM_POOLS = 5


@serializable
@register_model("fc_densenet56", layers_per_block=4, growth_rate=12)
@register_model("fc_densenet67", layers_per_block=5, growth_rate=16)
@register_model("fc_densenet103", layers_per_block=FC_DENSENET103_LAYERS, growth_rate=16)
class FCDenseNet(SegmentationModel):
    """FC-DenseNet ("the One Hundred Layers Tiramisu"): a U-shaped network of dense blocks.

    Jégou, Drozdzal, Vazquez, Romero and Bengio, "The One Hundred Layers Tiramisu: Fully
    Convolutional DenseNets for Semantic Segmentation", CVPR Workshops 2017,
    https://arxiv.org/abs/1611.09326. Reference code (Theano/Lasagne):
    https://github.com/SimJeg/FC-DenseNet.

    Architecture (Sec. 3, Fig. 1, Tables 1 and 2): a 3x3 convolution with 48 filters; a
    downsampling path of :class:`~keras_sceneparse.layers.DenseBlock` and
    :class:`~keras_sceneparse.layers.TransitionDown` (5 of each), each block's output (its
    input and its new feature maps) kept as a skip connection; a bottleneck dense block; an
    upsampling path of :class:`~keras_sceneparse.layers.TransitionUp` and dense blocks,
    where only the feature maps a block creates are upsampled (Sec. 3.2, "to avoid the
    feature explosion") and concatenated with the skip connection; the last upsampling
    block keeps its input too, and a 1x1 convolution scores the classes. Every layer inside
    a block is batch normalisation, ReLU, 3x3 convolution with ``growth_rate`` filters and
    dropout 0.2 (Table 1). The three networks of the paper (Sec. 4, Table 2):

    - ``"fc_densenet56"``: 4 layers per dense block, growth rate 12;
    - ``"fc_densenet67"``: 5 layers per dense block, growth rate 16;
    - ``"fc_densenet103"``: blocks of 4, 5, 7, 10, 12 layers, a bottleneck of 15, then 12,
      10, 7, 5, 4; growth rate 16. The stack has m = 48, 112, 192, 304, 464, 656 feature
      maps down to the bottleneck, 896 at its end, then 1088, 816, 576, 384, 256 (the
      reference README corrects the bottleneck and later values of Table 2 by +16).

    The name counts the convolutions: 103 = 1 + 38 + 5 + 15 + 5 + 38 + 1.

    Choices: the output is logits; the paper's softmax belongs to the loss. Transposed
    convolutions are unpadded and give ``2h + 1`` maps, centre-cropped to the skip
    connection's size exactly as the reference code's ``ConcatLayer(cropping=...)`` does
    (cropping, not resizing), and the max pooling floors odd sizes; so any image of at
    least ``2 ** num_pools`` (32) pixels a side works and the logits have the input's size.
    Convolutions have biases and He-uniform initial weights, batch normalisation epsilon
    1e-4, as in the reference code. The paper says nothing of the input scaling (its data
    loader is not public); we scale ``[0, 255]`` RGB to ``[0, 1]``. The reference ``train.py``
    and ``test.py`` normalise with the statistics of the current batch even when
    evaluating (``batch_norm_use_averages=False``); ours uses the moving statistics in
    inference, as every Keras model does.
    Weight decay 1e-4 and RMSprop (Sec. 4) are the training recipe, not the model.

    Parameters: Table 2 gives 1.5M (56), 3.5M (67) and 9.4M (103) for 11 CamVid classes.
    Ours, for 11 classes: 1,376,795 / 3,463,243 / 9,322,091 trainable weights, and
    1,397,963 / 3,502,923 / 9,425,163 with the batch-norm moving statistics. The reference
    code prints the latter kind of count (``Network.summary`` sums
    ``get_all_param_values``, which includes Lasagne's batch-norm ``mean`` and
    ``inv_std``), and so counted 67 is within 0.1% and 103 within 0.3% of the paper;
    counting trainable weights only, 103 is 0.8% and 67 1.05% below it. FC-DenseNet56 is
    7% below either way: the configuration the paper states (4 layers per block, k = 12,
    48 first filters, 5 pools) gives 1.40M, re-implementers report 1.4M too
    (SimJeg/FC-DenseNet issue 31, unanswered), and the reference repository has no 56
    configuration file to compare with. The tests assert these counts and derive them
    layer by layer from Table 1.

    Args:
        num_classes: number of classes (11 for CamVid in the paper).
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        layers_per_block: layers of each dense block: one int for every block, or
            ``2 * num_pools + 1`` ints (downsampling blocks, bottleneck, upsampling blocks).
        num_pools: number of transitions down (and up); inferred from a sequence
            ``layers_per_block``, 5 (the paper's) for an int.
        growth_rate: ``k``, the feature maps each layer adds.
        first_filters: filters of the first 3x3 convolution (48).
        dropout: dropout rate after every convolution of the blocks and transitions down (0.2).
        include_preprocessing: scale ``[0, 255]`` inputs to ``[0, 1]``.

    Example:
        >>> model = ksp.models.get("fc_densenet56", num_classes=12)
        >>> tiny = FCDenseNet(num_classes=3, layers_per_block=(2, 2, 2), growth_rate=4, first_filters=8)
        >>> tiny.predict(np.zeros((1, 45, 37, 3)), verbose=0).shape
        (1, 45, 37, 3)
    """

    feature_layer = "up_block1"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        layers_per_block=FC_DENSENET103_LAYERS,
        num_pools=None,
        growth_rate=16,
        first_filters=48,
        dropout=0.2,
        include_preprocessing=True,
        **kwargs,
    ):
        blocks = _layers_per_block(layers_per_block, num_pools)
        num_pools = len(blocks) // 2
        # Each transition down floors the size: the bottleneck needs 2 ** num_pools pixels.
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape, min_size=2**num_pools)
        growth_rate = check_int("growth_rate", growth_rate, minimum=1)
        first_filters = check_int("first_filters", first_filters, minimum=1)
        dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, "unit", include_preprocessing)
        x = keras.layers.Conv2D(
            first_filters, 3, padding="same", kernel_initializer="he_uniform", name="first_conv"
        )(x)

        skips = []
        for level in range(num_pools):
            x = DenseBlock(blocks[level], growth_rate, dropout=dropout, name=f"down_block{level + 1}")(x)
            skips.append(x)
            x = TransitionDown(dropout=dropout, name=f"transition_down{level + 1}")(x)

        # From the bottleneck on, blocks pass on only their new feature maps (Sec. 3.2).
        x = DenseBlock(blocks[num_pools], growth_rate, dropout=dropout, include_input=False, name="bottleneck")(x)
        for level in reversed(range(num_pools)):
            x = TransitionUp(name=f"transition_up{level + 1}")(x, skips[level])
            x = DenseBlock(
                blocks[2 * num_pools - level], growth_rate, dropout=dropout, include_input=level == 0,
                name=f"up_block{level + 1}",
            )(x)

        x = keras.layers.Conv2D(num_classes, 1, kernel_initializer="he_uniform", name="classifier")(x)
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
        self.layers_per_block = blocks
        self.num_pools = num_pools
        self.growth_rate = growth_rate
        self.first_filters = first_filters
        self.dropout = dropout

    def get_config(self):
        return {
            **self.base_config(),
            "weights": None,
            "layers_per_block": self.layers_per_block,
            "num_pools": self.num_pools,
            "growth_rate": self.growth_rate,
            "first_filters": self.first_filters,
            "dropout": self.dropout,
        }


def _layers_per_block(layers_per_block, num_pools):
    """The ``2 * num_pools + 1`` block sizes, from one int or a sequence (reference ``n_layers_per_block``)."""
    if isinstance(layers_per_block, numbers.Integral) and not isinstance(layers_per_block, bool):
        num_pools = check_int("num_pools", PAPER_NUM_POOLS if num_pools is None else num_pools, minimum=1)
        return (check_int("layers_per_block", layers_per_block, minimum=1),) * (2 * num_pools + 1)
    try:
        blocks = tuple(layers_per_block)
    except TypeError:
        raise TypeError(
            f"`layers_per_block` must be an int or a sequence of ints, got {layers_per_block!r}."
        ) from None
    blocks = tuple(check_int(f"layers_per_block[{index}]", n, minimum=1) for index, n in enumerate(blocks))
    if len(blocks) < 3 or len(blocks) % 2 == 0:
        raise ValueError(
            "`layers_per_block` must list 2 * num_pools + 1 blocks (downsampling blocks, bottleneck, upsampling "
            f"blocks), an odd number of at least 3; got {len(blocks)}: {layers_per_block!r}."
        )
    if num_pools is not None and check_int("num_pools", num_pools, minimum=1) != len(blocks) // 2:
        raise ValueError(
            f"`num_pools`={num_pools} needs {2 * num_pools + 1} entries in `layers_per_block`, got {len(blocks)}: "
            f"{layers_per_block!r}."
        )
    return blocks
