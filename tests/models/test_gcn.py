import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.layers.bilinear_upsampling import bilinear_kernel
from keras_sceneparse.layers.global_convolution import (
    BoundaryRefinement,
    GlobalConvolution,
)
from keras_sceneparse.models.gcn import GCN
from tests.counting import trainable_count
from tests.harness import run_model_test

TINY = {"backbone": "mobilenet_v2", "backbone_kwargs": {"alpha": 0.35}, "kernel_size": 5}

HARNESS_CASES = [
    ("gcn", {**TINY, "backbone": "resnet18", "backbone_kwargs": {"base_filters": 8}}, (37, 45, 3), 3, None),
    pytest.param("gcn", {**TINY, "upsampling": "bilinear", "kernel_size": 4}, (50, 33, 3), 2, 1, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)

def head_parameters(num_classes, k=15, backbone_channels=(256, 512, 1024, 2048)):
    """Fig. 2: a GCN per stage, nine BRs, five 4x4 deconvolutions (no bias)."""
    c = num_classes
    gcns = sum(2 * k * (channels * c + c * c) + 4 * c for channels in backbone_channels)
    boundary_refinements = 9 * 2 * (9 * c * c + c)
    deconvolutions = 5 * 4 * 4 * c * c
    return gcns + boundary_refinements + deconvolutions


def test_head_parameter_count_follows_figure_2():
    # ResNet-50 has ResNet-152's C2..C5 widths: the same head, cheaper to build.
    model = GCN(21, backbone="resnet50")
    head = trainable_count(model) - trainable_count(model.get_layer("resnet50_backbone"))
    assert head == head_parameters(21) == 2_579_556


@pytest.mark.slow
def test_resnet152_parameter_count():
    # The paper gives no count; ours, as stated in the docstring.
    model = ksp.models.get("gcn", num_classes=21)
    assert trainable_count(model) == 60_799_076


def test_structure_follows_figure_2():
    model = GCN(4, **{**TINY, "kernel_size": 15})
    gcns = [layer for layer in model.layers if isinstance(layer, GlobalConvolution)]
    assert [layer.name for layer in gcns] == ["gcn_C5", "gcn_C4", "gcn_C3", "gcn_C2"]
    assert all(layer.filters == 4 and layer.kernel_size == 15 for layer in gcns)
    assert sum(isinstance(layer, BoundaryRefinement) for layer in model.layers) == 9
    deconvolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert len(deconvolutions) == 5
    for layer in deconvolutions:
        assert layer.trainable and layer.strides == (2, 2) and layer.kernel_size == (4, 4)
        kernel = layer.kernel.numpy()
        np.testing.assert_allclose(kernel[:, :, 0, 0], bilinear_kernel(4))  # bilinear initialisation
        assert np.all(kernel[:, :, 0, 1] == 0)
    # Score maps at stride 4 before the last two upsamplings; logits at the input size.
    features, logits = model.feature_model()(np.zeros((1, 64, 96, 3), "float32"))
    assert tuple(features.shape) == (1, 16, 24, 4) and tuple(logits.shape) == (1, 64, 96, 4)
    bilinear = GCN(4, **{**TINY, "upsampling": "bilinear"})
    assert not any(isinstance(layer, keras.layers.Conv2DTranspose) for layer in bilinear.layers)


def test_deconvolutions_start_as_bilinear_upsampling():
    # With zero residual branches every BR is the identity: the output is the stride-4 score
    # map upsampled twice by 2x bilinear interpolation (away from the zero-padded border).
    model = GCN(2, **TINY)
    for layer in model.layers:
        if isinstance(layer, BoundaryRefinement):
            for weight in layer.conv2.weights:
                weight.assign(np.zeros(weight.shape, "float32"))
    images = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    features, logits = model.feature_model()(images)
    features = keras.ops.convert_to_numpy(features)
    interior = keras.ops.convert_to_numpy(logits)[0, 8:-8, 8:-8]
    expected = keras.ops.image.resize(features, (32, 32), interpolation="bilinear")
    expected = keras.ops.convert_to_numpy(keras.ops.image.resize(expected, (64, 64), interpolation="bilinear"))
    np.testing.assert_allclose(interior, expected[0, 8:-8, 8:-8], rtol=1e-4, atol=1e-4)


def test_argument_errors():
    with pytest.raises(ValueError, match="upsampling"):
        GCN(3, **TINY, upsampling="nearest")
    with pytest.raises(ValueError, match="kernel_size"):
        GCN(3, backbone="mobilenet_v2", kernel_size=0)
