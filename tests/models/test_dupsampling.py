"""DUpsampling network (Tian, He, Shen and Yan, CVPR 2019)."""

import keras
import numpy as np
import pytest

from keras_sceneparse.layers.data_dependent_upsampling import (
    DataDependentUpsampling,
    fit_dupsampling_basis,
)
from keras_sceneparse.models.dupsampling import DUpsamplingNet
from tests.harness import run_model_test

NARROW_RESNET = {"backbone": "resnet18", "backbone_kwargs": {"base_filters": 8}}
TINY = {**NARROW_RESNET, "low_level_filters": 4, "decoder_filters": 8}

# Odd sizes, not multiples of the stride.
HARNESS_CASES = [
    ("dupsampling", TINY, (35, 45, 3), 5, 255),
    pytest.param("dupsampling", {**TINY, "output_stride": 32, "learn_temperature": False}, (33, 29, 3), 2, None, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)


def test_structure():
    model = DUpsamplingNet(num_classes=21, **NARROW_RESNET)
    layer = model.get_layer("dupsampling")
    assert isinstance(layer, DataDependentUpsampling) and layer.ratio == 16 and layer.learn_temperature
    assert layer.kernel.shape == (1, 1, 256, 16 * 16 * 21)  # W^T: C = 256 -> r^2 N
    assert float(layer.temperature.numpy()) == 1.0
    assert model.get_layer("low_level_reduction").filters == 48
    backbone = model.get_layer("resnet18_backbone")
    assert backbone.output_stride == 16
    # C2 is brought down to C5's resolution (Sec. 3.3), not C5 up to C2's.
    images = np.zeros((1, 67, 75, 3), "float32")
    features, logits = model.feature_model()(images)
    assert features.shape == (1, 5, 5, 256)  # padded to 80x80, stride 16
    assert logits.shape == (1, 67, 75, 21)


def test_the_fitted_basis_plugs_into_the_model_and_the_temperature_scales_the_logits():
    model = DUpsamplingNet(num_classes=3, **{**TINY, "output_stride": 8})
    labels = np.random.default_rng(0).integers(0, 3, (4, 32, 40))
    basis = fit_dupsampling_basis(labels, num_classes=3, ratio=model.output_stride, channels=model.decoder_filters)
    layer = model.get_layer("dupsampling")
    layer.kernel.assign(basis[None, None])
    images = np.random.default_rng(1).uniform(0, 255, (1, 27, 35, 3)).astype("float32")
    logits = keras.ops.convert_to_numpy(model(images))
    layer.temperature.assign(0.5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(images)), 2 * logits, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_resnet50_parameter_count():
    model = DUpsamplingNet(num_classes=21)
    assert model.count_params() == 30_397_505
    assert model.get_layer("dupsampling").count_params() == 256 * 16 * 16 * 21 + 1


def conv_bn(kernel, c_in, c_out):
    return kernel * kernel * c_in * c_out + 4 * c_out


def test_decoder_parameters_from_the_formula():
    model = DUpsamplingNet(num_classes=21, **NARROW_RESNET)
    channels = model.get_layer("resnet18_backbone").pyramid_channels
    decoder = (
        conv_bn(1, channels["C2"], 48) + conv_bn(3, channels["C5"] + 48, 256) + conv_bn(3, 256, 256)
        + 256 * 16 * 16 * 21 + 1
    )
    assert model.count_params() - model.get_layer("resnet18_backbone").count_params() == decoder


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="output_stride"):
        DUpsamplingNet(num_classes=3, output_stride=4, **TINY)
    with pytest.raises(ValueError, match="decoder_filters"):
        DUpsamplingNet(num_classes=3, **{**TINY, "decoder_filters": 0})
