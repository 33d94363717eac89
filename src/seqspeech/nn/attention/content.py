"""Content-based attention: scaled dot-product and additive (Bahdanau et al., 2015).

``e_{t,i} = score(s_{t-1}, h_i)``, ``alpha_t = softmax(e_t)`` over valid frames, ``c_t = sum_i alpha_{t,i} h_i``.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from seqspeech.nn.attention.base import AttentionState, masked_softmax, memory_pad_mask, weighted_context


class DotProductAttention(nn.Module):
    """``e_i = (W s) . (V h_i) / sqrt(A)``.

    With ``attn_dim=None`` the memory is used as keys unprojected (``V = I``, ``A = Dm``) and only the query is
    projected; otherwise both are projected to ``attn_dim``.
    """

    def __init__(self, query_dim: int, memory_dim: int, attn_dim: int | None = None) -> None:
        super().__init__()
        attn_dim = memory_dim if attn_dim is None else attn_dim
        self.query_proj = nn.Linear(query_dim, attn_dim)
        self.key_proj: nn.Module = (
            nn.Identity() if attn_dim == memory_dim else nn.Linear(memory_dim, attn_dim)
        )
        self.scale = 1.0 / math.sqrt(attn_dim)

    def init_state(self, memory: Tensor, memory_lens: Tensor) -> AttentionState:
        return AttentionState(keys=self.key_proj(memory), pad_mask=memory_pad_mask(memory, memory_lens))

    def forward(
        self, query: Tensor, memory: Tensor, memory_lens: Tensor, state: AttentionState
    ) -> tuple[Tensor, Tensor, AttentionState]:
        q = self.query_proj(query) * self.scale  # (B, A)
        scores = (state.keys @ q.unsqueeze(-1).to(state.keys.dtype)).squeeze(-1)  # (B, T)
        weights = masked_softmax(scores, state.pad_mask)
        return weighted_context(weights, memory), weights, state


class AdditiveAttention(nn.Module):
    """Bahdanau: ``e_i = w^T tanh(W s + V h_i + b)``; ``V h`` is computed once in ``init_state``."""

    def __init__(self, query_dim: int, memory_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=False)
        self.key_proj = nn.Linear(memory_dim, attn_dim)
        self.score = nn.Linear(attn_dim, 1, bias=False)

    def init_state(self, memory: Tensor, memory_lens: Tensor) -> AttentionState:
        return AttentionState(keys=self.key_proj(memory), pad_mask=memory_pad_mask(memory, memory_lens))

    def forward(
        self, query: Tensor, memory: Tensor, memory_lens: Tensor, state: AttentionState
    ) -> tuple[Tensor, Tensor, AttentionState]:
        hidden = state.keys + self.query_proj(query).unsqueeze(1)  # (B, T, A)
        scores = self.score(hidden.tanh()).squeeze(-1)
        weights = masked_softmax(scores, state.pad_mask)
        return weighted_context(weights, memory), weights, state
