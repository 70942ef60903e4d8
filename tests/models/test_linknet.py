import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.layers.image_normalization import ImageNormalization
from keras_sceneparse.models.linknet import LinkNet
from tests.counting import trainable_count
from tests.harness import run_model_test

TINY_LINKNET = {"backbone_kwargs": {"base_filters": 8}, "final_filters": 8}

# Odd sizes, not multiples of the encoder stride 32.
HARNESS_CASES = [
    ("linknet", TINY_LINKNET, (35, 45, 3), 3, None),
    pytest.param("linknet", {"backbone": "mobilenet_v2", "backbone_kwargs": {"alpha": 0.35}, "final_filters": 8},
     (33, 50, 3), 5, 255, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)

def decoder_parameters(num_classes):
    """Fig. 1 and 3, layer by layer: bias-free convolutions, batch norm scale and offset."""
    total = 0
    for m, n in ((512, 256), (256, 128), (128, 64), (64, 64)):
        q = m // 4
        total += m * q + 2 * q  # conv [(1x1), (m, m/4)]
        total += 9 * q * q + 2 * q  # full-conv [(3x3), (m/4, m/4)]
        total += q * n + 2 * n  # conv [(1x1), (m/4, n)]
    total += 9 * 64 * 32 + 2 * 32  # full-conv [(3x3), (64, 32), *2]
    total += 9 * 32 * 32 + 2 * 32  # conv [(3x3), (32, 32)]
    total += 4 * 32 * num_classes + num_classes  # full-conv [(2x2), (32, N), *2], with bias
    return total


def test_parameter_count_matches_table_1():
    # Table 1: 11.5M parameters; the paper's CamVid configuration has 11 classes.
    model = ksp.models.get("linknet", num_classes=11)
    assert trainable_count(model) == 11_176_512 + decoder_parameters(11) == 11_534_603
    assert abs(trainable_count(model) / 11.5e6 - 1) < 0.01
    assert model.count_params() == 11_546_315


def test_decoder_blocks_follow_figure_2():
    model = LinkNet(num_classes=12)
    widths = {}
    for level in (4, 3, 2, 1):
        block = model.get_layer(f"decoder{level}")
        m = block.reduction.sublayers[0].kernel.shape[2]
        widths[level] = (m, block.bottleneck_filters, block.filters, block.strides)
    # (m, m/4, n, stride): decoder block 1 keeps the resolution (the authors' code).
    assert widths == {4: (512, 128, 256, 2), 3: (256, 64, 128, 2), 2: (128, 32, 64, 2), 1: (64, 16, 64, 1)}
    assert model.get_layer("final_full_conv").kernel.shape == (3, 3, 32, 64)
    assert model.get_layer("final_conv").filters == 32
    classifier = model.get_layer("classifier")
    assert classifier.kernel.shape == (2, 2, 12, 32) and classifier.strides == (2, 2)
    assert model.get_layer("resnet18_backbone").normalization == "imagenet"


def test_each_decoder_output_is_added_to_its_encoder_blocks_input():
    """Fig. 1: decoder 4 + encoder 3's output, ..., decoder 1 + the initial block's output;
    on an odd-sized image the padded maps make every resize an identity."""
    model = LinkNet(num_classes=3, **TINY_LINKNET)
    images = np.random.default_rng(0).uniform(0, 255, size=(1, 45, 37, 3)).astype("float32")
    probe = keras.Model(
        model.input,
        {
            **{f"decoder{i}": model.get_layer(f"decoder{i}").output for i in (4, 3, 2, 1)},
            **{f"link{i}": model.get_layer(f"link{i}").output for i in (4, 3, 2, 1)},
        },
    )
    outputs = {key: keras.ops.convert_to_numpy(value) for key, value in probe(images).items()}
    padded = np.pad(
        keras.ops.convert_to_numpy(ImageNormalization("imagenet")(images)), ((0, 0), (0, 19), (0, 27), (0, 0))
    )
    features = model.get_layer("resnet18_backbone")(padded)
    assert sorted(features) == ["C1", "C2", "C3", "C4", "C5", "initial"]
    skips = {4: "C4", 3: "C3", 2: "C2", 1: "initial"}
    for level, key in skips.items():
        skip = keras.ops.convert_to_numpy(features[key])
        np.testing.assert_allclose(outputs[f"link{level}"], outputs[f"decoder{level}"] + skip, rtol=1e-5, atol=1e-5)
    assert [outputs[f"link{i}"].shape[1:3] for i in (4, 3, 2, 1)] == [(4, 4), (8, 8), (16, 16), (16, 16)]
    # The initial block's output is ResNet's max pooling, at stride 4 like encoder block 1's.
    assert model.get_layer("resnet18_backbone").feature_layers["initial"] == "pool1_pool"


@pytest.mark.parametrize("input_shape", [(33, 47, 3), (64, 96, 3), (None, None, 3)])
def test_output_size_equals_input_size(input_shape):
    model = LinkNet(num_classes=2, input_shape=input_shape, **TINY_LINKNET)
    size = input_shape[:2] if input_shape[0] else (70, 41)
    assert model.predict(np.zeros((1, *size, 3)), verbose=0).shape == (1, *size, 2)


def test_imagenet_weights_raise_for_resnet18():
    with pytest.raises(ValueError, match="ResNet-18"):
        LinkNet(num_classes=12, weights="imagenet")
    with pytest.raises(ValueError, match="backbone"):
        LinkNet(num_classes=12, backbone="resnet9")


def test_other_backbones_read_their_channels_from_the_pyramid():
    model = LinkNet(num_classes=4, backbone="mobilenet_v2", backbone_kwargs={"alpha": 0.35}, final_filters=8)
    channels = model.get_layer("mobilenet_v2_backbone").pyramid_channels
    for level, skip in ((4, "C4"), (3, "C3"), (2, "C2"), (1, "C1")):
        block = model.get_layer(f"decoder{level}")
        assert block.filters == channels[skip]
        assert block.bottleneck_filters == channels[f"C{level + 1}"] // 4
    assert model.get_layer("initial_block_pool").strides == (2, 2)


@pytest.mark.slow
def test_camvid_configuration_fits_on_256_crops():
    model = ksp.models.get("linknet", num_classes=12)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=ksp.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[ksp.metrics.MeanIoU(12)],
    )
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(2, 256, 256, 3)).astype("float32")
    labels = rng.integers(0, 12, size=(2, 256, 256)).astype("int32")
    history = model.fit(images, labels, batch_size=2, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][1] < history.history["loss"][0]
