"""Encoders returning feature pyramids, built on ``keras.applications``, plain or dilated."""

from keras_sceneparse.backbones.applications import APPLICATIONS
from keras_sceneparse.backbones.backbone import PYRAMID_LEVELS, Backbone, list_backbones
from keras_sceneparse.backbones.dilation import dilate, feature_strides

__all__ = ["APPLICATIONS", "PYRAMID_LEVELS", "Backbone", "dilate", "feature_strides", "list_backbones"]
