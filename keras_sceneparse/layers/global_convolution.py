"""The blocks of the Global Convolutional Network (Peng, Zhang, Yu, Luo and Sun, CVPR 2017).

Peng et al., "Large Kernel Matters -- Improve Semantic Segmentation by Global
Convolutional Network", CVPR 2017, https://arxiv.org/abs/1703.02719, Sec. 3.2 and Fig. 2:

- :class:`GlobalConvolution` (GCN, Fig. 2b): a large ``k x k`` receptive field from two
  separable branches, ``(k x 1 then 1 x k) + (1 x k then k x 1)``, without nonlinearity;
- :class:`BoundaryRefinement` (BR, Fig. 2c): the residual ``x + conv(relu(conv(x)))``.
"""

import keras

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


@serializable
class GlobalConvolution(keras.layers.Layer):
    """Global Convolutional Network block: a ``k x k`` receptive field at ``O(k)`` cost.

    Peng et al., CVPR 2017, Sec. 3.2, Fig. 2b: "instead of directly using larger kernel or
    global convolution, our GCN module employs a combination of 1 x k + k x 1 and
    k x 1 + 1 x k convolutions, which enables dense connections within a large k x k
    region in the feature map. Different from the separable kernels used by [33], we do
    not use any nonlinearity after convolution layers":

        ``y = W_{1xk} * (W_{kx1} * x) + W_{kx1}' * (W_{1xk}' * x)``

    with "same" padding, so the output keeps the input's spatial size. In the paper the
    block maps each backbone stage straight to class scores (``filters = num_classes``)
    with ``k = 15`` (Table 1). Its parameters: ``2k (C_in C + C^2)`` weights (plus ``4C``
    biases) against ``k^2 C_in C`` for a plain ``k x k`` convolution.

    Args:
        filters: output channels (also the width between the two convolutions of a branch).
        kernel_size: ``k``, the length of the separable kernels (odd; 15 in the paper).
        use_bias: convolutions with biases (the paper is silent; on by default).
        kernel_initializer: initializer of the kernels.
    """

    def __init__(self, filters, kernel_size=15, use_bias=True, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.kernel_size = check_int("kernel_size", kernel_size, minimum=1)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

        k = self.kernel_size
        self.left_column = self._conv((k, 1), "left_kx1")
        self.left_row = self._conv((1, k), "left_1xk")
        self.right_row = self._conv((1, k), "right_1xk")
        self.right_column = self._conv((k, 1), "right_kx1")

    def _conv(self, kernel_size, name):
        return keras.layers.Conv2D(
            self.filters,
            kernel_size,
            padding="same",
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, input_shape):
        middle = (*input_shape[:-1], self.filters)
        self.left_column.build(input_shape)
        self.left_row.build(middle)
        self.right_row.build(input_shape)
        self.right_column.build(middle)

    def call(self, inputs):
        left = self.left_row(self.left_column(inputs))
        right = self.right_column(self.right_row(inputs))
        return left + right

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@serializable
class BoundaryRefinement(keras.layers.Layer):
    """Boundary Refinement block: a residual unit that sharpens score maps near boundaries.

    Peng et al., CVPR 2017, Sec. 3.2, Fig. 2c: "we model the boundary alignment as a
    residual structure ... S~ = S + R(S), where S is the coarse score map and R(.) is the
    residual branch":

        ``y = x + W_2 * relu(W_1 * x + b_1) + b_2``

    with two 3x3 convolutions that keep the channel count (the number of classes in the
    paper) and no normalisation.

    Args:
        kernel_initializer: initializer of both kernels.
    """

    def __init__(self, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.conv1 = None
        self.conv2 = None

    def build(self, input_shape):
        channels = input_shape[-1]
        self.conv1 = keras.layers.Conv2D(
            channels, 3, padding="same", activation="relu", kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy, name="conv1",
        )
        self.conv2 = keras.layers.Conv2D(
            channels, 3, padding="same", kernel_initializer=self.kernel_initializer, dtype=self.dtype_policy,
            name="conv2",
        )
        self.conv1.build(input_shape)
        self.conv2.build(input_shape)

    def call(self, inputs):
        return inputs + self.conv2(self.conv1(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}
