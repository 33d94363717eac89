"""Conformer encoder (Gulati et al., 2020) with Transformer-XL relative-position self-attention, ESPnet style.

Each block is::

    x = x + 0.5 * FFN(x)                 # macaron half-step feed-forward
    x = x + Dropout(RelPosMHSA(LN(x)))   # relative-position self-attention, padded keys masked
    x = x + ConvModule(x)                # padded frames zeroed before the depthwise convolution
    x = x + 0.5 * FFN(x)
    x = LN(x)

Padding never leaks into valid frames: attention masks padded keys and the convolution module zeroes padded
frames before its depthwise convolution, so in eval mode an utterance encodes the same alone or inside a
padded batch (BatchNorm uses batch statistics in training, which do include padded frames). Padded output
frames are set to zero.

Shapes: B batch, T input frames, F features per frame, T' frames after subsampling, D model width
(``d_model``), H heads, Dh = D / H head width.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqspeech.errors import ConfigError
from seqspeech.nn.masks import make_pad_mask
from seqspeech.nn.positional import RelPositionalEncoding, rel_shift, relative_sinusoids
from seqspeech.nn.subsampling import SUBSAMPLING_LAYERS, Conv2dSubsampling


class FeedForward(nn.Module):
    """LayerNorm -> Linear(D, ff_mult*D) -> Swish -> Dropout -> Linear(ff_mult*D, D) -> Dropout.

    ``(B, T, D)`` -> ``(B, T, D)``.
    """

    def __init__(self, d_model: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(d_model),
            nn.Linear(d_model, ff_mult * d_model),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(ff_mult * d_model, d_model),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class RelPositionMultiHeadAttention(nn.Module):
    """Transformer-XL multi-head self-attention with learned biases ``u`` (content) and ``v`` (position).

    ``score(i, k) = ((q_i + u) . k_k + rel_shift((q_i + v) . p)_{ik}) / sqrt(Dh)``, where ``p`` projects the
    relative sinusoids without bias. ``pad_mask`` is True at padded keys, which get zero weight.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ConfigError(f"d_model={d_model} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.pos = nn.Linear(d_model, d_model, bias=False)
        self.out = nn.Linear(d_model, d_model)
        self.pos_bias_u = nn.Parameter(torch.empty(num_heads, self.head_dim))
        self.pos_bias_v = nn.Parameter(torch.empty(num_heads, self.head_dim))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)
        self.dropout = dropout

    def forward(self, x: Tensor, pos_emb: Tensor, pad_mask: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        """``x (B, T, D)``, ``pos_emb (1, 2T-1, D)``, ``pad_mask (B, T)``, optional ``attn_mask (T, T)`` (True where
        query i may not see key k: a chunk mask) -> ``(B, T, D)``."""
        b, t, _ = x.shape
        k, v = self.keys_values(x)
        key_mask = pad_mask[:, None, None, :]  # (B, 1, 1, T)
        if attn_mask is not None:
            key_mask = key_mask | attn_mask[None, None]  # (B, 1, T, T)
        return self.attend(x, k, v, pos_emb, key_mask)

    def keys_values(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x (B, T, D)`` -> keys and values ``(B, H, T, Dh)`` each (what a stream caches)."""
        b, t, _ = x.shape
        k = self.key(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        v = self.value(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        return k, v

    def attend(self, x: Tensor, k: Tensor, v: Tensor, pos_emb: Tensor, key_mask: Tensor) -> Tensor:
        """Queries from ``x (B, Tq, D)`` (the last Tq of the Tk key frames) over ``k``, ``v (B, H, Tk, Dh)``;
        ``pos_emb (1, Tk+Tq-1, D)``; ``key_mask`` broadcastable to ``(B, H, Tq, Tk)``, True = hidden."""
        b, t, _ = x.shape
        h, dh = self.num_heads, self.head_dim
        q = self.query(x).view(b, t, h, dh)
        p = self.pos(pos_emb).view(1, -1, h, dh).transpose(1, 2)  # (1, H, Tk+Tq-1, Dh)
        q_u = (q + self.pos_bias_u).transpose(1, 2)  # (B, H, Tq, Dh)
        q_v = (q + self.pos_bias_v).transpose(1, 2)
        content = q_u @ k.transpose(-2, -1)  # (B, H, Tq, Tk)
        position = rel_shift(q_v @ p.transpose(-2, -1), k.size(2))  # (B, H, Tq, Tk+Tq-1) -> (B, H, Tq, Tk)
        scores = (content + position) / math.sqrt(dh)
        scores = scores.masked_fill(key_mask, torch.finfo(scores.dtype).min)
        # An all-hidden row (a zero-length utterance) would softmax to uniform weights; zero them instead.
        attn = torch.softmax(scores, dim=-1).masked_fill(key_mask, 0.0)
        if self.training and self.dropout > 0:  # O(T^2) random numbers: ~30 % of a CPU step at 0.1
            attn = F.dropout(attn, self.dropout)
        y = attn @ v  # (B, H, Tq, Dh)
        return self.out(y.transpose(1, 2).reshape(b, t, h * dh))


class ConvolutionModule(nn.Module):
    """LayerNorm -> pointwise Conv1d(D, 2D) -> GLU -> zero padding -> depthwise Conv1d(kernel) -> BatchNorm ->
    Swish -> pointwise Conv1d(D, D) -> Dropout; ``(B, T, D)`` -> ``(B, T, D)``.

    ``causal``: the depthwise convolution sees the current and the ``kernel - 1`` previous frames only (zeros before
    the first), so a stream needs only a cache of those frames (:meth:`forward` with ``cache``).
    """

    def __init__(self, d_model: int, kernel_size: int, dropout: float, causal: bool = False) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ConfigError(f"conv_kernel must be odd (symmetric 'same' padding), got {kernel_size}")
        self.causal = causal
        self.kernel_size = kernel_size
        self.norm = nn.LayerNorm(d_model)
        self.pointwise_in = nn.Conv1d(d_model, 2 * d_model, 1)
        self.glu = nn.GLU(dim=1)
        padding = 0 if causal else kernel_size // 2
        self.depthwise = nn.Conv1d(d_model, d_model, kernel_size, padding=padding, groups=d_model)
        self.batch_norm = nn.BatchNorm1d(d_model)
        self.activation = nn.SiLU()
        self.pointwise_out = nn.Conv1d(d_model, d_model, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, pad_mask: Tensor, cache: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``x (B, T, D)``, ``pad_mask (B, T)`` (True = padded), for a causal stream ``cache (B, D, kernel-1)``
        (the previous frames' GLU outputs; zeros at the start) -> ``(B, T, D)`` and the new cache (None when not
        causal)."""
        y = self.glu(self.pointwise_in(self.norm(x).transpose(1, 2)))  # (B, D, T)
        y = y.masked_fill(pad_mask.unsqueeze(1), 0.0)
        new_cache = None
        if self.causal:
            if cache is None:
                cache = y.new_zeros(y.size(0), y.size(1), self.kernel_size - 1)
            y = torch.cat([cache, y], dim=2)
            new_cache = y[:, :, y.size(2) - (self.kernel_size - 1):]
        y = self.activation(self.batch_norm(self.depthwise(y)))
        return self.dropout(self.pointwise_out(y)).transpose(1, 2), new_cache


class ConformerBlock(nn.Module):
    """Macaron FFN/2 -> rel-pos MHSA -> convolution module -> FFN/2 -> LayerNorm; ``(B, T, D)`` -> same."""

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        ff_mult: int,
        conv_kernel: int,
        dropout: float,
        attention_dropout: float = 0.0,
        causal: bool = False,
    ) -> None:
        super().__init__()
        self.ff1 = FeedForward(d_model, ff_mult, dropout)
        self.attn_norm = nn.LayerNorm(d_model)
        self.attn = RelPositionMultiHeadAttention(d_model, num_heads, attention_dropout)
        self.attn_dropout = nn.Dropout(dropout)
        self.conv = ConvolutionModule(d_model, conv_kernel, dropout, causal=causal)
        self.ff2 = FeedForward(d_model, ff_mult, dropout)
        self.final_norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, pos_emb: Tensor, pad_mask: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        """``x (B, T, D)``, ``pos_emb (1, 2T-1, D)``, ``pad_mask (B, T)``, optional ``attn_mask (T, T)`` ->
        ``(B, T, D)``."""
        x = x + 0.5 * self.ff1(x)
        x = x + self.attn_dropout(self.attn(self.attn_norm(x), pos_emb, pad_mask, attn_mask))
        x = x + self.conv(x, pad_mask)[0]
        x = x + 0.5 * self.ff2(x)
        return self.final_norm(x)

    def infer(self, x: Tensor, pos_emb: Tensor, pad_mask: Tensor, cache: "LayerCache") -> tuple[Tensor, "LayerCache"]:
        """One streamed chunk: ``x (B, C, D)`` after ``cache`` (keys/values ``(B, H, L, Dh)`` of the previous L
        frames, ``cache.hidden (B, L)`` True where a cached frame does not exist yet, the convolution cache);
        ``pos_emb (1, L+2C-1, D)``; ``pad_mask (B, C)`` -> ``(B, C, D)`` and the cache after this chunk."""
        x = x + 0.5 * self.ff1(x)
        normed = self.attn_norm(x)
        k, v = self.attn.keys_values(normed)
        keys, values = torch.cat([cache.keys, k], dim=2), torch.cat([cache.values, v], dim=2)
        hidden = torch.cat([cache.hidden, pad_mask], dim=1)  # (B, L+C)
        x = x + self.attn.attend(normed, keys, values, pos_emb, hidden[:, None, None, :])
        conv, conv_cache = self.conv(x, pad_mask, cache.conv)
        x = x + conv
        x = x + 0.5 * self.ff2(x)
        left = cache.keys.size(2)
        new = LayerCache(keys[:, :, keys.size(2) - left:], values[:, :, values.size(2) - left:],
                         hidden[:, hidden.size(1) - left:], conv_cache)
        return self.final_norm(x), new


@dataclass
class LayerCache:
    """What one Conformer block of a stream keeps between chunks (batch dimension first, so streams stack)."""

    keys: Tensor  # (B, H, L, Dh)
    values: Tensor  # (B, H, L, Dh)
    hidden: Tensor  # (B, L) True where no frame exists yet
    conv: Tensor  # (B, D, kernel - 1)


@dataclass
class ConformerStream:
    """One stream's encoder state (batch of one; :meth:`ConformerEncoder.infer` stacks many).

    ``features (n, F)``: input frames the subsampling has not consumed; ``pending (m, D)``: subsampled frames
    waiting for a whole chunk; ``layers``: each block's cache; ``frames``: encoder frames output so far.
    """

    features: Tensor
    pending: Tensor
    layers: list[LayerCache]
    frames: int = 0


def chunk_mask(frames: int, chunk: int, left: int, device: torch.device | None = None) -> Tensor | None:
    """``(T, T)`` True where query i may not see key k: keys after the end of i's chunk, or more than ``left``
    frames before its start (chunks of ``chunk`` frames from frame 0). ``chunk == 0``: full context (None)."""
    if chunk <= 0:
        return None
    idx = torch.arange(frames, device=device)
    start = torch.div(idx, chunk, rounding_mode="floor") * chunk  # (T,) the first frame of each frame's chunk
    keys = idx[None, :]
    return (keys >= (start + chunk)[:, None]) | (keys < (start - left)[:, None])


class ConformerEncoder(nn.Module):
    """Conv2d subsampling -> relative positional encoding -> ``num_layers`` Conformer blocks.

    ``forward(x (B, T, F), lens (B,)) -> (y (B, T', D), lens' (B,))`` with T' = T / ``subsampling_factor``
    (exactly :meth:`Conv2dSubsampling.output_lengths`). Padded output frames are zero.

    ``subsampling_channels`` defaults to 64 rather than ESPnet's ``d_model``: with 144 channels the front-end
    alone took ~40% of a CPU training step (32 x 3 s utterances); pass ``d_model`` for the ESPnet layout.
    ``attention_dropout`` (on the attention weights) defaults to 0: its (B, H, T, T) random masks took ~30 % of
    a CPU training step on 3-12 s utterances; ``dropout`` still applies to every residual branch.

    **Streaming** (``causal=True``, WeNet/icefall's dynamic chunk training): causal depthwise convolutions, and
    self-attention within chunks of C encoder frames plus ``left_context`` frames before the chunk. Training draws
    C per batch from ``chunk_sizes`` (0 = full context), so one model serves several latencies; decoding uses
    ``decode_chunk`` unless told otherwise. :meth:`infer` encodes a stream chunk by chunk with key/value and
    convolution caches and gives the same frames as :meth:`forward` with the same chunk size.
    """

    def __init__(
        self,
        input_dim: int,
        d_model: int = 144,
        num_layers: int = 8,
        num_heads: int = 4,
        ff_mult: int = 4,
        conv_kernel: int = 15,
        dropout: float = 0.1,
        subsampling_factor: int = 4,
        subsampling_channels: int = 64,
        attention_dropout: float = 0.0,
        causal: bool = False,
        chunk_sizes: tuple[int, ...] = (),
        left_context: int = 64,
        decode_chunk: int = 8,
    ) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.d_model = d_model
        self.causal = causal
        self.chunk_sizes = tuple(chunk_sizes)
        self.left_context = left_context
        self.decode_chunk = decode_chunk
        self.subsampling = Conv2dSubsampling(input_dim, d_model, subsampling_factor, subsampling_channels)
        self.pos_enc = RelPositionalEncoding(d_model, dropout)
        self.blocks = nn.ModuleList(
            ConformerBlock(d_model, num_heads, ff_mult, conv_kernel, dropout, attention_dropout, causal=causal)
            for _ in range(num_layers)
        )

    def output_lengths(self, lens: Tensor) -> Tensor:
        """``(B,)`` input frame counts -> ``(B,)`` encoder frame counts."""
        return self.subsampling.output_lengths(lens)

    def pick_chunk(self, chunk: int | None) -> int:
        """The chunk size (encoder frames, 0 = full context) of a forward pass: ``chunk`` when given; otherwise a
        random one of ``chunk_sizes`` in training and ``decode_chunk`` in eval; always 0 for a non-causal model."""
        if not self.causal:
            return 0
        if chunk is not None:
            if chunk < 0:
                raise ValueError(f"chunk must be >= 0 encoder frames (0 = full context), got {chunk}")
            return chunk
        if self.training and self.chunk_sizes:
            return self.chunk_sizes[int(torch.randint(len(self.chunk_sizes), ()))]
        return self.decode_chunk

    def forward(self, x: Tensor, lens: Tensor, chunk: int | None = None) -> tuple[Tensor, Tensor]:
        """``x (B, T, F)``, ``lens (B,)`` -> ``y (B, T', D)``, ``lens' (B,)``; ``chunk``: see :meth:`pick_chunk`."""
        if x.dim() != 3 or x.size(-1) != self.input_dim:
            raise ValueError(f"expected features (B, T, {self.input_dim}), got {tuple(x.shape)}")
        if lens.shape != (x.size(0),):
            raise ValueError(f"expected lens of shape ({x.size(0)},), got {tuple(lens.shape)}")
        x, lens = self.subsampling(x, lens)
        pad_mask = make_pad_mask(lens, x.size(1))  # (B, T')
        attn_mask = chunk_mask(x.size(1), self.pick_chunk(chunk), self.left_context, x.device)
        x, pos_emb = self.pos_enc(x)
        for block in self.blocks:
            x = block(x, pos_emb, pad_mask, attn_mask)
        return x.masked_fill(pad_mask.unsqueeze(-1), 0.0), lens

    # -- streaming ------------------------------------------------------------------------------------------------

    def init_stream(self) -> ConformerStream:
        """A new stream's state (needs ``causal=True``)."""
        if not self.causal:
            raise ValueError("this encoder sees the whole utterance (causal=False): it cannot stream")
        p = next(self.parameters())
        attn = self.blocks[0].attn
        h, dh, left = attn.num_heads, attn.head_dim, self.left_context
        kernel = self.blocks[0].conv.kernel_size
        layers = [
            LayerCache(p.new_zeros(1, h, left, dh), p.new_zeros(1, h, left, dh),
                       torch.ones(1, left, dtype=torch.bool, device=p.device), p.new_zeros(1, self.d_model, kernel - 1))
            for _ in self.blocks
        ]
        return ConformerStream(p.new_zeros(0, self.input_dim), p.new_zeros(0, self.d_model), layers)

    def infer(
        self, x: Tensor, lens: Tensor, states: list[ConformerStream], chunk: int | None = None, final: bool = False
    ) -> tuple[Tensor, Tensor, list[ConformerStream]]:
        """Encode new feature frames of B streams: ``x (B, n, F)`` (``lens (B,)`` valid each) after each stream's
        ``states[b]`` -> ``y (B, n', D)`` (the encoder frames completed now, padded), ``lens' (B,)``, the new states.

        A stream outputs whole chunks of ``chunk`` encoder frames (default ``decode_chunk``); ``final=True`` ends
        the streams, flushing a last partial chunk. Streams of any ages batch together; each stream's frames equal
        :meth:`forward` over its whole input with the same chunk size. Eval mode only (BatchNorm statistics).
        """
        if self.training:
            raise ValueError("streaming runs in eval mode: call .eval() first")
        chunk = self.pick_chunk(self.decode_chunk if chunk is None else chunk)
        if chunk == 0:
            raise ValueError("streaming needs a chunk size > 0 encoder frames")
        if x.dim() != 3 or x.size(-1) != self.input_dim or lens.shape != (x.size(0),) or len(states) != x.size(0):
            raise ValueError(f"expected x (B, n, {self.input_dim}), lens (B,) and B states, got {tuple(x.shape)}, "
                             f"{tuple(lens.shape)} and {len(states)} states")
        stride = self.subsampling.factor
        states = list(states)
        for b, state in enumerate(states):
            feats = torch.cat([state.features, x[b, : int(lens[b])]], dim=0)
            n_out = int(self.subsampling.output_lengths(torch.tensor([feats.size(0)]))[0])
            pending = state.pending
            if n_out > 0:
                sub, _ = self.subsampling(feats[None], torch.tensor([feats.size(0)], device=feats.device))
                pending = torch.cat([pending, sub[0, :n_out]], dim=0)
                feats = feats[n_out * stride:]
            states[b] = ConformerStream(feats, pending, state.layers, state.frames)
        outputs: list[list[Tensor]] = [[] for _ in states]
        while True:
            ready = [b for b, s in enumerate(states)
                     if s.pending.size(0) >= chunk or (final and s.pending.size(0) > 0)]
            if not ready:
                break
            self._encode_chunk([states[b] for b in ready], chunk, outputs, ready, states)
        out_lens = torch.tensor([sum(o.size(0) for o in outs) for outs in outputs], dtype=torch.long)
        width = int(out_lens.max()) if len(out_lens) else 0
        y = x.new_zeros(len(states), width, self.d_model)
        for b, outs in enumerate(outputs):
            if outs:
                y[b, : int(out_lens[b])] = torch.cat(outs, dim=0)
        return y, out_lens.to(x.device), states

    def _encode_chunk(self, group: list[ConformerStream], chunk: int, outputs: list[list[Tensor]],
                      index: list[int], states: list[ConformerStream]) -> None:
        """One chunk of each stream in ``group`` (positions ``index`` in ``states``/``outputs``), batched."""
        sizes = [min(s.pending.size(0), chunk) for s in group]
        x = torch.stack([torch.nn.functional.pad(s.pending[:n], (0, 0, 0, chunk - n)) for s, n in zip(group, sizes)])
        pad_mask = make_pad_mask(torch.tensor(sizes, device=x.device), chunk)
        caches = [LayerCache(*(torch.cat([getattr(s.layers[i], f) for s in group]) for f in LAYER_FIELDS))
                  for i in range(len(self.blocks))]
        left = self.left_context
        pos_emb = relative_sinusoids(left + chunk, self.d_model, x.device, x.dtype, queries=chunk)[None]
        for i, block in enumerate(self.blocks):
            x, caches[i] = block.infer(x, pos_emb, pad_mask, caches[i])
        for j, (s, n) in enumerate(zip(group, sizes)):
            layers = [LayerCache(*(getattr(c, f)[j : j + 1] for f in LAYER_FIELDS)) for c in caches]
            outputs[index[j]].append(x[j, :n])
            states[index[j]] = ConformerStream(s.features, s.pending[n:], layers, s.frames + n)


LAYER_FIELDS = ("keys", "values", "hidden", "conv")


@dataclass(frozen=True)
class ConformerConfig:
    """Hyper-parameters of :class:`ConformerEncoder` (its constructor arguments); ``build()`` makes one."""

    input_dim: int = 80
    d_model: int = 144
    num_layers: int = 8
    num_heads: int = 4
    ff_mult: int = 4
    conv_kernel: int = 15
    dropout: float = 0.1
    subsampling_factor: int = 4
    subsampling_channels: int = 64
    attention_dropout: float = 0.0
    causal: bool = False
    chunk_sizes: tuple[int, ...] = ()
    left_context: int = 64
    decode_chunk: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "chunk_sizes", tuple(self.chunk_sizes))
        if not isinstance(self.causal, bool):
            raise ConfigError(f"ConformerConfig.causal must be true or false, got {self.causal!r}")
        for name in ("left_context", "decode_chunk"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"ConformerConfig.{name} must be an int >= 0, got {value!r}")
        if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in self.chunk_sizes):
            raise ConfigError(f"ConformerConfig.chunk_sizes must be ints >= 0 (0 = full context), "
                              f"got {list(self.chunk_sizes)}")
        if self.causal and self.left_context < 1:
            raise ConfigError("ConformerConfig.left_context must be >= 1 for a causal (streaming) encoder")
        if (self.chunk_sizes or self.decode_chunk != 8) and not self.causal:
            raise ConfigError("ConformerConfig.chunk_sizes / decode_chunk need causal: true")
        for name in (
            "input_dim", "d_model", "num_layers", "num_heads", "ff_mult", "conv_kernel",
            "subsampling_channels",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"ConformerConfig.{name} must be a positive int, got {value!r}")
        if self.d_model % self.num_heads:
            raise ConfigError(
                f"ConformerConfig: d_model={self.d_model} not divisible by num_heads={self.num_heads}"
            )
        if self.conv_kernel % 2 != 1:
            raise ConfigError(f"ConformerConfig.conv_kernel must be odd, got {self.conv_kernel}")
        for name in ("dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"ConformerConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.subsampling_factor not in SUBSAMPLING_LAYERS:
            raise ConfigError(
                f"ConformerConfig.subsampling_factor must be one of {sorted(SUBSAMPLING_LAYERS)}, "
                f"got {self.subsampling_factor}"
            )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["chunk_sizes"] = list(self.chunk_sizes)
        return data

    def build(self) -> ConformerEncoder:
        return ConformerEncoder(**asdict(self))
