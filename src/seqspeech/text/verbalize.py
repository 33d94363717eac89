"""Verbalisation: written text -> the words a speaker says (text normalisation for TTS and for ASR labels).

``verbalize_en("Mr. Smith paid $12.50 at 5:30 pm on May 3rd, 1999.")`` gives
``"mister smith paid twelve dollars and fifty cents at five thirty p m on may third nineteen ninety nine"``.

The output alphabet is fixed: English gives lowercase ``a-z``, apostrophe and single spaces; Spanish
(:func:`verbalize_es`) adds ``áéíóúüñ``. The same function writes ASR training labels and feeds the TTS front end,
so what is synthesised is exactly what the label says.

Rules (English), applied in this order:

- money: ``$12.50`` -> ``twelve dollars and fifty cents``, ``$1`` -> ``one dollar``, ``£``/``€`` likewise;
- percent: ``15%`` / ``2.5%`` -> ``fifteen percent`` / ``two point five percent``;
- times: ``5:30`` -> ``five thirty``, ``7:05`` -> ``seven oh five``, ``9:00`` -> ``nine o'clock``;
  ``am``/``pm`` (also ``a.m.``) after a number -> ``a m`` / ``p m``;
- dates: a month name followed by a day number reads the day as an ordinal (``May 3`` -> ``may third``);
- ordinals: ``3rd`` -> ``third``, ``21st`` -> ``twenty first``;
- decimals: ``3.5`` -> ``three point five`` (digits after the point one by one);
- years: four-digit numbers 1100..2099 without a comma (``1999`` -> ``nineteen ninety nine``,
  ``2005`` -> ``two thousand five``, ``1900`` -> ``nineteen hundred``, ``1905`` -> ``nineteen oh five``);
- cardinals 0..999,999,999,999, commas allowed (``1,250`` -> ``one thousand two hundred fifty``);
- abbreviations (``Mr.``, ``Mrs.``, ``Dr.``, ``St.`` = ``saint`` before a capitalised name, else ``street``, ...);
- ``&`` -> ``and``, ``+`` -> ``plus``, ``@`` -> ``at``, hyphens and slashes -> spaces, other punctuation dropped,
  accents stripped.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "cardinal_en",
    "cardinal_es",
    "ordinal_en",
    "verbalize_en",
    "verbalize_es",
    "year_en",
]

_ONES = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
]  # fmt: skip
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES_EN = [(10**9, "billion"), (10**6, "million"), (1000, "thousand")]
MAX_CARDINAL = 10**12 - 1

_ORDINAL_WORDS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth",
    "twelve": "twelfth",
}  # fmt: skip


def _below_thousand_en(n: int) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += [_ONES[hundreds], "hundred"]
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_TENS[tens])
        if ones:
            words.append(_ONES[ones])
    elif rest or not words:
        words.append(_ONES[rest])
    return words


def cardinal_en(n: int) -> str:
    """English words of ``0 <= n <= 999,999,999,999``: ``1250`` -> ``"one thousand two hundred fifty"``."""
    if not 0 <= n <= MAX_CARDINAL:
        raise ValueError(f"cardinal_en: {n} is outside 0..{MAX_CARDINAL}")
    if n == 0:
        return "zero"
    words: list[str] = []
    for value, name in _SCALES_EN:
        if n >= value:
            count, n = divmod(n, value)
            words += [*_below_thousand_en(count), name]
    if n:
        words += _below_thousand_en(n)
    return " ".join(words)


def ordinal_en(n: int) -> str:
    """English ordinal words: ``3`` -> ``"third"``, ``21`` -> ``"twenty first"``, ``100`` -> ``"one hundredth"``."""
    words = cardinal_en(n).split()
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def year_en(n: int) -> str:
    """A year as said aloud: ``1999`` -> ``nineteen ninety nine``, ``2005`` -> ``two thousand five``,
    ``2019`` -> ``twenty nineteen``, ``1900`` -> ``nineteen hundred``, ``1905`` -> ``nineteen oh five``."""
    if n < 1000 or n > 9999:
        return cardinal_en(n)
    high, low = divmod(n, 100)
    if high % 10 == 0 and low < 10:  # 2000..2009, 1000..1009
        return cardinal_en(n)
    if low == 0:
        return f"{cardinal_en(high)} hundred"
    if low < 10:
        return f"{cardinal_en(high)} oh {_ONES[low]}"
    return f"{cardinal_en(high)} {cardinal_en(low)}"


def _digits_en(digits: str) -> str:
    return " ".join(_ONES[int(d)] for d in digits)


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def _number_en(text: str) -> str:
    """A plain number token (``1,250``, ``3.5``, ``1999``) in words."""
    if "." in text:
        whole, frac = text.split(".", 1)
        return f"{_number_en(whole) if whole else 'zero'} point {_digits_en(frac)}"
    if "," not in text and len(text) == 4 and 1100 <= int(text) <= 2099:
        return year_en(int(text))
    value = _int(text)
    if value > MAX_CARDINAL:
        return _digits_en(text.replace(",", ""))
    return cardinal_en(value)


_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
               "€": ("euro", "euros", "cent", "cents")}  # fmt: skip
_NUM = r"\d{1,3}(?:,\d{3})+|\d+"
_MONEY_RE = re.compile(rf"([$£€])\s?({_NUM})(?:\.(\d{{1,2}}))?(?:\s?(million|billion|thousand)\b)?")
_PERCENT_RE = re.compile(rf"({_NUM})(\.\d+)?\s?%")
_TIME_RE = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_AMPM_RE = re.compile(r"(?<=\d)\s*([ap])\.?\s?m\b\.?", re.IGNORECASE)
_ORDINAL_RE = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_NUMBER_RE = re.compile(rf"(?<![\w.])({_NUM})(\.\d+)?(?![\d])")
_MONTHS = ("january february march april may june july august september october november december").split()
_MONTH_DAY_RE = re.compile(rf"\b({'|'.join(m.capitalize() for m in _MONTHS)})\s+(\d{{1,2}})(?![\w:]|\.\d)")
_SAINT_STREET_RE = re.compile(r"\bSt\.(?=\s+[A-Z])")
_UNIT_WORDS = {
    "km": "kilometers", "kg": "kilograms", "cm": "centimeters", "mm": "millimeters", "m": "meters",
    "g": "grams", "mph": "miles per hour", "kph": "kilometers per hour", "lb": "pounds", "lbs": "pounds",
    "ft": "feet", "oz": "ounces", "ml": "milliliters",
}  # fmt: skip
_UNIT_RE = re.compile(rf"(?<=\d)\s?({'|'.join(sorted(_UNIT_WORDS, key=len, reverse=True))})\b")

# Abbreviations with a period (matched case-sensitively on the written form, before lowercasing).
_ABBREVIATIONS = {
    "Mr.": "mister", "Mrs.": "missus", "Ms.": "miz", "Dr.": "doctor", "Prof.": "professor", "St.": "street",
    "Jr.": "junior", "Sr.": "senior", "Ave.": "avenue", "Rd.": "road", "Blvd.": "boulevard", "Mt.": "mount",
    "Capt.": "captain", "Gen.": "general", "Lt.": "lieutenant", "Sgt.": "sergeant", "Gov.": "governor",
    "Sen.": "senator", "Rev.": "reverend", "Co.": "company", "Inc.": "incorporated", "Ltd.": "limited",
    "Dept.": "department", "Univ.": "university", "vs.": "versus", "etc.": "et cetera", "e.g.": "for example",
    "i.e.": "that is", "approx.": "approximately", "Jan.": "january", "Feb.": "february", "Aug.": "august",
    "Sept.": "september", "Oct.": "october", "Nov.": "november", "Dec.": "december", "Mon.": "monday",
    "Tue.": "tuesday", "Wed.": "wednesday", "Thu.": "thursday", "Fri.": "friday", "Sat.": "saturday",
    "Sun.": "sunday", "No.": "number",
}  # fmt: skip
_ABBREV_RE = re.compile(
    r"(?<![\w.])(" + "|".join(re.escape(a) for a in sorted(_ABBREVIATIONS, key=len, reverse=True)) + r")"
)
_SYMBOLS = {"&": " and ", "+": " plus ", "@": " at ", "=": " equals ", "#": " number "}
_QUOTES = {"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u2013": "-", "\u2014": "-"}


def _money_en(m: re.Match[str]) -> str:
    one, many, sub_one, sub_many = _CURRENCIES[m.group(1)]
    whole, cents, scale = _int(m.group(2)), m.group(3), m.group(4)
    if scale:  # "$3.5 million" -> "three point five million dollars"
        amount = _number_en(m.group(2) + (f".{cents}" if cents else ""))
        return f" {amount} {scale} {many} "
    cents_value = int(cents.ljust(2, "0")) if cents else 0
    parts = []
    if whole or not cents_value:
        parts.append(f"{cardinal_en(whole)} {one if whole == 1 else many}")
    if cents_value:
        parts.append(f"{cardinal_en(cents_value)} {sub_one if cents_value == 1 else sub_many}")
    return " " + " and ".join(parts) + " "


def _time_en(m: re.Match[str]) -> str:
    hour, minute = int(m.group(1)), int(m.group(2))
    if hour > 24 or minute > 59:  # not a time (a score "3:45"?): read both numbers
        return f" {cardinal_en(hour)} {cardinal_en(minute)} "
    if minute == 0:
        return f" {cardinal_en(hour)} o'clock "
    if minute < 10:
        return f" {cardinal_en(hour)} oh {_ONES[minute]} "
    return f" {cardinal_en(hour)} {cardinal_en(minute)} "


def _clean(text: str, keep: str) -> str:
    """Lowercase, strip accents outside ``keep``, drop everything but letters, apostrophes and spaces."""
    out = []
    for ch in text.lower():
        if ch in keep or "a" <= ch <= "z" or ch in " '":
            out.append(ch)
            continue
        base = unicodedata.normalize("NFKD", ch)[0]
        out.append(base if "a" <= base <= "z" else " ")
    words = []
    for word in "".join(out).split():
        word = word.strip("'")
        if word:
            words.append(word)
    return " ".join(words)


def _prepare(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"verbalize: expected str, got {type(text).__name__}")
    text = unicodedata.normalize("NFC", text)
    for a, b in _QUOTES.items():
        text = text.replace(a, b)
    return text


def verbalize_en(text: str) -> str:
    """Written English -> spoken form (lowercase ``a-z``, ``'`` and single spaces); see the module docstring.

    >>> verbalize_en("Dr. Lee paid $1 for 3.5 kg at 7:05 pm on May 3rd.")
    "doctor lee paid one dollar for three point five kilograms at seven oh five p m on may third"
    """
    text = _prepare(text)
    text = _MONEY_RE.sub(_money_en, text)
    text = _PERCENT_RE.sub(lambda m: f" {_number_en(m.group(1) + (m.group(2) or ''))} percent ", text)
    text = _AMPM_RE.sub(lambda m: f" {m.group(1).lower()} m ", text)
    text = _TIME_RE.sub(_time_en, text)
    text = _MONTH_DAY_RE.sub(lambda m: f"{m.group(1)} {ordinal_en(int(m.group(2)))}", text)
    text = _ORDINAL_RE.sub(lambda m: f" {ordinal_en(int(m.group(1)))} ", text)
    text = _UNIT_RE.sub(lambda m: f" {_UNIT_WORDS[m.group(1)]}", text)
    text = _SAINT_STREET_RE.sub(" saint", text)
    text = _ABBREV_RE.sub(lambda m: f" {_ABBREVIATIONS[m.group(1)]} ", text)
    text = _NUMBER_RE.sub(lambda m: f" {_number_en(m.group(1) + (m.group(2) or ''))} ", text)
    for symbol, word in _SYMBOLS.items():
        text = text.replace(symbol, word)
    return _clean(text, keep="")


# ---------------------------------------------------------------------------------------------------------
# Spanish

_ES_ONES = [
    "cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve", "diez", "once", "doce",
    "trece", "catorce", "quince", "dieciséis", "diecisiete", "dieciocho", "diecinueve", "veinte", "veintiuno",
    "veintidós", "veintitrés", "veinticuatro", "veinticinco", "veintiséis", "veintisiete", "veintiocho",
    "veintinueve",
]  # fmt: skip
_ES_TENS = ["", "", "", "treinta", "cuarenta", "cincuenta", "sesenta", "setenta", "ochenta", "noventa"]
_ES_HUNDREDS = [
    "", "ciento", "doscientos", "trescientos", "cuatrocientos", "quinientos", "seiscientos", "setecientos",
    "ochocientos", "novecientos",
]  # fmt: skip
_ES_LETTERS = "áéíóúüñ"


def _below_thousand_es(n: int) -> list[str]:
    if n == 100:
        return ["cien"]
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words.append(_ES_HUNDREDS[hundreds])
    if rest >= 30:
        tens, ones = divmod(rest, 10)
        words.append(_ES_TENS[tens])
        if ones:
            words += ["y", _ES_ONES[ones]]
    elif rest or not words:
        words.append(_ES_ONES[rest])
    return words


def cardinal_es(n: int) -> str:
    """Spanish words of ``0 <= n <= 999,999,999,999`` (masculine, pronominal ``uno``): ``2021`` ->
    ``"dos mil veintiuno"``, ``1000000`` -> ``"un millón"``."""
    if not 0 <= n <= MAX_CARDINAL:
        raise ValueError(f"cardinal_es: {n} is outside 0..{MAX_CARDINAL}")
    if n == 0:
        return "cero"
    words: list[str] = []
    millions, n = divmod(n, 10**6)
    if millions:
        words += ["un", "millón"] if millions == 1 else [*_apocope(_thousands_es(millions)), "millones"]
    if n:
        words += _thousands_es(n)
    return " ".join(words)


def _thousands_es(n: int) -> list[str]:
    """Words of ``1 <= n <= 999,999`` (``mil``, not ``un mil``)."""
    words: list[str] = []
    thousands, rest = divmod(n, 1000)
    if thousands == 1:
        words.append("mil")
    elif thousands:
        words += [*_apocope(_below_thousand_es(thousands)), "mil"]
    if rest:
        words += _below_thousand_es(rest)
    return words


def _apocope(words: list[str]) -> list[str]:
    """``uno`` -> ``un``, ``veintiuno`` -> ``veintiún`` before a noun or a scale word."""
    if words and words[-1] == "uno":
        return [*words[:-1], "un"]
    if words and words[-1] == "veintiuno":
        return [*words[:-1], "veintiún"]
    return words


def _number_es(text: str) -> str:
    if "," in text:  # Spanish decimal comma: "3,5" -> "tres coma cinco"
        whole, frac = text.split(",", 1)
        return f"{_number_es(whole)} coma {' '.join(_ES_ONES[int(d)] for d in frac)}"
    value = int(text.replace(".", ""))
    if value > MAX_CARDINAL:
        return " ".join(_ES_ONES[int(d)] for d in text if d.isdigit())
    return cardinal_es(value)


_ES_NUMBER_RE = re.compile(r"(?<![\w])(\d{1,3}(?:\.\d{3})+|\d+)(,\d+)?(?!\d)")
_ES_PERCENT_RE = re.compile(r"(\d+(?:\.\d{3})*(?:,\d+)?)\s?%")
_ES_TIME_RE = re.compile(r"\b(\d{1,2}):(\d{2})\b")


def _time_es(m: re.Match[str]) -> str:
    hour, minute = int(m.group(1)), int(m.group(2))
    hour_words = "una" if hour in (1, 13) else cardinal_es(hour)
    if minute == 0:
        return f" {hour_words} en punto "
    if minute == 30:
        return f" {hour_words} y media "
    if minute == 15:
        return f" {hour_words} y cuarto "
    return f" {hour_words} y {cardinal_es(minute)} "


def verbalize_es(text: str) -> str:
    """Written Spanish -> spoken form: lowercase letters (``a-z`` plus ``áéíóúüñ``), ``'`` and single spaces.

    Numbers are read as masculine cardinals (``21`` -> ``veintiuno``; ``.`` groups thousands, ``,`` is the
    decimal mark), times ``10:30`` -> ``diez y media``, ``%`` -> ``por ciento``, ``€``/``$`` -> ``euros``/``dólares``;
    ``¿¡`` and other punctuation are dropped.
    """
    text = _prepare(text)
    text = _ES_TIME_RE.sub(_time_es, text)
    text = _ES_PERCENT_RE.sub(lambda m: f" {_number_es(m.group(1))} por ciento ", text)
    text = re.sub(r"(\d+(?:[.,]\d+)*)\s?€", lambda m: f" {_number_es(m.group(1))} euros ", text)
    text = re.sub(r"\$\s?(\d+(?:[.,]\d+)*)", lambda m: f" {_number_es(m.group(1))} dólares ", text)
    text = _ES_NUMBER_RE.sub(lambda m: f" {_number_es(m.group(1) + (m.group(2) or ''))} ", text)
    text = text.replace("&", " y ")
    return _clean(text, keep=_ES_LETTERS)
