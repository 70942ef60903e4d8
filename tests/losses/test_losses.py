import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_sceneparse import losses


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def make_batch(rng, num_classes=4, ignore_class=None, shape=(3, 5, 6)):
    labels = rng.integers(0, num_classes, size=shape)
    if ignore_class is not None:
        labels[rng.random(shape) < 0.25] = ignore_class
    logits = rng.normal(size=(*shape, num_classes)).astype("float32")
    return labels, logits


def reference_cross_entropy(labels, logits, ignore_class=None, class_weights=None, gamma=0.0):
    p = softmax(logits.astype("float64"))
    per_image = []
    for lab, prob in zip(labels, p):
        total = norm = 0.0
        for (i, j), c in np.ndenumerate(lab):
            if c == ignore_class:
                continue
            w = 1.0 if class_weights is None else class_weights[c]
            pt = prob[i, j, c]
            total += w * (1 - pt) ** gamma * -np.log(pt)
            norm += w if gamma == 0 else 1.0
        per_image.append(total / norm if norm else 0.0)
    return np.mean(per_image)


@pytest.mark.parametrize("ignore_class,class_weights", [(None, None), (255, None), (2, [1.0, 2.0, 0.5, 3.0])])
def test_cross_entropy_matches_reference(rng, ignore_class, class_weights):
    labels, logits = make_batch(rng, ignore_class=ignore_class)
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=ignore_class, class_weights=class_weights)
    assert float(loss(labels, logits)) == pytest.approx(reference_cross_entropy(labels, logits, ignore_class, class_weights), rel=1e-5)
    probabilities = losses.SparseCategoricalCrossentropy(ignore_class=ignore_class, class_weights=class_weights)
    assert float(probabilities(labels, softmax(logits))) == pytest.approx(float(loss(labels, logits)), rel=1e-4)


def test_cross_entropy_equals_keras_without_ignore(rng):
    labels, logits = make_batch(rng)
    ours = losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    theirs = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    assert float(ours) == pytest.approx(float(theirs), rel=1e-5)


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_focal_loss_matches_reference(rng, gamma):
    labels, logits = make_batch(rng, ignore_class=255)
    loss = losses.FocalLoss(gamma=gamma, from_logits=True, ignore_class=255)
    assert float(loss(labels, logits)) == pytest.approx(reference_cross_entropy(labels, logits, 255, gamma=gamma), rel=1e-5)


def test_dice_loss_matches_reference(rng):
    labels, logits = make_batch(rng, ignore_class=255)
    p = softmax(logits.astype("float64"))
    expected = []
    for lab, prob in zip(labels, p):
        valid = lab != 255
        per_class = []
        for c in range(4):
            g = (lab == c) & valid
            pc = prob[..., c] * valid
            per_class.append(1 - (2 * (pc * g).sum() + 1) / (pc.sum() + g.sum() + 1))
        expected.append(np.mean(per_class))
    loss = losses.DiceLoss(from_logits=True, ignore_class=255)
    assert float(loss(labels, logits)) == pytest.approx(np.mean(expected), rel=1e-5)


def reference_lovasz(labels, probabilities, ignore_class=None):
    """Algorithm 1 of Berman et al. 2018, with ignored pixels removed (as in their code)."""
    labels, probabilities = labels.ravel(), probabilities.reshape(-1, probabilities.shape[-1])
    if ignore_class is not None:
        keep = labels != ignore_class
        labels, probabilities = labels[keep], probabilities[keep]
    values = []
    for c in range(probabilities.shape[1]):
        fg = (labels == c).astype(float)
        if fg.sum() == 0:
            continue
        errors = np.abs(fg - probabilities[:, c])
        order = np.argsort(-errors, kind="stable")
        errors, fg_sorted = errors[order], fg[order]
        gts = fg_sorted.sum()
        intersection = gts - np.cumsum(fg_sorted)
        union = gts + np.cumsum(1 - fg_sorted)
        jaccard = 1 - intersection / union
        jaccard[1:] = jaccard[1:] - jaccard[:-1]
        values.append(np.dot(errors, jaccard))
    return np.mean(values) if values else 0.0


@pytest.mark.parametrize("per_image", [True, False])
def test_lovasz_softmax_matches_reference(rng, per_image):
    labels, logits = make_batch(rng, ignore_class=255)
    p = softmax(logits.astype("float64"))
    if per_image:
        expected = np.mean([reference_lovasz(l, q, 255) for l, q in zip(labels, p)])
    else:
        expected = reference_lovasz(labels, p, 255)
    loss = losses.LovaszSoftmaxLoss(from_logits=True, ignore_class=255, per_image=per_image)
    assert float(loss(labels, logits)) == pytest.approx(expected, rel=1e-4)


def test_lovasz_is_zero_for_a_perfect_prediction(rng):
    labels = rng.integers(0, 3, size=(2, 4, 4))
    one_hot = np.eye(3)[labels]
    assert float(losses.LovaszSoftmaxLoss()(labels, one_hot)) == pytest.approx(0.0, abs=1e-6)


ALL_LOSSES = [
    losses.SparseCategoricalCrossentropy,
    losses.FocalLoss,
    losses.DiceLoss,
    losses.LovaszSoftmaxLoss,
]


@pytest.mark.parametrize("cls", ALL_LOSSES)
def test_losses_reject_bad_input(cls):
    loss = cls(from_logits=True, ignore_class=255)
    with pytest.raises(ValueError, match="outside"):
        loss(np.array([[[0, 7]]]), np.zeros((1, 1, 2, 3), "float32"))
    with pytest.raises(ValueError, match="does not match"):
        loss(np.zeros((1, 2, 3)), np.zeros((1, 2, 2, 3), "float32"))
    with pytest.raises(ValueError, match="at least 2"):
        loss(np.zeros((1, 2, 2)), np.zeros((1, 2, 2, 1), "float32"))


@pytest.mark.parametrize("cls", ALL_LOSSES)
def test_losses_train_a_model_and_round_trip(cls, tmp_path, rng):
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same")(inputs))
    loss = cls(from_logits=True, ignore_class=255)
    model.compile(keras.optimizers.Adam(0.05), loss=loss)
    images = rng.uniform(size=(4, 8, 8, 3)).astype("float32")
    labels = (images.argmax(-1)).astype("int32")
    labels[:, 0] = 255
    history = model.fit(images, labels, epochs=15, verbose=0).history["loss"]
    assert history[-1] < history[0]
    assert cls.from_config(loss.get_config()).get_config() == loss.get_config()
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras")
    assert type(restored.loss) is cls


def test_ignored_pixels_get_no_gradient(rng):
    labels, logits = make_batch(rng, ignore_class=255)
    logits = tf.Variable(logits)
    with tf.GradientTape() as tape:
        value = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255)(labels, logits)
    gradient = tape.gradient(value, logits).numpy()
    assert np.all(gradient[labels == 255] == 0) and np.any(gradient[labels != 255] != 0)


def test_class_weights_length_is_checked():
    with pytest.raises(ValueError, match="class_weights"):
        losses.SparseCategoricalCrossentropy(class_weights=[1.0, 2.0])(np.zeros((1, 2, 2)), np.ones((1, 2, 2, 3)) / 3)
    with pytest.raises(ValueError, match="non-negative"):
        losses.FocalLoss(class_weights=[-1.0, 1.0])
