"""Synthetic speech corpora: generated sentences spoken by open synthesizers (espeak-ng, flite).

Two parts:

- :func:`generate_sentences` writes distinct, reproducible English sentences in written form (digits, ``$``,
  dates, times, names, places) from templates over the word lists of
  :mod:`~seqspeech.data.corpora.synth_lexicon`; :func:`~seqspeech.text.verbalize.verbalize_en` gives the spoken
  form that is synthesised and used as the label.
- :func:`build_synth_corpus` speaks them with many voices into ``out_dir/wavs/<split>/<id>.wav`` (16 kHz mono
  16-bit) and writes JSONL manifests (:mod:`seqspeech.data.manifest`):

  ============================  =====================  ==========================================
  split                         sentences              voices
  ============================  =====================  ==========================================
  ``train``                     training sentences     training voices (random rate and pitch)
  ``dev``                       dev sentences          training voices
  ``test``                      test sentences         training voices
  ``test_voices``               test sentences         held-out espeak-ng voices (never trained on)
  ``test_eval_voices``          test sentences         flite ``rms`` and ``awb`` (evaluation only)
  ============================  =====================  ==========================================

  The build is parallel, resumable (existing readable WAVs are kept; ``corpus.json`` pins the arguments) and
  reproducible (same seed: same sentences, voices and splits).

Build an English training corpus::

    seqspeech corpus synth data/synth_en --language en --sentences 6000 --dev 200 --test 200 --seed 0
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ConfigError, SeqSpeechError
from ...fileio import write_atomic
from ...text.verbalize import verbalize_en, verbalize_es
from ..manifest import Utterance, write_manifest
from ..synth import EVAL_ONLY_VOICES, synthesize_wav, wav_duration
from . import synth_lexicon as lex

__all__ = [
    "DEFAULT_HELDOUT_VOICES",
    "ENGLISH_VOICES",
    "SPANISH_VOICES",
    "Voice",
    "build_synth_corpus",
    "generate_sentences",
    "training_voices",
]

# ---------------------------------------------------------------------------------------------------------
# Sentence generator

MIN_WORDS = 4  # spoken words per sentence
MAX_WORDS = 20  # keeps audio under ~10 s at the slowest espeak rate (130 words per minute)

_MONTHS = ("January February March April May June July August September October November December").split()
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_SMALL_NUMBER_WORDS = "two three four five six seven eight nine ten eleven twelve".split()
_TITLES = ("Mr.", "Mrs.", "Ms.", "Dr.", "Professor", "Captain", "Uncle", "Aunt")
_PRONOUNS = (("I", False), ("we", False), ("you", False), ("they", False), ("he", True), ("she", True))
_WEATHER = ("sunny", "cloudy", "rainy", "windy", "foggy", "snowy", "stormy", "humid", "cold", "hot", "warm",
            "freezing", "mild", "wet", "dry")  # fmt: skip

Rng = random.Random


def _pick(rng: Rng, items: Sequence[str]) -> str:
    return items[rng.randrange(len(items))]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _person(rng: Rng) -> str:
    """A third-person singular noun phrase naming a person."""
    r = rng.random()
    if r < 0.35:
        return _pick(rng, lex.FIRST_NAMES)
    if r < 0.45:
        return f"{_pick(rng, lex.FIRST_NAMES)} {_pick(rng, lex.SURNAMES)}"
    if r < 0.58:
        return f"{_pick(rng, _TITLES)} {_pick(rng, lex.SURNAMES)}"
    if r < 0.70:
        return f"{_pick(rng, ('my', 'your', 'our', 'their', 'his', 'her'))} {_pick(rng, lex.RELATIVES)}"
    if r < 0.80:
        return f"{_pick(rng, lex.FIRST_NAMES)}'s {_pick(rng, lex.RELATIVES)}"
    if r < 0.92:
        return f"the {_pick(rng, lex.PROFESSIONS)}"
    return f"the {_pick(rng, lex.PERSON_ADJECTIVES)} {_pick(rng, lex.PROFESSIONS)}"


def _subject(rng: Rng) -> tuple[str, bool]:
    """``(subject, is_third_singular)``."""
    if rng.random() < 0.3:
        return _PRONOUNS[rng.randrange(len(_PRONOUNS))]
    return _person(rng), True


def _be(subject: str, third: bool, past: bool = False) -> str:
    if past:
        return "was" if third or subject == "I" else "were"
    return "am" if subject == "I" else "is" if third else "are"


def _present(verb: str, third: bool) -> str:
    forms = lex.verb_forms(verb)
    return forms["third"] if third else forms["base"]


def _thing(rng: Rng, *, plural_ok: bool = True) -> str:
    """A noun phrase for a thing: ``the old map``, ``a red umbrella``, ``three wooden boxes``."""
    noun = _pick(rng, lex.OBJECTS)
    adj = _pick(rng, lex.ADJECTIVES) if rng.random() < 0.55 else None
    head = f"{adj} {noun}" if adj else noun
    r = rng.random()
    if plural_ok and r < 0.15:
        count = _pick(rng, _SMALL_NUMBER_WORDS) if rng.random() < 0.5 else str(rng.randint(2, 60))
        return f"{count} {adj + ' ' if adj else ''}{lex.plural(noun)}"
    if plural_ok and r < 0.25:
        return f"{_pick(rng, ('the', 'some', 'these', 'those', 'my', 'her'))} {adj + ' ' if adj else ''}{lex.plural(noun)}"
    if r < 0.55:
        return f"the {head}"
    if r < 0.75:
        return f"{lex.article(head)} {head}"
    return f"{_pick(rng, ('my', 'your', 'his', 'her', 'our', 'their', 'this', 'that'))} {head}"


def _building(rng: Rng) -> str:
    return "the " + _pick(rng, lex.BUILDINGS)


def _place(rng: Rng) -> str:
    r = rng.random()
    if r < 0.55:
        prep = _pick(rng, ("at", "near", "behind", "outside", "inside", "next to", "in front of", "across from"))
        return f"{prep} {_building(rng)}"
    if r < 0.85:
        return f"in {_pick(rng, lex.CITIES)}"
    return f"in {_pick(rng, lex.COUNTRIES)}"


def _clock(rng: Rng) -> str:
    hour = rng.randint(1, 12)
    r = rng.random()
    if r < 0.2:
        return f"{hour} o'clock"
    minute = rng.choice((0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55)) if r < 0.7 else rng.randint(0, 59)
    time = f"{hour}:{minute:02d}"
    return f"{time} {_pick(rng, ('am', 'pm', 'a.m.', 'p.m.'))}" if rng.random() < 0.5 else time


def _date(rng: Rng, year: bool = False) -> str:
    month = rng.randrange(12)
    day = rng.randint(1, _DAYS_IN_MONTH[month])
    text = f"{_MONTHS[month]} {day}" if rng.random() < 0.8 else f"{_MONTHS[month]} {day}{_suffix(day)}"
    return f"{text}, {rng.randint(1950, 2030)}" if year else text


def _suffix(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _year(rng: Rng) -> str:
    return str(rng.randint(1800, 2030) if rng.random() < 0.8 else rng.randint(1100, 1799))


def _when_past(rng: Rng) -> str:
    options: list[Callable[[], str]] = [
        lambda: _pick(rng, ("yesterday", "last night", "this morning", "last week", "last month", "last year",
                            "a while ago", "earlier today", "last weekend", "the other day")),
        lambda: f"last {_pick(rng, _WEEKDAYS)}",
        lambda: f"on {_pick(rng, _WEEKDAYS)}",
        lambda: f"on {_date(rng)}",
        lambda: f"in {_year(rng)}",
        lambda: f"at {_clock(rng)}",
        lambda: f"{_pick(rng, _SMALL_NUMBER_WORDS)} {_pick(rng, ('days', 'weeks', 'months', 'years'))} ago",
        lambda: f"after the {_pick(rng, lex.EVENTS)}",
        lambda: f"before the {_pick(rng, lex.EVENTS)}",
        lambda: f"in {_pick(rng, _MONTHS)}",
    ]  # fmt: skip
    return rng.choice(options)()


def _when_future(rng: Rng) -> str:
    options: list[Callable[[], str]] = [
        lambda: _pick(rng, ("tomorrow", "tonight", "next week", "next month", "next year", "soon", "later today",
                            "this weekend", "this afternoon", "in the morning")),
        lambda: f"next {_pick(rng, _WEEKDAYS)}",
        lambda: f"on {_pick(rng, _WEEKDAYS)}",
        lambda: f"on {_date(rng)}",
        lambda: f"at {_clock(rng)}",
        lambda: f"in {rng.randint(2, 50)} minutes",
        lambda: f"after the {_pick(rng, lex.EVENTS)}",
    ]  # fmt: skip
    return rng.choice(options)()


def _when_habit(rng: Rng) -> str:
    return rng.choice([
        lambda: _pick(rng, ("every morning", "every evening", "every day", "twice a week", "once a month",
                            "at night", "in the afternoon", "every summer", "on weekends", "after work")),
        lambda: f"on {_pick(rng, _WEEKDAYS)}s",
        lambda: f"every {_pick(rng, _WEEKDAYS)}",
        lambda: f"at {_clock(rng)} every day",
    ])()  # fmt: skip


def _opt(rng: Rng, p: float, make: Callable[[], str]) -> str:
    return " " + make() if rng.random() < p else ""


def _money(rng: Rng) -> str:
    r = rng.random()
    if r < 0.4:
        return f"${rng.randint(1, 99)}.{rng.randint(0, 99):02d}"
    if r < 0.8:
        return f"${rng.randint(1, 500)}"
    return f"${rng.randint(1, 999):,}{rng.choice(['', ',000'])}".replace("$0", "$")


def _clause_past(rng: Rng) -> str:
    subject, _ = _subject(rng)
    r = rng.random()
    if r < 0.5:
        return f"{subject} {lex.verb_forms(_pick(rng, lex.VERBS_THING))['past']} {_thing(rng)}"
    if r < 0.75:
        verb = lex.verb_forms(_pick(rng, lex.VERBS_INTRANS))["past"]
        return f"{subject} {verb}{_opt(rng, 0.5, lambda: _pick(rng, lex.ADVERBS))}"
    return f"{subject} {lex.verb_forms(_pick(rng, lex.VERBS_PERSON))['past']} {_person(rng)}"


def _clause_present(rng: Rng) -> str:
    subject, third = _subject(rng)
    if rng.random() < 0.6:
        return f"{subject} {_present(_pick(rng, lex.VERBS_THING), third)} {_thing(rng)}"
    return f"{subject} {_be(subject, third)} {_pick(rng, lex.PERSON_ADJECTIVES)}"


def _clause_future(rng: Rng) -> str:
    subject, _ = _subject(rng)
    if rng.random() < 0.6:
        return f"{subject} will {_pick(rng, lex.VERBS_THING)} {_thing(rng)}"
    return f"{subject} will {_pick(rng, lex.VERBS_PERSON)} {_person(rng)}"


# --- templates: each returns one written sentence -------------------------------------------------------


def _t_past(rng: Rng) -> str:
    subject, _ = _subject(rng)
    verb = lex.verb_forms(_pick(rng, lex.VERBS_THING))["past"]
    return f"{subject} {verb} {_thing(rng)}{_opt(rng, 0.5, lambda: _place(rng))}{_opt(rng, 0.5, lambda: _when_past(rng))}."


def _t_habit(rng: Rng) -> str:
    subject, third = _subject(rng)
    adverb = _pick(rng, ("usually", "often", "always", "sometimes", "never", "rarely"))
    return f"{subject} {adverb} {_present(_pick(rng, lex.VERBS_THING), third)} {_thing(rng)} {_when_habit(rng)}."


def _t_future(rng: Rng) -> str:
    subject, third = _subject(rng)
    verb = _pick(rng, lex.VERBS_THING)
    lead = rng.choice(["will", f"{_be(subject, third)} going to", "might", "should", "must"])
    return f"{subject} {lead} {verb} {_thing(rng)}{_opt(rng, 0.3, lambda: _place(rng))} {_when_future(rng)}."


def _t_progressive(rng: Rng) -> str:
    subject, third = _subject(rng)
    past = rng.random() < 0.4
    if rng.random() < 0.5:
        verb, rest = _pick(rng, lex.VERBS_INTRANS), ""
    else:
        verb, rest = _pick(rng, lex.VERBS_THING), " " + _thing(rng)
    return f"{subject} {_be(subject, third, past)} {lex.verb_forms(verb)['ing']}{rest} {_place(rng)}."


def _t_perfect(rng: Rng) -> str:
    subject, third = _subject(rng)
    have = "has" if third else "have"
    adverb = _pick(rng, ("already", "just", "never", "finally", "recently"))
    return f"{subject} {have} {adverb} {lex.verb_forms(_pick(rng, lex.VERBS_THING))['participle']} {_thing(rng)}."


def _t_question(rng: Rng) -> str:
    subject, third = _subject(rng)
    verb = _pick(rng, lex.VERBS_THING)
    does = "does" if third else "do"
    options: list[Callable[[], str]] = [
        lambda: f"Did {subject} {verb} {_thing(rng)} {_when_past(rng)}?",
        lambda: f"Where did {subject} {verb} {_thing(rng, plural_ok=False)}?",
        lambda: f"Why {_be(subject, third)} {subject} so {_pick(rng, lex.PERSON_ADJECTIVES)} today?",
        lambda: f"When does the {_pick(rng, lex.VEHICLES)} to {_pick(rng, lex.CITIES)} leave?",
        lambda: f"How many {lex.plural(_pick(rng, lex.OBJECTS))} {does} {subject} {verb_base('need')}?",
        lambda: f"Who {lex.verb_forms(verb)['past']} {_thing(rng)}?",
        lambda: f"What time is the {_pick(rng, lex.EVENTS)} {_when_future(rng)}?",
        lambda: f"Which {_pick(rng, lex.OBJECTS)} {does} {subject} {_pick(rng, ('want', 'like', 'prefer'))}?",
        lambda: f"Can you {_pick(rng, _ACTION_VERBS)} {_thing(rng)} {_place(rng)}?",
        lambda: f"Could you {_pick(rng, lex.VERBS_PERSON)} {_person(rng)} {_when_future(rng)}?",
        lambda: f"Would you like to {_pick(rng, lex.ACTIVITIES)} with {_person(rng)}?",
        lambda: f"Is the {_pick(rng, lex.OBJECTS)} {_pick(rng, lex.ADJECTIVES)} enough?",
        lambda: f"{_cap(does)} {subject} know where the {_pick(rng, lex.BUILDINGS)} is?",
        lambda: f"Have you ever been to {_pick(rng, lex.CITIES + lex.COUNTRIES)}?",
    ]  # fmt: skip
    return rng.choice(options)()


def verb_base(verb: str) -> str:
    return lex.verb_forms(verb)["base"]


_STATIVE = frozenset("want need like love hate prefer notice remember forget".split())
_ACTION_VERBS = tuple(v for v in lex.VERBS_THING if v not in _STATIVE)


def _t_command(rng: Rng) -> str:
    verb = _pick(rng, _ACTION_VERBS)
    options: list[Callable[[], str]] = [
        lambda: f"Please {verb} {_thing(rng)} {_pick(rng, ('before', 'after', 'by'))} {_clock(rng)}.",
        lambda: f"Don't forget to {verb} {_thing(rng)} {_when_future(rng)}.",
        lambda: f"{_cap(verb)} {_thing(rng)} and {_pick(rng, _ACTION_VERBS)} {_thing(rng)}.",
        lambda: f"Remember to {_pick(rng, lex.VERBS_PERSON)} {_person(rng)} {_when_future(rng)}.",
        lambda: f"Never {verb} {_thing(rng)} {_place(rng)}.",
        lambda: f"Let's {_pick(rng, lex.ACTIVITIES)} {_when_future(rng)}.",
        lambda: f"Please {_pick(rng, ('be', 'stay'))} {_pick(rng, ('quiet', 'calm', 'careful', 'patient', 'polite'))} "
                f"{_place(rng)}.",
        lambda: f"Go to {_building(rng)} and ask for {_person(rng)}.",
    ]  # fmt: skip
    return rng.choice(options)()


def _list(rng: Rng, items: Sequence[str], k: int) -> str:
    chosen = rng.sample(list(items), k)
    comma = "," if rng.random() < 0.3 and k > 2 else ""
    return ", ".join(chosen[:-1]) + f"{comma} and {chosen[-1]}"


def _t_list(rng: Rng) -> str:
    k = rng.randint(2, 5)
    items = _list(rng, lex.GROCERIES, k)
    subject, _ = _subject(rng)
    options: list[Callable[[], str]] = [
        lambda: f"Buy {items}.",
        lambda: f"We need {items} for the {_pick(rng, lex.EVENTS)}.",
        lambda: f"{subject} bought {items} at {_building(rng)}.",
        lambda: f"Don't forget the {items}.",
        lambda: f"Could you pick up {items} on your way home?",
        lambda: f"The shop had no {items}.",
        lambda: f"{subject} packed {_list(rng, [lex.plural(o) for o in lex.OBJECTS], min(k, 4))} for the trip.",
        lambda: f"{subject} has visited {_list(rng, lex.CITIES, min(k, 4))}.",
        lambda: f"The {_pick(rng, lex.BUILDINGS)} sells {items}.",
    ]  # fmt: skip
    return rng.choice(options)()


def _t_money(rng: Rng) -> str:
    subject, third = _subject(rng)
    options: list[Callable[[], str]] = [
        lambda: f"The {_pick(rng, lex.OBJECTS)} costs {_money(rng)}.",
        lambda: f"{subject} paid {_money(rng)} for {_thing(rng)}.",
        lambda: f"A ticket to {_pick(rng, lex.CITIES)} is {_money(rng)}.",
        lambda: f"{subject} {'owes' if third else 'owe'} {_person(rng)} {_money(rng)}.",
        lambda: f"The {_pick(rng, lex.EVENTS)} raised {_money(rng)} for {_building(rng)}.",
        lambda: f"Dinner for {rng.randint(2, 12)} people came to {_money(rng)}.",
        lambda: f"{subject} found {_money(rng)} in {_pick(rng, ('an old', 'a', 'the'))} {_pick(rng, lex.OBJECTS)}.",
    ]  # fmt: skip
    return rng.choice(options)()


def _t_numbers(rng: Rng) -> str:
    subject, third = _subject(rng)
    n = rng.randint(2, 999)
    options: list[Callable[[], str]] = [
        lambda: f"There are {n} {lex.plural(_pick(rng, lex.OBJECTS))} in {_building(rng)}.",
        lambda: f"{subject} {'has' if third else 'have'} {rng.randint(2, 12)} {lex.plural(_pick(rng, lex.ANIMALS))}.",
        lambda: f"{_building(rng).capitalize()} is {rng.randint(2, 90)} miles from {_pick(rng, lex.CITIES)}.",
        lambda: f"The population of {_pick(rng, lex.CITIES)} is about {rng.randint(10_000, 20_000_000):,}.",
        lambda: f"The company sold {rng.randint(1_000, 999_999):,} {lex.plural(_pick(rng, lex.OBJECTS))} last year.",
        lambda: f"About {rng.randint(2, 99)}% of the {lex.plural(_pick(rng, lex.PROFESSIONS))} agreed with the plan.",
        lambda: f"Prices rose by {rng.randint(1, 20)}.{rng.randint(1, 9)}% in {rng.randint(1950, 2030)}.",
        lambda: f"The temperature dropped to {rng.randint(-5, 35)}.{rng.randint(0, 9)} degrees {_when_past(rng)}.",
        lambda: f"The {_pick(rng, lex.OBJECTS)} weighs {rng.randint(1, 90)}.{rng.randint(1, 9)} {_pick(rng, ('kg', 'pounds', 'grams'))}.",
        lambda: f"{subject} ran {rng.randint(2, 42)} {_pick(rng, ('km', 'miles', 'laps'))} {_when_past(rng)}.",
        lambda: f"Room {rng.randint(100, 999)} is on the {_ordinal(rng.randint(1, 30))} floor.",
        lambda: f"{subject} finished {_ordinal(rng.randint(1, 40))} in the {_pick(rng, lex.EVENTS)}.",
        lambda: f"Call {rng.randint(100, 999)} {rng.randint(1000, 9999)} if you see {_thing(rng)}.",
        lambda: f"{_pick(rng, lex.FIRST_NAMES)} is {rng.randint(2, 99)} years old.",
        lambda: f"The {_pick(rng, lex.VEHICLES)} was {rng.randint(2, 95)} minutes late.",
    ]  # fmt: skip
    return rng.choice(options)().replace(" -", " minus ")


def _ordinal(n: int) -> str:
    return f"{n}{_suffix(n)}"


def _t_date(rng: Rng) -> str:
    subject, _ = _subject(rng)
    event = _pick(rng, lex.EVENTS)
    options: list[Callable[[], str]] = [
        lambda: f"{_pick(rng, lex.FIRST_NAMES)}'s birthday is on {_date(rng)}.",
        lambda: f"The {event} was moved to {_pick(rng, _WEEKDAYS)}, {_date(rng)}.",
        lambda: f"{subject} was born on {_date(rng, year=True)}.",
        lambda: f"{subject} moved to {_pick(rng, lex.CITIES)} in {_year(rng)}.",
        lambda: f"The {event} is on the {_ordinal(rng.randint(1, 28))} of {_pick(rng, _MONTHS)}.",
        lambda: f"The {_pick(rng, lex.BUILDINGS)} was built in {_year(rng)}.",
        lambda: f"On {_date(rng)}, {_clause_past(rng)}.",
        lambda: f"The deadline for the {_pick(rng, lex.OBJECTS)} is {_pick(rng, _WEEKDAYS)} at {_clock(rng)}.",
    ]  # fmt: skip
    return rng.choice(options)()


def _t_time(rng: Rng) -> str:
    subject, _ = _subject(rng)
    options: list[Callable[[], str]] = [
        lambda: f"The {_pick(rng, lex.VEHICLES)} to {_pick(rng, lex.CITIES)} leaves at {_clock(rng)}.",
        lambda: f"Let's meet at {_building(rng)} at {_clock(rng)}.",
        lambda: f"{subject} woke up at {_clock(rng)} this morning.",
        lambda: f"The {_pick(rng, lex.EVENTS)} starts at {_clock(rng)} {_pick(rng, ('sharp', 'tomorrow', 'today'))}.",
        lambda: f"{_building(rng).capitalize()} opens at {_clock(rng)} and closes at {_clock(rng)}.",
        lambda: f"{subject} arrived at {_clock(rng)}, {_pick(rng, ('just in time', 'far too late', 'a bit early'))}.",
    ]  # fmt: skip
    return rng.choice(options)()


def _t_compare(rng: Rng) -> str:
    adj = _pick(rng, lex.ADJECTIVES)
    comp = lex.comparative(adj)
    options: list[Callable[[], str]] = [
        lambda: f"The {_pick(rng, lex.OBJECTS)} is {comp} than the {_pick(rng, lex.OBJECTS)}.",
        lambda: f"{_pick(rng, lex.CITIES)} is {lex.comparative(_pick(rng, ('big', 'small', 'busy', 'quiet', 'old', 'expensive', 'crowded', 'pretty', 'modern', 'famous')))} "
                f"than {_pick(rng, lex.CITIES)}.",
        lambda: f"{_person(rng)} is {lex.comparative(_pick(rng, lex.PERSON_ADJECTIVES))} than {_person(rng)}.",
        lambda: f"This {_pick(rng, lex.OBJECTS)} is the most {adj} one in the shop.",
        lambda: f"My {_pick(rng, lex.ANIMALS)} is {comp} than your {_pick(rng, lex.ANIMALS)}.",
        lambda: f"Nothing is {comp} than {lex.article(adj)} {adj} {_pick(rng, lex.OBJECTS)}.",
        lambda: f"The {_pick(rng, lex.VEHICLES)} is {lex.comparative(_pick(rng, ('fast', 'slow', 'cheap', 'comfortable', 'reliable', 'safe', 'quick')))} "
                f"than the {_pick(rng, lex.VEHICLES)}.",
    ]  # fmt: skip
    return rng.choice(options)()


def _t_subordinate(rng: Rng) -> str:
    subject, third = _subject(rng)
    options: list[Callable[[], str]] = [
        lambda: f"When {_clause_past(rng)}, {_clause_past(rng)}.",
        lambda: f"{_clause_past(rng)} because {_clause_past(rng)}.",
        lambda: f"If {_clause_present(rng)}, {_clause_future(rng)}.",
        lambda: f"Although {_clause_past(rng)}, {_clause_past(rng)}.",
        lambda: f"{_person(rng)} said that {_clause_past(rng)}.",
        lambda: f"I think that {_clause_present(rng)}.",
        lambda: f"The {_pick(rng, lex.OBJECTS)} that {subject} {lex.verb_forms(_pick(rng, lex.VERBS_THING))['past']} "
                f"was {_pick(rng, lex.ADJECTIVES)}.",
        lambda: f"{_clause_future(rng)} after {_clause_present(rng)}.",
        lambda: f"{_clause_past(rng)} while {subject} {_be(subject, third, past=True)} "
                f"{lex.verb_forms(_pick(rng, lex.VERBS_INTRANS))['ing']}.",
        lambda: f"Before {_clause_past(rng)}, {_clause_past(rng)}.",
        lambda: f"{_person(rng)} wondered whether {_clause_past(rng)}.",
    ]  # fmt: skip
    return rng.choice(options)()


def _t_interest(rng: Rng) -> str:
    subject, third = _subject(rng)
    topic = _pick(rng, lex.TOPICS)
    options: list[Callable[[], str]] = [
        lambda: f"{subject} {_present('like', third)} to {_pick(rng, lex.ACTIVITIES)} {_when_habit(rng)}.",
        lambda: f"{subject} {_present('want', third)} to learn more about {topic}.",
        lambda: f"{subject} {_be(subject, third)} interested in {topic} and {_pick(rng, lex.TOPICS)}.",
        lambda: f"{subject} {_present(_pick(rng, lex.VERBS_TOPIC), third)} {topic} at the university.",
        lambda: f"{_person(rng)} gave a talk about {topic} {_when_past(rng)}.",
        lambda: f"Nobody in {_pick(rng, lex.CITIES)} cares about {topic}.",
        lambda: f"{subject} used to {_pick(rng, lex.ACTIVITIES)} {_pick(rng, lex.ADVERBS)}.",
    ]  # fmt: skip
    return rng.choice(options)()


def _t_animal(rng: Rng) -> str:
    subject, _ = _subject(rng)
    animal = _pick(rng, lex.ANIMALS)
    verb = lex.verb_forms(_pick(rng, ("sleep", "wait", "rest", "run", "jump", "hide", "swim", "play", "sit",
                                      "walk", "climb", "wander", "fall")))  # fmt: skip
    options: list[Callable[[], str]] = [
        lambda: f"The {_pick(rng, lex.ADJECTIVES)} {animal} {verb['past']} {_place(rng)}.",
        lambda: f"{subject} saw {rng.randint(2, 40)} {lex.plural(animal)} near {_building(rng)}.",
        lambda: f"A {animal} is {lex.comparative(_pick(rng, ('big', 'small', 'fast', 'slow', 'loud', 'clever', 'heavy')))} "
                f"than {lex.article(a := _pick(rng, lex.ANIMALS))} {a}.",
        lambda: f"Our {animal} {verb['third']} {_pick(rng, lex.ADVERBS)} {_when_habit(rng)}.",
        lambda: f"Do not feed the {lex.plural(animal)} at {_building(rng)}.",
    ]  # fmt: skip
    return rng.choice(options)()


def _t_travel(rng: Rng) -> str:
    subject, third = _subject(rng)
    options: list[Callable[[], str]] = [
        lambda: f"{subject} flew to {_pick(rng, lex.CITIES)} {_when_past(rng)}.",
        lambda: f"{subject} took the {_pick(rng, lex.VEHICLES)} from {_pick(rng, lex.CITIES)} to {_pick(rng, lex.CITIES)}.",
        lambda: f"{subject} {'has' if third else 'have'} never been to {_pick(rng, lex.COUNTRIES)}.",
        lambda: f"Next summer {subject} {_be(subject, third)} going to {_pick(rng, lex.COUNTRIES)}.",
        lambda: f"The road from {_pick(rng, lex.CITIES)} to {_pick(rng, lex.CITIES)} was {_pick(rng, lex.ADJECTIVES)}.",
        lambda: f"{_person(rng)} lives at {rng.randint(1, 999)} {_pick(rng, lex.STREETS)} "
                f"{_pick(rng, ('St.', 'Ave.', 'Rd.', 'Street', 'Road', 'Lane'))}.",
        lambda: f"{subject} met {_person(rng)} in St. {_pick(rng, ('Louis', 'Petersburg', 'Andrews', 'Paul', 'Albans', 'Ives'))}.",
    ]  # fmt: skip
    return rng.choice(options)()


def _t_intransitive(rng: Rng) -> str:
    subject, third = _subject(rng)
    verb = lex.verb_forms(_pick(rng, lex.VERBS_INTRANS))
    options: list[Callable[[], str]] = [
        lambda: f"{subject} {verb['past']} {_pick(rng, lex.ADVERBS)} {_when_past(rng)}.",
        lambda: f"{subject} {verb['third'] if third else verb['base']} {_place(rng)} {_when_habit(rng)}.",
        lambda: f"{subject} will {verb['base']} {_place(rng)} {_when_future(rng)}.",
        lambda: f"{subject} did not {verb['base']} {_when_past(rng)}.",
        lambda: f"{subject} {'wants' if third else 'want'} to {verb['base']} {_pick(rng, lex.ADVERBS)}.",
    ]  # fmt: skip
    return rng.choice(options)()


def _t_describe(rng: Rng) -> str:
    subject, third = _subject(rng)
    city = _pick(rng, lex.CITIES)
    options: list[Callable[[], str]] = [
        lambda: f"It was {_pick(rng, _WEATHER)} in {city} on {_pick(rng, _WEEKDAYS)}.",
        lambda: f"It will be {_pick(rng, _WEATHER)} and {rng.randint(2, 38)} degrees {_when_future(rng)}.",
        lambda: f"{_person(rng)} is {lex.article(p := _pick(rng, lex.PROFESSIONS))} {p} from {city}.",
        lambda: f"{_pick(rng, lex.FIRST_NAMES)}'s {_pick(rng, lex.RELATIVES)} works as {lex.article(p := _pick(rng, lex.PROFESSIONS))} {p} in {city}.",
        lambda: f"{subject} {_be(subject, third, past=True)} very {_pick(rng, lex.PERSON_ADJECTIVES)} after the {_pick(rng, lex.EVENTS)}.",
        lambda: f"The {_pick(rng, lex.OBJECTS)} {_pick(rng, ('looks', 'feels', 'seems', 'smells'))} {_pick(rng, lex.ADJECTIVES)}.",
        lambda: f"{_building(rng).capitalize()} in {city} is {_pick(rng, ('very', 'quite', 'rather', 'too'))} {_pick(rng, lex.ADJECTIVES)}.",
        lambda: f"What {lex.article(a := _pick(rng, lex.ADJECTIVES))} {a} {_pick(rng, lex.OBJECTS)}!",
    ]  # fmt: skip
    return rng.choice(options)()


_TEMPLATES: tuple[tuple[Callable[[Rng], str], float], ...] = (
    (_t_past, 2.0), (_t_habit, 1.0), (_t_future, 1.0), (_t_progressive, 1.0), (_t_perfect, 0.7),
    (_t_question, 2.0), (_t_command, 1.2), (_t_list, 1.0), (_t_money, 0.8), (_t_numbers, 1.2), (_t_date, 0.8),
    (_t_time, 0.7), (_t_compare, 0.8), (_t_subordinate, 1.8), (_t_interest, 1.0), (_t_animal, 0.8),
    (_t_travel, 1.0), (_t_intransitive, 1.0), (_t_describe, 1.0),
)  # fmt: skip
_TEMPLATE_FUNCS = tuple(t for t, _ in _TEMPLATES)
_TEMPLATE_WEIGHTS = tuple(w for _, w in _TEMPLATES)


def _one_sentence(rng: Rng) -> str:
    template = rng.choices(_TEMPLATE_FUNCS, weights=_TEMPLATE_WEIGHTS)[0]
    text = " ".join(template(rng).split()).replace("..", ".").replace(".?", "?").replace(".!", "!")
    return _cap(text)


def generate_sentences(n: int, seed: int) -> list[str]:
    """``n`` distinct English sentences in written form, the same for the same ``seed``.

    Distinct means distinct spoken forms (:func:`~seqspeech.text.verbalize.verbalize_en`), each
    ``MIN_WORDS``..``MAX_WORDS`` spoken words long.

    Raises:
        ConfigError: ``n`` is negative, or that many distinct sentences could not be made.
    """
    if n < 0:
        raise ConfigError(f"generate_sentences: n must be >= 0, got {n}")
    rng = random.Random(f"seqspeech-synth-en-{seed}")
    sentences: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(sentences) < n:
        attempts += 1
        if attempts > 20 * n + 1000:
            raise ConfigError(f"generate_sentences: only {len(sentences)} distinct sentences after {attempts} tries")
        text = _one_sentence(rng)
        spoken = verbalize_en(text)
        if not MIN_WORDS <= len(spoken.split()) <= MAX_WORDS or spoken in seen:
            continue
        seen.add(spoken)
        sentences.append(text)
    return sentences


# ---------------------------------------------------------------------------------------------------------
# Voices

ESPEAK_ENGLISH = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029",
                  "en-us-nyc")  # fmt: skip
ESPEAK_SPANISH = ("es", "es-419")
ESPEAK_VARIANTS = ("", *(f"+m{i}" for i in range(1, 8)), *(f"+f{i}" for i in range(1, 6)))
FLITE_TRAINING = ("slt", "kal16")
FLITE_EVAL_ONLY = tuple(sorted(name for engine, name in EVAL_ONLY_VOICES if engine == "flite"))
ENGLISH_VOICES = tuple(("espeak-ng", v + var) for v in ESPEAK_ENGLISH for var in ESPEAK_VARIANTS) + tuple(
    ("flite", v) for v in FLITE_TRAINING
)
SPANISH_VOICES = tuple(("espeak-ng", v + var) for v in ESPEAK_SPANISH for var in ESPEAK_VARIANTS)
# Never used for train/dev/test; they speak the ``test_voices`` split (unseen-speaker evaluation).
DEFAULT_HELDOUT_VOICES = (
    "en-gb-scotland+f3", "en-us-nyc+m4", "en-029+f2", "en-gb-x-gbcwmd+m6", "en-gb-x-rp+f5", "en-us+m7",
    "es+f4", "es-419+m3",
)  # fmt: skip
ESPEAK_RATE = (130, 210)  # words per minute, inclusive
ESPEAK_PITCH = (25, 75)  # espeak -p, inclusive
FLITE_SHARE = 0.2  # share of English training utterances spoken by flite voices


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: engine, voice name (espeak ``en-gb-scotland+f3``, flite ``slt``), rate, pitch.

    ``id`` (the manifest's ``speaker``) reads ``espeak-ng:en-gb-scotland+f3:s160:p60``.
    """

    engine: str
    name: str
    rate: int | None = None
    pitch: int | None = None

    @property
    def id(self) -> str:
        parts = [self.engine, self.name]
        if self.rate is not None:
            parts.append(f"s{self.rate}")
        if self.pitch is not None:
            parts.append(f"p{self.pitch}")
        return ":".join(parts)

    @property
    def base(self) -> tuple[str, str]:
        """``(engine, name)``: the voice without rate and pitch."""
        return self.engine, self.name


def _parse_voice(spec: str) -> tuple[str, str]:
    """``"en-us+f3"`` or ``"espeak-ng:en-us+f3"`` or ``"flite:slt"`` -> ``(engine, name)``."""
    engine, sep, name = spec.partition(":")
    if not sep:
        engine, name = "espeak-ng", spec
    known = set(ENGLISH_VOICES) | set(SPANISH_VOICES) | EVAL_ONLY_VOICES
    if (engine, name) not in known:
        raise ConfigError(f"unknown voice {spec!r}; use an espeak-ng voice+variant such as 'en-gb+f2' or 'es+m3'")
    return engine, name


def training_voices(language: str, heldout: Sequence[str] = DEFAULT_HELDOUT_VOICES) -> list[tuple[str, str]]:
    """``(engine, name)`` of the voices that may speak train/dev/test in ``language`` (``"en"`` or ``"es"``):
    all known voices of the language minus ``heldout`` and minus the evaluation-only voices."""
    pool = {"en": ENGLISH_VOICES, "es": SPANISH_VOICES}.get(language)
    if pool is None:
        raise ConfigError(f"no synthetic voices for language {language!r}; choose 'en' or 'es'")
    excluded = {_parse_voice(v) for v in heldout} | EVAL_ONLY_VOICES
    return [v for v in pool if v not in excluded]


def _heldout_for(language: str, heldout: Sequence[str]) -> list[tuple[str, str]]:
    pool = set(ENGLISH_VOICES if language == "en" else SPANISH_VOICES)
    return [v for v in (_parse_voice(s) for s in heldout) if v in pool]


def _sample_voice(rng: Rng, pool: Sequence[tuple[str, str]]) -> Voice:
    """A voice from ``pool``, flite with probability ``FLITE_SHARE`` when the pool has flite voices; espeak
    voices get a random rate and pitch."""
    flite = [v for v in pool if v[0] == "flite"]
    espeak = [v for v in pool if v[0] == "espeak-ng"]
    if flite and (not espeak or rng.random() < FLITE_SHARE):
        engine, name = flite[rng.randrange(len(flite))]
        return Voice(engine, name)
    engine, name = espeak[rng.randrange(len(espeak))]
    return Voice(engine, name, rng.randint(*ESPEAK_RATE), rng.randint(*ESPEAK_PITCH))


# ---------------------------------------------------------------------------------------------------------
# Corpus builder

CORPUS_FILE = "corpus.json"
CORPUS_FORMAT = 1
LANGUAGES = ("en", "es-en")


@dataclass(frozen=True)
class _Job:
    split: str
    utt_id: str
    text: str  # written form
    spoken: str  # verbalised: synthesised and used as the label
    voice: Voice
    language: str
    pair_id: str | None
    audio: str  # relative to out_dir


def _synth_job(job: _Job, out_dir: Path) -> tuple[_Job, float | None, str | None]:
    """Synthesise one job unless a readable WAV is already there; one retry. ``(job, duration, error)``."""
    path = out_dir / job.audio
    duration = wav_duration(path)
    if duration is not None:
        return job, duration, None
    error = None
    for _ in range(2):
        try:
            duration = synthesize_wav(job.spoken, path, engine=job.voice.engine, voice=job.voice.name,
                                      rate=job.voice.rate, pitch=job.voice.pitch)  # fmt: skip
            return job, duration, None
        except (SeqSpeechError, OSError, RuntimeError, subprocess.SubprocessError) as err:
            error = str(err) or type(err).__name__
    return job, None, error


def _check_config(out_dir: Path, config: dict[str, Any]) -> None:
    path = out_dir / CORPUS_FILE
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: unreadable ({err}); remove it or choose another output folder") from None
        if old != config:
            diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
            details = ", ".join(f"{k}: {old.get(k)!r} -> {config.get(k)!r}" for k in diff)
            raise ConfigError(
                f"{path}: {out_dir} holds a corpus built with other arguments ({details}); "
                "use the same arguments to resume, or another output folder"
            )
    else:
        write_atomic(path, json.dumps(config, indent=2, sort_keys=True) + "\n")


def _split_sentences(items: list[Any], num: int, dev: int, test: int) -> dict[str, list[Any]]:
    return {"test": items[:test], "dev": items[test:test + dev], "train": items[test + dev:test + dev + num]}


def build_synth_corpus(
    out_dir: str | os.PathLike,
    *,
    language: str = "en",
    num_sentences: int,
    seed: int = 0,
    dev_sentences: int = 200,
    test_sentences: int = 200,
    utterances_per_sentence: int = 1,
    heldout_voices: Sequence[str] | None = None,
    eval_only_voices: bool = True,
    voice: str | None = None,
    jobs: int | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """Synthesise a speech corpus and write its manifests; see the module docstring for the splits.

    Args:
        out_dir: output folder: ``corpus.json``, ``<split>.jsonl`` (``<split>.<lang>.jsonl`` for ``es-en``) and
            ``wavs/<split>/<id>.wav`` (16 kHz mono 16-bit).
        language: ``"en"`` (ASR/TTS) or ``"es-en"`` (speech translation: every pair is spoken in Spanish and in
            English; the two utterances share ``pair_id``).
        num_sentences: training sentences (pairs for ``es-en``).
        seed: fixes sentences, voices and splits.
        dev_sentences, test_sentences: sentences in ``dev`` and ``test`` (never in ``train``).
        utterances_per_sentence: training utterances per sentence, each with its own random voice (dev and test
            have one).
        heldout_voices: espeak-ng ``voice+variant`` names kept out of train/dev/test; they speak
            ``test_voices``. Default :data:`DEFAULT_HELDOUT_VOICES`.
            ``test_voices`` is written only when every language of the corpus has a held-out voice.
        eval_only_voices: also write ``test_eval_voices`` spoken by flite ``rms``/``awb`` (English only).
        voice: one voice (``"flite:slt"``, ``"en-us+f3"``) speaks train, dev and test at its default rate and pitch:
            a single-speaker corpus for speech synthesis (no ``test_voices`` or ``test_eval_voices``; English only;
            an evaluation-only voice is refused).
        jobs: parallel synthesis workers (default: CPU count).
        progress: tqdm bar on stderr.

    Returns:
        manifest name (``"train"``, ``"test_voices"``; ``"train.es"`` for ``es-en``) -> path.

    Raises:
        ConfigError: bad arguments, or ``out_dir`` holds a corpus built with other arguments.

    Utterances whose synthesis fails twice are skipped, counted and reported in one warning. Re-running with the
    same arguments resumes: readable WAVs are kept.
    """
    if language not in LANGUAGES:
        raise ConfigError(f"unknown corpus language {language!r}; choose from {LANGUAGES}")
    for name, value, low in (("num_sentences", num_sentences, 1), ("dev_sentences", dev_sentences, 0),
                             ("test_sentences", test_sentences, 0),
                             ("utterances_per_sentence", utterances_per_sentence, 1)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"build_synth_corpus: {name} must be an integer >= {low}, got {value!r}")
    jobs = (os.cpu_count() or 1) if jobs is None else jobs
    if jobs < 1:
        raise ConfigError(f"build_synth_corpus: jobs must be >= 1, got {jobs}")
    heldout = tuple(DEFAULT_HELDOUT_VOICES if heldout_voices is None else heldout_voices)
    single = None
    if voice is not None:
        if language != "en":
            raise ConfigError(f"a single-voice corpus is English only, got language {language!r}")
        single = _parse_voice(voice)
        if single in EVAL_ONLY_VOICES:
            raise ConfigError(f"{voice!r} is an evaluation-only voice; it cannot speak a training corpus")
        heldout, eval_only_voices = (), False
    for spec in heldout:
        if _parse_voice(spec) in EVAL_ONLY_VOICES:
            raise ConfigError(f"{spec!r} is an evaluation-only voice; it cannot be a held-out espeak voice")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "format": CORPUS_FORMAT, "language": language, "num_sentences": num_sentences, "seed": seed,
        "dev_sentences": dev_sentences, "test_sentences": test_sentences,
        "utterances_per_sentence": utterances_per_sentence, "heldout_voices": list(heldout),
        "eval_only_voices": eval_only_voices,
    }  # fmt: skip
    if single is not None:  # a key only when used: corpora built before the option keep resuming
        config["voice"] = ":".join(single)
    _check_config(out, config)

    total = num_sentences + dev_sentences + test_sentences
    if language == "en":
        items: list[Any] = generate_sentences(total, seed)
    else:
        from .synth_es_en import generate_parallel

        items = generate_parallel(total, seed)
    splits = _split_sentences(items, num_sentences, dev_sentences, test_sentences)
    planned = _plan(splits, language, heldout, eval_only_voices, utterances_per_sentence, seed, single)
    results = _run(planned, out, jobs, progress)
    return _write_manifests(planned, results, out, language)


def _plan(
    splits: dict[str, list[Any]],
    language: str,
    heldout: Sequence[str],
    eval_only: bool,
    per_sentence: int,
    seed: int,
    single: tuple[str, str] | None = None,
) -> dict[str, list[_Job]]:
    """Every utterance of every split, with its voice; deterministic in ``seed``. ``single``: the one voice of a
    single-speaker corpus."""
    langs = ("en",) if language == "en" else ("es", "en")
    pools = {lang: training_voices(lang, heldout) if single is None else [single] for lang in langs}
    held = {lang: _heldout_for(lang, heldout) for lang in langs}
    plan_specs: list[tuple[str, str, dict[str, list[tuple[str, str]]], int]] = [
        ("train", "train", pools, per_sentence), ("dev", "dev", pools, 1), ("test", "test", pools, 1),
    ]  # fmt: skip
    if all(held[lang] for lang in langs):
        plan_specs.append(("test_voices", "test", held, 1))
    if eval_only and language == "en":
        plan_specs.append(("test_eval_voices", "test", {"en": sorted(EVAL_ONLY_VOICES)}, 1))
    planned: dict[str, list[_Job]] = {}
    for split, source, voice_pools, repeats in plan_specs:
        rng = random.Random(f"seqspeech-synth-voices-{seed}-{split}")
        split_jobs: list[_Job] = []
        for index, item in enumerate(splits[source]):
            texts = {"en": item} if language == "en" else {"es": item[0], "en": item[1]}
            for k in range(repeats):
                for lang in langs:
                    spoken = verbalize_en(texts[lang]) if lang == "en" else verbalize_es(texts[lang])
                    voice = _sample_voice(rng, voice_pools[lang]) if single is None else Voice(*single)
                    if language == "en":
                        utt_id, pair_id = f"{split}-{index:06d}-{k}", None
                    else:
                        utt_id, pair_id = f"{split}-{index:06d}-{k}-{lang}", f"{split}-{index:06d}-{k}"
                    split_jobs.append(_Job(split, utt_id, texts[lang], spoken, voice, lang, pair_id,
                                           f"wavs/{split}/{utt_id}.wav"))  # fmt: skip
        planned[split] = split_jobs
    for split in ("train", "dev"):  # the evaluation-only voices never reach training data
        leaked = {job.voice.id for job in planned[split] if job.voice.base in EVAL_ONLY_VOICES}
        if leaked:
            raise AssertionError(f"evaluation-only voices {sorted(leaked)} planned for {split}")
    return planned


def _run(planned: dict[str, list[_Job]], out: Path, jobs: int, progress: bool) -> dict[str, float]:
    """Synthesise every job; utt id -> duration of those that succeeded. Failures are reported, not raised."""
    from tqdm import tqdm

    all_jobs = [job for split_jobs in planned.values() for job in split_jobs]
    for stale in (out / "wavs").glob("*/.*.wav"):  # temp files of a killed run
        stale.unlink(missing_ok=True)
    for stale in (out / "wavs").glob("*/*.part.wav"):
        stale.unlink(missing_ok=True)
    durations: dict[str, float] = {}
    failures: list[tuple[_Job, str]] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool, tqdm(
        total=len(all_jobs), desc="synthesising", unit="utt", disable=not progress, file=sys.stderr
    ) as bar:
        futures = [pool.submit(_synth_job, job, out) for job in all_jobs]
        for future in as_completed(futures):
            job, duration, error = future.result()
            if duration is None:
                failures.append((job, error or "unknown error"))
            else:
                durations[job.utt_id] = duration
            bar.update(1)
    if failures:
        examples = "; ".join(f"{j.utt_id} ({j.voice.id}): {e}" for j, e in failures[:3])
        warnings.warn(
            f"{out}: {len(failures)} of {len(all_jobs)} utterances failed to synthesise twice and were skipped "
            f"(e.g. {examples})",
            stacklevel=3,
        )
    return durations


def _write_manifests(
    planned: dict[str, list[_Job]], durations: dict[str, float], out: Path, language: str
) -> dict[str, Path]:
    manifests: dict[str, Path] = {}
    for split, split_jobs in planned.items():
        langs = ("en",) if language == "en" else ("es", "en")
        for lang in langs:
            name = split if language == "en" else f"{split}.{lang}"
            utts = [
                Utterance(id=job.utt_id, audio=job.audio, duration=round(durations[job.utt_id], 4), text=job.text,
                          normalized_text=job.spoken, speaker=job.voice.id, language=job.language,
                          pair_id=job.pair_id)  # fmt: skip
                for job in split_jobs
                if job.language == lang and job.utt_id in durations
            ]
            manifests[name] = write_manifest(out / f"{name}.jsonl", utts)
    return manifests
