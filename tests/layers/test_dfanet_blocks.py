"""DFANet blocks: harness entries, structure against Table 1 and NumPy checks of what they compute."""

import keras
import numpy as np
import pytest

from keras_sceneparse.layers.dfanet_blocks import (
    FCAttention,
    XceptionABlock,
    XceptionAStage,
)
from tests.harness import run_layer_test

rng = np.random.default_rng(0)
FEATURES = rng.normal(size=(2, 9, 7, 8)).astype("float32")
UNKNOWN = (None, None, 8)

CASES = [
    (XceptionABlock, {"filters": 8}, (2, 9, 7, 8)),
    (XceptionABlock, {"filters": 12, "strides": 2}, (2, 5, 4, 12)),
    (XceptionAStage, {"filters": 4, "num_blocks": 2}, (2, 5, 4, 4)),
    (FCAttention, {"units": 6}, (2, 9, 7, 8)),
]


@pytest.mark.parametrize(
    "layer_cls,kwargs,expected", CASES, ids=lambda v: getattr(v, "__name__", None)
)
def test_layer_harness(layer_cls, kwargs, expected):
    run_layer_test(
        layer_cls, kwargs, FEATURES, expected, symbolic_input_shape=[UNKNOWN]
    )


@pytest.mark.parametrize(
    "layer_cls,kwargs,match",
    [
        (XceptionABlock, {"filters": 10}, "filters"),
        (XceptionABlock, {"filters": 2}, "filters"),
        (XceptionABlock, {"filters": 8, "strides": 3}, "strides"),
        (XceptionAStage, {"filters": 8, "num_blocks": 0}, "num_blocks"),
        (FCAttention, {"units": 0}, "units"),
    ],
)
def test_bad_arguments_raise_clear_errors(layer_cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        layer_cls(**kwargs)


def test_unknown_channels_raise_a_clear_error():
    with pytest.raises(ValueError, match="known channels"):
        FCAttention().build((None, 8, 8, None))


# --- structure and numerical checks -------------------------------------------------------


def randomise_batch_norms(layer):
    """Non-trivial inference statistics, so the checks see batch normalisation."""
    for sub in layer._flatten_layers(include_self=False):
        if isinstance(sub, keras.layers.BatchNormalization):
            channels = sub.gamma.shape[0]
            sub.gamma.assign(rng.uniform(0.5, 1.5, channels))
            sub.beta.assign(rng.normal(size=channels))
            sub.moving_mean.assign(rng.normal(size=channels))
            sub.moving_variance.assign(rng.uniform(0.5, 2.0, channels))


def numpy_batch_norm(x, bn):
    gamma, beta, mean, variance = (
        keras.ops.convert_to_numpy(w)
        for w in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)
    )
    return gamma * (x - mean) / np.sqrt(variance + bn.epsilon) + beta


def by_name(layer, name):
    (found,) = [
        sub for sub in layer._flatten_layers(include_self=False) if sub.name == name
    ]
    return found


def test_block_widths_follow_table_1():
    # [3x3, C/4; 3x3, C/4; 3x3, C], depthwise-separable, stride in the last one.
    block = XceptionABlock(48, strides=2)
    block(np.zeros((1, 16, 16, 8), "float32"))
    pointwise = [
        by_name(block, f"separable{k}_pointwise").kernel.shape for k in (1, 2, 3)
    ]
    assert pointwise == [(1, 1, 8, 12), (1, 1, 12, 12), (1, 1, 12, 48)]
    depthwise = [by_name(block, f"separable{k}_depthwise") for k in (1, 2, 3)]
    assert [d.kernel.shape[:2] for d in depthwise] == [(3, 3)] * 3
    assert [d.strides for d in depthwise] == [(1, 1), (1, 1), (2, 2)]
    assert by_name(block, "shortcut_conv").kernel.shape == (1, 1, 8, 48)


def test_stage_strides_only_its_first_block():
    stage = XceptionAStage(8, 3)
    assert tuple(stage(np.zeros((1, 17, 16, 4), "float32")).shape) == (1, 9, 8, 8)
    assert [block.strides for block in stage.blocks] == [2, 1, 1]
    # Only the first block changes the channels or the size: the others add an identity.
    assert [bool(block.shortcut) for block in stage.blocks] == [True, False, False]


def silence_residual(block):
    last = by_name(block, "separable3_pointwise_bn")
    last.gamma.assign(np.zeros(block.filters))
    last.beta.assign(np.zeros(block.filters))


def test_block_adds_an_identity_shortcut():
    # With the residual branch silenced (last BN zero), y = x exactly: the block is x + F(x).
    block = XceptionABlock(8)
    block(FEATURES)
    randomise_batch_norms(block)
    full = keras.ops.convert_to_numpy(block(FEATURES, training=False))
    assert not np.allclose(full, FEATURES)
    silence_residual(block)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(block(FEATURES, training=False)), FEATURES, atol=1e-6
    )


def test_strided_block_projects_its_shortcut():
    # Silenced residual: y = BN(W x[::2, ::2]), the 1x1 stride-2 projection shortcut.
    block = XceptionABlock(12, strides=2)
    block(FEATURES)
    randomise_batch_norms(block)
    silence_residual(block)
    kernel = keras.ops.convert_to_numpy(by_name(block, "shortcut_conv").kernel)[
        0, 0
    ].astype("float64")
    expected = numpy_batch_norm(
        FEATURES[:, ::2, ::2].astype("float64") @ kernel, by_name(block, "shortcut_bn")
    )
    actual = keras.ops.convert_to_numpy(block(FEATURES, training=False))
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)


def test_fc_attention_matches_the_paper():
    # Sec. 3.3: global pooling, fc, 1x1 conv (BN, ReLU), channel-wise product with x.
    layer = FCAttention(units=6)
    layer(FEATURES)
    randomise_batch_norms(layer)
    actual = keras.ops.convert_to_numpy(layer(FEATURES, training=False))
    pooled = FEATURES.astype("float64").mean(axis=(1, 2))
    fc = pooled @ keras.ops.convert_to_numpy(
        layer.fc.kernel
    ) + keras.ops.convert_to_numpy(layer.fc.bias)
    conv, bn = layer.attention_conv.sublayers[:2]
    attention = np.maximum(
        numpy_batch_norm(fc @ keras.ops.convert_to_numpy(conv.kernel)[0, 0], bn), 0
    )
    np.testing.assert_allclose(
        actual, FEATURES * attention[:, None, None, :], rtol=1e-4, atol=1e-5
    )
    # The fully-connected layer keeps its 1000 ImageNet units by default (Table 1).
    default = FCAttention()
    default(FEATURES)
    assert (
        default.fc.kernel.shape == (8, 1000)
        and default.count_params() == 9 * 1000 + 1000 * 8 + 4 * 8
    )
