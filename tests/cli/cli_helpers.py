"""Constants and argument lists shared by the command-line tests."""

NUM_CLASSES = 4
IGNORE_CLASS = 255
SAMPLE_SIZE = (32, 48)
CLASS_NAMES = ["sky", "ground", "building", "tree"]
#: The smallest U-Net that still has skip connections: fast enough for many runs per test.
TINY_UNET = [
    "--model", "unet", "--model-arg", "base_filters=4", "--model-arg", "depth=2",
    "--model-arg", 'padding="same"', "--model-arg", "dropout=0",
]


def train_argv(data_dir, output, *extra):
    """``sceneparse train`` of the tiny U-Net: one epoch of two batches of two 32x32 crops."""
    return [
        "train", *TINY_UNET, "--dataset", "folder", "--data-dir", str(data_dir), "--num-classes", str(NUM_CLASSES),
        "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "2", "--image-size", "32", "32",
        "--verbose", "0", "--output", str(output), *extra,
    ]


def read_rgb(path):
    """An image file as a float32 ``(H, W, 3)`` array, read with Pillow (independently of the CLI)."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as picture:
        return np.asarray(picture.convert("RGB"), dtype=np.float32)


def read_ids(path):
    import numpy as np
    from PIL import Image

    with Image.open(path) as picture:
        return np.asarray(picture).astype(np.int64)
