"""The step-wise attention interface shared by recurrent decoders (LAS, Tacotron 2, RNN MT).

Every attention is called once per decoder step::

    state = attention.init_state(memory, memory_lens)          # once per utterance: projects the memory
    context, weights, state = attention(query, memory, memory_lens, state)   # per step: O(T * A) work

Shapes: B batch, T memory frames, Dq query width, Dm memory width, A attention width.

State convention: the state is an explicit dataclass of tensors whose first dimension is the batch, never kept on
``self``. It carries the memory projection ``keys`` (computed once by ``init_state``, so a step never re-projects
the memory), the padding mask and, for attentions that need it, the previous alignment. ``select_state`` indexes
every tensor field along dim 0, so beam search reorders any attention's state the same way.

Masking: padded frames (``t >= memory_lens[b]``) always get exactly zero weight; an utterance of length zero gets
all-zero weights and a zero context, never NaN.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

import torch
from torch import Tensor

from seqspeech.nn.masks import make_pad_mask


@dataclass
class AttentionState:
    """``keys (B, T, A)``: memory projection; ``pad_mask (B, T)``: True at padding; ``alignment (B, T)`` or None.

    ``alignment`` is the previous step's weights where the attention needs them (location-aware, monotonic).
    """

    keys: Tensor
    pad_mask: Tensor
    alignment: Tensor | None = None


S = TypeVar("S")


@runtime_checkable
class Attention(Protocol):
    """``(query (B, Dq), memory (B, T, Dm), memory_lens (B,), state) -> (context (B, Dm), weights (B, T), state)``."""

    def init_state(self, memory: Tensor, memory_lens: Tensor) -> AttentionState: ...

    def __call__(
        self, query: Tensor, memory: Tensor, memory_lens: Tensor, state: AttentionState
    ) -> tuple[Tensor, Tensor, AttentionState]: ...


def select_state(state: S, indices: Tensor) -> S:
    """Reorder (or repeat) a state for beam search: index every tensor field of the dataclass along dim 0, and
    every nested dataclass field (e.g. a decoder state's attention state) the same way."""
    changes = {}
    for field in dataclasses.fields(state):  # type: ignore[arg-type]
        value = getattr(state, field.name)
        if isinstance(value, Tensor):
            changes[field.name] = value.index_select(0, indices.to(value.device))
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes[field.name] = select_state(value, indices)
    return dataclasses.replace(state, **changes)  # type: ignore[type-var]


def memory_pad_mask(memory: Tensor, memory_lens: Tensor) -> Tensor:
    """``(B, T)`` bool, True at padded frames; validates shapes."""
    if memory.dim() != 3:
        raise ValueError(f"memory must be (B, T, D), got shape {tuple(memory.shape)}")
    if memory_lens.shape != (memory.size(0),):
        raise ValueError(f"memory_lens must be (B,)={memory.size(0)}, got shape {tuple(memory_lens.shape)}")
    return make_pad_mask(memory_lens, memory.size(1))


def masked_softmax(scores: Tensor, pad_mask: Tensor) -> Tensor:
    """Softmax over the last dim in float32 with padded positions at exactly 0 (all-padded rows give all zeros)."""
    scores = scores.float().masked_fill(pad_mask, torch.finfo(torch.float32).min)
    return torch.softmax(scores, dim=-1).masked_fill(pad_mask, 0.0)


def weighted_context(weights: Tensor, memory: Tensor) -> Tensor:
    """``weights (B, T)``, ``memory (B, T, Dm)`` -> ``(B, Dm)``."""
    return torch.bmm(weights.unsqueeze(1).to(memory.dtype), memory).squeeze(1)
