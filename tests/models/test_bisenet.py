"""BiSeNet (v1): harness entries, auxiliary outputs, parameter counts and structure."""

import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.layers.bisenet_blocks import (
    AttentionRefinementModule,
    FeatureFusionModule,
)
from keras_sceneparse.models.bisenet import AUXILIARY_OUTPUTS, BiSeNet
from tests.harness import (
    assert_saved_model_roundtrip,
    run_model_test,
    unknown_size_dataset,
)

TINY = {
    "backbone": "resnet18",
    "backbone_kwargs": {"base_filters": 8},
    "spatial_filters": (4, 4, 4, 8),
    "context_filters": 8,
    "fusion_filters": 8,
    "head_filters": 8,
    "auxiliary_filters": 4,
}

# The harness compares single-tensor outputs: auxiliary heads off there, tested below.
HARNESS_CASES = [
    ("bisenet", {**TINY, "auxiliary_heads": False}, (35, 45, 3), 3, 255),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)


rng = np.random.default_rng(0)
IMAGES = rng.uniform(0, 255, (2, 29, 39, 3)).astype("float32")
LABELS = rng.integers(0, 3, (2, 29, 39)).astype("int32")


def test_auxiliary_outputs_train_with_weight_one_and_are_dropped_by_predict():
    # Sec. 3.3, Eq. 2: principal loss + alpha * (two auxiliary losses), alpha = 1.
    model = ksp.models.get("bisenet", num_classes=3, **TINY)
    assert model.auxiliary_loss_weights == {"context_stride8": 1.0, "context_stride16": 1.0}
    outputs = model(IMAGES, training=True)
    assert sorted(outputs) == sorted(["logits", *AUXILIARY_OUTPUTS])
    assert all(tuple(o.shape) == (2, 29, 39, 3) for o in outputs.values())
    assert model.predict(IMAGES, verbose=0).shape == (2, 29, 39, 3)

    loss = ksp.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    outputs = model(IMAGES, training=False)
    expected = sum(float(loss(LABELS, outputs[key])) for key in ["logits", *AUXILIARY_OUTPUTS])
    assert model.evaluate(IMAGES, LABELS, verbose=0) == pytest.approx(expected, rel=1e-5)

    classifiers = [model.get_layer(f"{key}_classifier").kernel for key in AUXILIARY_OUTPUTS]
    before = [c.numpy().copy() for c in classifiers]
    history = model.fit(unknown_size_dataset(IMAGES, LABELS), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(not np.allclose(b, c.numpy()) for b, c in zip(before, classifiers))
    assert_saved_model_roundtrip(model, IMAGES, atol=1e-5)


def test_paths_follow_figure_2():
    model = BiSeNet(num_classes=3, **TINY)
    # Spatial path: three stride-2 convolutions (1/8), the first 7x7 as in the reference code.
    strides = [model.get_layer(f"spatial_conv{i}").strides for i in (1, 2, 3)]
    assert strides == [2, 2, 2] and model.get_layer("spatial_conv1").kernel_size == 7
    # Two attention refinement modules (stride 16 and 32) and one feature fusion module.
    assert sum(isinstance(l, AttentionRefinementModule) for l in model.layers) == 2
    assert sum(isinstance(l, FeatureFusionModule) for l in model.layers) == 1
    features = model.feature_model()(IMAGES)
    # The fused features are at 1/8 of the input (ceil of 29/8, 39/8).
    assert tuple(features[0].shape) == (2, 4, 5, 8)


def test_inference_network_has_no_auxiliary_heads():
    model = BiSeNet(num_classes=3, auxiliary_heads=False, **TINY)
    assert not model.has_auxiliary_outputs and not isinstance(model.output, dict)


def test_parameter_count_of_the_resnet18_model():
    # The paper gives no count; ours for ResNet-18 and 19 classes (Cityscapes).
    assert BiSeNet(num_classes=19).count_params() == 13_405_753
    model = BiSeNet(num_classes=19, auxiliary_heads=False)
    assert model.count_params() == 13_255_315
    backbone = model.get_layer("resnet18_backbone")
    assert sum(int(np.prod(w.shape)) for w in backbone.trainable_weights) == 11_176_512
