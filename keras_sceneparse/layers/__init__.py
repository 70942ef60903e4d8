"""Reusable segmentation blocks, each a serialisable ``keras.layers.Layer`` built on ``keras.ops``.

Import them into any Keras 3 model, under any backend::

    from keras_sceneparse.layers import AtrousSpatialPyramidPooling, MaxPoolingWithArgmax2D
"""

from keras_sceneparse.layers.asymmetric_non_local import AsymmetricFusionNonLocalBlock, AsymmetricPyramidNonLocalBlock
from keras_sceneparse.layers.atrous_spatial_pyramid_pooling import AtrousSpatialPyramidPooling
from keras_sceneparse.layers.atrous_spatial_pyramid_pooling_v2 import AtrousSpatialPyramidPoolingV2
from keras_sceneparse.layers.bilinear_upsampling import BilinearUpsamplingInitializer, bilinear_kernel
from keras_sceneparse.layers.bisenet_blocks import AttentionRefinementModule, BilateralGuidedAggregation, ContextEmbedding, FeatureFusionModule, GatherExpansion, StemBlock
from keras_sceneparse.layers.cascade_feature_fusion import CascadeFeatureFusion
from keras_sceneparse.layers.channel_shuffle import ChannelShuffle, channel_shuffle, channel_shuffle_permutation
from keras_sceneparse.layers.context_encoding import ContextEncoding, Encoding
from keras_sceneparse.layers.context_module import ContextIdentityInitializer, ContextModule
from keras_sceneparse.layers.conv_bn_relu import ConvBNReLU
from keras_sceneparse.layers.criss_cross_attention import CrissCrossAttention
from keras_sceneparse.layers.cropping import CropToReference
from keras_sceneparse.layers.data_dependent_upsampling import DataDependentUpsampling, fit_dupsampling_basis
from keras_sceneparse.layers.dense_blocks import DenseBlock, TransitionDown, TransitionUp
from keras_sceneparse.layers.dfanet_blocks import FCAttention, XceptionABlock, XceptionAStage
from keras_sceneparse.layers.dual_attention import ChannelAttention, PositionAttention
from keras_sceneparse.layers.enet_blocks import ENetBottleneck, ENetInitialBlock
from keras_sceneparse.layers.entity_pooling import EntityPooling
from keras_sceneparse.layers.fpn_blocks import FeaturePyramid
from keras_sceneparse.layers.gated_refinement import GateUnit, GatedRefinementUnit
from keras_sceneparse.layers.global_context import GlobalContextBlock
from keras_sceneparse.layers.global_convolution import BoundaryRefinement, GlobalConvolution
from keras_sceneparse.layers.graph_lstm import GraphLSTM, confidence_order
from keras_sceneparse.layers.grid_lstm import GridLSTM2D
from keras_sceneparse.layers.image_normalization import NORMALIZATIONS, ImageNormalization
from keras_sceneparse.layers.joint_pyramid_upsampling import JointPyramidUpsampling
from keras_sceneparse.layers.l2_normalization import L2Normalization
from keras_sceneparse.layers.lednet_blocks import AttentionPyramidNetwork, SplitShuffleNonBottleneck
from keras_sceneparse.layers.linknet_blocks import LinkNetDecoderBlock
from keras_sceneparse.layers.local_global_lstm import LocalGlobalLSTM
from keras_sceneparse.layers.max_pooling_with_argmax import MaxPoolingWithArgmax2D
from keras_sceneparse.layers.max_unpooling import MaxUnpooling2D
from keras_sceneparse.layers.non_local import NonLocalBlock
from keras_sceneparse.layers.object_context import ObjectContextualRepresentation, SpatialGather
from keras_sceneparse.layers.padding import PadToMultiple
from keras_sceneparse.layers.point_sampling import PointHead, grid_points, importance_sampled_points, most_uncertain_grid_points, point_sample, sample_labels, uncertainty
from keras_sceneparse.layers.pointwise_spatial_attention import PointwiseSpatialAttention
from keras_sceneparse.layers.pyramid_pooling import AdaptiveAveragePooling2D, PyramidPoolingModule
from keras_sceneparse.layers.recursive_network import RecursiveNetwork
from keras_sceneparse.layers.refinement_blocks import ChainedResidualPooling, MultiResolutionFusion, RefineNetBlock, ResidualConvUnit
from keras_sceneparse.layers.region_pooling import RegionPooling, RegionUnpooling, scatter_to_pixels
from keras_sceneparse.layers.resizing import ResizeToReference
from keras_sceneparse.layers.transformer_blocks import FeatureFusionBlock, MaskTransformer, MixFFN, MultiHeadSelfAttention, PatchEmbedding, PatchPositionEmbedding, ReassembleBlock, TransformerEncoderBlock, TransformerMLP

__all__ = [
    "NORMALIZATIONS",
    "AdaptiveAveragePooling2D",
    "AsymmetricFusionNonLocalBlock",
    "AsymmetricPyramidNonLocalBlock",
    "AtrousSpatialPyramidPooling",
    "AtrousSpatialPyramidPoolingV2",
    "AttentionPyramidNetwork",
    "AttentionRefinementModule",
    "BilateralGuidedAggregation",
    "BilinearUpsamplingInitializer",
    "BoundaryRefinement",
    "CascadeFeatureFusion",
    "ChainedResidualPooling",
    "ChannelAttention",
    "ChannelShuffle",
    "ContextEmbedding",
    "ContextEncoding",
    "ContextIdentityInitializer",
    "ContextModule",
    "ConvBNReLU",
    "CrissCrossAttention",
    "CropToReference",
    "DataDependentUpsampling",
    "DenseBlock",
    "ENetBottleneck",
    "ENetInitialBlock",
    "Encoding",
    "EntityPooling",
    "FCAttention",
    "FeatureFusionBlock",
    "FeatureFusionModule",
    "FeaturePyramid",
    "GateUnit",
    "GatedRefinementUnit",
    "GatherExpansion",
    "GlobalContextBlock",
    "GlobalConvolution",
    "GraphLSTM",
    "GridLSTM2D",
    "ImageNormalization",
    "JointPyramidUpsampling",
    "L2Normalization",
    "LinkNetDecoderBlock",
    "LocalGlobalLSTM",
    "MaskTransformer",
    "MaxPoolingWithArgmax2D",
    "MaxUnpooling2D",
    "MixFFN",
    "MultiHeadSelfAttention",
    "MultiResolutionFusion",
    "NonLocalBlock",
    "ObjectContextualRepresentation",
    "PadToMultiple",
    "PatchEmbedding",
    "PatchPositionEmbedding",
    "PointHead",
    "PointwiseSpatialAttention",
    "PositionAttention",
    "PyramidPoolingModule",
    "ReassembleBlock",
    "RecursiveNetwork",
    "RefineNetBlock",
    "RegionPooling",
    "RegionUnpooling",
    "ResidualConvUnit",
    "ResizeToReference",
    "SpatialGather",
    "SplitShuffleNonBottleneck",
    "StemBlock",
    "TransformerEncoderBlock",
    "TransformerMLP",
    "TransitionDown",
    "TransitionUp",
    "XceptionABlock",
    "XceptionAStage",
    "bilinear_kernel",
    "channel_shuffle",
    "channel_shuffle_permutation",
    "confidence_order",
    "fit_dupsampling_basis",
    "grid_points",
    "importance_sampled_points",
    "most_uncertain_grid_points",
    "point_sample",
    "sample_labels",
    "scatter_to_pixels",
    "uncertainty",
]
