import keras
import numpy as np

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int

#: Table 1 of Yu and Koltun: dilation of the eight layers (the last is the 1x1 layer).
CONTEXT_DILATIONS = (1, 1, 2, 4, 8, 16, 1, 1)
CONTEXT_KERNEL_SIZES = (3, 3, 3, 3, 3, 3, 3, 1)
#: Output channels of each layer in multiples of ``C`` (Table 1, "Basic" and "Large").
CONTEXT_WIDTHS = {"basic": (1, 1, 1, 1, 1, 1, 1, 1), "large": (2, 2, 4, 8, 16, 32, 32, 1)}
#: Table 1, "Truncation": every layer but the last is followed by max(., 0).
CONTEXT_TRUNCATION = (True,) * 7 + (False,)


@serializable
class ContextIdentityInitializer(keras.initializers.Initializer):
    """The identity initialisation of the context module (Yu and Koltun, Sec. 3, Eq. 4-5).

    For a kernel of shape ``(k, k, c_in, c_out)`` in a module of ``C`` channels
    (``channels``), with ``t`` the kernel offset from the centre, ``a`` an input and ``b``
    an output channel::

        k(t, a, b) = C / c_out   if t = 0 and floor(a C / c_in) = floor(b C / c_out)
                     epsilon     otherwise,   epsilon ~ N(0, stddev^2)       (Eq. 5)

    With ``c_in = c_out = C`` and ``stddev = 0`` this is Eq. 4, ``1[t=0] 1[a=b]``: each
    layer passes its input through unchanged. In the large module channel ``a`` of the
    ``C``-channel input is spread evenly over its group of ``c / C`` channels, and each
    group sums back to the original value, so the stack starts as the identity on
    non-negative inputs (Sec. 3: "standard initialization procedures did not readily
    work for the module").

    Args:
        channels: ``C``, the channels of the module's input and output.
        stddev: standard deviation of the noise ``epsilon`` (0 for Eq. 4); the paper asks
            for ``stddev << C / c_out``.
        seed: seed of the noise.
    """

    def __init__(self, channels, stddev=0.0, seed=None):
        self.channels = check_int("channels", channels, minimum=1)
        self.stddev = check_float("stddev", stddev, minimum=0.0)
        self.seed = seed

    def __call__(self, shape, dtype=None):
        height, width, c_in, c_out = shape
        if height != width or height % 2 != 1:
            raise ValueError(f"ContextIdentityInitializer needs an odd square kernel, got kernel shape {tuple(shape)}.")
        rng = np.random.default_rng(self.seed)
        kernel = rng.normal(0.0, self.stddev, size=shape) if self.stddev else np.zeros(shape)
        groups_in = np.arange(c_in) * self.channels // c_in
        groups_out = np.arange(c_out) * self.channels // c_out
        centre = height // 2
        same_group = groups_in[:, None] == groups_out[None, :]
        kernel[centre, centre] = np.where(same_group, self.channels / c_out, kernel[centre, centre])
        return keras.ops.convert_to_tensor(kernel.astype("float32"), dtype=dtype)

    def get_config(self):
        return {"channels": self.channels, "stddev": self.stddev, "seed": self.seed}


@serializable
class ContextModule(keras.layers.Layer):
    """Dilated-convolution context module: multi-scale context aggregation on class scores.

    Yu and Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", ICLR 2016,
    https://arxiv.org/abs/1511.07122, Sec. 3 and Table 1. A stack of seven 3x3 convolutions
    with dilations 1, 1, 2, 4, 8, 16, 1 (receptive field 67x67) and a final 1x1
    convolution takes ``C`` feature maps (the front end's class scores) to ``C`` maps of
    the same size. Every layer but the last is followed by ``max(., 0)`` (Table 1,
    "Truncation"). Layers pad their inputs so the resolution is kept.

    The *basic* module has ``C`` channels throughout (``64 C^2`` weights plus ``8 C``
    biases); the *large* one widens to ``2C, 2C, 4C, 8C, 16C, 32C, 32C`` and back to ``C``.
    Both start from the identity (:class:`ContextIdentityInitializer`, Eq. 4 for the basic,
    Eq. 5 with noise for the large module) with zero biases.

    Args:
        variant: ``"basic"`` or ``"large"``.
        noise_stddev: standard deviation of Eq. 5's ``epsilon`` for the large module
            (default 1e-3, well below ``C / c_{i+1} >= 1/32``); the basic module uses the
            noise-free Eq. 4 unless this is set explicitly.
        seed: seed of that noise.

    Example:
        >>> ContextModule("basic")(np.ones((1, 33, 33, 21), "float32")).shape  # identity at start
        TensorShape([1, 33, 33, 21])
    """

    def __init__(self, variant="basic", noise_stddev=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.variant = check_choice("variant", variant, CONTEXT_WIDTHS)
        if noise_stddev is None:
            noise_stddev = 1e-3 if self.variant == "large" else 0.0
        self.noise_stddev = check_float("noise_stddev", noise_stddev, minimum=0.0)
        self.seed = seed
        self.convolutions = []

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"ContextModule needs a known channel count, got input shape {input_shape}.")
        self.convolutions = []
        shape = input_shape
        for index, (width, kernel_size, dilation, truncate) in enumerate(
            zip(CONTEXT_WIDTHS[self.variant], CONTEXT_KERNEL_SIZES, CONTEXT_DILATIONS, CONTEXT_TRUNCATION), start=1
        ):
            seed = None if self.seed is None else self.seed + index
            conv = keras.layers.Conv2D(
                width * channels,
                kernel_size,
                dilation_rate=dilation,
                padding="same",
                activation="relu" if truncate else None,
                kernel_initializer=ContextIdentityInitializer(channels, self.noise_stddev, seed),
                bias_initializer="zeros",
                dtype=self.dtype_policy,
                name=f"layer{index}",
            )
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            self.convolutions.append(conv)

    def call(self, inputs):
        x = inputs
        for conv in self.convolutions:
            x = conv(x)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "variant": self.variant, "noise_stddev": self.noise_stddev, "seed": self.seed}
