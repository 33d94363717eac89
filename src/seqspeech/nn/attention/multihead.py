"""Multi-head scaled dot-product attention over full sequences (Transformer decoder self- and cross-attention).

``query (B, U, D)`` attends ``memory (B, T, D)`` (``memory = query`` for self-attention); padded memory frames
(from ``memory_lens``) get exactly zero weight and ``causal=True`` additionally hides frames ``t > u`` (requires
``U == T``). A query row with no visible frame (empty memory) gets all-zero weights and a zero attention output
before the output projection. Without ``need_weights`` the fused ``F.scaled_dot_product_attention`` is used.

Shapes: H heads, Dh = D / H.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqspeech.errors import ConfigError
from seqspeech.nn.masks import make_pad_mask


class MultiHeadAttention(nn.Module):
    """``(query (B, U, D), memory (B, T, D), memory_lens (B,) | None) -> (out (B, U, D), weights (B, H, U, T) | None)``."""

    def __init__(self, d_model: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % heads:
            raise ConfigError(f"d_model={d_model} must be divisible by heads={heads}")
        self.heads = heads
        self.head_dim = d_model // heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def _split(self, x: Tensor) -> Tensor:
        return x.view(x.size(0), x.size(1), self.heads, self.head_dim).transpose(1, 2)  # (B, H, L, Dh)

    def forward(
        self,
        query: Tensor,
        memory: Tensor,
        memory_lens: Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
        hide: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """``hide``: more frames to hide, bool broadcastable to ``(B, 1, U, T)`` (True = hidden), e.g. a wait-k
        policy's unread source."""
        batch, q_len, _ = query.shape
        k_len = memory.size(1)
        if causal and q_len != k_len:
            raise ValueError(f"causal attention needs as many queries as keys, got U={q_len}, T={k_len}")
        hidden = torch.zeros(batch, 1, q_len, k_len, dtype=torch.bool, device=query.device)  # True = hidden
        if memory_lens is not None:
            hidden = hidden | make_pad_mask(memory_lens, k_len)[:, None, None, :]
        if causal:
            hidden = hidden | torch.ones(q_len, k_len, dtype=torch.bool, device=query.device).triu(1)
        if hide is not None:
            hidden = hidden | hide.to(query.device)
        blind = hidden.all(-1, keepdim=True)  # (B, 1, U, 1): rows that see nothing
        q, k, v = (
            self._split(self.query(query)),
            self._split(self.key(memory)),
            self._split(self.value(memory)),
        )
        p_drop = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            scores = (q @ k.transpose(-2, -1)).float() / math.sqrt(self.head_dim)
            scores = scores.masked_fill(hidden, torch.finfo(torch.float32).min)
            weights = torch.softmax(scores, dim=-1).masked_fill(hidden, 0.0)  # (B, H, U, T)
            attended = F.dropout(weights, p_drop, self.training).to(v.dtype) @ v
        else:
            # A fully hidden row would be NaN with a boolean mask: let it see everything, then zero it below.
            attended = F.scaled_dot_product_attention(q, k, v, attn_mask=~(hidden & ~blind), dropout_p=p_drop)
        attended = attended.masked_fill(blind, 0.0)
        out = attended.transpose(1, 2).reshape(batch, q_len, -1)
        return self.out(out), weights
