import keras
import numpy as np
import pytest

from keras_sceneparse.layers.context_module import (
    CONTEXT_DILATIONS,
    CONTEXT_WIDTHS,
    ContextIdentityInitializer,
    ContextModule,
)
from tests.harness import run_layer_test

rng = np.random.default_rng(0)
SCORES = rng.normal(size=(2, 11, 9, 3)).astype("float32")
UNKNOWN = (None, None, 3)

HARNESS_CASES = [
    (ContextModule, {}, (2, 11, 9, 3)),
    (ContextModule, {"variant": "large", "seed": 1}, (2, 11, 9, 3)),
]


@pytest.mark.parametrize("layer_cls,kwargs,expected", HARNESS_CASES, ids=lambda v: getattr(v, "__name__", None))
def test_layer_harness(layer_cls, kwargs, expected):
    run_layer_test(layer_cls, kwargs, SCORES, expected, symbolic_input_shape=[UNKNOWN])


def test_basic_module_starts_as_the_identity_on_non_negative_input():
    # Sec. 3, Eq. 4: with identity initialisation the module passes its input through.
    x = np.abs(rng.normal(size=(2, 37, 41, 5))).astype("float32")
    y = keras.ops.convert_to_numpy(ContextModule("basic")(x))
    np.testing.assert_allclose(y, x, rtol=1e-6, atol=1e-6)
    # Negative scores are truncated by the first layer's max(., 0): not the identity there.
    z = -x
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ContextModule("basic")(z)), 0.0, atol=1e-6)


def test_large_module_without_noise_starts_as_the_identity():
    # Eq. 5 with epsilon = 0: channel groups spread and sum back exactly.
    x = np.abs(rng.normal(size=(1, 19, 23, 3))).astype("float32")
    y = keras.ops.convert_to_numpy(ContextModule("large", noise_stddev=0.0)(x))
    np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-5)
    # With the default noise it is close to, not exactly, the identity.
    noisy = keras.ops.convert_to_numpy(ContextModule("large", seed=3)(x))
    assert 0 < np.abs(noisy - x).max() < 0.2


def test_a_trained_module_is_not_the_identity():
    # The identity check above can fail: perturb one kernel and it must.
    module = ContextModule("basic")
    x = np.abs(rng.normal(size=(1, 9, 9, 2))).astype("float32")
    module(x)
    kernel = module.convolutions[3].kernel
    kernel.assign(kernel + 0.1)
    assert np.abs(keras.ops.convert_to_numpy(module(x)) - x).max() > 1e-2


def numpy_eq5(kernel_size, c_in, c_out, channels):
    kernel = np.zeros((kernel_size, kernel_size, c_in, c_out))
    centre = kernel_size // 2
    for a in range(c_in):
        for b in range(c_out):
            if (a * channels) // c_in == (b * channels) // c_out:
                kernel[centre, centre, a, b] = channels / c_out
    return kernel


@pytest.mark.parametrize("c_in,c_out", [(3, 3), (3, 6), (6, 12), (96, 96), (96, 3)])
def test_initializer_matches_equation_5(c_in, c_out):
    kernel = keras.ops.convert_to_numpy(ContextIdentityInitializer(3)((3, 3, c_in, c_out)))
    np.testing.assert_allclose(kernel, numpy_eq5(3, c_in, c_out, 3))
    noisy = keras.ops.convert_to_numpy(ContextIdentityInitializer(3, stddev=1e-3, seed=0)((3, 3, c_in, c_out)))
    assert 0 < np.abs(noisy - kernel).max() < 1e-2


def test_structure_follows_table_1():
    channels = 21
    for variant in ("basic", "large"):
        module = ContextModule(variant)
        module.build((None, None, None, channels))
        convs = module.convolutions
        assert [conv.dilation_rate[0] for conv in convs] == list(CONTEXT_DILATIONS) == [1, 1, 2, 4, 8, 16, 1, 1]
        assert [conv.kernel_size[0] for conv in convs] == [3] * 7 + [1]
        assert [conv.filters for conv in convs] == [w * channels for w in CONTEXT_WIDTHS[variant]]
        assert [conv.activation.__name__ for conv in convs] == ["relu"] * 7 + ["linear"]
    assert CONTEXT_WIDTHS["large"] == (2, 2, 4, 8, 16, 32, 32, 1)


@pytest.mark.parametrize("variant,per_c_squared,per_c", [("basic", 64, 8), ("large", 15_422, 97)])
def test_parameter_count_from_table_1(variant, per_c_squared, per_c):
    # Basic: seven 3x3 C->C layers and a 1x1 C->C one, 64 C^2 weights (Sec. 3) + 8 C biases.
    # Large: 9(1*2 + 2*2 + 2*4 + 4*8 + 8*16 + 16*32 + 32*32) C^2 + 32 C^2 weights, 97 C biases.
    widths = (1,) + CONTEXT_WIDTHS[variant]
    kernels = (3,) * 7 + (1,)
    derived = sum(k * k * a * b for k, a, b in zip(kernels, widths[:-1], widths[1:]))
    assert derived == per_c_squared and sum(widths[1:]) == per_c
    module = ContextModule(variant)
    module.build((None, None, None, 21))
    assert module.count_params() == per_c_squared * 21**2 + per_c * 21 == {"basic": 28_392, "large": 6_803_139}[variant]
