"""Positional encodings: relative (Transformer-XL, Dai et al. 2019; ESPnet's `RelPositionalEncoding`) and absolute
sinusoids (:func:`sinusoidal_positions`, for Transformer decoders).

The encoding is a sinusoidal embedding of the relative distances ``T-1, T-2, ..., -(T-1)`` (descending, as
ESPnet orders them), computed for the input's length, device and dtype on each call; nothing is cached on
``self``. Self-attention turns it into a ``(T, T)`` bias with :func:`rel_shift`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def relative_sinusoids(
    length: int, d_model: int, device: torch.device, dtype: torch.dtype, queries: int | None = None
) -> Tensor:
    """``(length + queries - 1, d_model)`` sinusoids for the relative positions ``length-1 .. -(queries-1)``
    (``queries`` defaults to ``length``: self-attention over one sequence). With ``queries < length`` the queries
    are the last ``queries`` of ``length`` keys (a streamed chunk after its cached left context)."""
    queries = length if queries is None else queries
    positions = torch.arange(length - 1, -queries, -1, device=device, dtype=torch.float32).unsqueeze(1)
    inv_freq = torch.exp(
        torch.arange(0, d_model, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d_model)
    )
    emb = torch.zeros(length + queries - 1, d_model, device=device, dtype=torch.float32)
    emb[:, 0::2] = torch.sin(positions * inv_freq)
    emb[:, 1::2] = torch.cos(positions * inv_freq)
    return emb.to(dtype)


def rel_shift(scores: Tensor, keys: int | None = None) -> Tensor:
    """Turn position scores over relative distances into query-key scores (Transformer-XL's shift).

    ``scores (B, H, Tq, Tk+Tq-1)``, where column ``j`` is the relative distance ``Tk-1-j``, ->
    ``(B, H, Tq, Tk)`` with ``out[..., i, k] = scores[..., i, Tq-1-i+k]``: the distance ``(Tk-Tq+i) - k`` between
    query ``i`` (the last ``Tq`` of the ``Tk`` keys) and key ``k``. ``keys`` (Tk) defaults to Tq (self-attention).
    """
    b, h, t, n = scores.shape
    keys = t if keys is None else keys
    if n != keys + t - 1:
        raise ValueError(f"rel_shift: expected {keys + t - 1} relative positions for {t} queries and {keys} keys, "
                         f"got {n}")
    padded = torch.cat([scores.new_zeros(b, h, t, 1), scores], dim=-1)  # (B, H, Tq, n+1)
    padded = padded.view(b, h, n + 1, t)
    return padded[:, :, 1:].reshape(b, h, t, n)[:, :, :, :keys]


class RelPositionalEncoding(nn.Module):
    """``x (B, T, D)`` -> ``(dropout(x), dropout(pos_emb) (1, 2T-1, D))``."""

    def __init__(self, d_model: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.d_model = d_model
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        pos_emb = relative_sinusoids(x.size(1), self.d_model, x.device, x.dtype).unsqueeze(0)
        return self.dropout(x), self.dropout(pos_emb)


def sinusoidal_positions(start: int, length: int, dim: int, device: torch.device | None = None) -> Tensor:
    """``(length, dim)`` float32 absolute sinusoids of positions ``start .. start+length-1`` (Vaswani et al.):
    ``sin(p / 10000^(2i/dim))`` on even channels, ``cos`` on odd ones."""
    positions = torch.arange(start, start + length, device=device, dtype=torch.float32)[:, None]
    inv_freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    out = torch.empty(length, dim, device=device, dtype=torch.float32)
    out[:, 0::2] = torch.sin(positions * inv_freq)
    out[:, 1::2] = torch.cos(positions * inv_freq)
    return out
