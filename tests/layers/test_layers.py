import keras
import numpy as np
import pytest

from keras_sceneparse import layers
from tests.harness import run_layer_test

rng = np.random.default_rng(0)
IMAGES = rng.uniform(0, 255, size=(2, 12, 10, 3)).astype("float32")
FEATURES = rng.normal(size=(2, 9, 7, 8)).astype("float32")
UNKNOWN = (None, None, 8)

# One entry per layer: (class, constructor kwargs, inputs, expected output shape(s), symbolic shapes).
HARNESS_CASES = [
    (layers.ImageNormalization, {"mode": "caffe"}, IMAGES, (2, 12, 10, 3), [(None, None, 3)]),
    (layers.PadToMultiple, {"multiple": 8}, FEATURES, (2, 16, 8, 8), [UNKNOWN]),
    (layers.PadToMultiple, {"multiple": 4, "offset": 1, "margin": 2, "mode": "reflect"}, FEATURES, (2, 13, 13, 8), [UNKNOWN]),
    (layers.CropToReference, {"position": "center"}, (FEATURES, FEATURES[:, :5, :3]), (2, 5, 3, 8), [UNKNOWN, UNKNOWN]),
    (layers.ResizeToReference, {}, (FEATURES, IMAGES), (2, 12, 10, 8), [UNKNOWN, (None, None, 3)]),
    (layers.ResizeToReference, {"align_corners": True}, (FEATURES, IMAGES), (2, 12, 10, 8), [UNKNOWN, (None, None, 3)]),
    (layers.ConvBNReLU, {"filters": 4, "dilation_rate": 2}, FEATURES, (2, 9, 7, 4), [UNKNOWN]),
    (layers.ConvBNReLU, {"filters": 4, "strides": 2, "separable": True}, FEATURES, (2, 5, 4, 4), [UNKNOWN]),
    (layers.AtrousSpatialPyramidPooling, {"filters": 4, "atrous_rates": (1, 2)}, FEATURES, (2, 9, 7, 4), [UNKNOWN]),
    (layers.AtrousSpatialPyramidPooling, {"filters": 4, "atrous_rates": (), "separable": True}, FEATURES, (2, 9, 7, 4), [UNKNOWN]),
    (layers.MaxPoolingWithArgmax2D, {"pool_size": 2}, FEATURES, ((2, 5, 4, 8), (2, 5, 4, 8)), [UNKNOWN]),
]


@pytest.mark.parametrize(
    "layer_cls,kwargs,inputs,expected,symbolic", HARNESS_CASES, ids=lambda v: getattr(v, "__name__", None)
)
def test_layer_harness(layer_cls, kwargs, inputs, expected, symbolic):
    run_layer_test(layer_cls, kwargs, inputs, expected, symbolic_input_shape=symbolic)


def test_max_unpooling_harness():
    pooled, indices = layers.MaxPoolingWithArgmax2D()(FEATURES)
    run_layer_test(
        layers.MaxUnpooling2D,
        {"pool_size": 2},
        (keras.ops.convert_to_numpy(pooled), keras.ops.convert_to_numpy(indices), FEATURES),
        (2, 9, 7, 8),
        symbolic_input_shape=[UNKNOWN, UNKNOWN, UNKNOWN],
        run_training_check=False,
    )


# --- numerical checks against independent NumPy computations ---------------------------


def numpy_max_pool_with_argmax(x, k):
    batch, height, width, channels = x.shape
    out_h, out_w = -(-height // k), -(-width // k)
    padded = np.full((batch, out_h * k, out_w * k, channels), -np.inf, dtype=x.dtype)
    padded[:, :height, :width] = x
    pooled = np.zeros((batch, out_h, out_w, channels), x.dtype)
    argmax = np.zeros((batch, out_h, out_w, channels), "int32")
    for b in range(batch):
        for i in range(out_h):
            for j in range(out_w):
                for c in range(channels):
                    window = padded[b, i * k : (i + 1) * k, j * k : (j + 1) * k, c]
                    argmax[b, i, j, c] = int(np.argmax(window))
                    pooled[b, i, j, c] = window.max()
    return pooled, argmax


@pytest.mark.parametrize("k", [2, 3])
def test_max_pooling_with_argmax_matches_numpy(k):
    x = rng.normal(size=(2, 7, 8, 3)).astype("float32")
    pooled, indices = layers.MaxPoolingWithArgmax2D(k)(x)
    expected_pooled, expected_indices = numpy_max_pool_with_argmax(x, k)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(pooled), expected_pooled)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(indices), expected_indices)
    if k == 2:
        # For 2x2 windows, ceil mode pads like Keras' 'same' pooling (at the end only).
        reference = keras.layers.MaxPooling2D(k, padding="same")(x)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(pooled), keras.ops.convert_to_numpy(reference))


def test_max_unpooling_places_values_at_argmax():
    x = rng.normal(size=(1, 5, 7, 2)).astype("float32")
    pooled, indices = layers.MaxPoolingWithArgmax2D()(x)
    restored = keras.ops.convert_to_numpy(layers.MaxUnpooling2D()(pooled, indices, x))
    expected = np.zeros_like(x)
    p, a = numpy_max_pool_with_argmax(x, 2)
    for i in range(p.shape[1]):
        for j in range(p.shape[2]):
            for c in range(2):
                row, col = divmod(a[0, i, j, c], 2)
                expected[0, 2 * i + row, 2 * j + col, c] = p[0, i, j, c]
    np.testing.assert_array_equal(restored, expected)


def test_max_unpooling_rejects_mismatched_indices():
    with pytest.raises(ValueError, match="same shape"):
        layers.MaxUnpooling2D()(np.zeros((1, 2, 2, 3), "float32"), np.zeros((1, 2, 3, 3), "int32"))


@pytest.mark.parametrize("mode", ["caffe", "imagenet", "tf", "unit"])
def test_image_normalization_matches_keras_applications(mode):
    images = rng.uniform(0, 255, size=(2, 4, 4, 3)).astype("float32")
    ours = keras.ops.convert_to_numpy(layers.ImageNormalization(mode)(images))
    if mode == "caffe":
        expected = keras.applications.vgg16.preprocess_input(images.copy())
    elif mode == "imagenet":
        expected = keras.applications.imagenet_utils.preprocess_input(images.copy(), mode="torch")
    elif mode == "tf":
        expected = keras.applications.mobilenet_v2.preprocess_input(images.copy())
    else:
        expected = images / 255.0
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-4)


def test_image_normalization_rejects_bad_mode_and_channels():
    with pytest.raises(ValueError, match="mode"):
        layers.ImageNormalization("bgr")
    with pytest.raises(ValueError, match="3 channels"):
        layers.ImageNormalization("caffe")(np.zeros((1, 4, 4, 1), "float32"))


def test_pad_to_multiple_geometry_and_crop_back():
    layer = layers.PadToMultiple(16, offset=124, margin=92, mode="reflect")
    # U-Net's tile: a 388 px output needs exactly the 572 px tile of the paper.
    assert layer.padded_size(388) == 572
    assert all((layer.padded_size(s) - 124) % 16 == 0 and layer.padded_size(s) >= s + 184 for s in range(108, 300))
    x = rng.normal(size=(1, 9, 7, 2)).astype("float32")
    padded = layers.PadToMultiple(4, margin=1)(x)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(padded)[:, 1:10, 1:8], x)
    cropped = layers.CropToReference("center")(padded, x)
    assert tuple(cropped.shape) == x.shape


def test_crop_to_reference_rejects_larger_reference():
    with pytest.raises(ValueError, match="larger reference"):
        layers.CropToReference()(np.zeros((1, 4, 4, 1), "float32"), np.zeros((1, 5, 4, 1), "float32"))


def test_resize_align_corners_matches_numpy():
    x = rng.normal(size=(1, 3, 4, 1)).astype("float32")
    ref = np.zeros((1, 5, 7, 1), "float32")
    out = keras.ops.convert_to_numpy(layers.ResizeToReference(align_corners=True)(x, ref))[0, :, :, 0]
    rows = np.linspace(0, 2, 5)
    cols = np.linspace(0, 3, 7)
    expected = np.array([[_bilinear(x[0, :, :, 0], r, c) for c in cols] for r in rows])
    np.testing.assert_allclose(out, expected, atol=1e-5)
    # Corners are exactly the input corners.
    np.testing.assert_allclose(out[[0, -1]][:, [0, -1]], x[0, [0, -1]][:, [0, -1], 0], atol=1e-6)


def _bilinear(image, r, c):
    r0, c0 = int(np.floor(r)), int(np.floor(c))
    r1, c1 = min(r0 + 1, image.shape[0] - 1), min(c0 + 1, image.shape[1] - 1)
    dr, dc = r - r0, c - c0
    top = image[r0, c0] * (1 - dc) + image[r0, c1] * dc
    bottom = image[r1, c0] * (1 - dc) + image[r1, c1] * dc
    return top * (1 - dr) + bottom * dr


def test_bilinear_upsampling_initializer_interpolates():
    kernel = layers.bilinear_kernel(4)
    np.testing.assert_allclose(kernel[1:3, 1:3], 0.5625)
    upsample = keras.layers.Conv2DTranspose(
        2, 4, strides=2, padding="same", use_bias=False, kernel_initializer=layers.BilinearUpsamplingInitializer()
    )
    constant = np.ones((1, 4, 4, 2), "float32")
    out = keras.ops.convert_to_numpy(upsample(constant))
    # Bilinear interpolation of a constant is the constant, away from the zero-padded border.
    np.testing.assert_allclose(out[0, 1:-1, 1:-1], 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="as many output as input"):
        layers.BilinearUpsamplingInitializer()((4, 4, 2, 3))


def test_aspp_image_pooling_branch_sees_global_context():
    layer = layers.AtrousSpatialPyramidPooling(filters=4, atrous_rates=(), dropout=0.0)
    x = np.zeros((1, 8, 8, 3), "float32")
    y = x.copy()
    y[0, 0, 0] = 100.0  # one far-away pixel changes the global average
    out_x = keras.ops.convert_to_numpy(layer(x))
    out_y = keras.ops.convert_to_numpy(layer(y))
    assert not np.allclose(out_x[0, 7, 7], out_y[0, 7, 7])
    assert len(layer.branches) == 1 and tuple(layer.get_config()["atrous_rates"]) == ()


def test_conv_bn_relu_dilation_field_of_view():
    layer = layers.ConvBNReLU(1, 3, dilation_rate=3, activation=None, use_batch_norm=False, kernel_initializer="ones")
    x = np.zeros((1, 9, 9, 1), "float32")
    x[0, 4, 4] = 1.0
    out = keras.ops.convert_to_numpy(layer(x))[0, :, :, 0]
    # A 3x3 kernel dilated by 3 reaches exactly +-3 pixels.
    assert set(zip(*np.nonzero(out))) == {(r, c) for r in (1, 4, 7) for c in (1, 4, 7)}
