"""Global Convolutional Network (Peng, Zhang, Yu, Luo and Sun, CVPR 2017)."""

import keras

from keras_sceneparse.backbones.backbone import Backbone, list_backbones
from keras_sceneparse.layers.bilinear_upsampling import BilinearUpsamplingInitializer
from keras_sceneparse.layers.cropping import CropToReference
from keras_sceneparse.layers.global_convolution import (
    BoundaryRefinement,
    GlobalConvolution,
)
from keras_sceneparse.layers.padding import PadToMultiple
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_int

# Backbone stages scored by a GCN, coarse to fine (res-5 ... res-2 in Fig. 2a).
LEVELS = ("C5", "C4", "C3", "C2")
UPSAMPLING = ("deconvolution", "bilinear")


@serializable
@register_model("gcn")
class GCN(SegmentationModel):
    """Global Convolutional Network: large separable kernels score each ResNet stage, fused top-down.

    Peng, Zhang, Yu, Luo and Sun, "Large Kernel Matters -- Improve Semantic Segmentation
    by Global Convolutional Network", CVPR 2017, https://arxiv.org/abs/1703.02719.

    Architecture (Sec. 3.3, Fig. 2a): a ResNet's four stages (res-2 ... res-5, our C2 ...
    C5 at strides 4 ... 32) each go through a
    :class:`~keras_sceneparse.layers.GlobalConvolution` (``k = 15``, Table 1) straight to
    ``num_classes`` score maps and a :class:`~keras_sceneparse.layers.BoundaryRefinement`.
    Top-down, "low-resolution score maps will be upsampled with a deconvolution layer,
    then added up with higher ones to generate new score maps", each sum followed by a BR;
    the stride-4 scores are upsampled twice more (deconvolution, BR, deconvolution, BR) to
    the input resolution: nine BRs and five 2x deconvolutions in all.

    Choices: the deconvolutions are 4x4, stride 2, as many input as output channels,
    without bias, initialised to bilinear interpolation and learned (as FCN's, which the
    paper follows; it gives no sizes); ``upsampling="bilinear"`` replaces them by fixed
    bilinear resizing, a common variant. The paper's final models use ResNet-152
    (Sec. 4.2, 4.3; its ablations use ResNet-152 too, and Sec. 4.1.3 a ResNet-50 variant
    pre-trained with GCN blocks, "ResNet-GCN", which is not reproduced here); the default
    here is therefore ``"resnet152"`` from keras.applications (with conv biases; no
    ImageNet weights offline), and any other backbone works. Convolutions have biases
    (the paper is silent). The image is zero-padded to a multiple of 32 so that every
    deconvolution doubles its map exactly onto the finer stage (backbones with "valid"
    stems, like Xception, are resized onto it), and the scores are cropped back to the
    input, so any image size works.

    Parameters: the paper gives no count for the whole network. Ours, 21 classes, k = 15,
    trainable: ResNet-152 58,219,520 (keras.applications) plus 2,579,556 in the GCN
    head (GCNs 2,472,456, BRs 71,820, deconvolutions 35,280): 60,799,076 (asserted by a
    test). Plain 15x15 convolutions instead of the GCNs would need 18.1M.

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        backbone: one of :func:`~keras_sceneparse.backbones.list_backbones`
            (``"resnet152"`` by default, the paper's).
        weights: ``None`` or ``"imagenet"`` for the backbone.
        kernel_size: ``k`` of the GCN blocks (15, the paper's best, Table 1).
        upsampling: ``"deconvolution"`` (learned, the paper's) or ``"bilinear"``.
        backbone_kwargs: extra ``keras.applications`` arguments (e.g. ``{"alpha": 0.35}``).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs as the backbone expects.

    Example:
        >>> model = GCN(num_classes=21)
        >>> logits = model(np.zeros((1, 512, 512, 3)))  # (1, 512, 512, 21)
    """

    feature_layer = "boundary_refinement_fused_C2"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        backbone="resnet152",
        weights=None,
        kernel_size=15,
        upsampling="deconvolution",
        backbone_kwargs=None,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("backbone", backbone, list_backbones())
        kernel_size = check_int("kernel_size", kernel_size, minimum=1)
        upsampling = check_choice("upsampling", upsampling, UPSAMPLING)

        # === Layers ===
        encoder = Backbone(
            backbone,
            input_shape=input_shape,
            weights=weights,
            application_kwargs=backbone_kwargs,
            name=f"{backbone}_backbone",
        )

        def upsample(x, reference, name):
            if upsampling == "deconvolution":
                x = keras.layers.Conv2DTranspose(
                    num_classes,
                    4,
                    strides=2,
                    padding="same",
                    use_bias=False,
                    kernel_initializer=BilinearUpsamplingInitializer(),
                    name=f"deconvolution_{name}",
                )(x)
            # After a deconvolution this is the identity (exact 2x maps of a padded image),
            # except for backbones whose maps are not input / stride.
            return ResizeToReference(name=f"resize_{name}")(x, reference)

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        x = self.preprocess(inputs, encoder.normalization, include_preprocessing)
        padded = PadToMultiple(32, name="pad_to_multiple")(x)
        features = encoder(padded)
        scores = {
            level: BoundaryRefinement(name=f"boundary_refinement_{level}")(
                GlobalConvolution(num_classes, kernel_size, name=f"gcn_{level}")(features[level])
            )
            for level in LEVELS
        }
        x = scores["C5"]
        for level in LEVELS[1:]:
            x = upsample(x, scores[level], f"to_{level}")
            x = keras.layers.Add(name=f"fuse_{level}")([x, scores[level]])
            x = BoundaryRefinement(name=f"boundary_refinement_fused_{level}")(x)
        x = upsample(x, features["C1"], "to_C1")
        x = BoundaryRefinement(name="boundary_refinement_C1")(x)
        x = upsample(x, padded, "to_image")
        x = BoundaryRefinement(name="boundary_refinement_image")(x)
        x = CropToReference("top_left", name="crop")(x, inputs)
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
        self.kernel_size = kernel_size
        self.upsampling = upsampling
        self.backbone_kwargs = dict(backbone_kwargs or {})

    def get_config(self):
        return {
            **self.base_config(),
            "backbone": self.backbone_name,
            "weights": None,
            "kernel_size": self.kernel_size,
            "upsampling": self.upsampling,
            "backbone_kwargs": self.backbone_kwargs,
        }
