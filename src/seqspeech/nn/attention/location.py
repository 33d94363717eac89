"""Location-aware attention (Chorowski et al., 2015), optionally with Tacotron 2's cumulative features.

``f = conv1d(alpha_{t-1})`` (``conv_channels`` filters of width ``kernel_size``), then
``e_i = w^T tanh(W s + V h_i + U f_i + b)``. Normalisation is ``softmax(sharpening * e)`` or, with
``smoothing=True``, ``sigmoid(e) / sum sigmoid(e)`` (the paper's smoothed focus, section 2.3).

With ``cumulative=True`` (Shen et al. 2018, "location-sensitive attention" of Tacotron 2) the convolution reads two
channels, the previous alignment and the cumulative alignment ``sum_{k<t} alpha_k``:
``f = conv1d([alpha_{t-1}; sum_{k<t} alpha_k])``; the state is then a :class:`LocationAttentionState` that also
carries the cumulative weights (starting at zero).

Initial alignment (``init_state``): uniform over the valid frames (``1 / len``; all zero for an empty utterance),
so the first step already sees a well-defined "previous alignment".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from seqspeech.errors import ConfigError
from seqspeech.nn.attention.base import AttentionState, masked_softmax, memory_pad_mask, weighted_context


@dataclass
class LocationAttentionState(AttentionState):
    """:class:`AttentionState` plus ``cumulative (B, T)`` float32: the sum of all previous steps' weights."""

    cumulative: Tensor | None = None


class LocationAwareAttention(nn.Module):
    """Additive attention plus convolution features of the previous alignment; state carries ``alignment``.

    ``cumulative=True``: the convolution also reads the cumulative alignment (2 input channels) and the state is a
    :class:`LocationAttentionState`; the default (False) keeps the 1-channel convolution and a plain
    :class:`AttentionState`, so existing checkpoints load unchanged.
    """

    def __init__(
        self,
        query_dim: int,
        memory_dim: int,
        attn_dim: int,
        conv_channels: int = 10,
        kernel_size: int = 31,
        sharpening: float = 1.0,
        smoothing: bool = False,
        cumulative: bool = False,
    ) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size={kernel_size} must be odd so the location features stay centred")
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=False)
        self.key_proj = nn.Linear(memory_dim, attn_dim)
        in_channels = 2 if cumulative else 1
        self.conv = nn.Conv1d(in_channels, conv_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.location_proj = nn.Linear(conv_channels, attn_dim, bias=False)
        self.score = nn.Linear(attn_dim, 1, bias=False)
        self.sharpening = sharpening
        self.smoothing = smoothing
        self.cumulative = cumulative

    def init_state(self, memory: Tensor, memory_lens: Tensor) -> AttentionState:
        pad_mask = memory_pad_mask(memory, memory_lens)
        valid = (~pad_mask).float()
        alignment = valid / valid.sum(-1, keepdim=True).clamp_min(1.0)
        keys = self.key_proj(memory)
        if self.cumulative:
            return LocationAttentionState(
                keys=keys, pad_mask=pad_mask, alignment=alignment, cumulative=torch.zeros_like(alignment)
            )
        return AttentionState(keys=keys, pad_mask=pad_mask, alignment=alignment)

    def forward(
        self, query: Tensor, memory: Tensor, memory_lens: Tensor, state: AttentionState
    ) -> tuple[Tensor, Tensor, AttentionState]:
        if state.alignment is None:
            raise ValueError("LocationAwareAttention needs state.alignment; build the state with init_state")
        cumulative = getattr(state, "cumulative", None)
        if self.cumulative and cumulative is None:
            raise ValueError("LocationAwareAttention(cumulative=True) needs state.cumulative; build the state with "
                             "init_state")
        if memory.size(1) == 0:  # an empty memory (a padded conv would fail): zero weights and context
            weights = memory.new_zeros(memory.shape[:2], dtype=torch.float32)
            return weighted_context(weights, memory), weights, state
        if self.cumulative:
            prev = torch.stack([state.alignment, cumulative], dim=1).to(state.keys.dtype)  # (B, 2, T)
        else:
            prev = state.alignment.to(state.keys.dtype).unsqueeze(1)  # (B, 1, T)
        location = self.location_proj(self.conv(prev).transpose(1, 2))  # (B, T, A)
        hidden = state.keys + location + self.query_proj(query).unsqueeze(1)
        scores = self.score(hidden.tanh()).squeeze(-1).float()  # (B, T)
        if self.smoothing:
            unnorm = torch.sigmoid(scores).masked_fill(state.pad_mask, 0.0)
            weights = unnorm / unnorm.sum(-1, keepdim=True).clamp_min(1e-12)
        else:
            weights = masked_softmax(self.sharpening * scores, state.pad_mask)
        context = weighted_context(weights, memory)
        if self.cumulative:
            new_state: AttentionState = LocationAttentionState(
                keys=state.keys, pad_mask=state.pad_mask, alignment=weights, cumulative=cumulative + weights
            )
        else:
            new_state = AttentionState(keys=state.keys, pad_mask=state.pad_mask, alignment=weights)
        return context, weights, new_state
