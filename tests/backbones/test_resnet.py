import keras
import numpy as np
import pytest

from keras_sceneparse.backbones import APPLICATIONS, Backbone
from keras_sceneparse.backbones.resnet import ResNet18, ResNet34
from tests.counting import trainable_count
from tests.harness import assert_saved_model_roundtrip

NARROW = {"base_filters": 8}
# torchvision's published parameter counts and the 512 x 1000 + 1000 of its `fc` layer.
TORCHVISION_PARAMETERS = {"resnet18": 11_689_512, "resnet34": 21_797_672}
FC_PARAMETERS = 512 * 1000 + 1000

def basic_resnet_parameters(blocks_per_stage, classes=None):
    """Parameters of He et al.'s Table 1 network, layer by layer: bias-free convolutions,
    batch norm scale and offset, 1x1 projections where a stage starts (option B)."""
    total = 7 * 7 * 3 * 64 + 2 * 64
    channels = 64
    for stage, blocks in enumerate(blocks_per_stage):
        width = 64 * 2**stage
        for block in range(blocks):
            total += 9 * channels * width + 2 * width + 9 * width * width + 2 * width
            if channels != width:
                total += channels * width + 2 * width
            channels = width
    return total + (512 * classes + classes if classes else 0)


@pytest.mark.parametrize(
    "architecture,builder,blocks", [("resnet18", ResNet18, (2, 2, 2, 2)), ("resnet34", ResNet34, (3, 4, 6, 3))]
)
def test_parameter_counts_equal_torchvision(architecture, builder, blocks):
    expected = TORCHVISION_PARAMETERS[architecture] - FC_PARAMETERS
    assert basic_resnet_parameters(blocks) == expected
    assert basic_resnet_parameters(blocks, classes=1000) == TORCHVISION_PARAMETERS[architecture]
    assert trainable_count(builder(include_top=False, input_shape=(224, 224, 3))) == expected
    assert trainable_count(builder(include_top=True, input_shape=(224, 224, 3))) == TORCHVISION_PARAMETERS[architecture]
    assert trainable_count(Backbone(architecture)) == expected


def test_parameter_count_figures():
    assert TORCHVISION_PARAMETERS["resnet18"] - FC_PARAMETERS == 11_176_512
    assert TORCHVISION_PARAMETERS["resnet34"] - FC_PARAMETERS == 21_284_672


def test_table_1_layout_and_keras_application_names():
    model = ResNet34(include_top=False)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    # 1 + 2 x (3 + 4 + 6 + 3) = 33 convolutions, plus 3 projection shortcuts; none has a bias.
    assert len([c for c in convs if not c.name.endswith("_0_conv")]) == 33
    assert sorted(c.name for c in convs if c.name.endswith("_0_conv")) == [
        "conv3_block1_0_conv", "conv4_block1_0_conv", "conv5_block1_0_conv"
    ]
    assert not any(c.use_bias for c in convs)
    for name in ("conv1_conv", "conv1_bn", "conv1_relu", "pool1_pool", "conv2_block1_1_conv", "conv2_block3_out",
                 "conv5_block3_out", "conv4_block6_2_bn", "conv3_block1_0_bn", "conv5_block1_add"):
        model.get_layer(name)
    assert model.get_layer("conv1_conv").kernel.shape == (7, 7, 3, 64)
    assert model.get_layer("conv3_block1_1_conv").strides == (2, 2)
    assert model.get_layer("conv3_block1_0_conv").kernel.shape == (1, 1, 64, 128)
    assert model.get_layer("conv2_block1_1_conv").strides == (1, 1)


@pytest.mark.parametrize("architecture", ["resnet18", "resnet34"])
def test_pyramid_strides_and_channels(architecture):
    backbone = Backbone(architecture, application_kwargs=NARROW)
    features = backbone(np.zeros((1, 64, 64, 3), "float32"))
    assert {key: tuple(value.shape[1:]) for key, value in features.items()} == {
        "C1": (32, 32, 8), "C2": (16, 16, 8), "C3": (8, 8, 16), "C4": (4, 4, 32), "C5": (2, 2, 64)
    }
    assert Backbone(architecture).pyramid_channels == {"C1": 64, "C2": 64, "C3": 128, "C4": 256, "C5": 512}


def test_odd_sizes_round_up_like_torchvision():
    # Padding 3 / 1 on both sides: each stride-2 layer gives ceil(size / 2), as in PyTorch.
    features = Backbone("resnet18", application_kwargs=NARROW)(np.zeros((1, 45, 37, 3), "float32"))
    assert [tuple(features[key].shape[1:3]) for key in ("C1", "C2", "C3", "C4", "C5")] == [
        (23, 19), (12, 10), (6, 5), (3, 3), (2, 2)
    ]


@pytest.mark.parametrize(
    "architecture,output_stride,c5_size,rates",
    [
        # torchvision's replace_stride_with_dilation=[False, False, True]: conv5_x at rate 2
        # except the first convolution, which only loses its stride.
        ("resnet18", 16, (4, 4), {"conv5_block1_1_conv": 1, "conv5_block1_2_conv": 2, "conv5_block2_1_conv": 2,
                                  "conv4_block2_2_conv": 1}),
        # [False, True, True]: conv4_x at rate 2, conv5_x at 4 (its first convolution at 2).
        ("resnet18", 8, (8, 8), {"conv4_block1_1_conv": 1, "conv4_block1_2_conv": 2, "conv4_block2_2_conv": 2,
                                 "conv5_block1_1_conv": 2, "conv5_block1_2_conv": 4, "conv5_block2_2_conv": 4}),
        ("resnet34", 8, (8, 8), {"conv4_block6_2_conv": 2, "conv5_block1_1_conv": 2, "conv5_block3_2_conv": 4}),
    ],
)
def test_dilated_output_strides(architecture, output_stride, c5_size, rates):
    backbone = Backbone(architecture, output_stride=output_stride, application_kwargs=NARROW)
    features = backbone(np.zeros((1, 64, 64, 3), "float32"))
    assert tuple(features["C5"].shape[1:3]) == c5_size
    assert tuple(features["C3"].shape[1:3]) == (8, 8)
    for name, rate in rates.items():
        assert backbone.get_layer(name).dilation_rate == (rate, rate), name
    strided = {layer.name.split("_")[0] for layer in backbone.layers if getattr(layer, "strides", (1, 1)) == (2, 2)}
    assert strided == ({"conv1", "pool1", "conv3"} | ({"conv4"} if output_stride == 16 else set()))
    assert trainable_count(backbone) == trainable_count(Backbone(architecture, application_kwargs=NARROW))


def test_dilated_resnet18_equals_subsampled_plain_resnet18():
    """Same weights: the stride-16 network computes the stride-32 features at every other
    position (Chen et al., TPAMI 2018, Sec. 3.1), padding included."""
    plain = Backbone("resnet18", application_kwargs=NARROW)
    dilated = Backbone("resnet18", output_stride=16, application_kwargs=NARROW)
    dilated.set_weights(plain.get_weights())
    images = np.random.default_rng(0).uniform(-1, 1, size=(1, 64, 64, 3)).astype("float32")
    plain_c5 = keras.ops.convert_to_numpy(plain(images)["C5"])
    dilated_c5 = keras.ops.convert_to_numpy(dilated(images)["C5"])
    np.testing.assert_allclose(dilated_c5[:, ::2, ::2], plain_c5, rtol=1e-4, atol=1e-4)
    assert not np.allclose(dilated_c5[:, 1::2, 1::2], plain_c5, atol=1e-4)


def test_imagenet_weights_raise_a_clear_error():
    for architecture, depth in (("resnet18", 18), ("resnet34", 34)):
        with pytest.raises(ValueError, match=f"no ImageNet weights are available for ResNet-{depth}"):
            Backbone(architecture, weights="imagenet")
    with pytest.raises(ValueError, match="weights"):
        ResNet18(weights="coco")
    with pytest.raises(ValueError, match="base_filters"):
        ResNet18(base_filters=0)


def test_normalization_is_torchvisions():
    assert APPLICATIONS["resnet18"].normalization == APPLICATIONS["resnet34"].normalization == "imagenet"
    # The existing entries are untouched.
    assert APPLICATIONS["resnet50"].normalization == "caffe" and APPLICATIONS["resnet50"].builder is None


def test_top_and_pooling_options():
    model = ResNet18(include_top=True, classes=10, base_filters=8, input_shape=(32, 32, 3))
    assert model.output.shape == (None, 10)
    assert ResNet18(include_top=False, pooling="avg", base_filters=8).output.shape == (None, 64)
    inputs = keras.Input((40, 40, 3))
    assert ResNet18(include_top=False, input_tensor=inputs, base_filters=8).output.shape == (None, 2, 2, 64)


def test_round_trips_inside_a_model():
    backbone = Backbone("resnet18", output_stride=16, application_kwargs=NARROW)
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, backbone(inputs)["C5"])
    images = np.random.default_rng(0).uniform(size=(1, 35, 41, 3)).astype("float32")
    assert_saved_model_roundtrip(model, images, atol=1e-5)


def test_matches_a_pytorch_resnet18_with_the_same_weights():
    """The torchvision layout, padding included: an independent PyTorch ResNet-18 with the
    same (random) weights gives the same pyramid on an odd-sized image."""
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.downsample = None
            if stride != 1 or c_in != c_out:
                self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

        def forward(self, x):
            y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            return torch.relu(y + (x if self.downsample is None else self.downsample(x)))

    width = NARROW["base_filters"]
    stem = nn.ModuleDict({"conv": nn.Conv2d(3, width, 7, 2, 3, bias=False), "bn": nn.BatchNorm2d(width)})
    stages, c_in = [], width
    for stage in range(4):
        c_out = width * 2**stage
        stages.append([Block(c_in, c_out, 2 if stage else 1), Block(c_out, c_out, 1)])
        c_in = c_out

    rng = np.random.default_rng(0)
    backbone = Backbone("resnet18", application_kwargs=NARROW)

    def copy(conv, bn, prefix):
        fan_in = int(np.prod(conv.weight.shape[1:]))
        kernel = rng.normal(0, np.sqrt(2 / fan_in), size=conv.weight.shape).astype("float32")
        stats = [rng.uniform(0.5, 1.5, bn.num_features), rng.normal(0, 0.1, bn.num_features),
                 rng.normal(0, 0.1, bn.num_features), rng.uniform(0.5, 1.5, bn.num_features)]
        stats = [s.astype("float32") for s in stats]
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(kernel))
            for tensor, value in zip((bn.weight, bn.bias, bn.running_mean, bn.running_var), stats):
                tensor.copy_(torch.from_numpy(value))
        backbone.get_layer(f"{prefix}_conv").set_weights([kernel.transpose(2, 3, 1, 0)])
        backbone.get_layer(f"{prefix}_bn").set_weights(stats)

    copy(stem["conv"], stem["bn"], "conv1")
    for stage, blocks in enumerate(stages):
        for index, block in enumerate(blocks):
            name = f"conv{stage + 2}_block{index + 1}"
            copy(block.conv1, block.bn1, f"{name}_1")
            copy(block.conv2, block.bn2, f"{name}_2")
            if block.downsample is not None:
                copy(block.downsample[0], block.downsample[1], f"{name}_0")

    images = rng.uniform(-1, 1, size=(1, 45, 37, 3)).astype("float32")
    with torch.no_grad():
        for module in [stem["bn"], *(m for blocks in stages for b in blocks for m in b.modules())]:
            module.eval()
        x = torch.from_numpy(images.transpose(0, 3, 1, 2))
        c1 = torch.relu(stem["bn"](stem["conv"](x)))
        x = nn.functional.max_pool2d(c1, 3, 2, 1)
        expected = [c1]
        for blocks in stages:
            for block in blocks:
                x = block(x)
            expected.append(x)
    features = backbone(images, training=False)
    for key, reference in zip(("C1", "C2", "C3", "C4", "C5"), expected):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(features[key]), reference.numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4
        )
