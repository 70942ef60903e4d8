import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.models.parsenet import ParseNet
from tests.harness import run_model_test

TINY = {"base_filters": 4, "fc_filters": 8}

HARNESS_CASES = [
    ("parsenet", TINY, (33, 38, 3), 4, 255),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)


def conv_params(kernel, c_in, c_out, bias=True):
    return kernel * kernel * c_in * c_out + (c_out if bias else 0)


def test_parameter_count_for_21_classes():
    model = ksp.models.get("parsenet", num_classes=21)
    deeplab_largefov = 14_714_688 + conv_params(3, 512, 1024) + conv_params(1, 1024, 1024) + conv_params(1, 1024, 21)
    assert deeplab_largefov == 20_505_429  # DeepLab-LargeFOV's count (Chen et al., Table 2: 20.5M)
    # + fc8 weights for the concatenated global feature + two L2-normalisation scale vectors.
    assert model.count_params() == deeplab_largefov + 1024 * 21 + 2 * 1024 == 20_528_981


def test_backbone_is_deeplab_largefov_at_stride_8():
    model = ParseNet(num_classes=3, input_shape=(96, 96, 3), **TINY)
    for pool in ("pool4", "pool5"):
        assert model.get_layer(pool).strides == (1, 1) and model.get_layer(pool).pool_size == (3, 3)
    assert model.get_layer("conv5_1").dilation_rate == (2, 2)
    assert model.get_layer("fc6").dilation_rate == (12, 12) and model.get_layer("fc6").kernel_size == (3, 3)
    assert tuple(model.get_layer("fc7").output.shape[1:3]) == (12, 12)
    assert model.get_layer("fc7_norm").scale == model.get_layer("pool6_norm").scale == 10.0


def test_global_context_is_the_normalised_average_at_every_position():
    # Sec. 3: concat(L2Norm(fc7), unpool(L2Norm(mean(fc7)))) with per-channel scales.
    model = ParseNet(num_classes=3, **TINY)
    gamma_local = np.linspace(1, 3, 8).astype("float32")
    gamma_global = np.linspace(5, 12, 8).astype("float32")
    model.get_layer("fc7_norm").gamma.assign(gamma_local)
    model.get_layer("pool6_norm").gamma.assign(gamma_global)
    probe = keras.Model(model.input, [model.get_layer("drop7").output, model.get_layer("fused_features").output])
    images = np.random.default_rng(0).uniform(0, 255, size=(2, 45, 29, 3)).astype("float32")
    fc7, fused = (keras.ops.convert_to_numpy(t) for t in probe(images))
    fc7 = fc7.astype("float64")
    local = fc7 / np.sqrt((fc7**2).sum(-1, keepdims=True) + 1e-10) * gamma_local
    pooled = fc7.mean(axis=(1, 2), keepdims=True)
    context = pooled / np.sqrt((pooled**2).sum(-1, keepdims=True)) * gamma_global
    np.testing.assert_allclose(fused[..., :8], local, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fused[..., 8:], np.broadcast_to(context, local.shape), rtol=1e-4, atol=1e-5)
