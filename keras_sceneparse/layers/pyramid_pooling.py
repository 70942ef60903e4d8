"""Adaptive average pooling and PSPNet's pyramid pooling module (Zhao et al., CVPR 2017)."""

import keras
from keras import ops

from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


def adaptive_pooling_matrix(input_size, output_size, dtype="float32"):
    """The ``(output_size, input_size)`` matrix that averages positions into adaptive bins.

    Row ``i`` holds ``1 / (end_i - start_i)`` on ``[start_i, end_i)`` and 0 elsewhere, with
    PyTorch's ``AdaptiveAvgPool`` edges ``start_i = floor(i * H / n)`` and
    ``end_i = ceil((i + 1) * H / n)``: neighbouring bins may share a pixel when ``n`` does
    not divide ``H``, and when ``H < n`` several bins average the same pixels. ``input_size`` may be a
    tensor known only when the graph runs.
    """
    index = ops.arange(output_size, dtype="int32")
    start = ops.floor_divide(index * input_size, output_size)
    end = ops.floor_divide((index + 1) * input_size + (output_size - 1), output_size)
    positions = ops.expand_dims(ops.arange(input_size, dtype="int32"), 0)
    inside = ops.logical_and(positions >= ops.expand_dims(start, 1), positions < ops.expand_dims(end, 1))
    return ops.cast(inside, dtype) / ops.expand_dims(ops.cast(end - start, dtype), 1)


@serializable
class AdaptiveAveragePooling2D(keras.layers.Layer):
    """Average pooling to a fixed grid of bins, whatever the input size.

    Output bin ``(i, j)`` of a ``(batch, H, W, C)`` input is the mean over rows
    ``[floor(i H / n_h), ceil((i + 1) H / n_h))`` and columns
    ``[floor(j W / n_w), ceil((j + 1) W / n_w))``, the bin edges of PyTorch's
    ``AdaptiveAvgPool2d`` (used by PSPNet's reference code, hszhao/semseg). The Caffe
    PSPNet pools with fixed windows of ``60 / n`` on its 60x60 maps, which these edges
    reproduce whenever ``n`` divides the size.

    A bin is a product of a row interval and a column interval, so its mean factorises:
    ``Y = A_h X A_w^T`` per channel, with the averaging matrices of
    :func:`adaptive_pooling_matrix`. Two small matrix products replace the loop over bins;
    they need no static size (``keras.layers.AdaptiveAveragePooling2D`` requires one) and,
    unlike differences of an integral image, suffer no cancellation on large maps or in
    float16.

    Args:
        output_size: number of bins, an int (``n x n``) or ``(n_h, n_w)``.
    """

    def __init__(self, output_size, **kwargs):
        super().__init__(**kwargs)
        sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, output_size)
        if len(sizes) != 2:
            raise ValueError(f"`output_size` must be an int or a (height, width) pair, got {output_size!r}.")
        self.output_size = tuple(check_int("output_size", size, minimum=1) for size in sizes)

    def call(self, inputs):
        shape = ops.shape(inputs)
        rows = adaptive_pooling_matrix(shape[1], self.output_size[0], inputs.dtype)
        cols = adaptive_pooling_matrix(shape[2], self.output_size[1], inputs.dtype)
        pooled = ops.einsum("ih,bhwc->biwc", rows, inputs)
        return ops.einsum("jw,biwc->bijc", cols, pooled)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size}


@serializable
class PyramidPoolingModule(keras.layers.Layer):
    """PSPNet's pyramid pooling module: features concatenated with pooled sub-region context.

    Zhao, Shi, Qi, Wang and Jia, "Pyramid Scene Parsing Network", CVPR 2017,
    https://arxiv.org/abs/1612.01105, Sec. 3.3 and Fig. 3(c). For each pyramid level
    ``n`` in ``bins`` (1, 2, 3, 6: global pooling to a single bin, then finer grids of
    sub-regions), the input ``X`` of ``C`` channels is

    - average-pooled to ``n x n`` bins (:class:`AdaptiveAveragePooling2D`);
    - reduced by a 1x1 convolution, batch normalisation and ReLU to ``C / N`` channels for
      ``N`` levels, "to maintain the weight of global feature";
    - bilinearly upsampled to the size of ``X``.

    The output is ``concat(X, level_1, ..., level_N)``, ``C + N * filters`` channels (4096
    for ResNet's 2048). As in the reference code (Caffe and hszhao/semseg) the 1x1
    convolutions have no bias (batch normalisation follows) and the levels are upsampled
    corner-aligned (Caffe's ``Interp``, PyTorch's ``align_corners=True``).

    Args:
        bins: pyramid levels (output grid sizes).
        filters: channels of each level after its 1x1 convolution; ``None`` gives
            ``input channels // len(bins)`` (the paper's ``1/N``).
        align_corners: corner-aligned bilinear upsampling of the levels, as the reference;
            ``False`` samples with half-pixel centres (as mmsegmentation does).
    """

    def __init__(self, bins=(1, 2, 3, 6), filters=None, align_corners=True, **kwargs):
        super().__init__(**kwargs)
        self.bins = tuple(check_int("bins[i]", size, minimum=1) for size in bins)
        if not self.bins:
            raise ValueError("`bins` must name at least one pyramid level, got an empty sequence.")
        self.filters = None if filters is None else check_int("filters", filters, minimum=1)
        self.align_corners = bool(align_corners)

        policy = self.dtype_policy
        self.pools = [AdaptiveAveragePooling2D(size, dtype=policy, name=f"pool_{size}") for size in self.bins]
        self.upsamplings = [
            ResizeToReference(align_corners=self.align_corners, dtype=policy, name=f"upsampling_{size}")
            for size in self.bins
        ]
        # The convolutions' default width depends on the input channels: created in build.
        self.convs = []

    def level_filters(self, channels):
        if self.filters is not None:
            return self.filters
        if channels is None or channels < len(self.bins):
            raise ValueError(
                f"PyramidPoolingModule needs at least {len(self.bins)} input channels (one per level in "
                f"`bins`={self.bins}) to derive `filters`, got {channels}; pass `filters` explicitly."
            )
        return channels // len(self.bins)

    def build(self, input_shape):
        filters = self.level_filters(input_shape[-1])
        self.convs = [
            ConvBNReLU(filters, 1, dtype=self.dtype_policy, name=f"conv_{size}") for size in self.bins
        ]
        for conv in self.convs:
            conv.build((input_shape[0], None, None, input_shape[-1]))

    def call(self, inputs, training=None):
        levels = [inputs]
        for pool, conv, upsampling in zip(self.pools, self.convs, self.upsamplings):
            level = conv(pool(inputs), training=training)
            levels.append(upsampling(level, inputs))
        return ops.concatenate(levels, axis=-1)

    def compute_output_shape(self, input_shape):
        channels = input_shape[-1] + len(self.bins) * self.level_filters(input_shape[-1])
        return (*input_shape[:-1], channels)

    def get_config(self):
        return {
            **super().get_config(),
            "bins": self.bins,
            "filters": self.filters,
            "align_corners": self.align_corners,
        }
