"""ShuffleNet's channel shuffle (Zhang, Zhou, Lin and Sun, CVPR 2018, Sec. 3.1, Fig. 1).

Zhang, Zhou, Lin and Sun, "ShuffleNet: An Extremely Efficient Convolutional Neural Network
for Mobile Devices", CVPR 2018, https://arxiv.org/abs/1707.01083.
"""

import keras
import numpy as np
from keras import ops

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int


def channel_shuffle_permutation(channels, groups):
    """Source channel of each output channel of a ``groups``-way channel shuffle.

    ShuffleNet (Sec. 3.1) reshapes the ``C`` channels to ``(groups, C / groups)``, transposes
    and flattens: output channel ``k = i * groups + j`` is input channel ``j * C / groups + i``,
    so consecutive outputs come from different groups.
    """
    channels = check_int("channels", channels, minimum=1)
    groups = check_int("groups", groups, minimum=1)
    if channels % groups:
        raise ValueError(
            f"A channel shuffle with `groups={groups}` needs a channel count divisible by "
            f"{groups}; got {channels} channels."
        )
    per_group = channels // groups
    return np.arange(channels).reshape(groups, per_group).T.reshape(-1)


def channel_shuffle(x, groups):
    """Channel shuffle of a channels-last tensor: :func:`channel_shuffle_permutation` applied
    to the last axis. A gather rather than reshape-transpose-reshape, so the spatial sizes
    may be unknown."""
    permutation = channel_shuffle_permutation(x.shape[-1], groups)
    return ops.take(x, ops.convert_to_tensor(permutation, "int32"), axis=-1)


@serializable
class ChannelShuffle(keras.layers.Layer):
    """Interleaves the channels of ``groups`` groups, so that the next grouped (or split)
    operation sees channels from every group.

    Zhang et al. 2018, Sec. 3.1 and Fig. 1(b, c): for ``C = groups * n`` channels, reshape to
    ``(groups, n)``, transpose to ``(n, groups)`` and flatten back to ``C``:

        ``y[..., i * groups + j] = x[..., j * n + i]``,  ``0 <= i < n``, ``0 <= j < groups``.

    LEDNet's SS-nbt unit (Wang et al. 2019) shuffles its two split branches with
    ``groups=2``: the first half of the channels goes to the even outputs, the second half to
    the odd ones. The layer has no weights.

    Args:
        groups: number of groups; it must divide the input channels.

    Example:
        >>> ChannelShuffle(2)(np.arange(6.0).reshape(1, 1, 1, 6))[0, 0, 0]
        [0., 3., 1., 4., 2., 5.]
    """

    def __init__(self, groups=2, **kwargs):
        super().__init__(**kwargs)
        self.groups = check_int("groups", groups, minimum=1)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.groups:
            raise ValueError(
                f"ChannelShuffle(groups={self.groups}) needs a known number of input channels "
                f"divisible by {self.groups}; got input shape {tuple(input_shape)}."
            )

    def call(self, inputs):
        return channel_shuffle(inputs, self.groups)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}
