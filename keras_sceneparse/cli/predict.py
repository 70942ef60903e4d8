"""``sceneparse predict``: label images with a saved model and draw the result.

For each ``IMAGE`` it writes ``<stem>_labels.png``, a paletted PNG whose pixel values are the
class ids (viewers show the colours), and ``<stem>_overlay.png``, the colours blended over
the image. Classes and colours come from the training run's ``dataset.json``.
"""

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from keras_sceneparse import viz
from keras_sceneparse.cli import common
from keras_sceneparse.viz.palette import as_palette

HELP = "label images with a saved model; writes <stem>_labels.png and <stem>_overlay.png"

EXAMPLES = """\
examples:
  sceneparse predict --model-path runs/unet-camvid/model.keras street1.jpg street2.jpg --output out/
  sceneparse predict --model-path model.keras --palette-from runs/unet-camvid/dataset.json *.png --output out/
"""

#: Image modes whose alpha channel is dropped; every other mode is read as it is.
ALPHA_MODES = {"RGBA": "RGB", "LA": "L", "PA": "RGB", "P": "RGB"}


def add_parser(subparsers):
    parser = common.add_subcommand(
        subparsers,
        "predict",
        HELP,
        (
            "Label images with a saved model. For each IMAGE, OUTPUT/<stem>_labels.png holds the "
            "class ids (an 8-bit paletted PNG) and OUTPUT/<stem>_overlay.png the colours over the "
            "image. Colours come from --palette-from, else from the dataset.json next to the model, "
            "else the PASCAL VOC colour map."
        ),
        EXAMPLES,
    )
    common.add_model_path_argument(parser)
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder for the PNGs")
    parser.add_argument("--palette-from", metavar="FILE", help="dataset.json giving class names and colours")
    parser.add_argument(
        "--alpha", type=float, default=0.5, metavar="A", help="opacity of the colours in the overlay (default: 0.5)"
    )
    parser.set_defaults(run=run)
    return parser


def read_image(path, channels):
    """Reads an image as a ``(H, W, channels)`` float32 array in ``[0, 255]``, naming the file on failure."""
    path = Path(path)
    if not path.is_file():
        raise common.UsageError(f"image {str(path)!r} does not exist")
    try:
        with Image.open(path) as picture:
            picture.load()
            if picture.mode in ALPHA_MODES:
                picture = picture.convert(ALPHA_MODES[picture.mode])
            mode = picture.mode
            array = np.asarray(picture)
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise common.UsageError(f"cannot read image {str(path)!r}: {common.first_line(error)}") from error
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] != channels or mode not in ("RGB", "L"):
        raise common.UsageError(
            f"image {str(path)!r} has {array.shape[-1] if array.ndim == 3 else 'no'} channel(s) (mode {mode!r}) "
            f"but the model expects {channels}"
        )
    return array.astype(np.float32)


def class_colors(metadata, num_classes):
    """The palette and ignore id of the metadata, or the VOC colour map when there is none."""
    palette = metadata.get("palette") if metadata else None
    if palette is None:
        return viz.default_palette(num_classes), None
    if len(palette) < num_classes:
        raise common.UsageError(f"the palette has {len(palette)} colours for a model of {num_classes} classes")
    return as_palette(palette), metadata.get("ignore_class")


def output_stems(paths):
    """Output names for the images; two images with the same stem would overwrite each other."""
    stems = {}
    for path in paths:
        stem = Path(path).stem
        if stem in stems:
            raise common.UsageError(f"images {stems[stem]!r} and {str(path)!r} would both be written as {stem}_*.png")
        stems[stem] = str(path)
    return list(stems)


def run(args):
    if not 0.0 <= args.alpha <= 1.0:
        raise common.UsageError(f"--alpha must lie in [0, 1], got {args.alpha}")
    stems = output_stems(args.images)
    model = common.load_model(args.model_path)
    metadata = common.load_metadata(args.model_path, args.palette_from)
    num_classes = common.model_num_classes(model)
    palette, ignore_class = class_colors(metadata, num_classes)
    channels = model.input_shape[-1]
    output = common.prepare_output_dir(args.output)

    predict = common.label_predictor(model)
    for path, stem in zip(args.images, stems):
        image = read_image(path, channels)
        labels = common.crop_to(predict(image[None]), image.shape[0], image.shape[1])
        labels = np.asarray(labels[0])
        viz.save_label_png(output / f"{stem}_labels.png", labels, palette)
        Image.fromarray(viz.overlay(image, labels, palette, alpha=args.alpha, ignore_class=ignore_class)).save(
            output / f"{stem}_overlay.png"
        )
        print(f"{path}: wrote {output / f'{stem}_labels.png'} and {output / f'{stem}_overlay.png'}")
    return 0
