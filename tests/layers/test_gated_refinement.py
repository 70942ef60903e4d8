import keras
import numpy as np
import pytest

from keras_sceneparse.layers.gated_refinement import GatedRefinementUnit, GateUnit
from tests.harness import run_layer_test
from tests.layers.test_refinement_blocks import numpy_bilinear_resize, numpy_conv

rng = np.random.default_rng(0)
FINE = rng.normal(size=(2, 9, 7, 6)).astype("float32")
COARSE = rng.normal(size=(2, 5, 4, 8)).astype("float32")
LABELS = rng.normal(size=(2, 5, 4, 3)).astype("float32")


def test_gate_unit_harness():
    run_layer_test(GateUnit, {"filters": 4}, (FINE, COARSE), (2, 9, 7, 4),
                   symbolic_input_shape=[(None, None, 6), (None, None, 8)])


def test_gated_refinement_unit_harness():
    run_layer_test(GatedRefinementUnit, {"num_classes": 3}, (FINE, LABELS), (2, 9, 7, 3),
                   symbolic_input_shape=[(None, None, 6), (None, None, 3)])
    run_layer_test(GatedRefinementUnit, {"num_classes": 3, "filters": 5}, (FINE, LABELS), (2, 9, 7, 3))


def randomize(layer):
    for weight in layer.weights:
        if "moving_variance" in weight.path:
            weight.assign(rng.uniform(0.5, 2.0, weight.shape).astype("float32"))
        else:
            weight.assign(rng.normal(scale=0.3, size=weight.shape).astype("float32"))


def numpy_conv_bn_relu(x, unit):
    conv, bn = unit.sublayers[0], unit.sublayers[1]
    y = numpy_conv(x, conv.kernel.numpy())
    y = (y - bn.moving_mean.numpy()) / np.sqrt(bn.moving_variance.numpy() + bn.epsilon) * bn.gamma.numpy()
    return np.maximum(y + bn.beta.numpy(), 0)


def test_gate_unit_matches_numpy():
    gate = GateUnit(4)
    gate(FINE, COARSE)
    randomize(gate)
    u = numpy_conv_bn_relu(FINE, gate.features_conv)
    v = numpy_bilinear_resize(numpy_conv_bn_relu(COARSE, gate.deeper_conv), 9, 7)
    expected = u * v  # M_f = u ⊙ up(v)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(gate(FINE, COARSE)), expected, atol=1e-4)
    assert np.abs(expected).max() > 0.1


def test_gated_refinement_unit_matches_numpy():
    unit = GatedRefinementUnit(3)
    unit(FINE, LABELS)
    randomize(unit)
    m = numpy_conv_bn_relu(FINE, unit.features_conv)
    coarse = numpy_bilinear_resize(LABELS, 9, 7)
    expected = numpy_conv(np.concatenate([coarse, m], -1), unit.refine_conv.kernel.numpy(), unit.refine_conv.bias.numpy())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(unit(FINE, LABELS)), expected, atol=1e-4)


def test_argument_errors():
    with pytest.raises(ValueError, match="filters"):
        GateUnit(0)
    with pytest.raises(ValueError, match="num_classes"):
        GatedRefinementUnit(0)
    with pytest.raises(TypeError, match="filters"):
        GatedRefinementUnit(3, filters=2.5)
