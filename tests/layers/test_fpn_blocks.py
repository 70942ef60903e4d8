import keras
import numpy as np
import pytest

from keras_sceneparse.layers.fpn_blocks import FeaturePyramid
from tests.harness import assert_saved_model_roundtrip

rng = np.random.default_rng(0)
# C2..C5 of a 64x32 image: strides 4, 8, 16, 32, widths growing like a ResNet's.
PYRAMID = [rng.normal(size=(2, 16 // 2**i, 8 // 2**i, 3 * 2**i)).astype("float32") for i in range(4)]


def test_feature_pyramid_harness():
    # The harness passes inputs positionally; the pyramid takes one list, so check it here.
    layer = FeaturePyramid(5)
    outputs = layer(PYRAMID)
    assert [tuple(o.shape) for o in outputs] == [(*c.shape[:3], 5) for c in PYRAMID]
    config = layer.get_config()
    assert FeaturePyramid.from_config(config).get_config() == config
    assert keras.saving.get_registered_name(FeaturePyramid) == "keras_sceneparse>FeaturePyramid"
    symbolic = [keras.Input((None, None, c.shape[-1])) for c in PYRAMID]
    outputs = FeaturePyramid(5)(symbolic)
    assert all(tuple(o.shape) == (None, None, None, 5) for o in outputs)
    model = keras.Model(symbolic, outputs)
    assert_saved_model_roundtrip(model, PYRAMID)
    trainer = keras.Model(symbolic, keras.layers.Add()([keras.layers.Flatten()(o)[:, :4] for o in outputs]))
    trainer.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = [w.numpy().copy() for w in trainer.trainable_weights]
    trainer.fit(PYRAMID, np.ones((2, 4), "float32"), verbose=0)
    assert all(not np.allclose(b, w.numpy()) for b, w in zip(before, trainer.trainable_weights))


def numpy_conv(x, kernel, bias):
    kh, kw = kernel.shape[:2]
    top, left = (kh - 1) // 2, (kw - 1) // 2
    padded = np.pad(x, ((0, 0), (top, kh - 1 - top), (left, kw - 1 - left), (0, 0)))
    out = np.zeros((*x.shape[:3], kernel.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            out += padded[:, i : i + x.shape[1], j : j + x.shape[2], :] @ kernel[i, j]
    return out + bias


def test_feature_pyramid_matches_numpy():
    layer = FeaturePyramid(4)
    layer.build([c.shape for c in PYRAMID])
    for weight in layer.weights:
        weight.assign(rng.normal(scale=0.3, size=weight.shape).astype("float32"))

    def conv(c, x):
        return numpy_conv(x, c.kernel.numpy(), c.bias.numpy())

    # M_5 = L_5(C_5); M_i = L_i(C_i) + nearest 2x upsampling of M_(i+1); P_i = 3x3 conv of M_i.
    merged = [None] * 4
    for level in (3, 2, 1, 0):
        lateral = conv(layer.lateral_convs[level], PYRAMID[level])
        if level < 3:
            lateral = lateral + merged[level + 1].repeat(2, axis=1).repeat(2, axis=2)
        merged[level] = lateral
    expected = [conv(c, m) for c, m in zip(layer.output_convs, merged)]
    assert layer.lateral_convs[0].kernel.shape == (1, 1, 3, 4) and layer.output_convs[0].kernel.shape == (3, 3, 4, 4)
    for got, want in zip(layer(PYRAMID), expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), want, rtol=1e-4, atol=1e-4)


def test_feature_pyramid_takes_maps_that_do_not_halve_exactly():
    # A 75-pixel image: 19, 10, 5, 3 rows; each level keeps its own size.
    maps = [rng.normal(size=(1, size, size, 2)).astype("float32") for size in (19, 10, 5, 3)]
    assert [o.shape[1] for o in FeaturePyramid(3)(maps)] == [19, 10, 5, 3]
    with pytest.raises(ValueError, match="upsampling"):
        FeaturePyramid(3, upsampling="cubic")
