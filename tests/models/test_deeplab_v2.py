import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.layers.atrous_spatial_pyramid_pooling_v2 import (
    ASPP_L_RATES,
    ASPP_S_RATES,
)
from keras_sceneparse.models.deeplab_v2 import DeepLabV2
from tests.counting import trainable_count
from tests.harness import run_model_test

TINY_BACKBONE = {"backbone": "mobilenet_v2", "backbone_kwargs": {"alpha": 0.35}}

# One entry per registered name: small widths, odd image sizes (not multiples of the stride 8).
HARNESS_CASES = [
    ("deeplab_v2", {**TINY_BACKBONE, "backbone": "resnet18", "backbone_kwargs": {"base_filters": 8}}, (35, 45, 3), 3, None),
    pytest.param("deeplab_v2", {"backbone": "vgg16", "fc_filters": 8, "atrous_rates": ASPP_S_RATES}, (33, 38, 3), 4, 255, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)


# --- parameter counts of the paper's configurations (built, never run) -----------------------

def conv_params(kernel, c_in, c_out, bias=True):
    return kernel * kernel * c_in * c_out + (c_out if bias else 0)


def test_vgg16_aspp_l_parameter_count_and_structure():
    # The paper states no count for ASPP; ours follows Fig. 7b: four fc6 (3x3, 1024) / fc7 (1x1,
    # 1024) / fc8 (1x1, classes) branches on the 14,714,688 parameters of VGG-16's convolutions.
    model = ksp.models.get("deeplab_v2", num_classes=21, backbone="vgg16")
    branch = conv_params(3, 512, 1024) + conv_params(1, 1024, 1024) + conv_params(1, 1024, 21)
    assert model.count_params() == trainable_count(model) == 14_714_688 + 4 * branch == 37_877_652

    aspp = model.get_layer("aspp")
    assert aspp.atrous_rates == ASPP_L_RATES == (6, 12, 18, 24)
    for index, (fc6, drop6, fc7, drop7, fc8) in enumerate(aspp.branches):
        assert fc6.dilation_rate == (ASPP_L_RATES[index],) * 2 and fc6.kernel_size == (3, 3) and fc6.filters == 1024
        assert fc7.kernel_size == (1, 1) and fc7.filters == 1024 and fc8.filters == 21
        assert drop6.rate == drop7.rate == 0.5
    # DeepLab's VGG at output stride 8: pool4/pool5 3x3 at stride 1, conv5 dilated by 2.
    vgg = model.get_layer("vgg16_backbone")
    assert vgg.get_layer("block5_conv1").dilation_rate == (2, 2)
    for pool in ("block4_pool", "block5_pool"):
        assert vgg.get_layer(pool).strides == (1, 1) and vgg.get_layer(pool).pool_size == (3, 3)


@pytest.mark.slow
def test_resnet101_parameter_count_and_structure():
    model = ksp.models.get("deeplab_v2", num_classes=21)  # ResNet-101 by default, the paper's best
    assert model.backbone_name == "resnet101" and model.fc_filters == 0
    aspp_params = 4 * conv_params(3, 2048, 21)  # fc1_voc12_c0..c3 of the reference prototxt
    assert model.count_params() == 44_206_548
    assert trainable_count(model) == 44_101_204
    # The reference's Caffe ResNet-101 has no convolution biases; Keras' has 52,672. Without
    # them, ours is the reference's 42,500,160 (ResNet-101 without fc) + the ASPP.
    backbone = model.get_layer("resnet101_backbone")
    biases = sum(l.filters for l in backbone.layers if isinstance(l, keras.layers.Conv2D) and l.use_bias)
    assert biases == 52_672
    assert trainable_count(model) - biases == 42_500_160 + aspp_params == 44_048_532

    aspp = model.get_layer("aspp")
    assert [branch[0].dilation_rate for branch in aspp.branches] == [(r, r) for r in ASPP_L_RATES]
    assert all(len(branch) == 1 and branch[0].filters == 21 and branch[0].use_bias for branch in aspp.branches)
    # Output stride 8 (Sec. 4.1.3): res4 dilated by 2, res5 by 4.
    assert backbone.get_layer("conv4_block2_2_conv").dilation_rate == (2, 2)
    assert backbone.get_layer("conv5_block3_2_conv").dilation_rate == (4, 4)


# --- structure on tiny configurations --------------------------------------------------------


def test_features_at_stride_8_and_summed_scores():
    model = DeepLabV2(num_classes=3, atrous_rates=ASPP_S_RATES, **TINY_BACKBONE)
    aspp = model.get_layer("aspp")
    assert aspp.atrous_rates == (2, 4, 8, 12) and model.fc_filters == 0 and len(aspp.branches) == 4
    images = np.random.default_rng(0).uniform(0, 255, (1, 40, 56, 3)).astype("float32")
    features, logits = model.feature_model()(images)
    assert tuple(features.shape[1:3]) == (5, 7) and tuple(logits.shape) == (1, 40, 56, 3)
    # The stride-8 scores are the sum of the four branches' scores on the backbone features.
    scores = keras.Model(model.input, aspp.output)(images)
    branches = sum(keras.ops.convert_to_numpy(branch[0](features)) for branch in aspp.branches)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scores), branches, rtol=1e-4, atol=1e-4)


def test_argument_errors():
    with pytest.raises(ValueError, match="backbone"):
        DeepLabV2(num_classes=3, backbone="resnet")
    with pytest.raises(ValueError, match="fc_filters"):
        DeepLabV2(num_classes=3, fc_filters=-1, **TINY_BACKBONE)
    with pytest.raises(TypeError, match="atrous_rates"):
        DeepLabV2(num_classes=3, atrous_rates=(6.5,), **TINY_BACKBONE)
