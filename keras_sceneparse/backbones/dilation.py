"""Dilated (atrous) variants of ``keras.applications`` encoders, with their weights intact.

DeepLab (Chen et al., TPAMI 2018, Sec. 3.1) and PSPNet keep the last stages of an
ImageNet network at a finer resolution: the strides that would take the feature maps
below ``1 / output_stride`` of the input are set to 1, and every later convolution is
dilated by the factor its input lost, so it still sees the same context. Kernel shapes do
not change, so the ImageNet weights carry over unchanged.

The rewrite works on the functional config of any ``keras.applications`` model, with one
rule: a layer whose input sat at stride ``s_in`` and output at ``s_out`` in the original
network gets stride 1 if ``s_out > output_stride`` and dilation ``s_in / output_stride``
if ``s_in > output_stride``. Explicit ``ZeroPadding2D`` layers in front of a convolution
that loses its stride are replaced by ``"same"`` padding. Original strides are read off a
probe copy of the model built at a fixed input size.
"""

import math

import keras

_PROBE_SIZE = 512
_STRIDED_TYPES = {"Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D", "AveragePooling2D"}
_DILATABLE_TYPES = {"Conv2D", "DepthwiseConv2D", "SeparableConv2D"}


def feature_strides(model):
    """Output stride of each layer (``None`` for non-spatial ones), in ``model.layers`` order.

    The model must be built with a fixed square input size. Strides are listed by position,
    not name: two builds of one architecture number their unnamed layers differently.
    """
    size = model.input_shape[1]
    strides = []
    for layer in model.layers:
        shape = layer.output.shape
        spatial = len(shape) == 4 and shape[1]
        strides.append(2 ** round(math.log2(size / shape[1])) if spatial else None)
    return strides


def _as_pair(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def _inbound_names(layer_config):
    names = []
    for node in layer_config.get("inbound_nodes", []):
        for arg in node.get("args", []):
            args = arg if isinstance(arg, (list, tuple)) else [arg]
            for item in args:
                if isinstance(item, dict) and item.get("class_name") == "__keras_tensor__":
                    names.append(item["config"]["keras_history"][0])
    return names


def dilated_config(config, strides, output_stride):
    """Returns a copy of a functional ``config`` rewritten to the given output stride.

    ``strides`` lists each layer's original output stride in the order of ``config["layers"]``.
    """
    layers = [dict(layer, config=dict(layer["config"])) for layer in config["layers"]]
    if len(strides) != len(layers):
        raise ValueError(f"Got {len(strides)} strides for a model of {len(layers)} layers.")
    by_name = {layer["name"]: layer for layer in layers}
    consumers = {}
    for layer in layers:
        for name in _inbound_names(layer):
            consumers.setdefault(name, []).append(layer["name"])

    for layer, out_stride in zip(layers, strides):
        cfg = layer["config"]
        if layer["class_name"] not in _STRIDED_TYPES or out_stride is None:
            continue
        own_stride = _as_pair(cfg.get("strides", 1))[0]
        in_stride = out_stride // own_stride
        if out_stride > output_stride and own_stride > 1:
            cfg["strides"] = (1, 1)
            if layer["class_name"] in {"MaxPooling2D", "AveragePooling2D"}:
                # DeepLab's stride-1 pooling is 3x3 with padding 1 (an even window at stride 1
                # would shift the maps by half a pixel).
                cfg["padding"] = "same"
                if max(_as_pair(cfg["pool_size"])) == 2:
                    cfg["pool_size"] = (3, 3)
            else:
                # The explicit asymmetric padding of a strided 'valid' convolution becomes
                # 'same' padding, which keeps the size at stride 1 and any dilation.
                for source in _inbound_names(layer):
                    if by_name[source]["class_name"] == "ZeroPadding2D":
                        by_name[source]["config"]["padding"] = ((0, 0), (0, 0))
                        cfg["padding"] = "same"
        if layer["class_name"] in _DILATABLE_TYPES and in_stride > output_stride:
            if max(_as_pair(cfg["kernel_size"])) > 1:
                rate = in_stride // output_stride
                cfg["dilation_rate"] = (rate, rate)
    return {**config, "layers": layers}


def dilate(model, output_stride, probe_builder):
    """A copy of ``model`` at ``output_stride`` (8 or 16), sharing no variables, same weights.

    ``probe_builder(input_shape)`` must build the same architecture (without weights) at a
    given input shape; its strides tell which layers to change.
    """
    channels = model.input_shape[-1]
    probe = probe_builder((_PROBE_SIZE, _PROBE_SIZE, channels))
    if [type(layer) for layer in probe.layers] != [type(layer) for layer in model.layers]:
        raise ValueError("`probe_builder` must build the same architecture as `model`.")
    config = dilated_config(model.get_config(), feature_strides(probe), output_stride)
    dilated = keras.Model.from_config(config)
    dilated.set_weights(model.get_weights())
    return dilated
