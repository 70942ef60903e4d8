"""RefineNet's building blocks (Lin, Milan, Shen and Reid, CVPR 2017).

Lin et al., "RefineNet: Multi-Path Refinement Networks for High-Resolution Semantic
Segmentation", CVPR 2017, https://arxiv.org/abs/1611.06612, Sec. 3.2 and Fig. 3:

- :class:`ResidualConvUnit` (RCU, Fig. 3b): ``x + conv(relu(conv(relu(x))))``;
- :class:`MultiResolutionFusion` (Fig. 3c): a 3x3 convolution per input to a common width,
  upsampling to the largest input, summation;
- :class:`ChainedResidualPooling` (CRP, Fig. 3d): ``relu(x)`` plus a chain of
  5x5 max-pooling + 3x3 convolution blocks, each block's output added to the sum;
- :class:`RefineNetBlock` (Fig. 3a): adaptive convolutions (RCUs) per input path,
  multi-resolution fusion, chained residual pooling and output RCUs.

None of them has batch normalisation (Sec. 3.2: "batch-normalization layers are removed").
Convolutions start from N(0, 0.01), the initialisation of the reference MATLAB code
(``My_net_util.add_conv_layer_dagnn``): it keeps the variance of a 256-channel block's
output near its input's (x1.4, measured), while He initialisation, with no normalisation
in the residual chains, multiplies it by about 36,000 per block.
"""

import functools

import keras
from keras import ops

from keras_sceneparse.backend import resize_images
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


def _initializer(kernel_initializer):
    if kernel_initializer is None:
        return keras.initializers.RandomNormal(stddev=0.01)
    return keras.initializers.get(kernel_initializer)


def _conv3x3(filters, use_bias, initializer, policy, name):
    return keras.layers.Conv2D(
        filters, 3, padding="same", use_bias=use_bias, kernel_initializer=initializer, dtype=policy, name=name
    )


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _shape_list(shape):
    """A list of shapes from one shape or a list of shapes."""
    if isinstance(shape, (list, tuple)) and shape and isinstance(shape[0], (list, tuple)):
        return [tuple(s) for s in shape]
    return [tuple(shape)]


@serializable
class ResidualConvUnit(keras.layers.Layer):
    """Residual convolution unit (RCU) of RefineNet (Lin et al., CVPR 2017, Fig. 3b).

    A ResNet unit without batch normalisation:
    ``y = x + W2 * relu(W1 * relu(x) + b1)``, where ``*`` is a 3x3 convolution that keeps
    the channel count. As in the reference code the first convolution has a bias and the
    second does not (the sum's input ``x`` already carries one).

    Args:
        kernel_initializer: initializer of both kernels (default N(0, 0.01), as in the
            reference code).
    """

    def __init__(self, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = _initializer(kernel_initializer)
        self.conv1 = None
        self.conv2 = None

    def build(self, input_shape):
        channels = input_shape[-1]
        policy = self.dtype_policy
        self.conv1 = _conv3x3(channels, True, self.kernel_initializer, policy, "conv1")
        self.conv2 = _conv3x3(channels, False, self.kernel_initializer, policy, "conv2")
        self.conv1.build(input_shape)
        self.conv2.build(input_shape)

    def call(self, inputs):
        x = self.conv1(ops.relu(inputs))
        x = self.conv2(ops.relu(x))
        return inputs + x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@serializable
class MultiResolutionFusion(keras.layers.Layer):
    """Multi-resolution fusion of RefineNet (Lin et al., CVPR 2017, Fig. 3c).

    "This block first applies convolutions for input adaptation, which generate feature
    maps of the same feature dimension (the smallest one among the inputs), and then
    upsamples all (smaller) feature maps to the largest resolution of the inputs. Finally,
    all features maps are fused by summation" (Sec. 3.2):
    ``y = sum_i up(W_i * x_i)``, with ``W_i`` 3x3 convolutions without bias (the reference
    code's ``*_dimred`` layers) and ``up`` bilinear resizing to the largest input. A single
    input passes through unchanged, with no convolution (RefineNet-4 of Fig. 2c).

    Called on a list of feature maps. The largest input is found from the static shapes
    when they are known; otherwise every input is resized to the largest height and width
    found when the graph runs (a resize to the same size returns its input).

    Args:
        filters: output channels; ``None`` takes the smallest input channel count.
        kernel_initializer: initializer of the adaptation kernels (default N(0, 0.01)).
    """

    def __init__(self, filters=None, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = None if filters is None else check_int("filters", filters, minimum=1)
        self.kernel_initializer = _initializer(kernel_initializer)
        self.convs = []

    def _output_channels(self, shapes):
        return self.filters or min(shape[-1] for shape in shapes)

    def build(self, inputs_shape):
        shapes = _shape_list(inputs_shape)
        if len(shapes) == 1:
            return
        channels = self._output_channels(shapes)
        self.convs = [
            _conv3x3(channels, False, self.kernel_initializer, self.dtype_policy, f"adaptation_{index}")
            for index in range(len(shapes))
        ]
        for conv, shape in zip(self.convs, shapes):
            conv.build(shape)

    def call(self, inputs):
        inputs = _as_list(inputs)
        if len(inputs) == 1:
            return inputs[0]
        adapted = [conv(x) for conv, x in zip(self.convs, inputs)]
        largest = _largest_static(inputs)
        if largest is not None:
            size = ops.shape(adapted[largest])[1:3]
        else:
            shapes = [ops.shape(x) for x in inputs]
            size = (
                functools.reduce(ops.maximum, [shape[1] for shape in shapes]),
                functools.reduce(ops.maximum, [shape[2] for shape in shapes]),
            )
        fused = None
        for index, x in enumerate(adapted):
            if index != largest:
                x = resize_images(x, size, interpolation="bilinear")
            fused = x if fused is None else fused + x
        return fused

    def compute_output_shape(self, inputs_shape):
        shapes = _shape_list(inputs_shape)
        if len(shapes) == 1:
            return shapes[0]
        largest = _largest_static(shapes)
        sizes = shapes[largest][1:3] if largest is not None else (None, None)
        return (shapes[0][0], *sizes, self._output_channels(shapes))

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


def _largest_static(tensors_or_shapes):
    """Index of the input with the most pixels, if every spatial size is known statically."""
    sizes = []
    for item in tensors_or_shapes:
        shape = item.shape if hasattr(item, "shape") else item
        if shape[1] is None or shape[2] is None:
            return None
        sizes.append((shape[1], shape[2]))
    largest = max(range(len(sizes)), key=lambda i: sizes[i][0] * sizes[i][1])
    if any(h > sizes[largest][0] or w > sizes[largest][1] for h, w in sizes):
        return None
    return largest


@serializable
class ChainedResidualPooling(keras.layers.Layer):
    """Chained residual pooling (CRP) of RefineNet (Lin et al., CVPR 2017, Fig. 3d).

    "A chain of multiple pooling blocks, each consisting of one max-pooling layer and one
    convolution layer. One pooling block takes the output of the previous pooling block as
    input ... The output feature maps of all pooling blocks are fused together with the
    input feature map through summation of residual connections" (Sec. 3.2). The block
    starts with a ReLU ("important for the effectiveness of subsequent pooling"):

        ``z_0 = relu(x)``, ``z_i = W_i * maxpool_5x5(z_{i-1})``, ``y = z_0 + z_1 + ... + z_n``

    with stride-1 max pooling (windows clipped at the border) and 3x3 convolutions without
    bias. The paper's Fig. 3d draws 2 pooling blocks, as does the default of the reference
    training code (``chained_pool_num=2``); the released trained models use 4.

    Args:
        num_blocks: number of pooling blocks (2 here; RefineNet's model uses 4, see
            :class:`~keras_sceneparse.models.RefineNet`).
        pool_size: max-pooling window (5).
        kernel_initializer: initializer of the kernels (default N(0, 0.01)).
    """

    def __init__(self, num_blocks=2, pool_size=5, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.num_blocks = check_int("num_blocks", num_blocks, minimum=1)
        self.pool_size = check_int("pool_size", pool_size, minimum=1)
        self.kernel_initializer = _initializer(kernel_initializer)
        self.pool = keras.layers.MaxPooling2D(self.pool_size, strides=1, padding="same", dtype=self.dtype_policy)
        self.convs = []

    def build(self, input_shape):
        channels = input_shape[-1]
        self.convs = [
            _conv3x3(channels, False, self.kernel_initializer, self.dtype_policy, f"conv{index + 1}")
            for index in range(self.num_blocks)
        ]
        for conv in self.convs:
            conv.build(input_shape)

    def call(self, inputs):
        path = ops.relu(inputs)
        total = path
        for conv in self.convs:
            path = conv(self.pool(path))
            total = total + path
        return total

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "num_blocks": self.num_blocks,
            "pool_size": self.pool_size,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@serializable
class RefineNetBlock(keras.layers.Layer):
    """One RefineNet block (Lin et al., CVPR 2017, Fig. 3a), as the reference code builds it.

    Called as ``RefineNetBlock(filters)(features, previous)``:

    1. each backbone feature map in ``features`` (one tensor or a list) is adapted: a 3x3
       convolution without bias to ``filters`` channels (the reference code's
       ``p_ims*_dimred``; the paper's "filter number for each input path"), then
       ``adaptation_units`` :class:`ResidualConvUnit`\\ s (2, "Residual convolution unit");
    2. :class:`MultiResolutionFusion` of ``previous`` (the output of the coarser
       RefineNet block, which the reference code fuses without RCUs) and the adapted
       paths, to the smallest of their channel counts, at the largest resolution; a single
       path passes through;
    3. :class:`ChainedResidualPooling` with ``pooling_blocks`` blocks;
    4. ``output_units`` RCUs ("output convolutions").

    The output has ``min(filters, channels of previous)`` channels at the resolution of
    the finest input.

    Args:
        filters: width of the adapted input paths (512 for RefineNet-4, 256 otherwise).
        adaptation_units: RCUs per input path (2).
        pooling_blocks: pooling blocks in the CRP (Fig. 3d draws 2).
        output_units: RCUs after the CRP (Fig. 3a draws 1; the reference code has 3).
        kernel_initializer: initializer of every kernel (default N(0, 0.01), as in the
            reference code).
    """

    def __init__(
        self, filters, adaptation_units=2, pooling_blocks=2, output_units=1, kernel_initializer=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.adaptation_units = check_int("adaptation_units", adaptation_units, minimum=0)
        self.pooling_blocks = check_int("pooling_blocks", pooling_blocks, minimum=1)
        self.output_units = check_int("output_units", output_units, minimum=0)
        self.kernel_initializer = _initializer(kernel_initializer)

        policy = self.dtype_policy
        initializer = self.kernel_initializer
        self.fusion = MultiResolutionFusion(kernel_initializer=initializer, dtype=policy, name="fusion")
        self.pooling = ChainedResidualPooling(
            self.pooling_blocks, kernel_initializer=initializer, dtype=policy, name="pooling"
        )
        self.output_rcus = [
            ResidualConvUnit(kernel_initializer=initializer, dtype=policy, name=f"output_rcu{index + 1}")
            for index in range(self.output_units)
        ]
        self.adaptation_convs = []
        self.adaptation_rcus = []

    def build(self, features_shape, previous_shape=None):
        feature_shapes = _shape_list(features_shape)
        policy = self.dtype_policy
        initializer = self.kernel_initializer
        adapted_shapes = []
        for path, shape in enumerate(feature_shapes):
            conv = _conv3x3(self.filters, False, initializer, policy, f"path{path + 1}_adaptation")
            conv.build(shape)
            adapted = (*shape[:-1], self.filters)
            self.adaptation_convs.append(conv)
            for index in range(self.adaptation_units):
                unit = ResidualConvUnit(
                    kernel_initializer=initializer, dtype=policy, name=f"path{path + 1}_rcu{index + 1}"
                )
                unit.build(adapted)
                # One flat list: path p's units are [p * adaptation_units, (p + 1) * adaptation_units).
                self.adaptation_rcus.append(unit)
            adapted_shapes.append(adapted)
        fusion_shapes = ([previous_shape] if previous_shape is not None else []) + adapted_shapes
        self.fusion.build(fusion_shapes)
        fused = self.fusion.compute_output_shape(fusion_shapes)
        self.pooling.build(fused)
        for unit in self.output_rcus:
            unit.build(fused)

    def call(self, features, previous=None):
        paths = [] if previous is None else [previous]
        units = self.adaptation_units
        for path, (x, conv) in enumerate(zip(_as_list(features), self.adaptation_convs)):
            x = conv(x)
            for unit in self.adaptation_rcus[path * units : (path + 1) * units]:
                x = unit(x)
            paths.append(x)
        x = self.fusion(paths)
        x = self.pooling(x)
        for unit in self.output_rcus:
            x = unit(x)
        return x

    def compute_output_shape(self, features_shape, previous_shape=None):
        feature_shapes = _shape_list(features_shape)
        shapes = ([previous_shape] if previous_shape is not None else []) + [
            (*shape[:-1], self.filters) for shape in feature_shapes
        ]
        return self.fusion.compute_output_shape(shapes)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "adaptation_units": self.adaptation_units,
            "pooling_blocks": self.pooling_blocks,
            "output_units": self.output_units,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
