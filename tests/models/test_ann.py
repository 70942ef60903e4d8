"""ANN: harness, structure, arguments and the parameter count of the paper's configuration."""

import inspect

import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.layers.asymmetric_non_local import (
    AsymmetricFusionNonLocalBlock,
    AsymmetricPyramidNonLocalBlock,
)
from keras_sceneparse.models.ann import ANN
from tests.counting import moving_statistics, resnet_v1c_parameters
from tests.harness import run_model_test

TINY_BACKBONE = {"backbone": "resnet18", "backbone_kwargs": {"base_filters": 8}}
TINY = {
    **TINY_BACKBONE,
    "head_filters": 8,
    "key_channels": 4,
    "value_channels": 4,
    "aux_filters": 4,
}

# One default entry (tiny widths, odd sizes); the auxiliary head and other pyramids as slow variants.
HARNESS_CASES = [
    ("ann", {**TINY, "aux": False}, (37, 43, 3), 3, None),
    pytest.param(
        "ann",
        {**TINY, "pool_sizes": (1, 2)},
        (35, 45, 3),
        4,
        255,
        marks=pytest.mark.slow,
    ),
    pytest.param(
        "ann",
        {**TINY, "output_stride": 16, "aux": False},
        (41, 33, 3),
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
    """The paper's head widths (512; 256-channel keys and values) on the tiny ResNet, 19 classes."""
    return ksp.models.get("ann", num_classes=19, **TINY_BACKBONE)


def conv_bn(kernel, c_in, c_out):
    """Convolution without bias + batch norm (gamma, beta and the two moving statistics)."""
    return kernel * kernel * c_in * c_out + 4 * c_out


def conv(c_in, c_out):
    """1x1 convolution with bias."""
    return c_in * c_out + c_out


def mmseg_ann_head_parameters(c5, c4, classes, channels=512, project=256):
    """mmsegmentation's ANNHead + FCNHead auxiliary (``ann_r50-d8``), layer by layer."""
    afnb = (
        conv_bn(1, c5, project)  # query_project (ConvModule)
        + conv_bn(1, c4, project)  # key_project (ConvModule)
        + conv(c4, project)  # value_project (nn.Conv2d)
        + conv(project, c5)  # out_project (nn.Conv2d, zero-initialised)
        + conv_bn(1, 2 * c5, c5)  # bottleneck, no activation
    )
    bottleneck = conv_bn(3, c5, channels)
    apnb = (
        conv_bn(1, channels, project)  # key_project = query_project (shared)
        + conv(channels, project)  # value_project
        + conv(project, channels)  # out_project
        + conv_bn(1, 2 * channels, channels)  # bottleneck
    )
    classifier = conv(channels, classes)
    auxiliary = conv_bn(3, c4, 256) + conv(256, classes)
    return afnb + bottleneck + apnb + classifier + auxiliary


def test_head_parameters_equal_mmsegmentation_layer_shapes(paper_head):
    backbone = paper_head.get_layer("resnet18_backbone")
    channels = backbone.pyramid_channels
    head = paper_head.count_params() - backbone.count_params()
    assert head == mmseg_ann_head_parameters(channels["C5"], channels["C4"], 19)


def test_structure_follows_the_paper(paper_head):
    fusion = paper_head.get_layer("asymmetric_fusion_non_local")
    context = paper_head.get_layer("asymmetric_pyramid_non_local")
    assert isinstance(fusion, AsymmetricFusionNonLocalBlock) and isinstance(
        context, AsymmetricPyramidNonLocalBlock
    )
    channels = paper_head.get_layer("resnet18_backbone").pyramid_channels
    # AFNB: keys and values from C4, queries from C5, output at C5's width.
    low, high = fusion.input
    assert (low.shape[-1], high.shape[-1]) == (channels["C4"], channels["C5"])
    assert fusion.output.shape[-1] == channels["C5"]
    for block in (fusion, context):
        assert block.key_channels == block.value_channels == 256
        assert block.pool_sizes == (1, 3, 6, 8) and block.num_samples == 110
    assert paper_head.get_layer("head_bottleneck").filters == 512
    assert context.input.shape[-1] == context.output.shape[-1] == 512
    assert paper_head.feature_layer == "asymmetric_pyramid_non_local"
    dropouts = [
        layer
        for layer in paper_head.layers
        if isinstance(layer, keras.layers.SpatialDropout2D)
    ]
    assert len(dropouts) == 3 and all(
        layer.rate == 0.1 for layer in dropouts
    )  # after AFNB, two classifiers
    assert paper_head.get_layer("fusion_dropout").input is fusion.output
    assert paper_head.get_layer("aux_conv").filters == 256
    assert paper_head.auxiliary_loss_weights == {"aux": 0.4}


def test_outputs_at_stride_8_and_input_size(paper_head):
    images = np.random.default_rng(0).uniform(0, 255, (2, 45, 53, 3)).astype("float32")
    features, logits = paper_head.feature_model()(images)
    assert tuple(logits.shape) == (2, 45, 53, 19)
    backbone = paper_head.get_layer("resnet18_backbone")
    assert backbone.output_stride == 8
    pyramid = backbone(images)
    assert (
        tuple(features.shape[1:3])
        == tuple(pyramid["C5"].shape[1:3])
        == tuple(pyramid["C4"].shape[1:3])
    )
    outputs = paper_head(images, training=True)
    assert sorted(outputs) == ["aux", "logits"]
    assert all(tuple(o.shape) == (2, 45, 53, 19) for o in outputs.values())
    assert paper_head.predict(images, verbose=0).shape == (2, 45, 53, 19)


def test_config_names_every_constructor_argument(paper_head):
    config = paper_head.get_config()
    arguments = set(inspect.signature(ANN.__init__).parameters) - {"self", "kwargs"}
    assert arguments <= set(config), sorted(arguments - set(config))
    assert config["weights"] is None and config["pool_sizes"] == (1, 3, 6, 8)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="key_channels"):
        ANN(3, **{**TINY, "key_channels": 0})
    with pytest.raises(ValueError, match="value_channels"):
        ANN(3, **{**TINY, "value_channels": 0})
    with pytest.raises(ValueError, match="pool_sizes"):
        ANN(3, pool_sizes=(), **TINY)
    with pytest.raises(ValueError, match="output_stride"):
        ANN(3, output_stride=4, **TINY)
    with pytest.raises(ValueError, match="dropout"):
        ANN(3, dropout=1.5, **TINY)


# --- parameter count of the paper's configuration (built, never run; ~15 s) ------------------

@pytest.mark.slow
def test_parameter_count_resnet101_cityscapes():
    model = ksp.models.get("ann", num_classes=19, backbone="resnet101")
    assert model.count_params() == 65_367_718
    backbone = model.get_layer("resnet101_backbone")
    head = model.count_params() - backbone.count_params()
    assert head == mmseg_ann_head_parameters(2048, 1024, 19) == 22_709_542
    # mmsegmentation's ann_r101-d8 (trainable, as PyTorch counts): 65,220,742; Keras'
    # ResNet-101 has a 7x7 stem and convolution biases, 0.05% more.
    trainable = model.count_params() - moving_statistics(model)
    mmseg = (
        resnet_v1c_parameters(101)
        + head
        - (moving_statistics(model) - moving_statistics(backbone))
    )
    assert mmseg == 65_220_742
    assert 0 < (trainable - mmseg) / mmseg < 0.0006
