"""PSANet: harness, structure, arguments and the parameter count of the paper's configuration."""

import inspect

import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.layers.pointwise_spatial_attention import (
    PointwiseSpatialAttention,
)
from keras_sceneparse.models.psanet import PSANet
from tests.counting import moving_statistics, resnet_v1c_parameters
from tests.harness import run_model_test

TINY_BACKBONE = {"backbone": "resnet18", "backbone_kwargs": {"base_filters": 8}}
TINY = {**TINY_BACKBONE, "head_filters": 8, "aux_filters": 4, "mask_size": (5, 5)}

# One default entry (tiny widths, odd sizes: 37x45 -> 5x6 features -> 3x3 shrunk, a 5x5 map
# reaching every pair); the auxiliary head and other modes as slow variants.
HARNESS_CASES = [
    ("psanet", {**TINY, "aux": False}, (37, 45, 3), 3, None),
    pytest.param(
        "psanet",
        {**TINY, "mask_size": (3, 3), "psa_mode": "collect"},
        (41, 35, 3),
        4,
        255,
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "psanet",
        {**TINY, "shrink_factor": 1, "psa_mode": "distribute", "aux": False},
        (33, 47, 3),
        2,
        None,
        marks=pytest.mark.slow,
    ),
]


@pytest.mark.parametrize(
    "name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES
)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)


@pytest.fixture(scope="module")
def paper_head():
    """The paper's head (512 channels, 97x97 maps) on the tiny ResNet, 19 classes."""
    return ksp.models.get("psanet", num_classes=19, **TINY_BACKBONE)


def conv_bn(kernel, c_in, c_out):
    """Convolution without bias + batch norm (gamma, beta and the two moving statistics)."""
    return kernel * kernel * c_in * c_out + 4 * c_out


def conv(c_in, c_out):
    """1x1 convolution with bias."""
    return c_in * c_out + c_out


def mmseg_psanet_head_parameters(c5, c4, classes, channels=512, mask_size=(97, 97)):
    """mmsegmentation's PSAHead (bi-direction) + FCNHead auxiliary (``psanet_r50-d8``), layer by layer."""
    branch = (
        conv_bn(1, c5, channels)  # reduce / reduce_p
        + conv_bn(1, channels, channels)  # attention[0] / attention_p[0]
        + channels
        * mask_size[0]
        * mask_size[1]  # attention[1]: 1x1 to mask_h * mask_w, no bias
    )
    projection = conv_bn(1, 2 * channels, c5)  # proj
    bottleneck = conv_bn(3, 2 * c5, channels)
    classifier = conv(channels, classes)  # conv_seg
    auxiliary = conv_bn(3, c4, 256) + conv(256, classes)
    return 2 * branch + projection + bottleneck + classifier + auxiliary


def test_head_parameters_equal_mmsegmentation_layer_shapes(paper_head):
    backbone = paper_head.get_layer("resnet18_backbone")
    channels = backbone.pyramid_channels
    head = paper_head.count_params() - backbone.count_params()
    assert head == mmseg_psanet_head_parameters(channels["C5"], channels["C4"], 19)


def test_structure_follows_the_paper(paper_head):
    attention = paper_head.get_layer("pointwise_spatial_attention")
    assert isinstance(attention, PointwiseSpatialAttention)
    assert attention.mode == "bi-direction" and attention.branches == (
        "collect",
        "distribute",
    )
    assert (
        attention.map_size == (97, 97)
        and attention.shrink_factor == 2
        and attention.filters == 512
    )
    c5 = paper_head.get_layer("resnet18_backbone").pyramid_channels["C5"]
    assert (
        attention.output.shape[-1] == 2 * c5
    )  # X concatenated with the projected context
    assert paper_head.get_layer("head_bottleneck").filters == 512
    assert paper_head.get_layer("head_bottleneck").kernel_size == 3
    assert paper_head.feature_layer == "head_bottleneck"
    dropouts = [
        layer
        for layer in paper_head.layers
        if isinstance(layer, keras.layers.SpatialDropout2D)
    ]
    assert len(dropouts) == 2 and all(
        layer.rate == 0.1 for layer in dropouts
    )  # main and auxiliary heads
    assert paper_head.get_layer("aux_conv").filters == 256
    assert paper_head.auxiliary_loss_weights == {"aux": 0.4}


def test_outputs_at_stride_8_and_input_size(paper_head):
    images = np.random.default_rng(0).uniform(0, 255, (2, 45, 53, 3)).astype("float32")
    features, logits = paper_head.feature_model()(images)
    assert tuple(logits.shape) == (2, 45, 53, 19)
    backbone = paper_head.get_layer("resnet18_backbone")
    assert backbone.output_stride == 8
    assert tuple(features.shape[1:3]) == tuple(backbone(images)["C5"].shape[1:3])
    assert abs(features.shape[1] - 45 / 8) < 1 and abs(features.shape[2] - 53 / 8) < 1
    outputs = paper_head(images, training=True)
    assert sorted(outputs) == ["aux", "logits"]
    assert all(tuple(o.shape) == (2, 45, 53, 19) for o in outputs.values())
    assert paper_head.predict(images, verbose=0).shape == (2, 45, 53, 19)


def test_paper_map_size_derived_from_a_static_input():
    model = PSANet(3, input_shape=(61, 75, 3), **{**TINY, "mask_size": None})
    attention = model.get_layer("pointwise_spatial_attention")
    height, width = attention.input.shape[1:3]
    assert attention.map_size == (
        2 * ((height - 1) // 2 + 1) - 1,
        2 * ((width - 1) // 2 + 1) - 1,
    )
    assert model.get_config()["mask_size"] is None
    with pytest.raises(ValueError, match="mask_size"):
        PSANet(3, **{**TINY, "mask_size": None})  # sizes unknown: no map size to derive


def test_config_names_every_constructor_argument(paper_head):
    config = paper_head.get_config()
    arguments = set(inspect.signature(PSANet.__init__).parameters) - {"self", "kwargs"}
    assert arguments <= set(config), sorted(arguments - set(config))
    assert config["weights"] is None and config["mask_size"] == (97, 97)
    assert PSANet.from_config(config).count_params() == paper_head.count_params()


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="mask_size"):
        PSANet(3, **{**TINY, "mask_size": (4, 4)})
    with pytest.raises(ValueError, match="psa_mode"):
        PSANet(3, psa_mode="both", **TINY)
    with pytest.raises(ValueError, match="shrink_factor"):
        PSANet(3, shrink_factor=0, **TINY)
    with pytest.raises(ValueError, match="output_stride"):
        PSANet(3, output_stride=32, **TINY)
    with pytest.raises(ValueError, match="num_classes"):
        PSANet(1, **TINY)


# --- parameter count of the paper's configuration (built, never run; ~15 s) ------------------

@pytest.mark.slow
def test_parameter_count_resnet101_cityscapes():
    model = ksp.models.get("psanet", num_classes=19, backbone="resnet101")
    assert model.count_params() == 78_279_334
    backbone = model.get_layer("resnet101_backbone")
    head = model.count_params() - backbone.count_params()
    assert head == mmseg_psanet_head_parameters(2048, 1024, 19) == 35_621_158
    # mmsegmentation's psanet_r101-d8 (trainable, as PyTorch counts): 78,130,822; Keras'
    # ResNet-101 has a 7x7 stem and convolution biases, 0.04% more.
    trainable = model.count_params() - moving_statistics(model)
    mmseg = (
        resnet_v1c_parameters(101)
        + head
        - (moving_statistics(model) - moving_statistics(backbone))
    )
    assert mmseg == 78_130_822
    assert 0 < (trainable - mmseg) / mmseg < 0.0006
