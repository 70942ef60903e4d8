"""LEDNet's SS-nbt unit and APN, and the channel shuffle: harness entries and NumPy checks."""

import keras
import numpy as np
import pytest

from keras_sceneparse.layers.channel_shuffle import (
    ChannelShuffle,
    channel_shuffle_permutation,
)
from keras_sceneparse.layers.lednet_blocks import (
    AttentionPyramidNetwork,
    SplitShuffleNonBottleneck,
)
from tests.harness import run_layer_test

rng = np.random.default_rng(0)
FEATURES = rng.normal(size=(2, 9, 7, 8)).astype("float32")
UNKNOWN = (None, None, 8)
EPSILON = 1e-3  # batch-norm epsilon of the blocks


# --- harness ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dilation_rate": 2, "dropout": 0.3},
        {"dilation_rate": 5, "zero_init_residual": False},
    ],
    ids=["dilated_dropout", "dilated_beyond_the_map"],
)
def test_ss_nbt_harness(kwargs):
    run_layer_test(
        SplitShuffleNonBottleneck,
        kwargs,
        FEATURES,
        (2, 9, 7, 8),
        symbolic_input_shape=[UNKNOWN],
    )


def test_apn_harness():
    # Odd sizes: the pyramid's levels are 5 x 4, 3 x 2 and 2 x 1, each resized to the finer one.
    run_layer_test(
        AttentionPyramidNetwork,
        {"filters": 3},
        FEATURES,
        (2, 9, 7, 3),
        symbolic_input_shape=[UNKNOWN],
    )


def test_channel_shuffle_harness():
    run_layer_test(
        ChannelShuffle,
        {"groups": 4},
        FEATURES,
        (2, 9, 7, 8),
        symbolic_input_shape=[UNKNOWN],
    )


def test_paper_unit_weight_count():
    # Stage 3's unit: 128 channels, two branches of four 1D convolutions with biases on 64 channels.
    unit = SplitShuffleNonBottleneck(dilation_rate=17)
    unit.build((None, None, None, 128))
    expected = 2 * (4 * (3 * 64 * 64 + 64) + 2 * 2 * 64)
    assert (
        sum(int(np.prod(w.shape)) for w in unit.trainable_weights) == expected == 99_328
    )


# --- channel shuffle -------------------------------------------------------------------------


def reference_channel_shuffle(x_nhwc, groups):
    """The reference code's shuffle on NCHW: view (B, g, C/g, H, W), transpose 1 and 2, flatten."""
    x = np.transpose(x_nhwc, (0, 3, 1, 2))
    batch, channels, height, width = x.shape
    x = x.reshape(batch, groups, channels // groups, height, width).transpose(
        0, 2, 1, 3, 4
    )
    return np.transpose(x.reshape(batch, channels, height, width), (0, 2, 3, 1))


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_channel_shuffle_matches_reshape_transpose(groups):
    out = keras.ops.convert_to_numpy(ChannelShuffle(groups)(FEATURES))
    np.testing.assert_array_equal(out, reference_channel_shuffle(FEATURES, groups))


def test_channel_shuffle_interleaves_the_two_halves():
    np.testing.assert_array_equal(channel_shuffle_permutation(6, 2), [0, 3, 1, 4, 2, 5])


# --- SS-nbt unit -------------------------------------------------------------------------


def numpy_relu(x):
    return np.maximum(x, 0.0)


def unshuffle(y):
    """Inverse of the 2-way shuffle: even output channels come from the first half."""
    return np.concatenate([y[..., 0::2], y[..., 1::2]], axis=-1)


def test_silent_branches_make_the_unit_a_shuffled_relu():
    unit = SplitShuffleNonBottleneck(
        dilation_rate=2
    )  # zero-initialised last batch-norm scales
    out = keras.ops.convert_to_numpy(unit(FEATURES, training=False))
    np.testing.assert_allclose(
        out, reference_channel_shuffle(numpy_relu(FEATURES), 2), rtol=1e-6, atol=1e-6
    )
    full = SplitShuffleNonBottleneck(dilation_rate=2, zero_init_residual=False)
    assert not np.allclose(
        keras.ops.convert_to_numpy(full(FEATURES, training=False)), out
    )


def test_each_branch_sees_its_own_half():
    unit = SplitShuffleNonBottleneck(zero_init_residual=False)
    before = unshuffle(keras.ops.convert_to_numpy(unit(FEATURES, training=False)))
    changed = FEATURES.copy()
    changed[..., 4:] = rng.normal(size=changed[..., 4:].shape)
    after = unshuffle(keras.ops.convert_to_numpy(unit(changed, training=False)))
    np.testing.assert_allclose(after[..., :4], before[..., :4], rtol=1e-6, atol=1e-6)
    assert not np.allclose(after[..., 4:], before[..., 4:])


def test_factorised_convolutions_and_their_order():
    unit = SplitShuffleNonBottleneck(dilation_rate=9)
    unit.build((None, None, None, 16))
    convs = {
        side: [l for l in getattr(unit, side) if isinstance(l, keras.layers.Conv2D)]
        for side in ("left", "right")
    }
    # Fig. 1(d): 3x1 then 1x3 on the left, 1x3 then 3x1 on the right; the second pair dilated.
    assert [c.kernel_size for c in convs["left"]] == [(3, 1), (1, 3), (3, 1), (1, 3)]
    assert [c.kernel_size for c in convs["right"]] == [(1, 3), (3, 1), (1, 3), (3, 1)]
    assert [c.dilation_rate for c in convs["left"]] == [(1, 1), (1, 1), (9, 1), (1, 9)]
    assert [c.dilation_rate for c in convs["right"]] == [(1, 1), (1, 1), (1, 9), (9, 1)]
    assert all(c.filters == 8 and c.use_bias for c in convs["left"] + convs["right"])


def test_dilated_pair_footprint():
    # An impulse in one left-branch channel reaches rows and columns {-1, 0, 1} + {-d, 0, d}.
    rate, size, centre = 5, 17, 8
    unit = SplitShuffleNonBottleneck(dilation_rate=rate, zero_init_residual=False)
    unit.build((None, size, size, 2))
    for layer in unit.left:
        if isinstance(layer, keras.layers.Conv2D):
            layer.kernel.assign(np.ones(layer.kernel.shape, "float32"))
    impulse = np.zeros((1, size, size, 2), "float32")
    impulse[0, centre, centre, 0] = 1.0
    response = unshuffle(keras.ops.convert_to_numpy(unit(impulse, training=False)))[
        0, :, :, 0
    ]
    response = response - numpy_relu(impulse[0, :, :, 0])
    offsets = sorted({a + b for a in (-1, 0, 1) for b in (-rate, 0, rate)})
    expected = np.zeros((size, size), bool)
    expected[np.ix_([centre + o for o in offsets], [centre + o for o in offsets])] = (
        True
    )
    np.testing.assert_array_equal(response > 1e-6, expected)


# --- attention pyramid network --------------------------------------------------------------


def randomise_batch_norms(layer):
    for sub in layer._flatten_layers(include_self=False):
        if isinstance(sub, keras.layers.BatchNormalization):
            channels = sub.gamma.shape[0]
            sub.gamma.assign(rng.uniform(0.5, 1.5, channels))
            sub.beta.assign(
                rng.uniform(0.1, 1.0, channels)
            )  # positive: ReLUs stay open
            sub.moving_mean.assign(rng.normal(scale=0.1, size=channels))
            sub.moving_variance.assign(rng.uniform(0.5, 2.0, channels))


def numpy_batch_norm(x, bn):
    gamma, beta, mean, variance = (
        keras.ops.convert_to_numpy(w)
        for w in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)
    )
    return gamma * (x - mean) / np.sqrt(variance + bn.epsilon) + beta


def test_apn_global_branch():
    apn = AttentionPyramidNetwork(5)
    apn.build(FEATURES.shape)
    randomise_batch_norms(apn)
    # Silence the middle branch (zero scale and offset): the output is the global term alone.
    middle_bn = apn.middle_conv.sublayers[1]
    middle_bn.gamma.assign(np.zeros(5, "float32"))
    middle_bn.beta.assign(np.zeros(5, "float32"))
    out = keras.ops.convert_to_numpy(apn(FEATURES, training=False))
    conv, bn = apn.global_conv.sublayers[:2]
    pooled = FEATURES.mean(axis=(1, 2))
    expected = numpy_relu(
        numpy_batch_norm(pooled @ keras.ops.convert_to_numpy(conv.kernel)[0, 0], bn)
    )
    np.testing.assert_allclose(
        out,
        np.broadcast_to(expected[:, None, None, :], out.shape),
        rtol=1e-5,
        atol=1e-5,
    )


def test_apn_attention_is_one_map_shared_by_all_classes():
    apn = AttentionPyramidNetwork(4)
    features = rng.normal(size=(1, 12, 10, 8)).astype("float32")
    apn.build(features.shape)
    randomise_batch_norms(apn)
    apn.middle_conv.sublayers[1].beta.assign(
        np.full(4, 10.0, "float32")
    )  # keeps the middle branch > 0
    out = keras.ops.convert_to_numpy(apn(features, training=False))
    middle = keras.ops.convert_to_numpy(apn.middle_conv(features, training=False))
    context = keras.ops.convert_to_numpy(
        apn.global_conv(features.mean(axis=(1, 2), keepdims=True))
    )
    assert middle.min() > 0
    attention = (out - context) / middle
    np.testing.assert_allclose(
        attention,
        np.broadcast_to(attention[..., :1], attention.shape),
        rtol=1e-4,
        atol=1e-5,
    )
    assert attention.std() > 0  # a spatial map, not a constant


def test_apn_pyramid_levels_for_odd_sizes():
    apn = AttentionPyramidNetwork(3)
    features = rng.normal(size=(1, 11, 13, 8)).astype("float32")
    assert tuple(apn(features).shape) == (1, 11, 13, 3)
    level1 = apn.down1(features)
    level2 = apn.down2(level1)
    level3 = apn.down3(level2)
    assert [tuple(t.shape) for t in (level1, level2, level3)] == [
        (1, 6, 7, 1),
        (1, 3, 4, 1),
        (1, 2, 2, 1),
    ]


# --- argument and shape errors ----------------------------------------------------------------


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="dilation_rate"):
        SplitShuffleNonBottleneck(dilation_rate=0)
    with pytest.raises(ValueError, match="dropout"):
        SplitShuffleNonBottleneck(dropout=1.5)
    with pytest.raises(ValueError, match="even"):
        SplitShuffleNonBottleneck()(FEATURES[..., :7])
    with pytest.raises(ValueError, match="filters"):
        AttentionPyramidNetwork(0)
    with pytest.raises(ValueError, match="groups"):
        ChannelShuffle(0)
    with pytest.raises(ValueError, match="divisible by 3"):
        ChannelShuffle(3)(FEATURES)
    with pytest.raises(ValueError, match="channels"):
        AttentionPyramidNetwork(3).build((None, None, None, None))
