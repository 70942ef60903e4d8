import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.layers.enet_blocks import ENetBottleneck, ENetInitialBlock
from keras_sceneparse.models.enet import ENet
from tests.counting import trainable_count
from tests.harness import OTHER_BACKENDS, run_model_test, run_under_backend

TINY = {"filters": (8, 16, 32)}

# (registered_name, kwargs, input_shape, num_classes, ignore_class); odd sizes, not multiples of 8.
# ENet has 27 bottlenecks (~370 trainable variables) whatever the width: tracing its train step
# dominates a harness run (~40 s of CPU against ~28 s for the tiny DeepLabV3+), so there is one
# default case and the variant below is marked slow.
HARNESS_CASES = [
    ("enet", TINY, (37, 45, 3), 3, None),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)


@pytest.mark.slow
def test_model_harness_one_channel_reference_decoder():
    kwargs = {**TINY, "decoder_activation": "relu", "input_shape": (None, None, 1)}
    run_model_test("enet", kwargs, (30, 27, 1), 5, ignore_class=4)


@pytest.mark.slow
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_same_outputs_under_other_backends(backend, tmp_path):
    # Needs ENet exported from keras_sceneparse.models: the subprocess imports only the package.
    model = ksp.models.get("enet", num_classes=3, **TINY)
    for block in bottlenecks(model).values():
        block.expansion_bn.gamma.assign(np.full(block.filters, 0.5, "float32"))  # non-silent extensions
    images = np.random.default_rng(0).uniform(0, 255, size=(2, 29, 35, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    (actual,) = run_under_backend(backend, model, [images], tmp_path)
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)

# --- parameter counts of the paper's configuration (built, never run) ------------------------

PAPER_PARAMETERS = 0.37e6  # Table 3


def test_parameter_count_of_the_paper_configuration():
    # CamVid's 11 classes (Table 5). Trainable: convolutions, batch-norm scales/offsets and PReLU slopes.
    model = ksp.models.get("enet", num_classes=11)
    assert trainable_count(model) == 364_127
    # Batch-norm moving statistics: mean and variance of 4,176 channels.
    assert model.count_params() - trainable_count(model) == 8_352
    # The paper's 0.37M is met within 1% when the moving statistics are counted (see the docstring).
    assert abs(model.count_params() - PAPER_PARAMETERS) / PAPER_PARAMETERS < 0.01
    slopes = sum(int(np.prod(w.shape)) for w in model.trainable_weights if w.path.endswith("alpha"))
    assert slopes == 4_096


def test_parameter_count_with_the_reference_code_decoder():
    # e-lab/ENet-training's decoder: ReLU instead of PReLU, 336 slopes fewer.
    model = ksp.models.get("enet", num_classes=11, decoder_activation="relu", dropout_rates=(0.01, 0.1, 0.0))
    assert trainable_count(model) == 363_791
    # Cityscapes' 19 classes: 8 more output maps of the 2x2 fullconv (16 * 4 weights + 1 bias each).
    assert trainable_count(ksp.models.get("enet", num_classes=19)) == 364_127 + 8 * 65


# --- structure (Table 1) -----------------------------------------------------------------


def bottlenecks(model):
    return {layer.name: layer for layer in model.layers if isinstance(layer, ENetBottleneck)}


def test_table_1_stages():
    model = ksp.models.get("enet", num_classes=12)
    blocks = bottlenecks(model)
    expected_names = (
        [f"bottleneck1_{i}" for i in range(5)]
        + [f"bottleneck2_{i}" for i in range(9)]
        + [f"bottleneck3_{i}" for i in range(1, 9)]
        + [f"bottleneck4_{i}" for i in range(3)]
        + [f"bottleneck5_{i}" for i in range(2)]
    )
    assert list(blocks) == expected_names
    types = [(blocks[f"bottleneck{s}_{i}"].block_type, blocks[f"bottleneck{s}_{i}"].dilation_rate)
             for s in (2, 3) for i in range(1, 9)]
    stage = [("regular", 1), ("dilated", 2), ("asymmetric", 1), ("dilated", 4),
             ("regular", 1), ("dilated", 8), ("asymmetric", 1), ("dilated", 16)]
    assert types == stage * 2
    assert [blocks[n].block_type for n in ("bottleneck1_0", "bottleneck2_0")] == ["downsampling"] * 2
    assert [blocks[n].block_type for n in ("bottleneck4_0", "bottleneck5_0")] == ["upsampling"] * 2
    assert {b.filters for n, b in blocks.items() if n.startswith("bottleneck1")} == {64}
    assert {b.filters for n, b in blocks.items() if n[10] in "23"} == {128}
    assert {b.filters for n, b in blocks.items() if n.startswith("bottleneck4")} == {64}
    assert {b.filters for n, b in blocks.items() if n.startswith("bottleneck5")} == {16}
    assert all(b.asymmetric_size == 5 and b.internal_filters == b.filters // 4 for b in blocks.values())
    # Sec. 4: spatial dropout 0.01 before bottleneck 2.0, 0.1 afterwards.
    assert {b.dropout for n, b in blocks.items() if n.startswith("bottleneck1")} == {0.01}
    assert {b.dropout for n, b in blocks.items() if not n.startswith("bottleneck1")} == {0.1}
    initial = model.get_layer("initial")
    assert isinstance(initial, ENetInitialBlock) and initial.conv.filters == 13
    fullconv = model.get_layer("fullconv")
    assert fullconv.kernel_size == (2, 2) and fullconv.strides == (2, 2) and fullconv.filters == 12


def test_decoder_unpools_with_the_matching_encoder_indices():
    model = ksp.models.get("enet", num_classes=3, **TINY)

    def source_of(layer_name, argument):
        node = model.get_layer(layer_name)._inbound_nodes[0]
        return node.arguments.args[argument]._keras_history.operation.name

    assert source_of("bottleneck4_0", 1) == "bottleneck2_0"  # indices
    assert source_of("bottleneck4_0", 2) == "bottleneck1_4"  # reference: the input of 2.0
    assert source_of("bottleneck5_0", 1) == "bottleneck1_0"
    assert source_of("bottleneck5_0", 2) == "initial"


def test_feature_layer_and_output_sizes():
    model = ksp.models.get("enet", num_classes=4, **TINY)
    features, logits = model.feature_model()(np.zeros((1, 43, 21, 3), "float32"))
    # Padded to 48 x 24 before the encoder; the logits are cropped back.
    assert tuple(features.shape) == (1, 24, 12, 8)
    assert tuple(logits.shape) == (1, 43, 21, 4)


@pytest.mark.slow
def test_trains_on_256_crops_with_the_default_configuration():
    # The CamVid run that follows this model: 12 classes, 256 x 256 crops, paper widths.
    model = ksp.models.get("enet", num_classes=12)
    model.compile(
        optimizer=keras.optimizers.Adam(5e-4),
        loss=ksp.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=11),
    )
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(2, 256, 256, 3)).astype("float32")
    labels = rng.integers(0, 12, size=(2, 256, 256)).astype("int32")
    history = model.fit(images, labels, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert model.predict(images[:1], verbose=0).shape == (1, 256, 256, 12)


def test_argument_errors():
    with pytest.raises(ValueError, match="filters"):
        ENet(num_classes=3, filters=(16, 64))
    with pytest.raises(ValueError, match="non-decreasing"):
        ENet(num_classes=3, filters=(16, 128, 64))
    with pytest.raises(ValueError, match=r"filters\[0\]"):
        ENet(num_classes=3, filters=(4, 8, 8), input_shape=(None, None, 4))
    with pytest.raises(ValueError, match="dropout_rates"):
        ENet(num_classes=3, dropout_rates=(0.1, 0.1))
    with pytest.raises(ValueError, match="weights"):
        ENet(num_classes=3, weights="imagenet")
    with pytest.raises(ValueError, match="decoder_activation"):
        ENet(num_classes=3, decoder_activation="elu")
