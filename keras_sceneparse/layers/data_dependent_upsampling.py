"""Data-dependent upsampling, DUpsampling (Tian, He, Shen and Yan, CVPR 2019)."""

import keras
import numpy as np
from keras import ops

from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_int, check_num_classes


def depth_to_space(x, ratio):
    """``(B, h, w, r r N)`` -> ``(B, r h, r w, N)``; channel ``(dy r + dx) N + n`` of pixel
    ``(i, j)`` goes to pixel ``(r i + dy, r j + dx)``, class ``n`` (TensorFlow's
    ``depth_to_space`` order, which :func:`fit_dupsampling_basis` flattens patches in)."""
    shape = ops.shape(x)
    channels = x.shape[-1] // (ratio * ratio)
    x = ops.reshape(x, (shape[0], shape[1], shape[2], ratio, ratio, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (shape[0], shape[1] * ratio, shape[2] * ratio, channels))


def label_patches(labels, num_classes, ratio, ignore_class=None):
    """One-hot ``ratio x ratio`` label patches as rows ``(M, ratio * ratio * num_classes)``.

    ``labels`` ``(B, H, W)``; the rows and columns past the last multiple of ``ratio`` are
    dropped, and ``ignore_class`` (or any id outside ``[0, num_classes)``) is encoded as all
    zeros. Each row is a patch flattened in ``(dy, dx, class)`` order, the order of
    :func:`depth_to_space`.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels[None]
    if labels.ndim == 4 and labels.shape[-1] == 1:
        labels = labels[..., 0]
    if labels.ndim != 3:
        raise ValueError(f"`labels` must be a (batch, height, width) label map, got shape {labels.shape}.")
    batch, height, width = labels.shape
    rows, cols = height // ratio, width // ratio
    if rows == 0 or cols == 0:
        raise ValueError(f"`labels` of size {height}x{width} holds no {ratio}x{ratio} patch.")
    labels = labels[:, : rows * ratio, : cols * ratio].astype(np.int64)
    valid = (labels >= 0) & (labels < num_classes)
    if ignore_class is not None:
        valid &= labels != ignore_class
    one_hot = np.zeros(labels.shape + (num_classes,), np.float64)
    np.put_along_axis(one_hot, np.where(valid, labels, 0)[..., None], 1.0, axis=-1)
    one_hot *= valid[..., None]
    patches = one_hot.reshape(batch, rows, ratio, cols, ratio, num_classes).transpose(0, 1, 3, 2, 4, 5)
    return patches.reshape(-1, ratio * ratio * num_classes)


def fit_dupsampling_basis(labels, num_classes, ratio, channels, ignore_class=None):
    """The reconstruction matrix of DUpsampling, by PCA of one-hot label patches.

    Tian, He, Shen and Yan, CVPR 2019, https://arxiv.org/abs/1903.02120, Sec. 3.1: each
    ``r x r`` patch of the one-hot ground truth, flattened to ``v`` (``r^2 N`` values), is
    compressed to ``x = P v`` (``channels`` values) and reconstructed as ``v^ = W x``;
    ``P`` and ``W`` minimise ``sum_v ||v - W P v||^2`` over the training labels,
    which "can be solved with PCA" in closed form: the rows of ``P = W^T`` are the leading
    eigenvectors of ``sum_v v v^T``. As in that objective there is no mean term (the DUpsampling
    convolution has no bias), so this is PCA of the uncentred second moment.

    Returns ``B`` of shape ``(channels, ratio * ratio * num_classes)`` with orthonormal
    rows (``P = B``, ``W = B^T``): the kernel of :class:`DataDependentUpsampling`'s 1x1
    convolution (``layer.kernel.assign(B[None, None])``), which maps a compressed
    representation ``x`` to ``B^T x`` and rearranges it into the ``r x r`` patch.
    Initialising it so, then training it with the network, is the paper's recipe; the
    layer's default initialisation is random.

    The second moment is ``(r^2 N)^2`` entries (5,376^2 for ``r = 16`` and 21 classes):
    accumulated over the images in float64, the patches are never all held at once.

    Args:
        labels: ``(B, H, W)`` integer label maps (a sample of the training set).
        num_classes: ``N``.
        ratio: ``r``, the upsampling ratio (the encoder's output stride).
        channels: ``C``, the compressed dimension (at most ``r^2 N``).
        ignore_class: label id encoded as no class.
    """
    num_classes = check_num_classes(num_classes)
    ratio = check_int("ratio", ratio, minimum=1)
    size = ratio * ratio * num_classes
    channels = check_int("channels", channels, minimum=1, maximum=size)
    labels = np.asarray(labels)
    labels = labels[None] if labels.ndim == 2 else labels
    moment = np.zeros((size, size), np.float64)
    for image in labels:
        patches = label_patches(image[None], num_classes, ratio, ignore_class)
        moment += patches.T @ patches
    eigenvalues, eigenvectors = np.linalg.eigh(moment)
    order = np.argsort(eigenvalues)[::-1][:channels]
    basis = eigenvectors[:, order].T
    # Eigenvectors have an arbitrary sign: make each one's largest entry positive, for
    # reproducible kernels.
    signs = np.sign(basis[np.arange(channels), np.argmax(np.abs(basis), axis=1)])
    return (basis * signs[:, None]).astype("float32")


@serializable
class DataDependentUpsampling(keras.layers.Layer):
    """DUpsampling: a learned linear reconstruction of ``r x r`` label patches from each pixel.

    Tian, He, Shen and Yan, "Decoders Matter for Semantic Segmentation: Data-Dependent
    Decoding Enables Flexible Feature Aggregation", CVPR 2019,
    https://arxiv.org/abs/1903.02120, Sec. 3.1-3.2 and Fig. 2. A bilinear decoder assumes
    the label map is smooth; DUpsampling instead exploits the redundancy of label patches.
    Each pixel of the ``1/r`` feature map ``F`` (``C`` channels) is mapped by the
    reconstruction matrix ``W`` (``r^2 N x C``) to ``r^2 N`` scores, which are rearranged
    into an ``r x r`` patch of ``N`` class scores (Eq. 2): a 1x1 convolution without bias to
    ``N r^2`` channels followed by depth-to-space (:func:`depth_to_space`). ``W`` is a
    trainable kernel; its PCA initialisation from training labels is
    :func:`fit_dupsampling_basis`.

    Adaptive temperature (Sec. 3.2): "softmax(Z / T)" with a learned temperature ``T``
    (initialised to 1) makes the softmax sharp enough for the linear reconstruction and
    speeds up training. The layer outputs the logits ``Z / T``; the loss's softmax
    completes it.

    Input ``(B, h, w, C)``, output ``(B, r h, r w, N)``.

    Args:
        num_classes: ``N``.
        ratio: ``r``, the upsampling ratio.
        learn_temperature: divide the scores by a learned temperature (Sec. 3.2).
        kernel_initializer: initializer of ``W`` (as the layer's kernel, ``(1, 1, C, r^2 N)``).
    """

    def __init__(self, num_classes, ratio, learn_temperature=True, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, minimum=1)
        self.ratio = check_int("ratio", ratio, minimum=1)
        self.learn_temperature = bool(learn_temperature)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.reconstruction = keras.layers.Conv2D(
            self.num_classes * self.ratio * self.ratio, 1, use_bias=False, kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy, name="reconstruction",
        )

    @property
    def kernel(self):
        """The reconstruction matrix ``W^T`` as a ``(1, 1, C, r^2 N)`` kernel."""
        return self.reconstruction.kernel

    def build(self, input_shape):
        self.reconstruction.build(input_shape)
        self.temperature = (
            self.add_weight(name="temperature", shape=(), initializer="ones") if self.learn_temperature else None
        )

    def call(self, inputs):
        x = depth_to_space(self.reconstruction(inputs), self.ratio)
        if self.temperature is not None:
            x = x / ops.cast(self.temperature, x.dtype)
        return x

    def compute_output_shape(self, input_shape):
        scale = [None if size is None else size * self.ratio for size in input_shape[1:3]]
        return (input_shape[0], *scale, self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "ratio": self.ratio,
            "learn_temperature": self.learn_temperature,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
