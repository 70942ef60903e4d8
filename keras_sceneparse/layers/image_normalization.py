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
        channels = input_shape[-1]
        spec = NORMALIZATIONS[self.mode]
        per_channel = spec["bgr"] or any(m != spec["mean"][0] for m in spec["mean"])
        if per_channel and channels != 3:
            raise ValueError(
                f"ImageNormalization(mode={self.mode!r}) uses per-channel RGB statistics and needs 3 "
                f"channels, got input shape {input_shape}. Use mode='unit' or 'tf' for other images."
            )

    def call(self, images):
        spec = NORMALIZATIONS[self.mode]
        images = ops.cast(images, self.compute_dtype)
        if spec["bgr"]:
            images = ops.flip(images, axis=-1)
        channels = images.shape[-1]
        mean = spec["mean"] if channels == 3 else spec["mean"][:1]
        std = spec["std"] if channels == 3 else spec["std"][:1]
        mean = ops.convert_to_tensor(mean, self.compute_dtype)
        std = ops.convert_to_tensor(std, self.compute_dtype)
        return (images * spec["scale"] - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
