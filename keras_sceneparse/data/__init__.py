"""TensorFlow input pipelines for scene parsing data sets (imported lazily as ``ksp.data``).

Every reader finds a data set's files in its usual layouts and serves ``tf.data``
pipelines of ``(images, labels)``: images float32 ``(B, H, W, C)`` in ``[0, 255]``,
labels int32 ``(B, H, W)`` of class ids or the reader's ``ignore_class``::

    import keras_sceneparse as ksp

    camvid = ksp.data.CamVid("datasets/camvid")
    train = camvid.dataset("train", batch_size=4, crop_size=(256, 256), augment=True, seed=0)
    model.fit(train, epochs=2)

See ``docs/data.md`` for the layouts, label conventions and augmentation.
"""

import difflib

from keras_sceneparse.data.ade20k import ADE20K
from keras_sceneparse.data.base import SegmentationDataset
from keras_sceneparse.data.camvid import CamVid
from keras_sceneparse.data.cityscapes import Cityscapes
from keras_sceneparse.data.folder import ImageFolder
from keras_sceneparse.data.pascal_sentences import PascalSentences, PascalSentencesRecord
from keras_sceneparse.data.pipeline import Augmentation, normalize
from keras_sceneparse.data.samples import SAMPLE_CLASS_NAMES, SAMPLE_PALETTE, write_sample_dataset
from keras_sceneparse.data.sift_flow import SIFT_FLOW_CLASS_NAMES, SIFT_FLOW_GEOMETRIC_CLASS_NAMES, SIFTFlow
from keras_sceneparse.data.stanford_background import StanfordBackground
from keras_sceneparse.data.sysu_scenes import SYSU_SCENES_CLASS_NAMES, SYSUScenes
from keras_sceneparse.data.voc import PascalVOC, voc_colormap

#: Readers by the name :func:`get_dataset` takes. All are :class:`SegmentationDataset` subclasses
#: except ``"pascal_sentences"`` (:class:`PascalSentences`: captions and masks, no photos, no ``dataset()``).
DATASETS = {
    "camvid": CamVid,
    "voc": PascalVOC,
    "cityscapes": Cityscapes,
    "ade20k": ADE20K,
    "stanford_background": StanfordBackground,
    "sysu_scenes": SYSUScenes,
    "sift_flow": SIFTFlow,
    "pascal_sentences": PascalSentences,
    "folder": ImageFolder,
}


def get_dataset(name, root, **kwargs):
    """The reader registered as ``name`` (see :data:`DATASETS`) for the data at ``root``.

    ``kwargs`` go to the reader, e.g. ``target="surfaces"`` for ``"stanford_background"``,
    ``target="geometric"`` for ``"sift_flow"``
    or ``num_classes=4`` for ``"folder"``.
    """
    if name not in DATASETS:
        close = difflib.get_close_matches(str(name), DATASETS, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"Unknown data set {name!r}.{hint} Available data sets: {', '.join(DATASETS)}.")
    return DATASETS[name](root, **kwargs)


__all__ = [
    "ADE20K",
    "DATASETS",
    "SAMPLE_CLASS_NAMES",
    "SAMPLE_PALETTE",
    "Augmentation",
    "CamVid",
    "Cityscapes",
    "ImageFolder",
    "PascalSentences",
    "PascalSentencesRecord",
    "PascalVOC",
    "SIFT_FLOW_CLASS_NAMES",
    "SIFT_FLOW_GEOMETRIC_CLASS_NAMES",
    "SIFTFlow",
    "SYSU_SCENES_CLASS_NAMES",
    "SYSUScenes",
    "SegmentationDataset",
    "StanfordBackground",
    "get_dataset",
    "normalize",
    "voc_colormap",
    "write_sample_dataset",
]
