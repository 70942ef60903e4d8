"""Captions to semantic trees: object and relation vocabularies and the caption parser.

Pure Python and nltk (tokeniser, CFG, chart parser); no nltk data file, no TensorFlow.
See docs/text.md.
"""

from keras_sceneparse.text.caption_parser import CaptionParse, CaptionParser, LexicalItem
from keras_sceneparse.text.objects import (
    SYSU_SCENES_CLASSES,
    SYSU_SCENES_NON_OBJECTS,
    SYSU_SCENES_OBJECTS,
    VOC_CLASSES,
    VOC_NON_OBJECTS,
    VOC_OBJECTS,
)
from keras_sceneparse.text.relations import CATCH_ALL_RELATION, RELATIONS

__all__ = [
    "CATCH_ALL_RELATION",
    "CaptionParse",
    "CaptionParser",
    "LexicalItem",
    "RELATIONS",
    "SYSU_SCENES_CLASSES",
    "SYSU_SCENES_NON_OBJECTS",
    "SYSU_SCENES_OBJECTS",
    "VOC_CLASSES",
    "VOC_NON_OBJECTS",
    "VOC_OBJECTS",
]
