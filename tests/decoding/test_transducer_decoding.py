"""Transducer decoding: greedy, modified beam and time-synchronous beam search against brute-force references;
streaming (chunk by chunk) equals offline; batched equals one at a time; n-gram LM shallow fusion."""

import itertools
import math
import random

import pytest
import torch
from torch import nn

from seqspeech.asr.transducer import Joiner, LSTMPredictor, StatelessPredictor
from seqspeech.decoding.ctc import TokenWordMap
from seqspeech.decoding.lm import NGramTokenScorer, WordLMScorer, train_arpa
from seqspeech.decoding.transducer import (
    METHODS,
    TransducerSearch,
    TransducerSearchOptions,
    TransducerSearchState,
)
from seqspeech.errors import ConfigError
from seqspeech.text.tokenizers.char import CharTokenizer

BLANK = 0
ENC_DIM = 6  # joiner width J of the projected encoder frames in these tests


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one intra-op thread is several times faster than many on a shared, busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_model(vocab: int, kind: str = "lstm", seed: int = 0, blank_bias: float = 1.0):
    """A tiny random predictor + joiner (eval mode) whose blank is a little favoured, as in a trained model."""
    torch.manual_seed(seed)
    if kind == "lstm":
        predictor = LSTMPredictor(vocab, 5, 7, num_layers=2, blank=BLANK)  # state (layers, N, H): batch dim 1
    else:
        predictor = StatelessPredictor(vocab, 8, context_size=2, blank=BLANK)  # state (N, k): batch dim 0
    joiner = Joiner(4, predictor.output_dim, ENC_DIM, vocab)
    with torch.no_grad():
        joiner.output.weight.mul_(3.0)
        joiner.output.bias[BLANK] += blank_bias
    return predictor.eval(), joiner.eval()


def frames(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, length, ENC_DIM, generator=torch.Generator().manual_seed(seed)) * 1.5


class Reference:
    """Joiner log-probs for (frame, token history), from the predictor's full-sequence forward (not its step)."""

    def __init__(self, predictor, joiner, enc):  # enc (T, J)
        self.predictor, self.joiner, self.enc = predictor, joiner, enc
        self.cache = {}

    @torch.no_grad()
    def __call__(self, t: int, seq: tuple) -> list[float]:
        key = (t, seq)
        if key not in self.cache:
            g = self.predictor(torch.tensor([list(seq)], dtype=torch.long))[0, -1]
            logits = self.joiner(self.enc[t], self.joiner.project_predictor(g))
            self.cache[key] = logits.double().log_softmax(-1).tolist()
        return self.cache[key]


def logaddexp(a: float, b: float) -> float:
    return max(a, b) + math.log1p(math.exp(-abs(a - b))) if a > -math.inf else b


def combine(scores: dict, seq: tuple, value: float, merge: str) -> None:
    old = scores.get(seq)
    scores[seq] = value if old is None else (logaddexp(old, value) if merge == "logadd" else max(old, value))


def one_label_per_frame_scores(ref: Reference, length: int, vocab: int, merge: str) -> dict:
    """Every alignment that emits exactly one label (blank or not) per frame, merged per label sequence."""
    out: dict = {}
    for labels in itertools.product(range(vocab), repeat=length):
        seq, total = (), 0.0
        for t, v in enumerate(labels):
            total += ref(t, seq)[v]
            if v != BLANK:
                seq += (v,)
        combine(out, seq, total, merge)
    return out


def rnnt_scores(ref: Reference, length: int, vocab: int, max_symbols: int, merge: str) -> dict:
    """Every RNN-T alignment with at most max_symbols labels per frame (each frame closed by a blank)."""
    paths = [((), 0.0)]
    for t in range(length):
        grown = []
        for seq, total in paths:
            for n in range(max_symbols + 1):
                for labels in itertools.product(range(1, vocab), repeat=n):
                    s, tot = seq, total
                    for v in labels:
                        tot += ref(t, s)[v]
                        s += (v,)
                    grown.append((s, tot + ref(t, s)[BLANK]))
        paths = grown
    out: dict = {}
    for seq, total in paths:
        combine(out, seq, total, merge)
    return out


def greedy_reference(ref: Reference, length: int, cap: int | None = None) -> tuple[tuple, list, float]:
    """Argmax label by label; a frame ends at a blank (or after ``cap`` labels, no blank scored)."""
    seq, emitted_at, score = (), [], 0.0
    for t in range(length):
        for _ in range(cap or 100):
            lp = ref(t, seq)
            v = max(range(len(lp)), key=lp.__getitem__)
            score += lp[v]
            if v == BLANK:
                break
            seq += (v,)
            emitted_at.append(t)
        else:
            assert cap is not None, "the reference model never emits a blank"
    return seq, emitted_at, score


class PositionPredictor(nn.Module):
    """A test double: the output is a one-hot of how many labels were emitted (up to ``positions - 1``)."""

    def __init__(self, positions: int) -> None:
        super().__init__()
        self.blank, self.output_dim = BLANK, positions

    def forward(self, tokens):
        steps = torch.arange(tokens.shape[1] + 1).clamp(max=self.output_dim - 1)
        return nn.functional.one_hot(steps, self.output_dim).float()[None].expand(tokens.shape[0], -1, -1)

    def init_state(self, n):
        count = torch.zeros(n, dtype=torch.long)
        return nn.functional.one_hot(count, self.output_dim).float(), count

    def step(self, tokens, state):
        count = (state + 1).clamp(max=self.output_dim - 1)
        return nn.functional.one_hot(count, self.output_dim).float(), count

    def select_state(self, state, indices):
        return state[indices]


class TableJoiner(nn.Module):
    """A test double: encoder frames hold a (positions x V) logit table; the predictor picks the row."""

    def __init__(self, positions: int, vocab: int) -> None:
        super().__init__()
        self.positions, self.vocab = positions, vocab

    def project_predictor(self, g):  # 0 on the row of the current position, -1000 elsewhere
        return ((g - 1) * 1000)[..., None].expand(*g.shape, self.vocab).flatten(-2)

    def forward(self, enc_proj, pred_proj):
        return (enc_proj + pred_proj).unflatten(-1, (self.positions, self.vocab)).logsumexp(-2)


def all_scores(search: TransducerSearch, state: TransducerSearchState) -> dict:
    return {tuple(h.tokens): h.am_score for h in search.nbest(state)}


def assert_same(a, b) -> None:
    assert a.tokens == b.tokens
    assert a.frames == b.frames
    assert a.n_words == b.n_words
    assert a.score == pytest.approx(b.score, abs=1e-6)
    assert a.am_score == pytest.approx(b.am_score, abs=1e-6)
    assert a.lm_score == pytest.approx(b.lm_score, abs=1e-6)


# -- exactness against brute force ---------------------------------------------------------------------------


def test_greedy_equals_step_by_step_argmax_decoding():
    positions, vocab, lens = 40, 4, [9, 6]
    predictor, joiner = PositionPredictor(positions), TableJoiner(positions, vocab)
    enc = torch.randn(2, 9, positions, vocab, generator=torch.Generator().manual_seed(4))
    enc[:, :, -1, BLANK] = 100.0  # the last position ends every frame
    enc = enc.flatten(-2)
    search = TransducerSearch(predictor, joiner, TransducerSearchOptions("greedy", max_symbols_per_frame=positions))
    hyps = search.decode(enc, lens)
    for b, n in enumerate(lens):
        seq, emitted_at, score = greedy_reference(Reference(predictor, joiner, enc[b]), n)
        assert len(seq) < positions - 1 and max(emitted_at.count(t) for t in emitted_at) >= 3
        assert (hyps[b].tokens, hyps[b].frames) == (list(seq), emitted_at)
        assert hyps[b].score == pytest.approx(score, abs=1e-9)
        assert hyps[b].last_emission_frame == emitted_at[-1]


@pytest.mark.parametrize("kind", ["lstm", "stateless"])
def test_greedy_with_a_cap_equals_the_capped_reference(kind):
    predictor, joiner = make_model(6, kind, seed=3, blank_bias=0.5)
    enc = frames(2, 9, seed=4)
    search = TransducerSearch(predictor, joiner, TransducerSearchOptions("greedy", max_symbols_per_frame=2))
    hyps = search.decode(enc, [9, 6])
    for b, n in enumerate([9, 6]):
        seq, emitted_at, score = greedy_reference(Reference(predictor, joiner, enc[b]), n, cap=2)
        assert (hyps[b].tokens, hyps[b].frames) == (list(seq), emitted_at)
        assert hyps[b].score == pytest.approx(score, abs=1e-5)
        assert max(emitted_at.count(t) for t in emitted_at) == 2


def test_greedy_caps_the_labels_per_frame():
    predictor, joiner = make_model(6, seed=3, blank_bias=-3.0)  # blank is rare: frames want many labels
    hyp = TransducerSearch(predictor, joiner, TransducerSearchOptions("greedy", max_symbols_per_frame=2)).decode(
        frames(1, 7), [7]
    )[0]
    assert max(hyp.frames.count(t) for t in set(hyp.frames)) == 2


@pytest.mark.parametrize("merge", ["max", "logadd"])
def test_modified_beam_is_exact_over_one_label_per_frame_alignments(merge):
    predictor, joiner = make_model(3, seed=5)
    enc = frames(1, 3, seed=6)
    search = TransducerSearch(predictor, joiner, TransducerSearchOptions("modified_beam", beam_size=16, merge=merge))
    state = search.init_state()
    search.advance(enc, [3], [state])
    expected = one_label_per_frame_scores(Reference(predictor, joiner, enc[0]), 3, 3, merge)
    got = all_scores(search, state)
    assert got.keys() == expected.keys()
    for seq, value in expected.items():
        assert got[seq] == pytest.approx(value, abs=1e-5), seq
    best = max(expected, key=expected.__getitem__)
    assert tuple(search.finish(state).tokens) == best  # with max: the best single alignment's labels


@pytest.mark.parametrize("kind", ["lstm", "stateless"])
def test_modified_beam_of_one_is_greedy_with_one_label_per_frame(kind):
    predictor, joiner = make_model(7, kind, seed=8, blank_bias=0.0)
    enc = frames(3, 11, seed=9)
    lens = [11, 7, 10]
    beam = TransducerSearch(predictor, joiner, TransducerSearchOptions("modified_beam", beam_size=1)).decode(enc, lens)
    greedy = TransducerSearch(predictor, joiner, TransducerSearchOptions("greedy", max_symbols_per_frame=1))
    for a, b in zip(beam, greedy.decode(enc, lens)):
        assert_same(a, b)
    assert any(h.tokens for h in beam)


@pytest.mark.parametrize("merge", ["logadd", "max"])
def test_time_synchronous_beam_is_exact_rnnt_probability_within_the_symbol_cap(merge):
    predictor, joiner = make_model(3, seed=10)
    enc = frames(1, 3, seed=11)
    options = TransducerSearchOptions("beam", beam_size=128, max_symbols_per_frame=2, merge=merge)
    search = TransducerSearch(predictor, joiner, options)
    state = search.init_state()
    search.advance(enc, [3], [state])
    expected = rnnt_scores(Reference(predictor, joiner, enc[0]), 3, 3, 2, merge)
    got = all_scores(search, state)
    assert got.keys() == expected.keys()
    for seq, value in expected.items():
        assert got[seq] == pytest.approx(value, abs=1e-5), seq
    assert tuple(search.finish(state).tokens) == max(expected, key=expected.__getitem__)
    if merge == "logadd":  # all label sequences of up to 6 labels: their probabilities sum to 1
        assert math.fsum(math.exp(v) for v in expected.values()) < 1.0
        assert len(expected) == 2**7 - 1


def test_time_synchronous_narrow_beam_keeps_the_best_hypotheses_in_order():
    predictor, joiner = make_model(5, seed=12)
    search = TransducerSearch(predictor, joiner, TransducerSearchOptions("beam", beam_size=3))
    state = search.init_state()
    search.advance(frames(1, 8, seed=13), [8], [state])
    nbest = search.nbest(state)
    assert len(nbest) == 3
    assert [h.score for h in nbest] == sorted((h.score for h in nbest), reverse=True)
    assert len({tuple(h.tokens) for h in nbest}) == 3
    assert all(len(h.tokens) == len(h.frames) and h.frames == sorted(h.frames) for h in nbest)


# -- streaming and batching ----------------------------------------------------------------------------------


def char_setup(tmp_path):
    tokenizer = CharTokenizer.train(["the cat sat on a mat", "cut"])
    word_map = TokenWordMap.from_tokenizer(tokenizer)
    arpa = train_arpa(["the cat sat", "a cat sat on the mat", "the mat", "a cat"], tmp_path / "lm.arpa", order=2)
    return tokenizer, word_map, WordLMScorer.from_arpa(arpa, backend="python")


SEARCHES = [
    ("greedy", {}),
    ("modified_beam", {}),
    ("beam", {}),
    ("greedy", {"lm_weight": 0.6, "word_bonus": 0.5}),
    ("modified_beam", {"lm_weight": 0.6, "word_bonus": 0.5}),
    ("beam", {"lm_weight": 0.6, "word_bonus": 0.5, "merge": "max"}),
]


def build(tmp_path, method, extra, kind="lstm", seed=20):
    tokenizer, word_map, lm = char_setup(tmp_path)
    predictor, joiner = make_model(tokenizer.vocab_size, kind, seed=seed, blank_bias=-1.0)
    options = TransducerSearchOptions(method, beam_size=3, max_symbols_per_frame=2, **extra)
    fused = "lm_weight" in extra
    return TransducerSearch(
        predictor, joiner, options, lm=lm if fused else None, word_map=word_map if fused else None
    ), word_map, lm


@pytest.mark.parametrize("kind", ["lstm", "stateless"])
@pytest.mark.parametrize("method,extra", SEARCHES)
def test_streaming_in_random_chunks_equals_offline(tmp_path, method, extra, kind):
    search, _, _ = build(tmp_path, method, extra, kind)
    lens = [14, 9, 1]
    enc = frames(3, 14, seed=21)
    offline = search.decode(enc, lens)
    rng = random.Random(f"{method}{extra}{kind}")
    states = [search.init_state() for _ in lens]
    done = [0] * 3
    while done != lens:
        take = [min(rng.choice([0, 1, 1, 2, 3, 5]), n - d) for n, d in zip(lens, done)]
        chunk = torch.zeros(3, max(max(take), 1), ENC_DIM)
        for b, (d, n) in enumerate(zip(done, take)):
            chunk[b, :n] = enc[b, d : d + n]
        search.advance(chunk, take, states)
        done = [d + n for d, n in zip(done, take)]
        for state, d in zip(states, done):
            assert state.num_frames == d
            partial = search.best(state)
            assert all(f < d for f in partial.frames)
    for state, hyp in zip(states, offline):
        assert_same(search.finish(state), hyp)
    assert any(h.tokens for state in states for h in search.nbest(state))


@pytest.mark.parametrize("method,extra", SEARCHES)
def test_batched_streams_equal_one_at_a_time(tmp_path, method, extra):
    search, _, _ = build(tmp_path, method, extra, seed=22)
    lens = [5, 12, 0, 9]
    enc = frames(4, 12, seed=23)
    batched = search.decode(enc, lens)
    for b, n in enumerate(lens):
        assert_same(batched[b], search.decode(enc[b : b + 1, :n], [n])[0])
    empty = batched[2]  # no frames: the empty hypothesis (with the LM's p(</s> | <s>) under fusion)
    assert (empty.tokens, empty.am_score) == ([], 0.0)


def test_states_move_between_inference_mode_and_no_grad(tmp_path):
    search, _, _ = build(tmp_path, "modified_beam", {"lm_weight": 0.6, "word_bonus": 0.5})
    enc = frames(2, 8, seed=30)
    expected = search.decode(enc, [8, 5])
    with torch.inference_mode():
        states = [search.init_state(), search.init_state()]
        search.advance(enc[:, :3], [3, 3], states)
    search.advance(enc[:, 3:], [5, 2], states)
    for state, hyp in zip(states, expected):
        assert_same(search.finish(state), hyp)


def test_frames_are_counted_from_the_start_frame():
    predictor, joiner = make_model(5, seed=24, blank_bias=-1.0)
    search = TransducerSearch(predictor, joiner, TransducerSearchOptions("modified_beam", beam_size=2))
    enc = frames(1, 6, seed=25)
    plain, shifted = search.init_state(), search.init_state(start_frame=100)
    search.advance(enc.expand(2, -1, -1), [6, 6], [plain, shifted])
    a, b = search.finish(plain), search.finish(shifted)
    assert a.tokens == b.tokens and a.tokens
    assert b.frames == [f + 100 for f in a.frames]
    assert shifted.next_frame == 106 and b.last_emission_frame == a.last_emission_frame + 100


# -- LM fusion -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method,extra", SEARCHES[3:])
def test_fused_scores_are_acoustic_plus_word_lm_plus_bonus(tmp_path, method, extra):
    tokenizer, word_map, lm = char_setup(tmp_path)
    positions, vocab = 14, tokenizer.vocab_size
    predictor, joiner = PositionPredictor(positions), TableJoiner(positions, vocab)
    options = TransducerSearchOptions(method, beam_size=3, max_symbols_per_frame=2, **extra)
    search = TransducerSearch(predictor, joiner, options, lm=lm, word_map=word_map)
    enc = scripted(tokenizer, [{ch: 4.0} for ch in "the▁cat▁sat"], positions)
    enc += torch.randn(enc.shape, generator=torch.Generator().manual_seed(27)) * 2  # "the cat sat", noisily
    state = search.init_state()
    search.advance(enc, [11], [state])
    nbest = search.nbest(state)
    assert nbest
    for hyp in nbest:
        words = word_map.words(hyp.tokens)
        lm_state, expected = lm.begin_state(), 0.0
        for word in words:
            value, lm_state = lm.score(lm_state, word)
            expected += value
        expected += lm.end_score(lm_state)
        assert hyp.n_words == len(words)
        assert hyp.lm_score == pytest.approx(expected, abs=1e-9)
        assert hyp.score == pytest.approx(
            hyp.am_score + extra["lm_weight"] * hyp.lm_score + extra["word_bonus"] * hyp.n_words, abs=1e-9
        )
    assert min(h.n_words for h in nbest) == 3


@pytest.mark.parametrize("method", METHODS)
def test_lm_weight_zero_equals_no_lm(tmp_path, method):
    tokenizer, word_map, lm = char_setup(tmp_path)
    predictor, joiner = make_model(tokenizer.vocab_size, seed=28, blank_bias=0.0)
    options = TransducerSearchOptions(method, beam_size=3, lm_weight=0.0)
    enc = frames(2, 10, seed=29)
    plain = TransducerSearch(predictor, joiner, options).decode(enc, [10, 8])
    zero = TransducerSearch(predictor, joiner, options, lm=lm, word_map=word_map).decode(enc, [10, 8])
    for a, b in zip(plain, zero):
        assert (a.tokens, a.frames) == (b.tokens, b.frames)
        assert a.score == pytest.approx(b.score, abs=1e-12)


def scripted(tokenizer, script, positions):
    """Encoder frames for PositionPredictor + TableJoiner: at frame t, position t has the logits of ``script[t]``
    (a dict label -> logit, others -8) and every other position a sure blank, so label t is said at frame t."""
    ids = {s: i for i, s in enumerate(tokenizer.symbols)}
    out = torch.full((1, len(script), positions, tokenizer.vocab_size), -8.0)
    out[..., BLANK] = 8.0
    for t, frame in enumerate(script):
        out[0, t, t, BLANK] = -8.0
        for label, logit in frame.items():
            out[0, t, t, ids[label]] = logit
    return out.flatten(-2)


@pytest.mark.parametrize("method", ["modified_beam", "beam"])
def test_lm_fusion_picks_the_lm_word_where_the_acoustics_are_ambiguous(tmp_path, method):
    tokenizer, word_map, lm = char_setup(tmp_path)  # the LM knows "cat", never saw "cut"
    predictor, joiner = PositionPredictor(9), TableJoiner(9, tokenizer.vocab_size)
    # c, then "u" slightly over "a", then t, a space, s a t
    script = [{"c": 5.0}, {"u": 2.2, "a": 2.0}, {"t": 5.0}, {"▁": 5.0}, {"s": 5.0}, {"a": 5.0}, {"t": 5.0}]
    enc = scripted(tokenizer, script, 9)
    options = {"beam_size": 4, "max_symbols_per_frame": 1}
    plain = TransducerSearch(predictor, joiner, TransducerSearchOptions(method, **options)).decode(enc, [7])[0]
    fused_options = TransducerSearchOptions(method, lm_weight=1.0, **options)
    fused = TransducerSearch(predictor, joiner, fused_options, lm=lm, word_map=word_map).decode(enc, [7])[0]
    assert tokenizer.decode(plain.tokens) == "cut sat"
    assert tokenizer.decode(fused.tokens) == "cat sat"
    assert fused.frames == plain.frames == list(range(7))
    # an LM given as a token-level scorer over the labels (end of sentence past them) does the same
    scorer = NGramTokenScorer(lm, word_map, eos=tokenizer.vocab_size)
    as_scorer = TransducerSearch(predictor, joiner, fused_options, lm=scorer, word_map=word_map).decode(enc, [7])[0]
    assert_same(as_scorer, fused)


# -- errors --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "tsd"},
        {"beam_size": 0},
        {"beam_size": True},
        {"max_symbols_per_frame": 0},
        {"merge": "sum"},
        {"lm_weight": float("nan")},
        {"word_bonus": "1"},
    ],
)
def test_bad_options_are_one_line_config_errors(kwargs):
    with pytest.raises(ConfigError) as err:
        TransducerSearchOptions(**kwargs)
    assert "\n" not in str(err.value)


def test_bad_inputs(tmp_path):
    tokenizer, _, lm = char_setup(tmp_path)
    predictor, joiner = make_model(tokenizer.vocab_size)
    with pytest.raises(ConfigError, match="word_map"):
        TransducerSearch(predictor, joiner, TransducerSearchOptions(lm_weight=0.5), lm=lm)
    with pytest.raises(ConfigError, match="word_map"):
        TransducerSearch(predictor, joiner, TransducerSearchOptions(word_bonus=1.0))
    with pytest.raises(ConfigError, match="covers"):
        TransducerSearch(predictor, joiner, word_map=TokenWordMap.from_pieces(["<blank>", "a"]))
    search = TransducerSearch(predictor, joiner, TransducerSearchOptions("modified_beam", beam_size=2))
    state = search.init_state()
    with pytest.raises(ValueError, match="outside"):
        search.advance(frames(1, 3), [4], [state])
    with pytest.raises(ValueError, match="width"):
        search.advance(torch.zeros(1, 3, ENC_DIM + 1), [3], [state])
    with pytest.raises(ValueError, match="states"):
        search.advance(frames(1, 3), [3], [state, state])
    other = TransducerSearch(predictor, joiner, TransducerSearchOptions("modified_beam", beam_size=3))
    with pytest.raises(ValueError, match="init_state"):
        other.advance(frames(1, 3), [3], [state])
    assert state.num_frames == 0
