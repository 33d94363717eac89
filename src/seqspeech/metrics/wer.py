"""Word and character error rates, counted by jiwer over a whole corpus (not averaged per utterance), and the
string (sentence) error rate.

``rate = (substitutions + deletions + insertions) / n_ref_units``. Texts are normalised first (by default
with :class:`~seqspeech.text.normalize.EnglishTextNormalizer`), then whitespace is collapsed. Utterances whose
reference is empty are allowed: every hypothesis unit counts as an insertion. When no reference has any unit,
the rate is 0.0 if there are no errors either, else ``inf``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import jiwer

from seqspeech.text.normalize import EnglishTextNormalizer

Unit = Literal["word", "char"]
Normalizer = Callable[[str], str]

DEFAULT_NORMALIZER: Normalizer = EnglishTextNormalizer()
"""The normaliser ``error_rate`` applies unless told otherwise."""


@dataclass(frozen=True)
class ErrorRate:
    """Corpus-level edit counts and the error rate they give."""

    rate: float
    substitutions: int
    deletions: int
    insertions: int
    hits: int
    n_ref_units: int
    n_utts: int

    @property
    def errors(self) -> int:
        """Substitutions + deletions + insertions."""
        return self.substitutions + self.deletions + self.insertions

    def as_dict(self) -> dict[str, float | int]:
        """Plain dict of the fields (for JSON)."""
        return asdict(self)


def error_rate(
    references: Sequence[str],
    hypotheses: Sequence[str],
    *,
    unit: Unit = "word",
    normalizer: Normalizer | None = DEFAULT_NORMALIZER,
) -> ErrorRate:
    """Error rate of ``hypotheses`` against ``references`` (pairwise, same order).

    Args:
        references: the reference transcripts.
        hypotheses: the system's transcripts, one per reference.
        unit: ``"word"`` (WER) or ``"char"`` (CER; spaces count as characters, as in jiwer).
        normalizer: applied to both sides before scoring; None scores the raw text.

    Raises:
        ValueError: different numbers of references and hypotheses, a non-string item, or an unknown unit.
    """
    if unit not in ("word", "char"):
        raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")
    if isinstance(references, str) or isinstance(hypotheses, str):
        raise ValueError("references and hypotheses must be sequences of strings, not a single string")
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses; they must pair up")
    refs = [_prepare(text, normalizer, "reference", i) for i, text in enumerate(references)]
    hyps = [_prepare(text, normalizer, "hypothesis", i) for i, text in enumerate(hypotheses)]

    # jiwer >= 4 accepts empty references but 3.x does not: count those utterances here.
    scored = [(r, h) for r, h in zip(refs, hyps, strict=True) if r]
    insertions = sum(_n_units(h, unit) for r, h in zip(refs, hyps, strict=True) if not r)
    substitutions = deletions = hits = 0
    if scored:
        process = jiwer.process_words if unit == "word" else jiwer.process_characters
        out = process([r for r, _ in scored], [h for _, h in scored])
        substitutions, deletions, hits = out.substitutions, out.deletions, out.hits
        insertions += out.insertions
    n_ref_units = sum(_n_units(r, unit) for r in refs)
    errors = substitutions + deletions + insertions
    rate = errors / n_ref_units if n_ref_units else (0.0 if errors == 0 else float("inf"))
    return ErrorRate(rate, substitutions, deletions, insertions, hits, n_ref_units, len(refs))


def wer(
    references: Sequence[str],
    hypotheses: Sequence[str],
    *,
    normalizer: Normalizer | None = DEFAULT_NORMALIZER,
) -> float:
    """Word error rate (see :func:`error_rate`)."""
    return error_rate(references, hypotheses, unit="word", normalizer=normalizer).rate


def cer(
    references: Sequence[str],
    hypotheses: Sequence[str],
    *,
    normalizer: Normalizer | None = DEFAULT_NORMALIZER,
) -> float:
    """Character error rate (see :func:`error_rate`)."""
    return error_rate(references, hypotheses, unit="char", normalizer=normalizer).rate


def string_error_rate(
    references: Sequence[str],
    hypotheses: Sequence[str],
    *,
    normalizer: Normalizer | None = DEFAULT_NORMALIZER,
) -> float:
    """Share of utterances not recognised exactly (sentence error rate): after ``normalizer`` and whitespace
    collapsing, the hypothesis differs from the reference. 0.0 for no utterances.

    Raises:
        ValueError: as :func:`error_rate`.
    """
    if isinstance(references, str) or isinstance(hypotheses, str):
        raise ValueError("references and hypotheses must be sequences of strings, not a single string")
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses; they must pair up")
    wrong = sum(
        _prepare(r, normalizer, "reference", i) != _prepare(h, normalizer, "hypothesis", i)
        for i, (r, h) in enumerate(zip(references, hypotheses, strict=True))
    )
    return wrong / len(references) if references else 0.0


def _prepare(text: str, normalizer: Normalizer | None, side: str, index: int) -> str:
    """Normalise one text and collapse its whitespace, so jiwer's own splitting agrees with ``_n_units``."""
    if not isinstance(text, str):
        raise ValueError(f"{side} {index} is {type(text).__name__}, not str")
    if normalizer is not None:
        text = normalizer(text)
    return " ".join(text.split())


def _n_units(text: str, unit: Unit) -> int:
    return len(text.split()) if unit == "word" else len(text)
