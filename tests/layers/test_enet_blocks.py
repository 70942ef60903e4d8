import keras
import numpy as np
import pytest

from keras_sceneparse.layers.enet_blocks import ENetBottleneck, ENetInitialBlock
from tests.harness import run_layer_test

rng = np.random.default_rng(0)
IMAGES = rng.uniform(0, 255, size=(2, 9, 12, 3)).astype("float32")
FEATURES = rng.normal(size=(2, 7, 10, 8)).astype("float32")
UNKNOWN = (None, None, 8)
EPSILON = 1e-3  # batch-norm epsilon of the blocks


def numpy_max_pool_2x2(x):
    """Ceil-mode 2x2 max pooling and the argmax inside each window (row * 2 + col)."""
    batch, height, width, channels = x.shape
    out_h, out_w = -(-height // 2), -(-width // 2)
    padded = np.full((batch, 2 * out_h, 2 * out_w, channels), -np.inf, dtype=x.dtype)
    padded[:, :height, :width] = x
    pooled = np.zeros((batch, out_h, out_w, channels), x.dtype)
    argmax = np.zeros((batch, out_h, out_w, channels), "int32")
    for b in range(batch):
        for i in range(out_h):
            for j in range(out_w):
                for c in range(channels):
                    window = padded[b, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2, c]
                    argmax[b, i, j, c] = int(np.argmax(window))
                    pooled[b, i, j, c] = window.max()
    return pooled, argmax


def numpy_prelu(x, slope=0.25):
    return np.where(x > 0, x, slope * x)


def silence_extension(block):
    """Zeroes the extension branch: its last batch norm outputs gamma * x_hat + beta = 0."""
    block.expansion_bn.gamma.assign(np.zeros(block.filters, "float32"))
    block.expansion_bn.beta.assign(np.zeros(block.filters, "float32"))


# --- harness ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({"filters": 8, "zero_init_extension": False}, (2, 7, 10, 8)),
        ({"filters": 12, "block_type": "dilated", "dilation_rate": 2}, (2, 7, 10, 12)),
        ({"filters": 8, "block_type": "asymmetric", "asymmetric_size": 5, "activation": "relu"}, (2, 7, 10, 8)),
        ({"filters": 16, "block_type": "downsampling", "dropout": 0.01}, ((2, 4, 5, 16), (2, 4, 5, 8))),
    ],
    ids=["regular", "dilated_padded_channels", "asymmetric", "downsampling"],
)
def test_bottleneck_harness(kwargs, expected):
    run_layer_test(ENetBottleneck, kwargs, FEATURES, expected, symbolic_input_shape=[UNKNOWN])


def test_upsampling_bottleneck_harness():
    # Odd reference size: the unpooled main branch and the transposed convolution crop back.
    updates = rng.normal(size=(2, 4, 5, 12)).astype("float32")
    _, indices = numpy_max_pool_2x2(FEATURES)
    run_layer_test(
        ENetBottleneck,
        {"filters": 8, "block_type": "upsampling"},
        (updates, indices, FEATURES),
        (2, 7, 10, 8),
        symbolic_input_shape=[(None, None, 12), UNKNOWN, UNKNOWN],
    )


def test_initial_block_harness():
    run_layer_test(ENetInitialBlock, {"filters": 16}, IMAGES, (2, 5, 6, 16), symbolic_input_shape=[(None, None, 3)])


def test_paper_block_weight_counts():
    # Table 1 / reference code: bottleneck 2.3 (128 channels, asymmetric 5) and the initial block.
    block = ENetBottleneck(128, "asymmetric")
    block.build((None, None, None, 128))
    internal = 32
    expected = (
        128 * internal + 3 * internal  # projection, BN, PReLU
        + 5 * internal * internal + 5 * internal * internal + internal  # 1x5 (no bias), 5x1
        + 3 * internal  # BN, PReLU
        + internal * 128 + 2 * 128  # expansion, BN
        + 128  # PReLU after the addition
    )
    assert sum(int(np.prod(w.shape)) for w in block.trainable_weights) == expected
    initial = ENetInitialBlock(16)
    initial.build((None, None, None, 3))
    assert initial.conv.filters == 13
    assert sum(int(np.prod(w.shape)) for w in initial.trainable_weights) == 3 * 3 * 3 * 13 + 13 + 3 * 16


# --- numerical checks against NumPy ------------------------------------------------------


def test_initial_block_pooled_half_is_max_pooling():
    x = rng.normal(size=(1, 7, 9, 3)).astype("float32")
    block = ENetInitialBlock(16)
    out = keras.ops.convert_to_numpy(block(x, training=False))
    pooled, _ = numpy_max_pool_2x2(x)
    # Fresh inference-mode batch norm divides by sqrt(1 + eps); PReLU slopes start at 0.25.
    np.testing.assert_allclose(out[..., 13:], numpy_prelu(pooled / np.sqrt(1 + EPSILON)), rtol=1e-5, atol=1e-6)
    assert out.shape == (1, 4, 5, 16)


def test_downsampling_main_branch_is_max_pooling_with_zero_padded_channels():
    x = rng.normal(size=(2, 7, 9, 4)).astype("float32")
    block = ENetBottleneck(12, "downsampling")
    block(x)
    silence_extension(block)
    out, indices = block(x, training=False)
    pooled, argmax = numpy_max_pool_2x2(x)
    expected = np.concatenate([pooled, np.zeros((2, 4, 5, 8), "float32")], axis=-1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), numpy_prelu(expected), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(indices), argmax)


def test_extension_is_added_to_the_identity():
    x = rng.normal(size=(1, 6, 6, 8)).astype("float32")
    # By default the extension starts silent (zero last batch-norm scale): the block is PReLU(x).
    block = ENetBottleneck(8, "dilated", dilation_rate=2)
    identity = keras.ops.convert_to_numpy(block(x, training=False))
    np.testing.assert_allclose(identity, numpy_prelu(x), rtol=1e-6, atol=1e-6)
    assert not np.any(keras.ops.convert_to_numpy(block.expansion_bn.gamma))
    full = ENetBottleneck(8, "dilated", dilation_rate=2, zero_init_extension=False)
    assert not np.allclose(keras.ops.convert_to_numpy(full(x, training=False)), identity)


def test_upsampling_main_branch_unpools_at_the_recorded_positions():
    x = rng.normal(size=(1, 5, 7, 4)).astype("float32")
    _, argmax = numpy_max_pool_2x2(x)
    updates = rng.normal(size=(1, 3, 4, 6)).astype("float32")
    block = ENetBottleneck(4, "upsampling")
    block(updates, argmax, x)
    silence_extension(block)
    # Main 1x1 convolution: keep the first 4 of the 6 input channels.
    block.main_conv.kernel.assign(np.eye(6, 4, dtype="float32")[None, None])
    out = keras.ops.convert_to_numpy(block(updates, argmax, x, training=False))

    expected = np.zeros((1, 6, 8, 4), "float32")
    for i in range(3):
        for j in range(4):
            for c in range(4):
                row, col = divmod(int(argmax[0, i, j, c]), 2)
                expected[0, 2 * i + row, 2 * j + col, c] = updates[0, i, j, c] / np.sqrt(1 + EPSILON)
    np.testing.assert_allclose(out, numpy_prelu(expected[:, :5, :7]), rtol=1e-5, atol=1e-6)


def test_downsampling_then_upsampling_restores_the_size():
    x = rng.normal(size=(1, 11, 13, 4)).astype("float32")
    y, indices = ENetBottleneck(8, "downsampling")(x)
    assert tuple(y.shape) == (1, 6, 7, 8)
    out = ENetBottleneck(4, "upsampling")(ENetBottleneck(8, "asymmetric")(y), indices, x)
    assert tuple(out.shape) == x.shape


# --- argument errors -----------------------------------------------------------------------


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="block_type"):
        ENetBottleneck(8, "full")
    with pytest.raises(ValueError, match="dilation_rate"):
        ENetBottleneck(8, "regular", dilation_rate=2)
    with pytest.raises(ValueError, match="projection_ratio"):
        ENetBottleneck(2)
    with pytest.raises(ValueError, match="cannot reduce"):
        ENetBottleneck(4)(np.zeros((1, 4, 4, 8), "float32"))
    with pytest.raises(ValueError, match="indices"):
        ENetBottleneck(4, "upsampling")(np.zeros((1, 4, 4, 8), "float32"))
    with pytest.raises(ValueError, match="smaller than `filters`"):
        ENetInitialBlock(3)(np.zeros((1, 4, 4, 3), "float32"))
