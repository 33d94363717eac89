"""CTC greedy, prefix beam search (+ LM fusion), prefix scorer and forced alignment, against brute force."""

import itertools
import math
import time

import pytest
import torch
import torch.nn.functional as F

from seqspeech.decoding.ctc import (
    CTCPrefixScorer,
    TokenSpan,
    TokenWordMap,
    ctc_forced_align,
    ctc_greedy,
    ctc_greedy_frames,
    ctc_prefix_beam_search,
    token_spans,
    word_spans,
)
from seqspeech.decoding.interfaces import ScoredSum, Scorer
from seqspeech.decoding.lm import NGramTokenScorer, WordLMScorer, train_ngram
from seqspeech.decoding.search import Step, beam_search
from seqspeech.errors import ConfigError, DataError
from seqspeech.text.tokenizers.char import CharTokenizer

BLANK, EOS = 0, 2


def _ctc_logprob(lp: torch.Tensor, tokens: list[int]) -> float:
    """log p(tokens | x) of one utterance lp (T, V), from torch's CTC loss."""
    if not tokens:
        return float(lp[:, BLANK].sum())
    loss = F.ctc_loss(
        lp[:, None], torch.tensor([tokens]), torch.tensor([lp.shape[0]]), torch.tensor([len(tokens)]),
        blank=BLANK, reduction="sum",
    )
    return -float(loss)


def _collapse(path) -> list[int]:
    out, prev = [], None
    for p in path:
        if p != prev and p != BLANK:
            out.append(p)
        prev = p
    return out


def _peaked(gen: torch.Generator, batch: int, frames: int, vocab: int, p_min: float) -> torch.Tensor:
    """Random log-probs whose best label per frame holds at least p_min of the mass (as trained CTC emits)."""
    top = torch.randint(0, vocab, (batch, frames), generator=gen)
    p_top = p_min + (1 - p_min) * torch.rand(batch, frames, generator=gen)
    rest = torch.rand(batch, frames, vocab, generator=gen).scatter(2, top[..., None], 0.0)
    rest = rest / rest.sum(-1, keepdim=True) * (1 - p_top)[..., None]
    return rest.scatter(2, top[..., None], p_top[..., None]).log()


def _frames_for(labels: list[int], vocab: int, p: float = 0.9) -> torch.Tensor:
    """(T, V) log-probs with label labels[t] at probability p on frame t, the rest spread evenly."""
    lp = torch.full((len(labels), vocab), (1 - p) / (vocab - 1))
    lp[torch.arange(len(labels)), torch.tensor(labels)] = p
    return lp.log()


# -- greedy --------------------------------------------------------------------------------------------------


def test_greedy_collapses_repeats_and_drops_blanks_within_length():
    labels = [3, 3, 0, 3, 4, 4, 0, 0, 5, 5]
    lp = torch.stack([_frames_for(labels, 6), _frames_for([4] * 10, 6)])
    assert ctc_greedy(lp, [10, 3]) == [[3, 3, 4, 5], [4]]
    assert ctc_greedy(lp, torch.tensor([4, 0])) == [[3, 3], []]
    assert ctc_greedy_frames(lp, [10, 3]) == [[(3, 0), (3, 3), (4, 4), (5, 8)], [(4, 0)]]


# -- prefix beam search --------------------------------------------------------------------------------------


def test_beam_one_equals_greedy_on_peaked_random_inputs():
    for seed in range(150):
        gen = torch.Generator().manual_seed(seed)
        lp = _peaked(gen, 2, 30, 7, p_min=0.75)
        lengths = [30, int(torch.randint(1, 30, (1,), generator=gen))]
        hyps = ctc_prefix_beam_search(lp, lengths, beam_size=1)
        assert [h[0].tokens for h in hyps] == ctc_greedy(lp, lengths), seed


def test_wide_beam_scores_are_exact_ctc_probabilities_and_find_the_best_labelling():
    torch.manual_seed(0)
    frames, vocab = 5, 4
    lp = torch.randn(1, frames, vocab, dtype=torch.float64).log_softmax(-1)
    hyps = ctc_prefix_beam_search(lp, [frames], beam_size=10_000, prune_logp=None)[0]
    for h in hyps:
        assert h.am_score == pytest.approx(_ctc_logprob(lp[0], h.tokens), abs=1e-9)
    # brute force: the most probable labelling over every path
    totals: dict[tuple, float] = {}
    for path in itertools.product(range(vocab), repeat=frames):
        key = tuple(_collapse(path))
        totals[key] = totals.get(key, 0.0) + math.exp(float(lp[0, torch.arange(frames), list(path)].sum()))
    assert len(hyps) == len(totals)
    best = max(totals, key=totals.get)
    assert tuple(hyps[0].tokens) == best
    assert hyps[0].score >= hyps[-1].score


def test_beam_search_batch_lengths_and_nbest_order():
    gen = torch.Generator().manual_seed(3)
    lp = _peaked(gen, 3, 20, 6, 0.6)
    out = ctc_prefix_beam_search(lp, [20, 11, 1], beam_size=4)
    assert len(out) == 3
    for b, hyps in enumerate(out):
        assert 1 <= len(hyps) <= 4
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == len(hyps)
    only = ctc_prefix_beam_search(lp[1:2, :11], [11], beam_size=4)[0]
    assert [h.tokens for h in only] == [h.tokens for h in out[1]]


def test_beam_search_is_fast_enough_for_real_time():
    """10 s of audio at 25 frames/s, 40 labels, beam 8, in well under 10 s on one core."""
    gen = torch.Generator().manual_seed(0)
    lp = _peaked(gen, 1, 250, 40, 0.5)
    start = time.perf_counter()
    ctc_prefix_beam_search(lp, [250], beam_size=8)
    assert time.perf_counter() - start < 3.0


# -- LM fusion -----------------------------------------------------------------------------------------------

CORPUS = ["the cat sat", "a cat sat on the mat", "the cat is here", "my cat sat", "the dog sat", "a cat"]


def _tokenizer() -> CharTokenizer:
    return CharTokenizer.train(CORPUS + ["k"])


def _ambiguous(tok: CharTokenizer, text: str, confusions: dict[int, tuple[str, float]]) -> torch.Tensor:
    """Frames spelling `text` (each character then a blank); at character position i, confusions[i] = (other
    character, probability) takes that much mass from the true one — more than half makes greedy wrong."""
    vocab = tok.vocab_size
    rows = []
    for i, ch in enumerate(text.replace(" ", "\u2581")):
        row = torch.full((vocab,), 0.02 / (vocab - 1))
        row[tok.encode(ch)[0]] = 0.98
        if i in confusions:
            other, p = confusions[i]
            row[tok.encode(other)[0]] = p
            row[tok.encode(ch)[0]] = 0.98 - p
        rows.append(row)
        blank = torch.full((vocab,), 0.02 / (vocab - 1))
        blank[BLANK] = 0.98
        rows.append(blank)
    return torch.stack(rows).log()[None]


def test_lm_fusion_fixes_an_acoustically_ambiguous_word(tmp_path):
    tok = _tokenizer()
    word_map = TokenWordMap.from_tokenizer(tok)
    lp = _ambiguous(tok, "the cat sat", {4: ("k", 0.55)})  # "c" vs "k": acoustics slightly prefer "k"
    greedy = tok.decode(ctc_greedy(lp, [lp.shape[1]])[0])
    assert greedy == "the kat sat"
    plain = ctc_prefix_beam_search(lp, [lp.shape[1]], beam_size=8)[0]
    assert tok.decode(plain[0].tokens) == "the kat sat"
    lm = WordLMScorer.from_arpa(train_ngram(CORPUS, 3).write_arpa(tmp_path / "lm.arpa"))
    fused = ctc_prefix_beam_search(lp, [lp.shape[1]], beam_size=8, lm=lm, word_map=word_map, lm_weight=0.5)[0]
    best = fused[0]
    assert tok.decode(best.tokens) == "the cat sat"
    assert best.n_words == 3
    # the LM overrode a better acoustic score, and the fused scores add up as documented
    kat = next(h for h in fused if tok.decode(h.tokens) == "the kat sat")
    assert kat.am_score > best.am_score and kat.lm_score < best.lm_score
    assert best.score == pytest.approx(best.am_score + 0.5 * best.lm_score)
    # lm_score is the sentence's LM log-prob, </s> included
    state, expected = lm.begin_state(), 0.0
    for word in ("the", "cat", "sat"):
        value, state = lm.score(state, word)
        expected += value
    assert best.lm_score == pytest.approx(expected + lm.end_score(state), abs=1e-6)


def test_word_bonus_counts_words():
    tok = _tokenizer()
    lp = _ambiguous(tok, "a cat", {})
    word_map = TokenWordMap.from_tokenizer(tok)
    plain = ctc_prefix_beam_search(lp, [lp.shape[1]], beam_size=4, word_map=word_map)[0][0]
    bonus = ctc_prefix_beam_search(lp, [lp.shape[1]], beam_size=4, word_map=word_map, word_bonus=1.5)[0][0]
    assert plain.tokens == bonus.tokens and bonus.n_words == 2
    assert plain.score == plain.am_score and bonus.score == pytest.approx(bonus.am_score + 3.0)
    with pytest.raises(ConfigError, match="word_map"):
        ctc_prefix_beam_search(lp, [lp.shape[1]], word_bonus=1.0)


def test_token_word_map_for_char_and_bpe_tokenizers():
    tok = _tokenizer()
    word_map = TokenWordMap.from_tokenizer(tok)
    assert word_map.words(tok.encode("the cat  sat")) == ["the", "cat", "sat"]
    assert word_map.words([BLANK, EOS] + tok.encode(" a ")) == ["a"]
    from seqspeech.text.tokenizers.bpe import BPETokenizer

    bpe = BPETokenizer.train(CORPUS * 4, vocab_size=30)
    bpe_map = TokenWordMap.from_tokenizer(bpe)
    assert bpe_map.vocab_size == bpe.vocab_size
    assert bpe_map.words(bpe.encode("the cat sat on the mat")) == "the cat sat on the mat".split()


def test_lm_fusion_through_a_token_scorer_matches_the_word_lm(tmp_path):
    """A WordLMScorer is wrapped in NGramTokenScorer; passing one built by hand gives the same n-best."""
    tok = _tokenizer()
    word_map = TokenWordMap.from_tokenizer(tok)
    lm = WordLMScorer.from_arpa(train_ngram(CORPUS, 3).write_arpa(tmp_path / "lm.arpa"), backend="python")
    gen = torch.Generator().manual_seed(0)
    ambiguous = _ambiguous(tok, "the cat sat", {4: ("k", 0.55)})
    lp = torch.cat([ambiguous, _peaked(gen, 1, 22, tok.vocab_size, 0.5)])
    options = dict(beam_size=6, lm_weight=0.7, word_bonus=0.3)
    by_words = ctc_prefix_beam_search(lp, [22, 17], lm=lm, word_map=word_map, **options)
    scorer = NGramTokenScorer(lm, word_map, eos=tok.vocab_size)  # the end column past the CTC labels
    assert isinstance(scorer, Scorer)
    by_tokens = ctc_prefix_beam_search(lp, [22, 17], lm=scorer, word_map=word_map, **options)
    for a, b in zip(by_words, by_tokens):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        assert [h.n_words for h in a] == [h.n_words for h in b]
        assert [h.lm_score for h in a] == pytest.approx([h.lm_score for h in b], abs=1e-12)
    assert tok.decode(by_tokens[0][0].tokens) == "the cat sat"
    # a Scorer needs no word map (without a word bonus); its end id comes from .eos or lm_eos
    no_map = ctc_prefix_beam_search(lp, [22, 17], lm=scorer, lm_eos=tok.vocab_size, beam_size=6,
                                    lm_weight=0.7)
    with_map = ctc_prefix_beam_search(lp, [22, 17], lm=lm, word_map=word_map, beam_size=6, lm_weight=0.7)
    assert [h.tokens for h in no_map[0]] == [h.tokens for h in with_map[0]]
    assert all(h.n_words == 0 for h in no_map[0])
    assert no_map[0][0].lm_score == pytest.approx(with_map[0][0].lm_score, abs=1e-12)
    endless = NGramTokenScorer(lm, word_map, eos=None)
    with pytest.raises(ConfigError, match="lm_eos"):
        ctc_prefix_beam_search(lp, [22, 17], lm=endless)
    with pytest.raises(ConfigError, match="lm_eos"):
        ctc_prefix_beam_search(lp, [22, 17], lm=endless, lm_eos=tok.vocab_size)
    with pytest.raises(ConfigError, match="word_map"):
        ctc_prefix_beam_search(lp, [22, 17], lm=lm)


def _spelling_decoder(tok: CharTokenizer, text: str, confusions: dict[int, tuple[str, float]]):
    """A toy attention decoder (a Scorer): at step i it puts 0.9 on the i-th character of `text` (then eos),
    except where confusions[i] = (other character, probability) moves that much of it elsewhere."""
    vocab = tok.vocab_size
    ids = tok.encode(text) + [EOS]
    table = torch.full((len(ids) + 1, vocab), 0.1 / (vocab - 1))
    table[torch.arange(len(ids)), torch.tensor(ids)] = 0.9
    table[len(ids), EOS] = 0.9
    for i, (other, p) in confusions.items():
        table[i, tok.encode(other)[0]] = p
        table[i, ids[i]] = 0.9 - p
    table = table.log()

    class Decoder:
        def score(self, tokens, state):
            return table[min(tokens.shape[1] - 1, len(ids))].expand(tokens.shape[0], vocab).clone(), state

        def select_state(self, state, indices):
            return state

    return Decoder()


def test_beam_search_with_the_ngram_token_scorer_prefers_the_lm_word():
    tok = _tokenizer()
    word_map = TokenWordMap.from_tokenizer(tok)
    lm = WordLMScorer(train_ngram(CORPUS, 3))
    decoder = _spelling_decoder(tok, "the cat sat", {4: ("k", 0.5)})  # "c" 0.4 vs "k" 0.5
    prompt = torch.tensor([[EOS]])
    plain = beam_search(Step(primary=decoder), prompt, None, beam_size=4, eot=EOS, max_new_tokens=15)[0]
    assert tok.decode(max(plain, key=lambda h: h.sum_logprob).tokens) == "the kat sat"
    scorer = NGramTokenScorer(lm, word_map, eos=EOS)
    step = Step(primary=decoder, aux=ScoredSum([(0.5, scorer)]))
    fused = beam_search(step, prompt, None, beam_size=4, eot=EOS, max_new_tokens=15,
                        aux_state=(scorer.init_state(1),))[0]
    best = max(fused, key=lambda h: h.sum_logprob)
    assert tok.decode(best.tokens) == "the cat sat"
    # the fused score is the decoder's log-prob plus half the sentence's LM log-prob, </s> included
    decoder_lp = next(h.sum_logprob for h in plain if h.tokens == best.tokens)
    state, lm_total = lm.begin_state(), 0.0
    for word in ("the", "cat", "sat"):
        value, state = lm.score(state, word)
        lm_total += value
    lm_total += lm.end_score(state)
    assert best.sum_logprob == pytest.approx(decoder_lp + 0.5 * lm_total, abs=1e-4)


def test_joint_ctc_and_ngram_scorers_fuse_in_one_beam_search():
    """Uniform decoder, CTC prefix scorer and n-gram LM in one ScoredSum: the LM fixes the acoustic error."""
    tok = _tokenizer()
    word_map = TokenWordMap.from_tokenizer(tok)
    lm = WordLMScorer(train_ngram(CORPUS, 3))
    lp = _ambiguous(tok, "the cat sat", {4: ("k", 0.55)}).double()
    vocab = tok.vocab_size

    class Uniform:
        def score(self, tokens, state):
            return torch.zeros(tokens.shape[0], vocab, dtype=torch.float64), state

        def select_state(self, state, indices):
            return state

    def decode(lm_weight: float) -> str:
        ctc = CTCPrefixScorer(lp, [lp.shape[1]], blank=BLANK, eos=EOS)
        ngram = NGramTokenScorer(lm, word_map, eos=EOS)
        step = Step(primary=Uniform(), aux=ScoredSum([(1.0, ctc), (lm_weight, ngram)]))
        (found,) = beam_search(step, torch.tensor([[EOS]]), None, beam_size=4, eot=EOS, max_new_tokens=14,
                               aux_state=(ctc.init_state(), ngram.init_state(1)))
        return tok.decode(max(found, key=lambda h: h.sum_logprob).tokens)

    assert decode(0.0) == "the kat sat"
    assert decode(0.5) == "the cat sat"


# -- CTC prefix scorer ---------------------------------------------------------------------------------------


def _run_path(scorer: CTCPrefixScorer, state, path: list[int], row: int = 0) -> tuple[float, list[float]]:
    """Feed `path` then eos through the scorer for one row; return (sum of differences, each step's score)."""
    tokens = torch.tensor([[EOS]])
    steps = []
    for token in path + [EOS]:
        scores, state = scorer.score(tokens, state)
        steps.append(float(scores[0, token]))
        tokens = torch.cat([tokens, torch.tensor([[token]])], dim=1)
        state = scorer.select_state(state, torch.tensor([0]))
    return sum(steps), steps


@pytest.mark.parametrize("path", [[3], [3, 3], [3, 4, 3], [4, 4, 4], [1, 3, 4, 4]])
def test_prefix_scores_telescope_to_the_ctc_loss(path):
    torch.manual_seed(len(path))
    frames, vocab = 7, 5
    lp = torch.randn(2, frames, vocab, dtype=torch.float64).log_softmax(-1)
    scorer = CTCPrefixScorer(lp, torch.tensor([frames, frames - 2]), blank=BLANK, eos=EOS)
    assert isinstance(scorer, Scorer)
    for b, length in ((0, frames), (1, frames - 2)):
        state = scorer.select_state(scorer.init_state(), torch.tensor([b]))
        total, steps = _run_path(scorer, state, path)
        assert total == pytest.approx(_ctc_logprob(lp[b, :length], path), abs=1e-9)
        # each prefix score is log psi: the total probability of every labelling that starts with the prefix
        assert math.exp(steps[0]) <= 1.0 + 1e-12


def test_prefix_scorer_full_vocab_matches_brute_force_prefix_probability():
    torch.manual_seed(1)
    frames, vocab = 5, 4
    lp = torch.randn(1, frames, vocab, dtype=torch.float64).log_softmax(-1)
    scorer = CTCPrefixScorer(lp, [frames], blank=BLANK, eos=EOS)
    scores, state = scorer.score(torch.tensor([[EOS]]), scorer.init_state())
    scores2, _ = scorer.score(torch.tensor([[EOS, 3]]), state)
    psi: dict[tuple, float] = {}
    for path in itertools.product(range(vocab), repeat=frames):
        labels = tuple(_collapse(path))
        p = math.exp(float(lp[0, torch.arange(frames), list(path)].sum()))
        for k in range(1, len(labels) + 1):
            psi[labels[:k]] = psi.get(labels[:k], 0.0) + p
    for c in (1, 3):
        assert float(scores[0, c]) == pytest.approx(math.log(psi[(c,)]), abs=1e-9)
        assert float(scores2[0, c]) == pytest.approx(math.log(psi[(3, c)]) - math.log(psi[(3,)]), abs=1e-9)
    assert float(scores[0, BLANK]) == float("-inf")
    assert float(scores[0, EOS]) == pytest.approx(float(lp[0, :, BLANK].sum()), abs=1e-9)


def test_prefix_scorer_select_state_reorders_rows_and_ends_at_eos():
    torch.manual_seed(2)
    lp = torch.randn(2, 6, 5, dtype=torch.float64).log_softmax(-1)
    scorer = CTCPrefixScorer(lp, [6, 4], blank=BLANK, eos=EOS)
    state = scorer.select_state(scorer.init_state(), torch.tensor([0, 1, 1]))
    scores, state = scorer.score(torch.tensor([[EOS]] * 3), state)
    assert torch.equal(scores[1], scores[2]) and not torch.equal(scores[0], scores[1])
    state = scorer.select_state(state, torch.tensor([2, 0, 1]))
    scores, state = scorer.score(torch.tensor([[EOS, 3], [EOS, 4], [EOS, EOS]]), state)
    assert torch.all(scores[2] == 0)  # finished row
    single = scorer.select_state(scorer.init_state(), torch.tensor([1]))
    _, single = scorer.score(torch.tensor([[EOS]]), single)
    ref, _ = scorer.score(torch.tensor([[EOS, 3]]), single)
    assert torch.allclose(scores[0], ref[0])
    with pytest.raises(ValueError, match="one token per call"):
        scorer.score(torch.tensor([[EOS, 3, 3, 3]] * 3), state)


def test_joint_search_with_a_uniform_decoder_recovers_the_ctc_transcript():
    """With an uninformative attention decoder the CTC prefix scorer alone steers the search to the labels."""
    vocab = 7
    labels = [0, 3, 3, 0, 4, 0, 4, 5, 5, 0, 6, 0]
    lp = torch.stack([_frames_for(labels, vocab, 0.7), _frames_for([0, 5, 5, 0, 0, 3] * 2, vocab, 0.7)])
    scorer = CTCPrefixScorer(lp, [12, 6], blank=BLANK, eos=EOS)

    class Uniform:
        def score(self, tokens, state):
            return torch.zeros(tokens.shape[0], vocab, dtype=torch.float64), state

        def select_state(self, state, indices):
            return state

    step = Step(primary=Uniform(), aux=ScoredSum([(1.0, scorer)]))
    found = beam_search(
        step, torch.tensor([[EOS], [EOS]]), None, beam_size=4, eot=EOS, max_new_tokens=8,
        aux_state=(scorer.init_state(),),
    )
    best = [max(cands, key=lambda h: h.sum_logprob).tokens for cands in found]
    assert best == [[3, 4, 4, 5, 6], [5, 3]]


# -- forced alignment ----------------------------------------------------------------------------------------


def test_forced_alignment_recovers_a_planted_path():
    labels = [0, 0, 3, 3, 0, 3, 4, 4, 4, 0, 5, 0]
    lp = _frames_for(labels, 6, p=0.8)
    frame_labels, score = ctc_forced_align(lp, [3, 3, 4, 5])
    assert frame_labels.tolist() == labels
    assert score == pytest.approx(float(lp[torch.arange(12), torch.tensor(labels)].sum()), abs=1e-5)
    spans = token_spans(frame_labels, [3, 3, 4, 5], log_probs=lp)
    expected = [(3, 2, 4), (3, 5, 6), (4, 6, 9), (5, 10, 11)]
    assert [(s.token, s.start_frame, s.end_frame) for s in spans] == expected
    assert all(s.score == pytest.approx(0.8) for s in spans)


@pytest.mark.parametrize("seed", range(6))
def test_forced_alignment_is_the_best_valid_path_by_brute_force(seed):
    gen = torch.Generator().manual_seed(seed)
    frames, vocab = 5, 3
    tokens = [[1], [1, 2], [2, 2], [1, 1, 2]][seed % 4]
    lp = torch.randn(frames, vocab, generator=gen).log_softmax(-1)
    best_score, best_paths = float("-inf"), []
    for path in itertools.product(range(vocab), repeat=frames):
        if _collapse(path) != tokens:
            continue
        s = float(lp[torch.arange(frames), list(path)].sum())
        if s > best_score + 1e-6:
            best_score, best_paths = s, [list(path)]
        elif abs(s - best_score) <= 1e-6:
            best_paths.append(list(path))
    frame_labels, score = ctc_forced_align(lp, tokens)
    assert score == pytest.approx(best_score, abs=1e-5)
    assert frame_labels.tolist() in best_paths


def test_forced_alignment_errors():
    lp = torch.randn(3, 5).log_softmax(-1)
    with pytest.raises(DataError, match="at least 4 frames"):
        ctc_forced_align(lp, [3, 3, 4])  # the repeat needs a blank between: 4 frames
    with pytest.raises(DataError, match="at least 4 frames"):
        ctc_forced_align(lp, [1, 2, 3, 4])
    frame_labels, _ = ctc_forced_align(lp, [3, 4, 3])  # exactly enough
    assert frame_labels.tolist() == [3, 4, 3]
    with pytest.raises(ValueError, match="non-blank"):
        ctc_forced_align(lp, [0, 3])
    frame_labels, score = ctc_forced_align(lp, [])
    assert frame_labels.tolist() == [0, 0, 0] and score == pytest.approx(float(lp[:, 0].sum()))


def test_word_spans_in_seconds():
    tok = _tokenizer()
    text = "a cat"
    ids = tok.encode(text)
    lp = _ambiguous(tok, text, {})[0]  # char, blank, char, blank, ...
    frame_labels, _ = ctc_forced_align(lp, ids)
    spans = token_spans(frame_labels, ids, log_probs=lp)
    words = word_spans(spans, tok, frame_seconds=0.04)
    assert [w.word for w in words] == ["a", "cat"]
    assert words[0].start_s == pytest.approx(0.0) and words[0].end_s == pytest.approx(0.04)
    assert words[1].start_s == pytest.approx(4 * 0.04) and words[1].end_s == pytest.approx(9 * 0.04)
    assert all(w.score == pytest.approx(0.98, abs=1e-5) for w in words)
    spans_bpe_like = [TokenSpan(3, 0, 2, 0.5), TokenSpan(4, 2, 4, 1.0)]
    bpe_map = TokenWordMap.from_pieces(["<blank>", "<unk>", "<sos/eos>", "\u2581ca", "t"])
    (only,) = word_spans(spans_bpe_like, bpe_map, 0.1)
    assert (only.word, only.start_s, only.end_s, only.score) == ("cat", 0.0, pytest.approx(0.4), 0.75)
