"""OCRNet (Yuan, Chen and Wang, ECCV 2020)."""

import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.layers.object_context import (
    ObjectContextualRepresentation,
    SpatialGather,
)
from keras_sceneparse.models.ocrnet import OCRNet
from tests.harness import run_model_test

NARROW_RESNET = {"backbone": "resnet18", "backbone_kwargs": {"base_filters": 8}}
TINY = {**NARROW_RESNET, "head_filters": 8, "key_channels": 4, "aux_filters": 4}

# Odd sizes, not multiples of the stride; the first case with the soft-region loss (default).
HARNESS_CASES = [
    ("ocrnet", TINY, (35, 45, 3), 5, 255),
    pytest.param("ocrnet", {**TINY, "auxiliary_loss_weight": 0, "output_stride": 16}, (33, 29, 3), 2, None, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class, expect_changed="heads")


rng = np.random.default_rng(0)
IMAGES = rng.uniform(0, 255, (2, 37, 43, 3)).astype("float32")
LABELS = rng.integers(0, 3, (2, 37, 43)).astype("int32")


def test_loss_is_main_plus_0_4_soft_regions():
    model = OCRNet(num_classes=3, **TINY)
    assert model.auxiliary_loss_weights == {"aux": 0.4}
    loss = ksp.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("sgd", loss=loss)
    outputs = model(IMAGES, training=False)
    main, aux = float(loss(LABELS, outputs["logits"])), float(loss(LABELS, outputs["aux"]))
    assert model.evaluate(IMAGES, LABELS, verbose=0) == pytest.approx(main + 0.4 * aux, rel=1e-5)
    assert model.predict(IMAGES, verbose=0).shape == (2, 37, 43, 3)


def test_structure_follows_section_3_3():
    model = OCRNet(num_classes=19, **NARROW_RESNET)
    backbone = model.get_layer("resnet18_backbone")
    assert backbone.output_stride == 8
    # Soft object regions from stage 3 (C4), pixel representations from stage 4 (C5).
    for layer, level in (("aux_conv", "C4"), ("head_conv", "C5")):
        history = model.get_layer(layer).input._keras_history
        assert history.operation is backbone and history.tensor_index == sorted(backbone.output).index(level)
    head = model.get_layer("head_conv")
    assert (head.filters, head.kernel_size) == (512, 3)
    gather = model.get_layer("spatial_gather")
    assert isinstance(gather, SpatialGather)
    # The regions are the auxiliary classifier's logits at the features' resolution: one per class.
    assert gather.input[1]._keras_history.operation is model.get_layer("aux_classifier")
    assert tuple(gather.output.shape[1:]) == (19, 512)
    ocr = model.get_layer("object_context")
    assert isinstance(ocr, ObjectContextualRepresentation)
    assert (ocr.key_channels, ocr.filters) == (256, 512)
    assert model.get_layer("classifier").kernel.shape == (1, 1, 512, 19)
    features, logits = model.feature_model()(IMAGES[:1])
    assert features.shape == (1, 5, 6, 512) and logits.shape == (1, 37, 43, 19)  # stride 8


def conv_bn(kernel, c_in, c_out):
    """Bias-free convolution + batch norm (gamma, beta and the two moving statistics)."""
    return kernel * kernel * c_in * c_out + 4 * c_out


def ocr_head_parameters(c5, filters=512, key_channels=256):
    """3x3 conv-BN-ReLU on C5, then the OCR module (Sec. 3.3), layer by layer."""
    query = conv_bn(1, filters, key_channels) + conv_bn(1, key_channels, key_channels)  # phi: two layers
    key = query  # psi
    value = conv_bn(1, filters, key_channels)  # delta
    context = conv_bn(1, key_channels, filters)  # rho
    augmentation = conv_bn(1, 2 * filters, filters)  # g
    return conv_bn(3, c5, filters) + query + key + value + context + augmentation


def test_head_parameters_from_the_formula():
    model = OCRNet(num_classes=19, **NARROW_RESNET)
    channels = model.get_layer("resnet18_backbone").pyramid_channels
    head = model.get_layer("head_conv").count_params() + model.get_layer("object_context").count_params()
    assert head == ocr_head_parameters(channels["C5"])
    auxiliary = conv_bn(3, channels["C4"], 512) + 512 * 19 + 19
    classifier = 512 * 19 + 19
    assert model.count_params() - model.get_layer("resnet18_backbone").count_params() == head + auxiliary + classifier
    # ResNet-101's C5 has 2048 channels: the paper configuration's head.
    assert ocr_head_parameters(2048) == 10_628_096


@pytest.mark.slow
@pytest.mark.parametrize("num_classes,total,trainable", [(19, 58_026_406, 57_914_406), (150, 58_160_812, None)])
def test_resnet101_parameter_count(num_classes, total, trainable):
    model = OCRNet(num_classes=num_classes)
    assert model.count_params() == total
    if trainable is not None:
        assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == trainable
    backbone = model.get_layer("resnet101_backbone")
    assert model.get_layer("head_conv").input.shape[-1] == 2048 and model.get_layer("aux_conv").input.shape[-1] == 1024
    assert backbone.get_layer("conv5_block3_2_conv").dilation_rate == (4, 4)


def test_auxiliary_weight_zero_keeps_the_regions_but_drops_the_output(tmp_path):
    model = OCRNet(num_classes=3, auxiliary_loss_weight=0, **TINY)
    assert not model.has_auxiliary_outputs and not isinstance(model.output, dict)
    assert "aux_classifier" in [layer.name for layer in model.layers]  # the OCR module reads it
    model.save(tmp_path / "ocrnet.keras")
    assert keras.models.load_model(tmp_path / "ocrnet.keras").get_config() == model.get_config()


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="key_channels"):
        OCRNet(num_classes=3, **{**TINY, "key_channels": 0})
    with pytest.raises(ValueError, match="output_stride"):
        OCRNet(num_classes=3, output_stride=32, **TINY)
    with pytest.raises(ValueError, match="auxiliary_loss_weight"):
        OCRNet(num_classes=3, auxiliary_loss_weight=-1, **TINY)
