import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.layers.refinement_blocks import (
    ChainedResidualPooling,
    RefineNetBlock,
)
from keras_sceneparse.models.refinenet import RefineNet
from tests.counting import trainable_count
from tests.harness import run_model_test

TINY = {"backbone": "mobilenet_v2", "backbone_kwargs": {"alpha": 0.35}, "filters": (8, 4, 4, 4)}

HARNESS_CASES = [
    ("refinenet", {**TINY, "backbone": "resnet18", "backbone_kwargs": {"base_filters": 8}}, (45, 37, 3), 3, None),
    pytest.param("refinenet", {**TINY, "pooling_blocks": 2, "output_units": 1}, (33, 50, 3), 2, 1, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)

def conv3x3(c_in, c_out, bias):
    return 9 * c_in * c_out + (c_out if bias else 0)


def rcu(width):
    return conv3x3(width, width, True) + conv3x3(width, width, False)


def cascade_parameters(num_classes, pooling_blocks=4, output_units=3, backbone_channels=(2048, 1024, 512, 256)):
    """The reference cascade counted from Sec. 3.2 and the released code, coarse to fine."""
    total, previous = 0, None
    for channels, width in zip(backbone_channels, (512, 256, 256, 256)):
        total += conv3x3(channels, width, False) + 2 * rcu(width)  # adaptation conv + 2 RCUs
        fused = width
        if previous is not None:  # multi-resolution fusion: one 3x3 conv per path
            fused = min(previous, width)
            total += conv3x3(previous, fused, False) + conv3x3(width, fused, False)
        total += pooling_blocks * conv3x3(fused, fused, False) + output_units * rcu(fused)
        previous = fused
    return total + conv3x3(256, num_classes, True)


@pytest.mark.slow  # builds 100M parameters (~40 s of the default suite's budget)
def test_cascade_parameter_count_matches_the_reference_code():
    # ResNet-50 has the C2..C5 widths of ResNet-101 (256..2048): the same cascade, cheaper to build.
    model = RefineNet(21, backbone="resnet50")
    cascade = trainable_count(model) - trainable_count(model.get_layer("resnet50_backbone"))
    assert cascade == cascade_parameters(21) == 75_552_277


@pytest.mark.slow
def test_refinenet_101_parameter_count_matches_the_published_figure():
    # Nekrasov et al., BMVC 2018, Table 1: RefineNet-101 has 118M parameters.
    model = ksp.models.get("refinenet", num_classes=21)
    assert trainable_count(model) == 118_105_109
    assert abs(trainable_count(model) - 118e6) / 118e6 < 0.01
    figures = RefineNet(21, pooling_blocks=2, output_units=1)
    assert trainable_count(figures) == 93_329_941


def test_cascade_structure():
    model = RefineNet(3, **TINY)
    blocks = [model.get_layer(f"refinenet_{i}") for i in (4, 3, 2, 1)]
    assert [block.filters for block in blocks] == [8, 4, 4, 4]
    for block in blocks:
        assert isinstance(block, RefineNetBlock)
        assert (block.adaptation_units, block.pooling_blocks, block.output_units) == (2, 4, 3)
        assert isinstance(block.pooling, ChainedResidualPooling) and block.pooling.pool_size == 5
    # RefineNet-4 refines C5 alone: no fusion convolutions; the others fuse two paths.
    assert blocks[0].fusion.convs == [] and all(len(block.fusion.convs) == 2 for block in blocks[1:])
    # Stride 4 before the classifier; dropout on C5, C4 and before the classifier.
    images = np.zeros((1, 64, 96, 3), "float32")
    features = keras.Model(model.input, model.get_layer("refinenet_1").output)(images)
    assert tuple(features.shape) == (1, 16, 24, 4)
    assert {layer.name for layer in model.layers if isinstance(layer, keras.layers.Dropout)} == {
        "C5_dropout", "C4_dropout", "classifier_dropout"
    }
    assert model.get_layer("classifier").kernel_size == (3, 3)


def test_feature_model_and_argument_errors():
    model = RefineNet(3, **TINY)
    features, logits = model.feature_model()(np.zeros((1, 40, 40, 3), "float32"))
    assert features.shape[-1] == 4 and tuple(logits.shape) == (1, 40, 40, 3)
    with pytest.raises(ValueError, match="filters"):
        RefineNet(3, **{**TINY, "filters": (8, 4)})
    with pytest.raises(ValueError, match="backbone"):
        RefineNet(3, backbone="resnet7")
    assert "RefineNet" in ksp.models.describe("refinenet")
