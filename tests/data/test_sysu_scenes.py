import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from dataset_fixtures import (
    SYSU_FIXTURE_LABEL_LIST,
    collect,
    iteration_error,
    random_image,
    replace_line,
    write_jpeg,
    write_sysu_converted,
    write_sysu_original,
)

import keras_sceneparse as ksp
from keras_sceneparse.data import SYSU_SCENES_CLASS_NAMES, SYSUScenes
from keras_sceneparse.data.sysu_scenes import read_label_list
from keras_sceneparse.text import SYSU_SCENES_CLASSES

REAL_SYSU = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "sysu_scenes"

# SYSU_FIXTURE_LABEL_LIST (person, road, Sky, lamp, bg, tree, tv, flower) as class ids, by hand:
# number 0 is background; lamp and flower are no SYSU-Scenes tag.
FIXTURE_TABLE = np.array([0, 24, 31, 29, 255, 0, 35, 36, 255])
TRAIN_STEMS = ["1", "2", "3", "4", "6", "7", "8", "9"]  # images 1..10 without the multiples of 5, as paths sort
TEST_STEMS = ["10", "5"]


def stems(pairs):
    return [Path(image).stem for image, *_ in pairs]


# --- The converted copy --------------------------------------------------------------------


def test_converted_layout_pairs_files_splits_and_labels(tmp_path, rng):
    written = write_sysu_converted(tmp_path, rng)
    sysu = SYSUScenes(tmp_path)
    assert sysu.layout == "converted" and sysu.splits() == ["all", "train", "test"]
    assert (sysu.num_classes, sysu.ignore_class) == (38, 255)
    assert stems(sysu.files("train")) == TRAIN_STEMS and stems(sysu.files("test")) == TEST_STEMS
    assert len(sysu.files("all")) == 10
    for image, label in sysu.files("all"):
        assert Path(label) == tmp_path / "labels" / f"{Path(image).stem}.png"
    _, labels = collect(sysu.dataset("all", batch_size=4, shuffle=False))
    for stem, got in zip(stems(sysu.files("all")), labels):
        np.testing.assert_array_equal(got, written[stem][1])  # 255 stays the ignore id


def test_converted_sentences_and_records(tmp_path, rng):
    written = write_sysu_converted(tmp_path, rng, empty=7)
    sysu = SYSUScenes(tmp_path)
    sentences = sysu.sentences("train")
    assert list(sentences) == TRAIN_STEMS
    assert sentences["7"] == [] and sentences["1"] == ["A person 1 is riding a horse."]
    assert sum(len(texts) for texts in sysu.sentences("all").values()) == 9
    records = sysu.records("test")
    assert [(Path(image).name, Path(label).name, texts) for image, label, texts in records] == [
        ("10.jpg", "10.png", written["10"][2]),
        ("5.jpg", "5.png", written["5"][2]),
    ]


def test_training_batches(tmp_path, rng):
    write_sysu_converted(tmp_path, rng)
    sysu = ksp.data.get_dataset("sysu_scenes", tmp_path)
    assert isinstance(sysu, SYSUScenes)
    images, labels = collect(sysu.dataset("train", batch_size=3, crop_size=(8, 8), augment=True, seed=0))
    assert len(images) == 8 and images[0].shape == (8, 8, 3) and labels[0].shape == (8, 8)
    assert all(np.all((label >= 0) & (label < 38) | (label == 255)) for label in labels)


# --- The original repository ---------------------------------------------------------------


@pytest.mark.parametrize(
    "annotations, sentences, folder, suffix",
    [
        ("ground_truth_mat", "dict", "ground truth", ".mat"),
        ("seg_mat", "list", "seg", ".mat"),
        ("seg_png", "list", "seg", ".png"),
        ("seg_png", "dict", "seg", ".png"),
    ],
)
def test_original_layout(tmp_path, rng, annotations, sentences, folder, suffix):
    written = write_sysu_original(tmp_path, rng, annotations=annotations, sentences=sentences)
    sysu = SYSUScenes(tmp_path)
    assert sysu.layout == "original" and sysu.splits() == ["all", "train", "test"]
    assert stems(sysu.files("train")) == TRAIN_STEMS and stems(sysu.files("test")) == TEST_STEMS
    for image, label in sysu.files("all"):
        assert Path(label) == tmp_path / folder / f"{Path(image).stem}{suffix}"
    _, labels = collect(sysu.dataset("all", batch_size=4, shuffle=False))
    for stem, got in zip(stems(sysu.files("all")), labels):
        np.testing.assert_array_equal(got, FIXTURE_TABLE[written[stem][1]])
    assert sysu.sentences("all") == {stem: written[stem][2] for stem in stems(sysu.files("all"))}
    assert sysu.sentences("test") == {"10": written["10"][2], "5": written["5"][2]}
    assert sysu.records("train")[2][2] == [] and sysu.records("train")[3][2] == written["4"][2]


def test_label_list_names_map_to_classes(tmp_path, rng):
    written = write_sysu_original(tmp_path, rng)
    sysu = SYSUScenes(tmp_path)
    assert sysu.label_names == SYSU_FIXTURE_LABEL_LIST
    np.testing.assert_array_equal(sysu.label_table("all"), FIXTURE_TABLE)
    expected = np.zeros(38, np.int64)
    for _, raw, _ in written.values():
        ids = FIXTURE_TABLE[raw]
        expected += np.bincount(ids[ids != 255], minlength=38)
    np.testing.assert_array_equal(sysu.class_frequencies("all"), expected)


def test_label_list_as_char_matrix(tmp_path):
    scipy.io.savemat(tmp_path / "names.mat", {"names": np.array(["person", "sky   "])})
    assert read_label_list(tmp_path / "names.mat") == ["person", "sky"]


def test_class_names_and_index(tmp_path, rng):
    assert SYSU_SCENES_CLASS_NAMES == ["background", *SYSU_SCENES_CLASSES]  # the caption vocabulary's tags
    write_sysu_converted(tmp_path, rng)
    sysu = SYSUScenes(tmp_path)
    assert len(sysu.palette) == 38 and sysu.palette[0] == (0, 0, 0)
    assert [sysu.class_index(name) for name in ("background", "person", "street/road", "Road", "TV / Monitor")] == [
        0, 24, 31, 31, 36,
    ]
    with pytest.raises(ValueError, match="Unknown SYSU-Scenes class 'persons'.*'person'"):
        sysu.class_index("persons")


# --- Errors ------------------------------------------------------------------------------


def test_missing_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SYSUScenes(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="images/ with labels/, classes.txt.*'ground truth/' or seg/"):
        SYSUScenes(tmp_path)


def test_class_list_errors_name_the_file(tmp_path, rng):
    write_sysu_converted(tmp_path, rng)
    classes = tmp_path / "classes.txt"
    names = classes.read_text().splitlines()
    classes.write_text("\n".join(names[:31] + ["road"] + names[32:]) + "\n")
    with pytest.raises(ValueError, match=r"classes\.txt does not match SYSU-Scenes: line 32 \(class id 31\) is 'road'"):
        SYSUScenes(tmp_path)
    classes.write_text("\n".join(names[:-1]) + "\n")
    with pytest.raises(ValueError, match=r"classes\.txt names 37 classes; expected 38"):
        SYSUScenes(tmp_path)
    classes.unlink()
    with pytest.raises(FileNotFoundError, match=r"class list .*classes\.txt does not exist"):
        SYSUScenes(tmp_path)


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"image": "3", "sentences": [', r"sentences\.jsonl, line 3: not valid JSON"),
        ('["3", []]', r"sentences\.jsonl, line 3: expected a JSON object, got list"),
        ('{"image": "3", "sentences": [], "split": "val"}', r"line 3: 'split' must be one of \['train', 'test'\]"),
        ('{"image": "3", "sentences": [1], "split": "train"}', "line 3: sentences must be a string or a list"),
        ('{"image": "3", "split": "train"}', "line 3: missing 'sentences'"),
        ('{"image": "2", "sentences": [], "split": "train"}', r"line 3: the image '2' is listed again \(.* line 2\)"),
    ],
)
def test_malformed_sentence_lines(tmp_path, rng, line, message):
    write_sysu_converted(tmp_path, rng)
    replace_line(tmp_path / "sentences.jsonl", 3, line)
    with pytest.raises(ValueError, match=message):
        SYSUScenes(tmp_path)


def test_file_errors_name_the_files(tmp_path, rng):
    write_sysu_converted(tmp_path, rng)
    sysu = SYSUScenes(tmp_path)
    with pytest.raises(ValueError, match=r"Unknown split 'val'.*'all', 'train', 'test'"):
        sysu.files("val")
    (tmp_path / "labels" / "5.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"images/5\.jpg has no label map: expected .*labels/5\.png"):
        sysu.files("test")
    write_jpeg(tmp_path / "images" / "11.jpg", random_image(rng))
    with pytest.raises(ValueError, match=r"images/11\.jpg has no line in .*sentences\.jsonl"):
        sysu.files("train")
    (tmp_path / "images" / "11.jpg").unlink()
    (tmp_path / "images" / "4.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"image '4' of .*sentences\.jsonl, line 4, is not in"):
        sysu.sentences("train")
    (tmp_path / "sentences.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match=r"sentences\.jsonl does not exist"):
        SYSUScenes(tmp_path)


def test_original_layout_errors(tmp_path, rng):
    write_sysu_original(tmp_path, rng, sentences=None)
    sysu = SYSUScenes(tmp_path)
    assert len(sysu.files("test")) == 2  # the labels work without sentences
    with pytest.raises(FileNotFoundError, match=r"no sentences: expected .*sentences\.json"):
        sysu.sentences("train")
    (tmp_path / "sentences.json").write_text(json.dumps({"12": "A cat."}))
    with pytest.raises(FileNotFoundError, match=r"sentences\.json, entry '12': the image '12' is not in"):
        SYSUScenes(tmp_path).records("all")
    (tmp_path / "sentences.json").write_text('{"1": "A cat."')
    with pytest.raises(ValueError, match=r"sentences\.json is not valid JSON"):
        SYSUScenes(tmp_path).sentences("all")
    (tmp_path / "label_list.mat").rename(tmp_path / "labels.mat")
    with pytest.raises(FileNotFoundError, match=r"no label_list\.mat: expected .*label_list\.mat"):
        SYSUScenes(tmp_path)


def test_bad_annotations_name_the_file(tmp_path, rng):
    write_sysu_original(tmp_path, rng, count=5)
    sysu = SYSUScenes(tmp_path)
    annotation = tmp_path / "ground truth" / "5.mat"
    scipy.io.savemat(annotation, {"labels": np.zeros((12, 16), np.uint8)})
    message = iteration_error(sysu.dataset("test", batch_size=1))
    assert str(annotation) in message and "no variable 'groundtruth'" in message
    scipy.io.savemat(annotation, {"groundtruth": np.full((12, 16), 9, np.uint8)})  # beyond the 8 names
    message = iteration_error(sysu.dataset("test", batch_size=1))
    assert str(annotation) in message
    with pytest.raises(ValueError, match=r"5\.mat holds ids \[-1\]"):
        sysu.class_frequencies("test")
    annotation.write_bytes(b"not a mat file" * 10)
    with pytest.raises(ValueError, match=r"Cannot read the annotation .*5\.mat"):
        sysu.class_frequencies("test")
    write_jpeg(tmp_path / "images" / "extra.jpg", random_image(rng))
    with pytest.raises(ValueError, match=r"extra\.jpg is not named by a number"):
        sysu.files("train")


# --- The real data set ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not REAL_SYSU.is_dir(), reason="the real SYSU-Scenes copy is not available")
def test_real_sysu_scenes():
    sysu = SYSUScenes(REAL_SYSU)
    assert sysu.layout == "converted"
    assert [len(sysu.files(split)) for split in ("all", "train", "test")] == [5046, 4037, 1009]
    assert all(int(stem) % 5 == 0 for stem in stems(sysu.files("test")))
    sentences = sysu.sentences("all")
    assert sum(len(texts) for texts in sentences.values()) == 5045 and sentences["1785"] == []
    # Building the pipeline checks every file's header and size; one batch is decoded.
    images, labels = next(iter(sysu.dataset("all", batch_size=4, shuffle=False)))
    assert images.shape[0] == 4 and images.shape[-1] == 3 and max(images.shape[1:3]) == 320
    values = np.unique(labels.numpy())
    assert values.min() >= 0 and (values[values != 255].max() < 38) and len(values) > 2
