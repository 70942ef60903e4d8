"""BiSeNet V2: harness entries, booster outputs, parameter counts and structure."""

import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.layers.bisenet_blocks import GatherExpansion
from keras_sceneparse.models.bisenet_v2 import BOOSTER_OUTPUTS, BiSeNetV2
from tests.harness import run_model_test, unknown_size_dataset

TINY = {
    "detail_filters": (4, 4, 8),
    "semantic_filters": (4, 4, 8, 8),
    "expansion": 2,
    "aggregation_filters": 8,
    "head_filters": 8,
    "booster_filters": 4,
}

# The harness compares single-tensor outputs: booster heads off there, tested below.
HARNESS_CASES = [
    ("bisenet_v2", {**TINY, "booster": False}, (37, 43, 3), 4, None),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)


rng = np.random.default_rng(0)
IMAGES = rng.uniform(0, 255, (2, 29, 39, 3)).astype("float32")
LABELS = rng.integers(0, 3, (2, 29, 39)).astype("int32")


@pytest.mark.slow  # the suite's time budget; runs with -m slow
def test_booster_outputs_train_with_weight_one_and_are_dropped_by_predict():
    # Sec. 4.4, Eq. 1: the main loss plus the four booster losses, alpha = 1.
    model = ksp.models.get("bisenet_v2", num_classes=3, **TINY)
    assert model.auxiliary_loss_weights == {key: 1.0 for key in BOOSTER_OUTPUTS}
    outputs = model(IMAGES, training=True)
    assert sorted(outputs) == sorted(["logits", *BOOSTER_OUTPUTS])
    assert all(tuple(o.shape) == (2, 29, 39, 3) for o in outputs.values())
    assert model.predict(IMAGES, verbose=0).shape == (2, 29, 39, 3)

    loss = ksp.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    outputs = model(IMAGES, training=False)
    expected = sum(float(loss(LABELS, outputs[key])) for key in ["logits", *BOOSTER_OUTPUTS])
    assert model.evaluate(IMAGES, LABELS, verbose=0) == pytest.approx(expected, rel=1e-5)

    classifiers = [model.get_layer(f"{key}_classifier").kernel for key in BOOSTER_OUTPUTS]
    before = [c.numpy().copy() for c in classifiers]
    history = model.fit(unknown_size_dataset(IMAGES, LABELS), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert all(not np.allclose(b, c.numpy()) for b, c in zip(before, classifiers))
    # Saving with the booster outputs is left to BiSeNet's and ICNet's tests (same base class
    # machinery), to keep this test's time down.


def test_branches_follow_table_1():
    model = BiSeNetV2(num_classes=19, booster=False, input_shape=(64, 96, 3))
    # Detail branch: S1-S3 with 2, 3, 3 convolutions of 64, 64, 128 channels, 1/8.
    detail = [l for l in model.layers if l.name.startswith("detail_")]
    assert [l.filters for l in detail] == [64, 64, 64, 64, 64, 128, 128, 128]
    assert [l.strides for l in detail] == [2, 1, 2, 1, 1, 2, 1, 1]
    assert tuple(detail[-1].output.shape) == (None, 8, 12, 128)
    # Semantic branch: GE layers (stride, channels) of S3, S4, S5 and the 1/32 context embedding.
    ge = [(l.strides, l.filters) for l in model.layers if isinstance(l, GatherExpansion)]
    assert ge == [(2, 32), (1, 32), (2, 64), (1, 64), (2, 128), (1, 128), (1, 128), (1, 128)]
    assert tuple(model.get_layer("semantic_context_embedding").output.shape) == (None, 2, 3, 128)
    assert model.get_layer("head_conv").filters == 1024


def test_parameter_count():
    # Counted from Table 1: the detail branch's eight 3x3 conv-BN layers (4 numbers per
    # channel for batch normalisation, bias-free convolutions).
    model = BiSeNetV2(num_classes=19, booster=False)
    widths = [(3, 64), (64, 64), (64, 64), (64, 64), (64, 64), (64, 128), (128, 128), (128, 128)]
    detail = sum(9 * c_in * c_out + 4 * c_out for c_in, c_out in widths)
    assert sum(l.count_params() for l in model.layers if l.name.startswith("detail_")) == detail == 520_640
    # Ours in total (19 classes): the paper reports no parameter count.
    assert model.count_params() == 3_375_955
    assert BiSeNetV2(num_classes=19).count_params() == 3_664_287
