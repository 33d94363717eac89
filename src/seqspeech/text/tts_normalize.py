"""Text normalisation for speech synthesis: written English -> the words a speaker says, with the pauses kept.

>>> normalize_for_tts("Dr. Smith paid $3.50 on 3/14/2021, at 3:30 pm!")
'doctor smith paid three dollars and fifty cents on march fourteenth twenty twenty one, at three thirty p m!'

Output format
    Lowercase words (``a-z`` and ``'``) separated by single spaces. The pause marks ``, . ? ! ; :``
    (:data:`PAUSE_MARKS`) stay where the text had them, attached to the word before them as written
    (``"hello, world."``). A run of marks becomes the strongest one (``?!`` -> ``?``, ``...`` -> ``.``, ``,.`` ->
    ``.``); a mark with no word before it is dropped. Emoji, symbols with no spoken form and control characters
    are dropped, so the result may be ``""``: callers that need words (:class:`~seqspeech.text.frontend.TTSFrontend`)
    raise :class:`~seqspeech.errors.DataError` for it. Normalising the output again returns it unchanged.

How
    TTS rewrites run first, on the written (cased) text, in this order; then the text is cut at its pause marks
    and each clause is read by :func:`seqspeech.text.verbalize.verbalize_en` (cardinals, decimals, ordinals,
    money, percent, clock times, years, ``&``/``+``/``=``/``#`` and the remaining abbreviations), so a TTS input
    and an ASR label read a number the same way.

    - e-mails and URLs are spelled out: ``jane.doe@example.com`` -> ``jane dot doe at example dot com``,
      ``https://www.example.org/a`` -> ``h t t p s colon slash slash w w w dot example dot org slash a``
      (a part with no vowel, or a known one like ``io``, is spelled letter by letter; digits one by one);
    - ``#ThrowbackThursday`` -> ``hashtag throwback thursday``, ``@jane_doe`` -> ``at jane doe``;
    - phone numbers with an area code (``(555) 123-4567``, ``+1 555.123.4567``, ``+44 20 7946 0958``): digit by
      digit, groups separated by a comma pause;
    - dates: ``March 3, 2021`` / ``Mar. 3rd 2021`` -> ``march third twenty twenty one``, ``3 March 2021`` ->
      ``the third of march twenty twenty one``, ``2021-03-14`` and ``3/14/2021`` (month first unless the first
      number is above 12; ``14.03.2021`` is day first) -> ``march fourteenth twenty twenty one``;
    - ``am``/``pm``/``a.m.`` after a number -> ``a m`` / ``p m`` (``3:30 pm`` -> ``three thirty p m``);
    - money suffixes: ``€2m`` -> ``two million euros``, ``$1.5bn``, ``$5k``; ``5€`` reads as ``€5``; ``50¢`` ->
      ``fifty cents``; ``¥300`` -> ``three hundred yen``;
    - decades: ``1990s`` -> ``nineteen nineties``, ``2010s`` -> ``twenty tens``, ``'80s`` -> ``eighties``;
    - ``100s`` -> ``hundreds``, ``1,000s`` -> ``thousands``;
    - ranges ``1-3`` / ``1–3`` -> ``one to three``; a sign before a number: ``-5`` -> ``minus five``, ``±2``;
      ``3x4`` -> ``three by four``, ``3x`` -> ``three times``;
    - fractions up to tenths: ``1/2`` -> ``one half``, ``3/4`` -> ``three quarters``, ``2 1/3`` / ``2⅓`` ->
      ``two and one third`` (other ``a/b`` are left to be read as two numbers);
    - units after a number, singular for exactly 1: ``1 km`` -> ``one kilometer``, ``10 kg``, ``3 ft``,
      ``60 mph``, ``20°C`` -> ``twenty degrees celsius``, ``5 min``, ``2 GB``, ... (:data:`UNITS`);
    - abbreviations by context: ``Dr.``/``St.`` are ``doctor``/``saint`` before a capitalised name (``Dr. Smith``,
      ``St. John``) and ``drive``/``street`` after a capitalised word or a number (``Elm Dr.``, ``5th St.``);
      titles ``Mr.``, ``Mrs.``, ``Ms.``, ``Prof.`` (also without the period before a name), ``e.g.``, ``i.e.``,
      ``etc.``, ``vs.``, ``No. 5`` -> ``number five`` (``No.`` before anything else is the word ``no``),
      months, ``Inc.``, ``Ave.``, ... An abbreviation's period also ends the sentence at the end of the text, and,
      for those that can close a sentence (``etc.``, ``Inc.``, ``Jr.``, street words, ``p.m.``), before a
      capitalised word; titles, ``e.g.``, ``vs.`` never do;
    - ``U.S.A.`` -> ``u s a``; the period of an initial before a capitalised word is dropped (``J. K. Rowling``);
    - roman numerals after a capitalised word: ``Henry VIII`` -> ``henry the eighth``, ``World War II`` /
      ``Chapter IV`` -> ``... two`` / ``... four`` (a lone ``I`` or ``X`` only after ``War``, ``Chapter``, ...);
    - digit strings of 10+ digits or with a leading zero are read digit by digit (``007`` -> ``zero zero seven``);
      ``.5`` -> ``zero point five``; a letter-digit boundary is a word boundary (``MP3`` -> ``mp three``);
    - dashes between words (``—``, ``--``, `` - ``) and brackets become comma pauses; a blank line ends a
      sentence; curly quotes and apostrophes are unified; decimal digits of any script read as 0-9;
      everything else unspeakable is dropped.

Known gaps: a 7-digit local number ``555-1234`` reads as a range; ``1.5.10``-style versions and
ambiguous day/month orders follow the simple rules above.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from .verbalize import _ABBREVIATIONS, _MONTHS, _UNIT_WORDS, cardinal_en, ordinal_en, verbalize_en, year_en

__all__ = ["PAUSE_MARKS", "SENTENCE_END_MARKS", "UNITS", "normalize_for_tts"]

PAUSE_MARKS: tuple[str, ...] = (",", ".", "?", "!", ";", ":")
"""Punctuation kept in the normalised text, each a pause token for the acoustic model."""
SENTENCE_END_MARKS = frozenset(".?!")
_MARK_STRENGTH = {mark: rank for rank, mark in enumerate((",", ":", ";", ".", "!", "?"))}


def _digits(digits: str) -> str:
    """``"405"`` -> ``"four zero five"``."""
    return " ".join(cardinal_en(int(d)) for d in digits)


# ---------------------------------------------------------------------------------------------- characters

_CHAR_MAP = str.maketrans(
    {
        "\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"',
        "\u2026": "...", "\u2212": "-", "\u00bd": " 1/2", "\u00bc": " 1/4", "\u00be": " 3/4", "\u2153": " 1/3",
        "\u2154": " 2/3", "\u215b": " 1/8", "\r": "\n", "\t": " ",
    }
)  # fmt: skip
_KEEP_SYMBOLS = frozenset("°$£€¥¢±")


def _replace_unspeakable(m: re.Match[str]) -> str:
    ch = m.group()
    if ch in _KEEP_SYMBOLS or ch == "\n":
        return ch
    category = unicodedata.category(ch)
    if category == "Nd":  # any script's decimal digits read as 0-9
        return str(unicodedata.digit(ch))
    if category in ("Mn", "Me", "Cf"):  # stray combining marks, variation selectors, zero-width joiners
        return ""
    if category[0] == "C" or category in ("So", "Sk"):  # controls, emoji and other pictographs
        return " "
    return ch


def _clean_characters(text: str) -> str:
    text = unicodedata.normalize("NFC", text).translate(_CHAR_MAP)
    text = re.sub(r"[^\x20-\x7e]", _replace_unspeakable, text)
    text = re.sub(r"(?<=[^\s.?!,;:])[ ]*\n\s*\n", ". ", text)  # a blank line ends a sentence
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------- e-mails and URLs

_SPOKEN_SYMBOLS = {
    ".": "dot", "/": "slash", ":": "colon", "-": "dash", "_": "underscore", "@": "at", "?": "question mark",
    "=": "equals", "&": "and", "#": "hash", "~": "tilde", "%": "percent", "+": "plus",
}  # fmt: skip
_SPELLED_PARTS = frozenset({"io", "ai", "uk", "us", "eu", "tv", "api", "gif", "ca", "au"})
_EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9][\w.+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_URL_RE = re.compile(
    r"(?<![\w@.-])(?:(?:https?|ftp)://|www\.)[^\s<>\"]+"
    r"|(?<![\w@.-])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:com|org|net|edu|gov|io|ai|co|uk|de|fr|info|biz|dev|app)"
    r"\b(?:/[^\s<>\"]*)?",
    re.IGNORECASE,
)
_TRAILING_PUNCTUATION = ".,;:!?)]}'\""


def _spell_address(address: str) -> str:
    words = []
    for part in re.findall(r"[A-Za-z]+|[0-9]+|.", address):
        if part[0] in "0123456789":
            words.append(_digits(part))
        elif part[0].isascii() and part[0].isalpha():
            lower = part.lower()
            no_vowel = not re.search("[aeiouy]", lower)
            words.append(" ".join(lower) if no_vowel or lower in _SPELLED_PARTS else lower)
        elif part in _SPOKEN_SYMBOLS:
            words.append(_SPOKEN_SYMBOLS[part])
    return " ".join(words)


def _address(m: re.Match[str]) -> str:
    address = m.group()
    stripped = address.rstrip(_TRAILING_PUNCTUATION)
    return f" {_spell_address(stripped)}{address[len(stripped):]} "


# -------------------------------------------------------------------------------------- hashtags, handles

_HASHTAG_RE = re.compile(r"(?<![\w&#])#([A-Za-z][\w]*)")
_HANDLE_RE = re.compile(r"(?<![\w.@])@([A-Za-z_]\w*)")


def _split_identifier(name: str) -> str:
    """``ThrowbackThursday_2`` -> ``Throwback Thursday 2``."""
    name = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", name)
    return " ".join(name.replace("_", " ").split())


# ------------------------------------------------------------------------------------------- phone numbers

_PHONE_RE = re.compile(r"(?<![\w+(])(?:\+(\d{1,3})[\s.-]?)?(\(\d{3}\)|\d{3})[\s.-]?(\d{3})[\s.-](\d{4})(?![\w-]|\.\d)")
_INTERNATIONAL_PHONE_RE = re.compile(r"(?<![\w+])\+(\d{1,3})((?:[\s.-]\d{1,4}){2,5})(?![\w-]|\.\d)")


def _phone(m: re.Match[str]) -> str:
    country, *groups = m.groups()
    spoken = [_digits(group.strip("()")) for group in groups]
    if country:
        spoken.insert(0, f"plus {_digits(country)}")
    return f" {', '.join(spoken)} "


def _international_phone(m: re.Match[str]) -> str:
    groups = re.split(r"[\s.-]", m.group(2).strip(" .-"))
    return f" {', '.join([f'plus {_digits(m.group(1))}', *(_digits(g) for g in groups if g)])} "


# --------------------------------------------------------------------------------------------------- dates

_MONTH_ABBREVIATIONS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9, "oct": 10,
    "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH_NUMBER = {m: i + 1 for i, m in enumerate(_MONTHS)} | _MONTH_ABBREVIATIONS
_MONTH = (
    "(?:" + "|".join(m.capitalize() for m in _MONTHS)
    + "|(?:" + "|".join(a.capitalize() for a in sorted(_MONTH_ABBREVIATIONS, key=len, reverse=True)) + r")\.?)"
)  # fmt: skip
_END_OF_NUMBER = r"(?![\w:]|[.,]\d)"
_DATE_MONTH_FIRST_RE = re.compile(
    rf"\b({_MONTH})\s+(\d{{1,2}})(?:st|nd|rd|th)?{_END_OF_NUMBER}(?:,?\s+(\d{{4}}){_END_OF_NUMBER})?"
)
_DATE_DAY_FIRST_RE = re.compile(
    rf"(?<![\w.,$£€])(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH})(?!\w)(?:,?\s+(\d{{4}}){_END_OF_NUMBER})?"
)
_DATE_NUMERIC_RE = re.compile(r"(?<![\w/.-])(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?![\w/]|[.-]\d)")
_DATE_ISO_RE = re.compile(r"(?<![\w/.-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\w/-]|\.\d)")


def _month_name(written: str) -> str:
    return _MONTHS[_MONTH_NUMBER[written.rstrip(".").lower()] - 1]


def _year(written: str) -> str:
    if len(written) == 2:  # '05 -> "oh five"
        return f"oh {cardinal_en(int(written))}" if written[0] == "0" else cardinal_en(int(written))
    return year_en(int(written))


def _date(month: int, day: int, year: str | None) -> str | None:
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    spoken = f"{_MONTHS[month - 1]} {ordinal_en(day)}"
    return f" {spoken} {_year(year)} " if year else f" {spoken} "


def _date_month_first(m: re.Match[str]) -> str:
    spoken = _date(_MONTH_NUMBER[m.group(1).rstrip(".").lower()], int(m.group(2)), m.group(3))
    return spoken or m.group()


def _date_day_first(m: re.Match[str]) -> str:
    day, month, year = int(m.group(1)), _month_name(m.group(2)), m.group(3)
    if not 1 <= day <= 31:
        return m.group()
    article = "" if m.string[max(0, m.start() - 4) : m.start()].lower() == "the " else "the "
    return f" {article}{ordinal_en(day)} of {month}" + (f" {_year(year)} " if year else " ")


def _date_numeric(m: re.Match[str]) -> str:
    first, separator, second, year = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
    if separator == "." and len(year) == 2:  # "1.5.10" is a version number
        return m.group()
    month, day = (second, first) if separator == "." else (first, second)
    if month > 12 and day <= 12:
        month, day = day, month
    return _date(month, day, year) or m.group()


def _date_iso(m: re.Match[str]) -> str:
    return _date(int(m.group(2)), int(m.group(3)), m.group(1)) or m.group()


# ---------------------------------------------------------------------------------- context of a period

_TEXT_END_RE = re.compile(r"[\"')\]]*\s*$")
_SENTENCE_START_RE = re.compile(r"[\"')\]]*(?:\s*$|\s+[\"'(]*[A-Z])")


def _period_kept(text: str, end: int, can_end_sentence: bool) -> bool:
    """Whether the period just before ``text[end]`` (of an abbreviation) also ends a sentence."""
    if _TEXT_END_RE.match(text, end):
        return True
    return can_end_sentence and _SENTENCE_START_RE.match(text, end) is not None


# ---------------------------------------------------------------------------------------------- a.m., p.m.

_AM_PM_RE = re.compile(r"(?<=\d)\s*([AaPp])\.?\s?[Mm]\b(\.?)")


def _am_pm(m: re.Match[str]) -> str:
    end = " " if not m.group(2) or not _period_kept(m.string, m.end(), True) else ". "
    return f" {m.group(1).lower()} m{end}"


# --------------------------------------------------------------------------------------------------- money

_AMOUNT = r"\d[\d,]*(?:\.\d+)?"
_MONEY_SCALES = {"k": "thousand", "K": "thousand", "m": "million", "M": "million", "mn": "million",
                 "MM": "million", "b": "billion", "B": "billion", "bn": "billion"}  # fmt: skip
_MONEY_SCALE_RE = re.compile(rf"([$£€])\s?({_AMOUNT})\s?(mn|MM|bn|[kKmMbB])(?!\w)")
_CURRENCY_AFTER_RE = re.compile(r"(?<![\w.,])(\d[\d,]*(?:\.\d{1,2})?)\s?([$£€])(?![\w$£€])")
_CENTS_RE = re.compile(r"(?<![\w.,])(\d+)\s?¢")
_YEN_RE = re.compile(rf"¥\s?({_AMOUNT})")


# ------------------------------------------------------------------------------------------------- decades

_DECADE_RE = re.compile(r"(?<![\w.,'])(?:(1\d|20)|')?(\d)0'?s\b")


def _decade(m: re.Match[str]) -> str:
    century, tens = m.group(1), int(m.group(2))
    if century:
        words = year_en(int(f"{century}{tens}0")).split()
    elif tens:
        words = cardinal_en(tens * 10).split()
    else:  # "00s" without a century
        return m.group()
    last = words[-1]
    words[-1] = last[:-1] + "ies" if last.endswith("y") else last + "s"
    return f" {' '.join(words)} "


_ROUND_PLURALS = {"100": "hundreds", "1000": "thousands", "1,000": "thousands", "1000000": "millions",
                  "1,000,000": "millions"}  # fmt: skip
_ROUND_PLURAL_RE = re.compile(r"(?<![\w.,'])(1,000,000|1000000|1,000|1000|100)'?s\b")


# ------------------------------------------------------------------------------------------- signs, ranges

_RANGE_RE = re.compile(r"(?<=\d)(?:-|\s?–\s?)(?=[$£€]?\d)")
_MINUS_RE = re.compile(r"(?<![\w.,)\]])-(?=[$£€]?\.?\d)")
_PLUS_MINUS_RE = re.compile(r"±\s?")
_BY_RE = re.compile(r"(?<=\d)\s?[x×]\s?(?=\d)")  # 3x4 -> 3 by 4
_TIMES_RE = re.compile(r"(?<=\d)\s?[x×](?![\w×])")  # 3x -> 3 times


# ----------------------------------------------------------------------------------------------- fractions

_FRACTION_RE = re.compile(r"(?<![\w/.,])(?:(\d+)\s+)?(\d)/(\d{1,2})(?![\w/]|[.,]\d)")
_DENOMINATORS = {2: ("half", "halves"), 4: ("quarter", "quarters")}


def _fraction(m: re.Match[str]) -> str:
    whole, numerator, denominator = m.group(1), int(m.group(2)), int(m.group(3))
    if not 1 <= numerator < denominator <= 10:
        return m.group()
    one, many = _DENOMINATORS.get(denominator, (ordinal_en(denominator), ordinal_en(denominator) + "s"))
    spoken = f"{cardinal_en(numerator)} {one if numerator == 1 else many}"
    return f" {whole} and {spoken} " if whole else f" {spoken} "


# --------------------------------------------------------------------------------------------------- units


def _singular(plural: str) -> str:
    head, space, rest = plural.partition(" ")
    head = "foot" if head == "feet" else head[:-1] if head.endswith("s") else head
    return head + space + rest


UNITS: dict[str, tuple[str, str]] = {
    **{abbreviation: (_singular(words), words) for abbreviation, words in _UNIT_WORDS.items()},
    "°C": ("degree celsius", "degrees celsius"), "°F": ("degree fahrenheit", "degrees fahrenheit"),
    "°": ("degree", "degrees"), "mi": ("mile", "miles"), "yd": ("yard", "yards"), "mg": ("milligram", "milligrams"),
    "L": ("liter", "liters"), "h": ("hour", "hours"), "hr": ("hour", "hours"), "hrs": ("hour", "hours"),
    "min": ("minute", "minutes"), "mins": ("minute", "minutes"), "sec": ("second", "seconds"),
    "secs": ("second", "seconds"), "ms": ("millisecond", "milliseconds"), "Hz": ("hertz", "hertz"),
    "kHz": ("kilohertz", "kilohertz"), "MHz": ("megahertz", "megahertz"), "GHz": ("gigahertz", "gigahertz"),
    "KB": ("kilobyte", "kilobytes"), "kB": ("kilobyte", "kilobytes"), "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"), "TB": ("terabyte", "terabytes"), "kW": ("kilowatt", "kilowatts"),
    "kWh": ("kilowatt hour", "kilowatt hours"),
}  # fmt: skip
"""Unit abbreviations read after a number: abbreviation -> (singular, plural); case-sensitive."""
_UNIT_RE = re.compile(
    rf"(?<![\w.,])({_AMOUNT})\s?(" + "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True)) + r")(?!\w)"
)


def _unit(m: re.Match[str]) -> str:
    one, many = UNITS[m.group(2)]
    return f" {m.group(1)} {one if m.group(1) == '1' else many} "


# ------------------------------------------------------------------------------------------- abbreviations

_TITLES = {"Mr": "mister", "Mrs": "missus", "Ms": "miz", "Dr": "doctor", "Prof": "professor", "St": "saint"}
_STREETS = {"Dr": "drive", "St": "street"}
_MORE_ABBREVIATIONS = {
    "Mar.": "march", "Apr.": "april", "Jun.": "june", "Jul.": "july", "Sep.": "september", "Hon.": "honorable",
    "Col.": "colonel", "Maj.": "major", "Ln.": "lane", "Ct.": "court", "Pl.": "place", "Hwy.": "highway",
    "Sq.": "square", "Apt.": "apartment", "Ste.": "suite", "Fig.": "figure", "Vol.": "volume",
}  # fmt: skip
_ALL_ABBREVIATIONS = {**_ABBREVIATIONS, **_MORE_ABBREVIATIONS}
# Abbreviations whose period ends a sentence only at the end of the text (they come before what they qualify).
_NEVER_END_SENTENCE = frozenset(
    "Mr. Mrs. Ms. Prof. Capt. Gen. Lt. Sgt. Gov. Sen. Rev. Mt. Hon. Col. Maj. e.g. i.e. vs. No. Fig. Vol. "
    "Apt. Ste. approx.".split()
)
_NEEDS_A_DATE = frozenset({"Wed.", "Sat.", "Sun."})  # else the words "wed", "sat", "sun"
_ABBREVIATION_RE = re.compile(
    r"(?<![A-Za-z])("
    + "|".join(re.escape(a) for a in sorted(_ALL_ABBREVIATIONS, key=len, reverse=True))
    + r")|(?<![\w.])(Mr|Mrs|Ms|Dr|Prof|St)(?=\s+[A-Z])"
)
_NUMBER_AFTER_RE = re.compile(r"\s*\d")
_DATE_AFTER_RE = re.compile(rf",?\s+(?:\d|the\s|(?:{'|'.join(_MONTHS)})\b|{_MONTH}\s+\d)", re.IGNORECASE)
_CAPITALISED_OR_NUMBER_RE = re.compile(r"[A-Z][\w'-]*|\d+(?:st|nd|rd|th)?")
_ADDRESS_BEFORE_RE = re.compile(r"\d\w*\s+(?:[A-Z][\w'-]*\s+)*$")


def _is_street(text: str, start: int, end: int) -> bool:
    """``Dr``/``St`` at ``text[start:end]`` names a street (``Elm Dr.``, ``5th St.``), not a title (``Dr. Smith``)."""
    before = text[max(0, start - 80) : start]
    previous = before.split()[-1] if before.strip() else ""
    after_name = _CAPITALISED_OR_NUMBER_RE.fullmatch(previous) is not None
    before_name = re.match(r"\s+[A-Z]", text[end : end + 10]) is not None
    if after_name and before_name:  # "12 Elm Dr. Then ..." vs "Yesterday Dr. Smith ..."
        return _ADDRESS_BEFORE_RE.search(before) is not None
    return after_name


def _abbreviation(m: re.Match[str]) -> str:
    text, written = m.string, m.group(1) or m.group(2)
    key = written.rstrip(".")
    if key in _STREETS:
        street = _is_street(text, m.start(), m.end())
        word, can_end = (_STREETS[key], True) if street else (_TITLES[key], False)
    elif m.group(2):
        word, can_end = _TITLES[key], False
    else:
        if written == "No." and not _NUMBER_AFTER_RE.match(text, m.end()):
            return written  # the word "no" and a pause
        if written in _NEEDS_A_DATE and not _DATE_AFTER_RE.match(text, m.end()):
            return written
        word, can_end = _ALL_ABBREVIATIONS[written], written not in _NEVER_END_SENTENCE
    if written.endswith(".") and _period_kept(text, m.end(), can_end):
        return f" {word}. "
    return f" {word} "


_ACRONYM_RE = re.compile(r"(?<![\w.])((?:[A-Za-z]\.){2,})")
_INITIAL_RE = re.compile(r"(?<![\w.'])([A-Z])\.(?=\s+[A-Z])")


def _acronym(m: re.Match[str]) -> str:
    letters = " ".join(m.group(1).replace(".", "").lower())
    return f" {letters}. " if _TEXT_END_RE.match(m.string, m.end()) else f" {letters} "


# ------------------------------------------------------------------------------------------ roman numerals

_ROMAN_RE = re.compile(r"\b([A-Z][a-z]+)\s+(X{0,3}(?:IX|IV|V?I{0,3}))(?![\w'])")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10}
_ROMAN_CARDINAL_AFTER = frozenset(
    "War Part Chapter Volume Vol Act Book Phase Type Class Level Stage Season Episode Section Article Appendix "
    "Round Schedule Title Grade Apollo Rocky".split()
)


def _roman(m: re.Match[str]) -> str:
    name, numeral = m.groups()
    if not numeral:
        return m.group()
    values = [_ROMAN_VALUES[c] for c in numeral]
    value = sum(-v if v < w else v for v, w in zip(values, [*values[1:], 0]))
    if name in _ROMAN_CARDINAL_AFTER:
        return f"{name} {cardinal_en(value)}"
    if numeral in ("I", "X"):  # "Then I", "Malcolm X"
        return m.group()
    return f"{name} the {ordinal_en(value)}"


# ------------------------------------------------------------------------------------------- digit strings

_DIGIT_STRING_RE = re.compile(r"(?<![\w.,:])(\d{10,}|0\d+)(?![\w:]|[.,]\d)")
_LEADING_POINT_RE = re.compile(r"(?<![\w.])\.(?=\d)")
_LETTER_DIGIT_RE = re.compile(r"(?<=[A-Za-z])(?=\d)")
_DASH_PAUSE_RE = re.compile(r"\s+[-–]+\s+|\s*(?:—|--+)\s*|\s*[(\[{)\]}]\s*")

_REWRITES: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (_EMAIL_RE, _address),
    (_URL_RE, _address),
    (_HASHTAG_RE, lambda m: f" hashtag {_split_identifier(m.group(1))} "),
    (_HANDLE_RE, lambda m: f" at {_split_identifier(m.group(1))} "),
    (_PHONE_RE, _phone),
    (_INTERNATIONAL_PHONE_RE, _international_phone),
    (_DATE_ISO_RE, _date_iso),
    (_DATE_NUMERIC_RE, _date_numeric),
    (_DATE_MONTH_FIRST_RE, _date_month_first),
    (_DATE_DAY_FIRST_RE, _date_day_first),
    (_AM_PM_RE, _am_pm),
    (_MONEY_SCALE_RE, lambda m: f" {m.group(1)}{m.group(2)} {_MONEY_SCALES[m.group(3)]} "),
    (_CURRENCY_AFTER_RE, lambda m: f" {m.group(2)}{m.group(1)} "),
    (_CENTS_RE, lambda m: f" {m.group(1)} {'cent' if m.group(1) == '1' else 'cents'} "),
    (_YEN_RE, lambda m: f" {m.group(1)} yen "),
    (_ROUND_PLURAL_RE, lambda m: f" {_ROUND_PLURALS[m.group(1)]} "),
    (_DECADE_RE, _decade),
    (_RANGE_RE, " to "),
    (_MINUS_RE, " minus "),
    (_PLUS_MINUS_RE, " plus or minus "),
    (_BY_RE, " by "),
    (_TIMES_RE, " times "),
    (_FRACTION_RE, _fraction),
    (_UNIT_RE, _unit),
    (_ABBREVIATION_RE, _abbreviation),
    (_ACRONYM_RE, _acronym),
    (_INITIAL_RE, r"\1"),
    (_ROMAN_RE, _roman),
    (_DIGIT_STRING_RE, lambda m: f" {_digits(m.group(1))} "),
    (_LEADING_POINT_RE, "0."),
    (_LETTER_DIGIT_RE, " "),
    (_DASH_PAUSE_RE, ", "),
)

# "etc." -> "et cetera": the lowercase abbreviations, which a period after a spoken word could still spell.
_LOWERCASE_ABBREVIATIONS = {
    written[:-1]: spoken for written, spoken in _ALL_ABBREVIATIONS.items() if re.fullmatch(r"[a-z]+\.", written)
}
# A pause mark: punctuation followed by a space, a closing quote or the end (so not "3.5", "1,000", "3:30").
_PAUSE_RE = re.compile(r"[,.?!;:]+(?=[\s\"']|$)")


def _verbalize_clauses(text: str) -> str:
    clauses: list[list[str]] = []  # [words, mark]
    start = 0
    for m in _PAUSE_RE.finditer(text):
        mark = max(m.group(), key=_MARK_STRENGTH.__getitem__)
        words = verbalize_en(text[start : m.start()])
        if words and mark == ".":
            head, _, last = words.rpartition(" ")
            if last in _LOWERCASE_ABBREVIATIONS:  # left by a rewrite ("#etc."): read it as the rule would
                words = f"{head} {_LOWERCASE_ABBREVIATIONS[last]}".lstrip()
        if words:
            clauses.append([words, mark])
        elif clauses and _MARK_STRENGTH[mark] > _MARK_STRENGTH[clauses[-1][1]]:
            clauses[-1][1] = mark  # "Hi, 😀." -> "hi."
        start = m.end()
    words = verbalize_en(text[start:])
    if words:
        clauses.append([words, ""])
    return " ".join(words + mark for words, mark in clauses)


def normalize_for_tts(text: str) -> str:
    """Written English -> spoken-form words with pause marks; see the module docstring for the rules.

    Args:
        text: any text; characters with no spoken form (emoji, controls) are dropped.

    Returns:
        lowercase words and ``, . ? ! ; :`` attached to the word before them, single spaces; ``""`` when nothing
        speakable is left.

    Raises:
        TypeError: ``text`` is not a str.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize_for_tts: expected str, got {type(text).__name__}")
    text = _clean_characters(text)
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    return _verbalize_clauses(text)
