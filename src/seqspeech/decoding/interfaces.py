"""Narrow interfaces that every search in `seqspeech.decoding` works through.

A *Scorer* proposes next-token scores for a batch of hypotheses and carries its own explicit state (KV caches,
CTC prefix tables, LM states): nothing is kept on the scorer object, so one scorer serves many threads, beams
and batches at once. A *LogitFilter* edits those scores in place (suppression, timestamp rules). A *Ranker*
picks the final hypothesis among finished candidates.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class Scorer(Protocol):
    """Next-token scores for N hypotheses.

    `score(tokens, state)` sees the whole token history (N, L) — it feeds only what its state has not consumed —
    and returns (scores (N, V), new_state). `select_state(state, indices)` reorders, drops or repeats rows
    (beam reordering and expansion) and returns the new state.
    """

    def score(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]: ...

    def select_state(self, state: Any, indices: Tensor) -> Any: ...


@runtime_checkable
class LogitFilter(Protocol):
    """Edits next-token logits (N, V) in place given the token history (N, L)."""

    def apply(self, logits: Tensor, tokens: Tensor) -> None: ...


class Ranker(Protocol):
    """Chooses one of several finished candidates: returns its index."""

    def rank(self, tokens: Sequence[Sequence[int]], sum_logprobs: Sequence[float]) -> int: ...


class LengthNormalizedRanker:
    """Rank by sum log-prob divided by a length penalty.

    length_penalty None divides by the length (average log-prob); alpha in [0, 1] divides by Google NMT's
    ((5 + length) / 6) ** alpha.
    """

    def __init__(self, length_penalty: float | None = None) -> None:
        self.length_penalty = length_penalty

    def score(self, length: int, sum_logprob: float) -> float:
        if self.length_penalty is None:
            return sum_logprob / max(length, 1)
        return sum_logprob / (((5 + length) / 6) ** self.length_penalty)

    def rank(self, tokens: Sequence[Sequence[int]], sum_logprobs: Sequence[float]) -> int:
        scores = [self.score(len(t), lp) for t, lp in zip(tokens, sum_logprobs)]
        return max(range(len(scores)), key=scores.__getitem__)


class ScoredSum:
    """Weighted sum of auxiliary scorers (LM, CTC prefix, length bonus), added to the primary log-probs.

    State is a tuple with one entry per scorer.
    """

    def __init__(self, scorers: Sequence[tuple[float, Scorer]]) -> None:
        self.scorers = list(scorers)

    def score(self, tokens: Tensor, state: tuple) -> tuple[Tensor, tuple]:
        total: Tensor | None = None
        new_state = []
        for (weight, scorer), s in zip(self.scorers, state):
            scores, s = scorer.score(tokens, s)
            total = weight * scores if total is None else total + weight * scores
            new_state.append(s)
        assert total is not None
        return total, tuple(new_state)

    def select_state(self, state: tuple, indices: Tensor) -> tuple:
        return tuple(scorer.select_state(s, indices) for (_, scorer), s in zip(self.scorers, state))


class LengthBonus:
    """A constant reward per emitted token (ESPnet's length bonus); end-of-sequence gets none. Stateless."""

    def __init__(self, vocab_size: int, eos: int) -> None:
        self.vocab_size = vocab_size
        self.eos = eos

    def score(self, tokens: Tensor, state: None) -> tuple[Tensor, None]:
        bonus = torch.ones(tokens.shape[0], self.vocab_size, device=tokens.device)
        bonus[:, self.eos] = 0.0
        return bonus, None

    def select_state(self, state: None, indices: Tensor) -> None:
        return None
