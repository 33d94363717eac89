"""Attention modules: a step-wise interface for recurrent decoders plus multi-head attention for Transformers.

Step-wise (``base.Attention``): ``init_state(memory, memory_lens) -> state`` once per utterance, then
``(query (B, Dq), memory (B, T, Dm), memory_lens (B,), state) -> (context (B, Dm), weights (B, T), state)`` per step;
``select_state(state, indices)`` reorders any state for beam search.
"""

from seqspeech.nn.attention.base import Attention, AttentionState, masked_softmax, select_state
from seqspeech.nn.attention.content import AdditiveAttention, DotProductAttention
from seqspeech.nn.attention.location import LocationAttentionState, LocationAwareAttention
from seqspeech.nn.attention.mocha import MoChA, MoChAState
from seqspeech.nn.attention.monotonic import MonotonicAttention
from seqspeech.nn.attention.multihead import MultiHeadAttention

__all__ = [
    "AdditiveAttention",
    "Attention",
    "AttentionState",
    "DotProductAttention",
    "LocationAttentionState",
    "LocationAwareAttention",
    "MoChA",
    "MoChAState",
    "MonotonicAttention",
    "MultiHeadAttention",
    "masked_softmax",
    "select_state",
]
