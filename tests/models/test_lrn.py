import itertools

import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.layers.gated_refinement import GatedRefinementUnit
from keras_sceneparse.models.lrn import LRN
from tests.harness import (
    assert_saved_model_roundtrip,
    run_model_test,
    unknown_size_dataset,
)

TINY_LRN = {"backbone": "resnet18", "backbone_kwargs": {"base_filters": 8}}

# Odd sizes, not multiples of the stride 32; the first case has the stage-wise supervision.
HARNESS_CASES = [
    ("lrn", TINY_LRN, (35, 45, 3), 5, 255),
    pytest.param("lrn", {**TINY_LRN, "auxiliary_loss_weight": 0.0, "refinement_filters": 4}, (33, 29, 3), 2, None, marks=pytest.mark.slow),
]


def calibrate_batch_norm(model, images):
    """Moving statistics of every batch norm set to those of ``images`` (a random network
    in inference mode otherwise maps every image to ~0, making comparisons vacuous)."""
    layers = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    model(images, training=True)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum


def run_coarse_to_fine_model_test(name, init_kwargs, input_shape, num_classes, ignore_class=None, batch_size=2):
    """:func:`run_model_test` for coarse-to-fine models returning ``{"logits", "stage1", ...}``.

    The main logits are at the input size; the stages coarse to fine, each smaller than the
    next; ``predict`` gives the main logits; saving, and one fit step with every stage's loss.
    """
    model = ksp.models.get(name, num_classes=num_classes, **init_kwargs)
    assert isinstance(model, ksp.models.SegmentationModel) and model.has_auxiliary_outputs
    height, width, channels = input_shape
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(batch_size, height, width, channels)).astype("float32")
    labels = rng.integers(0, num_classes, size=(batch_size, height, width)).astype("int32")

    stages = sorted(model.auxiliary_loss_weights)
    symbolic = model(keras.Input(shape=(None, None, channels)))
    assert set(symbolic) == {"logits", *stages}
    outputs = model(images, training=False)
    assert tuple(outputs["logits"].shape) == (batch_size, height, width, num_classes)
    sizes = [tuple(outputs[stage].shape[1:3]) for stage in stages] + [(height, width)]
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in itertools.pairwise(sizes)), sizes
    for output in outputs.values():
        assert output.shape[-1] == num_classes and keras.backend.standardize_dtype(output.dtype) == "float32"
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(output)))

    logits = keras.ops.convert_to_numpy(outputs["logits"])
    np.testing.assert_allclose(model.predict(unknown_size_dataset(images), verbose=0), logits, atol=1e-4)
    assert model.get_config().get("weights") is None
    restored = assert_saved_model_roundtrip(model, images, atol=1e-5)
    assert restored.auxiliary_loss_weights == model.auxiliary_loss_weights

    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=ksp.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=ignore_class),
        metrics=[ksp.metrics.MeanIoU(num_classes, ignore_class=ignore_class)],
    )
    before = {w.path: w.numpy().copy() for w in model.trainable_weights}
    history = model.fit(unknown_size_dataset(images, labels), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert 0.0 <= history.history["mean_iou"][0] <= 1.0
    changed = {w.path for w in model.trainable_weights if not np.allclose(before[w.path], w.numpy())}
    assert any(path.startswith("coarse_classifier/") for path in changed), sorted(changed)[:5]
    return model


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    runner = run_coarse_to_fine_model_test if kwargs.get("auxiliary_loss_weight", 1.0) else run_model_test
    runner(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)


def test_every_stage_is_supervised_with_weight_one_and_predict_returns_the_finest():
    model = LRN(num_classes=3, **TINY_LRN)
    assert model.auxiliary_loss_weights == {f"stage{k}": 1.0 for k in range(1, 5)}
    loss = ksp.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("sgd", loss=loss)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, 27, 31, 3)).astype("float32")
    labels = rng.integers(0, 3, (2, 27, 31)).astype("int32")
    calibrate_batch_norm(model, images)
    outputs = model(images, training=False)
    expected = float(loss(labels, outputs["logits"]))
    for stage in model.auxiliary_loss_weights:
        # Labels resized to the stage by nearest neighbour (the base class's rule).
        resized = keras.ops.image.resize(labels[..., None].astype("float32"), outputs[stage].shape[1:3],
                                         interpolation="nearest")
        expected += float(loss(keras.ops.cast(resized[..., 0], "int32"), outputs[stage]))
    result = model.evaluate(images, labels, verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(expected, rel=1e-4)
    predicted = model.predict(images, verbose=0)
    assert isinstance(predicted, np.ndarray) and predicted.shape == (2, 27, 31, 3)


def test_vgg16_structure_follows_the_paper():
    model = LRN(num_classes=11, input_shape=(224, 224, 3))
    outputs = model.output
    # Six label maps: pool5 (1/32) then conv5_3, conv4_3, conv3_3, conv2_2, conv1_2 (Fig. 2).
    assert [tuple(outputs[f"stage{k}"].shape[1:3]) for k in range(1, 6)] == [(7, 7), (14, 14), (28, 28), (56, 56),
                                                                             (112, 112)]
    assert tuple(outputs["logits"].shape[1:]) == (224, 224, 11)
    backbone = model.get_layer("vgg16_backbone")
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in backbone.layers) == 13
    for index, (layer, channels) in enumerate(zip(("conv5", "conv4", "conv3", "conv2", "conv1"),
                                                  (512, 512, 256, 128, 64)), start=1):
        unit = model.get_layer(f"refinement{index}")
        assert isinstance(unit, GatedRefinementUnit)
        assert unit.features_conv.sublayers[0].kernel.shape == (3, 3, channels, 11)
        assert unit.refine_conv.kernel.shape == (3, 3, 22, 11)
        assert backbone.output[layer].shape[-1] == channels
    assert model.get_layer("coarse_classifier").kernel.shape == (3, 3, 512, 11)


@pytest.mark.parametrize("num_classes,count", [(11, 14_922_280), (21, 15_129_900)])
def test_parameter_count(num_classes, count):
    model = LRN(num_classes=num_classes)
    assert model.get_layer("vgg16_backbone").count_params() == 14_714_688
    assert model.count_params() == count


def test_without_supervision_the_model_has_one_output():
    model = LRN(num_classes=3, auxiliary_loss_weight=0, **TINY_LRN)
    assert not model.has_auxiliary_outputs and not isinstance(model.output, dict)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="backbone"):
        LRN(num_classes=3, backbone="vgg7")
    with pytest.raises(ValueError, match="auxiliary_loss_weight"):
        LRN(num_classes=3, auxiliary_loss_weight=-1, **TINY_LRN)
    with pytest.raises(ValueError, match="refinement_filters"):
        LRN(num_classes=3, refinement_filters=0, **TINY_LRN)
    with pytest.raises(ValueError, match="num_classes"):
        LRN(num_classes=1, **TINY_LRN)
