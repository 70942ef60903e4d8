"""Multi-grid atrous rates for the last block of a dilated ResNet (DeepLabV3).

Chen, Papandreou, Schroff and Adam, "Rethinking Atrous Convolution for Semantic Image
Segmentation", 2017, https://arxiv.org/abs/1706.05587, Sec. 3.2: "we define Multi_Grid =
(r1, r2, r3) as the unit rates for the three convolutional layers within block4 to block7.
The final atrous rate for the convolutional layer is equal to the multiplication of the
unit rate and the corresponding rate. For example, when output_stride = 16 and Multi_Grid =
(1, 2, 4), the three convolutions will have rates = 2 * (1, 2, 4) = (2, 4, 8) in the block4".
With ASPP and image pooling, Multi_Grid = (1, 2, 4) on block4 is the best setting (Table 5).

The paper's block4 is the last stage of ResNet (``conv5`` in Keras' names); its "three
convolutional layers" are the 3x3 convolutions of its three bottleneck units, the only
ones :mod:`~keras_sceneparse.backbones.dilation` dilates there. :func:`apply_multi_grid`
multiplies their rates in the backbone's functional config and rebuilds it with the same
weights: kernels keep their shapes and, with ``"same"`` padding, the feature maps their
sizes.
"""

import keras

from keras_sceneparse.utils.validation import check_int

#: The 3x3 convolutions of the three bottleneck units of the last ResNet stage (the paper's
#: block4), per backbone architecture. Multi-grid is defined for these only (ResNet-18/34's
#: basic blocks have two 3x3 convolutions per unit, and ResNet-18 two units).
MULTI_GRID_LAYERS = {
    architecture: ("conv5_block1_2_conv", "conv5_block2_2_conv", "conv5_block3_2_conv")
    for architecture in ("resnet50", "resnet101", "resnet152")
}


def multi_grid_config(config, layer_names, multi_grid):
    """Returns a copy of a functional ``config`` with each named layer's dilation rate
    multiplied by the matching entry of ``multi_grid`` (the rate it has is the unit rate)."""
    if len(layer_names) != len(multi_grid):
        raise ValueError(
            f"`multi_grid` must have one rate per unit ({len(layer_names)}: {list(layer_names)}), "
            f"got {tuple(multi_grid)!r}."
        )
    grid = dict(zip(layer_names, (check_int("multi_grid[i]", rate, minimum=1) for rate in multi_grid)))
    layers = []
    for layer in config["layers"]:
        if layer["name"] in grid:
            layer_config = dict(layer["config"])
            if layer_config.get("padding") != "same":
                # Other paddings would shrink the maps as the rate grows.
                raise ValueError(
                    f"Multi-grid needs 'same' padding in {layer['name']!r}, got {layer_config.get('padding')!r}."
                )
            unit_rate = layer_config.get("dilation_rate", 1)
            unit_rate = unit_rate[0] if isinstance(unit_rate, (list, tuple)) else unit_rate
            rate = unit_rate * grid.pop(layer["name"])
            layer_config["dilation_rate"] = (rate, rate)
            layer = dict(layer, config=layer_config)
        layers.append(layer)
    if grid:
        raise ValueError(f"The model has no layer(s) {sorted(grid)} to apply multi-grid to.")
    return {**config, "layers": layers}


def apply_multi_grid(backbone, multi_grid=(1, 2, 4), layer_names=None):
    """A copy of ``backbone`` whose last-block units use the multi-grid rates, same weights.

    Args:
        backbone: a :class:`~keras_sceneparse.backbones.Backbone` (usually dilated, at output
            stride 16 or 8) or any functional model with the layers in ``layer_names``.
        multi_grid: the unit rates ``(r1, r2, r3)``; each multiplies the rate the layer has.
        layer_names: the convolutions to change, in unit order; defaults to
            :data:`MULTI_GRID_LAYERS` for the backbone's ``architecture``.

    Returns:
        A functional ``keras.Model`` named like ``backbone`` with the same inputs and (dict)
        outputs. Its config is the rewritten graph, not ``Backbone``'s arguments: models
        that use it rebuild it from their own arguments when they are loaded.

    Example:
        >>> backbone = Backbone("resnet50", output_stride=16)
        >>> grid = apply_multi_grid(backbone, (1, 2, 4))
        >>> [grid.get_layer(f"conv5_block{i}_2_conv").dilation_rate for i in (1, 2, 3)]
        [(2, 2), (4, 4), (8, 8)]
    """
    if layer_names is None:
        architecture = getattr(backbone, "architecture", None)
        if architecture not in MULTI_GRID_LAYERS:
            raise ValueError(
                f"Multi-grid is defined for the last block of ResNet backbones ({sorted(MULTI_GRID_LAYERS)}); "
                f"got backbone architecture {architecture!r}. Pass `layer_names` to choose the layers."
            )
        layer_names = MULTI_GRID_LAYERS[architecture]
    # A plain functional view of the same graph: `Backbone.get_config` holds its arguments.
    graph = keras.Model(backbone.input, backbone.output, name=backbone.name)
    rebuilt = keras.Model.from_config(multi_grid_config(graph.get_config(), layer_names, multi_grid))
    rebuilt.set_weights(backbone.get_weights())
    return rebuilt
