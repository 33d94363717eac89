"""G2P: CMU dictionary, espeak-ng for out-of-vocabulary words, pure-Python fallbacks, heteronyms in context."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import seqspeech.text.g2p as g2p_module
from seqspeech.errors import DataError
from seqspeech.text.g2p import G2P, HETERONYMS, PHONES, VOWELS, cmu_dictionary, ipa_to_arpabet

ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed")


@pytest.fixture(scope="module")
def g2p() -> G2P:
    return G2P()


def _phones(text: str) -> list[str]:
    return text.split()


# ---------------------------------------------------------------------------------------------- phone set


def test_phones_are_exactly_the_cmu_dictionary_symbols() -> None:
    used = {phone for prons in cmu_dictionary().values() for pron in prons for phone in pron}
    assert set(PHONES) == used
    assert len(PHONES) == 69 and list(PHONES) == sorted(PHONES)
    assert {p for p in PHONES if p[-1].isdigit()} == {v + s for v in VOWELS for s in "012"}


# -------------------------------------------------------------------------------------------- dictionary


@pytest.mark.parametrize("word", ["hello", "world", "speech", "synthesis", "through", "o'clock", "don't"])
def test_known_words_read_the_dictionary(g2p: G2P, word: str) -> None:
    assert g2p.word(word) == cmu_dictionary()[word][0]


def test_known_words_constructed(g2p: G2P) -> None:
    assert g2p.word("cat") == _phones("K AE1 T")
    assert g2p.word("Cat") == _phones("K AE1 T")
    assert g2p.word("ship") == _phones("SH IH1 P")


def test_call_joins_words_and_keeps_pause_marks(g2p: G2P) -> None:
    dictionary = cmu_dictionary()
    hello, world = dictionary["hello"][0], dictionary["world"][0]
    assert g2p("hello, world.") == [*hello, ",", " ", *world, "."]
    assert g2p("hello world") == [*hello, " ", *world]
    assert g2p("") == []


def test_custom_dictionary() -> None:
    g2p = G2P({"foo": [["F", "UW1"]], "bar": [["B", "AA1", "R"]]}, use_espeak=False)
    assert g2p("foo bar? foo") == ["F", "UW1", " ", "B", "AA1", "R", "?", " ", "F", "UW1"]


def test_dictionary_loads_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_dictionary() -> dict[str, list[list[str]]]:
        calls.append(1)
        return {"cat": [["K", "AE1", "T"]]}

    monkeypatch.setattr(g2p_module, "cmu_dictionary", fake_dictionary)
    g2p = G2P(use_espeak=False)
    assert calls == []
    assert g2p.word("cat") == ["K", "AE1", "T"]
    assert calls


@pytest.mark.parametrize("bad", ["hello 3", "hello-world", "$5", "naïve"])
def test_rejects_unnormalised_text(g2p: G2P, bad: str) -> None:
    with pytest.raises(DataError, match="normalise"):
        g2p(bad)


def test_word_rejects_non_words(g2p: G2P) -> None:
    with pytest.raises(DataError):
        g2p.word("3")
    with pytest.raises(DataError):
        g2p.word("'")


# ------------------------------------------------------------------------------------------- IPA mapping


@pytest.mark.parametrize(
    ("ipa", "arpabet"),
    [
        ("həlˈoʊ", "HH AH0 L OW1"),
        ("bˈʌʔn̩", "B AH1 T AH0 N"),
        ("mˈɛʒɚ", "M EH1 ZH ER0"),
        ("tʃˈɜːtʃ", "CH ER1 CH"),
        ("θˈɪŋk", "TH IH1 NG K"),
        ("dʒˈʌdʒ", "JH AH1 JH"),
        ("kjˈuːbɚnˌiːts", "K Y UW1 B ER0 N IY2 T S"),
        ("ðə", "DH AH0"),
        ("(fr)kʁwasɑ̃(en)", "K R W AA0 S AA0"),  # language tags and the nasal tilde dropped
        ("pˈæ☃t", "P AE1 T"),  # an unknown symbol is dropped
        ("", ""),
    ],
)
def test_ipa_to_arpabet(ipa: str, arpabet: str) -> None:
    assert ipa_to_arpabet(ipa) == _phones(arpabet)


# ------------------------------------------------------------------------------------ out of vocabulary


@needs_espeak
def test_oov_words_go_through_espeak() -> None:
    g2p = G2P(dictionary={}, use_espeak=True)
    for word, arpabet in [("cat", "K AE1 T"), ("think", "TH IH1 NG K"), ("measure", "M EH1 ZH ER0")]:
        assert g2p.word(word) == _phones(arpabet)
    # an invented word: the same as espeak-ng's own IPA mapped, all phones in the inventory
    ipa = subprocess.run(
        [ESPEAK, "-q", "--ipa", "-v", "en-us", "blorptastic"], capture_output=True, text=True, check=True
    ).stdout.strip()
    phones = G2P(use_espeak=True).word("blorptastic")
    assert phones == ipa_to_arpabet(ipa)
    assert phones[:2] == ["B", "L"] and set(phones) <= set(PHONES) and any(p.endswith("1") for p in phones)


@needs_espeak
def test_oov_words_of_a_call_share_one_espeak_run_and_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[list[str]] = []
    real = g2p_module._espeak_ipa

    def counting(binary: str, words: list[str]) -> dict[str, str]:
        runs.append(list(words))
        return real(binary, words)

    monkeypatch.setattr(g2p_module, "_espeak_ipa", counting)
    g2p = G2P(use_espeak=True)
    first = g2p("zyxtrel blorptastic, zyxtrel hello quonkly.")
    assert runs == [["blorptastic", "quonkly", "zyxtrel"]]
    assert g2p("quonkly zyxtrel blorptastic") and len(runs) == 1  # cached
    assert first[: first.index(" ")] == g2p.word("zyxtrel")


def test_without_espeak_known_parts_or_spelled_letters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(g2p_module.shutil, "which", lambda name: None)
    dictionary = {
        "cat": [["K", "AE1", "T"]], "dog": [["D", "AO1", "G"]], "box": [["B", "AA1", "K", "S"]],
        "snow": [["S", "N", "OW1"]], "man": [["M", "AE1", "N"]],
    }  # fmt: skip
    for use_espeak in (True, False):  # espeak-ng missing, or not wanted
        g2p = G2P(dictionary, use_espeak=use_espeak)
        assert g2p.word("cats") == _phones("K AE1 T S")
        assert g2p.word("dogs") == _phones("D AO1 G Z")
        assert g2p.word("dog's") == _phones("D AO1 G Z")
        assert g2p.word("boxes") == _phones("B AA1 K S IH0 Z")
        assert g2p.word("snowman") == _phones("S N OW1 M AE1 N")
        assert g2p.word("xqz") == _phones("EH1 K S K Y UW1 Z IY1")


# ------------------------------------------------------------------------------------------- heteronyms


def test_every_heteronym_reading_is_in_the_cmu_dictionary() -> None:
    dictionary = cmu_dictionary()
    for word, heteronym in HETERONYMS.items():
        readings = {heteronym.default, *(rule.phones for rule in heteronym.rules)}
        assert len(readings) >= 2, word
        for reading in readings:
            assert list(reading) in dictionary[word], (word, reading)


HETERONYM_SENTENCES = [
    ("i have read the book", "read", "R EH1 D"),
    ("she read it aloud", "read", "R EH1 D"),
    ("it was read twice", "read", "R EH1 D"),
    ("i want to read", "read", "R IY1 D"),
    ("please read this", "read", "R IY1 D"),
    ("lead pipes are dangerous", "lead", "L EH1 D"),
    ("it is made of lead", "lead", "L EH1 D"),
    ("they lead the way", "lead", "L IY1 D"),
    ("we live here", "live", "L IH1 V"),
    ("a live show", "live", "L AY1 V"),
    ("they play live music", "live", "L AY1 V"),
    ("the show is live", "live", "L AY1 V"),
    ("cats have nine lives", "lives", "L AY1 V Z"),
    ("she lives here", "lives", "L IH1 V Z"),
    ("a new record", "record", "R EH1 K ER0 D"),
    ("we record music", "record", "R IH0 K AO1 R D"),
    ("the present day", "present", "P R EH1 Z AH0 N T"),
    ("to present the award", "present", "P R IY0 Z EH1 N T"),
    ("i object", "object", "AH0 B JH EH1 K T"),
    ("the object fell", "object", "AA1 B JH EH0 K T"),
    ("please close the door", "close", "K L OW1 Z"),
    ("we are close to home", "close", "K L OW1 S"),
    ("a close friend", "close", "K L OW1 S"),
    ("the wind blew", "wind", "W IH1 N D"),
    ("wind up the clock", "wind", "W AY1 N D"),
    ("a tear fell", "tear", "T IH1 R"),
    ("do not tear it", "tear", "T EH1 R"),
    ("the use of force", "use", "Y UW1 S"),
    ("i use it daily", "use", "Y UW1 Z"),
    ("a parking permit", "permit", "P ER1 M IH2 T"),
    ("they will not permit it", "permit", "P ER0 M IH1 T"),
    ("the desert is hot", "desert", "D EH1 Z ER0 T"),
    ("do not desert me", "desert", "D IH0 Z ER1 T"),
    ("a minute detail", "minute", "M AY0 N UW1 T"),
    ("wait a minute", "minute", "M IH1 N AH0 T"),
    ("a bow and arrow", "bow", "B OW1"),
    ("take a bow", "bow", "B AW1"),
]


@pytest.mark.parametrize(("sentence", "word", "reading"), HETERONYM_SENTENCES)
def test_heteronyms_in_sentences(g2p: G2P, sentence: str, word: str, reading: str) -> None:
    words = sentence.split()
    index = words.index(word)
    phones = g2p(sentence)
    per_word: list[list[str]] = [[]]
    for phone in phones:
        if phone == " ":
            per_word.append([])
        else:
            per_word[-1].append(phone)
    assert per_word[index] == _phones(reading)
    prev = words[index - 1] if index else None
    nxt = words[index + 1] if index + 1 < len(words) else None
    assert g2p.word(word, prev, nxt) == _phones(reading)


def test_context_stops_at_pause_marks(g2p: G2P) -> None:
    # "to, read": the comma hides "to", so "read" has no verb cue and "record" after a pause is a noun.
    assert g2p("have, read")[-3:] == _phones("R IY1 D")
    assert g2p("we, record")[-5:] == _phones("R EH1 K ER0 D")
