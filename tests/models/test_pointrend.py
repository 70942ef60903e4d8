import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.backend import resize_images
from keras_sceneparse.layers.point_sampling import (
    PointHead,
    point_sample,
    sample_labels,
)
from keras_sceneparse.models.pointrend import PointRend, PointRendRefinement
from tests.harness import assert_saved_model_roundtrip, unknown_size_dataset

TINY_POINTREND = {
    "backbone": "resnet18",
    "backbone_kwargs": {"base_filters": 8},
    "aspp_filters": 8,
    "point_filters": 8,
    "train_num_points": 32,
    "subdivision_num_points": 64,
}

# Odd sizes, not multiples of the output stride. One case: PointRend traces a training and a
# subdivision graph, each heavier than a plain model's.
# Its own runner (below) fits in a compiled graph already: tests/models/test_graph_fit.py skips it.
HARNESS_FITS_IN_A_GRAPH = True
HARNESS_CASES = [
    ("pointrend", {**TINY_POINTREND, "output_stride": 8, "point_layers": 2}, (35, 45, 3), 5, 255),
]


def run_pointrend_model_test(name, init_kwargs, input_shape, num_classes, ignore_class=None, batch_size=2):
    """:func:`run_model_test` for PointRend's ``{"logits", "points", "point_coords"}`` outputs."""
    model = ksp.models.get(name, num_classes=num_classes, **init_kwargs)
    assert isinstance(model, ksp.models.SegmentationModel) and model.has_auxiliary_outputs
    height, width, channels = input_shape
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(batch_size, height, width, channels)).astype("float32")
    labels = rng.integers(0, num_classes, size=(batch_size, height, width)).astype("int32")

    symbolic = model(keras.Input(shape=(None, None, channels)))
    assert set(symbolic) == {"logits", "points", "point_coords"} and symbolic["logits"].shape[-1] == num_classes
    for training, num_points in ((False, init_kwargs["subdivision_num_points"]),
                                 (True, init_kwargs["train_num_points"])):
        outputs = model(images, training=training)
        assert tuple(outputs["logits"].shape) == (batch_size, height, width, num_classes)
        assert tuple(outputs["points"].shape) == (batch_size, num_points, num_classes)
        assert tuple(outputs["point_coords"].shape) == (batch_size, num_points, 2)
        for output in outputs.values():
            assert keras.backend.standardize_dtype(output.dtype) == "float32"
            assert np.all(np.isfinite(keras.ops.convert_to_numpy(output)))

    logits = keras.ops.convert_to_numpy(model(images, training=False)["logits"])
    np.testing.assert_allclose(model.predict(unknown_size_dataset(images), verbose=0), logits, atol=1e-4)
    assert model.get_config().get("weights") is None
    assert_saved_model_roundtrip(model, images, atol=1e-5)

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
    # The point loss reaches the point head, the coarse loss the coarse classifier.
    assert any(path.startswith("pointrend/point_head/") for path in changed), sorted(changed)[:5]
    assert any(path.startswith("classifier/") for path in changed), sorted(changed)[:5]
    return model


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_pointrend_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)


def test_loss_is_the_coarse_loss_plus_the_point_loss_at_the_same_points():
    model = PointRend(num_classes=3, **TINY_POINTREND)
    loss = ksp.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("sgd", loss=loss)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, 27, 31, 3)).astype("float32")
    labels = rng.integers(0, 3, (2, 27, 31)).astype("int32")
    outputs = model(images, training=False)  # deterministic: the subdivision's last points
    point_labels = keras.ops.convert_to_numpy(sample_labels(labels, outputs["point_coords"]))
    expected = float(loss(labels, outputs["logits"])) + float(
        loss(point_labels[..., None], outputs["points"][:, :, None, :])
    )
    result = model.evaluate(images, labels, verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(expected, rel=1e-4)
    per_example = keras.ops.convert_to_numpy(model.per_example_loss(images, labels, outputs))
    assert per_example.shape == (2,) and per_example.mean() == pytest.approx(expected, rel=1e-4)


def test_subdivision_with_enough_points_predicts_every_pixel_with_the_point_head():
    rng = np.random.default_rng(1)
    coarse = rng.normal(size=(1, 3, 4, 3)).astype("float32")
    fine = rng.normal(size=(1, 9, 12, 5)).astype("float32")
    images = np.zeros((1, 19, 23, 3), "float32")
    layer = PointRendRefinement(3, subdivision_steps=3, filters=6, subdivision_num_points=10_000)
    rendered = keras.ops.convert_to_numpy(layer(coarse, fine, images)["logits"])
    assert rendered.shape == (1, 19, 23, 3)
    rows, cols = np.meshgrid((np.arange(19) + 0.5) / 19, (np.arange(23) + 0.5) / 23, indexing="ij")
    points = np.stack([cols.ravel(), rows.ravel()], -1)[None].astype("float32")
    expected = layer.point_head(point_sample(fine, points), point_sample(coarse, points))
    np.testing.assert_allclose(rendered.reshape(1, -1, 3), keras.ops.convert_to_numpy(expected), atol=1e-5)


def test_subdivision_replaces_only_the_most_uncertain_pixels():
    rng = np.random.default_rng(2)
    coarse = rng.normal(size=(1, 5, 6, 4)).astype("float32")
    fine = rng.normal(size=(1, 10, 12, 5)).astype("float32")
    images = np.zeros((1, 10, 12, 3), "float32")
    layer = PointRendRefinement(4, subdivision_steps=1, filters=6, subdivision_num_points=7)
    outputs = layer(coarse, fine, images)
    upsampled = keras.ops.convert_to_numpy(resize_images(coarse, (10, 12)))
    rendered = keras.ops.convert_to_numpy(outputs["logits"])
    changed = np.argwhere(np.abs(rendered - upsampled).max(-1)[0] > 1e-6)
    assert len(changed) == 7
    top = np.sort(upsampled[0], -1)
    uncertainty = top[..., -2] - top[..., -1]
    assert uncertainty[tuple(changed.T)].min() >= np.sort(uncertainty.ravel())[-7] - 1e-6
    # The replaced pixels hold the point head's logits, at the points returned.
    coords = keras.ops.convert_to_numpy(outputs["point_coords"])[0]
    np.testing.assert_allclose(
        rendered[0][(coords[:, 1] * 10).astype(int), (coords[:, 0] * 12).astype(int)],
        keras.ops.convert_to_numpy(outputs["points"])[0], atol=1e-6,
    )


def test_structure_follows_the_paper():
    model = PointRend(num_classes=19, backbone="resnet18", backbone_kwargs={"base_filters": 8})
    refinement = model.get_layer("pointrend")
    assert isinstance(refinement.point_head, PointHead)
    assert (refinement.filters, refinement.num_layers) == (256, 3)
    assert (refinement.oversample_ratio, refinement.importance_ratio) == (3.0, 0.75)
    assert (refinement.train_num_points, refinement.subdivision_num_points) == (2048, 8192)
    assert refinement.subdivision_steps == 4  # stride 16 to 1
    assert model.auxiliary_loss_weights == {"points": 1.0}
    # Fine features: the backbone's stride-4 C2; coarse logits at stride 16.
    backbone = model.get_layer("resnet18_backbone")
    coarse, fine, _ = refinement._inbound_nodes[0].arguments.args
    assert fine._keras_history.operation is backbone
    assert fine._keras_history.tensor_index == sorted(backbone.output).index("C2")
    assert coarse._keras_history.operation is model.get_layer("classifier")


@pytest.mark.slow  # the suite's time budget; runs with -m slow
def test_parameter_count():
    model = PointRend(num_classes=19)
    assert model.get_layer("pointrend").count_params() == 3 * ((256 + 19) * 256 + 256) + (256 + 19) * 19 + 19
    assert model.get_layer("pointrend").count_params() == 217_212
    assert model.count_params() == 58_418_447


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="output_stride"):
        PointRend(num_classes=3, output_stride=32, **TINY_POINTREND)
    with pytest.raises(ValueError, match="importance_ratio"):
        PointRend(num_classes=3, **{**TINY_POINTREND, "importance_ratio": 1.5})
    with pytest.raises(ValueError, match="train_num_points"):
        PointRend(num_classes=3, **{**TINY_POINTREND, "train_num_points": 0})
    with pytest.raises(ValueError, match="point_loss_weight"):
        PointRend(num_classes=3, point_loss_weight=-1, **TINY_POINTREND)
