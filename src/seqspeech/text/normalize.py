"""Text normalisation for scoring: make a reference and a hypothesis comparable before counting word errors.

:class:`EnglishTextNormalizer` follows the conventions of openai-whisper's English normaliser (so our WERs are
comparable with published Whisper numbers) in a smaller, readable form. Where it intentionally differs:

- ``%`` and currency symbols become words (``5%`` -> ``5 percent``, ``$5`` -> ``5 dollars``); Whisper goes the
  other way (``five percent`` -> ``5%``, ``five dollars`` -> ``$5``).
- apostrophes inside words stay (``o'clock``); Whisper splits them (``one o'clock`` -> ``10 clock``).
  Typographic apostrophes count as apostrophes (``it’s`` -> ``it is``; Whisper gives ``it s``).
- ``oh`` is never read as zero (Whisper writes ``oh my god`` as ``0 my god``); ``zero`` is.
- no plural numbers (``twenties``, ``sixes``), ``and a half``, signs, or numbers above the billions; but
  ``ninth`` is known (Whisper leaves ``ninth`` and ``ninety ninth`` alone).
- only a ~50-word British -> American spelling map (Whisper has ~1700 words).
- ``1.5`` stays ``1.5`` (Whisper's ``1`` -> ``one`` rewrite turns it into ``one.5``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from fractions import Fraction

_FILLERS = re.compile(r"\b(hmm|mm|mhm|mmm|uh|um)\b")
_BRACKETED = re.compile(r"[<\[][^>\]]*[>\]]|\([^)]+?\)")

_CONTRACTIONS = [  # applied in order, as regular expressions on lowercase text
    (r"\bwon't\b", "will not"), (r"\bcan't\b", "can not"), (r"\blet's\b", "let us"), (r"\bain't\b", "aint"),
    (r"\by'all\b", "you all"), (r"\bwanna\b", "want to"), (r"\bgotta\b", "got to"),
    (r"\bgonna\b", "going to"), (r"\bi'ma\b", "i am going to"), (r"\bimma\b", "i am going to"),
    (r"\bma'am\b", "madam"),
    (r"'d been\b", " had been"), (r"'s been\b", " has been"), (r"'d gone\b", " had gone"),
    (r"'s gone\b", " has gone"), (r"'d done\b", " had done"), (r"'s got\b", " has got"),
    (r"n't\b", " not"), (r"'re\b", " are"), (r"'s\b", " is"), (r"'d\b", " would"), (r"'ll\b", " will"),
    (r"'t\b", " not"), (r"'ve\b", " have"), (r"'m\b", " am"),
]  # fmt: skip
_CONTRACTIONS_RE = [(re.compile(pattern), replacement) for pattern, replacement in _CONTRACTIONS]

_ABBREVIATIONS = {
    "mr": "mister", "mrs": "missus", "st": "saint", "dr": "doctor", "prof": "professor", "capt": "captain",
    "gov": "governor", "gen": "general", "sen": "senator", "rep": "representative", "pres": "president",
    "rev": "reverend", "hon": "honorable", "asst": "assistant", "lt": "lieutenant", "col": "colonel",
    "jr": "junior", "sr": "senior", "esq": "esquire",
}  # fmt: skip

_BRITISH_TO_AMERICAN = {
    "colour": "color", "colours": "colors", "coloured": "colored", "favour": "favor", "favourite": "favorite",
    "favourites": "favorites", "honour": "honor", "honours": "honors", "humour": "humor", "labour": "labor",
    "neighbour": "neighbor", "neighbours": "neighbors", "neighbourhood": "neighborhood",
    "behaviour": "behavior",
    "harbour": "harbor", "rumour": "rumor", "flavour": "flavor", "centre": "center", "centres": "centers",
    "metre": "meter", "metres": "meters", "litre": "liter", "litres": "liters", "theatre": "theater",
    "fibre": "fiber", "organise": "organize", "organised": "organized", "organisation": "organization",
    "realise": "realize", "realised": "realized", "recognise": "recognize", "recognised": "recognized",
    "apologise": "apologize", "criticise": "criticize", "analyse": "analyze", "analysed": "analyzed",
    "defence": "defense", "offence": "offense", "licence": "license", "practise": "practice",
    "travelled": "traveled", "travelling": "traveling", "traveller": "traveler", "cancelled": "canceled",
    "jewellery": "jewelry", "grey": "gray", "programme": "program", "programmes": "programs",
    "catalogue": "catalog", "dialogue": "dialog", "cheque": "check", "tyre": "tire", "tyres": "tires",
    "aluminium": "aluminum", "mould": "mold", "plough": "plow", "sceptical": "skeptical",
}  # fmt: skip

_UNITS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]  # fmt: skip
_TENS_WORDS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SMALL = {w: i for i, w in enumerate(_UNITS)} | {w: 20 + 10 * i for i, w in enumerate(_TENS_WORDS)}  # 0..90
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_ORDINALS = {  # ordinal word -> its cardinal word
    "first": "one", "second": "two", "third": "three", "fifth": "five", "eighth": "eight", "ninth": "nine",
    "twelfth": "twelve",
}  # fmt: skip
_ORDINALS |= {w + "th": w for w in [*_UNITS[4:], *_SCALES] if w not in _ORDINALS.values()}
_ORDINALS |= {w[:-1] + "ieth": w for w in _TENS_WORDS}
_CURRENCY = re.compile(r"([$£€])\s*(\d+(?:\.\d+)?)((?:\s+(?:hundred|thousand|million|billion)\b)?)")
_DECIMAL = re.compile(r"\d+(?:\.\d+)?")
_SYMBOL_WORDS = {"%": "percent", "$": "dollars", "£": "pounds", "€": "euros", "¢": "cents"}


def _strip_symbols(text: str, keep: str = "", categories: str = "MSP") -> str:
    """Replace characters of the Unicode ``categories`` (Marks, Symbols, Punctuation), except ``keep``, with
    spaces."""
    return "".join(" " if unicodedata.category(c)[0] in categories and c not in keep else c for c in text)


class BasicTextNormalizer:
    """Language-independent normalisation: NFKC, lowercase, drop ``[..]``/``<..>``/``(..)`` spans, replace
    symbols and punctuation with spaces, collapse whitespace.

    Unlike openai-whisper's ``BasicTextNormalizer``, combining marks are kept, so words in scripts that need
    them (Devanagari ``नमस्ते``, Hebrew with niqqud) are not split apart.
    """

    def __call__(self, text: str) -> str:
        text = _BRACKETED.sub("", unicodedata.normalize("NFKC", text).lower())
        return " ".join(_strip_symbols(text, categories="SP").split())


class EnglishTextNormalizer:
    """English normalisation for WER: see the module docstring.

    >>> EnglishTextNormalizer()("Mr. Smith's colour TV cost twenty-one dollars (approx).")
    'mister smith is color tv cost 21 dollars'
    """

    def __call__(self, text: str) -> str:
        text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'").replace("\u2018", "'")
        text = _FILLERS.sub("", _BRACKETED.sub("", text))
        text = re.sub(r"\s+'(?=(?:s|t|re|ve|m|ll|d)\b)", "'", text)  # "it 's" -> "it's"
        for pattern, replacement in _CONTRACTIONS_RE:
            text = pattern.sub(replacement, text)
        text = re.sub(r"(\d),(?=\d)", r"\1", text)  # 1,000 -> 1000
        # $5 million -> 5 million dollars, 5% -> 5 percent
        text = _CURRENCY.sub(lambda m: f" {m[2]}{m[3]} {_SYMBOL_WORDS[m[1]]} ", text)
        text = re.sub(r"[%¢]", lambda m: f" {_SYMBOL_WORDS[m[0]]} ", text)
        text = re.sub(r"\.(?!\d)|(?<!\d)\.", " ", text)  # keep only decimal points
        # drop diacritics, then every symbol but apostrophes and decimal points
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if unicodedata.category(c) != "Mn")
        text = _strip_symbols(text, keep="'.")
        text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)  # apostrophes only inside words
        text = re.sub(r"([0-9])([a-z])", r"\1 \2", re.sub(r"([a-z])([0-9])", r"\1 \2", text))  # 10am -> 10 am
        text = re.sub(r"(\d) (st|nd|rd|th|s)\b", r"\1\2", text)  # but keep 21st, 1990s
        words = [_ABBREVIATIONS.get(w, w) for w in text.split()]
        words = [_BRITISH_TO_AMERICAN.get(w, w) for w in _numbers_to_digits(words)]
        # as Whisper does, write a lone 1 as "one" (and 1s as "ones")
        return re.sub(r"(?<![\w.])1(s?)(?![\w.])", r"one\1", " ".join(words))


class DigitNormalizer:
    """Digit-string scoring: every digit a token, so ``"Four seven two."``, ``"472"`` and ``"4, 7, 2"`` all read
    ``"4 7 2"``.

    First :class:`EnglishTextNormalizer` (case, punctuation, fillers and bracketed spans dropped, number words
    to digits: ``"seventy-two"`` -> ``72``), then every numeral is split into its digits (``"472"`` -> ``4 7 2``,
    ``"1.5"`` -> ``1 5``, ``"21st"`` -> ``2 1 st``) and ``one`` (which the English normaliser writes for a lone
    1) becomes ``1``. Any other word stays a word, so it counts as an error against a digit: ``"to"`` is not
    ``2``, ``"for"`` not ``4``, and ``"oh"`` not ``0`` (the English normaliser never reads "oh" as zero; our
    digit data says "zero", and a recogniser's "oh" is more often an interjection than a digit).

    >>> DigitNormalizer()("Seven. Four seventy-two, oh!")
    '7 4 7 2 oh'
    """

    def __init__(self, base: Callable[[str], str] | None = None) -> None:
        self.base = base or EnglishTextNormalizer()

    def __call__(self, text: str) -> str:
        tokens: list[str] = []
        for word in self.base(text).split():
            for piece in re.findall(r"\d|\D+", word):
                piece = piece.strip("'.")
                if piece:
                    tokens.append(_DIGIT_WORD.get(piece, piece))
        return " ".join(tokens)


_DIGIT_WORD = {"one": "1"}  # the English normaliser's only spelled-out digit


# -------------------------------------------------------------------------------------------- spelled numbers


def _numbers_to_digits(words: list[str]) -> list[str]:
    """Rewrite spelled-out numbers as digits: ``twenty one`` -> ``21``, ``one hundred and five`` -> ``105``,
    ``twenty first`` -> ``21st``, ``three point one four`` -> ``3.14``. Adjacent numbers that cannot combine
    arithmetically are read digit by digit, as in years and phone numbers:
    ``nineteen ninety nine`` -> ``1999``.
    """
    out: list[str] = []
    nominal = False  # whether out[-1] is a short cardinal that a following number may extend digit-wise
    i = 0
    while i < len(words):
        parsed = _parse_number(words, i)
        if parsed is None:
            if nominal and words[i] == "oh" and _parse_number(words, i + 1) is not None:
                out[-1] += "0"  # "nineteen oh five"
                i += 1
                continue
            out.append(words[i])
            nominal = False
            i += 1
            continue
        text, end, extendable = parsed
        if nominal and extendable:
            out[-1] += text
        else:
            out.append(text)
        nominal = extendable
        i = end
    return out


def _parse_number(words: list[str], start: int) -> tuple[str, int, bool] | None:
    """Parse the longest spelled-out number at ``words[start]`` (``2.5 million`` counts too).

    Returns (digits, index after it, whether it is a plain cardinal below 100 that may be extended
    digit-wise), or None if no number starts there (or ``start`` is past the end).
    """
    if start >= len(words):  # "seven oh" ends on "oh": nothing follows it
        return None
    total: Fraction = Fraction(0)  # completed thousand/million/billion groups
    group: Fraction = Fraction(0)  # the current group, below 1000
    last: str | None = (
        None  # kind of the last word taken: zero, unit (1-9), teen (10-19), tens, hundred, scale
    )
    last_scale, ordinal, i = 10**12, False, start
    if _DECIMAL.fullmatch(words[start]) and _at(words, start + 1) in _SCALES:
        group, last, i = Fraction(words[start]), "digits", start + 1
    while i < len(words) and not ordinal and last != "zero":
        word = _ORDINALS.get(words[i], words[i])
        after = _at(words, i + 1)
        if word == "and" and last in ("hundred", "scale") and _SMALL.get(_ORDINALS.get(after, after), 0) > 0:
            i += 1
            continue
        if word in _SMALL:
            value = _SMALL[word]
            kind = "zero" if value == 0 else "unit" if value < 10 else "teen" if value < 20 else "tens"
            fits = last in ("hundred", "scale") and kind != "zero" or last == "tens" and kind == "unit"
            if last is not None and not fits:
                break
            group, last = group + value, kind
        elif word == "hundred":
            if last is not None and not (last in ("unit", "teen", "tens", "digits") and group < 100):
                break
            group, last = (group or 1) * 100, "hundred"
        elif word in _SCALES:
            if _SCALES[word] >= last_scale or last == "zero":
                break
            last_scale = _SCALES[word]
            total, group, last = total + (group or 1) * last_scale, Fraction(0), "scale"
        else:
            break
        ordinal = words[i] in _ORDINALS
        i += 1
    value = total + group
    if last is None or value.denominator != 1:
        return None
    if ordinal:
        return _with_ordinal_suffix(int(value)), i, False
    decimals = []
    if _at(words, i) == "point" and last != "digits":
        while _SMALL.get(_at(words, i + 1 + len(decimals)), 10) < 10:
            decimals.append(str(_SMALL[words[i + 1 + len(decimals)]]))
    if decimals:
        number, i = f"{value}.{''.join(decimals)}", i + 1 + len(decimals)
        scale = _SCALES.get(_at(words, i), last_scale)
        if scale < last_scale and (Fraction(number) * scale).denominator == 1:  # two point five million
            return str(Fraction(number) * scale), i + 1, False
        return number, i, False
    return str(value), i, value < 100 and last in ("zero", "unit", "teen", "tens")


def _at(words: list[str], i: int) -> str | None:
    return words[i] if i < len(words) else None


def _with_ordinal_suffix(value: int) -> str:
    if value % 100 in (11, 12, 13):
        return f"{value}th"
    return f"{value}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(value % 10, 'th') }"
