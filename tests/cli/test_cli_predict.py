"""``sceneparse predict``: label PNGs equal to the model's argmax, overlays, colours, errors."""

import json
import shutil

import keras
import numpy as np
import pytest
from PIL import Image

from keras_sceneparse import viz
from keras_sceneparse.cli import main
from tests.cli.cli_helpers import NUM_CLASSES, read_ids, read_rgb


def test_predict_writes_label_and_overlay_pngs(trained_run, sample_data, tmp_path, capsys):
    _, sample = sample_data
    images = [image for image, _ in sample.files("val")[:2]]
    assert main(["predict", "--model-path", trained_run / "model.keras", *images, "--output", tmp_path / "out"]) == 0
    model = keras.models.load_model(trained_run / "model.keras")
    palette = json.loads((trained_run / "dataset.json").read_text())["palette"]
    for path in images:
        stem = path.rsplit("/", 1)[-1][: -len(".png")]
        image = read_rgb(path)
        expected = np.argmax(model.predict(image[None], verbose=0)[0], axis=-1)
        with Image.open(tmp_path / "out" / f"{stem}_labels.png") as labels_png:
            assert labels_png.mode == "P"
            stored_palette = np.array(labels_png.getpalette()).reshape(-1, 3)[:NUM_CLASSES]
        np.testing.assert_array_equal(stored_palette, palette)
        ids = read_ids(tmp_path / "out" / f"{stem}_labels.png")
        assert ids.shape == image.shape[:2] and ids.min() >= 0 and ids.max() < NUM_CLASSES
        np.testing.assert_array_equal(ids, expected)
        overlay = read_rgb(tmp_path / "out" / f"{stem}_overlay.png")
        np.testing.assert_array_equal(overlay, viz.overlay(image, expected, palette, alpha=0.5))
    out = capsys.readouterr().out
    assert all(f"{path}: wrote" in out for path in images)


def test_predict_colours_default_and_from_a_given_file(trained_run, sample_data, tmp_path):
    _, sample = sample_data
    image = sample.files("val")[0][0]
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(trained_run / "model.keras", lonely / "model.keras")  # no dataset.json next to it
    assert main(["predict", "--model-path", lonely / "model.keras", image, "--output", tmp_path / "a"]) == 0
    with Image.open(tmp_path / "a" / "0000_labels.png") as png:
        np.testing.assert_array_equal(np.array(png.getpalette()).reshape(-1, 3)[:NUM_CLASSES], viz.default_palette(4))

    colours = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]
    (tmp_path / "colours.json").write_text(json.dumps({"palette": colours}))
    assert main(["predict", "--model-path", lonely / "model.keras", image, "--output", tmp_path / "b",
                 "--palette-from", tmp_path / "colours.json"]) == 0
    with Image.open(tmp_path / "b" / "0000_labels.png") as png:
        np.testing.assert_array_equal(np.array(png.getpalette()).reshape(-1, 3)[:NUM_CLASSES], colours)


def test_predict_accepts_rgba_and_jpeg(trained_run, sample_data, tmp_path):
    _, sample = sample_data
    rgb = Image.open(sample.files("val")[0][0]).convert("RGB")
    rgb.convert("RGBA").save(tmp_path / "rgba.png")
    rgb.save(tmp_path / "photo.jpg", quality=95)
    assert main(["predict", "--model-path", trained_run / "model.keras", tmp_path / "rgba.png",
                 tmp_path / "photo.jpg", "--output", tmp_path / "out"]) == 0
    assert read_ids(tmp_path / "out" / "rgba_labels.png").shape == (rgb.height, rgb.width)
    assert read_ids(tmp_path / "out" / "photo_labels.png").shape == (rgb.height, rgb.width)


@pytest.mark.parametrize(
    "make_image, message",
    [
        (lambda path: None, "image {path!r} does not exist"),
        (lambda path: path.write_bytes(b"\x89PNG\r\n\x1a\n not really"), "cannot read image {path!r}"),
        (lambda path: path.write_bytes(b""), "cannot read image {path!r}"),
        (lambda path: Image.new("L", (8, 8)).save(path, format="PNG"),
         "image {path!r} has 1 channel(s) (mode 'L') but the model expects 3"),
    ],
    ids=["missing", "corrupt", "empty", "grayscale"],
)
def test_predict_image_errors_name_the_file(trained_run, tmp_path, capsys, make_image, message):
    path = tmp_path / "picture.png"
    make_image(path)
    code = main(["predict", "--model-path", trained_run / "model.keras", path, "--output", tmp_path / "out"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("sceneparse: error: ") and len(err.strip().splitlines()) == 1
    assert message.format(path=str(path)) in err


def test_predict_refuses_two_images_with_the_same_output_name(trained_run, tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    code = main(["predict", "--model-path", trained_run / "model.keras", tmp_path / "a" / "x.png",
                 tmp_path / "b" / "x.png", "--output", tmp_path / "out"])
    assert code == 2
    assert "would both be written as x_*.png" in capsys.readouterr().err
