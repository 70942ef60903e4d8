from pathlib import Path

import numpy as np
import pytest
from dataset_fixtures import replace_line, write_pascal_sentences, write_png
from PIL import Image

import keras_sceneparse as ksp
from keras_sceneparse.data import PascalSentences, PascalSentencesRecord

REAL_PASCAL = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "pascal_sentences"


def test_records_splits_and_captions(tmp_path, rng):
    written = write_pascal_sentences(tmp_path, rng)
    pascal = PascalSentences(tmp_path)
    assert len(pascal) == 4 and pascal.splits() == ["all", "train", "val"]
    records = pascal.records()
    assert all(isinstance(record, PascalSentencesRecord) for record in records)
    assert [record.image for record in records] == list(written)
    assert [record.image for record in pascal.records("train")] == ["2008_000032", "2008_000043"]
    assert [record.image for record in pascal.records("val")] == ["2008_000716"]
    first, last = records[0], records[3]
    assert (first.category, first.voc_split) == ("bus", "train")
    assert first.mask_path == str(tmp_path / "masks" / "2008_000032.png")
    assert (last.mask_path, last.voc_split) == (None, None)
    assert pascal.captions("val") == {"2008_000716": written["2008_000716"][0]["captions"]}
    assert [len(captions) for captions in pascal.captions().values()] == [5, 4, 5, 5]


def test_categories_and_classes(tmp_path, rng):
    write_pascal_sentences(tmp_path, rng)
    pascal = ksp.data.get_dataset("pascal_sentences", tmp_path)
    assert isinstance(pascal, PascalSentences)
    counts = pascal.categories()
    assert list(counts)[0] == "aeroplane" and list(counts)[-1] == "tvmonitor" and len(counts) == 20
    assert (counts["bus"], counts["diningtable"], counts["boat"], counts["cat"]) == (1, 1, 1, 0)
    assert sum(pascal.categories("train").values()) == 2
    assert len(pascal.class_names) == 21 and pascal.class_names[0] == "background"
    assert pascal.class_names[11] == "diningtable" and pascal.class_names[20] == "tvmonitor"
    assert (pascal.num_classes, pascal.ignore_class) == (21, 255) and pascal.palette[1] == (128, 0, 0)


def test_mask_reads_palette_indices(tmp_path, rng):
    written = write_pascal_sentences(tmp_path, rng)
    pascal = PascalSentences(tmp_path)
    for image in ("2008_000032", "2008_000716"):
        mask = pascal.mask(image)
        assert mask.dtype.kind == "i" and mask.shape == written[image][1].shape
        np.testing.assert_array_equal(mask, written[image][1])
    with Image.open(tmp_path / "masks" / "2008_000032.png") as png:
        assert png.mode == "P"  # the file stores colours through a palette; the reader returns indices


def test_mask_errors_name_the_image_or_file(tmp_path, rng):
    write_pascal_sentences(tmp_path, rng)
    pascal = PascalSentences(tmp_path)
    with pytest.raises(ValueError, match="'2008_001799' has no mask"):
        pascal.mask("2008_001799")
    with pytest.raises(ValueError, match=r"'2008_999999' is not in .*captions\.jsonl"):
        pascal.mask("2008_999999")
    with pytest.raises(ValueError, match=r"Unknown split 'test'.*'all', 'train', 'val'"):
        pascal.records("test")
    path = tmp_path / "masks" / "2008_000032.png"
    write_png(path, rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"2008_000032\.png has PIL mode 'RGB'"):
        pascal.mask("2008_000032")
    write_png(path, np.full((12, 16), 30, np.uint8))
    with pytest.raises(ValueError, match=r"2008_000032\.png holds ids \[30\]"):
        pascal.mask("2008_000032")


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"image": "2008_000043", "category": "diningtable",', r"captions\.jsonl, line 2: not valid JSON"),
        ("[1, 2]", r"captions\.jsonl, line 2: expected a JSON object, got list"),
        ('{"image": "2008_000043", "category": "cat", "mask": false}', "line 2: missing 'captions'"),
        ('{"image": "x", "category": "plane", "captions": [], "mask": false}', "line 2: 'category' must be a VOC"),
        ('{"image": "x", "category": "cat", "captions": "A cat.", "mask": false}', "line 2: 'captions' must be a list"),
        ('{"image": "x", "category": "cat", "captions": [], "mask": 1}', "line 2: 'mask' must be true or false"),
        ('{"image": "x", "category": "cat", "captions": [], "mask": false, "voc_split": "test"}', "line 2: 'voc_spl"),
        ('{"image": "2008_000032", "category": "cat", "captions": [], "mask": false}', r"again \(first on line 1"),
    ],
)
def test_malformed_lines(tmp_path, rng, line, message):
    write_pascal_sentences(tmp_path, rng)
    replace_line(tmp_path / "captions.jsonl", 2, line)
    with pytest.raises(ValueError, match=message):
        PascalSentences(tmp_path)


def test_missing_files(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        PascalSentences(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match=r"expected .*captions\.jsonl"):
        PascalSentences(tmp_path)
    write_pascal_sentences(tmp_path, rng)
    (tmp_path / "masks" / "2008_000716.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"line 3: the image '2008_000716' has a mask, but .*2008_000716\.png"):
        PascalSentences(tmp_path)
    (tmp_path / "captions.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="lists no images"):
        PascalSentences(tmp_path)


def test_blank_lines_are_skipped(tmp_path, rng):
    written = write_pascal_sentences(tmp_path, rng)
    path = tmp_path / "captions.jsonl"
    path.write_text("\n" + path.read_text().replace("\n", "\n\n"))
    assert [record.image for record in PascalSentences(tmp_path).records()] == list(written)


@pytest.mark.slow
@pytest.mark.skipif(not REAL_PASCAL.is_dir(), reason="the real PASCAL Sentences copy is not available")
def test_real_pascal_sentences():
    pascal = PascalSentences(REAL_PASCAL)
    records = pascal.records()
    assert len(records) == 1000
    assert sum(record.mask_path is not None for record in records) == 987
    assert (len(pascal.records("train")), len(pascal.records("val"))) == (906, 81)
    # 996 images have five captions, three have four and one has six: 4,998, not 5 x 1,000.
    assert sum(len(captions) for captions in pascal.captions().values()) == 4998
    assert set(pascal.categories().values()) == {50}
    record = pascal.records("val")[0]
    mask = pascal.mask(record.image)
    values = set(np.unique(mask).tolist())
    assert mask.ndim == 2 and values <= {*range(21), 255}
    assert pascal.class_names.index(record.category) in values
