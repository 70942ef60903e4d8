"""BiSeNet and BiSeNet V2 blocks: harness entries and NumPy checks of what they compute."""

import keras
import numpy as np
import pytest

from keras_sceneparse.layers.bisenet_blocks import (
    AttentionRefinementModule,
    BilateralGuidedAggregation,
    ContextEmbedding,
    FeatureFusionModule,
    GatherExpansion,
    StemBlock,
)
from tests.harness import run_layer_test

rng = np.random.default_rng(0)
FEATURES = rng.normal(size=(2, 9, 7, 8)).astype("float32")
COARSE = rng.normal(size=(2, 3, 2, 8)).astype("float32")
UNKNOWN = (None, None, 8)

SINGLE_INPUT_CASES = [
    (AttentionRefinementModule, {}, (2, 9, 7, 8)),
    (StemBlock, {"filters": 6}, (2, 3, 2, 6)),
    (GatherExpansion, {"filters": 8, "expansion": 2}, (2, 9, 7, 8)),
    (GatherExpansion, {"filters": 12, "strides": 2}, (2, 5, 4, 12)),
    (ContextEmbedding, {}, (2, 9, 7, 8)),
    (ContextEmbedding, {"filters": 5}, (2, 9, 7, 5)),
]


@pytest.mark.parametrize("layer_cls,kwargs,expected", SINGLE_INPUT_CASES, ids=lambda v: getattr(v, "__name__", None))
def test_layer_harness(layer_cls, kwargs, expected):
    run_layer_test(layer_cls, kwargs, FEATURES, expected, symbolic_input_shape=[UNKNOWN])


def test_feature_fusion_module_harness():
    run_layer_test(
        FeatureFusionModule, {"filters": 12}, (FEATURES, FEATURES[..., :5]), (2, 9, 7, 12),
        symbolic_input_shape=[UNKNOWN, (None, None, 5)],
    )


def test_bilateral_guided_aggregation_harness():
    run_layer_test(
        BilateralGuidedAggregation, {"filters": 6}, (FEATURES, COARSE), (2, 9, 7, 6),
        symbolic_input_shape=[UNKNOWN, UNKNOWN],
    )


def test_gather_expansion_stride_one_needs_matching_channels():
    with pytest.raises(ValueError, match="filters"):
        GatherExpansion(16)(FEATURES)


# --- numerical checks against independent NumPy computations ---------------------------


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


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
    gamma, beta, mean, variance = (keras.ops.convert_to_numpy(w) for w in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance))
    return gamma * (x - mean) / np.sqrt(variance + bn.epsilon) + beta


def kernel_matrix(conv):
    kernel = keras.ops.convert_to_numpy(conv.kernel)
    assert kernel.shape[:2] == (1, 1)
    return kernel[0, 0].astype("float64")


def test_attention_refinement_matches_the_paper_formula():
    # Sec. 3.2, Fig. 2(b): y = x * sigmoid(BN(W mean(x))).
    layer = AttentionRefinementModule()
    layer(FEATURES)
    randomise_batch_norms(layer)
    actual = keras.ops.convert_to_numpy(layer(FEATURES, training=False))
    pooled = FEATURES.astype("float64").mean(axis=(1, 2))
    attention = sigmoid(numpy_batch_norm(pooled @ kernel_matrix(layer.attention_conv), layer.attention_bn))
    expected = FEATURES * attention[:, None, None, :]
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)
    # The attention is per image and per channel, in (0, 1): it never adds features.
    assert not np.allclose(actual, FEATURES)


def test_feature_fusion_matches_the_paper_formula():
    # Sec. 3.2, Fig. 2(c): u = ReLU(BN(conv([s, c]))), y = u + u * sigmoid(W2 ReLU(W1 mean(u))).
    spatial, context = FEATURES, rng.normal(size=(2, 9, 7, 4)).astype("float32")
    layer = FeatureFusionModule(8, reduction=4)
    layer(spatial, context)
    randomise_batch_norms(layer)
    actual = keras.ops.convert_to_numpy(layer(spatial, context, training=False))
    concatenated = np.concatenate([spatial, context], axis=-1).astype("float64")
    conv = layer.fusion_conv.sublayers[0]
    fused = np.maximum(numpy_batch_norm(concatenated @ kernel_matrix(conv), layer.fusion_conv.sublayers[1]), 0)
    squeezed = np.maximum(fused.mean(axis=(1, 2)) @ kernel_matrix(layer.squeeze), 0)
    attention = sigmoid(squeezed @ kernel_matrix(layer.excite))
    np.testing.assert_allclose(actual, fused + fused * attention[:, None, None, :], rtol=1e-4, atol=1e-5)


def test_context_embedding_adds_the_global_context_before_its_last_convolution():
    # Fig. 4(b): the output convolution sees x + ReLU(BN(conv1x1(BN(mean(x))))).
    layer = ContextEmbedding()
    layer(FEATURES)
    randomise_batch_norms(layer)
    pooled = numpy_batch_norm(FEATURES.astype("float64").mean(axis=(1, 2)), layer.pool_bn)
    conv, bn = layer.context_conv.sublayers[:2]
    context = np.maximum(numpy_batch_norm(pooled @ kernel_matrix(conv), bn), 0)
    expected = layer.output_conv(FEATURES + context[:, None, None, :].astype("float32"), training=False)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(FEATURES, training=False)), keras.ops.convert_to_numpy(expected), rtol=1e-4, atol=1e-5
    )


def test_gather_expansion_widths_follow_figure_5():
    # Stride 2: the depthwise expansion multiplies the channels by e = 6; the shortcut is a
    # depthwise stride-2 conv and a 1x1 projection.
    layer = GatherExpansion(32, strides=2)
    layer(rng.normal(size=(1, 8, 8, 16)).astype("float32"))
    assert layer.expand[0].depth_multiplier == 6 and layer.expand[0].strides == (2, 2)
    assert layer.expand[2].kernel.shape == (3, 3, 96, 1)
    assert layer.project[0].kernel.shape == (1, 1, 96, 32)
    assert [type(l).__name__ for l in layer.shortcut] == ["DepthwiseConv2D", "BatchNormalization", "Conv2D", "BatchNormalization"]
    identity = GatherExpansion(16)
    identity(rng.normal(size=(1, 8, 8, 16)).astype("float32"))
    assert identity.shortcut == [] and identity.project[0].kernel.shape == (1, 1, 96, 16)


def test_stem_block_downsamples_four_times_with_two_branches():
    x = rng.normal(size=(1, 17, 13, 3)).astype("float32")
    layer = StemBlock(16)
    assert tuple(layer(x).shape) == (1, 5, 4, 16)
    assert layer.fusion_conv.sublayers[0].kernel.shape == (3, 3, 32, 16)  # concat of 16 + 16


def test_bilateral_guided_aggregation_gates_each_branch_by_the_other():
    # With the semantic input a constant map, the semantic gates are constants; zeroing the
    # detail input must zero both products before the output convolution (Fig. 6).
    layer = BilateralGuidedAggregation(4)
    detail = np.zeros((1, 8, 8, 8), "float32")
    out_zero = layer(detail, np.ones((1, 2, 2, 8), "float32"), training=False)
    constant = layer.output_conv(np.zeros((1, 8, 8, 4), "float32"), training=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out_zero), keras.ops.convert_to_numpy(constant), atol=1e-6)
