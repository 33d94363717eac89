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
from seqspeech.nn.positional import RelPositionalEncoding, rel_shift
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

    def forward(self, x: Tensor, pos_emb: Tensor, pad_mask: Tensor) -> Tensor:
        """``x (B, T, D)``, ``pos_emb (1, 2T-1, D)``, ``pad_mask (B, T)`` -> ``(B, T, D)``."""
        b, t, _ = x.shape
        h, dh = self.num_heads, self.head_dim
        q = self.query(x).view(b, t, h, dh)
        k = self.key(x).view(b, t, h, dh).transpose(1, 2)  # (B, H, T, Dh)
        v = self.value(x).view(b, t, h, dh).transpose(1, 2)
        p = self.pos(pos_emb).view(1, -1, h, dh).transpose(1, 2)  # (1, H, 2T-1, Dh)

        q_u = (q + self.pos_bias_u).transpose(1, 2)  # (B, H, T, Dh)
        q_v = (q + self.pos_bias_v).transpose(1, 2)
        content = q_u @ k.transpose(-2, -1)  # (B, H, T, T)
        position = rel_shift(q_v @ p.transpose(-2, -1))  # (B, H, T, 2T-1) -> (B, H, T, T)
        scores = (content + position) / math.sqrt(dh)

        key_mask = pad_mask[:, None, None, :]  # (B, 1, 1, T)
        scores = scores.masked_fill(key_mask, torch.finfo(scores.dtype).min)
        # An all-padded row (a zero-length utterance) would softmax to uniform weights; zero them instead.
        attn = torch.softmax(scores, dim=-1).masked_fill(key_mask, 0.0)
        if self.training and self.dropout > 0:  # O(T^2) random numbers: ~30 % of a CPU step at 0.1
            attn = F.dropout(attn, self.dropout)
        y = attn @ v  # (B, H, T, Dh)
        return self.out(y.transpose(1, 2).reshape(b, t, h * dh))


class ConvolutionModule(nn.Module):
    """LayerNorm -> pointwise Conv1d(D, 2D) -> GLU -> zero padding -> depthwise Conv1d(kernel) -> BatchNorm ->
    Swish -> pointwise Conv1d(D, D) -> Dropout; ``(B, T, D)`` -> ``(B, T, D)``."""

    def __init__(self, d_model: int, kernel_size: int, dropout: float) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ConfigError(f"conv_kernel must be odd (symmetric 'same' padding), got {kernel_size}")
        self.norm = nn.LayerNorm(d_model)
        self.pointwise_in = nn.Conv1d(d_model, 2 * d_model, 1)
        self.glu = nn.GLU(dim=1)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel_size, padding=kernel_size // 2, groups=d_model)
        self.batch_norm = nn.BatchNorm1d(d_model)
        self.activation = nn.SiLU()
        self.pointwise_out = nn.Conv1d(d_model, d_model, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, pad_mask: Tensor) -> Tensor:
        """``x (B, T, D)``, ``pad_mask (B, T)`` (True = padded) -> ``(B, T, D)``."""
        y = self.glu(self.pointwise_in(self.norm(x).transpose(1, 2)))  # (B, D, T)
        y = y.masked_fill(pad_mask.unsqueeze(1), 0.0)
        y = self.activation(self.batch_norm(self.depthwise(y)))
        return self.dropout(self.pointwise_out(y)).transpose(1, 2)


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
    ) -> None:
        super().__init__()
        self.ff1 = FeedForward(d_model, ff_mult, dropout)
        self.attn_norm = nn.LayerNorm(d_model)
        self.attn = RelPositionMultiHeadAttention(d_model, num_heads, attention_dropout)
        self.attn_dropout = nn.Dropout(dropout)
        self.conv = ConvolutionModule(d_model, conv_kernel, dropout)
        self.ff2 = FeedForward(d_model, ff_mult, dropout)
        self.final_norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, pos_emb: Tensor, pad_mask: Tensor) -> Tensor:
        """``x (B, T, D)``, ``pos_emb (1, 2T-1, D)``, ``pad_mask (B, T)`` -> ``(B, T, D)``."""
        x = x + 0.5 * self.ff1(x)
        x = x + self.attn_dropout(self.attn(self.attn_norm(x), pos_emb, pad_mask))
        x = x + self.conv(x, pad_mask)
        x = x + 0.5 * self.ff2(x)
        return self.final_norm(x)


class ConformerEncoder(nn.Module):
    """Conv2d subsampling -> relative positional encoding -> ``num_layers`` Conformer blocks.

    ``forward(x (B, T, F), lens (B,)) -> (y (B, T', D), lens' (B,))`` with T' = T / ``subsampling_factor``
    (exactly :meth:`Conv2dSubsampling.output_lengths`). Padded output frames are zero.

    ``subsampling_channels`` defaults to 64 rather than ESPnet's ``d_model``: with 144 channels the front-end
    alone took ~40% of a CPU training step (32 x 3 s utterances); pass ``d_model`` for the ESPnet layout.
    ``attention_dropout`` (on the attention weights) defaults to 0: its (B, H, T, T) random masks took ~30 % of
    a CPU training step on 3-12 s utterances; ``dropout`` still applies to every residual branch.
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
    ) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.d_model = d_model
        self.subsampling = Conv2dSubsampling(input_dim, d_model, subsampling_factor, subsampling_channels)
        self.pos_enc = RelPositionalEncoding(d_model, dropout)
        self.blocks = nn.ModuleList(
            ConformerBlock(d_model, num_heads, ff_mult, conv_kernel, dropout, attention_dropout)
            for _ in range(num_layers)
        )

    def output_lengths(self, lens: Tensor) -> Tensor:
        """``(B,)`` input frame counts -> ``(B,)`` encoder frame counts."""
        return self.subsampling.output_lengths(lens)

    def forward(self, x: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        """``x (B, T, F)``, ``lens (B,)`` -> ``y (B, T', D)``, ``lens' (B,)``."""
        if x.dim() != 3 or x.size(-1) != self.input_dim:
            raise ValueError(f"expected features (B, T, {self.input_dim}), got {tuple(x.shape)}")
        if lens.shape != (x.size(0),):
            raise ValueError(f"expected lens of shape ({x.size(0)},), got {tuple(lens.shape)}")
        x, lens = self.subsampling(x, lens)
        pad_mask = make_pad_mask(lens, x.size(1))  # (B, T')
        x, pos_emb = self.pos_enc(x)
        for block in self.blocks:
            x = block(x, pos_emb, pad_mask)
        return x.masked_fill(pad_mask.unsqueeze(-1), 0.0), lens


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

    def __post_init__(self) -> None:
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
        return asdict(self)

    def build(self) -> ConformerEncoder:
        return ConformerEncoder(**asdict(self))
