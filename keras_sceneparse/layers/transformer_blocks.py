"""Transformer blocks for dense prediction, shared by SegFormer, Segmenter and DPT.

- :class:`PatchEmbedding`: a strided convolution turning an image (or a feature map) into a
  grid of tokens; non-overlapping (ViT, Dosovitskiy et al., ICLR 2021, Eq. 1) or overlapping
  with a LayerNorm (SegFormer's overlapped patch merging, Xie et al., NeurIPS 2021, Sec. 3.1).
- :class:`PatchPositionEmbedding`: ViT's class token and learned position embeddings, the
  grid of embeddings resized bilinearly to the input's patch grid (Segmenter, Sec. 3.1).
- :class:`MultiHeadSelfAttention`: ``softmax(Q K^T / sqrt(d_head)) V`` per head (Vaswani et
  al., NeurIPS 2017, Eq. 1), with SegFormer's sequence reduction of keys and values
  (efficient self-attention, Xie et al., Eq. 2).
- :class:`TransformerMLP` and :class:`MixFFN` (SegFormer, Eq. 3: a 3x3 depthwise
  convolution between the two linear layers).
- :class:`TransformerEncoderBlock`: pre-norm ``x + Attn(LN(x))``, ``x + MLP(LN(x))`` with
  stochastic depth.
- :class:`MaskTransformer`: Segmenter's decoder (Strudel et al., ICCV 2021, Sec. 3.2).
- :class:`ReassembleBlock` and :class:`FeatureFusionBlock`: DPT's decoder parts (Ranftl et
  al., ICCV 2021, Sec. 3, Fig. 1).

Token sequences are ``(batch, tokens, channels)``; maps are ``(batch, height, width,
channels)``. The attention, MLP and encoder blocks accept either, returning the same rank
(Mix-FFN and sequence reduction need maps); sizes may be unknown until run time.
"""

import math

import keras
from keras import ops

from keras_sceneparse.backend import resize_images
from keras_sceneparse.layers.resizing import _aligned_coordinates, _bilinear_sample
from keras_sceneparse.utils.serialization import serializable
from keras_sceneparse.utils.validation import check_choice, check_float, check_int


def _truncated_normal():
    # ViT / SegFormer initialise linear layers with trunc_normal_(std=0.02).
    return keras.initializers.TruncatedNormal(stddev=0.02)


def _dense(units, name, policy, use_bias=True):
    return keras.layers.Dense(
        units, use_bias=use_bias, kernel_initializer=_truncated_normal(), dtype=policy, name=name
    )


def _gelu(x):
    # PyTorch's nn.GELU (used by every reference implementation) is the exact erf form.
    return keras.activations.gelu(x, approximate=False)


def flatten_map(x):
    """``(B, H, W, C)`` -> ``(B, H * W, C)``, row-major as PyTorch's ``flatten(2).transpose(1, 2)``."""
    return ops.reshape(x, (ops.shape(x)[0], -1, x.shape[-1]))


def sequence_to_map(sequence, reference):
    """``(B, H * W, C)`` -> ``(B, H, W, C)`` with ``H, W`` the spatial size of ``reference``."""
    shape = ops.shape(reference)
    return ops.reshape(sequence, (ops.shape(sequence)[0], shape[1], shape[2], sequence.shape[-1]))


def _with_channels(shape, channels):
    return (*shape[:-1], channels)


@serializable
class PatchEmbedding(keras.layers.Layer):
    """Embeds ``patch_size`` x ``patch_size`` patches, taken every ``strides`` pixels, as tokens.

    ViT (Dosovitskiy et al., ICLR 2021, Eq. 1) projects non-overlapping patches linearly,
    i.e. a convolution with kernel and stride ``patch_size`` (``strides=None``); the input
    must then be padded to a multiple of the patch size by the caller. SegFormer's
    overlapped patch merging (Xie et al., NeurIPS 2021, Sec. 3.1: K=7, S=4, P=3 for the
    first stage, K=3, S=2, P=1 after) pads ``patch_size // 2`` on every side, so any size
    works (output ``ceil(size / strides)``), and normalises the tokens (``layer_norm=True``).
    The output is a map ``(B, H', W', hidden_dim)``.

    Args:
        hidden_dim: token channels.
        patch_size: kernel size.
        strides: patch stride; ``None`` means ``patch_size`` (no overlap, no padding).
        layer_norm: LayerNorm over the channels of each token.
        epsilon: LayerNorm epsilon.
    """

    def __init__(self, hidden_dim, patch_size, strides=None, layer_norm=False, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = check_int("hidden_dim", hidden_dim, minimum=1)
        self.patch_size = check_int("patch_size", patch_size, minimum=1)
        self.strides = self.patch_size if strides is None else check_int("strides", strides, minimum=1)
        self.layer_norm = bool(layer_norm)
        self.epsilon = check_float("epsilon", epsilon, minimum=0.0)
        self.padding = self.patch_size // 2 if self.strides < self.patch_size else 0
        policy = self.dtype_policy
        self.projection = keras.layers.Conv2D(
            self.hidden_dim, self.patch_size, strides=self.strides, padding="valid", dtype=policy, name="projection"
        )
        self.norm = (
            keras.layers.LayerNormalization(epsilon=self.epsilon, dtype=policy, name="norm") if self.layer_norm else None
        )

    def build(self, input_shape):
        self.projection.build(input_shape)
        if self.norm is not None:
            self.norm.build(_with_channels(input_shape, self.hidden_dim))

    def call(self, inputs):
        x = inputs
        if self.padding:
            p = self.padding
            x = ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]])
        x = self.projection(x)
        return self.norm(x) if self.norm is not None else x

    def compute_output_shape(self, input_shape):
        def size(s):
            return None if s is None else (s + 2 * self.padding - self.patch_size) // self.strides + 1

        return (input_shape[0], size(input_shape[1]), size(input_shape[2]), self.hidden_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "patch_size": self.patch_size,
            "strides": self.strides,
            "layer_norm": self.layer_norm,
            "epsilon": self.epsilon,
        }


@serializable
class PatchPositionEmbedding(keras.layers.Layer):
    """ViT's class token and learned position embeddings, for any patch grid.

    Takes the patch map ``(B, h, w, C)`` from :class:`PatchEmbedding` and returns the token
    sequence ``(B, 1 + h * w, C)``: ``[x_class; x_p] + E_pos`` (Dosovitskiy et al., Eq. 1).
    The embeddings are learned for a ``grid_size`` grid (the training resolution divided by
    the patch size); for another grid the patch part is resized bilinearly (half-pixel
    centres, as PyTorch's ``F.interpolate(..., align_corners=False)``), which Segmenter
    (Strudel et al., ICCV 2021, Sec. 3.1) and DPT (Ranftl et al., Sec. 3) do to take
    images of any size. On the learned grid the resize is the identity.

    Args:
        grid_size: ``(rows, cols)`` (or one int) of the learned grid.
        class_token: prepend a learned class (DPT: "readout") token.
    """

    def __init__(self, grid_size, class_token=True, **kwargs):
        super().__init__(**kwargs)
        grid = (grid_size, grid_size) if isinstance(grid_size, int) else tuple(grid_size)
        self.grid_size = tuple(check_int("grid_size[i]", g, minimum=1) for g in grid)
        self.class_token = bool(class_token)
        self.num_prefix_tokens = int(self.class_token)

    def build(self, input_shape):
        channels = input_shape[-1]
        if self.class_token:
            self.class_embedding = self.add_weight(
                shape=(1, 1, channels), initializer=keras.initializers.TruncatedNormal(stddev=1e-6),
                name="class_embedding",
            )
        rows, cols = self.grid_size
        self.position_embedding = self.add_weight(
            shape=(1, self.num_prefix_tokens + rows * cols, channels), initializer=_truncated_normal(),
            name="position_embedding",
        )

    def call(self, inputs):
        shape = ops.shape(inputs)
        channels = inputs.shape[-1]
        rows, cols = self.grid_size
        embedding = ops.cast(self.position_embedding, inputs.dtype)
        grid = ops.reshape(embedding[:, self.num_prefix_tokens :], (1, rows, cols, channels))
        if (inputs.shape[1], inputs.shape[2]) != (rows, cols):
            grid = resize_images(grid, (shape[1], shape[2]), interpolation="bilinear")
        tokens = flatten_map(inputs + grid)
        if not self.class_token:
            return tokens
        prefix = ops.cast(self.class_embedding, inputs.dtype) + embedding[:, :1]
        prefix = ops.broadcast_to(prefix, (shape[0], 1, channels))
        return ops.concatenate([prefix, tokens], axis=1)

    def compute_output_shape(self, input_shape):
        rows, cols = input_shape[1], input_shape[2]
        tokens = None if rows is None or cols is None else self.num_prefix_tokens + rows * cols
        return (input_shape[0], tokens, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "grid_size": self.grid_size, "class_token": self.class_token}


@serializable
class MultiHeadSelfAttention(keras.layers.Layer):
    """Multi-head self-attention, with SegFormer's sequence reduction of keys and values.

    Vaswani et al., "Attention Is All You Need", NeurIPS 2017, Eq. 1:
    ``Attention(Q, K, V) = softmax(Q K^T / sqrt(d_head)) V`` for each of ``num_heads``
    heads, with ``Q = x W_q``, ``K = x W_k``, ``V = x W_v`` and the heads concatenated and
    projected by ``W_o``. SegFormer's efficient self-attention (Xie et al., NeurIPS 2021,
    Eq. 2) computes ``K`` and ``V`` from a map shrunk by ``R = sequence_reduction`` per
    side, so the cost falls from ``O(N^2)`` to ``O(N^2 / R^2)``. As in the reference
    implementation the reduction is a ``R x R`` convolution of stride ``R`` followed by a
    LayerNorm. Here it pads ("same") so maps smaller than ``R`` or of sizes that are not
    multiples of ``R`` keep at least one key (the reference truncates; the weights are the
    same).

    Inputs: a sequence ``(B, N, C)`` or a map ``(B, H, W, C)`` (required when
    ``sequence_reduction > 1``); the output has the input's shape.

    Args:
        num_heads: attention heads; must divide the channels.
        sequence_reduction: ``R`` (1: plain self-attention).
        attention_dropout: dropout on the attention weights.
        dropout: dropout on the output.
        epsilon: epsilon of the reduction's LayerNorm.
    """

    def __init__(self, num_heads, sequence_reduction=1, attention_dropout=0.0, dropout=0.0, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = check_int("num_heads", num_heads, minimum=1)
        self.sequence_reduction = check_int("sequence_reduction", sequence_reduction, minimum=1)
        self.attention_dropout = check_float("attention_dropout", attention_dropout, minimum=0.0, maximum=1.0)
        self.dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)
        self.epsilon = check_float("epsilon", epsilon, minimum=0.0)
        policy = self.dtype_policy
        self.attention_dropout_layer = keras.layers.Dropout(self.attention_dropout, dtype=policy)
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=policy)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels % self.num_heads:
            raise ValueError(
                f"`num_heads` must divide the input channels; got num_heads={self.num_heads} for {channels} channels."
            )
        if self.sequence_reduction > 1 and len(input_shape) != 4:
            raise ValueError(
                f"`sequence_reduction`={self.sequence_reduction} needs (batch, height, width, channels) maps, got "
                f"an input of shape {input_shape}."
            )
        policy = self.dtype_policy
        self.query = _dense(channels, "query", policy)
        self.key = _dense(channels, "key", policy)
        self.value = _dense(channels, "value", policy)
        self.output_projection = _dense(channels, "output_projection", policy)
        sequence_shape = (None, None, channels)
        for layer in (self.query, self.key, self.value, self.output_projection):
            layer.build(sequence_shape)
        if self.sequence_reduction > 1:
            r = self.sequence_reduction
            self.reduction = keras.layers.Conv2D(channels, r, strides=r, padding="same", dtype=policy, name="reduction")
            self.reduction.build(input_shape)
            self.reduction_norm = keras.layers.LayerNormalization(
                epsilon=self.epsilon, dtype=policy, name="reduction_norm"
            )
            self.reduction_norm.build(input_shape)

    def _split_heads(self, x):
        # (B, N, C) -> (B, heads, N, C / heads)
        x = ops.reshape(x, (ops.shape(x)[0], -1, self.num_heads, x.shape[-1] // self.num_heads))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, inputs, training=None):
        is_map = len(inputs.shape) == 4
        sequence = flatten_map(inputs) if is_map else inputs
        context = sequence
        if self.sequence_reduction > 1:
            context = flatten_map(self.reduction_norm(self.reduction(inputs)))
        query = self._split_heads(self.query(sequence))
        key = self._split_heads(self.key(context))
        value = self._split_heads(self.value(context))
        scale = 1.0 / math.sqrt(inputs.shape[-1] // self.num_heads)
        scores = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2))) * ops.cast(scale, query.dtype)
        weights = ops.softmax(scores, axis=-1)
        weights = self.attention_dropout_layer(weights, training=training)
        attended = ops.transpose(ops.matmul(weights, value), (0, 2, 1, 3))
        attended = ops.reshape(attended, (ops.shape(attended)[0], -1, inputs.shape[-1]))
        outputs = self.dropout_layer(self.output_projection(attended), training=training)
        return sequence_to_map(outputs, inputs) if is_map else outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "sequence_reduction": self.sequence_reduction,
            "attention_dropout": self.attention_dropout,
            "dropout": self.dropout,
            "epsilon": self.epsilon,
        }


@serializable
class TransformerMLP(keras.layers.Layer):
    """The transformer's position-wise MLP: ``W_2 GELU(W_1 x)`` (ViT, Dosovitskiy et al., Eq. 3).

    Args:
        mlp_dim: hidden units (4x the channels in ViT and SegFormer).
        dropout: dropout after the activation and after the output layer.
    """

    def __init__(self, mlp_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mlp_dim = check_int("mlp_dim", mlp_dim, minimum=1)
        self.dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)
        policy = self.dtype_policy
        self.dense_in = _dense(self.mlp_dim, "dense_in", policy)
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=policy)

    def build(self, input_shape):
        self.dense_in.build(input_shape)
        self.dense_out = _dense(input_shape[-1], "dense_out", self.dtype_policy)
        self.dense_out.build(_with_channels(input_shape, self.mlp_dim))

    def hidden(self, x):
        return _gelu(self.dense_in(x))

    def call(self, inputs, training=None):
        x = self.dropout_layer(self.hidden(inputs), training=training)
        return self.dropout_layer(self.dense_out(x), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "mlp_dim": self.mlp_dim, "dropout": self.dropout}


@serializable
class MixFFN(TransformerMLP):
    """SegFormer's Mix-FFN: ``x_out = MLP(GELU(Conv3x3(MLP(x_in)))) + x_in`` (Xie et al., Eq. 3).

    A 3x3 depthwise convolution (with bias) between the two linear layers leaks enough
    location information through its zero padding that SegFormer needs no positional
    encoding (Sec. 3.1), so the encoder takes any resolution. The residual is added by
    :class:`TransformerEncoderBlock`. Inputs are maps ``(B, H, W, C)``.
    """

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"MixFFN needs (batch, height, width, channels) maps, got an input of shape {input_shape}.")
        super().build(input_shape)
        self.depthwise = keras.layers.DepthwiseConv2D(3, padding="same", dtype=self.dtype_policy, name="depthwise")
        self.depthwise.build(_with_channels(input_shape, self.mlp_dim))

    def hidden(self, x):
        return _gelu(self.depthwise(self.dense_in(x)))


@serializable
class TransformerEncoderBlock(keras.layers.Layer):
    """A pre-norm transformer layer: ``z' = z + MSA(LN(z))``, ``z'' = z' + MLP(LN(z'))``.

    ViT (Dosovitskiy et al., Eqs. 2-3), Segmenter's encoder and decoder layers and DPT's
    encoder. With ``sequence_reduction > 1`` and ``mix_ffn=True`` it is SegFormer's
    encoder block (Xie et al., Sec. 3.1, Fig. 2): efficient self-attention and Mix-FFN,
    on maps. ``drop_path`` is stochastic depth (Huang et al., ECCV 2016) on both residual
    branches, as in the reference implementations.

    Args:
        num_heads: attention heads.
        mlp_ratio: MLP hidden units per channel (4).
        sequence_reduction: SegFormer's ``R`` (1: plain attention).
        mix_ffn: :class:`MixFFN` instead of :class:`TransformerMLP`.
        dropout: dropout in the MLP and after the attention projection.
        attention_dropout: dropout on the attention weights.
        drop_path: probability of dropping each residual branch per example in training.
        epsilon: LayerNorm epsilon.
    """

    def __init__(
        self, num_heads, mlp_ratio=4.0, sequence_reduction=1, mix_ffn=False, dropout=0.0, attention_dropout=0.0,
        drop_path=0.0, epsilon=1e-6, **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_int("num_heads", num_heads, minimum=1)
        self.mlp_ratio = check_float("mlp_ratio", mlp_ratio, minimum=0.0, strict_minimum=True)
        self.sequence_reduction = check_int("sequence_reduction", sequence_reduction, minimum=1)
        self.mix_ffn = bool(mix_ffn)
        self.dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)
        self.attention_dropout = check_float("attention_dropout", attention_dropout, minimum=0.0, maximum=1.0)
        self.drop_path = check_float("drop_path", drop_path, minimum=0.0, maximum=1.0)
        self.epsilon = check_float("epsilon", epsilon, minimum=0.0)
        policy = self.dtype_policy
        self.attention_norm = keras.layers.LayerNormalization(epsilon=self.epsilon, dtype=policy, name="attention_norm")
        self.attention = MultiHeadSelfAttention(
            self.num_heads, sequence_reduction=self.sequence_reduction, attention_dropout=self.attention_dropout,
            dropout=self.dropout, dtype=policy, name="attention",
        )
        self.mlp_norm = keras.layers.LayerNormalization(epsilon=self.epsilon, dtype=policy, name="mlp_norm")
        # Unseeded: each block draws its own seed (reproducible under keras.utils.set_random_seed),
        # so blocks do not drop the same examples in the same step.
        self.seed_generator = keras.random.SeedGenerator() if self.drop_path > 0 else None

    def build(self, input_shape):
        mlp_class = MixFFN if self.mix_ffn else TransformerMLP
        self.mlp = mlp_class(
            int(input_shape[-1] * self.mlp_ratio), dropout=self.dropout, dtype=self.dtype_policy, name="mlp"
        )
        for layer in (self.attention_norm, self.attention, self.mlp_norm, self.mlp):
            layer.build(input_shape)

    def _drop_path(self, x, training):
        if not training or self.seed_generator is None:
            return x
        keep = 1.0 - self.drop_path
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        mask = ops.floor(keep + keras.random.uniform(shape, seed=self.seed_generator, dtype=x.dtype))
        return x * mask / keep

    def call(self, inputs, training=None):
        x = inputs + self._drop_path(self.attention(self.attention_norm(inputs), training=training), training)
        return x + self._drop_path(self.mlp(self.mlp_norm(x), training=training), training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "mlp_ratio": self.mlp_ratio,
            "sequence_reduction": self.sequence_reduction,
            "mix_ffn": self.mix_ffn,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "drop_path": self.drop_path,
            "epsilon": self.epsilon,
        }


@serializable
class MaskTransformer(keras.layers.Layer):
    """Segmenter's mask transformer decoder (Strudel et al., ICCV 2021, Sec. 3.2, Fig. 2).

    Called as ``MaskTransformer(K)(tokens, patch_map)``: ``tokens`` is the encoder's output
    sequence ``(B, prefix + h * w, D)`` and ``patch_map`` any tensor with the ``(h, w)``
    patch grid. The patch tokens are projected to ``hidden_dim`` and processed jointly with
    ``K`` learned class embeddings by ``num_layers`` transformer layers (2 in the paper).
    Then the patch embeddings and class embeddings are each projected and L2-normalised,
    and the class masks are their scalar products ``Masks(z_M, c) = z_M c^T``, normalised by
    a LayerNorm over the classes (the reference code's ``mask_norm``). Output: ``(B, h, w,
    K)`` patch-level class scores, to be upsampled.

    Args:
        num_classes: ``K``.
        num_layers: decoder transformer layers.
        hidden_dim: decoder width (``None``: the encoder's, as in the paper).
        num_heads: decoder heads (``None``: ``hidden_dim // 64``, at least 1).
        mlp_ratio: MLP hidden units per channel.
        dropout: dropout inside the decoder layers.
        drop_path: stochastic depth of the decoder layers.
        num_prefix_tokens: leading tokens of ``tokens`` that are not patches (the class
            token), dropped first.
    """

    def __init__(
        self, num_classes, num_layers=2, hidden_dim=None, num_heads=None, mlp_ratio=4.0, dropout=0.0, drop_path=0.0,
        num_prefix_tokens=1, **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = check_int("num_classes", num_classes, minimum=1)
        self.num_layers = check_int("num_layers", num_layers, minimum=1)
        self.hidden_dim = None if hidden_dim is None else check_int("hidden_dim", hidden_dim, minimum=1)
        self.num_heads = None if num_heads is None else check_int("num_heads", num_heads, minimum=1)
        self.mlp_ratio = check_float("mlp_ratio", mlp_ratio, minimum=0.0, strict_minimum=True)
        self.dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0)
        self.drop_path = check_float("drop_path", drop_path, minimum=0.0, maximum=1.0)
        self.num_prefix_tokens = check_int("num_prefix_tokens", num_prefix_tokens, minimum=0)

    def build(self, tokens_shape, reference_shape=None):
        dim = self.hidden_dim or tokens_shape[-1]
        heads = self.num_heads or max(1, dim // 64)
        policy = self.dtype_policy
        self.input_projection = _dense(dim, "input_projection", policy)
        self.input_projection.build(tokens_shape)
        self.class_embeddings = self.add_weight(
            shape=(1, self.num_classes, dim), initializer=_truncated_normal(), name="class_embeddings"
        )
        sequence_shape = (None, None, dim)
        self.blocks = []
        for index in range(self.num_layers):
            block = TransformerEncoderBlock(
                heads, mlp_ratio=self.mlp_ratio, dropout=self.dropout, drop_path=self.drop_path, epsilon=1e-5,
                dtype=policy, name=f"block{index + 1}",
            )
            block.build(sequence_shape)
            self.blocks.append(block)
        self.decoder_norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=policy, name="decoder_norm")
        self.patch_projection = _dense(dim, "patch_projection", policy, use_bias=False)
        self.class_projection = _dense(dim, "class_projection", policy, use_bias=False)
        for layer in (self.decoder_norm, self.patch_projection, self.class_projection):
            layer.build(sequence_shape)
        self.mask_norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=policy, name="mask_norm")
        self.mask_norm.build((None, None, self.num_classes))

    def call(self, tokens, reference, training=None):
        patches = self.input_projection(tokens[:, self.num_prefix_tokens :])
        batch = ops.shape(patches)[0]
        classes = ops.broadcast_to(
            ops.cast(self.class_embeddings, patches.dtype), (batch, self.num_classes, patches.shape[-1])
        )
        x = ops.concatenate([patches, classes], axis=1)
        for block in self.blocks:
            x = block(x, training=training)
        x = self.decoder_norm(x)
        patches, classes = x[:, : -self.num_classes], x[:, -self.num_classes :]
        # Slicing a sequence of unknown length loses the static class count; restore it.
        classes = ops.reshape(classes, (batch, self.num_classes, x.shape[-1]))
        patches = _l2_normalize(self.patch_projection(patches))
        classes = _l2_normalize(self.class_projection(classes))
        masks = self.mask_norm(ops.matmul(patches, ops.transpose(classes, (0, 2, 1))))
        return sequence_to_map(masks, reference)

    def compute_output_shape(self, tokens_shape, reference_shape):
        return (tokens_shape[0], reference_shape[1], reference_shape[2], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "num_layers": self.num_layers,
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "mlp_ratio": self.mlp_ratio,
            "dropout": self.dropout,
            "drop_path": self.drop_path,
            "num_prefix_tokens": self.num_prefix_tokens,
        }


def _l2_normalize(x, epsilon=1e-12):
    return x / ops.maximum(ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True)), epsilon)


#: DPT's resampling of each reassembled map (Ranftl et al., Sec. 3): factor -> layer kind.
REASSEMBLE_SCALES = (4, 2, 1, 0.5)


@serializable
class ReassembleBlock(keras.layers.Layer):
    """DPT's Reassemble_s^D operation (Ranftl et al., ICCV 2021, Sec. 3, Fig. 1 middle).

    Called as ``ReassembleBlock(D, s)(tokens, patch_map)``: ``tokens`` ``(B, 1 + h * w,
    C)`` from a transformer layer, ``patch_map`` any tensor on the ``(h, w)`` patch grid.
    *Read* handles the readout (class) token: ``"ignore"`` drops it, ``"add"`` adds it to
    every patch token, ``"project"`` concatenates it to every token and projects back to
    ``C`` with a linear layer and GELU (Eqs. 3-5). *Concatenate* places the tokens on the
    grid (Eq. 6). *Resample* (Eq. 7) projects to ``D`` channels with a 1x1 convolution, then
    upsamples by 4 or 2 with a transposed convolution of kernel and stride 4 or 2, keeps
    the size (``scale=1``), or downsamples with a 3x3 convolution of stride 2.

    Args:
        filters: ``D``.
        scale: one of 4, 2, 1, 0.5 (the maps at 1/4, 1/8, 1/16 and 1/32 of the image for
            patch size 16).
        readout: ``"ignore"``, ``"add"`` or ``"project"``.
    """

    def __init__(self, filters, scale, readout="project", **kwargs):
        super().__init__(**kwargs)
        self.filters = check_int("filters", filters, minimum=1)
        self.scale = check_choice("scale", scale, REASSEMBLE_SCALES)
        self.readout = check_choice("readout", readout, {"ignore", "add", "project"})
        policy = self.dtype_policy
        self.projection = keras.layers.Conv2D(self.filters, 1, dtype=policy, name="projection")
        if self.scale > 1:
            self.resample = keras.layers.Conv2DTranspose(
                self.filters, int(self.scale), strides=int(self.scale), dtype=policy, name="resample"
            )
        elif self.scale < 1:
            self.resample = keras.layers.Conv2D(self.filters, 3, strides=2, dtype=policy, name="resample")
        else:
            self.resample = None

    def build(self, tokens_shape, reference_shape=None):
        channels = tokens_shape[-1]
        if self.readout == "project":
            self.readout_projection = _dense(channels, "readout_projection", self.dtype_policy)
            self.readout_projection.build((None, None, 2 * channels))
        map_shape = (None, None, None, channels)
        self.projection.build(map_shape)
        if self.resample is not None:
            self.resample.build(_with_channels(map_shape, self.filters))

    def call(self, tokens, reference):
        readout, patches = tokens[:, :1], tokens[:, 1:]
        if self.readout == "add":
            patches = patches + readout
        elif self.readout == "project":
            readout = ops.broadcast_to(readout, ops.shape(patches))
            patches = _gelu(self.readout_projection(ops.concatenate([patches, readout], axis=-1)))
        x = self.projection(sequence_to_map(patches, reference))
        if self.scale < 1:
            # PyTorch's padding=1 on both sides (Keras' "same" pads only after at stride 2).
            x = ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])
        return x if self.resample is None else self.resample(x)

    def compute_output_shape(self, tokens_shape, reference_shape):
        def size(s):
            if s is None:
                return None
            return int(s * self.scale) if self.scale >= 1 else (s - 1) // 2 + 1

        return (tokens_shape[0], size(reference_shape[1]), size(reference_shape[2]), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "scale": self.scale, "readout": self.readout}


@serializable
class FeatureFusionBlock(keras.layers.Layer):
    """DPT's Fusion block (Ranftl et al., ICCV 2021, Sec. 3, Fig. 1 right), RefineNet-style.

    ``FeatureFusionBlock()(x, skip)`` computes ``y = RCU_2(x + RCU_1(skip))``, upsamples it
    2x bilinearly (corner-aligned, as in the reference code) and applies a 1x1 convolution
    (the "Project" of Fig. 1). The coarsest block has no ``skip``
    (``fuse_skip=False``) and is called as ``FeatureFusionBlock(fuse_skip=False)(x)``.
    Each residual convolution unit is ``z + Conv(ReLU(Conv(ReLU(z))))`` with 3x3
    convolutions (RefineNet, Lin et al., CVPR 2017, Fig. 3b); DPT's segmentation model adds
    batch normalisation after each convolution (``use_batch_norm``, convolutions then
    without bias). Channels are kept.

    Args:
        use_batch_norm: batch normalisation in the residual units.
        fuse_skip: whether the block takes a skip input (and owns ``RCU_1``).
    """

    def __init__(self, use_batch_norm=True, fuse_skip=True, **kwargs):
        super().__init__(**kwargs)
        self.use_batch_norm = bool(use_batch_norm)
        self.fuse_skip = bool(fuse_skip)

    def _residual_unit(self, channels, name, input_shape):
        layers = []
        for index in (1, 2):
            conv = keras.layers.Conv2D(
                channels, 3, padding="same", use_bias=not self.use_batch_norm, dtype=self.dtype_policy,
                name=f"{name}_conv{index}",
            )
            conv.build(input_shape)
            layers.append(conv)
            if self.use_batch_norm:
                norm = keras.layers.BatchNormalization(dtype=self.dtype_policy, name=f"{name}_bn{index}")
                norm.build(input_shape)
                layers.append(norm)
        return layers

    def build(self, inputs_shape, skip_shape=None):
        # Keras passes `{argument}_shape` keywords when the call takes two tensors.
        channels = inputs_shape[-1]
        self.skip_unit = self._residual_unit(channels, "skip_unit", inputs_shape) if self.fuse_skip else []
        self.fused_unit = self._residual_unit(channels, "fused_unit", inputs_shape)
        self.output_projection = keras.layers.Conv2D(channels, 1, dtype=self.dtype_policy, name="output_projection")
        self.output_projection.build(inputs_shape)

    def _apply_unit(self, layers, x, training):
        y = x
        for layer in layers:
            if isinstance(layer, keras.layers.Conv2D):
                y = layer(ops.relu(y))
            else:
                y = layer(y, training=training)
        return x + y

    def call(self, inputs, skip=None, training=None):
        if (skip is not None) != self.fuse_skip:
            raise ValueError(
                f"FeatureFusionBlock(fuse_skip={self.fuse_skip}) was called "
                f"{'without' if skip is None else 'with'} a skip input."
            )
        x = inputs
        if skip is not None:
            x = x + self._apply_unit(self.skip_unit, skip, training)
        x = self._apply_unit(self.fused_unit, x, training)
        shape = ops.shape(x)
        x = _bilinear_sample(
            x, _aligned_coordinates(shape[1], 2 * shape[1], x.dtype), _aligned_coordinates(shape[2], 2 * shape[2], x.dtype)
        )
        return self.output_projection(x)

    def compute_output_shape(self, inputs_shape, skip_shape=None):
        rows, cols = (None if s is None else 2 * s for s in inputs_shape[1:3])
        return (inputs_shape[0], rows, cols, inputs_shape[-1])

    def get_config(self):
        return {**super().get_config(), "use_batch_norm": self.use_batch_norm, "fuse_skip": self.fuse_skip}
