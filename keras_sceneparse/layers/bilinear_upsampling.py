import keras
import numpy as np

from keras_sceneparse.utils.serialization import serializable


def bilinear_kernel(kernel_size):
    """The 2D bilinear interpolation filter of a transposed convolution with stride
    ``kernel_size // 2`` (FCN's ``upsample_filt``): weights ``(1 - |x - c| / f)`` per axis."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    grid = np.arange(kernel_size)
    profile = 1.0 - np.abs(grid - center) / factor
    return np.outer(profile, profile)


@serializable
class BilinearUpsamplingInitializer(keras.initializers.Initializer):
    """Initialises a ``Conv2DTranspose`` kernel to per-channel bilinear interpolation.

    Long et al., "Fully Convolutional Networks for Semantic Segmentation", CVPR 2015,
    Sec. 3.3: "we initialize the 2x upsampling to bilinear interpolation". Channel ``c`` of
    the output reads only channel ``c`` of the input, so input and output channel counts
    must match. Kernel shape: ``(k, k, channels, channels)``; use stride ``k // 2``.
    """

    def __call__(self, shape, dtype=None):
        height, width, out_channels, in_channels = shape
        if height != width or out_channels != in_channels:
            raise ValueError(
                "BilinearUpsamplingInitializer needs a square kernel with as many output as input "
                f"channels, got kernel shape {tuple(shape)}."
            )
        kernel = np.zeros(shape, dtype="float32")
        filt = bilinear_kernel(height)
        for channel in range(out_channels):
            kernel[:, :, channel, channel] = filt
        return keras.ops.convert_to_tensor(kernel, dtype=dtype)

    def get_config(self):
        return {}
