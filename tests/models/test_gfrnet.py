import keras
import numpy as np
import pytest

from keras_sceneparse.layers.gated_refinement import GatedRefinementUnit, GateUnit
from keras_sceneparse.models.gfrnet import GFRNet
from tests.harness import run_model_test
from tests.models.test_lrn import run_coarse_to_fine_model_test

TINY_GFRNET = {"backbone": "resnet18", "backbone_kwargs": {"base_filters": 8}}

# Odd sizes, not multiples of the stride 32; the first case has the stage-wise supervision.
HARNESS_CASES = [
    ("gfrnet", {**TINY_GFRNET, "gate_filters": 8}, (35, 45, 3), 5, 255),
    pytest.param("gfrnet", {**TINY_GFRNET, "auxiliary_loss_weight": 0.0}, (33, 29, 3), 2, None, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    runner = run_coarse_to_fine_model_test if kwargs.get("auxiliary_loss_weight", 1.0) else run_model_test
    model = runner(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)
    # The gates learn too.
    assert all(model.get_layer(f"gate{k}").trainable_weights for k in range(1, 5))


def test_vgg16_structure_follows_the_paper():
    model = GFRNet(num_classes=11, input_shape=(224, 224, 3))
    outputs = model.output
    # P_m^G at 1/32, then RU1..RU4 at 1/16..1/2 as auxiliary outputs; RU5 at full size is the output.
    assert [tuple(outputs[f"stage{k}"].shape[1:3]) for k in range(1, 6)] == [(7, 7), (14, 14), (28, 28), (56, 56),
                                                                             (112, 112)]
    assert model.auxiliary_loss_weights == {f"stage{k}": 1.0 for k in range(1, 6)}
    backbone = model.get_layer("vgg16_backbone")
    pairs = [("conv5", "pool5"), ("conv4", "conv5"), ("conv3", "conv4"), ("conv2", "conv3"), ("conv1", "conv2")]
    for index, (shallow, deep) in enumerate(pairs, start=1):
        gate = model.get_layer(f"gate{index}")
        assert isinstance(gate, GateUnit)
        # Each gate reads two adjacent encoder stages (Fig. 2).
        for argument, stage in zip(gate._inbound_nodes[0].arguments.args, (shallow, deep)):
            history = argument._keras_history
            assert history.operation is backbone
            assert history.tensor_index == sorted(backbone.output).index(stage)
        channels = backbone.output[shallow].shape[-1]
        assert gate.filters == channels
        assert gate.deeper_conv.sublayers[0].kernel.shape == (3, 3, backbone.output[deep].shape[-1], channels)
        unit = model.get_layer(f"refinement{index}")
        assert isinstance(unit, GatedRefinementUnit)
        assert unit.features_conv.sublayers[0].kernel.shape == (3, 3, channels, 11)
        assert unit.refine_conv.kernel.shape == (3, 3, 22, 11)


@pytest.mark.parametrize("num_classes,count", [(11, 26_693_672), (21, 26_901_292)])
def test_parameter_count(num_classes, count):
    model = GFRNet(num_classes=num_classes)
    assert model.get_layer("vgg16_backbone").count_params() == 14_714_688
    assert sum(model.get_layer(f"gate{k}").count_params() for k in range(1, 6)) == 11_771_392
    assert model.count_params() == count


def test_the_deeper_stage_gates_the_output():
    """Silencing a gate's deeper branch (zero kernel: v = 0) closes the gate and changes the output."""
    model = GFRNet(num_classes=3, gate_filters=4, **TINY_GFRNET)
    images = np.random.default_rng(0).uniform(0, 255, (1, 37, 41, 3)).astype("float32")
    before = keras.ops.convert_to_numpy(model(images, training=True)["logits"])
    gate = model.get_layer("gate1")
    conv = gate.deeper_conv.sublayers[0]
    conv.kernel.assign(np.zeros(conv.kernel.shape, "float32"))
    after = keras.ops.convert_to_numpy(model(images, training=True)["logits"])
    assert np.abs(before - after).max() > 1e-4


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="gate_filters"):
        GFRNet(num_classes=3, gate_filters=0, **TINY_GFRNET)
    with pytest.raises(ValueError, match="auxiliary_loss_weight"):
        GFRNet(num_classes=3, auxiliary_loss_weight=-0.5, **TINY_GFRNET)
    with pytest.raises(ValueError, match="backbone"):
        GFRNet(num_classes=3, backbone="vgg7")
