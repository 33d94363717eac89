"""Digit-string scoring: DigitNormalizer, digit error rate (our error_rate over digit tokens, against jiwer) and
string error rate."""

from __future__ import annotations

import jiwer
import pytest

from seqspeech.metrics import error_rate, string_error_rate
from seqspeech.text.normalize import DigitNormalizer, EnglishTextNormalizer

digits = DigitNormalizer()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7.", "7"),
        ("Seven.", "7"),
        ("seven", "7"),
        ("Four seven two", "4 7 2"),
        ("472", "4 7 2"),
        ("four hundred and seventy-two", "4 7 2"),
        ("seventy two", "7 2"),
        ("4, 7, 2.", "4 7 2"),
        ("4-7-2", "4 7 2"),
        ("Nine, eight, seven!", "9 8 7"),
        ("zero zero one", "0 0 1"),
        ("Zero. Zero. One.", "0 0 1"),
        ("One.", "1"),  # the English normaliser writes a lone 1 as "one"
        ("one one", "1 1"),
        ("1.5", "1 5"),
        ("twenty one", "2 1"),
        ("ten", "1 0"),
        # words that are not digits stay words, so they count as errors
        ("To.", "to"),
        ("for", "for"),
        ("oh", "oh"),  # never zero: our data says "zero"; a recogniser's "oh" is mostly an interjection
        ("Oh, seven.", "oh 7"),
        ("Seven, oh!", "7 oh"),
        ("See you later.", "see you later"),
        ("ninth", "9 th"),
        ("$5", "5 dollars"),
        # dropped: fillers, bracketed non-speech, punctuation only
        ("um seven", "7"),
        ("[BLANK_AUDIO]", ""),
        ("...", ""),
    ],
)
def test_digit_normalizer(text: str, expected: str) -> None:
    assert digits(text) == expected


def test_english_normalizer_handles_a_trailing_oh() -> None:
    # "seven oh" at the end of a text used to raise IndexError ("oh" looked ahead past the last word)
    english = EnglishTextNormalizer()
    assert english("seven oh") == "7 oh"
    assert english("Seven, oh!") == "7 oh"
    assert english("nineteen oh five") == "1905"


REFS = ["seven", "four seven two", "zero zero one", "nine", "three six", "two"]
HYPS = ["7.", "472", "Zero, zero, one, one.", "Nine!", "three sick", "To."]


def test_digit_error_rate_is_our_wer_over_digit_tokens_and_matches_jiwer() -> None:
    result = error_rate(REFS, HYPS, unit="word", normalizer=digits)
    refs, hyps = [digits(r) for r in REFS], [digits(h) for h in HYPS]
    expected = jiwer.process_words(refs, hyps)
    assert result.rate == pytest.approx(expected.wer)
    assert (result.substitutions, result.deletions, result.insertions) == (
        expected.substitutions, expected.deletions, expected.insertions)
    # 11 reference digits; errors: one insertion ("one"), "sick" for 6, "to" for 2
    assert result.n_ref_units == 11 and result.errors == 3 and result.rate == pytest.approx(3 / 11)


def test_string_error_rate() -> None:
    # wrong: "zero zero one one", "three sick", "to"
    assert string_error_rate(REFS, HYPS, normalizer=digits) == pytest.approx(3 / 6)
    assert string_error_rate(REFS, REFS, normalizer=digits) == 0.0
    assert string_error_rate(["a b"], ["a  b "], normalizer=None) == 0.0  # whitespace collapsed
    assert string_error_rate(["a b"], ["A b"], normalizer=None) == 1.0
    assert string_error_rate([], []) == 0.0
    assert string_error_rate([""], ["[BLANK_AUDIO]"], normalizer=digits) == 0.0
    with pytest.raises(ValueError, match="pair up"):
        string_error_rate(["a"], [])
    with pytest.raises(ValueError, match="not a single string"):
        string_error_rate("a", "a")
    with pytest.raises(ValueError, match="hypothesis 0 is int"):
        string_error_rate(["a"], [3])  # type: ignore[list-item]
