"""The models a user would otherwise pick, built as their libraries build them (weights=None).

Shared by the benchmarks that time them beside ours. keras-hub's models are built from the
architecture arguments of its presets; segmentation_models 1.0.1 is imported with
``SM_FRAMEWORK=tf.keras``, under which it runs on Keras 3. Install both with
``pip install ".[benchmarks]"``.
"""

import os


def segmentation_models():
    os.environ.setdefault("SM_FRAMEWORK", "tf.keras")
    import segmentation_models as sm

    return sm


def keras_hub_resnet50():
    """keras-hub's ResNet-50 (v1 bottleneck blocks, as its resnet_50_imagenet preset)."""
    import keras_hub

    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[3, 4, 6, 3], stackwise_num_strides=[1, 2, 2, 2], block_type="bottleneck_block",
    )


def keras_hub_deeplabv3plus_resnet50(num_classes, spatial_pyramid_pooling_key="P5"):
    """keras-hub's DeepLabV3+ on ResNet-50 as its preset deeplab_v3_plus_resnet50_pascalvoc
    (39.2M parameters): ASPP (rates 6, 12, 18) on the stride-32 features "P5", the stride-4
    "P2" features projected to 48 channels, and one 1x1 convolution of 256 channels as decoder
    (the paper's decoder has two 3x3 convolutions)."""
    import keras_hub

    backbone = keras_hub.models.DeepLabV3Backbone(
        image_encoder=keras_hub_resnet50(), spatial_pyramid_pooling_key=spatial_pyramid_pooling_key,
        upsampling_size=2 ** int(spatial_pyramid_pooling_key[1:]) // 4,  # to the stride-4 P2 features
        dilation_rates=[6, 12, 18], low_level_feature_key="P2",
    )
    return keras_hub.models.DeepLabV3ImageSegmenter(backbone=backbone, num_classes=num_classes)


def keras_hub_segformer_b0(num_classes, crop):
    import keras_hub

    encoder = keras_hub.models.MiTBackbone(  # MiT-B0; its patch embedding needs a fixed size
        layerwise_depths=[2, 2, 2, 2], num_layers=4, layerwise_num_heads=[1, 2, 5, 8],
        layerwise_sr_ratios=[8, 4, 2, 1], max_drop_path_rate=0.1, layerwise_patch_sizes=[7, 3, 3, 3],
        layerwise_strides=[4, 2, 2, 2], hidden_dims=[32, 64, 160, 256], image_shape=(*crop, 3),
    )
    backbone = keras_hub.models.SegFormerBackbone(image_encoder=encoder, projection_filters=256)
    return keras_hub.models.SegFormerImageSegmenter(backbone=backbone, num_classes=num_classes)


def sm_unet(num_classes, backbone="resnet34"):
    return segmentation_models().Unet(
        backbone, encoder_weights=None, classes=num_classes, activation=None, input_shape=(None, None, 3)
    )


def sm_linknet(num_classes, backbone="resnet18"):
    # Transposed convolutions in the decoder, as in the LinkNet paper (sm's default upsamples).
    return segmentation_models().Linknet(
        backbone, encoder_weights=None, classes=num_classes, activation=None, input_shape=(None, None, 3),
        decoder_block_type="transpose",
    )


def sm_fpn(num_classes, backbone="mobilenetv2"):
    # Summed levels, as in the semantic FPN of Kirillov et al. (sm's default concatenates).
    return segmentation_models().FPN(
        backbone, encoder_weights=None, classes=num_classes, activation=None, input_shape=(None, None, 3),
        pyramid_aggregation="sum",
    )


def sm_pspnet(num_classes, crop, backbone="mobilenetv2"):
    # sm's PSPNet needs a fixed input size divisible by 6 x downsample_factor.
    return segmentation_models().PSPNet(
        backbone, encoder_weights=None, classes=num_classes, activation=None, input_shape=(*crop, 3),
        downsample_factor=8,
    )
