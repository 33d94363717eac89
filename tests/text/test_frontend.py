"""TTSFrontend: fixed vocabularies, round trips, bad text, long text, sentence splitting, serialisation."""

from __future__ import annotations

import json
import string
import time

import pytest

from seqspeech.errors import ConfigError, DataError, ModelLoadError
from seqspeech.text.frontend import MAX_TEXT_CHARS, PAD, TTSFrontend
from seqspeech.text.g2p import G2P, PHONES
from seqspeech.text.tts_normalize import PAUSE_MARKS, normalize_for_tts

SENTENCES = [
    "Hello, world!",
    "Dr. Smith paid $3.50 on 3/14/2021 at 3:30 pm.",
    "Is it 20°C in St. Louis?",
    "Email jane.doe@example.com; call (555) 123-4567",
    "I read it: 1st, 22nd and 3rd",
]


@pytest.fixture(scope="module")
def phoneme() -> TTSFrontend:
    return TTSFrontend("phoneme")


@pytest.fixture(scope="module")
def char() -> TTSFrontend:
    return TTSFrontend("char")


# ---------------------------------------------------------------------------------------------- vocabulary


def test_vocabularies_are_fixed_by_the_mode(phoneme: TTSFrontend, char: TTSFrontend) -> None:
    specials = (PAD, " ", *PAUSE_MARKS)
    assert phoneme.vocab == (*specials, *PHONES) and phoneme.vocab_size == 8 + 69
    assert char.vocab == (*specials, "'", *string.ascii_lowercase) and char.vocab_size == 8 + 27
    for vocab in (phoneme.vocab, char.vocab):
        assert vocab[0] == "<pad>" and len(set(vocab)) == len(vocab)
    # no data involved: another instance, another G2P, the same ids
    assert TTSFrontend("phoneme", G2P(use_espeak=False)).vocab == phoneme.vocab
    assert TTSFrontend("phoneme") == phoneme and TTSFrontend("char") == char and phoneme != char


@pytest.mark.parametrize("mode", ["phoneme", "char"])
@pytest.mark.parametrize("text", SENTENCES)
def test_round_trip(mode: str, text: str, phoneme: TTSFrontend, char: TTSFrontend) -> None:
    frontend = phoneme if mode == "phoneme" else char
    tokens = frontend.tokens(text)
    ids = frontend.encode(text)
    assert len(ids) == len(tokens) and 0 not in ids
    assert frontend.decode(ids) == tokens
    assert frontend.decode([*ids, 0, 0, 0]) == tokens  # padding is dropped
    assert tokens[-1] in PAUSE_MARKS
    assert all(token in frontend.vocab for token in tokens)


def test_char_tokens_are_the_normalised_text(char: TTSFrontend) -> None:
    assert char.tokens("Hi, Dr. Lee") == list("hi, doctor lee.")
    assert char.tokens("Really?!") == list("really?")
    assert char.tokens("wait,") == list("wait,")  # the text's own final mark is kept


def test_phoneme_tokens_are_g2p_of_the_normalised_text(phoneme: TTSFrontend) -> None:
    g2p = G2P()
    for text in SENTENCES:
        normalized = normalize_for_tts(text)
        expected = g2p(normalized)
        if expected[-1] not in PAUSE_MARKS:
            expected.append(".")
        assert phoneme.tokens(text) == expected
    tokens = phoneme.tokens("Hi, Dr. Lee")
    assert tokens == [*g2p.word("hi"), ",", " ", *g2p.word("doctor"), " ", *g2p.word("lee"), "."]


def test_decode_rejects_out_of_range_ids(char: TTSFrontend) -> None:
    with pytest.raises(ValueError, match="out of range"):
        char.decode([1, char.vocab_size])


def test_encode_names_a_token_outside_the_vocabulary() -> None:
    frontend = TTSFrontend("phoneme", G2P({"foo": [["F", "XX"]]}, use_espeak=False))
    with pytest.raises(DataError, match="'XX'"):
        frontend.encode("foo")


# ---------------------------------------------------------------------------------------------- bad text


@pytest.mark.parametrize("mode", ["phoneme", "char"])
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        ("?!...,;:", "nothing to speak"),
        ("😀🎉👍🏽", "nothing to speak"),
        ("\x00\x01\x07\x1b", "nothing to speak"),
        ("Привет, 世界!", "nothing to speak"),
    ],
)
def test_unspeakable_text_is_a_data_error(mode: str, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        TTSFrontend(mode).tokens(text)


@pytest.mark.parametrize("mode", ["phoneme", "char"])
def test_emoji_and_control_characters_are_dropped(mode: str, phoneme: TTSFrontend, char: TTSFrontend) -> None:
    frontend = phoneme if mode == "phoneme" else char
    plain = frontend.tokens("hi there, friend")
    assert frontend.tokens("hi 😀 there,\x07 friend🎉") == plain
    assert frontend.tokens("hi\u200b there\x00, friend\u0301") == plain


def test_rejects_non_text_and_huge_text(char: TTSFrontend) -> None:
    with pytest.raises(TypeError):
        char.tokens(None)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="split_sentences"):
        char.tokens("a" * (MAX_TEXT_CHARS + 1))


@pytest.mark.parametrize("mode", ["phoneme", "char"])
def test_100k_characters_in_a_few_seconds(mode: str, phoneme: TTSFrontend, char: TTSFrontend) -> None:
    frontend = phoneme if mode == "phoneme" else char
    paragraph = (
        "On March 3, 2021, Dr. Smith drove 25 km to 12 Elm St. and paid $3.50 for coffee; it was 20°C. "
        "She read 3 books (e.g. about 1990s music) and emailed jane.doe@example.com at 3:30 pm! Why? "
    )
    text = (paragraph * (100_000 // len(paragraph) + 1))[:100_000]
    frontend.tokens(paragraph)  # warm up: dictionary load, espeak-ng for the few new words
    start = time.perf_counter()
    ids = frontend.encode(text)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"{mode}: {elapsed:.1f} s for 100,000 characters"
    assert len(ids) > 50_000 if mode == "char" else len(ids) > 40_000


# ----------------------------------------------------------------------------------------- split sentences


def test_split_sentences_keeps_abbreviations_and_decimals(char: TTSFrontend) -> None:
    text = "Dr. Smith paid $3.50, e.g. too much. He left at 5 p.m. Then? Yes! Mr. Lee stayed at 3.5 km."
    assert char.split_sentences(text) == [
        "doctor smith paid three dollars and fifty cents, for example too much.",
        "he left at five p m.",
        "then?",
        "yes!",
        "mister lee stayed at three point five kilometers.",
    ]


def test_split_sentences_cuts_long_sentences(char: TTSFrontend) -> None:
    clauses = ", ".join(f"clause number {i} goes on for a while" for i in range(1, 30)) + "."
    pieces = char.split_sentences(clauses, max_chars=120)
    assert len(pieces) > 1 and all(len(p) <= 120 for p in pieces)
    assert " ".join(pieces) == normalize_for_tts(clauses)  # cut after commas only
    assert all(p[-1] in ",." for p in pieces)

    run_on = " ".join(["word"] * 200)  # no punctuation at all
    pieces = char.split_sentences(run_on, max_chars=100)
    assert all(len(p) <= 100 for p in pieces) and all(p.endswith(",") for p in pieces[:-1])
    assert " ".join(p.rstrip(",") for p in pieces) == run_on
    for piece in pieces:  # every piece is valid, already-normalised input
        assert normalize_for_tts(piece) == piece and char.tokens(piece)[-1] in ",."


def test_split_sentences_rejects_bad_input(char: TTSFrontend) -> None:
    with pytest.raises(DataError):
        char.split_sentences("🎉")
    with pytest.raises(ConfigError):
        char.split_sentences("hello", max_chars=5)


# ------------------------------------------------------------------------------------------ serialisation


@pytest.mark.parametrize("mode", ["phoneme", "char"])
def test_to_dict_round_trip(mode: str) -> None:
    frontend = TTSFrontend(mode)
    data = json.loads(json.dumps(frontend.to_dict()))
    restored = TTSFrontend.from_dict(data)
    assert restored == frontend and restored.vocab == frontend.vocab
    assert restored.encode("Hello, world") == frontend.encode("Hello, world")


def test_from_dict_rejects_other_data() -> None:
    good = TTSFrontend("char").to_dict()
    with pytest.raises(ModelLoadError, match="pkg.json"):
        TTSFrontend.from_dict({"format": "other"}, "pkg.json")
    with pytest.raises(ModelLoadError, match="version"):
        TTSFrontend.from_dict({**good, "version": 99})
    with pytest.raises(ModelLoadError, match="mode"):
        TTSFrontend.from_dict({**good, "mode": "bpe"})
    with pytest.raises(ModelLoadError, match="vocabulary"):
        TTSFrontend.from_dict({**good, "vocab": good["vocab"][::-1]})
    with pytest.raises(ModelLoadError, match="g2p"):
        TTSFrontend.from_dict({**TTSFrontend("phoneme").to_dict(), "g2p": {"dictionary": "x"}})


def test_constructor_validates() -> None:
    with pytest.raises(ConfigError, match="mode"):
        TTSFrontend("phonemes")
    with pytest.raises(ConfigError, match="g2p"):
        TTSFrontend("char", G2P())
    with pytest.raises(ConfigError, match="g2p"):
        TTSFrontend("phoneme", object())  # type: ignore[arg-type]
