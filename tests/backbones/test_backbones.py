import keras
import numpy as np
import pytest

from keras_sceneparse.backbones import APPLICATIONS, Backbone, list_backbones
from tests.harness import assert_saved_model_roundtrip

SMALL = {"mobilenet_v2": {"alpha": 0.35}}


def pyramid_sizes(backbone, size=64):
    features = backbone(np.zeros((1, size, size, 3), "float32"))
    return {key: tuple(value.shape[1:3]) for key, value in features.items()}


def test_list_backbones_covers_the_required_encoders():
    assert {"vgg16", "resnet50", "resnet101", "mobilenet_v2", "xception"} <= set(list_backbones())


@pytest.mark.parametrize("architecture", ["vgg16", "resnet50", "mobilenet_v2"])
def test_pyramid_strides(architecture):
    backbone = Backbone(architecture, application_kwargs=SMALL.get(architecture))
    assert pyramid_sizes(backbone) == {"C1": (32, 32), "C2": (16, 16), "C3": (8, 8), "C4": (4, 4), "C5": (2, 2)}


def test_xception_pyramid_is_approximately_strided():
    # keras' Xception has a 'valid' stem: maps are input/stride minus a few pixels.
    sizes = pyramid_sizes(Backbone("xception"), size=128)
    assert sizes == {"C1": (61, 61), "C2": (31, 31), "C3": (16, 16), "C4": (8, 8), "C5": (4, 4)}


@pytest.mark.parametrize(
    "architecture,output_stride,expected,largest_rate",
    [
        ("resnet50", 16, {"C3": (8, 8), "C4": (4, 4), "C5": (4, 4)}, 2),
        ("resnet50", 8, {"C3": (8, 8), "C4": (8, 8), "C5": (8, 8)}, 4),
        ("mobilenet_v2", 8, {"C3": (8, 8), "C4": (8, 8), "C5": (8, 8)}, 4),
        # VGG's last convolutions read stride-16 maps; at stride 16 only pool5 changes.
        ("vgg16", 16, {"C3": (8, 8), "C4": (4, 4), "C5": (4, 4)}, 1),
        ("vgg16", 8, {"C3": (8, 8), "C4": (8, 8), "C5": (8, 8)}, 2),
        ("xception", 16, {"C3": (8, 8), "C4": (4, 4), "C5": (4, 4)}, 2),
    ],
)
def test_dilated_backbones_keep_resolution(architecture, output_stride, expected, largest_rate):
    backbone = Backbone(architecture, output_stride=output_stride, application_kwargs=SMALL.get(architecture))
    sizes = pyramid_sizes(backbone)
    assert {key: sizes[key] for key in expected} == expected
    rates = [
        layer.get_config()["dilation_rate"][0] for layer in backbone.layers if "dilation_rate" in layer.get_config()
    ]
    assert max(rates) == largest_rate


def test_dilated_resnet_equals_subsampled_plain_resnet():
    """With the same weights, ResNet (strides on its 1x1 convs) dilated to stride 16 computes the
    plain network's stride-32 features at every other position: the defining property of
    atrous convolution (Chen et al., TPAMI 2018, Sec. 3.1)."""
    plain = Backbone("resnet50")
    dilated = Backbone("resnet50", output_stride=16)
    dilated.set_weights(plain.get_weights())
    images = np.random.default_rng(0).uniform(-1, 1, size=(1, 64, 64, 3)).astype("float32")
    plain_c5 = keras.ops.convert_to_numpy(plain(images)["C5"])
    dilated_c5 = keras.ops.convert_to_numpy(dilated(images)["C5"])
    np.testing.assert_allclose(dilated_c5[:, ::2, ::2], plain_c5, rtol=1e-4, atol=1e-4)
    assert not np.allclose(dilated_c5[:, 1::2, 1::2], plain_c5, atol=1e-4)


def test_dilation_keeps_parameter_count_and_weights():
    plain = Backbone("mobilenet_v2", application_kwargs=SMALL["mobilenet_v2"])
    dilated = Backbone("mobilenet_v2", output_stride=8, application_kwargs=SMALL["mobilenet_v2"])
    assert plain.count_params() == dilated.count_params()


def test_custom_feature_layers_and_unknown_layer():
    backbone = Backbone("vgg16", feature_layers={"pool3": "block3_pool"})
    assert list(backbone.output) == ["pool3"] and backbone.pyramid_channels == {"pool3": 256}
    with pytest.raises(ValueError, match="does not have"):
        Backbone("vgg16", feature_layers={"x": "no_such_layer"})


def test_backbone_argument_errors():
    with pytest.raises(ValueError, match="architecture"):
        Backbone("resnet9")
    with pytest.raises(ValueError, match="output_stride"):
        Backbone("resnet50", output_stride=4)
    with pytest.raises(ValueError, match="weights"):
        Backbone("resnet50", weights="coco")
    with pytest.raises(ValueError, match="channels"):
        Backbone("resnet50", weights="imagenet", input_shape=(None, None, 1))


def test_backbone_round_trips_inside_a_model_and_never_redownloads():
    backbone = Backbone("mobilenet_v2", output_stride=16, application_kwargs=SMALL["mobilenet_v2"])
    assert backbone.get_config()["weights"] is None
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, backbone(inputs)["C5"])
    assert_saved_model_roundtrip(model, np.random.default_rng(0).uniform(size=(1, 32, 32, 3)).astype("float32"))


def test_normalization_names_match_the_applications():
    assert {name: spec.normalization for name, spec in APPLICATIONS.items()}["resnet50"] == "caffe"
    assert Backbone("mobilenet_v2", application_kwargs=SMALL["mobilenet_v2"]).normalization == "tf"


def test_batch_norm_momentum_is_set_and_survives_saving(tmp_path):
    backbone = Backbone("mobilenet_v2", application_kwargs=SMALL["mobilenet_v2"])
    norms = [layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.momentum == 0.9 for layer in norms)
    original = Backbone("mobilenet_v2", application_kwargs=SMALL["mobilenet_v2"], batch_norm_momentum=None)
    assert {layer.momentum for layer in original.layers if isinstance(layer, keras.layers.BatchNormalization)} == {0.999}
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, Backbone("mobilenet_v2", application_kwargs=SMALL["mobilenet_v2"], batch_norm_momentum=0.95)(inputs)["C5"])
    model.save(tmp_path / "b.keras")
    restored = keras.models.load_model(tmp_path / "b.keras")
    inner = [layer for layer in restored.layers if isinstance(layer, Backbone)][0]
    assert {layer.momentum for layer in inner.layers if isinstance(layer, keras.layers.BatchNormalization)} == {0.95}
