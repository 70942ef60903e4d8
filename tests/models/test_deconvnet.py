import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.models.deconvnet import DECODER_BLOCKS, DeconvNet
from tests.counting import trainable_count
from tests.harness import run_model_test

TINY = {"base_filters": 4, "fc_filters": 8}

# The network runs on a 224x224 window; odd image sizes are resized to it and back.
HARNESS_CASES = [
    ("deconvnet", TINY, (37, 45, 3), 3, None),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class)

def expected_trainable(base, fc, classes):
    """Table 1 counted by hand: bias-free (de)convolutions, each with BN scale and offset."""
    scale = base / 64
    encoder = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
               (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    decoder = [(512, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 256), (256, 256), (256, 256),
               (256, 128), (128, 128), (128, 64), (64, 64), (64, 64)]
    total = 0
    for c_in, c_out in encoder + decoder:
        c_in = c_in if c_in == 3 else int(c_in * scale)
        c_out = int(c_out * scale)
        total += 9 * c_in * c_out + 2 * c_out
    top = int(512 * scale)
    total += 49 * top * fc + 2 * fc  # fc6: 7x7 on pool5
    total += fc * fc + 2 * fc  # fc7
    total += 49 * fc * top + 2 * top  # deconv-fc6
    total += int(64 * scale) * classes + classes  # 1x1 score
    return total


def test_parameter_count_formula_on_a_small_configuration():
    model = DeconvNet(num_classes=5, base_filters=8, fc_filters=32)
    assert trainable_count(model) == expected_trainable(8, 32, 5)


@pytest.mark.slow
def test_paper_parameter_count():
    # Sec. 3.3: "252M parameters" for the 21 PASCAL classes.
    model = ksp.models.get("deconvnet", num_classes=21)
    assert trainable_count(model) == expected_trainable(64, 4096, 21) == 251_788_949
    assert abs(trainable_count(model) - 252e6) / 252e6 < 0.01
    assert model.count_params() == 251_822_357  # plus 2 x 16,704 batch-norm moving statistics


def test_structure_follows_table_1():
    model = DeconvNet(num_classes=3, **TINY)
    # The network proper runs on 224x224: pool5 is 7x7, fc6 (7x7 valid) 1x1, deconv-fc6 7x7.
    assert tuple(model.get_layer("pool5").output[0].shape[1:3]) == (7, 7)
    assert tuple(model.get_layer("fc6").output.shape[1:3]) == (1, 1)
    assert model.get_layer("fc6").kernel_size == (7, 7) and model.get_layer("fc6").padding == "valid"
    assert tuple(model.get_layer("deconv_fc6").output.shape[1:3]) == (7, 7)
    assert isinstance(model.get_layer("deconv_fc6"), keras.layers.Conv2DTranspose)
    # Each unpooling uses the switches of the pooling at the same depth.
    for block in range(1, 6):
        unpool = model.get_layer(f"unpool{block}")
        sources = {t._keras_history.operation.name for t in unpool._inbound_nodes[0].input_tensors}
        assert f"pool{block}" in sources
        assert tuple(unpool.output.shape[1:3]) == (224 >> (block - 1),) * 2
    widths = [[model.get_layer(f"deconv{b}_{i}").filters for i in range(1, len(w) + 1)]
              for b, w in zip(range(5, 0, -1), DECODER_BLOCKS)]
    assert widths == [[w * 4 // 64 for w in block] for block in DECODER_BLOCKS]
    assert DECODER_BLOCKS == ((512, 512, 512), (512, 512, 256), (256, 256, 128), (128, 64), (64, 64))
    # Sec. 4.1: batch normalisation after every convolution and deconvolution.
    names = {layer.name for layer in model.layers}
    for block, widths in zip(range(5, 0, -1), DECODER_BLOCKS):
        for index in range(1, len(widths) + 1):
            assert f"deconv{block}_{index}_bn" in names
    assert {"fc6_bn", "deconv_fc6_bn"} <= names


def test_any_image_size_is_resized_through_the_224_window():
    model = DeconvNet(num_classes=2, **TINY)
    rng = np.random.default_rng(0)
    for size in ((224, 224), (61, 90)):
        images = rng.uniform(0, 255, size=(1, *size, 3)).astype("float32")
        assert tuple(model(images).shape) == (1, *size, 2)


def test_imagenet_weights_need_full_width():
    with pytest.raises(ValueError, match="base_filters"):
        DeconvNet(num_classes=3, weights="imagenet", base_filters=8)


def test_default_call_is_inference_and_224_windows_are_not_resampled():
    model = DeconvNet(num_classes=2, **TINY)
    images = np.random.default_rng(1).uniform(0, 255, size=(2, 224, 224, 3)).astype("float32")
    default = keras.ops.convert_to_numpy(model(images))
    np.testing.assert_allclose(default, keras.ops.convert_to_numpy(model(images, training=False)), atol=1e-6)
    assert not np.allclose(default, keras.ops.convert_to_numpy(model(images, training=True)), atol=1e-3)
    window = model.get_layer("window_resizing")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(window(images)), images)
