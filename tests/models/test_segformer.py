"""SegFormer: harness entries, the paper's parameter counts, and the encoder's structure."""

import importlib.util

import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.backbones.mix_transformer import (
    MIT_SEQUENCE_REDUCTIONS,
    MixTransformer,
)
from keras_sceneparse.layers.transformer_blocks import TransformerEncoderBlock
from keras_sceneparse.models.segformer import SegFormer
from tests.counting import trainable_count
from tests.harness import run_model_test

TINY_MIT = {"hidden_dims": (8, 8, 16, 16), "depths": (1, 1, 1, 1), "num_heads": (1, 1, 2, 2), "decoder_dim": 8}

# Every registered variant, tiny (the variants differ only in their default widths); odd
# sizes that are not multiples of the encoder's stride 32, and one smaller than 32.
HARNESS_CASES = [
    ("segformer_b0", TINY_MIT, (35, 45, 3), 5, 255),
    pytest.param("segformer_b1", {**TINY_MIT, "drop_path_rate": 0.0}, (21, 19, 3), 2, None, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)

# Table 1 (ADE20K, 150 classes): encoder + decoder parameters in millions.
PAPER_MILLIONS = {"b0": 3.8, "b1": 13.7, "b2": 27.5, "b3": 47.3, "b4": 64.1, "b5": 84.7}
OURS = {"b0": 3_752_694, "b1": 13_715_798, "b2": 27_461_974, "b3": 47_337_814, "b4": 64_108_374, "b5": 84_708_694}


def check_parameter_count(variant):
    model = SegFormer(150, variant=variant)
    count = trainable_count(model)
    assert count == OURS[variant]
    # The paper gives 0.1M precision: ours rounds to its figure.
    assert round(count / 1e6, 1) == PAPER_MILLIONS[variant]
    return model


@pytest.mark.parametrize("variant", ["b1", "b2"])
def test_parameter_count_within_one_percent_of_table_1(variant):
    check_parameter_count(variant)
    assert abs(OURS[variant] / (PAPER_MILLIONS[variant] * 1e6) - 1) < 0.01


def test_b0_parameter_count():
    # 1.2% under the paper's 3.8M: its 3.4M for the MiT-B0 encoder is 3.32M in the
    # reference code and in keras-hub, which the encoder matches (below).
    model = check_parameter_count("b0")
    assert trainable_count(model.get_layer("mit_b0")) == 3_319_392
    decoder = OURS["b0"] - 3_319_392
    # Four linear projections to C=256, the fusion (no bias, batch-norm scale and shift), the classifier.
    assert decoder == (32 + 64 + 160 + 256) * 256 + 4 * 256 + 4 * 256 * 256 + 2 * 256 + 256 * 150 + 150


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["b3", "b4", "b5"])
def test_large_parameter_counts_within_one_percent_of_table_1(variant):
    check_parameter_count(variant)
    assert abs(OURS[variant] / (PAPER_MILLIONS[variant] * 1e6) - 1) < 0.01


@pytest.mark.slow  # the suite's time budget; runs with -m slow
@pytest.mark.skipif(importlib.util.find_spec("keras_hub") is None, reason="keras-hub is not installed")
@pytest.mark.parametrize("variant,depths,dims", [("b0", (2, 2, 2, 2), (32, 64, 160, 256))])
def test_encoder_matches_keras_hub_parameter_count(variant, depths, dims):
    from keras_hub.models import MiTBackbone

    reference = MiTBackbone(
        layerwise_depths=list(depths), num_layers=4, layerwise_num_heads=[1, 2, 5, 8],
        layerwise_sr_ratios=[8, 4, 2, 1], max_drop_path_rate=0.1, layerwise_patch_sizes=[7, 3, 3, 3],
        layerwise_strides=[4, 2, 2, 2], hidden_dims=list(dims), image_shape=(64, 64, 3),
    )
    assert MixTransformer(variant).count_params() == reference.count_params()


def test_encoder_stages_have_strides_4_to_32_for_any_size():
    encoder = MixTransformer("b0", hidden_dims=(8, 8, 16, 16), depths=(1, 2, 1, 1), num_heads=(1, 1, 2, 2))
    features = encoder(np.zeros((1, 37, 50, 3), "float32"))
    sizes = [tuple(f.shape[1:3]) for f in features]
    assert sizes == [(-(-37 // s), -(-50 // s)) for s in (4, 8, 16, 32)]
    assert [f.shape[-1] for f in features] == [8, 8, 16, 16]
    blocks = [layer for layer in encoder.layers if isinstance(layer, TransformerEncoderBlock)]
    assert len(blocks) == 5
    assert [b.sequence_reduction for b in blocks] == [8, 8 // 2, 8 // 2, 2, 1]
    assert tuple(MIT_SEQUENCE_REDUCTIONS) == (8, 4, 2, 1)
    assert all(b.mix_ffn for b in blocks)
    # Stochastic depth grows linearly to 0.1 over the blocks.
    np.testing.assert_allclose([b.drop_path for b in blocks], np.linspace(0.0, 0.1, 5))


def test_decoder_width_per_variant():
    for variant, width in (("b1", 256), ("b2", 768)):
        model = ksp.models.get(f"segformer_{variant}", num_classes=3, hidden_dims=(8, 8, 16, 16),
                               depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2))
        assert model.get_layer("linear_c1").units == width
        assert model.get_layer("linear_fuse").filters == width


def test_heads_must_divide_widths():
    with pytest.raises(ValueError, match="num_heads"):
        SegFormer(3, hidden_dims=(8, 8, 16, 16), num_heads=(3, 1, 2, 2))


def test_no_pretrained_weights():
    with pytest.raises(ValueError, match="weights"):
        SegFormer(3, weights="imagenet")


def test_feature_model_returns_the_fused_features():
    model = SegFormer(3, **TINY_MIT)
    features, logits = model.feature_model()(np.zeros((1, 33, 41, 3), "float32"))
    assert tuple(features.shape) == (1, 9, 11, 8)
    assert tuple(logits.shape) == (1, 33, 41, 3)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
