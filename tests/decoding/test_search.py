"""Beam and greedy search on a toy bigram scorer, checked against brute-force enumeration."""

import itertools
import math

import pytest
import torch

from seqspeech.decoding.interfaces import LengthBonus, LengthNormalizedRanker, ScoredSum
from seqspeech.decoding.search import Step, beam_search, pick_best, sample_search

EOT = 0


class Bigram:
    """Next-token logits depend on the last token only. Stateless, but counts its calls in the state."""

    def __init__(self, table: torch.Tensor) -> None:
        self.table = table  # (V, V): row = previous token

    def score(self, tokens, state):
        return self.table[tokens[:, -1]].clone(), (state or 0) + 1

    def select_state(self, state, indices):
        return state


def _sequences(vocab: int, max_len: int):
    """Every token sequence that ends with EOT within max_len steps, plus the capped ones without EOT."""
    for n in range(max_len + 1):
        for body in itertools.product(range(1, vocab), repeat=n):
            yield list(body), n < max_len


def _logprob(table: torch.Tensor, start: int, seq: list[int], ended: bool) -> float:
    logp = torch.log_softmax(table, dim=-1)
    total, prev = 0.0, start
    for t in seq + ([EOT] if ended else []):
        total += float(logp[prev, t])
        prev = t
    return total


@pytest.mark.parametrize("seed", range(5))
def test_wide_beam_is_exhaustive(seed):
    torch.manual_seed(seed)
    vocab, max_len, start = 4, 3, 1
    table = torch.randn(vocab, vocab) * 2
    step = Step(Bigram(table))
    tokens = torch.tensor([[start]])
    (cands,) = beam_search(step, tokens, None, beam_size=64, eot=EOT, max_new_tokens=max_len)
    ranker = LengthNormalizedRanker(None)
    best = pick_best(cands, ranker)
    brute = max(((s, _logprob(table, start, s, e)) for s, e in _sequences(vocab, max_len)),
                key=lambda x: ranker.score(len(x[0]), x[1]))
    assert best.tokens == brute[0]
    assert best.sum_logprob == pytest.approx(brute[1], abs=1e-5)
    assert len(cands) == sum(1 for _ in _sequences(vocab, max_len))  # wide enough to see every output
    for c in cands:  # every candidate's score is its true log-probability (capped ones have no end token)
        ended = len(c.tokens) < max_len
        assert c.sum_logprob == pytest.approx(_logprob(table, start, c.tokens, ended), abs=1e-5)


def test_beam_one_equals_greedy():
    torch.manual_seed(0)
    table = torch.randn(6, 6) * 3
    step = Step(Bigram(table))
    tokens = torch.tensor([[2], [3], [4]])
    greedy = sample_search(step, tokens, None, eot=EOT, max_new_tokens=8)
    beams = beam_search(step, tokens, None, beam_size=1, eot=EOT, max_new_tokens=8)
    assert [g.tokens for g in greedy] == [b[0].tokens for b in beams]
    for g, b in zip(greedy, beams):
        assert g.sum_logprob == pytest.approx(b[0].sum_logprob, abs=1e-5)


def test_batched_beam_equals_one_by_one():
    torch.manual_seed(1)
    table = torch.randn(7, 7) * 2
    step = Step(Bigram(table))
    starts = [1, 2, 3, 5]
    batched = beam_search(step, torch.tensor([[s] for s in starts]), None, beam_size=3, eot=EOT,
                          max_new_tokens=6)
    for s, cands in zip(starts, batched):
        (single,) = beam_search(step, torch.tensor([[s]]), None, beam_size=3, eot=EOT, max_new_tokens=6)
        assert [c.tokens for c in cands] == [c.tokens for c in single]


def test_length_bonus_makes_outputs_longer():
    # EOT is likely everywhere: without a bonus the best output is short; a large bonus prefers length
    table = torch.zeros(4, 4)
    table[:, EOT] = 2.0
    plain = Step(Bigram(table))
    bonus = Step(Bigram(table), aux=ScoredSum([(5.0, LengthBonus(4, EOT))]))
    tokens = torch.tensor([[1]])
    short = pick_best(beam_search(plain, tokens, None, beam_size=4, eot=EOT, max_new_tokens=5)[0],
                      LengthNormalizedRanker(1.0))
    long = sample_search(bonus, tokens, None, eot=EOT, max_new_tokens=5, aux_state=(None,))[0]
    assert len(short.tokens) == 0
    assert len(long.tokens) == 5


def test_sampling_is_seeded_and_respects_suppression():
    from seqspeech.decoding.filters import SuppressTokens

    table = torch.zeros(5, 5)
    step = Step(Bigram(table), filters=[SuppressTokens([3, 4])])
    tokens = torch.tensor([[1]] * 8)
    a = sample_search(step, tokens, None, eot=EOT, max_new_tokens=6, temperature=1.0,
                      generator=torch.Generator().manual_seed(3))
    b = sample_search(step, tokens, None, eot=EOT, max_new_tokens=6, temperature=1.0,
                      generator=torch.Generator().manual_seed(3))
    assert [h.tokens for h in a] == [h.tokens for h in b]
    assert all(t not in (3, 4) for h in a for t in h.tokens)
    assert len({tuple(h.tokens) for h in a}) > 1
    for h in a:
        assert h.sum_logprob == pytest.approx((len(h.tokens) + (len(h.tokens) < 6)) * math.log(1 / 3), abs=1e-5)


def test_patience_collects_more_candidates():
    torch.manual_seed(2)
    table = torch.randn(6, 6)
    table[:, EOT] += 1.5  # outputs end often enough to fill both candidate lists
    step = Step(Bigram(table))
    tokens = torch.tensor([[1]])
    (few,) = beam_search(step, tokens, None, beam_size=2, eot=EOT, max_new_tokens=10)
    (many,) = beam_search(step, tokens, None, beam_size=2, eot=EOT, max_new_tokens=10, patience=2.0)
    assert len(few) == 2 and len(many) == 4
