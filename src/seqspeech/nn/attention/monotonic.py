"""Monotonic attention (Raffel et al., 2017, "Online and Linear-Time Attention by Enforcing Monotonic Alignments").

At each output step the decoder scans the memory left to right from where it stopped last step and, at frame j,
stops with probability ``p_{i,j} = sigmoid(e_{i,j})``, where
``e_{i,j} = g * v^T/||v|| tanh(W s_{i-1} + V h_j + b) + r`` (``r`` starts at ``init_r = -4``, ``g`` at 1/sqrt(A)).

- ``mode="soft"`` (training): the expected alignment
  ``alpha_{i,j} = p_{i,j} * sum_{k<=j} alpha_{i-1,k} * prod_{l=k}^{j-1} (1 - p_{i,l})``, computed in parallel over j.
  In training Gaussian noise (``noise_std``) is added to the pre-sigmoid energy so the model learns to saturate
  it. The recurrence is the paper's cumprod/cumsum form evaluated in log space: ``log(1 - p) = logsigmoid(-e)`` is
  exact, and ``logcumsumexp`` replaces the division by an exclusive cumprod, which is what the paper's and
  ESPnet's clamping (``cumprod.clamp(min=1e-10)``) guards; here a saturated ``p = 1`` earlier in the row cannot turn
  the ratio into ``1e-10 / 1e-10``. ``sum_j alpha_{i,j} <= 1``: the rest is the probability of stopping nowhere.
- ``mode="hard"`` (inference): start at the previously attended frame k and attend the first frame j at or after it
  where the probability of having stopped reaches one half, ``1 - prod_{l=k}^{j} (1 - p_{i,l}) >= 0.5`` (no noise):
  the median of the stopping time the soft mode takes expectations over. If there is none, the step attends
  nothing: weights all zero and a zero context, and every later step attends nothing too (the previous alignment
  is empty). The decision at frame j reads frames ``<= j`` only, so it streams. The paper's rule, the first frame
  with ``p_{i,j} >= 0.5``, is the same once energies saturate, but until then it attends nothing at all (a MoChA
  LAS 600 steps into training had ``p < 0.23`` on every frame, while its soft alignments placed all their mass).

The initial alignment (``init_state``) is one-hot at frame 0 (all zero for an empty utterance). When energies
saturate (``p`` in {0, 1}) the soft alignment equals the hard one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqspeech.errors import ConfigError
from seqspeech.nn.attention.base import AttentionState, memory_pad_mask, weighted_context

MODES = ("soft", "hard")
LOG_FLOOR = -1e4  # stands for log(0) on padded frames; finite so no gradient becomes NaN
ALIGN_TINY = 1e-20  # the previous alignment is clamped here before its log


def initial_monotonic_alignment(pad_mask: Tensor) -> Tensor:
    """``(B, T)`` one-hot at frame 0 for non-empty utterances, zeros for empty ones."""
    alignment = torch.zeros(pad_mask.shape, dtype=torch.float32, device=pad_mask.device)
    if pad_mask.size(1):
        alignment[:, 0] = (~pad_mask[:, 0]).float()
    return alignment


def soft_monotonic_alignment(logits: Tensor, prev: Tensor, pad_mask: Tensor) -> Tensor:
    """Expected alignment ``(B, T)`` from stop logits ``e (B, T)`` (``p = sigmoid(e)``) and ``prev (B, T)``."""
    logits = logits.float()
    log_p = F.logsigmoid(logits).masked_fill(pad_mask, LOG_FLOOR)
    log_1mp = F.logsigmoid(-logits).masked_fill(pad_mask, 0.0)
    # S_j = sum_{l<j} log(1 - p_l): exclusive cumulative sum, so exp(S_j - S_k) = prod_{l=k}^{j-1} (1 - p_l)
    excl = torch.cumsum(log_1mp, dim=-1) - log_1mp
    log_prev = prev.float().clamp_min(ALIGN_TINY).log()
    log_q = excl + torch.logcumsumexp(log_prev - excl, dim=-1)
    return torch.exp(log_p + log_q).masked_fill(pad_mask, 0.0)


def hard_monotonic_alignment(logits: Tensor, prev: Tensor, pad_mask: Tensor) -> Tensor:
    """One-hot ``(B, T)`` at the first frame at/after the previous one where the probability of having stopped
    (``p = sigmoid(logits)``, scanning from the previous frame) reaches 0.5; zeros if none."""
    frames = logits.size(-1)
    if frames == 0:  # an empty memory: nothing to select (argmax over an empty dim would fail)
        return torch.zeros(logits.shape, dtype=torch.float32, device=logits.device)
    positions = torch.arange(frames, device=logits.device).unsqueeze(0)
    attended = prev.sum(-1) > 0
    start = torch.where(attended, prev.argmax(-1), torch.full_like(attended, frames, dtype=torch.long))
    live = (positions >= start.unsqueeze(1)) & ~pad_mask
    log_continue = F.logsigmoid(-logits.float()).masked_fill(~live, 0.0)  # log(1 - p) from the start frame on
    stop = (torch.cumsum(log_continue, dim=-1) <= -math.log(2.0)) & live
    first = stop & (torch.cumsum(stop.long(), dim=-1) == 1)
    return first.float()


class MonotonicAttention(nn.Module):
    """Hard monotonic attention with a soft (expected) training mode; state carries the previous ``alignment``."""

    def __init__(
        self,
        query_dim: int,
        memory_dim: int,
        attn_dim: int,
        init_r: float = -4.0,
        noise_std: float = 1.0,
        mode: str = "soft",
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=False)
        self.key_proj = nn.Linear(memory_dim, attn_dim)
        self.v = nn.Parameter(
            torch.empty(attn_dim).uniform_(-1 / math.sqrt(attn_dim), 1 / math.sqrt(attn_dim))
        )
        self.g = nn.Parameter(torch.tensor(1.0 / math.sqrt(attn_dim)))
        self.r = nn.Parameter(torch.tensor(float(init_r)))
        self.noise_std = noise_std
        self.mode = mode

    def init_state(self, memory: Tensor, memory_lens: Tensor) -> AttentionState:
        pad_mask = memory_pad_mask(memory, memory_lens)
        return AttentionState(
            keys=self.key_proj(memory), pad_mask=pad_mask, alignment=initial_monotonic_alignment(pad_mask)
        )

    def energy(self, query: Tensor, keys: Tensor) -> Tensor:
        """Pre-sigmoid stop energies ``(B, T)`` in float32, without noise or masking."""
        hidden = (keys + self.query_proj(query).unsqueeze(1)).tanh().float()
        v = self.g * self.v / self.v.norm()
        return hidden @ v.float() + self.r

    def alignment(self, energy: Tensor, state: AttentionState) -> Tensor:
        """This step's alignment from ``energy (B, T)`` and the previous alignment in ``state``."""
        if state.alignment is None:
            raise ValueError("monotonic attention needs state.alignment; build the state with init_state")
        if self.mode == "hard":
            return hard_monotonic_alignment(energy, state.alignment, state.pad_mask)
        if self.training and self.noise_std > 0:
            energy = energy + self.noise_std * torch.randn_like(energy)
        return soft_monotonic_alignment(energy, state.alignment, state.pad_mask)

    def forward(
        self, query: Tensor, memory: Tensor, memory_lens: Tensor, state: AttentionState
    ) -> tuple[Tensor, Tensor, AttentionState]:
        weights = self.alignment(self.energy(query, state.keys), state)
        context = weighted_context(weights, memory)
        return context, weights, AttentionState(keys=state.keys, pad_mask=state.pad_mask, alignment=weights)
