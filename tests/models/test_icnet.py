"""ICNet: harness entries, cascade label guidance, weight sharing, parameter counts."""

import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.layers.cascade_feature_fusion import CascadeFeatureFusion
from keras_sceneparse.models.icnet import AUXILIARY_OUTPUTS, ICNet
from tests.harness import (
    assert_saved_model_roundtrip,
    run_model_test,
    unknown_size_dataset,
)

TINY = {
    "backbone": "resnet18",
    "backbone_kwargs": {"base_filters": 8},
    "pyramid_filters": 8,
    "high_filters": (4, 4, 8),
    "fusion_filters": 8,
}

# The harness compares single-tensor outputs: the guidance classifiers off there, tested below.
HARNESS_CASES = [
    ("icnet", {**TINY, "auxiliary_heads": False}, (67, 45, 3), 3, None),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)


rng = np.random.default_rng(0)
IMAGES = rng.uniform(0, 255, (2, 61, 45, 3)).astype("float32")
LABELS = rng.integers(0, 3, (2, 61, 45)).astype("int32")


def nearest_labels(labels, height, width):
    """Labels downsampled by nearest neighbour with half-pixel centres (TF's "nearest")."""
    rows = np.floor((np.arange(height) + 0.5) * labels.shape[1] / height).astype(int)
    cols = np.floor((np.arange(width) + 0.5) * labels.shape[2] / width).astype(int)
    return labels[:, rows][:, :, cols]


def test_cascade_label_guidance_weights_and_resolutions():
    # Sec. 3.4: losses at 1/16 and 1/8 with lambda = 0.4, the main one with weight 1.
    model = ksp.models.get("icnet", num_classes=3, **TINY)
    assert model.auxiliary_loss_weights == {"cascade_stride16": 0.4, "cascade_stride8": 0.4}
    outputs = model(IMAGES, training=True)
    assert sorted(outputs) == sorted(["logits", *AUXILIARY_OUTPUTS])
    assert tuple(outputs["logits"].shape) == (2, 61, 45, 3)
    assert tuple(outputs["cascade_stride16"].shape) == (2, 4, 3, 3)  # ceil(61/16), ceil(45/16)
    assert tuple(outputs["cascade_stride8"].shape) == (2, 8, 6, 3)
    assert model.predict(IMAGES, verbose=0).shape == (2, 61, 45, 3)

    loss = ksp.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    outputs = model(IMAGES, training=False)
    expected = float(loss(LABELS, outputs["logits"]))
    for key in AUXILIARY_OUTPUTS:
        height, width = outputs[key].shape[1:3]
        expected += 0.4 * float(loss(nearest_labels(LABELS, height, width), outputs[key]))
    assert model.evaluate(IMAGES, LABELS, verbose=0) == pytest.approx(expected, rel=1e-5)

    guides = [model.get_layer(name).classifier.kernel for name in ("cascade_fusion_stride16", "cascade_fusion_stride8")]
    before = [g.numpy().copy() for g in guides]
    history = model.fit(unknown_size_dataset(IMAGES, LABELS), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(not np.allclose(b, g.numpy()) for b, g in zip(before, guides))
    assert_saved_model_roundtrip(model, IMAGES, atol=1e-5)


def test_medium_and_low_branches_share_the_first_layers():
    model = ICNet(num_classes=3, **TINY)
    shared = model.get_layer("shared_stages")
    deep = model.get_layer("deep_stages")
    shared_variables = {id(v) for v in shared.weights}
    deep_variables = {id(v) for v in deep.weights}
    # One set of weights per layer: the two sub-models partition the backbone.
    assert shared_variables.isdisjoint(deep_variables)
    assert shared.output.shape[-1] == 16 and shared.layers[-1].name == "conv3_block1_out"
    assert deep.layers[1].name.startswith("conv3_block2")
    # The low branch is dilated (output stride 8 of the backbone): stage 5 at rate 4.
    assert deep.get_layer("conv5_block1_2_conv").dilation_rate == (4, 4)
    assert sum(isinstance(l, CascadeFeatureFusion) for l in model.layers) == 2
    features = model.feature_model()(IMAGES)
    assert tuple(features[0].shape) == (2, 8, 6, 8)  # the fused 1/8 features


def test_shared_weights_stay_shared_after_saving(tmp_path):
    model = ICNet(num_classes=3, **TINY)
    path = tmp_path / "icnet.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    kernel = restored.get_layer("shared_stages").get_layer("conv1_conv").kernel
    count = sum(kernel is v for v in restored.weights)
    assert count == 1


def test_inference_network_has_no_guidance_classifiers():
    model = ICNet(num_classes=3, auxiliary_heads=False, **TINY)
    assert not model.has_auxiliary_outputs and not isinstance(model.output, dict)


@pytest.mark.slow  # the suite's time budget; runs with -m slow
def test_parameter_count_of_the_resnet50_model():
    # The paper gives none; ours for ResNet-50 and 19 classes (Cityscapes).
    assert ICNet(num_classes=19).count_params() == 24_669_977
    assert ICNet(num_classes=19, auxiliary_heads=False).count_params() == 24_662_643
