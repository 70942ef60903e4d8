"""Segmentation architectures, one module each, all reachable through :func:`get`.

    >>> import keras_sceneparse as ksp
    >>> ksp.models.list_models()
    ['deeplab_largefov', 'deeplabv3plus', 'fcn16s', 'fcn32s', 'fcn8s', 'segnet', 'unet']
    >>> model = ksp.models.get("unet", num_classes=12)
"""

from keras_sceneparse.models.ann import ANN
from keras_sceneparse.models.bisenet import BiSeNet
from keras_sceneparse.models.bisenet_v2 import BiSeNetV2
from keras_sceneparse.models.ccnet import CCNet
from keras_sceneparse.models.danet import DANet
from keras_sceneparse.models.deconvnet import DeconvNet
from keras_sceneparse.models.deeplab_large_fov import DeepLabLargeFOV
from keras_sceneparse.models.deeplab_v2 import DeepLabV2
from keras_sceneparse.models.deeplab_v3 import DeepLabV3
from keras_sceneparse.models.deeplab_v3_plus import DeepLabV3Plus
from keras_sceneparse.models.dfanet import DFANet
from keras_sceneparse.models.dilated_net import DilatedNet
from keras_sceneparse.models.dpt import DPT
from keras_sceneparse.models.dupsampling import DUpsamplingNet
from keras_sceneparse.models.encnet import EncNet
from keras_sceneparse.models.enet import ENet
from keras_sceneparse.models.fastfcn import FastFCN
from keras_sceneparse.models.fc_densenet import FCDenseNet
from keras_sceneparse.models.fcn import FCN
from keras_sceneparse.models.gcn import GCN
from keras_sceneparse.models.gcnet import GCNet
from keras_sceneparse.models.gfrnet import GFRNet
from keras_sceneparse.models.icnet import ICNet
from keras_sceneparse.models.lednet import LEDNet
from keras_sceneparse.models.linknet import LinkNet
from keras_sceneparse.models.lrn import LRN
from keras_sceneparse.models.nonlocal_net import NonLocalNet
from keras_sceneparse.models.ocrnet import OCRNet
from keras_sceneparse.models.parsenet import ParseNet
from keras_sceneparse.models.pointrend import PointRend, PointRendRefinement
from keras_sceneparse.models.psanet import PSANet
from keras_sceneparse.models.pspnet import PSPNet
from keras_sceneparse.models.refinenet import RefineNet
from keras_sceneparse.models.registry import describe, get, list_models, model_class, register_model
from keras_sceneparse.models.segformer import SegFormer
from keras_sceneparse.models.segmentation_model import SegmentationModel
from keras_sceneparse.models.segmenter import Segmenter
from keras_sceneparse.models.segnet import SegNet
from keras_sceneparse.models.semantic_fpn import SemanticFPN
from keras_sceneparse.models.test_time_augmentation import DEEPLAB_SCALES, MultiScaleFlipInference
from keras_sceneparse.models.unet import UNet

__all__ = [
    "ANN",
    "DEEPLAB_SCALES",
    "DPT",
    "FCN",
    "GCN",
    "LRN",
    "BiSeNet",
    "BiSeNetV2",
    "CCNet",
    "DANet",
    "DFANet",
    "DUpsamplingNet",
    "DeconvNet",
    "DeepLabLargeFOV",
    "DeepLabV2",
    "DeepLabV3",
    "DeepLabV3Plus",
    "DilatedNet",
    "ENet",
    "EncNet",
    "FCDenseNet",
    "FastFCN",
    "GCNet",
    "GFRNet",
    "ICNet",
    "LEDNet",
    "LinkNet",
    "MultiScaleFlipInference",
    "NonLocalNet",
    "OCRNet",
    "PSANet",
    "PSPNet",
    "ParseNet",
    "PointRend",
    "PointRendRefinement",
    "RefineNet",
    "SegFormer",
    "SegNet",
    "SegmentationModel",
    "Segmenter",
    "SemanticFPN",
    "UNet",
    "describe",
    "get",
    "list_models",
    "model_class",
    "register_model",
]
