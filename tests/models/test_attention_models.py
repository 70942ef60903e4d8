"""Attention segmentation models: nonlocal_net, danet, ccnet, gcnet."""

import inspect

import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.layers.criss_cross_attention import CrissCrossAttention
from keras_sceneparse.layers.global_context import GlobalContextBlock
from keras_sceneparse.models.ccnet import CCNet
from keras_sceneparse.models.danet import DANet
from keras_sceneparse.models.gcnet import GCNet
from keras_sceneparse.models.nonlocal_net import NonLocalNet
from tests.counting import moving_statistics, resnet_v1c_parameters
from tests.harness import (
    assert_saved_model_roundtrip,
    run_model_test,
    unknown_size_dataset,
)

NAMES = ["nonlocal_net", "danet", "ccnet", "gcnet"]
CLASSES = {"nonlocal_net": NonLocalNet, "danet": DANet, "ccnet": CCNet, "gcnet": GCNet}
TINY_BACKBONE = {"backbone": "mobilenet_v2", "backbone_kwargs": {"alpha": 0.35}}
TINY = {**TINY_BACKBONE, "head_filters": 8, "aux_filters": 4}
# The harness compares single-tensor outputs: auxiliary outputs off there, tested below.
SINGLE_OUTPUT = {"aux": False}

# One entry per registered model: small widths, odd image sizes (not multiples of the stride).
HARNESS_CASES = [
    ("nonlocal_net", {**TINY, **SINGLE_OUTPUT, "sub_sample": True, "backbone": "resnet18", "backbone_kwargs": {"base_filters": 8}}, (35, 45, 3), 3, None),
    ("danet", {**TINY, **SINGLE_OUTPUT, "branch_supervision": False, "backbone": "resnet18", "backbone_kwargs": {"base_filters": 8}}, (33, 41, 3), 4, 255),
    ("ccnet", {**TINY, **SINGLE_OUTPUT, "backbone": "resnet18", "backbone_kwargs": {"base_filters": 8}}, (37, 43, 3), 5, None),
    ("gcnet", {**TINY, **SINGLE_OUTPUT, "output_stride": 16, "backbone": "resnet18", "backbone_kwargs": {"base_filters": 8}}, (35, 45, 3), 2, None),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)


@pytest.fixture(scope="module")
def default_heads():
    """Each model with the papers' head widths (512) on a narrow MobileNetV2, 19 classes."""
    return {name: ksp.models.get(name, num_classes=19, **TINY_BACKBONE) for name in NAMES}


# --- auxiliary outputs -----------------------------------------------------------------------

rng = np.random.default_rng(0)
IMAGES = rng.uniform(0, 255, (2, 29, 39, 3)).astype("float32")
LABELS = rng.integers(0, 3, (2, 29, 39)).astype("int32")
AUXILIARY_WEIGHTS = {
    "nonlocal_net": {"aux": 0.4},
    "danet": {"position": 1.0, "channel": 1.0, "aux": 0.4},
    "ccnet": {"aux": 0.4},
    "gcnet": {"aux": 0.4},
}


@pytest.mark.parametrize("name", NAMES)
def test_auxiliary_outputs_by_default(name, default_heads):
    model = default_heads[name]
    assert model.auxiliary_loss_weights == AUXILIARY_WEIGHTS[name]
    assert sorted(model.output) == sorted(["logits", *AUXILIARY_WEIGHTS[name]])
    outputs = model(IMAGES, training=True)
    assert all(tuple(o.shape) == (2, 29, 39, 19) for o in outputs.values())


@pytest.mark.slow  # the suite's time budget; runs with -m slow
# NL, CCNet and GCNet share their auxiliary head code: GCNet stands for the three.
@pytest.mark.parametrize("name", ["danet", "gcnet"])
def test_auxiliary_outputs_train_and_are_dropped_by_predict(name):
    model = ksp.models.get(name, num_classes=3, **TINY)
    assert model.auxiliary_loss_weights == AUXILIARY_WEIGHTS[name]
    outputs = model(IMAGES, training=True)
    assert sorted(outputs) == sorted(["logits", *AUXILIARY_WEIGHTS[name]])
    assert all(tuple(o.shape) == (2, 29, 39, 3) for o in outputs.values())
    assert model.predict(IMAGES, verbose=0).shape == (2, 29, 39, 3)

    # The compiled loss is the main loss plus the weighted auxiliary ones (all at input size).
    loss = ksp.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    outputs = model(IMAGES, training=False)
    expected = float(loss(LABELS, outputs["logits"])) + sum(
        weight * float(loss(LABELS, outputs[key])) for key, weight in AUXILIARY_WEIGHTS[name].items()
    )
    assert model.evaluate(IMAGES, LABELS, verbose=0) == pytest.approx(expected, rel=1e-5)

    auxiliary_classifier = model.get_layer("aux_classifier").kernel
    before = auxiliary_classifier.numpy().copy()
    history = model.fit(unknown_size_dataset(IMAGES, LABELS), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.allclose(before, auxiliary_classifier.numpy())  # trained through its loss
    assert_saved_model_roundtrip(model, IMAGES, atol=1e-5)


# --- structure -------------------------------------------------------------------------------


def conv_bn(kernel, c_in, c_out):
    """Convolution without bias + batch norm (gamma, beta and the two moving statistics)."""
    return kernel * kernel * c_in * c_out + 4 * c_out


def conv(c_in, c_out):
    """1x1 convolution with bias."""
    return c_in * c_out + c_out


def mmseg_head_parameters(name, c5, c4, classes, filters=512):
    """mmsegmentation's decode head + FCN auxiliary head (``*_r50-d8`` configs), layer by layer."""
    classifier = conv(filters, classes)
    auxiliary = conv_bn(3, c4, 256) + conv(256, classes)
    if name == "danet":
        branches = 2 * (conv_bn(3, c5, filters) + conv_bn(3, filters, filters))
        position = 2 * conv(filters, filters // 8) + conv(filters, filters) + 1  # query, key, value, alpha
        channel = 1  # beta
        return branches + position + channel + 3 * classifier + auxiliary
    attention = {
        # theta, phi, g; W_z without bias (BN follows) and its BN.
        "nonlocal_net": 3 * conv(filters, filters // 2) + (filters // 2) * filters + 4 * filters,
        "ccnet": 2 * conv(filters, filters // 8) + conv(filters, filters) + 1,  # query, key, value, gamma
        # W_k to one channel, W_v1, LayerNorm (gamma, beta), W_v2; ratio 1/4.
        "gcnet": conv(filters, 1) + conv(filters, filters // 4) + 2 * (filters // 4) + conv(filters // 4, filters),
    }[name]
    fcn_head = conv_bn(3, c5, filters) + conv_bn(3, filters, filters) + conv_bn(3, c5 + filters, filters)
    return fcn_head + attention + classifier + auxiliary


@pytest.mark.parametrize("name", NAMES)
def test_head_parameters_equal_mmsegmentation_layer_shapes(name, default_heads):
    model = default_heads[name]
    backbone = model.get_layer("mobilenet_v2_backbone")
    channels = backbone.pyramid_channels
    head = model.count_params() - backbone.count_params()
    assert head == mmseg_head_parameters(name, channels["C5"], channels["C4"], 19)


@pytest.mark.parametrize("name", NAMES)
def test_dilated_backbone_at_output_stride_8(name, default_heads):
    model = default_heads[name]
    images = np.zeros((1, 61, 75, 3), "float32")
    features, logits = model.feature_model()(images)
    backbone = model.get_layer("mobilenet_v2_backbone")
    pyramid = {key: tuple(value.shape[1:3]) for key, value in backbone(images).items()}
    assert backbone.output_stride == 8
    # C4 and C5 stay at the stride-8 resolution of C3 (about 61 / 8 x 75 / 8), and so does the head.
    assert pyramid["C5"] == pyramid["C4"] == pyramid["C3"] == tuple(features.shape[1:3])
    assert abs(pyramid["C5"][0] - 61 / 8) < 1 and abs(pyramid["C5"][1] - 75 / 8) < 1
    assert tuple(logits.shape) == (1, 61, 75, 19)
    assert model.get_layer("head_dropout").rate == 0.1
    assert isinstance(model.get_layer("head_dropout"), keras.layers.SpatialDropout2D)  # nn.Dropout2d
    assert model.get_layer("aux_conv").filters == 256


@pytest.mark.parametrize("name", ["nonlocal_net", "ccnet", "gcnet"])
def test_head_concatenates_c5_before_the_fusion(name, default_heads):
    model = default_heads[name]
    c5 = model.get_layer("mobilenet_v2_backbone").pyramid_channels["C5"]
    assert model.get_layer("head_reduction").filters == 512
    assert model.get_layer("head_concat").output.shape[-1] == c5 + 512
    assert model.get_layer("head_fusion").filters == 512
    assert model.feature_layer == "head_fusion"


def test_attention_modules_follow_their_papers(default_heads):
    non_local = default_heads["nonlocal_net"].get_layer("non_local")
    assert non_local.inter_channels == 256 and non_local.use_scale and not non_local.sub_sample
    criss_cross = default_heads["ccnet"].get_layer("criss_cross_attention")
    assert criss_cross.recurrence == 2 and criss_cross.key_channels == 64
    # R = 2 loops with one set of weights: a single criss-cross layer in the model.
    layers = [layer for layer in default_heads["ccnet"].layers if isinstance(layer, CrissCrossAttention)]
    assert layers == [criss_cross] and len(criss_cross.weights) == 7
    global_context = default_heads["gcnet"].get_layer("global_context")
    assert isinstance(global_context, GlobalContextBlock) and global_context.hidden_channels == 128
    danet = default_heads["danet"]
    assert danet.get_layer("position_attention").key_channels == 64
    assert danet.get_layer("channel_attention").subtract_from_max
    assert danet.get_layer("position_reduction").filters == danet.get_layer("channel_reduction").filters == 512
    assert sorted(danet.output) == ["aux", "channel", "logits", "position"]


def test_configs_name_every_constructor_argument(default_heads):
    # Complete configs: `.keras` files rebuild the same model (the harness reloads them).
    for name, model in default_heads.items():
        config = model.get_config()
        arguments = set(inspect.signature(CLASSES[name].__init__).parameters) - {"self", "kwargs"}
        assert arguments <= set(config), sorted(arguments - set(config))
        assert config["weights"] is None and config["backbone_kwargs"] == {"alpha": 0.35}


def test_zero_auxiliary_weight_builds_no_auxiliary_head():
    model = GCNet(3, auxiliary_loss_weight=0.0, **TINY)
    assert not model.has_auxiliary_outputs and "aux_conv" not in [layer.name for layer in model.layers]


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="output_stride"):
        NonLocalNet(3, output_stride=32, **TINY)
    with pytest.raises(ValueError, match="head_filters"):
        CCNet(3, **{**TINY, "head_filters": 0})
    with pytest.raises(ValueError, match="recurrence"):
        CCNet(3, recurrence=0, **TINY)
    with pytest.raises(ValueError, match="bottleneck_ratio"):
        GCNet(3, bottleneck_ratio=0, **TINY)
    with pytest.raises(ValueError, match="branch_loss_weight"):
        DANet(3, branch_loss_weight=-1.0, **TINY)
    with pytest.raises(ValueError, match="backbone"):
        DANet(3, backbone="resnet7")


# --- parameter counts of the papers' configurations (built, never run; ~20-40 s each) ---------


PARAMETER_COUNTS = [
    ("nonlocal_net", "resnet101", 69_159_334),
    ("nonlocal_net", "resnet50", 50_088_870),
    ("danet", "resnet101", 68_982_094),
    ("danet", "resnet50", 49_911_630),
    ("ccnet", "resnet101", 68_960_551),
    ("ccnet", "resnet50", 49_890_087),
    ("gcnet", "resnet101", 68_764_711),
    ("gcnet", "resnet50", 49_694_247),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,backbone,expected", PARAMETER_COUNTS)
def test_parameter_counts(name, backbone, expected):
    model = ksp.models.get(name, num_classes=19, backbone=backbone)
    assert model.count_params() == expected
    head = model.count_params() - model.get_layer(f"{backbone}_backbone").count_params()
    assert head == mmseg_head_parameters(name, 2048, 1024, 19)
    # Against mmsegmentation's model counted the same way (trainable only): Keras' ResNets
    # have a 7x7 stem and convolution biases, 0.015% (ResNet-50) to 0.05% (ResNet-101) more.
    trainable = model.count_params() - moving_statistics(model)
    head_moving_statistics = moving_statistics(model) - moving_statistics(model.get_layer(f"{backbone}_backbone"))
    mmseg = resnet_v1c_parameters(int(backbone[6:])) + head - head_moving_statistics
    assert 0 < (trainable - mmseg) / mmseg < 0.0006
