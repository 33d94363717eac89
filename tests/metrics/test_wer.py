"""error_rate / wer / cer: hand-computed cases, jiwer itself as the reference, and edge cases."""

from __future__ import annotations

import math

import jiwer
import pytest

from seqspeech.metrics import ErrorRate, cer, error_rate, wer
from seqspeech.text.normalize import BasicTextNormalizer

REFS = [
    "the cat sat on the mat",
    "a quick brown fox jumps over the lazy dog",
    "hello world",
    "speech recognition is hard",
    "one two three four five",
]
HYPS = [
    "the cat sat on mat",
    "a quick brown fox jumped over the the lazy dog",
    "hello word",
    "speech wreck a nice beach is hard",
    "one two three four five",
]


@pytest.mark.parametrize(
    ("ref", "hyp", "s", "d", "i"),
    [
        ("the cat sat", "the cat sat", 0, 0, 0),
        ("the cat sat", "the cat sat down", 0, 0, 1),
        ("the cat sat", "the sat", 0, 1, 0),
        ("the cat sat", "the dog sat", 1, 0, 0),
        ("the cat sat", "", 0, 3, 0),
        ("a b c d e", "x b d e f", 1, 1, 1),
        ("a b c d", "x b d", 1, 1, 0),
    ],
)
def test_hand_computed(ref, hyp, s, d, i):
    result = error_rate([ref], [hyp], normalizer=None)
    n = len(ref.split())
    assert (result.substitutions, result.deletions, result.insertions) == (s, d, i)
    assert result.hits == n - s - d
    assert result.n_ref_units == n and result.n_utts == 1
    assert result.rate == pytest.approx((s + d + i) / n)
    assert result.errors == s + d + i


def test_matches_jiwer_words():
    ours = error_rate(REFS, HYPS, normalizer=None)
    theirs = jiwer.process_words(REFS, HYPS)
    assert ours.rate == pytest.approx(theirs.wer) == pytest.approx(jiwer.wer(REFS, HYPS))
    assert (ours.substitutions, ours.deletions, ours.insertions, ours.hits) == (
        theirs.substitutions,
        theirs.deletions,
        theirs.insertions,
        theirs.hits,
    )
    assert ours.n_ref_units == sum(len(r.split()) for r in REFS)
    assert wer(REFS, HYPS, normalizer=None) == ours.rate


def test_matches_jiwer_chars():
    ours = error_rate(REFS, HYPS, unit="char", normalizer=None)
    assert ours.rate == pytest.approx(jiwer.cer(REFS, HYPS))
    assert ours.n_ref_units == sum(len(r) for r in REFS)
    assert cer(["abc"], ["abd"], normalizer=None) == pytest.approx(1 / 3)


def test_corpus_rate_is_not_a_mean_of_utterance_rates():
    result = error_rate(["a", "b c d e"], ["x", "b c d e"], normalizer=None)
    assert result.rate == pytest.approx(1 / 5)


def test_default_normalizer_is_english():
    assert wer(["Hello, World! It's twenty-one."], ["hello world it is 21"]) == 0.0
    assert wer(["Hello, World!"], ["hello world"], normalizer=None) == 1.0
    assert wer(["Grüß Gott!"], ["grüß gott"], normalizer=BasicTextNormalizer()) == 0.0


def test_whitespace_is_collapsed():
    assert error_rate(["  a   b\tc "], ["a b c"], normalizer=None).rate == 0.0
    assert error_rate(["a  b"], ["a b"], unit="char", normalizer=None).rate == 0.0


def test_empty_references():
    result = error_rate(["", "a b"], ["x y", "a b"], normalizer=None)
    assert (result.insertions, result.n_ref_units, result.n_utts) == (2, 2, 2)
    assert result.rate == pytest.approx(1.0)
    only_insertions = error_rate([""], ["x y"], normalizer=None)
    assert only_insertions.insertions == 2 and math.isinf(only_insertions.rate)
    assert error_rate([""], [""]).rate == 0.0
    assert error_rate(["[noise]"], [""]).rate == 0.0  # empty after normalisation
    assert error_rate(["", ""], ["ab", ""], unit="char", normalizer=None).insertions == 2
    assert error_rate([], []) == ErrorRate(0.0, 0, 0, 0, 0, 0, 0)


def test_bad_input():
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="unit"):
        error_rate(["a"], ["a"], unit="phone")
    with pytest.raises(ValueError, match="single string"):
        error_rate("a b", "a b")
    with pytest.raises(ValueError, match="hypothesis 0 is NoneType"):
        error_rate(["a"], [None])


def test_as_dict():
    result = error_rate(["a b"], ["a c"], normalizer=None)
    assert result.as_dict() == {
        "rate": 0.5,
        "substitutions": 1,
        "deletions": 0,
        "insertions": 0,
        "hits": 1,
        "n_ref_units": 2,
        "n_utts": 1,
    }
