import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.cli import common
from keras_sceneparse.models.test_time_augmentation import (
    DEEPLAB_SCALES,
    AverageViews,
    HorizontalFlip,
    MultiScaleFlipInference,
    ScaleImages,
)
from tests.harness import (
    assert_saved_model_roundtrip,
    run_layer_test,
    unknown_size_dataset,
)

NUM_CLASSES = 4


def conv_model(symmetric=False, dict_output=False, seed=0):
    """A small fully convolutional model; with ``symmetric`` its 3x3 kernel is mirror-symmetric
    left-right, so the model commutes with horizontal flips (up to the zero padding, which is
    symmetric too)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, 3))
    first = keras.layers.Conv2D(6, 3, padding="same", activation="tanh", name="first")
    x = first(inputs)
    x = keras.layers.Conv2D(NUM_CLASSES, 1, name="classifier")(x)
    outputs = {"logits": x, "aux": keras.layers.Conv2D(NUM_CLASSES, 1, name="aux")(inputs)} if dict_output else x
    model = keras.Model(inputs, outputs)
    kernel = keras.ops.convert_to_numpy(first.kernel)
    if symmetric:
        kernel = kernel + kernel[:, ::-1]
    first.kernel.assign(kernel * 2.0)  # logits of a few units, so soft-max averaging differs from logit averaging
    return model


def images(shape=(2, 13, 17, 3), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def numpy_resize(x, height, width):
    """Bilinear resize with half-pixel centres (TensorFlow's, without antialiasing)."""
    def axis_weights(in_size, out_size):
        source = (np.arange(out_size) + 0.5) * in_size / out_size - 0.5
        source = np.clip(source, 0, in_size - 1)
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, in_size - 1)
        return low, high, source - low

    rl, rh, rw = axis_weights(x.shape[1], height)
    cl, ch, cw = axis_weights(x.shape[2], width)
    rows = x[:, rl] * (1 - rw)[None, :, None, None] + x[:, rh] * rw[None, :, None, None]
    return rows[:, :, cl] * (1 - cw)[None, None, :, None] + rows[:, :, ch] * cw[None, None, :, None]


def numpy_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_one_view_equals_the_wrapped_model():
    model, x = conv_model(), images()
    expected = keras.ops.convert_to_numpy(model(x))
    tta = MultiScaleFlipInference(model, scales=(1.0,), flip=False, average="logits")
    assert tta.num_views == 1
    np.testing.assert_allclose(tta.predict(x, verbose=0), expected, atol=1e-6)
    # Averaged probabilities: log-probabilities of the model, the same soft-max and argmax.
    probabilities = MultiScaleFlipInference(model).predict(x, verbose=0)
    np.testing.assert_allclose(numpy_softmax(probabilities), numpy_softmax(expected), atol=1e-6)
    np.testing.assert_allclose(np.exp(probabilities).sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("average", ["probabilities", "logits"])
def test_flipping_a_flip_equivariant_model_changes_nothing(average):
    x = images()
    model = conv_model(symmetric=True)
    plain = MultiScaleFlipInference(model, average=average).predict(x, verbose=0)
    flipped = MultiScaleFlipInference(model, flip=True, average=average).predict(x, verbose=0)
    np.testing.assert_allclose(flipped, plain, atol=1e-5)
    # The check can fail: a model that is not flip-equivariant gives another average.
    asymmetric = conv_model(symmetric=False)
    plain = MultiScaleFlipInference(asymmetric, average=average).predict(x, verbose=0)
    flipped = MultiScaleFlipInference(asymmetric, flip=True, average=average).predict(x, verbose=0)
    assert np.abs(flipped - plain).max() > 1e-2


@pytest.mark.parametrize("average", ["probabilities", "logits"])
def test_averaging_matches_numpy(average):
    model, x = conv_model(), images()
    scales = (0.5, 1.0, 1.75)
    tta = MultiScaleFlipInference(model, scales=scales, flip=True, average=average)
    assert tta.num_views == 6
    height, width = x.shape[1:3]
    views = []
    for scale in scales:
        size = (int(height * scale + 0.5), int(width * scale + 0.5))
        scaled = numpy_resize(x, *size)
        for flip in (False, True):
            view = scaled[:, :, ::-1] if flip else scaled
            logits = keras.ops.convert_to_numpy(model(np.ascontiguousarray(view)))
            logits = logits[:, :, ::-1] if flip else logits
            views.append(numpy_resize(logits, height, width))
    views = np.stack(views)
    if average == "logits":
        expected = views.mean(0)
        np.testing.assert_allclose(tta.predict(x, verbose=0), expected, atol=1e-4)
    else:
        expected = numpy_softmax(views).mean(0)
        np.testing.assert_allclose(np.exp(tta.predict(x, verbose=0)), expected, atol=1e-5)
        assert np.abs(np.log(expected) - np.log(numpy_softmax(views.mean(0)))).max() > 1e-3  # the two differ


def test_dict_output_models_use_their_main_logits():
    model, x = conv_model(dict_output=True), images()
    tta = MultiScaleFlipInference(model, average="logits")
    np.testing.assert_allclose(tta.predict(x, verbose=0), keras.ops.convert_to_numpy(model(x)["logits"]), atol=1e-6)


def test_wraps_a_segmentation_model_saves_and_evaluates(tmp_path):
    model = ksp.models.get(
        "deeplabv3plus", num_classes=3, backbone="resnet18", backbone_kwargs={"base_filters": 8},
        aspp_filters=8, low_level_filters=4, decoder_filters=8,
    )
    tta = MultiScaleFlipInference(model, scales=(0.75,), flip=True)
    assert isinstance(tta, ksp.models.SegmentationModel) and tta.num_classes == 3
    x = images((1, 29, 23, 3)) * 60 + 120
    predicted = tta.predict(x, verbose=0)
    assert predicted.shape == (1, 29, 23, 3) and np.all(np.isfinite(predicted))
    # Sizes unknown to the graph until run time, as `sceneparse evaluate` feeds it.
    np.testing.assert_allclose(tta.predict(unknown_size_dataset(x), verbose=0), predicted, atol=1e-4)
    assert common.model_num_classes(tta) == 3
    ids = common.label_predictor(tta)(x).numpy()
    np.testing.assert_array_equal(ids, predicted.argmax(-1))
    restored = assert_saved_model_roundtrip(tta, x, atol=1e-5)
    assert restored.scales == (0.75,) and restored.flip and restored.average == "probabilities"
    assert type(restored.segmentation_model) is type(model)
    assert restored.get_config()["scales"] == tta.get_config()["scales"]


def test_arguments_are_checked():
    model = conv_model()
    with pytest.raises(ValueError, match="scales"):
        MultiScaleFlipInference(model, scales=(1.0, 0.0))
    with pytest.raises(ValueError, match="scales"):
        MultiScaleFlipInference(model, scales=())
    with pytest.raises(ValueError, match="average"):
        MultiScaleFlipInference(model, average="votes")
    with pytest.raises(TypeError, match="model"):
        MultiScaleFlipInference("deeplabv3plus")
    assert DEEPLAB_SCALES == (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


@pytest.mark.parametrize(
    "layer_cls,kwargs,data,shape",
    [
        (ScaleImages, {"scale": 0.5}, images((2, 7, 9, 3)), (2, 4, 5, 3)),
        (HorizontalFlip, {}, images((2, 7, 9, 3)), (2, 7, 9, 3)),
    ],
)
def test_helper_layers(layer_cls, kwargs, data, shape):
    run_layer_test(layer_cls, kwargs, data, shape, run_training_check=False)


def test_average_views_layer():
    a, b = images((1, 3, 5, 4), 1), images((1, 3, 5, 4), 2)
    layer = AverageViews("logits")
    assert AverageViews.from_config(layer.get_config()).get_config() == layer.get_config()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer([a, b])), (a + b) / 2, atol=1e-6)
    out = keras.ops.convert_to_numpy(AverageViews()([a, b]))
    np.testing.assert_allclose(np.exp(out), (numpy_softmax(a) + numpy_softmax(b)) / 2, atol=1e-6)
    flipped = keras.ops.convert_to_numpy(HorizontalFlip()(a))
    np.testing.assert_array_equal(flipped, a[:, :, ::-1])
