import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.layers.enet_blocks import ENetInitialBlock
from keras_sceneparse.layers.lednet_blocks import (
    AttentionPyramidNetwork,
    SplitShuffleNonBottleneck,
)
from keras_sceneparse.models.lednet import LEDNet
from tests.counting import trainable_count
from tests.harness import OTHER_BACKENDS, run_model_test, run_under_backend

TINY = {"filters": (8, 16, 32)}

# (registered_name, kwargs, input_shape, num_classes, ignore_class); odd sizes, not multiples of 8.
HARNESS_CASES = [
    ("lednet", TINY, (37, 45, 3), 3, None),
]


@pytest.mark.parametrize(
    "name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES
)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)


@pytest.mark.slow
def test_model_harness_one_channel_without_dropout():
    kwargs = {**TINY, "dropout_rates": (0.0, 0.0), "input_shape": (None, None, 1)}
    run_model_test("lednet", kwargs, (30, 27, 1), 5, ignore_class=4)


@pytest.mark.slow
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_same_outputs_under_other_backends(backend, tmp_path):
    model = ksp.models.get("lednet", num_classes=3, **TINY)
    for unit in ss_nbt_units(model).values():
        for layer in unit.left + unit.right:  # non-silent branches
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.gamma.assign(np.full(layer.gamma.shape, 0.5, "float32"))
    images = (
        np.random.default_rng(0).uniform(0, 255, size=(2, 29, 35, 3)).astype("float32")
    )
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    (actual,) = run_under_backend(backend, model, [images], tmp_path)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-3)

# --- parameter counts of the paper's configuration (built, never run) ------------------------

PAPER_PARAMETERS = 0.94e6  # Table 3, Cityscapes


def ss_nbt_weights(channels):
    # Two branches of four 1D convolutions (3 taps, with bias) on C/2 channels, two batch norms each.
    half = channels // 2
    return 2 * (4 * (3 * half * half + half) + 2 * 2 * half)


def downsampling_weights(c_in, c_out):
    return (
        9 * c_in * (c_out - c_in) + (c_out - c_in) + 2 * c_out
    )  # 3x3 conv with bias, BN


def apn_weights(c_in, classes):
    # Two 1x1 conv-BN-ReLU to the classes; the one-channel pyramid 7x7/2, 5x5/2, 3x3/2, 3x3, 5x5, 7x7.
    branches = 2 * (c_in * classes + 2 * classes)
    pyramid = (49 * c_in + 2) + sum(k * k + 2 for k in (5, 3, 3, 5, 7))
    return branches + pyramid


@pytest.fixture(scope="module")
def paper_model():
    return ksp.models.get("lednet", num_classes=19)  # Cityscapes' 19 classes


def test_parameter_count_of_the_paper_configuration(paper_model):
    encoder = (
        downsampling_weights(3, 32)
        + 3 * ss_nbt_weights(32)
        + downsampling_weights(32, 64)
        + 2 * ss_nbt_weights(64)
        + downsampling_weights(64, 128)
        + 8 * ss_nbt_weights(128)
    )
    assert encoder == 911_436
    assert apn_weights(128, 19) == 11_341
    assert trainable_count(paper_model) == encoder + apn_weights(128, 19) == 922_777
    # Batch-norm moving statistics (mean and variance) of 2,764 channels.
    assert paper_model.count_params() - trainable_count(paper_model) == 5_528
    # NOT within 1% of the paper's 0.94M (see the docstring): 1.8% below trainable, 1.2% below
    # in all.
    assert (
        0.015
        < (PAPER_PARAMETERS - trainable_count(paper_model)) / PAPER_PARAMETERS
        < 0.02
    )
    assert (
        0.01
        < (PAPER_PARAMETERS - paper_model.count_params()) / PAPER_PARAMETERS
        < 0.015
    )
    # The authors' train/lednet.py, also 1.5% below: 20 APN outputs (a void class), 2 * 20 + 6
    # biases before the APN's batch norms, and the encoder-only 1x1 classifier.
    reference = encoder + apn_weights(128, 20) + (2 * 20 + 6) + (128 * 20 + 20)
    assert reference == 925_663


# --- structure (Table 1) -----------------------------------------------------------------


def ss_nbt_units(model):
    return {
        layer.name: layer
        for layer in model.layers
        if isinstance(layer, SplitShuffleNonBottleneck)
    }


def test_table_1_units(paper_model):
    model = paper_model
    downsampling = [
        layer for layer in model.layers if isinstance(layer, ENetInitialBlock)
    ]
    assert [layer.name for layer in downsampling] == [
        "downsampling1",
        "downsampling5",
        "downsampling8",
    ]
    assert [layer.filters for layer in downsampling] == [32, 64, 128]
    assert {layer.activation for layer in downsampling} == {"relu"}
    units = ss_nbt_units(model)
    assert list(units) == [f"ss_nbt{row}" for row in (2, 3, 4, 6, 7, *range(9, 17))]
    assert [units[name].dilation_rate for name in units] == [1] * 5 + [
        1,
        2,
        5,
        9,
        2,
        5,
        9,
        17,
    ]
    assert [units[name].dropout for name in units] == [0.03] * 5 + [0.3] * 8
    widths = [model.get_layer(name).output.shape[-1] for name in units]
    assert widths == [32] * 3 + [64] * 2 + [128] * 8
    apn = model.get_layer("apn")
    assert isinstance(apn, AttentionPyramidNetwork) and apn.filters == 19
    assert apn.down1.filters == 1 and apn.middle_conv.filters == 19
    assert model.get_layer("upsampling").align_corners


def test_feature_layer_and_output_sizes():
    model = ksp.models.get("lednet", num_classes=4, **TINY)
    features, logits = model.feature_model()(np.zeros((1, 43, 21, 3), "float32"))
    # Three ceil-mode halvings: 43 -> 22 -> 11 -> 6, 21 -> 11 -> 6 -> 3; logits back at the input size.
    assert tuple(features.shape) == (1, 6, 3, 32)
    assert tuple(logits.shape) == (1, 43, 21, 4)


def test_untrained_logits_are_well_scaled_in_inference_mode():
    # The zero-initialised last batch-norm scales keep the 13 residual additions from blowing up.
    model = ksp.models.get("lednet", num_classes=5, **TINY)
    images = (
        np.random.default_rng(1).uniform(0, 255, size=(1, 40, 48, 3)).astype("float32")
    )
    logits = keras.ops.convert_to_numpy(model(images, training=False))
    assert np.all(np.isfinite(logits)) and np.abs(logits).max() < 1e3


def test_argument_errors():
    with pytest.raises(ValueError, match="filters"):
        LEDNet(num_classes=3, filters=(32, 64))
    with pytest.raises(ValueError, match="even"):
        LEDNet(num_classes=3, filters=(32, 63, 128))
    with pytest.raises(ValueError, match="increase"):
        LEDNet(num_classes=3, filters=(32, 128, 64))
    with pytest.raises(ValueError, match="input channels"):
        LEDNet(num_classes=3, filters=(4, 8, 16), input_shape=(None, None, 4))
    with pytest.raises(ValueError, match="dilation_rates"):
        LEDNet(num_classes=3, dilation_rates=(1, 2, 5))
    with pytest.raises(ValueError, match=r"dilation_rates\[1\]"):
        LEDNet(num_classes=3, dilation_rates=(1, 0, 5, 9, 2, 5, 9, 17))
    with pytest.raises(ValueError, match="dropout_rates"):
        LEDNet(num_classes=3, dropout_rates=(0.03, 0.3, 0.3))
    with pytest.raises(ValueError, match=r"dropout_rates\[1\]"):
        LEDNet(num_classes=3, dropout_rates=(0.03, 1.5))
    with pytest.raises(ValueError, match="weights"):
        LEDNet(num_classes=3, weights="cityscapes")
    with pytest.raises(ValueError, match="num_classes"):
        LEDNet(num_classes=1)
