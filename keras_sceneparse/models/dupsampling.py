"""DUpsampling network (Tian, He, Shen and Yan, CVPR 2019)."""

import keras

from keras_sceneparse.backbones.backbone import Backbone, list_backbones
from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.layers.cropping import CropToReference
from keras_sceneparse.layers.data_dependent_upsampling import DataDependentUpsampling
from keras_sceneparse.layers.padding import PadToMultiple
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_int


@serializable
@register_model("dupsampling")
class DUpsamplingNet(SegmentationModel):
    """DUpsampling network: coarse fused features decoded by a learned reconstruction of label patches.

    Tian, He, Shen and Yan, "Decoders Matter for Semantic Segmentation: Data-Dependent
    Decoding Enables Flexible Feature Aggregation", CVPR 2019,
    https://arxiv.org/abs/1903.02120.

    Architecture (Sec. 3): an encoder at a coarse output stride ``r``; the
    decoder does not upsample features back to 1/4 (as DeepLabV3+ does) but brings the
    low-level features down to the final resolution ("flexible feature aggregation"):
    ``C2`` (stride 4) is reduced by a 1x1 convolution with batch norm and ReLU to
    48 channels, downsampled (bilinear) to the size of ``C5`` and concatenated with it; two
    3x3 convolutions with batch norm and ReLU (256 channels) fuse them; the
    :class:`~keras_sceneparse.layers.DataDependentUpsampling` layer reconstructs each
    pixel's ``r x r`` patch of class scores (Eq. 2) and divides them by the learned
    temperature of the adaptive-temperature softmax (Sec. 3.2). The model outputs those
    logits at the input resolution.

    Training recipe (not part of the graph): the reconstruction matrix ``W`` is first
    fitted to the training labels by PCA (Sec. 3.1,
    :func:`~keras_sceneparse.layers.data_dependent_upsampling.fit_dupsampling_basis`), then
    trained with the network:
    ``model.get_layer("dupsampling").kernel.assign(basis[None, None])`` with
    ``basis = fit_dupsampling_basis(labels, num_classes, ratio=model.output_stride,
    channels=model.decoder_filters)``.

    Choices:

    - Backbone: ``keras.applications``' ResNet-50 (the paper's ablation backbone; its best
      model uses Xception-65, not available here) dilated to output stride 16 by default;
      ``output_stride=32`` is the undilated encoder the paper advocates for speed, 8 is
      allowed. No ImageNet weights offline.
    - Aggregation: ``C2`` only, 48 channels (DeepLabV3+'s reduction), fused by two 3x3
      convolutions of 256 channels whose output is the compressed representation ``x``
      (``C = decoder_filters``) that ``W`` expands. The paper explores several
      combinations; this is the simplest it describes.
    - Sizes: the image is padded (after normalisation, with zeros) to a multiple of the
      output stride, so the reconstructed patches tile it exactly, and the logits are
      cropped back (top-left) to the input size.

    Parameters: the paper gives none. Ours, by ``count_params`` (batch-norm statistics
    included), ResNet-50 at output stride 16, 21 classes: 30,397,505, of which the
    reconstruction matrix holds ``256 * 16 * 16 * 21`` = 1,376,256 and the temperature 1
    (asserted by a slow test; the decoder's count is asserted from its formula on a narrow
    backbone).

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones` (``"resnet50"``).
        weights: ``None`` or ``"imagenet"`` for the backbone.
        output_stride: 8, 16 (default) or 32: the encoder's stride and DUpsampling's ratio.
        low_level_filters: channels of the reduced ``C2`` features (48).
        decoder_filters: channels of the fused features, the compressed dimension ``C`` (256).
        learn_temperature: the adaptive-temperature softmax (Sec. 3.2).
        backbone_kwargs: extra ``keras.applications`` arguments (e.g. ``{"alpha": 0.35}``).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = DUpsamplingNet(21, backbone="resnet18", backbone_kwargs={"base_filters": 8})
        >>> model(np.zeros((1, 65, 97, 3), "float32")).shape
        TensorShape([1, 65, 97, 21])
    """

    feature_layer = "decoder_conv_2"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet50",
        weights=None,
        output_stride=16,
        low_level_filters=48,
        decoder_filters=256,
        learn_temperature=True,
        backbone_kwargs=None,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("backbone", backbone, list_backbones())
        output_stride = check_choice("output_stride", output_stride, {8, 16, 32})
        low_level_filters = check_int("low_level_filters", low_level_filters, minimum=1)
        decoder_filters = check_int("decoder_filters", decoder_filters, minimum=1)
        learn_temperature = bool(learn_temperature)

        # === Layers ===
        encoder = Backbone(
            backbone,
            input_shape=input_shape,
            weights=weights,
            output_stride=output_stride,
            application_kwargs=backbone_kwargs,
            name=f"{backbone}_backbone",
        )
        dupsampling = DataDependentUpsampling(
            num_classes, output_stride, learn_temperature=learn_temperature, name="dupsampling"
        )

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, encoder.normalization, include_preprocessing)
        padded = PadToMultiple(output_stride, name="pad_to_stride")(x)
        features = encoder(padded)
        low_level = ConvBNReLU(low_level_filters, 1, name="low_level_reduction")(features["C2"])
        low_level = ResizeToReference(name="low_level_downsampling")(low_level, features["C5"])
        x = keras.layers.Concatenate(name="aggregation")([features["C5"], low_level])
        x = ConvBNReLU(decoder_filters, 3, name="decoder_conv_1")(x)
        x = ConvBNReLU(decoder_filters, 3, name="decoder_conv_2")(x)
        x = dupsampling(x)
        x = CropToReference(position="top_left", name="crop_to_input")(x, inputs)
        outputs = self.logits_output(x)
        super().__init__(
            inputs=inputs,
            outputs=outputs,
            num_classes=num_classes,
            image_shape=input_shape,
            include_preprocessing=include_preprocessing,
            **kwargs,
        )

        # === Config ===
        self.backbone_name = backbone
        self.output_stride = output_stride
        self.low_level_filters = low_level_filters
        self.decoder_filters = decoder_filters
        self.learn_temperature = learn_temperature
        self.backbone_kwargs = dict(backbone_kwargs or {})

    def get_config(self):
        return {
            **self.base_config(),
            "backbone": self.backbone_name,
            "weights": None,
            "output_stride": self.output_stride,
            "low_level_filters": self.low_level_filters,
            "decoder_filters": self.decoder_filters,
            "learn_temperature": self.learn_temperature,
            "backbone_kwargs": self.backbone_kwargs,
        }
