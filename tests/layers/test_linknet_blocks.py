import keras
import numpy as np
import pytest

from keras_sceneparse.layers.linknet_blocks import LinkNetDecoderBlock
from tests.harness import run_layer_test


@pytest.mark.parametrize("strides,output_size", [(2, 10), (1, 5)])
def test_decoder_block_harness(strides, output_size):
    data = np.random.default_rng(0).normal(size=(2, 5, 5, 16)).astype("float32")
    run_layer_test(
        LinkNetDecoderBlock,
        {"filters": 8, "bottleneck_filters": 4, "strides": strides},
        data,
        (2, output_size, output_size, 8),
        symbolic_input_shape=[(None, None, 16)],
        # Three kernels and three batch-norm scales and offsets.
        expected_num_trainable_weights=9,
    )


def _batch_norm(x, gamma, beta, mean, variance, epsilon):
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


def _transposed_conv(x, kernel, strides):
    """Scatter form of a transposed convolution (``y[s*i + k] += x[i] w[k]``), cropped to
    ``s`` times the input as Keras' "same" padding does (nothing removed before the first
    row for a 3x3 kernel of stride 2, one row and column each side at stride 1)."""
    batch, height, width, _ = x.shape
    size = kernel.shape[0]
    full = np.zeros((batch, (height - 1) * strides + size, (width - 1) * strides + size, kernel.shape[2]))
    for i in range(height):
        for j in range(width):
            for ki in range(size):
                for kj in range(size):
                    # Keras stores transposed kernels as (kh, kw, out, in).
                    full[:, strides * i + ki, strides * j + kj] += x[:, i, j] @ kernel[ki, kj].T
    total = size - strides
    start = total // 2 if strides == 1 else 0
    return full[:, start:start + height * strides, start:start + width * strides]


@pytest.mark.parametrize("strides", [2, 1])
def test_decoder_block_computes_figure_3b(strides):
    """conv 1x1 (m -> m/4), full-conv 3x3 (x strides), conv 1x1 (m/4 -> n), each followed
    by batch normalisation and ReLU, against NumPy with random statistics (inference mode)."""
    rng = np.random.default_rng(0)
    block = LinkNetDecoderBlock(filters=3, bottleneck_filters=2, strides=strides)
    x = rng.normal(size=(1, 3, 4, 8)).astype("float32")
    block(x)
    norms = {}
    for name, layer in (("reduction", block.reduction.sublayers[1]), ("full_conv", block.full_conv_bn),
                        ("expansion", block.expansion.sublayers[1])):
        channels = layer.gamma.shape[0]
        values = [rng.uniform(0.5, 1.5, channels), rng.normal(0, 0.5, channels), rng.normal(0, 0.5, channels),
                  rng.uniform(0.5, 1.5, channels)]
        layer.set_weights([v.astype("float32") for v in values])
        norms[name] = (*values, layer.epsilon)
    reduce_kernel = block.reduction.sublayers[0].kernel.numpy()[0, 0]
    full_kernel = block.full_conv.kernel.numpy()
    expand_kernel = block.expansion.sublayers[0].kernel.numpy()[0, 0]

    y = np.maximum(_batch_norm(x @ reduce_kernel, *norms["reduction"]), 0)
    y = np.maximum(_batch_norm(_transposed_conv(y, full_kernel, strides), *norms["full_conv"]), 0)
    y = np.maximum(_batch_norm(y @ expand_kernel, *norms["expansion"]), 0)

    actual = keras.ops.convert_to_numpy(block(x, training=False))
    assert actual.shape == (1, 3 * strides, 4 * strides, 3)
    np.testing.assert_allclose(actual, y, rtol=1e-4, atol=1e-5)


def test_decoder_block_argument_errors():
    with pytest.raises(ValueError, match="bottleneck_filters"):
        LinkNetDecoderBlock(8, 0)
    with pytest.raises(TypeError, match="strides"):
        LinkNetDecoderBlock(8, 2, strides=1.5)
