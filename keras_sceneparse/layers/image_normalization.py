import keras
from keras import ops

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice

#: Input normalisations of the ImageNet backbones, for images given as RGB in [0, 255].
#: ``scale`` multiplies first, then ``mean`` is subtracted and the result divided by
#: ``std``; ``bgr`` reverses the channel order first (Caffe-trained weights).
NORMALIZATIONS = {
    # keras.applications VGG16/ResNet: Caffe style, BGR with per-channel means, no scaling.
    "caffe": {"scale": 1.0, "mean": (103.939, 116.779, 123.68), "std": (1.0, 1.0, 1.0), "bgr": True},
    # PyTorch-style ImageNet statistics (DenseNet, many re-implementations).
    "imagenet": {
        "scale": 1.0 / 255.0,
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
        "bgr": False,
    },
    # Inception style, to [-1, 1]: MobileNetV2, Xception.
    "tf": {"scale": 1.0 / 127.5, "mean": (1.0, 1.0, 1.0), "std": (1.0, 1.0, 1.0), "bgr": False},
    # Plain [0, 1] scaling (U-Net, models trained from scratch).
    "unit": {"scale": 1.0 / 255.0, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "bgr": False},
}


def normalization_parameters(mode, channels):
    """``(scale, mean, std, bgr)`` of a mode for images with ``channels`` channels.

    Shared by :class:`ImageNormalization` and the tf.data pipelines, so both compute
    ``(flip_if_bgr(x) * scale - mean) / std`` with the same numbers. Raises when a mode
    with per-channel RGB statistics meets other than 3 channels.
    """
    check_choice("mode", mode, NORMALIZATIONS)
    spec = NORMALIZATIONS[mode]
    per_channel = spec["bgr"] or len(set(spec["mean"])) > 1 or len(set(spec["std"])) > 1
    if per_channel and channels != 3:
        raise ValueError(
            f"Normalization mode {mode!r} uses per-channel RGB statistics and needs 3 channels, got "
            f"{channels}. Use mode 'unit' or 'tf' for other images."
        )
    if channels == 3:
        return spec["scale"], spec["mean"], spec["std"], spec["bgr"]
    return spec["scale"], spec["mean"][:1], spec["std"][:1], False


@serializable
class ImageNormalization(keras.layers.Layer):
    """Normalises RGB images given in ``[0, 255]`` the way a backbone's weights expect.

    Models of this library put this layer first (``include_preprocessing=True``), so they
    take raw images and ``predict`` needs no separate preprocessing step.

    Args:
        mode: one of ``"caffe"`` (BGR, ImageNet means subtracted: VGG16, ResNet of
            ``keras.applications``), ``"imagenet"`` (``x / 255`` then ImageNet mean/std),
            ``"tf"`` (``x / 127.5 - 1``: MobileNetV2, Xception) or ``"unit"`` (``x / 255``).
            For images with other than 3 channels only ``"unit"`` and ``"tf"`` apply.

    Example:
        >>> layer = ImageNormalization("tf")
        >>> layer(np.full((1, 2, 2, 3), 255.0)).numpy().max()
        1.0
    """

    def __init__(self, mode="imagenet", **kwargs):
        super().__init__(**kwargs)
        self.mode = check_choice("mode", mode, NORMALIZATIONS)

    def build(self, input_shape):
        normalization_parameters(self.mode, input_shape[-1])

    def call(self, images):
        scale, mean, std, bgr = normalization_parameters(self.mode, images.shape[-1])
        images = ops.cast(images, self.compute_dtype)
        if bgr:
            images = ops.flip(images, axis=-1)
        mean = ops.convert_to_tensor(mean, self.compute_dtype)
        std = ops.convert_to_tensor(std, self.compute_dtype)
        return (images * scale - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
