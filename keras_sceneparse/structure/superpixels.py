"""Superpixels and their adjacency graphs: the nodes and edges of Graph LSTMs.

The Graph LSTM (Liang et al., ECCV 2016) takes superpixels as nodes and joins
adjacent superpixels by edges; H-LSTM (Peng et al., IJCAI 2016) runs it over superpixel
maps at several scales. This module computes them with scikit-image, outside the model
(NumPy in, NumPy out):

- :func:`superpixels` / :func:`multiscale_superpixels`: label maps with consecutive ids
  ``0 .. N-1``;
- :func:`region_adjacency`: the ``(N, N)`` 0/1 symmetric matrix of 4-connected neighbours;
- :func:`pad_graphs`: a batch of graphs of different sizes padded to one ``N``, the inputs
  of :class:`~keras_sceneparse.layers.region_pooling.RegionPooling` and
  :class:`~keras_sceneparse.layers.graph_lstm.GraphLSTM`.
"""

import numbers

import numpy as np
from skimage import segmentation

from keras_sceneparse.utils.validation import check_choice, check_int

METHODS = ("slic", "felzenszwalb")
#: Number of superpixels of each scale of :func:`multiscale_superpixels` (our choice).
DEFAULT_SCALES = (32, 64, 128)
#: Id of label-map pixels outside every region (padding added by :func:`pad_graphs`).
NO_REGION = -1
_FELZENSZWALB_SEARCH_STEPS = 12


def superpixels(image, n_segments=100, method="slic", seed=0, **kwargs):
    """Over-segments ``image`` into about ``n_segments`` superpixels.

    Args:
        image: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` array; integers in ``[0, 255]``
            or floats in ``[0, 1]`` (float images whose maximum exceeds 1 are taken to be in
            ``[0, 255]`` and divided by 255).
        n_segments: the number of superpixels aimed at. SLIC (Achanta et al., TPAMI 2012)
            takes it directly and returns about that many; Felzenszwalb-Huttenlocher (IJCV
            2004) has no such parameter, so its ``scale`` is searched (bisection in log
            space, 12 runs) for the count closest to ``n_segments``, with ``min_size``
            ``H W / (4 n_segments)``, unless ``scale`` is passed.
        method: ``"slic"`` or ``"felzenszwalb"``.
        seed: accepted so that callers can pin it; both algorithms are deterministic in
            scikit-image, so the same image always gives the same map.
        **kwargs: passed to ``skimage.segmentation.slic`` or ``felzenszwalb`` (e.g.
            ``compactness``, ``sigma``).

    Returns:
        ``(H, W)`` int32 label map with ids ``0 .. N-1`` (scikit-image's ids renumbered
        consecutively, in the same order).
    """
    image = _as_float_image(image)
    n_segments = check_int("n_segments", n_segments, minimum=1)
    method = check_choice("method", method, METHODS)
    check_int("seed", seed)
    height, width = image.shape[:2]
    channel_axis = None if image.shape[-1] == 1 else -1
    if channel_axis is None:
        image = image[..., 0]
    if method == "slic":
        options = {"compactness": 10.0 if channel_axis is not None else 0.1, **kwargs}
        labels = segmentation.slic(
            image, n_segments=n_segments, start_label=0, channel_axis=channel_axis, **options
        )
        return _consecutive(labels)

    options = {"min_size": max(1, height * width // (4 * n_segments)), **kwargs}
    if "scale" in options:
        return _consecutive(segmentation.felzenszwalb(image, channel_axis=channel_axis, **options))

    def felzenszwalb(scale):
        return _consecutive(segmentation.felzenszwalb(image, scale=scale, channel_axis=channel_axis, **options))

    # The number of segments falls as `scale` grows (larger components are preferred).
    low, high = np.log(1e-2), np.log(1e5)
    best = None
    for _ in range(_FELZENSZWALB_SEARCH_STEPS):
        middle = 0.5 * (low + high)
        labels = felzenszwalb(float(np.exp(middle)))
        count = int(labels.max()) + 1
        if best is None or abs(count - n_segments) < abs(int(best.max()) + 1 - n_segments):
            best = labels
        if count == n_segments:
            break
        low, high = (middle, high) if count > n_segments else (low, middle)
    return best


def multiscale_superpixels(image, scales=DEFAULT_SCALES, method="slic", seed=0, **kwargs):
    """Superpixel maps of ``image`` at several scales: a list of :func:`superpixels` label
    maps, one per entry of ``scales`` (each the ``n_segments`` aimed at), in that order.

    H-LSTM's multi-scale superpixel LSTM runs one Graph LSTM per scale; the paper's exact
    scales are not given here, so ``DEFAULT_SCALES`` (32, 64 and 128 superpixels) is ours.
    """
    if isinstance(scales, numbers.Integral) or len(scales) == 0:
        raise ValueError(f"`scales` must be a non-empty sequence of superpixel counts, got {scales!r}.")
    return [superpixels(image, n_segments=scale, method=method, seed=seed, **kwargs) for scale in scales]


def region_adjacency(labels, num_regions=None):
    """The region adjacency graph of a label map: ``(N, N)`` int32, symmetric, 0/1.

    Regions ``a != b`` are adjacent when a pixel of ``a`` and a pixel of ``b`` are
    4-connected neighbours (share an edge). Negative ids (:data:`NO_REGION`) belong to no
    region. ``num_regions`` defaults to the largest id plus one; a larger value adds
    isolated nodes. The diagonal is zero.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"`labels` must be a 2-D integer label map, got shape {labels.shape} and dtype {labels.dtype}."
        )
    largest = int(labels.max()) if labels.size else -1
    if num_regions is None:
        num_regions = max(largest + 1, 0)
    num_regions = check_int("num_regions", num_regions, minimum=0)
    if largest >= num_regions:
        raise ValueError(f"`labels` holds id {largest}, outside [0, num_regions={num_regions}).")
    first = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
    second = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
    boundary = (first != second) & (first >= 0) & (second >= 0)
    adjacency = np.zeros((num_regions, num_regions), "int32")
    adjacency[first[boundary], second[boundary]] = 1
    adjacency[second[boundary], first[boundary]] = 1
    return adjacency


def pad_graphs(graphs, max_nodes=None):
    """Pads superpixel graphs of different sizes into one batch.

    Args:
        graphs: a sequence of ``(labels, adjacency)`` pairs: an ``(H_k, W_k)`` label map
            with ids in ``[0, N_k)`` and its ``(N_k, N_k)`` adjacency, or ``None`` to compute
            it with :func:`region_adjacency`.
        max_nodes: the batch's node count ``N`` (a fixed ``N`` keeps shapes static across
            batches); defaults to the largest ``N_k``.

    Returns:
        ``(segments, adjacency, node_mask)``: ``segments`` ``(B, H, W)`` int32, the label
        maps padded at the bottom and right with ``-1`` to the largest height and width;
        ``adjacency`` ``(B, N, N)`` int32, zero beyond each graph; ``node_mask`` ``(B, N)``
        float32, 1 for the ``N_k`` real nodes.
    """
    graphs = list(graphs)
    if not graphs:
        raise ValueError("`graphs` must hold at least one (labels, adjacency) pair, got an empty sequence.")
    maps, matrices = [], []
    for index, graph in enumerate(graphs):
        try:
            labels, adjacency = graph
        except (TypeError, ValueError):
            raise ValueError(
                f"`graphs[{index}]` must be a (labels, adjacency) pair, got {type(graph).__name__}."
            ) from None
        labels = np.asarray(labels)
        if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"`graphs[{index}]` labels must be a 2-D integer map, got shape {labels.shape} "
                f"and dtype {labels.dtype}."
            )
        adjacency = region_adjacency(labels) if adjacency is None else np.asarray(adjacency)
        if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
            raise ValueError(f"`graphs[{index}]` adjacency must be square, got shape {adjacency.shape}.")
        if labels.size and labels.max() >= adjacency.shape[0]:
            raise ValueError(
                f"`graphs[{index}]` labels hold id {labels.max()} but its adjacency has only "
                f"{adjacency.shape[0]} nodes."
            )
        maps.append(labels)
        matrices.append(adjacency)
    largest = max(m.shape[0] for m in matrices)
    max_nodes = largest if max_nodes is None else check_int("max_nodes", max_nodes, minimum=1)
    if largest > max_nodes:
        raise ValueError(f"A graph has {largest} nodes, more than `max_nodes` ({max_nodes}).")
    height, width = max(m.shape[0] for m in maps), max(m.shape[1] for m in maps)
    batch = len(graphs)
    segments = np.full((batch, height, width), NO_REGION, "int32")
    adjacency = np.zeros((batch, max_nodes, max_nodes), "int32")
    node_mask = np.zeros((batch, max_nodes), "float32")
    for k, (labels, matrix) in enumerate(zip(maps, matrices)):
        segments[k, : labels.shape[0], : labels.shape[1]] = labels
        adjacency[k, : len(matrix), : len(matrix)] = matrix != 0
        node_mask[k, : len(matrix)] = 1.0
    return segments, adjacency, node_mask


def _as_float_image(image):
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"`image` must have shape (H, W), (H, W, 1) or (H, W, 3), got {image.shape}.")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"`image` must not be empty, got shape {image.shape}.")
    if np.issubdtype(image.dtype, np.integer):
        return image.astype("float64") / 255.0
    if not np.issubdtype(image.dtype, np.floating) or not np.all(np.isfinite(image)):
        raise ValueError(f"`image` must hold finite numbers, got dtype {image.dtype}.")
    image = image.astype("float64")
    return image / 255.0 if image.max() > 1.0 else image


def _consecutive(labels):
    """Renumbers ids to ``0 .. N-1``, keeping their order."""
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.reshape(labels.shape).astype("int32")
