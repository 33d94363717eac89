"""Text normalisers, checked against openai-whisper's where the two are meant to agree."""

from __future__ import annotations

import pytest

from seqspeech.text.normalize import BasicTextNormalizer, EnglishTextNormalizer

whisper_normalizers = pytest.importorskip("whisper.normalizers")

english = EnglishTextNormalizer()
basic = BasicTextNormalizer()

# Sentences on which ours and openai-whisper's EnglishTextNormalizer give the same words.
AGREE = [
    "Hello, World!",
    "I won't go; you can't make me.",
    'He said, "It\'s twenty twenty four."',
    "One hundred and five people came.",
    "We met on the twenty first of May.",
    "It was the first time.",
    "She's been there since nineteen ninety nine.",
    "There were two thousand three hundred and forty five votes.",
    "Um, I think, uh, that's right.",
    "The café was naïve [laughter] and <noise> quiet.",
    "Three point one four is pi.",
    "I'm gonna wanna see y'all.",
    "They'd done it; we'd been there.",
    "My favourite theatre is in the centre.",
    "Dr. Jones and St. Paul.",
    "He's got forty-two apples.",
    "Call me at five five five one two three four.",
    "A hundred men and a thousand women.",
    "The 1990s were great.",
    "Seventeen million people.",
    "Zero is a number.",
    "Let's organise the programme!",
    "The eleventh hour.",
    "It was 10am.",
    "twenty three thousand and one",
    "One.",
    "He finished second.",
    "1.5 million",
    "nineteen oh five",
    "rock 'n' roll",
    "Four hundredth anniversary.",
    "In 2024, 3 people (approximately) left.",
    "Wait — what?!",
    "It's 1,000,000 miles, isn't it?",
    "The QUICK brown fox.   Jumped!",
]

# Where ours intentionally differs (see seqspeech.text.normalize's docstring): input -> our output.
DIFFER = {
    "It costs five dollars.": "it costs 5 dollars",  # whisper: "$5"
    "It costs $5.": "it costs 5 dollars",  # whisper: "$5"
    "$20 million": "20000000 dollars",  # whisper: "$20000000"
    "Up 5% today": "up 5 percent today",  # whisper: "5%"
    "five percent": "5 percent",  # whisper: "5%"
    "It's one o'clock.": "it is one o'clock",  # whisper: "it is 10 clock"
    "Oh my god": "oh my god",  # whisper: "0 my god"
    "the ninth": "the 9th",  # whisper does not know "ninth"
    "it's one point five": "it is 1.5",  # whisper: "one.5"
    "it’s fine": "it is fine",  # whisper: "it s fine"
}


@pytest.mark.parametrize("text", AGREE)
def test_agrees_with_whisper(text):
    assert english(text).split() == whisper_normalizers.EnglishTextNormalizer()(text).split()


@pytest.mark.parametrize(("text", "expected"), DIFFER.items())
def test_intentional_differences(text, expected):
    assert english(text) == expected
    assert whisper_normalizers.EnglishTextNormalizer()(text).split() != expected.split()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("twenty one", "21"),
        ("one hundred and five", "105"),
        ("two million three hundred thousand and twelve", "2300012"),
        ("nine hundred ninety nine thousand nine hundred ninety nine", "999999"),
        ("a thousand", "a 1000"),
        ("twenty first", "21st"),
        ("the third and the twelfth", "the 3rd and the 12th"),
        ("ninety ninth", "99th"),
        ("one hundred and first", "101st"),
        ("eleventh twelfth thirteenth", "11th 12th 13th"),
        ("two point five million", "2500000"),
        ("one", "one"),
        ("one and two", "one and 2"),
        ("twenty twenty", "2020"),
        ("nineteen hundred", "1900"),
        ("and", "and"),
        ("hundreds of people", "hundreds of people"),
        ("point five", "point 5"),
    ],
)
def test_numbers(text, expected):
    assert english(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Rock'n'Roll isn't dead", "rock'n'roll is not dead"),
        ("'quoted' words", "quoted words"),
        ("the Smiths' house", "the smiths house"),
        ("Mr. and Mrs. Grey's neighbour", "mister and missus gray is neighbor"),
        ("Ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ", "full width abc"),
        ("", ""),
        ("[NOISE] (cough)", ""),
    ],
)
def test_english_details(text, expected):
    assert english(text) == expected


@pytest.mark.parametrize("text", [*AGREE, *DIFFER])
def test_english_is_idempotent(text):
    once = english(text)
    assert english(once) == once


@pytest.mark.parametrize(
    "text",
    [
        "Grüß Gott, wie geht's?",
        "東京は日本の首都です。",
        "Ça va? [rire] (oui) Très bien!",
        "Привет — мир!",
        "¿Qué tal? ¡Bien!",
    ],
)
def test_basic_agrees_with_whisper(text):
    assert basic(text).split() == whisper_normalizers.BasicTextNormalizer()(text).split()


def test_basic_keeps_combining_marks():
    # whisper's BasicTextNormalizer splits these words at every vowel sign
    assert basic("नमस्ते दुनिया!") == "नमस्ते दुनिया"
    assert basic("  Hello,\tWORLD…  ") == "hello world"
