import keras

from keras_sceneparse.backbones.applications import APPLICATIONS
from keras_sceneparse.backbones.dilation import dilate
from keras_sceneparse.layers.conv_bn_relu import BATCH_NORM_MOMENTUM
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_image_shape

PYRAMID_LEVELS = ("C1", "C2", "C3", "C4", "C5")


@serializable
class Backbone(keras.Model):
    """An ImageNet encoder from ``keras.applications`` that returns a feature pyramid.

    Calling the backbone on a batch of images returns a dict of feature maps: by default
    ``{"C1": stride 2, "C2": stride 4, "C3": stride 8, "C4": stride 16, "C5": stride 32}``
    (FPN's names, Lin et al. CVPR 2017). With ``output_stride`` 8 or 16 the stages below
    that resolution are dilated instead of strided (DeepLab, Chen et al. TPAMI 2018,
    Sec. 3.1): their maps stay at ``1 / output_stride`` and keep the ImageNet weights.

    The backbone expects normalised images; :attr:`normalization` names the
    :class:`~keras_sceneparse.layers.ImageNormalization` mode its weights were trained with,
    and the models of this library put that layer in front of it.

    Args:
        architecture: one of :func:`list_backbones` (``"vgg16"``, ``"vgg19"``,
            ``"resnet50"``, ``"resnet101"``, ``"resnet152"``, ``"mobilenet_v2"``,
            ``"xception"``).
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        weights: ``None`` (random initialisation) or ``"imagenet"`` (downloaded by
            ``keras.applications``; needs 3 channels and an internet connection once).
            Weights are not re-downloaded when a saved model is loaded.
        output_stride: 32 (the plain network), 16 or 8 (dilated).
        feature_layers: optional ``{output key: layer name}`` to return other layers than
            the pyramid (e.g. FCN's ``{"pool3": "block3_pool", ...}``).
        application_kwargs: extra arguments for the ``keras.applications`` constructor
            (e.g. ``{"alpha": 0.35}`` for a narrow MobileNetV2).
        batch_norm_momentum: momentum of the moving statistics of every batch
            normalisation layer; ``None`` keeps the application's own value (0.999 for
            MobileNetV2, 0.99 for the others). The default is the library's
            :data:`~keras_sceneparse.layers.conv_bn_relu.BATCH_NORM_MOMENTUM` (0.9): moving
            variances start at 1 while a from-scratch network's true variances are ~0.01-0.1,
            and with 0.999 or 0.99 the inference statistics stay wrong for hundreds of steps;
            compounded over 50 layers that made every CamVid validation prediction one class
            for the first epochs (train mIoU 0.21, validation 0.02 after 3 epochs).

    Example:
        >>> backbone = Backbone("resnet50", input_shape=(None, None, 3))
        >>> features = backbone(np.zeros((1, 64, 64, 3)))
        >>> {key: tuple(value.shape) for key, value in features.items()}["C5"]
        (1, 2, 2, 2048)
    """

    def __init__(
        self,
        architecture="resnet50",
        input_shape=(None, None, 3),
        weights=None,
        output_stride=32,
        feature_layers=None,
        application_kwargs=None,
        batch_norm_momentum=BATCH_NORM_MOMENTUM,
        **kwargs,
    ):
        check_choice("architecture", architecture, APPLICATIONS)
        if batch_norm_momentum is not None:
            batch_norm_momentum = check_float("batch_norm_momentum", batch_norm_momentum, minimum=0.0, maximum=1.0)
        check_choice("weights", weights, {None, "imagenet"})
        check_choice("output_stride", output_stride, {8, 16, 32})
        input_shape = check_image_shape(input_shape, channels=3 if weights == "imagenet" else None)
        spec = APPLICATIONS[architecture]
        application_kwargs = dict(application_kwargs or {})

        # === Encoder ===
        encoder = spec.build(input_shape, weights, **application_kwargs)
        if output_stride != 32:
            encoder = dilate(
                encoder,
                output_stride,
                lambda shape: spec.build(shape, None, **application_kwargs),
            )
        if batch_norm_momentum is not None:
            for layer in encoder.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.momentum = batch_norm_momentum
        if feature_layers is None:
            feature_layers = dict(zip(PYRAMID_LEVELS, spec.pyramid_layers))
        for key, layer_name in feature_layers.items():
            try:
                encoder.get_layer(layer_name)
            except ValueError:
                raise ValueError(
                    f"`feature_layers[{key!r}]` names layer {layer_name!r}, which {architecture} does not have."
                ) from None

        # === Functional model ===
        outputs = {key: encoder.get_layer(name).output for key, name in feature_layers.items()}
        super().__init__(inputs=encoder.input, outputs=outputs, **kwargs)

        # === Config ===
        self.architecture = architecture
        self.image_shape = input_shape
        self.output_stride = output_stride
        self.feature_layers = dict(feature_layers)
        self.application_kwargs = application_kwargs
        self.batch_norm_momentum = batch_norm_momentum
        self.normalization = spec.normalization

    @property
    def pyramid_channels(self):
        """``{output key: channels}`` of the returned feature maps."""
        return {key: tensor.shape[-1] for key, tensor in self.output.items()}

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "architecture": self.architecture,
            "input_shape": self.image_shape,
            # The weights are saved with the model; never download them again on load.
            "weights": None,
            "output_stride": self.output_stride,
            "feature_layers": self.feature_layers,
            "application_kwargs": self.application_kwargs,
            "batch_norm_momentum": self.batch_norm_momentum,
        }


def list_backbones():
    """Names accepted by :class:`Backbone` and by the models' ``backbone`` argument."""
    return sorted(APPLICATIONS)
