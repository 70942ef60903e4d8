"""FastFCN's JointPyramidUpsampling (Wu et al. 2019, Sec. 3.3, Fig. 4)."""

import keras
import numpy as np

from keras_sceneparse.layers.joint_pyramid_upsampling import JointPyramidUpsampling
from tests.harness import run_layer_test

rng = np.random.default_rng(0)
# C3, C4, C5 of an odd-sized image at strides 8, 16, 32: 9x7, 5x4, 3x2.
C3 = rng.normal(size=(2, 9, 7, 4)).astype("float32")
C4 = rng.normal(size=(2, 5, 4, 6)).astype("float32")
C5 = rng.normal(size=(2, 3, 2, 8)).astype("float32")


def test_harness():
    run_layer_test(
        JointPyramidUpsampling, {"filters": 2, "dilation_rates": (1, 3)}, (C3, C4, C5), (2, 9, 7, 4),
        symbolic_input_shape=[(None, None, 4), (None, None, 6), (None, None, 8)],
    )


def test_branches_follow_the_paper():
    layer = JointPyramidUpsampling(filters=5)
    output = layer(C3, C4, C5)
    assert tuple(output.shape) == (2, 9, 7, 20)  # four branches of `filters` at the size of C3
    assert [reduction.kernel_size for reduction in layer.reductions] == [3, 3, 3]
    assert [reduction.filters for reduction in layer.reductions] == [5, 5, 5]
    depthwise = [branch[0] for branch in layer.branches]
    assert [conv.dilation_rate for conv in depthwise] == [(1, 1), (2, 2), (4, 4), (8, 8)]
    assert all(conv.kernel_size == (3, 3) for conv in depthwise)
    # Separable: a depthwise 3x3 over the 3 x filters concatenation, then a 1x1 to `filters`.
    assert depthwise[0].kernel.shape == (3, 3, 15, 1)
    assert layer.branches[0][2].kernel.shape == (1, 1, 15, 5)


def test_each_branch_is_a_separable_dilated_convolution_of_the_joint_features():
    layer = JointPyramidUpsampling(filters=3)
    output = keras.ops.convert_to_numpy(layer(C3, C4, C5, training=False))
    reduced = [keras.ops.convert_to_numpy(r(x, training=False)) for r, x in zip(layer.reductions, (C3, C4, C5))]
    joint = keras.ops.concatenate(
        [reduced[0], layer.upsampling(reduced[1], reduced[0]), layer.upsampling(reduced[2], reduced[0])], axis=-1
    )
    for index, branch in enumerate(layer.branches):
        y = joint
        for sublayer in branch:
            y = sublayer(y, training=False) if isinstance(sublayer, keras.layers.BatchNormalization) else sublayer(y)
        np.testing.assert_allclose(output[..., 3 * index : 3 * index + 3], keras.ops.convert_to_numpy(y), atol=1e-5)
    # The branches differ (different dilations on the same features).
    assert not np.allclose(output[..., 0:3], output[..., 9:12])
