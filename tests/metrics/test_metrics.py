import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_sceneparse as ksp
from keras_sceneparse import metrics


def reference_scores(y_true, y_pred, num_classes, ignore_class=None):
    """The survey's definitions, written out with NumPy loops (independent of the library)."""
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    keep = np.ones_like(y_true, bool) if ignore_class is None else y_true != ignore_class
    t, p = y_true[keep], y_pred[keep]
    n = np.zeros((num_classes, num_classes))
    for a, b in zip(t, p):
        n[a, b] += 1
    ious, accs, weights = [], [], []
    for c in range(num_classes):
        if c == ignore_class:
            continue
        tp, t_c, p_c = n[c, c], n[c].sum(), n[:, c].sum()
        if t_c + p_c - tp > 0:
            ious.append(tp / (t_c + p_c - tp))
            if t_c > 0:
                weights.append((t_c, tp / (t_c + p_c - tp)))
        if t_c > 0:
            accs.append(tp / t_c)
    pa = np.trace(n) / n.sum()
    miou = np.mean(ious)
    return {
        "pixel_accuracy": pa,
        "mean_accuracy": np.mean(accs),
        "mean_iou": miou,
        "frequency_weighted_iou": sum(w * v for w, v in weights) / n.sum(),
        "f1": (pa + miou) / 2,
    }


@pytest.mark.parametrize("ignore_class", [None, 2, 255])
def test_segmentation_scores_match_reference(rng, ignore_class):
    num_classes = 5
    y_true = rng.integers(0, num_classes, size=(3, 9, 11))
    if ignore_class is not None:
        y_true[rng.random(y_true.shape) < 0.2] = ignore_class
    y_pred = rng.integers(0, num_classes, size=y_true.shape)
    y_true[y_true == 4] = 0  # class 4 never true: predicted-only, IoU 0, no accuracy
    scores = metrics.segmentation_scores(y_true, y_pred, num_classes, ignore_class)
    expected = reference_scores(y_true, y_pred, num_classes, ignore_class)
    for key, value in expected.items():
        assert scores[key] == pytest.approx(value, rel=1e-5), key
    assert scores["per_class_iou"][4] == 0.0 and np.isnan(scores["per_class_accuracy"][4])
    if ignore_class == 2:
        assert np.isnan(scores["per_class_iou"][2])


def test_class_absent_from_truth_and_prediction_is_left_out_of_means():
    y = np.array([[0, 0, 1, 1]])
    scores = metrics.segmentation_scores(y, y, num_classes=4)
    # Perfect on classes 0 and 1; classes 2 and 3 never appear: neither 1.0 nor 0.0, just absent.
    assert scores["mean_iou"] == 1.0 and scores["mean_accuracy"] == 1.0
    assert np.isnan(scores["per_class_iou"][2]) and np.isnan(scores["per_class_iou"][3])
    wrong = metrics.segmentation_scores(y, np.array([[0, 0, 0, 0]]), num_classes=4)
    assert wrong["mean_iou"] == pytest.approx((0.5 + 0.0) / 2)


def test_logits_and_label_maps_give_the_same_scores(rng):
    logits = rng.normal(size=(2, 6, 7, 3))
    y_true = rng.integers(0, 3, size=(2, 6, 7, 1))
    from_logits = metrics.segmentation_scores(y_true, logits, 3)
    from_labels = metrics.segmentation_scores(y_true[..., 0], logits.argmax(-1), 3)
    assert from_logits == from_labels


def test_out_of_range_labels_raise_eagerly():
    with pytest.raises(ValueError, match=r"label ids \[7\] outside \[0, 3\)"):
        metrics.segmentation_scores([[0, 7]], [[0, 1]], 3)
    with pytest.raises(ValueError, match="y_pred"):
        metrics.segmentation_scores([[0, 1]], [[0, 5]], 3)
    # The ignore id itself is fine, in range or not.
    metrics.segmentation_scores([[0, 255]], [[0, 1]], 3, ignore_class=255)


def test_out_of_range_labels_raise_inside_a_compiled_graph():
    metric = metrics.MeanIoU(3, ignore_class=255)

    @tf.function
    def update(y_true, y_pred):
        metric.update_state(y_true, y_pred)

    update(tf.constant([[0, 255]]), tf.constant([[0, 1]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside \\[0, 3\\)"):
        update(tf.constant([[0, 9]]), tf.constant([[0, 1]]))


def test_out_of_range_labels_raise_during_fit():
    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs))
    model.compile("sgd", loss=ksp.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=[metrics.MeanIoU(3)])
    labels = np.zeros((2, 4, 4), "int32")
    labels[0, 0, 0] = 3
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside"):
        model.fit(np.zeros((2, 4, 4, 1), "float32"), labels, verbose=0)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="channels"):
        metrics.segmentation_scores(np.zeros((1, 4, 4)), np.zeros((1, 4, 4, 5)), 3)
    with pytest.raises(ValueError, match="disagree on axis"):
        metrics.segmentation_scores(np.zeros((1, 4, 4)), np.zeros((1, 4, 5)), 3)
    with pytest.raises(ValueError, match="num_classes"):
        metrics.MeanIoU(1)


def test_streaming_equals_one_shot_and_resets(rng):
    y_true = rng.integers(0, 4, size=(6, 5, 5))
    y_pred = rng.integers(0, 4, size=(6, 5, 5))
    metric = metrics.MeanIoU(4)
    for start in range(0, 6, 2):
        metric.update_state(y_true[start : start + 2], y_pred[start : start + 2])
    assert float(metric.result()) == pytest.approx(metrics.segmentation_scores(y_true, y_pred, 4)["mean_iou"])
    # A mean of per-batch mIoUs is not the mIoU of the set.
    per_batch = np.mean([metrics.segmentation_scores(y_true[s : s + 2], y_pred[s : s + 2], 4)["mean_iou"] for s in (0, 2, 4)])
    assert float(metric.result()) != pytest.approx(per_batch, rel=1e-6)
    metric.reset_state()
    assert np.isnan(float(metric.result()))


def test_confusion_matrix_counts_exactly_beyond_float32_precision():
    # 2**24 + 1 pixels of one class: float32 counting would lose the last one.
    y = np.zeros((1, 4097, 4097), "int32")
    matrix = keras.ops.convert_to_numpy(metrics.confusion_matrix(y, y, 2))
    assert matrix[0, 0] == 4097 * 4097
    metric = metrics.PixelAccuracy(2)
    metric.update_state(y, y)
    assert int(keras.ops.convert_to_numpy(metric.confusion_matrix)[0, 0]) == 4097 * 4097


def test_sample_weight_acts_as_a_mask(rng):
    y_true = rng.integers(0, 3, size=(2, 4, 4))
    y_pred = rng.integers(0, 3, size=(2, 4, 4))
    metric = metrics.PixelAccuracy(3)
    metric.update_state(y_true, y_pred, sample_weight=np.array([1.0, 0.0]))
    assert float(metric.result()) == pytest.approx(metrics.segmentation_scores(y_true[:1], y_pred[:1], 3)["pixel_accuracy"])


@pytest.mark.parametrize(
    "cls,key",
    [
        (metrics.PixelAccuracy, "pixel_accuracy"),
        (metrics.MeanAccuracy, "mean_accuracy"),
        (metrics.MeanIoU, "mean_iou"),
        (metrics.FrequencyWeightedIoU, "frequency_weighted_iou"),
        (metrics.F1Score, "f1"),
    ],
)
def test_each_metric_class_reports_its_score(rng, cls, key):
    y_true = rng.integers(0, 4, size=(2, 5, 5))
    y_pred = rng.integers(0, 4, size=(2, 5, 5))
    metric = cls(4, ignore_class=3)
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == pytest.approx(metrics.segmentation_scores(y_true, y_pred, 4, 3)[key], rel=1e-6)
    clone = cls.from_config(metric.get_config())
    assert clone.get_config() == metric.get_config()
    assert keras.saving.get_registered_name(cls) == f"keras_sceneparse>{cls.__name__}"
    assert metric.confusion_matrix.aggregation == "sum"


def test_dict_metrics_land_in_fit_logs_and_survive_saving(tmp_path, rng):
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs))
    model.compile(
        "adam",
        loss=ksp.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=2),
        metrics=[metrics.SegmentationScores(3, ignore_class=2), metrics.PerClassIoU(3, 2, class_names=["sky", "road", "void"])],
    )
    images = rng.uniform(size=(4, 6, 6, 3)).astype("float32")
    labels = rng.integers(0, 3, size=(4, 6, 6))
    history = model.fit(images, labels, validation_data=(images, labels), epochs=1, verbose=0).history
    for key in ("pixel_accuracy", "mean_iou", "f1", "val_mean_iou", "iou_sky", "val_iou_road"):
        assert key in history, key
    assert "iou_void" not in history
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras")
    result = restored.evaluate(images, labels, verbose=0, return_dict=True)
    expected = metrics.segmentation_scores(labels, model.predict(images, verbose=0), 3, 2)
    assert result["mean_iou"] == pytest.approx(expected["mean_iou"], rel=1e-5)
