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


# -- search remedies -----------------------------------------------------------------------------------------

from seqspeech.decoding.search import (  # noqa: E402
    EOSThreshold,
    Hypothesis,
    MaxNewTokensPerInput,
    MinNewTokens,
    max_new_tokens_for,
    nbest,
    new_token_caps,
)


@pytest.mark.parametrize("gamma", [1.0, 1.5, 3.0])
def test_eos_threshold_matches_its_rule_row_by_row(gamma):
    torch.manual_seed(4)
    logits = torch.randn(200, 6) * 2
    eos = 2
    filtered = logits.clone()
    EOSThreshold(eos, gamma).apply(filtered, torch.zeros(200, 1, dtype=torch.long))
    logp = torch.log_softmax(logits, dim=-1)
    for row in range(200):
        best_other = max(float(logp[row, c]) for c in range(6) if c != eos)
        allowed = float(logp[row, eos]) > gamma * best_other
        assert (filtered[row, eos] != float("-inf")) == allowed
        others = [c for c in range(6) if c != eos]
        assert torch.equal(filtered[row, others], logits[row, others])  # only eos is touched
    assert (filtered[:, eos] == float("-inf")).any() and (filtered[:, eos] != float("-inf")).any()


def test_eos_threshold_edge_rows():
    eos = 0
    logits = torch.tensor([[0.0, float("-inf"), float("-inf")],  # eos is the only option: kept
                           [-30.0, 10.0, float("-inf")]])  # a certain token (log p ~ 0): eos forbidden
    EOSThreshold(eos, 1.5).apply(logits, torch.zeros(2, 1, dtype=torch.long))
    assert logits[0, eos] == 0.0 and logits[1, eos] == float("-inf")
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="gamma"):
            EOSThreshold(eos, bad)


def test_min_new_tokens_forbids_an_early_end():
    f = MinNewTokens(eos=0, prompt_len=2, min_new_tokens=2)
    for length, forbidden in ((2, True), (3, True), (4, False)):
        logits = torch.zeros(3, 4)
        f.apply(logits, torch.zeros(3, length, dtype=torch.long))
        assert bool((logits[:, 0] == float("-inf")).all()) == forbidden
        assert bool((logits[:, 1:] == 0).all())


def test_max_new_tokens_for():
    assert max_new_tokens_for(torch.tensor([10, 40, 7]), 0.5) == 20
    assert max_new_tokens_for([10], 0.3) == 3  # no float round-up to 4
    assert max_new_tokens_for([3], 0.1, minimum=5) == 5
    assert max_new_tokens_for([9], 0.25) == 3
    with pytest.raises(ValueError, match="ratio"):
        max_new_tokens_for([10], 0.0)
    with pytest.raises(ValueError, match="minimum"):
        max_new_tokens_for([10], 1.0, minimum=0)
    with pytest.raises(ValueError, match="empty"):
        max_new_tokens_for([], 1.0)


def test_new_token_caps_per_input():
    assert new_token_caps(torch.tensor([10, 40, 7]), 0.5).tolist() == [5, 20, 4]
    assert new_token_caps([0, 2], 0.5, minimum=2).tolist() == [2, 2]
    with pytest.raises(ValueError, match="memory_lens"):
        new_token_caps([3, -1], 1.0)


def test_max_new_tokens_per_input_forces_the_end_in_beam_layout():
    f = MaxNewTokensPerInput(torch.tensor([1, 3]), prompt_len=1, eos=0)
    for new, forced in ((0, [False, False]), (1, [True, False]), (3, [True, True])):
        logits = torch.randn(4, 5)  # 2 inputs x 2 beams, input-major
        before = logits.clone()
        f.apply(logits, torch.zeros(4, 1 + new, dtype=torch.long))
        for row in range(4):
            if forced[row // 2]:
                assert logits[row, 0] == 0 and bool((logits[row, 1:] == float("-inf")).all())
            else:
                assert torch.equal(logits[row], before[row])
    with pytest.raises(ValueError, match="spread"):
        f.apply(torch.zeros(3, 5), torch.zeros(3, 2, dtype=torch.long))
    # in a search every row ends at its own cap
    table = torch.zeros(4, 4)
    table[:, EOT] = -20.0  # ending is (almost) never chosen freely
    step = Step(Bigram(table), filters=[MaxNewTokensPerInput(torch.tensor([2, 4]), 1, EOT)])
    out = beam_search(step, torch.tensor([[1], [1]]), None, beam_size=2, eot=EOT, max_new_tokens=5)
    assert [len(c[0].tokens) for c in out] == [2, 4]
    greedy = sample_search(step, torch.tensor([[1], [1]]), None, eot=EOT, max_new_tokens=5)
    assert [len(h.tokens) for h in greedy] == [2, 4]


def test_primary_weight_scales_log_probs_and_keeps_forbidden_tokens():
    from seqspeech.decoding.filters import SuppressTokens

    torch.manual_seed(5)
    table = torch.randn(5, 5)
    tokens = torch.tensor([[1], [3]])
    _, full, _, _ = Step(Bigram(table))(tokens, None, None, None)
    _, half, _, _ = Step(Bigram(table), primary_weight=0.5)(tokens, None, None, None)
    assert torch.allclose(half, 0.5 * full)
    _, zero, _, _ = Step(Bigram(table), filters=[SuppressTokens([4])], primary_weight=0.0)(tokens, None, None, None)
    assert torch.equal(zero[:, :4], torch.zeros(2, 4)) and bool((zero[:, 4] == float("-inf")).all())
    with pytest.raises(ValueError, match="primary_weight"):
        Step(Bigram(table), primary_weight=-1.0)


class CoverageBigram(Bigram):
    """A bigram whose attention at each step is one-hot on the frame named by the last token."""

    frames = 4

    def score(self, tokens, state):
        cov = state if state is not None else torch.zeros(tokens.shape[0], self.frames)
        att = torch.nn.functional.one_hot(tokens[:, -1] % self.frames, self.frames).float()
        return self.table[tokens[:, -1]].clone(), cov + att

    def select_state(self, state, indices):
        return state[indices]

    def coverage(self, state):
        return state


@pytest.mark.parametrize("seed", range(3))
def test_coverage_beam_search_is_exhaustive(seed):
    torch.manual_seed(seed)
    vocab, max_len, start, weight = 4, 3, 1, 0.8
    table = torch.randn(vocab, vocab) * 2
    step = Step(CoverageBigram(table))
    state = torch.zeros(1, CoverageBigram.frames)
    (cands,) = beam_search(step, torch.tensor([[start]]), state, beam_size=64, eot=EOT, max_new_tokens=max_len,
                           coverage_weight=weight)

    def brute(seq, ended):
        history = [start] + seq  # the attention of each scored step follows the last token seen
        frames = {t % CoverageBigram.frames for t in history[: len(seq) + ended]}
        return _logprob(table, start, seq, ended) + weight * len(frames)

    assert len(cands) == sum(1 for _ in _sequences(vocab, max_len))
    for c in cands:
        ended = len(c.tokens) < max_len
        assert c.sum_logprob == pytest.approx(brute(c.tokens, ended), abs=1e-5)
        assert c.sum_logprob - c.coverage_bonus == pytest.approx(_logprob(table, start, c.tokens, ended), abs=1e-5)
    best = nbest(cands, 1)[0]
    assert best.sum_logprob == pytest.approx(max(brute(s, e) for s, e in _sequences(vocab, max_len)), abs=1e-5)


def test_coverage_off_is_todays_search_and_needs_a_coverage_method():
    torch.manual_seed(6)
    table = torch.randn(5, 5)
    tokens = torch.tensor([[1], [2]])
    a = beam_search(Step(Bigram(table)), tokens, None, beam_size=3, eot=EOT, max_new_tokens=5)
    b = beam_search(Step(Bigram(table)), tokens, None, beam_size=3, eot=EOT, max_new_tokens=5, coverage_weight=0.0)
    assert a == b
    with pytest.raises(ValueError, match="coverage"):
        beam_search(Step(Bigram(table)), tokens, None, beam_size=3, eot=EOT, max_new_tokens=5, coverage_weight=1.0)
    with pytest.raises(ValueError, match="coverage"):
        sample_search(Step(Bigram(table)), tokens, None, eot=EOT, max_new_tokens=5, coverage_weight=1.0)


def test_nbest_sorts_dedupes_and_uses_rankers():
    cands = [Hypothesis([1], -3.0), Hypothesis([1, 2, 3], -3.3), Hypothesis([2], -1.0), Hypothesis([1], -2.0),
             Hypothesis([4, 4], -2.5)]
    raw = nbest(cands, 10)
    assert [h.tokens for h in raw] == [[2], [1], [4, 4], [1, 2, 3]]  # [1] kept once, at its better score
    assert [h.sum_logprob for h in raw] == [-1.0, -2.0, -2.5, -3.3]
    assert [h.tokens for h in nbest(cands, 2)] == [[2], [1]]
    avg = nbest(cands, 3, LengthNormalizedRanker(None))  # averages: -1, -2, -1.25, -1.1
    assert [h.tokens for h in avg] == [[2], [1, 2, 3], [4, 4]]

    class Shortest:  # any Ranker: repeated rank() calls
        def rank(self, tokens, sum_logprobs):
            return min(range(len(tokens)), key=lambda i: (len(tokens[i]), -sum_logprobs[i]))

    assert [h.tokens for h in nbest(cands, 5, Shortest())] == [[2], [1], [4, 4], [1, 2, 3]]
    assert nbest([], 3) == []
    with pytest.raises(ValueError, match="n must"):
        nbest(cands, 0)


def test_sampling_draws_from_the_softmax_and_never_a_forbidden_token():
    """The inverse-CDF sampler has multinomial's distribution (within sampling error) and never draws a token
    of probability 0, also at the ends of the vocabulary."""
    from seqspeech.decoding.search import _sample

    probs = torch.tensor([[0.0, 0.1, 0.0, 0.6, 0.3, 0.0]]).repeat(100_000, 1)
    draws = _sample(probs, torch.Generator().manual_seed(0))
    counts = torch.bincount(draws, minlength=6).double() / len(draws)
    assert counts[[0, 2, 5]].sum() == 0
    assert torch.allclose(counts, probs[0].double(), atol=0.005), counts
