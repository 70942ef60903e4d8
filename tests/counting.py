"""Parameter counting shared by the tests that check models against their papers."""

import numpy as np


def trainable_count(layer):
    """Trainable parameters of a layer or model (what PyTorch's ``numel`` sum counts)."""
    return sum(int(np.prod(w.shape)) for w in layer.trainable_weights)


def moving_statistics(layer):
    """Non-trainable parameters: batch-norm moving means and variances."""
    return sum(int(np.prod(w.shape)) for w in layer.non_trainable_weights)


def resnet_v1c_parameters(depth):
    """Trainable parameters of mmsegmentation's ResNet-V1c: a 3x3 deep stem, no biases.

    With the 7x7 stem instead this formula gives torchvision's ResNet-50/101 without the
    classifier (23,508,032 / 42,500,160; 25,557,032 / 44,549,160 with it).
    """
    stages = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]
    total = 9 * 3 * 32 + 9 * 32 * 32 + 9 * 32 * 64 + 2 * (32 + 32 + 64)
    in_channels = 64
    for stage, blocks in enumerate(stages):
        width = 64 * 2**stage
        for block in range(blocks):
            total += in_channels * width + 9 * width * width + width * 4 * width + 2 * (width + width + 4 * width)
            if block == 0:
                total += in_channels * 4 * width + 2 * 4 * width
            in_channels = 4 * width
    return total
