"""Segmenter: harness entries, parameter counts, padding to the patch grid."""

import numpy as np
import pytest

from keras_sceneparse.backbones.vision_transformer import (
    VIT_VARIANTS,
    VisionTransformer,
)
from keras_sceneparse.layers.transformer_blocks import MaskTransformer
from keras_sceneparse.models.segmenter import Segmenter
from tests.counting import trainable_count
from tests.harness import run_model_test

TINY_VIT = {"variant": "tiny", "hidden_dim": 16, "depth": 1, "num_heads": 2, "decoder_layers": 1, "image_size": 64}

# Odd sizes, not multiples of the patch size (padded and cropped back).
HARNESS_CASES = [
    ("segmenter", TINY_VIT, (35, 45, 3), 5, 255),
    pytest.param("segmenter", {**TINY_VIT, "patch_size": 8, "decoder_heads": 2}, (21, 30, 3), 2, None, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)

def transformer_layer_params(dim, mlp_ratio=4):
    """Two LayerNorms, Q/K/V/output projections with bias, the two-layer MLP."""
    hidden = mlp_ratio * dim
    return 2 * 2 * dim + 4 * (dim * dim + dim) + (dim * hidden + hidden) + (hidden * dim + dim)


def mask_decoder_params(encoder_dim, num_classes, layers=2):
    """Sec. 3.2: input projection, class embeddings, layers, norm, two bias-free projections, mask norm."""
    dim = encoder_dim
    return (
        (encoder_dim * dim + dim) + num_classes * dim + layers * transformer_layer_params(dim) + 2 * dim
        + 2 * dim * dim + 2 * num_classes
    )


def vit_params(dim, depth, patch, grid_tokens, final_norm=True):
    return (
        patch * patch * 3 * dim + dim + dim + (1 + grid_tokens) * dim + depth * transformer_layer_params(dim)
        + (2 * dim if final_norm else 0)
    )


def test_seg_tiny_parameter_count():
    # Seg-T-Mask/16 for ADE20K (150 classes, 32 x 32 position grid of 512 x 512 crops).
    model = Segmenter(150, variant="tiny")
    expected = vit_params(192, 12, 16, 32 * 32) + mask_decoder_params(192, 150)
    assert trainable_count(model) == model.count_params() == expected == 6_713_388
    assert model.get_layer("mask_transformer").blocks[0].num_heads == 3


@pytest.mark.slow
def test_vit_base_parameter_count_matches_table_1():
    # Table 1: ViT-B 86M (224 x 224, 14 x 14 patches); ours has no ImageNet classifier.
    encoder = VisionTransformer("base", image_size=224)
    assert encoder.count_params() == vit_params(768, 12, 16, 14 * 14) == 85_798_656
    assert abs(encoder.count_params() / 86e6 - 1) < 0.01


@pytest.mark.slow
def test_seg_base_mask_parameter_count():
    model = Segmenter(150, variant="base")
    assert model.count_params() == vit_params(768, 12, 16, 32 * 32) + mask_decoder_params(768, 150) == 102_497_580


def test_variants_follow_table_1():
    for variant, (dim, depth, heads) in {"tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12),
                                          "large": (1024, 24, 16)}.items():
        assert VIT_VARIANTS[variant] == (dim, depth, heads)


def test_padding_to_the_patch_grid_then_cropping():
    # A 35 x 45 image is zero-padded (after normalisation to [-1, 1], so with 127.5) to
    # 48 x 48 and the logits cropped back: the same as padding it ourselves.
    model = Segmenter(4, **TINY_VIT)
    image = np.random.default_rng(0).uniform(0, 255, (1, 35, 45, 3)).astype("float32")
    padded = np.full((1, 48, 48, 3), 127.5, "float32")
    padded[:, :35, :45] = image
    small = np.asarray(model(image))
    large = np.asarray(model(padded))
    assert small.shape == (1, 35, 45, 4)
    np.testing.assert_allclose(small, large[:, :35, :45], atol=1e-5)


def test_decoder_sees_the_patch_grid():
    model = Segmenter(4, **TINY_VIT)
    encoder = model.get_layer("vit_tiny")
    features = encoder(np.zeros((1, 48, 32, 3), "float32"))
    assert tuple(features["patches"].shape) == (1, 3, 2, 16)
    assert tuple(features["tokens"].shape) == (1, 1 + 6, 16)
    assert isinstance(model.get_layer("mask_transformer"), MaskTransformer)
