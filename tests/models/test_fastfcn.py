"""FastFCN (Wu, Zhang, Huang, Liang and Yu, 2019): undilated ResNet + JPU + EncNet head."""

import numpy as np
import pytest

from keras_sceneparse.layers.joint_pyramid_upsampling import JointPyramidUpsampling
from keras_sceneparse.models.fastfcn import FastFCN
from tests.harness import run_model_test
from tests.models.test_encnet import conv_bn, encoding_head_parameters

NARROW_RESNET = {"backbone": "resnet18", "backbone_kwargs": {"base_filters": 8}}
TINY = {**NARROW_RESNET, "jpu_filters": 4, "head_filters": 8, "num_codewords": 4, "aux_filters": 4}

# Odd sizes, not multiples of the stride (32 here); the first with both auxiliary losses.
HARNESS_CASES = [
    ("fastfcn", TINY, (37, 45, 3), 4, 255),
    pytest.param("fastfcn", {**TINY, "aux": False, "se_loss_weight": 0, "dilation_rates": (1, 2)}, (33, 29, 3), 2, None, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class, expect_changed="heads")


def test_undilated_backbone_and_jpu_at_stride_8():
    model = FastFCN(num_classes=5, **TINY)
    backbone = model.get_layer("resnet18_backbone")
    assert backbone.output_stride == 32
    jpu = model.get_layer("joint_pyramid_upsampling")
    assert isinstance(jpu, JointPyramidUpsampling) and jpu.dilation_rates == (1, 2, 4, 8)
    # JPU reads C3, C4 and C5 (strides 8, 16, 32) and outputs at the size of C3.
    assert [t._keras_history.tensor_index for t in jpu.input] == [sorted(backbone.output).index(level)
                                                                  for level in ("C3", "C4", "C5")]
    images = np.zeros((1, 67, 75, 3), "float32")
    sizes = {key: tuple(value.shape[1:3]) for key, value in backbone(images).items()}
    assert sizes["C3"] == (9, 10) and sizes["C4"] == (5, 5) and sizes["C5"] == (3, 3)
    features, logits = model.feature_model()(images)
    assert features.shape == (1, 9, 10, 8) and logits.shape == (1, 67, 75, 5)  # the head at stride 8
    assert jpu.output.shape[-1] == 16  # 4 branches x 4 channels
    assert model.get_layer("head_conv").input._keras_history.operation is jpu
    assert model.auxiliary_loss_weights == {"se": 0.2, "aux": 0.2}


def jpu_parameters(channels, filters=512, branches=4):
    """Three 3x3 conv-BN-ReLU reductions, then per branch depthwise 3x3 + BN + 1x1 + BN."""
    reductions = sum(conv_bn(3, c, filters) for c in channels)
    joint = 3 * filters
    return reductions + branches * (9 * joint + 4 * joint + conv_bn(1, joint, filters))


def test_parameters_from_the_formula():
    model = FastFCN(num_classes=21, **NARROW_RESNET)
    channels = model.get_layer("resnet18_backbone").pyramid_channels
    jpu = model.get_layer("joint_pyramid_upsampling").count_params()
    assert jpu == jpu_parameters([channels["C3"], channels["C4"], channels["C5"]])
    head = model.count_params() - model.get_layer("resnet18_backbone").count_params() - jpu
    auxiliary = conv_bn(3, channels["C4"], 256) + 256 * 21 + 21
    assert head == encoding_head_parameters(2048, 21) + auxiliary  # JPU outputs 4 x 512 channels
    assert jpu_parameters([512, 1024, 2048]) == 19_755_008  # ResNet-50/101's C3, C4, C5


@pytest.mark.slow
@pytest.mark.parametrize("num_classes,total", [(21, 74_783_071), (150, 74_948_578)])
def test_resnet101_parameter_count(num_classes, total):
    model = FastFCN(num_classes=num_classes)
    assert model.count_params() == total
    backbone = model.get_layer("resnet101_backbone")
    assert backbone.get_layer("conv5_block1_1_conv").strides == (2, 2)  # not dilated
    assert backbone.get_layer("conv5_block3_2_conv").dilation_rate == (1, 1)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="jpu_filters"):
        FastFCN(num_classes=3, **{**TINY, "jpu_filters": 0})
    with pytest.raises(ValueError, match="dilation_rates"):
        FastFCN(num_classes=3, **{**TINY, "dilation_rates": (1, 0)})
