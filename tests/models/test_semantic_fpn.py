import inspect

import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.layers.fpn_blocks import FeaturePyramid
from keras_sceneparse.models.semantic_fpn import SemanticFPN
from tests.counting import trainable_count
from tests.harness import run_model_test

TINY = {
    "backbone": "mobilenet_v2",
    "backbone_kwargs": {"alpha": 0.35},
    "pyramid_filters": 8,
    "head_filters": 8,
    "group_norm_groups": 4,
}

HARNESS_CASES = [
    ("semantic_fpn", {**TINY, "backbone": "resnet18", "backbone_kwargs": {"base_filters": 8}}, (45, 37, 3), 3, None),
    pytest.param("semantic_fpn", {**TINY, "head_filters": 6, "group_norm_groups": 2}, (66, 31, 3), 4, 0, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)

def test_parameter_count_matches_the_published_figure():
    # Wang et al. (PVT, ICCV 2021), Table 3: Semantic FPN + ResNet-50 on ADE20K has 28.5M.
    model = ksp.models.get("semantic_fpn", num_classes=150)
    total = trainable_count(model)
    assert abs(total - 28.5e6) / 28.5e6 < 0.01
    # FPN: 1x1 laterals and 3x3 outputs to 256 (with biases); head: 3x3 convs to 128
    # (3 + 2 + 1 + 1 of them, no bias) with group norm, and the 1x1 classifier.
    fpn = sum(c * 256 + 256 for c in (256, 512, 1024, 2048)) + 4 * (9 * 256 * 256 + 256)
    head = 4 * 9 * 256 * 128 + 3 * 9 * 128 * 128 + 7 * 2 * 128 + 128 * 150 + 150
    assert trainable_count(model.get_layer("feature_pyramid")) == fpn
    assert total - trainable_count(model.get_layer("resnet50_backbone")) == fpn + head
    assert total == 28_522_134


def test_semantic_branch_follows_figure_3():
    model = SemanticFPN(3, **TINY)
    assert isinstance(model.get_layer("feature_pyramid"), FeaturePyramid)
    names = {layer.name for layer in model.layers}
    # P5 (1/32) needs 3 upsampling stages, P4 2, P3 1, P2 a convolution only.
    for level, stages in (("P5", 3), ("P4", 2), ("P3", 1), ("P2", 0)):
        assert sum(name.startswith(f"semantic_{level}_upsampling") for name in names) == stages
        assert sum(name.startswith(f"semantic_{level}_conv") for name in names) == max(stages, 1)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.GroupNormalization)]
    assert len(norms) == 7 and all(norm.groups == 4 for norm in norms)
    # Default widths: 256 in the pyramid, 128 in the branch, 32 groups.
    defaults = inspect.signature(SemanticFPN).parameters
    assert [defaults[name].default for name in ("pyramid_filters", "head_filters", "group_norm_groups")] == [256, 128, 32]
    # The sum is at stride 4; logits at the input size.
    features, logits = model.feature_model()(np.zeros((1, 64, 96, 3), "float32"))
    assert tuple(features.shape) == (1, 16, 24, 8) and tuple(logits.shape) == (1, 64, 96, 3)


def test_argument_errors():
    with pytest.raises(ValueError, match="group_norm_groups"):
        SemanticFPN(3, **{**TINY, "group_norm_groups": 3})
    with pytest.raises(ValueError, match="backbone"):
        SemanticFPN(3, backbone="resnet7")
