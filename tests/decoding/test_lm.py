"""Word n-gram LM: Kneser-Ney estimation normalises, ARPA round-trips, KenLM and our reader agree."""

import math

import pytest

from seqspeech.decoding import lm as lm_module
from seqspeech.decoding.lm import EOS, UNK, NGramLM, WordLMScorer, load_arpa, train_arpa, train_ngram
from seqspeech.errors import ConfigError, ModelLoadError

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
