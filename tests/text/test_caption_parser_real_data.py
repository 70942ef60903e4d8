"""The caption parser over every real SYSU-Scenes sentence and PASCAL caption (slow).

The data sets live beside the project (``../shared/datasets``, see its README); the
thresholds are the coverage measured with benchmarks/caption_parser_coverage.py (docs/text.md)
less a margin, so a change that loses coverage fails here.
"""

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_sceneparse.structure import leaves, validate_tree
from keras_sceneparse.text import SYSU_SCENES_CLASSES, VOC_CLASSES, CaptionParser

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"

pytestmark = pytest.mark.slow


def _data(*parts):
    path = DATASETS.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: the real-data test needs ../shared/datasets beside the project.")
    return path


def _rows(*parts):
    with _data(*parts).open() as lines:
        return [json.loads(line) for line in lines]


def _label_classes(path, names):
    return {names[i] for i in np.unique(np.asarray(Image.open(path))) if 0 < i < len(names)}


def _run(parser, sentences):
    counts = {"complete": 0, "partial": 0, "none": 0, "several": 0, "several_complete": 0}
    exceptions, trees = [], []
    for image, sentence in sentences:
        try:
            analysis = parser.analyse(sentence)
        except Exception as error:  # noqa: BLE001 - the count is the assertion
            exceptions.append((sentence, error))
            continue
        if analysis.tree is None:
            counts["none"] += 1
            continue
        validate_tree(analysis.tree)
        counts["complete" if analysis.complete else "partial"] += 1
        if len(analysis.objects) >= 2:
            counts["several"] += 1
            counts["several_complete"] += analysis.complete
        trees.append((image, analysis.tree))
    return counts, exceptions, trees


def test_sysu_scenes_sentences():
    classes = _data("sysu_scenes", "classes.txt").read_text().split("\n")
    assert tuple(classes[1:38]) == SYSU_SCENES_CLASSES
    rows = _rows("sysu_scenes", "sentences.jsonl")
    sentences = [(row["image"], sentence) for row in rows for sentence in row["sentences"]]
    assert len(sentences) == 5045
    start = time.perf_counter()
    counts, exceptions, trees = _run(CaptionParser("sysu_scenes"), sentences)
    assert time.perf_counter() - start < 30
    assert exceptions == []
    # measured: 4,559 complete (90.4%), 5 without a tree; 96.8% of those naming two classes
    assert counts["complete"] >= 0.89 * len(sentences)
    assert counts["none"] <= 10
    assert counts["several_complete"] >= 0.96 * counts["several"]
    # The label maps are independent of the vocabulary: most leaves must be annotated there
    # (measured 94.6%).
    present = checked = 0
    for image, tree in trees:
        annotated = _label_classes(_data("sysu_scenes", "labels", f"{image}.png"), classes)
        labels = leaves(tree)
        checked += len(labels)
        present += sum(label in annotated for label in labels)
    assert present >= 0.93 * checked


def test_pascal_sentences():
    rows = _rows("pascal_sentences", "captions.jsonl")
    assert {row["category"] for row in rows} == set(VOC_CLASSES)
    sentences = [(row["image"], caption) for row in rows for caption in row["captions"]]
    start = time.perf_counter()
    counts, exceptions, trees = _run(CaptionParser("voc"), sentences)
    assert time.perf_counter() - start < 30
    assert exceptions == []
    # measured: 425 captions (8.5%) name no VOC class; 79.8% of those naming two are complete
    assert counts["none"] <= 0.09 * len(sentences)
    assert counts["several_complete"] >= 0.78 * counts["several"]
    names = ("background", *VOC_CLASSES)
    masks = {row["image"]: row["mask"] for row in rows}
    present = checked = 0
    for image, tree in trees:
        if masks[image]:
            annotated = _label_classes(_data("pascal_sentences", "masks", f"{image}.png"), names)
            labels = leaves(tree)
            checked += len(labels)
            present += sum(label in annotated for label in labels)
    assert present >= 0.92 * checked  # measured 93.3%
