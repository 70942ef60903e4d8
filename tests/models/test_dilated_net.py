import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.models.dilated_net import DilatedNet
from tests.harness import run_model_test

TINY = {"base_filters": 4, "fc_filters": 8}

# Odd sizes, not multiples of the output stride 8.
HARNESS_CASES = [
    ("dilated_net", {**TINY, "context": "basic"}, (35, 45, 3), 3, None),
    pytest.param("dilated_net", {**TINY, "context": "large"}, (33, 38, 3), 2, 255, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)


def conv_params(kernel, c_in, c_out, bias=True):
    return kernel * kernel * c_in * c_out + (c_out if bias else 0)


def test_parameter_counts_for_21_classes():
    model = ksp.models.get("dilated_net", num_classes=21, context="large")
    context = model.get_layer("context").count_params()
    front_end = model.count_params() - context
    vgg_convolutions = 14_714_688
    assert front_end == (
        vgg_convolutions + conv_params(7, 512, 4096) + conv_params(1, 4096, 4096) + conv_params(1, 4096, 21)
    ) == 134_346_581
    # Table 1's large module: 15,422 C^2 weights + 97 C biases.
    assert context == 15_422 * 21**2 + 97 * 21 == 6_803_139
    assert model.count_params() == 141_149_720
    # The basic module: 64 C^2 + 8 C (Sec. 3).
    basic = DilatedNet(num_classes=21, context="basic", **TINY).get_layer("context")
    assert basic.count_params() == 64 * 21**2 + 8 * 21 == 28_392


def test_front_end_structure_follows_section_4():
    model = DilatedNet(num_classes=3, input_shape=(96, 96, 3), context="none", **TINY)
    names = {layer.name for layer in model.layers}
    assert {"pool1", "pool2", "pool3"} <= names and not {"pool4", "pool5"} & names
    assert "context" not in names
    for index in (1, 2, 3):
        assert model.get_layer(f"conv5_{index}").dilation_rate == (2, 2)
        assert model.get_layer(f"conv4_{index}").dilation_rate == (1, 1)
    fc6 = model.get_layer("fc6")
    assert fc6.kernel_size == (7, 7) and fc6.dilation_rate == (4, 4)
    assert model.get_layer("fc7").kernel_size == (1, 1)
    # Output stride 8.
    assert tuple(model.get_layer("fc_final").output.shape[1:3]) == (12, 12)


def test_context_module_starts_as_identity_inside_the_model():
    model = DilatedNet(num_classes=3, context="basic", **TINY)
    front_end = keras.Model(model.input, model.get_layer("fc_final").output)
    with_context = keras.Model(model.input, model.get_layer("context").output)
    images = np.random.default_rng(0).uniform(0, 255, size=(1, 41, 50, 3)).astype("float32")
    scores = keras.ops.convert_to_numpy(front_end(images))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(with_context(images)), np.maximum(scores, 0), atol=1e-5)


def test_invalid_context_is_rejected():
    with pytest.raises(ValueError, match="context"):
        DilatedNet(num_classes=3, context="huge", **TINY)
