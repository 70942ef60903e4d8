"""EncNet (Zhang et al., CVPR 2018) and the semantic encoding loss as a declared auxiliary loss."""

import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.layers.context_encoding import ContextEncoding
from keras_sceneparse.losses.class_presence import ClassPresenceLoss, class_presence
from keras_sceneparse.models.encnet import EncNet
from tests.harness import run_model_test

NARROW_RESNET = {"backbone": "resnet18", "backbone_kwargs": {"base_filters": 8}}
TINY = {**NARROW_RESNET, "head_filters": 8, "num_codewords": 4, "aux_filters": 4}

# Odd sizes, not multiples of the stride; the first case with both auxiliary losses (default).
HARNESS_CASES = [
    ("encnet", {**TINY, "ignore_class": 255}, (35, 45, 3), 5, 255),
    pytest.param("encnet", {**TINY, "aux": False, "se_loss_weight": 0, "output_stride": 16}, (33, 29, 3), 2, None, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class, expect_changed="heads")


rng = np.random.default_rng(0)
IMAGES = rng.uniform(0, 255, (2, 37, 43, 3)).astype("float32")
LABELS = rng.integers(0, 3, (2, 37, 43)).astype("int32")
LABELS[0][LABELS[0] == 1] = 0  # class 1 absent from the first image: the presence targets differ
LABELS[1, :5] = 255  # void pixels


def numpy_bce(logits, targets):
    probabilities = 1 / (1 + np.exp(-logits))
    return -(targets * np.log(probabilities) + (1 - targets) * np.log(1 - probabilities))


def test_total_loss_by_hand():
    # loss = CE(main) + 0.2 CE(aux) + 0.2 BCE(sigmoid(se), presence), each averaged over images.
    model = EncNet(num_classes=4, ignore_class=255, **TINY)
    assert model.auxiliary_loss_weights == {"se": 0.2, "aux": 0.2}
    assert isinstance(model.auxiliary_losses["se"], ClassPresenceLoss)
    loss = ksp.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255)
    model.compile("sgd", loss=loss)
    outputs = {key: keras.ops.convert_to_numpy(value) for key, value in model(IMAGES, training=False).items()}
    assert outputs["se"].shape == (2, 4)

    def cross_entropy(logits):
        values = []
        for image_logits, labels in zip(logits, LABELS):
            valid = labels != 255
            shifted = image_logits - image_logits.max(-1, keepdims=True)
            log_probabilities = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
            values.append(-np.take_along_axis(log_probabilities, np.where(valid, labels, 0)[..., None], -1)[..., 0][
                valid].mean())
        return np.mean(values)

    presence = np.array([[1, 0, 1, 0], [1, 1, 1, 0]], "float64")  # class 3 is never used, 255 is void
    se = numpy_bce(outputs["se"].astype("float64"), presence).mean()
    expected = cross_entropy(outputs["logits"]) + 0.2 * cross_entropy(outputs["aux"]) + 0.2 * se
    assert model.evaluate(IMAGES, LABELS, verbose=0) == pytest.approx(expected, rel=1e-5)
    assert se > 0.01  # the SE term matters to the check

    # Distributed loops read the per-example values; their mean is the same total.
    per_example = keras.ops.convert_to_numpy(model.per_example_loss(IMAGES, LABELS, model(IMAGES, training=False)))
    assert per_example.shape == (2,) and per_example.mean() == pytest.approx(expected, rel=1e-5)
    assert model.predict(IMAGES, verbose=0).shape == (2, 37, 43, 4)


def test_presence_vector_from_the_label_map():
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(class_presence(LABELS, 4, ignore_class=255)), [[1, 0, 1, 0], [1, 1, 1, 0]]
    )


def test_class_presence_loss_by_hand():
    loss = ClassPresenceLoss(4, ignore_class=255)
    logits = np.array([[2.0, -1.0, 0.5, -3.0], [0.0, 1.0, -2.0, 4.0]], "float32")
    presence = np.array([[1, 0, 1, 0], [1, 1, 1, 0]])
    assert float(loss(LABELS, logits)) == pytest.approx(numpy_bce(logits, presence).mean(), rel=1e-5)
    probabilities = ClassPresenceLoss(4, ignore_class=255, from_logits=False)(LABELS, 1 / (1 + np.exp(-logits)))
    assert float(probabilities) == pytest.approx(numpy_bce(logits, presence).mean(), rel=1e-4)
    assert ClassPresenceLoss.from_config(loss.get_config()).get_config() == loss.get_config()
    with pytest.raises(ValueError, match="class-presence"):
        loss(LABELS, np.zeros((2, 3), "float32"))


def test_structure_follows_the_reference_code():
    model = EncNet(num_classes=21, **NARROW_RESNET)
    backbone = model.get_layer("resnet18_backbone")
    assert backbone.output_stride == 8
    head = model.get_layer("head_conv")
    assert (head.filters, head.kernel_size) == (512, 3)
    encoding = model.get_layer("context_encoding")
    assert isinstance(encoding, ContextEncoding) and encoding.num_codewords == 32
    assert encoding.encoding.codewords.shape == (32, 512)
    assert model.get_layer("se_classifier").kernel.shape == (512, 21)
    assert model.get_layer("aux_conv").filters == 256
    assert model.get_layer("head_dropout").rate == model.get_layer("aux_dropout").rate == 0.1
    for layer, level in (("aux_conv", "C4"), ("head_conv", "C5")):
        history = model.get_layer(layer).input._keras_history
        assert history.operation is backbone and history.tensor_index == sorted(backbone.output).index(level)


def conv_bn(kernel, c_in, c_out):
    return kernel * kernel * c_in * c_out + 4 * c_out


def encoding_head_parameters(c_in, classes, filters=512, codewords=32):
    """EncHead: 3x3 conv-BN-ReLU, EncModule (1x1 conv-BN-ReLU, codewords and smoothing
    factors, BatchNorm1d over codewords, FC), classifier and the SE layer."""
    module = conv_bn(1, filters, filters) + codewords * filters + codewords + 4 * codewords + filters * filters + filters
    return conv_bn(3, c_in, filters) + module + (filters * classes + classes) + (filters * classes + classes)


def test_head_parameters_from_the_formula():
    model = EncNet(num_classes=21, **NARROW_RESNET)
    channels = model.get_layer("resnet18_backbone").pyramid_channels
    head = model.count_params() - model.get_layer("resnet18_backbone").count_params()
    auxiliary = conv_bn(3, channels["C4"], 256) + 256 * 21 + 21
    assert head == encoding_head_parameters(channels["C5"], 21) + auxiliary


@pytest.mark.slow
@pytest.mark.parametrize("num_classes,total", [(21, 55_028_063), (59, 55_076_817), (150, 55_193_570)])
def test_resnet101_parameter_count(num_classes, total):
    model = EncNet(num_classes=num_classes)
    assert model.count_params() == total
    backbone = model.get_layer("resnet101_backbone").count_params()
    auxiliary = conv_bn(3, 1024, 256) + 256 * num_classes + num_classes
    assert total == backbone + encoding_head_parameters(2048, num_classes) + auxiliary


def test_auxiliary_losses_must_name_weighted_outputs():
    inputs = keras.Input((None, None, 3))
    outputs = {"logits": keras.layers.Conv2D(2, 1)(inputs), "se": keras.layers.GlobalAveragePooling2D()(inputs)}
    with pytest.raises(ValueError, match="auxiliary_losses"):
        ksp.models.SegmentationModel(inputs=inputs, outputs=outputs, auxiliary_loss_weights=None,
                                     auxiliary_losses={"se": ClassPresenceLoss(2)})


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="num_codewords"):
        EncNet(num_classes=3, **{**TINY, "num_codewords": 0})
    with pytest.raises(ValueError, match="se_loss_weight"):
        EncNet(num_classes=3, se_loss_weight=-0.1, **TINY)
