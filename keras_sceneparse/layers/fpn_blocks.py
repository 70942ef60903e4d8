"""The Feature Pyramid Network's top-down pathway (Lin, Dollár, Girshick, He, Hariharan and Belongie, CVPR 2017)."""

import keras

from keras_sceneparse.backend import resize_images
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_int


@serializable
class FeaturePyramid(keras.layers.Layer):
    """FPN's top-down pathway with lateral connections: a backbone pyramid to equal-width maps.

    Lin et al., "Feature Pyramid Networks for Object Detection", CVPR 2017,
    https://arxiv.org/abs/1612.03144, Sec. 3, Fig. 3. Called on the backbone maps
    ``[C_2, ..., C_n]`` ordered fine to coarse (strides 4, 8, 16, 32 for a ResNet), it
    returns ``[P_2, ..., P_n]`` with ``filters`` channels each, at the same sizes:

        ``M_n = L_n(C_n)``, ``M_i = L_i(C_i) + up(M_{i+1})``, ``P_i = W_i * M_i``

    where ``L_i`` is a 1x1 lateral convolution "to reduce channel dimensions", ``up`` is
    "nearest neighbor upsampling" by 2 (here: nearest resizing to the exact size of
    ``C_i``, which is the same map when the sizes double) and ``W_i`` a 3x3 convolution
    "on each merged map to generate the final feature map, which is to reduce the
    aliasing effect of upsampling". No normalisation or nonlinearity: "there are no
    non-linearities in these extra layers". 256 channels in the paper ("d = 256"); Panoptic
    FPN (Kirillov et al., CVPR 2019) reuses it unchanged.

    Args:
        filters: channels of every output (``d = 256``).
        upsampling: ``"nearest"`` (the paper's) or ``"bilinear"``.
        kernel_initializer: initializer of the kernels.
    """

    def __init__(self, filters=256, upsampling="nearest", kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.upsampling = check_choice("upsampling", upsampling, {"nearest", "bilinear"})
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.lateral_convs = []
        self.output_convs = []

    def _conv(self, kernel_size, name):
        return keras.layers.Conv2D(
            self.filters,
            kernel_size,
            padding="same",
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, inputs_shape):
        shapes = list(inputs_shape)
        if len(shapes) < 1 or not isinstance(shapes[0], (list, tuple)):
            raise ValueError(f"FeaturePyramid expects a list of feature maps, fine to coarse; got shape {inputs_shape}.")
        for level, shape in enumerate(shapes):
            lateral = self._conv(1, f"lateral_{level}")
            output = self._conv(3, f"output_{level}")
            lateral.build(shape)
            output.build((*shape[:-1], self.filters))
            self.lateral_convs.append(lateral)
            self.output_convs.append(output)

    def call(self, inputs):
        inputs = list(inputs)
        merged = [None] * len(inputs)
        top_down = None
        for level in reversed(range(len(inputs))):
            lateral = self.lateral_convs[level](inputs[level])
            if top_down is not None:
                size = keras.ops.shape(lateral)[1:3]
                lateral = lateral + resize_images(top_down, size, interpolation=self.upsampling)
            merged[level] = top_down = lateral
        return [conv(x) for conv, x in zip(self.output_convs, merged)]

    def compute_output_shape(self, inputs_shape):
        return [(*shape[:-1], self.filters) for shape in inputs_shape]

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "upsampling": self.upsampling,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
