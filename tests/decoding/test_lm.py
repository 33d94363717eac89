"""Word n-gram LM: Kneser-Ney estimation normalises, ARPA round-trips, KenLM and our reader agree; the
token-level scorer matches the word scorer."""

import math

import pytest
import torch

from seqspeech.decoding import lm as lm_module
from seqspeech.decoding.ctc import TokenWordMap
from seqspeech.decoding.interfaces import Scorer
from seqspeech.decoding.lm import (
    EOS,
    UNK,
    NGramLM,
    NGramTokenScorer,
    WordLMScorer,
    load_arpa,
    train_arpa,
    train_ngram,
)
from seqspeech.errors import ConfigError, ModelLoadError
from seqspeech.text.tokenizers.bpe import BPETokenizer
from seqspeech.text.tokenizers.char import CharTokenizer

TEXTS = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog",
    "the cat ate the rat",
    "a rat sat",
    "the cat sat",
    "the mat is red",
    "a dog ate a cat",
]


def _contexts(model: NGramLM) -> set[tuple[str, ...]]:
    """Every listed context (n-grams shorter than the order, not ending in </s>), plus unseen ones."""
    out = {(), ("zebra",), ("the", "zebra"), ("zebra", "the")}
    out |= {g for g in model.logprobs if len(g) < model.order and g[-1] != EOS}
    return {c[len(c) - (model.order - 1) :] if model.order > 1 else () for c in out}


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_probabilities_sum_to_one_in_every_context(order):
    model = train_ngram(TEXTS, order)
    vocab = sorted(model.vocab - {"<s>"})
    assert EOS in vocab and UNK in vocab
    for context in _contexts(model):
        total = sum(10 ** model.score_word(context, w)[0] for w in vocab)
        assert total == pytest.approx(1.0, abs=1e-9), context


def test_kneser_ney_prefers_seen_continuations_and_uses_continuation_counts():
    model = train_ngram(TEXTS, 3)
    seen, _ = model.score_word(("the",), "cat")
    unseen, _ = model.score_word(("the",), "and")
    assert seen > unseen
    # "sat" follows three distinct words (cat, dog, rat), "red" only one (is): continuation counts rank them
    assert model.logprobs[("sat",)] > model.logprobs[("red",)]
    # the interpolated model never gives zero probability to a vocabulary word
    assert all(math.isfinite(model.score_word(("a", "rat"), w)[0]) for w in model.vocab - {"<s>"})


def test_min_count_maps_rare_words_to_unk_and_stays_normalised():
    model = train_ngram(TEXTS, 2, min_count=2)
    assert "red" not in model.vocab and "cat" in model.vocab
    vocab = model.vocab - {"<s>"}
    assert sum(10 ** model.score_word(("the",), w)[0] for w in vocab) == pytest.approx(1.0, abs=1e-9)
    assert model.score_word(("the",), "red")[0] == model.score_word(("the",), UNK)[0]


def test_arpa_round_trip(tmp_path):
    model = train_ngram(TEXTS, 3)
    path = model.write_arpa(tmp_path / "lm.arpa")
    text = path.read_text()
    assert text.lstrip().startswith("\\data\\") and text.rstrip().endswith("\\end\\")
    assert "ngram 3=" in text and "\\3-grams:" in text
    assert all(f"\t{w}" in text for w in ("<s>", "</s>", "<unk>"))
    back = load_arpa(path)
    assert back.order == 3 and back.counts() == model.counts()
    for sentence in ["the cat sat on the log", "a zebra ate", "dog dog dog"]:
        words = sentence.split()
        assert back.score_sentence(words) == pytest.approx(model.score_sentence(words), abs=1e-5)


def test_kenlm_and_python_reader_agree(tmp_path):
    pytest.importorskip("kenlm")
    path = train_ngram(TEXTS, 3).write_arpa(tmp_path / "lm.arpa")
    fast = WordLMScorer.from_arpa(path)
    slow = WordLMScorer.from_arpa(path, backend="python")
    assert fast.uses_kenlm and not slow.uses_kenlm
    for sentence in ["the cat sat on the log", "a zebra sat on the mat", "dog dog dog", "mat the"]:
        s_fast, s_slow = fast.begin_state(), slow.begin_state()
        for word in sentence.split():
            a, s_fast = fast.score(s_fast, word)
            b, s_slow = slow.score(s_slow, word)
            assert a == pytest.approx(b, abs=1e-4), (sentence, word)
        assert fast.end_score(s_fast) == pytest.approx(slow.end_score(s_slow), abs=1e-4)
    assert "cat" in fast and "cat" in slow and "zebra" not in slow


def test_word_scorer_returns_natural_logs(tmp_path):
    model = train_ngram(TEXTS, 2)
    scorer = WordLMScorer(model)
    value, state = scorer.score(scorer.begin_state(), "the")
    assert value == pytest.approx(model.score_word(("<s>",), "the")[0] * math.log(10))
    assert state == ("the",)


def test_train_arpa_without_lmplz_uses_our_estimator(tmp_path, monkeypatch):
    monkeypatch.setattr(lm_module.shutil, "which", lambda name: None)
    path = train_arpa(TEXTS, tmp_path / "lm.arpa", order=2)
    assert load_arpa(path).counts() == train_ngram(TEXTS, 2).counts()


def test_errors(tmp_path):
    with pytest.raises(ConfigError, match="empty"):
        train_ngram(["", "  "])
    with pytest.raises(ConfigError, match="order"):
        train_ngram(TEXTS, 0)
    with pytest.raises(ConfigError, match="discount"):
        train_ngram(TEXTS, discount="witten-bell")
    with pytest.raises(ModelLoadError, match="not found"):
        load_arpa(tmp_path / "missing.arpa")
    bad = tmp_path / "bad.arpa"
    bad.write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-1.0\t<s>\n-1.0\t</s>\n\\end\\\n")
    with pytest.raises(ModelLoadError, match="declares 3 1-grams"):
        load_arpa(bad)
    bad.write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0 a b c d\n\\end\\\n")
    with pytest.raises(ModelLoadError, match=r"bad.arpa:5"):
        load_arpa(bad)


# -- token-level scorer --------------------------------------------------------------------------------------

SOS_EOS = 2  # the char and BPE tokenizers' shared start/end id


def _sentence_lnp(lm: WordLMScorer, words: list[str]) -> float:
    state, total = lm.begin_state(), 0.0
    for word in words:
        value, state = lm.score(state, word)
        total += value
    return total + lm.end_score(state)


def _feed(scorer: NGramTokenScorer, ids: list[int]) -> list[torch.Tensor]:
    """One row through the scorer as beam search drives it (prompt <sos>, one token per call); each step's
    scores, the step after the last token included."""
    tokens = torch.tensor([[SOS_EOS]])
    scores, state = scorer.score(tokens, scorer.init_state(1))
    out = [scores[0]]
    for tok in ids:
        tokens = torch.cat([tokens, torch.tensor([[tok]])], dim=1)
        scores, state = scorer.score(tokens, scorer.select_state(state, torch.tensor([0])))
        out.append(scores[0])
    return out


def test_token_scorer_scores_words_at_boundaries_and_zero_elsewhere():
    lm = WordLMScorer(train_ngram(TEXTS, 3))
    tok = CharTokenizer.train(TEXTS)
    word_map = TokenWordMap.from_tokenizer(tok)
    scorer = NGramTokenScorer(lm, word_map, eos=SOS_EOS)
    assert isinstance(scorer, Scorer) and scorer.vocab_size == tok.vocab_size
    space = tok.encode("a b")[1]
    text = "the cat sat"
    steps = _feed(scorer, tok.encode(text))
    others = [i for i in range(tok.vocab_size) if i not in (space, SOS_EOS)]
    state, partial = lm.begin_state(), ""
    for step, ch in zip(steps, text + "$"):  # steps[i]: the scores after the first i characters
        assert step.dtype == torch.float64 and step.shape == (tok.vocab_size,)
        word_score, after = lm.score(state, partial) if partial else (0.0, state)
        assert float(step[space]) == word_score
        assert float(step[SOS_EOS]) == pytest.approx(word_score + lm.end_score(after), abs=1e-12)
        assert torch.all(step[others] == 0)
        if ch == " ":
            state, partial = after, ""
        else:
            partial += ch
    # summed along the sentence (then eos) the scores are the sentence's LM log-prob, </s> included
    ids = tok.encode(text) + [SOS_EOS]
    total = sum(float(step[i]) for step, i in zip(steps, ids))
    assert total == pytest.approx(_sentence_lnp(lm, text.split()), abs=1e-9)
    assert lm.score(lm.begin_state(), "the")[0] < 0  # the LM is not trivial


def test_token_scorer_eos_ends_the_row_and_unknown_words_score_as_unk():
    lm = WordLMScorer(train_ngram(TEXTS, 2))
    tok = CharTokenizer.train(TEXTS + ["z"])
    scorer = NGramTokenScorer(lm, TokenWordMap.from_tokenizer(tok))
    ids = tok.encode("a zz") + [SOS_EOS]
    steps = _feed(scorer, ids + [SOS_EOS])
    total = sum(float(step[i]) for step, i in zip(steps, ids))
    assert total == pytest.approx(_sentence_lnp(lm, ["a", UNK]), abs=1e-9)
    # eos scores the word in progress, then </s>
    a_then_zz = _sentence_lnp(lm, ["a", "zz"]) - lm.score(lm.begin_state(), "a")[0]
    assert float(steps[4][SOS_EOS]) == pytest.approx(a_then_zz, abs=1e-9)
    assert torch.all(steps[5] == 0) and torch.all(steps[6] == 0)  # after eos every token scores 0
    empty = _feed(scorer, [])[0]  # an empty sentence: eos scores </s> alone
    assert float(empty[SOS_EOS]) == pytest.approx(lm.end_score(lm.begin_state()))
    assert float(empty[tok.encode("a b")[1]]) == 0.0  # a space with no word in progress


def test_token_scorer_with_a_bpe_word_map():
    lm = WordLMScorer(train_ngram(TEXTS, 3))
    bpe = BPETokenizer.train(TEXTS * 4, vocab_size=30)
    word_map = TokenWordMap.from_tokenizer(bpe)
    scorer = NGramTokenScorer(lm, word_map)
    text = "the cat sat on the mat"
    ids = bpe.encode(text)
    assert any(not word_map.starts_word[i] for i in ids)  # some words span several pieces
    steps = _feed(scorer, ids)
    total = sum(float(step[i]) for step, i in zip(steps, ids + [SOS_EOS]))
    assert total == pytest.approx(_sentence_lnp(lm, text.split()), abs=1e-9)
    # every piece that starts a word scores the word before it, the others 0
    starts = torch.tensor(word_map.starts_word)
    starts[SOS_EOS] = False
    for step in steps:
        assert torch.all(step[~starts & (torch.arange(len(starts)) != SOS_EOS)] == 0)
        assert torch.unique(step[starts]).numel() == 1


def test_token_scorer_select_state_reorders_and_rows_may_differ_in_length():
    lm = WordLMScorer(train_ngram(TEXTS, 3))
    tok = CharTokenizer.train(TEXTS)
    scorer = NGramTokenScorer(lm, TokenWordMap.from_tokenizer(tok))
    space = tok.encode("a b")[1]
    a, b = tok.encode("the cat") + [space], tok.encode("a dog sat")
    ref_a, ref_b = _feed(scorer, a)[-1], _feed(scorer, b)[-1]
    assert not torch.equal(ref_a, ref_b)
    # rows of unequal length, left-padded with -1, fed in one call from an empty start
    width = max(len(a), len(b))
    history = torch.tensor([[-1] * (width - len(a)) + a, [-1] * (width - len(b)) + b])
    _, state = scorer.score(history[:, :0], scorer.init_state(2))
    scores, state = scorer.score(history, state)
    assert torch.allclose(scores[0], ref_a) and torch.allclose(scores[1], ref_b)
    # reorder and repeat; rows with nothing new to feed keep their scores
    picked = scorer.select_state(state, torch.tensor([1, 0, 1]))
    again, picked = scorer.score(history[[1, 0, 1]], picked)
    assert torch.equal(again, scores[[1, 0, 1]])
    # then one row advances by a token while the others stand still
    grown = torch.cat([torch.full((3, 1), -1), history[[1, 0, 1]]], dim=1)
    grown[1] = torch.tensor([*history[0].tolist(), tok.encode("s")[0]])[-grown.shape[1] :]
    stepped, _ = scorer.score(grown, picked)
    assert torch.equal(stepped[[0, 2]], scores[[1, 1]])
    assert float(stepped[1, space]) == lm.score(("cat",) if lm.order == 2 else ("the", "cat"), "s")[0]
    assert float(scores[0, space]) == 0.0
    with pytest.raises(ValueError, match="has fed"):
        scorer.score(history[:, -3:], state)
    with pytest.raises(ValueError, match="state rows"):
        scorer.score(history[:1], state)


def test_token_scorer_extra_end_column_and_errors():
    lm = WordLMScorer(train_ngram(TEXTS, 2))
    word_map = TokenWordMap.from_tokenizer(CharTokenizer.train(TEXTS))
    vocab = word_map.vocab_size
    scorer = NGramTokenScorer(lm, word_map, eos=vocab)  # an end column past the token vocabulary
    scores, _ = scorer.score(torch.empty(1, 0, dtype=torch.long), scorer.init_state(1))
    assert scores.shape == (1, vocab + 1) and float(scores[0, vocab]) == pytest.approx(lm.end_score(("<s>",)))
    assert float(scores[0, SOS_EOS]) == 0.0  # <sos/eos> is an ordinary silent token here
    none = NGramTokenScorer(lm, word_map, eos=None)
    assert none.score(torch.empty(2, 0, dtype=torch.long), none.init_state(2))[0].shape == (2, vocab)
    with pytest.raises(ConfigError, match="eos"):
        NGramTokenScorer(lm, word_map, eos=vocab + 1)
    with pytest.raises(TypeError, match="begin_state"):
        NGramTokenScorer(object(), word_map)


def test_token_scorer_agrees_across_lm_backends(tmp_path):
    pytest.importorskip("kenlm")
    path = train_ngram(TEXTS, 3).write_arpa(tmp_path / "lm.arpa")
    word_map = TokenWordMap.from_tokenizer(CharTokenizer.train(TEXTS + ["z"]))
    tok = CharTokenizer.train(TEXTS + ["z"])
    ids = tok.encode("the cat sat on a zebra mat")
    fast = _feed(NGramTokenScorer(WordLMScorer.from_arpa(path), word_map), ids)
    slow = _feed(NGramTokenScorer(WordLMScorer.from_arpa(path, backend="python"), word_map), ids)
    for a, b in zip(fast, slow):
        assert torch.allclose(a, b, atol=1e-4)
