"""DPT: harness entries, parameter count, the reassembled pyramid."""

import keras
import numpy as np
import pytest

from keras_sceneparse.layers.transformer_blocks import (
    FeatureFusionBlock,
    ReassembleBlock,
)
from keras_sceneparse.models.dpt import DPT
from tests.counting import trainable_count
from tests.harness import run_model_test

TINY_DPT = {
    "hidden_dim": 16,
    "depth": 2,
    "num_heads": 2,
    "hooks": (1, 1, 2, 2),
    "reassemble_filters": (4, 4, 8, 8),
    "features": 8,
    "image_size": 64,
}

# An odd size, not a multiple of the patch size or of 32 (padded to 64 x 64 and cropped back).
# One entry: each costs ~20 s of CPU; the other readouts are covered by the layer tests.
HARNESS_CASES = [
    ("dpt", TINY_DPT, (35, 45, 3), 5, 255),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)

@pytest.mark.slow
def test_dpt_base_parameter_count():
    # The paper gives no count for DPT-Base segmentation; ours, stated in the docstring.
    model = DPT(150, variant="base")
    assert trainable_count(model) == 109_996_886
    assert model.count_params() == 110_004_566
    assert trainable_count(model.get_layer("vit_base")) == 86_088_960


def test_decoder_parameter_count_of_a_small_configuration():
    # Readout projections, 1x1 projections, resampling, level convolutions, fusion blocks, head.
    model = DPT(3, **TINY_DPT)
    dim, filters, features = 16, (4, 4, 8, 8), 8
    expected = 4 * (2 * dim * dim + dim) + sum(dim * f + f for f in filters)
    expected += (16 * 4 * 4 + 4) + (4 * 4 * 4 + 4) + (9 * 8 * 8 + 8)  # 4x4/4, 2x2/2 transposed; 3x3/2
    expected += sum(9 * f * features for f in filters)
    residual_unit = 2 * (9 * features * features + 2 * features)  # bias-free convolutions and batch norm
    expected += 7 * residual_unit + 4 * (features * features + features)
    expected += 9 * features * features + 2 * features + features * 3 + 3
    assert trainable_count(model) - trainable_count(model.get_layer("vit_base")) == expected


def test_reassembled_pyramid_is_at_strides_4_to_32():
    model = DPT(3, **TINY_DPT)
    outputs = [model.get_layer(f"reassemble{level}").output for level in range(1, 5)]
    probe = keras.Model(model.input, outputs)
    # 35 x 45 is padded to 64 x 64: a 4 x 4 patch grid.
    sizes = [tuple(o.shape[1:3]) for o in probe(np.zeros((1, 35, 45, 3), "float32"))]
    assert sizes == [(16, 16), (8, 8), (4, 4), (2, 2)]
    reassemble = [model.get_layer(f"reassemble{level}") for level in range(1, 5)]
    assert [r.scale for r in reassemble] == [4, 2, 1, 0.5]
    assert all(isinstance(r, ReassembleBlock) and r.readout == "project" for r in reassemble)
    fusions = [model.get_layer(f"fusion{level}") for level in range(1, 5)]
    assert all(isinstance(f, FeatureFusionBlock) for f in fusions)
    assert [f.fuse_skip for f in fusions] == [True, True, True, False]


def test_default_hooks_per_variant():
    from keras_sceneparse.models.dpt import DPT_VARIANTS

    assert DPT_VARIANTS["base"]["hooks"] == (3, 6, 9, 12)
    assert DPT_VARIANTS["large"]["hooks"] == (6, 12, 18, 24)
    assert DPT_VARIANTS["base"]["reassemble_filters"] == (96, 192, 384, 768)
    assert DPT_VARIANTS["large"]["reassemble_filters"] == (256, 512, 1024, 1024)


def test_hooks_must_be_four():
    with pytest.raises(ValueError, match="hooks"):
        DPT(3, **{**TINY_DPT, "hooks": (1, 2)})
