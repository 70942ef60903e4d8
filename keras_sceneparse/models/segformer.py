"""SegFormer (Xie, Wang, Yu, Anandkumar, Alvarez and Luo, NeurIPS 2021)."""

import keras

from keras_sceneparse.backbones.mix_transformer import MIT_VARIANTS, MixTransformer
from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.models.registry import register_model
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int

#: All-MLP decoder width C per variant (Xie et al., Sec. 4.1: 256 for B0/B1, 768 otherwise).
DECODER_DIMS = {"b0": 256, "b1": 256, "b2": 768, "b3": 768, "b4": 768, "b5": 768}


@serializable
@register_model("segformer_b0", variant="b0")
@register_model("segformer_b1", variant="b1")
@register_model("segformer_b2", variant="b2")
@register_model("segformer_b3", variant="b3")
@register_model("segformer_b4", variant="b4")
@register_model("segformer_b5", variant="b5")
class SegFormer(SegmentationModel):
    """SegFormer: a hierarchical Mix Transformer encoder and a lightweight all-MLP decoder.

    Xie, Wang, Yu, Anandkumar, Alvarez and Luo, "SegFormer: Simple and Efficient Design
    for Semantic Segmentation with Transformers", NeurIPS 2021,
    https://arxiv.org/abs/2105.15203.

    Architecture: the Mix Transformer encoder MiT-B0 ... B5
    (:func:`~keras_sceneparse.backbones.mix_transformer.MixTransformer`; Sec. 3.1,
    Appendix A Table 6): overlapped patch embeddings (7x7/4, then 3x3/2), efficient
    self-attention with sequence reduction ratios 8, 4, 2, 1, Mix-FFN with a 3x3 depthwise
    convolution and no positional encoding, giving features at strides 4, 8, 16, 32. The
    all-MLP decoder (Sec. 3.2, Eq. 4, Fig. 2): each stage is projected to ``C`` channels by
    a linear layer, upsampled to 1/4 of the image, the four are concatenated (deepest
    first, as in the reference code) and fused by a linear layer (with batch
    normalisation and ReLU in the reference code), and a linear layer predicts the
    classes at 1/4, upsampled bilinearly to the input. ``C`` is 256 for B0/B1 and 768 for
    B2-B5 (Sec. 4.1).

    Choices: no ImageNet weights (the library is offline); dropout 0.1 before the
    classifier and stochastic depth 0.1 in the encoder, as in the reference training
    configuration. Upsampling resizes to the exact size of the stride-4 features and of the
    input, so any input size works, including ``(None, None, 3)`` and sizes that are not
    multiples of 32. Inputs are RGB in ``[0, 255]`` normalised with the ImageNet mean and
    standard deviation (``include_preprocessing``).

    Parameters (150 classes, ADE20K): the paper's Table 1 gives encoder + decoder =
    3.4M + 0.4M = 3.8M (B0), 13.1M + 0.6M = 13.7M (B1), 24.2M + 3.3M = 27.5M (B2),
    44.0M + 3.3M = 47.3M (B3), 60.8M + 3.3M = 64.1M (B4), 81.4M + 3.3M = 84.7M (B5). Ours
    (trainable weights, asserted by the tests to round to the paper's figures):
    B0 3,752,694 (encoder 3,319,392), B1 13,715,798, B2 27,461,974 (encoder 24,196,288),
    B3 47,337,814, B4 64,108,374, B5 84,708,694; B1-B5 are within 0.2% of the paper, B0
    is 1.2% under 3.8M because the paper's 3.4M for the MiT-B0 encoder is 3.32M in the
    reference code (and in ``keras_hub.models.MiTBackbone``, which our encoders match
    exactly), so its total rounds up.

    Args:
        num_classes: number of classes.
        input_shape: ``(height, width, channels)``; sizes may be ``None``.
        variant: ``"b0"`` ... ``"b5"``.
        weights: ``None`` only (no pretrained weights ship with the library).
        hidden_dims, depths, num_heads: per-stage encoder overrides (4 values each), for
            small models; ``None`` takes Table 6's.
        decoder_dim: ``C``; ``None`` takes the variant's.
        drop_path_rate: encoder stochastic depth (0.1).
        dropout: dropout before the classifier (0.1).
        include_preprocessing: normalise ``[0, 255]`` RGB inputs with ImageNet statistics.

    Example:
        >>> model = SegFormer(num_classes=150, variant="b0")
        >>> logits = model(np.zeros((1, 97, 131, 3)))  # (1, 97, 131, 150)
    """

    feature_layer = "linear_fuse"

    def __init__(
        self,
        num_classes,
        input_shape=(None, None, 3),
        variant="b0",
        weights=None,
        hidden_dims=None,
        depths=None,
        num_heads=None,
        decoder_dim=None,
        drop_path_rate=0.1,
        dropout=0.1,
        include_preprocessing=True,
        **kwargs,
    ):
        num_classes, input_shape = self.validate_arguments(num_classes, input_shape)
        check_choice("variant", variant, MIT_VARIANTS)
        # No ImageNet/ADE20K weights ship with this offline library.
        check_choice("weights", weights, {None})
        decoder_dim = check_int("decoder_dim", decoder_dim or DECODER_DIMS[variant], minimum=1)
        dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)

        # === Layers ===
        encoder = MixTransformer(
            variant, input_shape=input_shape, hidden_dims=hidden_dims, depths=depths, num_heads=num_heads,
            drop_path_rate=drop_path_rate, name=f"mit_{variant}",
        )
        projections = [
            keras.layers.Dense(decoder_dim, name=f"linear_c{stage + 1}") for stage in range(4)
        ]

        # === Functional model ===
        inputs = keras.Input(shape=input_shape, name="images")
        normalization = "imagenet" if input_shape[2] == 3 else "unit"
        x = self.preprocess(inputs, normalization, include_preprocessing)
        features = encoder(x)
        # Eq. 4: project each stage to C, upsample to 1/4, concatenate (deepest first), fuse.
        projected = []
        for stage in reversed(range(4)):
            y = projections[stage](features[stage])
            if stage > 0:
                y = ResizeToReference(name=f"upsample_c{stage + 1}")(y, features[0])
            projected.append(y)
        x = keras.layers.Concatenate(name="decoder_concat")(projected)
        x = ConvBNReLU(decoder_dim, 1, name="linear_fuse")(x)
        x = keras.layers.Dropout(dropout, name="dropout")(x)
        x = keras.layers.Conv2D(num_classes, 1, name="classifier")(x)
        x = ResizeToReference(name="output_upsampling")(x, inputs)
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
        self.variant = variant
        self.hidden_dims = None if hidden_dims is None else tuple(hidden_dims)
        self.depths = None if depths is None else tuple(depths)
        self.num_heads = None if num_heads is None else tuple(num_heads)
        self.decoder_dim = decoder_dim
        self.drop_path_rate = drop_path_rate
        self.dropout = dropout

    def get_config(self):
        return {
            **self.base_config(),
            "weights": None,
            "variant": self.variant,
            "hidden_dims": self.hidden_dims,
            "depths": self.depths,
            "num_heads": self.num_heads,
            "decoder_dim": self.decoder_dim,
            "drop_path_rate": self.drop_path_rate,
            "dropout": self.dropout,
        }
