"""Monotonic chunkwise attention, MoChA (Chiu & Raffel, 2018).

A monotonic attention (``MonotonicAttention``: sigmoid stop gate ``p = sigmoid(g(h_j, s_{i-1}))``) selects a frame
t_i; the context is then a softmax over the chunk of ``chunk_size`` (w) frames ending at t_i, with its own additive
chunk energy ``u_{i,j} = w_c^T tanh(W_c s + V_c h_j + b_c)``.

- ``mode="soft"`` (training): the expected chunkwise weights
  ``beta_{i,j} = sum_{k=j}^{j+w-1} alpha_{i,k} exp(u_{i,j}) / sum_{l=k-w+1}^{k} exp(u_{i,l})``, with the paper's
  two moving sums evaluated in log space (``logsumexp`` over windows), so no ``exp`` overflows and no denominator
  needs clamping.
- ``mode="hard"`` (inference): hard monotonic selection, then a softmax over frames ``[t - w + 1, t]`` (clipped at
  the start). If no frame is selected, weights are all zero and the context is zero.

The state's ``alignment`` is the monotonic alignment ``alpha`` (what the next step's scan starts from), not the
chunk weights ``beta`` returned as ``weights``. With ``chunk_size=1`` MoChA is exactly monotonic attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqspeech.errors import ConfigError
from seqspeech.nn.attention.base import AttentionState, masked_softmax, weighted_context
from seqspeech.nn.attention.monotonic import ALIGN_TINY, LOG_FLOOR, MODES, MonotonicAttention


@dataclass
class MoChAState(AttentionState):
    """``AttentionState`` (``keys``: the monotonic projection, ``alignment``: alpha) plus ``chunk_keys (B, T, A)``."""

    chunk_keys: Tensor | None = None


def _window_logsumexp(x: Tensor, back: int, forward: int) -> Tensor:
    """``out_j = logsumexp(x_{j-back} .. x_{j+forward})`` over the last dim, out-of-range terms ignored."""
    if x.size(-1) == 0:  # no frames: nothing to sum (unfold would need at least one window)
        return x.clone()
    padded = F.pad(x, (back, forward), value=LOG_FLOOR)
    return padded.unfold(-1, back + forward + 1, 1).logsumexp(-1)


def soft_chunk_weights(alpha: Tensor, chunk_energy: Tensor, pad_mask: Tensor, chunk_size: int) -> Tensor:
    """Expected chunkwise weights ``beta (B, T)`` from the expected monotonic alignment ``alpha (B, T)``."""
    u = chunk_energy.float().masked_fill(pad_mask, LOG_FLOOR)
    log_denom = _window_logsumexp(u, chunk_size - 1, 0)  # log sum_{l=k-w+1}^{k} exp(u_l)
    log_alpha = alpha.float().clamp_min(ALIGN_TINY).log()
    log_beta = u + _window_logsumexp(log_alpha - log_denom, 0, chunk_size - 1)
    return torch.exp(log_beta).masked_fill(pad_mask, 0.0)


def hard_chunk_weights(alpha: Tensor, chunk_energy: Tensor, pad_mask: Tensor, chunk_size: int) -> Tensor:
    """Softmax of ``chunk_energy`` over the w frames ending at the frame one-hot ``alpha`` selects; zeros if none."""
    if alpha.size(-1) == 0:  # no frames: nothing to select (argmax over an empty dim would fail)
        return torch.zeros(alpha.shape, dtype=torch.float32, device=alpha.device)
    positions = torch.arange(alpha.size(-1), device=alpha.device).unsqueeze(0)
    selected = (alpha.sum(-1) > 0).unsqueeze(1)
    end = alpha.argmax(-1, keepdim=True)
    in_chunk = selected & (positions <= end) & (positions > end - chunk_size)
    return masked_softmax(chunk_energy, pad_mask | ~in_chunk)


class MoChA(nn.Module):
    """Monotonic chunkwise attention; ``mode`` switches both the monotonic and the chunk part (soft/hard)."""

    def __init__(
        self,
        query_dim: int,
        memory_dim: int,
        attn_dim: int,
        chunk_size: int,
        init_r: float = -4.0,
        noise_std: float = 1.0,
        mode: str = "soft",
    ) -> None:
        super().__init__()
        if chunk_size < 1:
            raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
        self.monotonic = MonotonicAttention(query_dim, memory_dim, attn_dim, init_r, noise_std, mode)
        self.chunk_query_proj = nn.Linear(query_dim, attn_dim, bias=False)
        self.chunk_key_proj = nn.Linear(memory_dim, attn_dim)
        self.chunk_score = nn.Linear(attn_dim, 1, bias=False)
        self.chunk_size = chunk_size

    @property
    def mode(self) -> str:
        return self.monotonic.mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {value!r}")
        self.monotonic.mode = value

    def init_state(self, memory: Tensor, memory_lens: Tensor) -> MoChAState:
        base = self.monotonic.init_state(memory, memory_lens)
        return MoChAState(
            keys=base.keys,
            pad_mask=base.pad_mask,
            alignment=base.alignment,
            chunk_keys=self.chunk_key_proj(memory),
        )

    def forward(
        self, query: Tensor, memory: Tensor, memory_lens: Tensor, state: MoChAState
    ) -> tuple[Tensor, Tensor, MoChAState]:
        if state.chunk_keys is None:
            raise ValueError("MoChA needs state.chunk_keys; build the state with MoChA.init_state")
        alpha = self.monotonic.alignment(self.monotonic.energy(query, state.keys), state)
        hidden = state.chunk_keys + self.chunk_query_proj(query).unsqueeze(1)
        chunk_energy = self.chunk_score(hidden.tanh()).squeeze(-1)
        chunk = hard_chunk_weights if self.mode == "hard" else soft_chunk_weights
        weights = chunk(alpha, chunk_energy, state.pad_mask, self.chunk_size)
        new_state = MoChAState(
            keys=state.keys, pad_mask=state.pad_mask, alignment=alpha, chunk_keys=state.chunk_keys
        )
        return weighted_context(weights, memory), weights, new_state
