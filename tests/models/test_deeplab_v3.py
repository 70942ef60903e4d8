import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.backbones.backbone import Backbone
from keras_sceneparse.backbones.multi_grid import (
    MULTI_GRID_LAYERS,
    apply_multi_grid,
    multi_grid_config,
)
from keras_sceneparse.models.deeplab_v3 import DeepLabV3
from tests.counting import trainable_count
from tests.harness import run_model_test

TINY = {"backbone": "mobilenet_v2", "backbone_kwargs": {"alpha": 0.35}, "aspp_filters": 8}

# One entry per registered name: small widths, odd image sizes (not multiples of the stride).
HARNESS_CASES = [
    ("deeplabv3", {**TINY, "backbone": "resnet18", "backbone_kwargs": {"base_filters": 8}}, (35, 45, 3), 5, 255),
    pytest.param("deeplabv3", {**TINY, "output_stride": 8, "atrous_rates": (1, 2)}, (29, 34, 3), 2, None, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)


@pytest.mark.slow
def test_model_harness_with_multi_grid_resnet():
    # The multi-grid backbone is rebuilt from the model's arguments when a saved model loads.
    run_model_test("deeplabv3", {"backbone": "resnet50", "aspp_filters": 8}, (37, 41, 3), 3)


# --- parameter counts (built, never run) ------------------------------------------------------

def conv_bias_count(model):
    return sum(l.filters for l in model.layers if isinstance(l, keras.layers.Conv2D) and l.use_bias)


# torchvision's DeepLabV3 (21 classes) adds to the paper's network an auxiliary FCN head on
# layer3 (3x3 conv 1024->256 without bias, BN, 1x1 conv 256->21) and a 3x3 conv 256->256 with
# BN between ASPP and classifier; its ResNets have no convolution biases, Keras' have.
TORCHVISION_AUX_HEAD = 3 * 3 * 1024 * 256 + 2 * 256 + 256 * 21 + 21
TORCHVISION_HEAD_CONV = 3 * 3 * 256 * 256 + 2 * 256


def test_resnet50_parameter_count_and_multi_grid_rates():
    model = ksp.models.get("deeplabv3", num_classes=21, backbone="resnet50")
    assert model.count_params() == 39_131_285 and trainable_count(model) == 39_075_093
    backbone = model.get_layer("resnet50_backbone")
    assert TORCHVISION_AUX_HEAD == 2_365_205 and conv_bias_count(backbone) == 26_560
    assert trainable_count(model) == 42_004_074 - TORCHVISION_AUX_HEAD - TORCHVISION_HEAD_CONV + 26_560

    # Sec. 3.2: at output stride 16 block4's units have rates 2 * (1, 2, 4) = (2, 4, 8).
    assert model.multi_grid == (1, 2, 4)
    rates = [backbone.get_layer(name).dilation_rate for name in MULTI_GRID_LAYERS["resnet50"]]
    assert rates == [(2, 2), (4, 4), (8, 8)]
    # Other block4 convolutions are 1x1; block3 is not dilated at output stride 16.
    assert backbone.get_layer("conv5_block2_1_conv").dilation_rate == (1, 1)
    assert backbone.get_layer("conv4_block6_2_conv").dilation_rate == (1, 1)
    # Sec. 3.3: ASPP (1x1, three 3x3 with rates 6, 12, 18, image pooling; 256 channels) and a 1x1 classifier.
    aspp = model.get_layer("aspp")
    assert aspp.atrous_rates == (6, 12, 18) and aspp.filters == 256 and not aspp.separable
    classifier = model.get_layer("classifier")
    assert classifier.kernel_size == (1, 1) and classifier.filters == 21


@pytest.mark.slow
def test_resnet101_parameter_count():
    model = ksp.models.get("deeplabv3", num_classes=21)  # ResNet-101 by default, the paper's
    assert model.backbone_name == "resnet101" and model.output_stride == 16
    assert model.count_params() == 58_201_749 and trainable_count(model) == 58_093_333
    assert conv_bias_count(model.get_layer("resnet101_backbone")) == 52_672
    assert trainable_count(model) == 60_996_202 - TORCHVISION_AUX_HEAD - TORCHVISION_HEAD_CONV + 52_672


@pytest.mark.slow
def test_output_stride_8_doubles_the_rates():
    model = DeepLabV3(num_classes=21, backbone="resnet50", output_stride=8)
    backbone = model.get_layer("resnet50_backbone")
    rates = [backbone.get_layer(name).dilation_rate[0] for name in MULTI_GRID_LAYERS["resnet50"]]
    assert rates == [4, 8, 16] and backbone.get_layer("conv4_block6_2_conv").dilation_rate == (2, 2)
    assert model.get_layer("aspp").atrous_rates == (12, 24, 36)
    plain = DeepLabV3(num_classes=21, backbone="resnet50", multi_grid=(1, 1, 1))
    backbone = plain.get_layer("resnet50_backbone")
    assert [backbone.get_layer(name).dilation_rate[0] for name in MULTI_GRID_LAYERS["resnet50"]] == [2, 2, 2]


# --- multi-grid on a small functional graph ---------------------------------------------------


def three_units(rates=(2, 2, 2), padding="same"):
    inputs = keras.Input((None, None, 2))
    x = inputs
    for index, rate in enumerate(rates, start=1):
        x = keras.layers.Conv2D(3, 3, padding=padding, dilation_rate=rate, name=f"unit{index}")(x)
    return keras.Model(inputs, {"C5": x})


def test_apply_multi_grid_multiplies_the_unit_rates_and_keeps_the_weights():
    model = three_units()
    names = ["unit1", "unit2", "unit3"]
    grid = apply_multi_grid(model, (1, 2, 4), layer_names=names)
    assert [grid.get_layer(name).dilation_rate for name in names] == [(2, 2), (4, 4), (8, 8)]
    assert [model.get_layer(name).dilation_rate for name in names] == [(2, 2)] * 3  # untouched
    # Same weights, and the same outputs as a graph built with rates (2, 4, 8) directly.
    reference = three_units((2, 4, 8))
    reference.set_weights(model.get_weights())
    x = np.random.default_rng(0).normal(size=(1, 19, 17, 2)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(grid(x)["C5"]), keras.ops.convert_to_numpy(reference(x)["C5"]), atol=1e-5
    )
    assert not np.allclose(keras.ops.convert_to_numpy(grid(x)["C5"]), keras.ops.convert_to_numpy(model(x)["C5"]))


def test_multi_grid_errors():
    config = three_units().get_config()
    with pytest.raises(ValueError, match="one rate per unit"):
        multi_grid_config(config, ["unit1", "unit2", "unit3"], (1, 2))
    with pytest.raises(ValueError, match="no layer"):
        multi_grid_config(config, ["unit1", "unit2", "conv9"], (1, 2, 4))
    with pytest.raises(ValueError, match="'same' padding"):
        multi_grid_config(three_units(padding="valid").get_config(), ["unit1", "unit2", "unit3"], (1, 2, 4))
    with pytest.raises(ValueError, match="ResNet"):
        apply_multi_grid(Backbone("mobilenet_v2", application_kwargs={"alpha": 0.35}))
    with pytest.raises(ValueError, match="multi_grid"):
        DeepLabV3(num_classes=3, multi_grid=(1, 2, 4), **TINY)


# --- structure on tiny configurations ---------------------------------------------------------


def test_tiny_structure_and_output_stride_8():
    model = DeepLabV3(num_classes=3, output_stride=8, **TINY)
    # Multi-grid is ResNet's; other backbones keep the plain dilated network.
    assert model.multi_grid is None and model.get_config()["multi_grid"] is None
    assert model.get_layer("aspp").atrous_rates == (12, 24, 36)
    images = np.random.default_rng(0).uniform(0, 255, (1, 40, 56, 3)).astype("float32")
    features, logits = model.feature_model()(images)
    assert tuple(features.shape) == (1, 5, 7, 8) and tuple(logits.shape) == (1, 40, 56, 3)
