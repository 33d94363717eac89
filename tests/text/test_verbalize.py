"""Verbalisation: written text -> spoken form (English and Spanish)."""

from __future__ import annotations

import re

import pytest

from seqspeech.text.verbalize import cardinal_en, cardinal_es, ordinal_en, verbalize_en, verbalize_es, year_en

SPOKEN_EN = re.compile(r"^[a-z']+( [a-z']+)*$")


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("1,250 people", "one thousand two hundred fifty people"),
        ("0", "zero"),
        ("999,999,999", "nine hundred ninety nine million nine hundred ninety nine thousand nine hundred ninety nine"),
        ("It is 3.5 meters.", "it is three point five meters"),
        ("He came 3rd.", "he came third"),
        ("the 21st and the 12th", "the twenty first and the twelfth"),
        ("In 1999 and 2005.", "in nineteen ninety nine and two thousand five"),
        ("1900, 1905, 2019, 1100 and 2099", "nineteen hundred nineteen oh five twenty nineteen eleven hundred and twenty ninety nine"),
        ("2100 people", "two thousand one hundred people"),
        ("at 5:30", "at five thirty"),
        ("at 7:05 pm", "at seven oh five p m"),
        ("at 9 a.m. sharp", "at nine a m sharp"),
        ("at 10:00", "at ten o'clock"),
        ("I am here", "i am here"),
        ("It costs $12.50.", "it costs twelve dollars and fifty cents"),
        ("$1", "one dollar"),
        ("$0.01", "one cent"),
        ("$3.5 million", "three point five million dollars"),
        ("£2,000", "two thousand pounds"),
        ("45% of them", "forty five percent of them"),
        ("2.5%", "two point five percent"),
        ("Mr. Smith met Mrs. Lee and Dr. Patel.", "mister smith met missus lee and doctor patel"),
        ("St. Louis is on 5th St. now", "saint louis is on fifth street now"),
        ("on May 3", "on may third"),
        ("on May 3rd, 1999", "on may third nineteen ninety nine"),
        ("a well-known café’s menu: eggs & ham!", "a well known cafe's menu eggs and ham"),
        ('"Hello," she said. \'Yes\'?', "hello she said yes"),
        ("It weighs 4 kg.", "it weighs four kilograms"),
        ("Don't stop", "don't stop"),
    ],
)
def test_verbalize_en(written: str, spoken: str) -> None:
    assert verbalize_en(written) == spoken
    assert SPOKEN_EN.match(spoken)


def test_number_helpers() -> None:
    assert cardinal_en(101) == "one hundred one"
    assert cardinal_en(1_000_000) == "one million"
    assert ordinal_en(100) == "one hundredth"
    assert ordinal_en(40) == "fortieth"
    assert year_en(2000) == "two thousand"
    assert year_en(1066) == "ten sixty six"
    with pytest.raises(ValueError):
        cardinal_en(-1)


def test_verbalize_en_rejects_non_text() -> None:
    with pytest.raises(TypeError):
        verbalize_en(12)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (0, "cero"), (1, "uno"), (16, "dieciséis"), (21, "veintiuno"), (22, "veintidós"), (35, "treinta y cinco"),
        (100, "cien"), (101, "ciento uno"), (115, "ciento quince"), (500, "quinientos"), (1000, "mil"),
        (2021, "dos mil veintiuno"), (9999, "nueve mil novecientos noventa y nueve"), (21000, "veintiún mil"),
        (1_000_000, "un millón"), (3_000_000, "tres millones"),
    ],
)  # fmt: skip
def test_cardinal_es(number: int, words: str) -> None:
    assert cardinal_es(number) == words


def test_verbalize_es() -> None:
    assert verbalize_es("¿Tienes 25 libros?") == "tienes veinticinco libros"
    assert verbalize_es("Son las 10:30.") == "son las diez y media"
    assert verbalize_es("Cuesta 1.500 €") == "cuesta mil quinientos euros"
    assert verbalize_es("El 45% de los niños") == "el cuarenta y cinco por ciento de los niños"
    assert verbalize_es("MAÑANA, ¡Sí!") == "mañana sí"
