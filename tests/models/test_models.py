import importlib
from pathlib import Path

import keras
import numpy as np
import pytest

import keras_sceneparse as ksp
from keras_sceneparse.models import SegmentationModel
from tests.counting import trainable_count
from tests.harness import run_model_test, unknown_size_dataset

TINY_DEEPLAB = {
    "backbone": "mobilenet_v2",
    "backbone_kwargs": {"alpha": 0.35},
    "aspp_filters": 8,
    "low_level_filters": 4,
    "decoder_filters": 8,
}

# One entry per registered model: small widths, odd image sizes (not multiples of the stride).
HARNESS_CASES = [
    ("unet", {"base_filters": 4, "padding": "same"}, (30, 44, 3), 3, None),
    ("unet", {"base_filters": 2, "input_shape": (None, None, 1)}, (110, 116, 1), 2, None),
    ("segnet", {}, (27, 35, 3), 4, 3),
    ("fcn8s", {"fc_filters": 8}, (37, 45, 3), 3, None),
    ("fcn16s", {"fc_filters": 8}, (33, 40, 3), 3, None),
    ("fcn32s", {"fc_filters": 8}, (33, 40, 3), 3, None),
    ("deeplab_largefov", {"fc_filters": 8}, (35, 45, 3), 3, None),
    ("deeplabv3plus", TINY_DEEPLAB, (35, 45, 3), 5, 255),
    ("deeplabv3plus", {**TINY_DEEPLAB, "output_stride": 8, "separable": False}, (32, 32, 3), 2, None),
]


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    # U-Net and DeepLabV3+ (output stride 16) also fit in a compiled graph with unknown sizes
    # in the default suite (tests/models/test_graph_fit.py does it for every model, slow).
    graph_fit = name == "unet" or (name == "deeplabv3plus" and kwargs.get("output_stride", 16) == 16)
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class, graph_fit=graph_fit)


def test_every_registered_architecture_has_a_harness_entry():
    # Each architecture's test module under tests/models/ lists its own HARNESS_CASES. Names
    # that register one class with other defaults (segformer_b0..b5, fcn8s/16s/32s) share
    # its entries: the harness builds them at test widths, where the defaults are overridden.
    names = set()
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        module = importlib.import_module(f"tests.models.{path.stem}")
        cases = getattr(module, "HARNESS_CASES", ())
        # Only entries that run by default count (a pytest.param marked slow does not).
        names |= {case[0] for case in cases if not hasattr(case, "marks")}
    assert names <= set(ksp.models.list_models())
    covered = {ksp.models.model_class(name)[0] for name in names}
    missing = [name for name in ksp.models.list_models() if ksp.models.model_class(name)[0] not in covered]
    assert not missing, f"no harness entry for {missing}"


# --- parameter counts of the papers' configurations (built, never run) ---------------------

def conv_params(kernel, c_in, c_out, bias=True):
    return kernel * kernel * c_in * c_out + (c_out if bias else 0)


def test_unet_parameter_count_derived_from_the_paper_figure():
    # Fig. 1: 2x(3x3 conv) per level, 64..1024 channels, 2x2 up-convs, final 1x1 to 2 classes.
    expected, c_in = 0, 1
    for level in range(4):
        width = 64 * 2**level
        expected += conv_params(3, c_in, width) + conv_params(3, width, width)
        c_in = width
    expected += conv_params(3, 512, 1024) + conv_params(3, 1024, 1024)
    for level in reversed(range(4)):
        width = 64 * 2**level
        expected += conv_params(2, width * 2, width)  # up-convolution
        expected += conv_params(3, width * 2, width) + conv_params(3, width, width)
    expected += conv_params(1, 64, 2)
    model = ksp.models.get("unet", num_classes=2, input_shape=(572, 572, 1))
    assert model.count_params() == expected == 31_030_658
    # 23 convolutional layers (Sec. 2).
    convs = [l for l in model.layers if isinstance(l, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))]
    assert len(convs) == 23


def test_unet_valid_tile_geometry_matches_figure_1():
    model = ksp.models.get("unet", num_classes=2, input_shape=(388, 388, 1), base_filters=2)
    assert tuple(model.get_layer("overlap_tile_padding").output.shape[1:3]) == (572, 572)
    assert tuple(model.get_layer("classifier").output.shape[1:3]) == (388, 388)


def test_fcn_parameter_counts_match_the_paper():
    # Long et al., Table 1: FCN-VGG16 has 134M parameters.
    for name in ("fcn32s", "fcn8s"):
        model = ksp.models.get(name, num_classes=21)
        assert abs(trainable_count(model) - 134e6) / 134e6 < 0.01, (name, trainable_count(model))
    vgg_convs = 14_714_688
    fc = conv_params(7, 512, 4096) + conv_params(1, 4096, 4096) + conv_params(1, 4096, 21)
    skips = conv_params(1, 512, 21) + conv_params(1, 256, 21) + 2 * 4 * 4 * 21 * 21
    assert trainable_count(model) == vgg_convs + fc + skips


def test_segnet_parameter_count_matches_the_paper():
    model = ksp.models.get("segnet", num_classes=11)
    encoder = sum(
        int(np.prod(w.shape))
        for layer in model.layers
        if layer.name.startswith("conv") and not layer.name.endswith("_D")
        for w in layer.trainable_weights
    )
    # Sec. 3: the encoder has 14.7M parameters.
    assert abs(encoder - 14.7e6) / 14.7e6 < 0.01
    assert trainable_count(model) == 29_441_419


def test_deeplab_largefov_parameter_count_matches_the_paper():
    # Chen et al. 2015, Table 2: DeepLab-CRF-LargeFOV has 20.5M parameters.
    model = ksp.models.get("deeplab_largefov", num_classes=21)
    expected = 14_714_688 + conv_params(3, 512, 1024) + conv_params(1, 1024, 1024) + conv_params(1, 1024, 21)
    assert model.count_params() == expected
    assert abs(expected - 20.5e6) / 20.5e6 < 0.01
    assert model.get_layer("fc6").get_config()["dilation_rate"] == (12, 12)
    # Output stride 8: pool4/pool5 at stride 1 (3x3, as in DeepLab), conv5 dilated by 2.
    vgg = model.get_layer("vgg16")
    assert vgg.get_layer("block5_conv1").get_config()["dilation_rate"] == (2, 2)
    assert vgg.get_layer("block5_pool").get_config()["pool_size"] == (3, 3)


@pytest.mark.parametrize("name", ["unet", "segnet", "fcn8s", "deeplab_largefov", "deeplabv3plus"])
def test_feature_model_exposes_the_last_features(name):
    kwargs = {"deeplabv3plus": TINY_DEEPLAB, "unet": {"base_filters": 2, "padding": "same"}}.get(name, {})
    if name in ("fcn8s", "deeplab_largefov"):
        kwargs = {"fc_filters": 8}
    model = ksp.models.get(name, num_classes=3, **kwargs)
    features, logits = model.feature_model()(np.zeros((1, 32, 32, 3), "float32"))
    assert logits.shape == (1, 32, 32, 3) and len(features.shape) == 4


@pytest.mark.parametrize(
    "backbone,expected",
    [("resnet50", 40_436_053), ("resnet101", 59_506_517), ("xception", 24_067_181), ("mobilenet_v2", 4_445_317)],
)
def test_deeplabv3plus_parameter_counts(backbone, expected):
    assert ksp.models.get("deeplabv3plus", num_classes=21, backbone=backbone).count_params() == expected


def test_deeplabv3plus_structure_follows_the_paper():
    model = ksp.models.get("deeplabv3plus", num_classes=21, backbone="resnet50")
    aspp = model.get_layer("aspp")
    assert aspp.atrous_rates == (6, 12, 18) and aspp.filters == 256 and not aspp.separable
    assert model.get_layer("low_level_projection").filters == 48
    assert model.get_layer("decoder_conv1").filters == 256
    os8 = ksp.models.get("deeplabv3plus", num_classes=21, output_stride=8, **TINY_DEEPLAB)
    assert os8.get_layer("aspp").atrous_rates == (12, 24, 36)
    # Output stride 32 (keras-hub's preset): the undilated backbone, rates halved.
    os32 = ksp.models.get("deeplabv3plus", num_classes=21, output_stride=32, **TINY_DEEPLAB)
    assert os32.get_layer("aspp").atrous_rates == (3, 6, 9)
    assert os32.get_layer("mobilenet_v2_backbone").output_stride == 32
    assert ksp.models.get("deeplabv3plus", num_classes=2, backbone="xception").get_layer("aspp").separable


# --- registry and argument errors ------------------------------------------------------------


def test_registry_errors_are_clear():
    with pytest.raises(ValueError, match="Did you mean 'unet'"):
        ksp.models.get("unte", num_classes=2)
    with pytest.raises(TypeError, match="unexpected argument"):
        ksp.models.get("unet", num_classes=2, filters=3)
    with pytest.raises(ValueError, match="num_classes"):
        ksp.models.get("unet", num_classes=1)
    with pytest.raises(TypeError, match="num_classes"):
        ksp.models.get("unet", num_classes=2.5)
    with pytest.raises(ValueError, match="3 entries"):
        ksp.models.get("unet", num_classes=2, input_shape=(32, 32))
    with pytest.raises(ValueError, match="at least 108"):
        ksp.models.get("unet", num_classes=2, input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="channels"):
        ksp.models.get("segnet", num_classes=2, input_shape=(None, None, 1), weights="imagenet")
    assert "Ronneberger" in ksp.models.describe("unet") or "U-Net" in ksp.models.describe("unet")


def test_issue_example_trains_saves_and_loads(tmp_path):
    model = ksp.models.get("unet", num_classes=12, input_shape=(None, None, 3), base_filters=2)
    model.compile(
        "adam",
        loss=ksp.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=11),
        metrics=[ksp.metrics.MeanIoU(num_classes=12, ignore_class=11)],
    )
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, 112, 112, 3)).astype("float32")
    labels = rng.integers(0, 12, (2, 112, 112)).astype("int32")
    model.fit(images, labels, epochs=1, verbose=0)
    model.save(tmp_path / "unet.keras")
    restored = keras.models.load_model(tmp_path / "unet.keras")
    np.testing.assert_allclose(restored.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)
    # Loaded with its compiled loss and metric, ready to continue training.
    assert restored.evaluate(images, labels, verbose=0, return_dict=True)["mean_iou"] >= 0.0


# --- deep supervision ---------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="keras_sceneparse_tests")
class TwoHeadModel(SegmentationModel):
    def __init__(self, num_classes=3, **kwargs):
        inputs = keras.Input((None, None, 3))
        x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
        main = keras.layers.Conv2D(num_classes, 1, name="main_head")(x)
        coarse = keras.layers.AveragePooling2D(2)(x)
        aux = keras.layers.Conv2D(num_classes, 1, name="aux_head")(coarse)
        super().__init__(
            inputs=inputs, outputs={"logits": main, "aux": aux}, auxiliary_loss_weights={"aux": 0.4}, **kwargs
        )
        self.num_classes = num_classes

    def get_config(self):
        return {"name": self.name, "num_classes": self.num_classes}


def test_auxiliary_outputs_are_weighted_into_the_loss_and_dropped_for_inference():
    model = TwoHeadModel()
    loss = ksp.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("sgd", loss=loss, metrics=[ksp.metrics.MeanIoU(3)])
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (2, 8, 8, 3)).astype("float32")
    labels = rng.integers(0, 3, (2, 8, 8)).astype("int32")

    outputs = model(images)
    # Nearest-neighbour downsampling with half-pixel centres picks the odd rows and columns.
    coarse_labels = labels[:, 1::2, 1::2]
    expected = float(loss(labels, outputs["logits"])) + 0.4 * float(loss(coarse_labels, outputs["aux"]))
    result = model.evaluate(images, labels, verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(expected, rel=1e-5)
    assert result["mean_iou"] == pytest.approx(
        ksp.metrics.segmentation_scores(labels, outputs["logits"], 3)["mean_iou"], rel=1e-5
    )
    assert model.predict(images, verbose=0).shape == (2, 8, 8, 3)
    history = model.fit(images, labels, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    # Sizes unknown until run time (as from padded tf.data batches): labels resized in-graph.
    unknown = unknown_size_dataset(images, labels)
    assert np.isfinite(model.fit(unknown, verbose=0).history["loss"][0])


def test_auxiliary_weights_must_name_outputs():
    with pytest.raises(ValueError, match="auxiliary outputs must return a dict"):
        inputs = keras.Input((None, None, 3))
        SegmentationModel(inputs=inputs, outputs=keras.layers.Conv2D(2, 1)(inputs), auxiliary_loss_weights={"aux": 1})


def test_mixed_precision_models_reload_with_their_policy(tmp_path):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = ksp.models.get("unet", num_classes=3, base_filters=2, padding="same")
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.get_layer("classifier").dtype_policy.name == "mixed_float16"
    model.save(tmp_path / "mixed.keras")
    restored = keras.models.load_model(tmp_path / "mixed.keras")
    assert restored.get_layer("classifier").dtype_policy.name == "mixed_float16"
    assert keras.config.dtype_policy().name == previous.name
    images = np.random.default_rng(0).uniform(0, 255, (1, 16, 16, 3)).astype("float32")
    assert restored.predict(images, verbose=0).dtype == np.float32  # logits stay float32
