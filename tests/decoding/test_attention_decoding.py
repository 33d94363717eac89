"""attention_decode on toy deterministic models, checked against brute-force enumeration of every output."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from seqspeech.decoding.attention import BLANK, SOS_EOS, AttentionDecodeOptions, attention_decode
from seqspeech.decoding.search import Step, beam_search
from seqspeech.errors import ConfigError

EOS = SOS_EOS
V = 6  # 0 blank, 1 unk, 2 <sos/eos>, 3..5 symbols
SYMBOLS = (1, 3, 4, 5)  # what a decoder may emit besides eos


@dataclass
class ToyState:
    batch: torch.Tensor  # (N,) which input each row decodes
    cov: torch.Tensor  # (N, T) cumulative attention


class ToyScorer:
    """Next-token logits and this step's attention are functions of (input, prefix); coverage is their running sum."""

    def __init__(self, logits_fn, attention_fn):
        self.logits_fn = logits_fn
        self.attention_fn = attention_fn
        self.vocab_size = V

    def score(self, tokens, state):
        rows = list(zip(state.batch.tolist(), (tuple(r[1:]) for r in tokens.tolist())))
        logits = torch.stack([self.logits_fn(b, p) for b, p in rows])
        attention = torch.stack([self.attention_fn(b, p) for b, p in rows])
        return logits, ToyState(state.batch, state.cov + attention)

    def select_state(self, state, indices):
        return ToyState(state.batch[indices], state.cov[indices])

    def coverage(self, state):
        return state.cov


class ToyModel:
    def __init__(self, logits_fn, attention_fn=None, ctc=None):
        self.attention_fn = attention_fn
        self.logits_fn = logits_fn
        self.ctc = ctc
        self.ctc_calls = 0

    def scorer(self, memory, memory_lens):
        batch, frames = memory.shape[:2]
        attention_fn = self.attention_fn or (lambda b, p: torch.zeros(frames))
        state = ToyState(torch.arange(batch), torch.zeros(batch, frames))
        return ToyScorer(self.logits_fn, attention_fn), state

    def ctc_log_probs(self, memory, memory_lens):
        self.ctc_calls += 1
        return self.ctc


def random_logits(seed: int, scale: float = 2.0):
    """History-dependent logits, a deterministic function of (seed, input, prefix); blank is never emitted."""

    def fn(b, prefix):
        g = torch.Generator().manual_seed(hash((seed, b, prefix)) % (2**31))
        logits = torch.randn(V, generator=g) * scale
        logits[BLANK] = float("-inf")
        return logits

    return fn


def table_logits(table: dict, default=None):
    """Logits from a prefix -> probabilities table (the same for every input)."""

    def fn(b, prefix):
        probs = table.get(prefix, default)
        if probs is None:  # anything else: end now
            probs = {EOS: 1.0}
        logits = torch.full((V,), -1e4)
        for tok, p in probs.items():
            logits[tok] = math.log(p)
        return logits

    return fn


def memory(batch: int, frames: int, lens=None):
    lens = torch.tensor(lens if lens is not None else [frames] * batch)
    return torch.zeros(batch, frames, 4), lens


def att_logprob(logits_fn, b, seq, ended=True):
    total = 0.0
    for i, tok in enumerate(list(seq) + ([EOS] if ended else [])):
        total += float(F.log_softmax(logits_fn(b, tuple(seq[:i])).float(), dim=-1)[tok])
    return total


def ctc_logprob(log_probs, b, seq, length):
    if not seq:
        return float(log_probs[b, :length, BLANK].sum())
    loss = F.ctc_loss(log_probs[b, :length, None].double(), torch.tensor([seq]), torch.tensor([length]),
                      torch.tensor([len(seq)]), blank=BLANK, reduction="sum")
    return -float(loss)


def all_outputs(max_len):
    for n in range(max_len + 1):
        yield from (list(s) for s in itertools.product(SYMBOLS, repeat=n))


# -- greedy and beam -----------------------------------------------------------------------------------------


def test_beam_one_is_greedy_and_matches_a_hand_loop():
    logits_fn = random_logits(0)
    model = ToyModel(logits_fn)
    mem, lens = memory(3, 6)
    greedy = attention_decode(model, mem, lens, AttentionDecodeOptions(beam_size=1))
    for b, (hyp,) in enumerate(greedy):
        seq = []
        while len(seq) < 6:
            tok = int(logits_fn(b, tuple(seq)).argmax())
            if tok == EOS:
                break
            seq.append(tok)
        assert hyp.tokens == seq
        assert hyp.sum_logprob == pytest.approx(att_logprob(logits_fn, b, seq, len(seq) < 6), abs=1e-4)
    # the beam search with K = 1 walks the same path
    scorer, state = model.scorer(mem, lens)
    beams = beam_search(Step(scorer), torch.full((3, 1), EOS), state, beam_size=1, eot=EOS, max_new_tokens=6)
    assert [g[0].tokens for g in greedy] == [c[0].tokens for c in beams]


def test_beam_beats_greedy_on_a_garden_path():
    # greedy takes 3 (p .5), after which everything is flat; the beam keeps 4 (p .4) which then ends surely
    table = {(): {3: 0.5, 4: 0.4, EOS: 0.1}, (3,): {1: 0.25, 3: 0.25, 4: 0.25, 5: 0.25}, (4,): {EOS: 1.0}}
    model = ToyModel(table_logits(table))
    mem, lens = memory(1, 4)
    ((greedy,),) = attention_decode(model, mem, lens, AttentionDecodeOptions(beam_size=1))
    ((beam,),) = attention_decode(model, mem, lens, AttentionDecodeOptions(beam_size=3))
    assert greedy.tokens[0] == 3
    assert beam.tokens == [4]
    assert beam.sum_logprob == pytest.approx(math.log(0.4), abs=1e-4)
    assert beam.sum_logprob > greedy.sum_logprob


@pytest.mark.parametrize("seed", range(3))
def test_wide_beam_nbest_is_the_sorted_brute_force(seed):
    logits_fn = random_logits(seed, scale=1.5)
    model = ToyModel(logits_fn)
    mem, lens = memory(2, 3)  # cap: 3 tokens
    opts = AttentionDecodeOptions(beam_size=100, nbest=5)
    out = attention_decode(model, mem, lens, opts)
    for b, hyps in enumerate(out):
        brute = sorted(((att_logprob(logits_fn, b, s, len(s) < 3), s) for s in all_outputs(3)), key=lambda x: -x[0])
        assert [h.tokens for h in hyps] == [s for _, s in brute[:5]]
        assert [h.sum_logprob for h in hyps] == pytest.approx([lp for lp, _ in brute[:5]], abs=1e-4)
        assert len({tuple(h.tokens) for h in hyps}) == 5


def test_patience_waits_for_better_endings():
    # ending is likely at every step but costs the future: with K = 2 the search stops after the first two ends
    table = {(): {3: 0.7, EOS: 0.3}, (3,): {3: 0.6, EOS: 0.4}, (3, 3): {3: 0.99, EOS: 0.01}, (3, 3, 3): {EOS: 1.0}}
    model = ToyModel(table_logits(table, default={4: 1.0}))  # unlikely prefixes never end (until the cap)
    mem, lens = memory(1, 6)
    ((plain,),) = attention_decode(model, mem, lens, AttentionDecodeOptions(beam_size=2))
    ((patient,),) = attention_decode(model, mem, lens, AttentionDecodeOptions(beam_size=2, patience=2.0))
    assert plain.tokens == []  # log .3 beats log .7 + log .4; then two outputs have ended
    assert patient.tokens == [3, 3, 3]  # log .7 + log .6 + log .99 beats log .3
    assert patient.sum_logprob == pytest.approx(math.log(0.7 * 0.6 * 0.99), abs=1e-4)


def test_length_penalty_ranks_by_normalised_score():
    logits_fn = random_logits(7, scale=1.0)
    model = ToyModel(logits_fn)
    mem, lens = memory(1, 3)
    (hyps,) = attention_decode(model, mem, lens, AttentionDecodeOptions(beam_size=100, nbest=4, length_penalty=1.0))
    brute = sorted(all_outputs(3), key=lambda s: -att_logprob(logits_fn, 0, s, len(s) < 3) / ((5 + len(s)) / 6))
    assert [h.tokens for h in hyps] == brute[:4]


# -- remedies ------------------------------------------------------------------------------------------------


def test_eos_threshold_prevents_a_premature_end():
    # eos (p .3) is second at the first step; the confident token 3 is followed by a costly choice, so the
    # raw score prefers ending at once. The threshold (log .3 < 1.5 log .7) forbids that end.
    table = {(): {3: 0.7, EOS: 0.3}, (3,): {1: 0.25, 3: 0.25, 4: 0.25, 5: 0.25}}
    model = ToyModel(table_logits(table))
    mem, lens = memory(1, 4)
    ((plain,),) = attention_decode(model, mem, lens, AttentionDecodeOptions(beam_size=2))
    ((guarded,),) = attention_decode(model, mem, lens, AttentionDecodeOptions(beam_size=2, eos_threshold=1.5))
    assert plain.tokens == []
    assert plain.sum_logprob == pytest.approx(math.log(0.3), abs=1e-4)
    assert len(guarded.tokens) == 2 and guarded.tokens[0] == 3
    # a looser threshold lets the end through again: log .3 > 4 * log .7
    ((loose,),) = attention_decode(model, mem, lens, AttentionDecodeOptions(beam_size=2, eos_threshold=4.0))
    assert loose.tokens == []


def one_hot(frames, t):
    v = torch.zeros(frames)
    v[t] = 1.0
    return v


def test_coverage_bonus_changes_the_ranking():
    # [3] is likelier than [4], but 4 moves the attention to a new frame (covering 2 frames instead of 1)
    table = {(): {3: 0.5, 4: 0.4, EOS: 0.1}, (3,): {EOS: 1.0}, (4,): {EOS: 1.0}}
    frames = 5
    attend = {(): 0, (3,): 0, (4,): 3}
    model = ToyModel(table_logits(table), lambda b, p: one_hot(frames, attend.get(p, 0)))
    mem, lens = memory(1, frames)
    ((plain,),) = attention_decode(model, mem, lens, AttentionDecodeOptions(beam_size=3))
    opts = AttentionDecodeOptions(beam_size=3, nbest=2, coverage_weight=1.0)
    (ranked,) = attention_decode(model, mem, lens, opts)
    assert plain.tokens == [3] and plain.coverage_bonus == 0.0
    assert [h.tokens for h in ranked] == [[4], [3]]
    assert [h.coverage_bonus for h in ranked] == [2.0, 1.0]
    assert ranked[0].sum_logprob - ranked[0].coverage_bonus == pytest.approx(math.log(0.4), abs=1e-4)
    assert ranked[1].sum_logprob - ranked[1].coverage_bonus == pytest.approx(math.log(0.5), abs=1e-4)
    # the threshold decides what counts as covered: at tau = 1 a single visit is not enough
    (strict,) = attention_decode(model, mem, lens, AttentionDecodeOptions(beam_size=3, nbest=2, coverage_weight=1.0,
                                                                         coverage_threshold=1.0))
    assert strict[0].tokens == [3] and strict[0].coverage_bonus == 1.0  # frame 0 was attended twice


@pytest.mark.parametrize("seed", range(2))
def test_coverage_scores_match_brute_force(seed):
    frames = 4
    logits_fn = random_logits(seed, scale=1.0)

    def attention_fn(b, prefix):  # a soft attention that wanders with the prefix
        g = torch.Generator().manual_seed(hash((999, seed, b, prefix)) % (2**31))
        return torch.softmax(torch.randn(frames, generator=g) * 3, dim=0)

    def brute_score(b, seq, ended):  # a capped output is made to end: its end step attends too (eos scores 0)
        cov = torch.zeros(frames)
        for i in range(len(seq) + 1):
            cov += attention_fn(b, tuple(seq[:i]))
        return att_logprob(logits_fn, b, seq, ended) + 0.7 * float((cov > 0.5).sum())

    model = ToyModel(logits_fn, attention_fn)
    mem, lens = memory(1, frames)
    opts = AttentionDecodeOptions(beam_size=100, nbest=3, coverage_weight=0.7, max_length_ratio=0.75)
    (hyps,) = attention_decode(model, mem, lens, opts)
    brute = sorted(((brute_score(0, s, len(s) < 3), s) for s in all_outputs(3)), key=lambda x: -x[0])
    assert [h.tokens for h in hyps] == [s for _, s in brute[:3]]
    assert [h.sum_logprob for h in hyps] == pytest.approx([x for x, _ in brute[:3]], abs=1e-4)
    # greedy reports the same score for its output
    ((greedy,),) = attention_decode(model, mem, lens, AttentionDecodeOptions(coverage_weight=0.7,
                                                                            max_length_ratio=0.75))
    assert greedy.sum_logprob == pytest.approx(brute_score(0, greedy.tokens, len(greedy.tokens) < 3), abs=1e-4)


def test_length_cap_and_min_length():
    never_ends = table_logits({}, default={3: 0.8, 4: 0.2})
    model = ToyModel(never_ends)
    mem, lens = memory(2, 8, lens=[8, 3])
    for beam in (1, 3):
        out = attention_decode(model, mem, lens, AttentionDecodeOptions(beam_size=beam, max_length_ratio=0.5))
        assert [h[0].tokens for h in out] == [[3] * 4, [3] * 2]  # ceil(0.5 * 8), ceil(0.5 * 3): a cap per input
        # the cap forces the end, which then costs nothing
        assert [h[0].sum_logprob for h in out] == pytest.approx([4 * math.log(0.8), 2 * math.log(0.8)], abs=1e-4)
    ends_at_once = table_logits({}, default={3: 0.1, EOS: 0.9})
    model = ToyModel(ends_at_once)
    for beam in (1, 3):
        out = attention_decode(model, mem, lens, AttentionDecodeOptions(beam_size=beam, min_new_tokens=2))
        assert [h[0].tokens for h in out] == [[3, 3], [3, 3]]


# -- fusion --------------------------------------------------------------------------------------------------


def ctc_table(seed, batch, frames):
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(torch.randn(batch, frames, V, generator=g) * 2, dim=-1)


def test_ctc_weight_zero_ignores_the_ctc_head():
    logits_fn = random_logits(3)
    mem, lens = memory(2, 4)
    with_head = ToyModel(logits_fn, ctc=ctc_table(0, 2, 4))
    without = ToyModel(logits_fn)
    a = attention_decode(with_head, mem, lens, AttentionDecodeOptions(beam_size=4, nbest=4))
    b = attention_decode(without, mem, lens, AttentionDecodeOptions(beam_size=4, nbest=4))
    assert with_head.ctc_calls == 0
    assert [[h.tokens for h in x] for x in a] == [[h.tokens for h in x] for x in b]


@pytest.mark.parametrize("ctc_weight", [1.0, 0.4])
def test_joint_ctc_attention_is_the_brute_force_optimum(ctc_weight):
    frames = 3
    logits_fn = random_logits(11, scale=1.5)
    log_probs = ctc_table(5, 2, frames)
    lengths = [3, 2]
    model = ToyModel(logits_fn, ctc=log_probs)
    mem, lens = memory(2, frames, lens=lengths)
    # a cap above T: longer outputs have CTC probability 0, so every candidate is a finished one
    opts = AttentionDecodeOptions(beam_size=100, nbest=3, ctc_weight=ctc_weight, max_length_ratio=2.0)
    out = attention_decode(model, mem, lens, opts)
    for b, hyps in enumerate(out):
        scores = [
            ((1 - ctc_weight) * att_logprob(logits_fn, b, s) + ctc_weight * ctc_logprob(log_probs, b, s, lengths[b]), s)
            for s in all_outputs(lengths[b])
        ]
        brute = sorted(scores, key=lambda x: -x[0])
        assert [h.tokens for h in hyps] == [s for _, s in brute[:3]]
        assert [h.sum_logprob for h in hyps] == pytest.approx([x for x, _ in brute[:3]], abs=1e-4)


def test_the_models_own_ids_are_used():
    # a model whose start/end id is 5: its outputs end at 5, and CTC scores 5 as the end
    table = {(): {3: 0.6, 5: 0.4}, (3,): {5: 1.0}}
    model = ToyModel(table_logits(table, default={5: 1.0}), ctc=ctc_table(1, 1, 3))
    model.sos_eos = 5
    mem, lens = memory(1, 3)
    for opts in (AttentionDecodeOptions(), AttentionDecodeOptions(beam_size=3, ctc_weight=0.5, max_length_ratio=2.0)):
        ((hyp,),) = attention_decode(model, mem, lens, opts)
        assert 5 not in hyp.tokens and len(hyp.tokens) <= 1
    ((greedy,),) = attention_decode(model, mem, lens)
    assert greedy.tokens == [3] and greedy.sum_logprob == pytest.approx(math.log(0.6), abs=1e-4)


def test_ctc_needs_a_head():
    mem, lens = memory(1, 3)
    with pytest.raises(ConfigError, match="CTC head"):
        attention_decode(ToyModel(random_logits(0)), mem, lens, AttentionDecodeOptions(ctc_weight=0.3))


class BiasLM:
    """A token-level 'LM' that likes one token: log-probs of a fixed distribution, whatever the history."""

    def __init__(self, favourite):
        probs = torch.full((V,), 0.05)
        probs[favourite] = 1.0 - 0.05 * (V - 1)
        self.logprobs = probs.log()
        self.rows = None

    def init_state(self, n):
        self.rows = n
        return torch.zeros(n)

    def score(self, tokens, state):
        return self.logprobs.expand(tokens.shape[0], V).clone(), state

    def select_state(self, state, indices):
        return state[indices]


def test_lm_shallow_fusion_adds_weighted_lm_scores():
    table = {(): {3: 0.55, 4: 0.45}, (3,): {EOS: 1.0}, (4,): {EOS: 1.0}}
    model = ToyModel(table_logits(table))
    mem, lens = memory(2, 3)
    lm = BiasLM(4)
    plain = attention_decode(model, mem, lens, AttentionDecodeOptions(beam_size=2))
    fused = attention_decode(model, mem, lens, AttentionDecodeOptions(beam_size=2, lm_weight=0.5), lm=lm)
    assert lm.rows == 2
    assert [h[0].tokens for h in plain] == [[3], [3]]
    assert [h[0].tokens for h in fused] == [[4], [4]]
    expected = math.log(0.45) + 0.5 * float(lm.logprobs[4] + lm.logprobs[EOS])
    assert fused[0][0].sum_logprob == pytest.approx(expected, abs=1e-4)
    greedy = attention_decode(model, mem, lens, AttentionDecodeOptions(lm_weight=0.5), lm=lm)
    assert [h[0].tokens for h in greedy] == [[4], [4]]
    with pytest.raises(ConfigError, match="lm"):
        attention_decode(model, mem, lens, AttentionDecodeOptions(lm_weight=0.5))


# -- options -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"beam_size": 0}, "beam_size"),
        ({"nbest": 2}, "nbest"),
        ({"ctc_weight": 1.5}, "ctc_weight"),
        ({"ctc_weight": float("nan")}, "ctc_weight"),
        ({"length_penalty": -0.1}, "length_penalty"),
        ({"coverage_threshold": 0.0}, "coverage_threshold"),
        ({"eos_threshold": 0.0}, "eos_threshold"),
        ({"max_length_ratio": 0.0}, "max_length_ratio"),
        ({"min_new_tokens": -1}, "min_new_tokens"),
        ({"patience": 0.0}, "patience"),
        ({"beam_size": True}, "beam_size"),
    ],
)
def test_bad_options_name_the_field(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        AttentionDecodeOptions(**kwargs)


def test_options_round_trip_and_strict_keys():
    opts = AttentionDecodeOptions(beam_size=4, ctc_weight=0.3, length_penalty=0.6, eos_threshold=1.5, nbest=2)
    assert AttentionDecodeOptions.from_dict(opts.to_dict()) == opts
    with pytest.raises(ConfigError, match="beam_szie"):
        AttentionDecodeOptions.from_dict({"beam_szie": 4})
    with pytest.raises(ConfigError, match="decode: nbest"):
        AttentionDecodeOptions.from_dict({"beam_size": 2, "nbest": 3}, where="decode")


def test_bad_inputs():
    model = ToyModel(random_logits(0))
    with pytest.raises(ValueError, match="memory"):
        attention_decode(model, torch.zeros(2, 3), torch.tensor([3, 3]))
    with pytest.raises(ValueError, match="memory_lens"):
        attention_decode(model, torch.zeros(2, 3, 4), torch.tensor([3, 4]))
