import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from tensorflow.python.framework import config as tf_config

import keras_sceneparse as ksp
from keras_sceneparse.layers.pyramid_pooling import PyramidPoolingModule
from keras_sceneparse.models.pspnet import PSPNet
from tests.harness import (
    OTHER_BACKENDS,
    run_model_test,
)

TINY_PSPNET = {
    "backbone": "mobilenet_v2",
    "backbone_kwargs": {"alpha": 0.35},
    "pyramid_filters": 4,
    "head_filters": 8,
    "aux_filters": 4,
}

# Odd sizes, not multiples of the stride; the first case has the auxiliary head (the default).
HARNESS_CASES = [
    ("pspnet", {**TINY_PSPNET, "backbone": "resnet18", "backbone_kwargs": {"base_filters": 8}}, (35, 45, 3), 5, 255),
    pytest.param("pspnet", {**TINY_PSPNET, "aux": False, "output_stride": 16, "bins": (1, 3)}, (33, 29, 3), 2, None, marks=pytest.mark.slow),
]


def calibrate_batch_norm(model, images):
    """Sets every batch norm's moving statistics to those of ``images``.

    With its initial statistics (mean 0, variance 1) a random network maps every image to
    ~0 in inference mode, which would make output comparisons vacuous.
    """
    layers = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    model(images, training=True)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum


@pytest.mark.parametrize("name,kwargs,input_shape,num_classes,ignore_class", HARNESS_CASES)
def test_model_harness(name, kwargs, input_shape, num_classes, ignore_class):
    with_aux = kwargs.get("aux", True) and kwargs.get("auxiliary_loss_weight", 0.4) > 0
    # Both heads learn: the auxiliary loss reaches the auxiliary classifier.
    expect_changed = ("classifier/", "aux_classifier/") if with_aux else ("classifier/",)
    run_model_test(name, kwargs, input_shape, num_classes, ignore_class=ignore_class, expect_changed=expect_changed)


# --- deep supervision (Sec. 4) ---------------------------------------------------------------


def test_loss_is_main_plus_0_4_auxiliary_and_predict_returns_the_main_logits():
    model = PSPNet(num_classes=3, **TINY_PSPNET)
    assert model.auxiliary_loss_weights == {"aux": 0.4}
    loss = ksp.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile("sgd", loss=loss, metrics=[ksp.metrics.MeanIoU(3)])
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, 27, 31, 3)).astype("float32")
    labels = rng.integers(0, 3, (2, 27, 31)).astype("int32")
    calibrate_batch_norm(model, images)

    outputs = model(images, training=False)
    main, aux = float(loss(labels, outputs["logits"])), float(loss(labels, outputs["aux"]))
    result = model.evaluate(images, labels, verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(main + 0.4 * aux, rel=1e-5)
    assert abs(aux - main) > 1e-4  # the two heads differ, so the check can fail
    predicted = model.predict(images, verbose=0)
    assert isinstance(predicted, np.ndarray) and predicted.shape == (2, 27, 31, 3)
    np.testing.assert_allclose(predicted, keras.ops.convert_to_numpy(outputs["logits"]), rtol=1e-3, atol=1e-3)
    # The auxiliary head reads the backbone's C4 (res4b22 in ResNet-101), the pyramid C5.
    backbone = model.get_layer("mobilenet_v2_backbone")
    for layer, level in (("aux_conv", "C4"), ("pyramid_pooling", "C5")):
        history = model.get_layer(layer).input._keras_history
        assert history.operation is backbone
        assert history.tensor_index == sorted(backbone.output).index(level)


@pytest.mark.slow  # the suite's time budget; runs with -m slow
@pytest.mark.parametrize("kwargs", [{"aux": False}, {"auxiliary_loss_weight": 0}])
def test_without_auxiliary_head_the_model_has_one_output(kwargs):
    model = PSPNet(num_classes=3, **{**TINY_PSPNET, **kwargs})
    assert not model.has_auxiliary_outputs and not isinstance(model.output, dict)
    assert "aux_classifier" not in [layer.name for layer in model.layers]
    with_aux = PSPNet(num_classes=3, **TINY_PSPNET)
    aux_layers = [with_aux.get_layer(name) for name in ("aux_conv", "aux_classifier")]
    assert with_aux.count_params() - model.count_params() == sum(layer.count_params() for layer in aux_layers)


def test_auxiliary_weight_is_configurable_and_saved(tmp_path):
    model = PSPNet(num_classes=4, auxiliary_loss_weight=1.0, **TINY_PSPNET)
    assert model.auxiliary_loss_weights == {"aux": 1.0}
    model.save(tmp_path / "pspnet.keras")
    restored = keras.models.load_model(tmp_path / "pspnet.keras")
    assert restored.auxiliary_loss_weights == {"aux": 1.0}
    assert restored.get_config() == model.get_config()


# Loads a saved model under another Keras backend (fixed at import, hence a fresh process);
# imports the PSPNet module itself, so the check does not depend on the package exports.
BACKEND_SCRIPT = """
import sys
import keras
import numpy as np
import keras_sceneparse.models.pspnet
assert keras.backend.backend() == sys.argv[3], keras.backend.backend()
model = keras.models.load_model(sys.argv[1])
images = np.load(sys.argv[2])
np.savez(sys.argv[4], *[keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(model(images))])
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_same_outputs_under_other_backends(backend, tmp_path):
    # keras.ops only: the adaptive pooling's averaging matrices, the pyramid and both heads
    # give TensorFlow's outputs under JAX and PyTorch, for a size the bins do not divide.
    model = PSPNet(num_classes=3, **TINY_PSPNET)
    images = np.random.default_rng(1).uniform(0, 255, (2, 37, 29, 3)).astype("float32")
    calibrate_batch_norm(model, images)
    expected = [keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(model(images))]
    assert min(np.std(value) for value in expected) > 0.1
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "images.npy", images)
    environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"}
    process = subprocess.run(
        [sys.executable, "-c", BACKEND_SCRIPT, str(tmp_path / "model.keras"), str(tmp_path / "images.npy"), backend,
         str(tmp_path / "outputs.npz")],
        capture_output=True, text=True, env=environment, cwd=str(Path(__file__).resolve().parents[2]), timeout=300,
        check=False,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    outputs = np.load(tmp_path / "outputs.npz")
    assert len(outputs.files) == len(expected) == 2
    for index, value in enumerate(expected):
        np.testing.assert_allclose(outputs[f"arr_{index}"], value, rtol=1e-3, atol=1e-4)


# --- structure (Sec. 3.3, Fig. 3) ------------------------------------------------------------


@pytest.mark.slow  # the suite's time budget; runs with -m slow
def test_structure_follows_the_paper():
    model = PSPNet(num_classes=150, backbone="mobilenet_v2", backbone_kwargs={"alpha": 0.35})
    pyramid = model.get_layer("pyramid_pooling")
    assert isinstance(pyramid, PyramidPoolingModule)
    assert pyramid.bins == (1, 2, 3, 6)
    channels = model.get_layer("mobilenet_v2_backbone").pyramid_channels["C5"]
    assert [conv.filters for conv in pyramid.convs] == [channels // 4] * 4  # C / N
    assert pyramid.output.shape[-1] == 2 * channels
    head = model.get_layer("head_conv")
    assert (head.filters, head.kernel_size, head.use_batch_norm) == (512, 3, True)
    aux = model.get_layer("aux_conv")
    assert (aux.filters, aux.kernel_size) == (256, 3)
    assert model.get_layer("head_dropout").rate == model.get_layer("aux_dropout").rate == 0.1
    assert model.get_layer("classifier").kernel.shape == (1, 1, 512, 150)
    # Output stride 8: the pyramid works on maps of 1/8 of the input.
    features, logits = model.feature_model()(np.zeros((1, 64, 48, 3), "float32"))
    assert features.shape == (1, 8, 6, 512) and logits.shape == (1, 64, 48, 150)
    os16 = PSPNet(num_classes=3, output_stride=16, **TINY_PSPNET)
    assert os16.feature_model()(np.zeros((1, 64, 48, 3), "float32"))[0].shape == (1, 4, 3, 8)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="output_stride"):
        PSPNet(num_classes=3, output_stride=32, **TINY_PSPNET)
    with pytest.raises(ValueError, match="backbone"):
        PSPNet(num_classes=3, backbone="resnet7")
    with pytest.raises(ValueError, match="bins"):
        PSPNet(num_classes=3, **{**TINY_PSPNET, "bins": (1, 0)})
    with pytest.raises(ValueError, match="auxiliary_loss_weight"):
        PSPNet(num_classes=3, auxiliary_loss_weight=-1, **TINY_PSPNET)
    with pytest.raises(ValueError, match="num_classes"):
        PSPNet(num_classes=1, **TINY_PSPNET)


# --- parameter counts (built, never run) ----------------------------------------------------


def folded_count(model, exclude=()):
    """Weights once each batch norm (and the bias before it) is folded into one bias per
    channel, as in an exported inference graph: kernels plus one bias per output channel."""
    return sum(
        int(np.prod(w.shape)) + w.shape[-1]
        for w in model.weights
        if w.path.endswith("kernel") and not w.path.startswith(exclude)
    )


@pytest.fixture(scope="module")
def resnet50_pspnet():
    return PSPNet(num_classes=21, backbone="resnet50")


def test_resnet50_parameter_count_and_published_figure(resnet50_pspnet):
    model = resnet50_pspnet
    assert model.count_params() == 49_043_114
    aux = sum(model.get_layer(name).count_params() for name in ("aux_conv", "aux_classifier"))
    assert model.count_params() - aux == 46_677_397
    # Decomposition: keras ResNet-50, pyramid (C/4 = 512 per level, no conv bias), 3x3 head
    # conv on 4096 channels, classifier; each batch norm holds 4 values per channel.
    backbone = model.get_layer("resnet50_backbone").count_params()
    assert backbone == 23_587_712
    head = 4 * (2048 * 512 + 4 * 512) + (9 * 4096 * 512 + 4 * 512) + (512 * 21 + 21)
    assert backbone + head == 46_677_397
    # mmsegmentation's PSPNet R-50-D8, 21 classes, exported for OpenVINO: 46.5827 M with
    # batch norms folded. Ours, counted the same way, differs by the stem only.
    ours = folded_count(model, exclude=("aux_",))
    assert ours == 46_563_477
    deep_stem_difference = (3 * 3 * 3 * 32 + 3 * 3 * 32 * 32 + 3 * 3 * 32 * 64 - 7 * 7 * 3 * 64) + (32 + 32 + 64 - 64)
    assert abs(ours + deep_stem_difference - 46.5827e6) < 100
    assert abs(ours - 46.5827e6) / 46.5827e6 < 0.001


def test_resnet50_dilation_gives_output_stride_8(resnet50_pspnet):
    # Pyramid on conv5's 2048 channels, auxiliary head on conv4's 1024 (res4b22's stage).
    assert resnet50_pspnet.get_layer("pyramid_pooling").input.shape[-1] == 2048
    assert resnet50_pspnet.get_layer("aux_conv").input.shape[-1] == 1024
    backbone = resnet50_pspnet.get_layer("resnet50_backbone")
    # Stages 4 and 5 keep stride 8 and dilate their 3x3 convolutions by 2 and 4 (Sec. 3.3, [3, 40]).
    assert backbone.get_layer("conv4_block1_1_conv").strides == (1, 1)
    assert backbone.get_layer("conv5_block1_1_conv").strides == (1, 1)
    assert backbone.get_layer("conv4_block6_2_conv").dilation_rate == (2, 2)
    assert backbone.get_layer("conv5_block3_2_conv").dilation_rate == (4, 4)
    assert backbone.get_layer("conv3_block4_2_conv").dilation_rate == (1, 1)


@pytest.mark.slow
@pytest.mark.parametrize(
    "backbone,num_classes,with_aux,without_aux",
    [
        ("resnet50", 150, 49_142_444, 46_743_574),
        ("resnet101", 150, 68_212_908, 65_814_038),
        ("resnet101", 21, 68_113_578, 65_747_861),
    ],
)
def test_parameter_counts(backbone, num_classes, with_aux, without_aux):
    assert PSPNet(num_classes=num_classes, backbone=backbone).count_params() == with_aux
    assert PSPNet(num_classes=num_classes, backbone=backbone, aux=False).count_params() == without_aux


# --- training as the CamVid benchmark does --------------------------------------------------


@pytest.mark.slow
def test_trains_with_the_command_line(tmp_path):
    from keras_sceneparse import data
    from keras_sceneparse.cli import main

    data.write_sample_dataset(tmp_path / "data", num_train=4, num_val=2, size=(40, 56), seed=0)
    argv = [
        "train", "--model", "pspnet", "--backbone", "mobilenet_v2",
        "--model-arg", 'backbone_kwargs={"alpha": 0.35}', "--model-arg", "head_filters=8",
        "--model-arg", "aux_filters=4", "--model-arg", "pyramid_filters=4",
        "--dataset", "folder", "--data-dir", str(tmp_path / "data"), "--num-classes", "4",
        "--epochs", "1", "--batch-size", "2", "--image-size", "32", "32", "--verbose", "0",
        "--output", str(tmp_path / "run"),
    ]
    determinism = tf_config.is_op_determinism_enabled()
    try:
        assert main(argv) == 0
    finally:
        if not determinism:
            tf_config.disable_op_determinism()
    restored = keras.models.load_model(tmp_path / "run" / "model.keras", compile=False)
    assert isinstance(restored, PSPNet) and restored.auxiliary_loss_weights == {"aux": 0.4}
    assert restored.predict(np.zeros((1, 40, 56, 3), "float32"), verbose=0).shape == (1, 40, 56, 4)
