"""Pictures of segmentations: colour palettes and overlays (NumPy and Pillow only)."""

from keras_sceneparse.viz.overlay import label_image, legend, overlay, save_label_png
from keras_sceneparse.viz.palette import colorize, default_palette
from keras_sceneparse.viz.region_graph import draw_region_graph
from keras_sceneparse.viz.tree import draw_tree

__all__ = ["colorize", "default_palette", "draw_region_graph", "draw_tree", "label_image", "legend", "overlay", "save_label_png"]
