"""normalize_for_tts: written English -> spoken-form words with pause marks (expected strings written by hand)."""

from __future__ import annotations

import re

import pytest

from seqspeech.text.tts_normalize import PAUSE_MARKS, normalize_for_tts

# Words of a-z and apostrophes, single spaces, a pause mark only right after a word.
SPOKEN_WITH_PAUSES = re.compile(r"^$|^[a-z']+[,.?!;:]?( [a-z']+[,.?!;:]?)*$")

CASES = [
    # cardinals, signs, ordinals, decimals
    ("I have 3 apples.", "i have three apples."),
    ("1,250 people", "one thousand two hundred fifty people"),
    ("It is -5 outside", "it is minus five outside"),
    ("-3.5%", "minus three point five percent"),
    ("±2 degrees", "plus or minus two degrees"),
    ("The 1st and 22nd place", "the first and twenty second place"),
    ("Pi is 3.14", "pi is three point one four"),
    ("The ratio was 3.14.", "the ratio was three point one four."),
    ("Version 2.0", "version two point zero"),
    ("a .5 chance", "a zero point five chance"),
    # money and percent
    ("It costs $100.", "it costs one hundred dollars."),
    ("$3.50 please", "three dollars and fifty cents please"),
    ("£5", "five pounds"),
    ("They raised €2m", "they raised two million euros"),
    ("a $1.5bn deal", "a one point five billion dollars deal"),
    ("5€", "five euros"),
    ("50¢", "fifty cents"),
    ("50% off", "fifty percent off"),
    ("12.5% growth", "twelve point five percent growth"),
    # dates
    ("Born March 3, 2021.", "born march third twenty twenty one."),
    ("Due 3/14/2021", "due march fourteenth twenty twenty one"),
    ("Due 2021-03-14", "due march fourteenth twenty twenty one"),
    ("On 14/03/2021", "on march fourteenth twenty twenty one"),
    ("On 3 March 2021", "on the third of march twenty twenty one"),
    ("the 3rd of March", "the third of march"),
    ("Sun. March 3", "sunday march third"),
    # times
    ("Meet at 3:30 pm", "meet at three thirty p m"),
    ("Meet at 15:45", "meet at fifteen forty five"),
    ("It's 12:00", "it's twelve o'clock"),
    ("Leave at 9 a.m. today", "leave at nine a m today"),
    ("We left at 5 p.m. Then we ate.", "we left at five p m. then we ate."),
    # years and decades
    ("in 1999", "in nineteen ninety nine"),
    ("in 2005", "in two thousand five"),
    ("the 2010s", "the twenty tens"),
    ("the 1990s", "the nineteen nineties"),
    ("the '80s", "the eighties"),
    ("100s of people", "hundreds of people"),
    ("a 3x4 grid, 2x faster", "a three by four grid, two times faster"),
    # units
    ("5 km", "five kilometers"),
    ("1 km", "one kilometer"),
    ("10 kg", "ten kilograms"),
    ("3 ft", "three feet"),
    ("1 ft", "one foot"),
    ("60 mph", "sixty miles per hour"),
    ("20°C", "twenty degrees celsius"),
    ("It was 1°F", "it was one degree fahrenheit"),
    ("5 GB of RAM", "five gigabytes of ram"),
    # abbreviations by context
    ("Dr. Smith is here", "doctor smith is here"),
    ("I live on Elm Dr.", "i live on elm drive."),
    ("They live at 12 Elm Dr. Then they left.", "they live at twelve elm drive. then they left."),
    ("Yesterday, Dr. Smith called.", "yesterday, doctor smith called."),
    ("St. John", "saint john"),
    ("Main St. is busy", "main street is busy"),
    ("Mr. and Mrs. Smith", "mister and missus smith"),
    ("Ms. Jones and Prof. Lee", "miz jones and professor lee"),
    ("Apples, pears, etc.", "apples, pears, et cetera."),
    ("fruit, e.g., apples", "fruit, for example, apples"),
    ("cats vs. dogs", "cats versus dogs"),
    ("No. 5 is mine", "number five is mine"),
    ("No. I won't.", "no. i won't."),
    ("I saw the Sun. It was hot.", "i saw the sun. it was hot."),
    ("J. K. Rowling wrote it.", "j k rowling wrote it."),
    ("the U.S.A.", "the u s a."),
    # e-mails, URLs, social media, symbols
    ("jane.doe@example.com", "jane dot doe at example dot com"),
    (
        "Visit https://www.example.org/a today",
        "visit h t t p s colon slash slash w w w dot example dot org slash a today",
    ),
    ("See example.com.", "see example dot com."),
    ("Tom & Jerry", "tom and jerry"),
    ("#ThrowbackThursday", "hashtag throwback thursday"),
    ("Follow @jane_doe", "follow at jane doe"),
    # ranges, phone numbers, digit strings, fractions
    ("pages 1-3", "pages one to three"),
    ("$5-$10", "five dollars to ten dollars"),
    ("Call (555) 123-4567", "call five five five, one two three, four five six seven"),
    ("Call +1 555.123.4567", "call plus one, five five five, one two three, four five six seven"),
    ("Agent 007", "agent zero zero seven"),
    ("MP3 player", "mp three player"),
    ("1/2 cup", "one half cup"),
    ("2½ cups", "two and one half cups"),
    ("3/4 of them", "three quarters of them"),
    # roman numerals
    ("Henry VIII", "henry the eighth"),
    ("Louis XIV", "louis the fourteenth"),
    ("World War II", "world war two"),
    # pauses, emoji, control characters, whitespace
    ("He said: yes; then left", "he said: yes; then left"),
    ("Really?", "really?"),
    ("Wait... what?!", "wait. what?"),
    ("the end — or not", "the end, or not"),
    ("First paragraph\n\nSecond one", "first paragraph. second one"),
    ("Hello 😀 world", "hello world"),
    ("Hi\x00 there\u200b!", "hi there!"),
    ("  lots   of\t\tspace  ", "lots of space"),
    ("😀😀", ""),
    ("?!...", ""),
    ("", ""),
]


@pytest.mark.parametrize(("written", "spoken"), CASES)
def test_normalize_for_tts(written: str, spoken: str) -> None:
    assert normalize_for_tts(written) == spoken
    assert SPOKEN_WITH_PAUSES.match(spoken), "a hand-written expectation breaks the output format"


@pytest.mark.parametrize("spoken", sorted({spoken for _, spoken in CASES}))
def test_normalisation_is_idempotent(spoken: str) -> None:
    assert normalize_for_tts(spoken) == spoken


def test_output_alphabet_on_messy_text() -> None:
    messy = (
        "«Ünïcödé» café—naïve… ¿Qué? 🎉🎉 \x07\x1b[31m red \u2028 line; Σ≠∞ ™ © [note] (aside) {x} <tag> ~`^|\\ "
        "100 000 m² x² ½ ⅓ §4 ¶ † ‰ 3×4 10/10 1:2 a/b 2021-13-45 99/99/9999 €€ $$ ## @@ 5..6 ,,, ;; ::"
    )
    out = normalize_for_tts(messy)
    assert SPOKEN_WITH_PAUSES.match(out), out
    assert "cafe" in out and "naive" in out


def test_pause_marks_are_the_six() -> None:
    assert PAUSE_MARKS == (",", ".", "?", "!", ";", ":")


def test_rejects_non_text() -> None:
    with pytest.raises(TypeError):
        normalize_for_tts(12)  # type: ignore[arg-type]
