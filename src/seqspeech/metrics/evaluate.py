"""Score a JSONL of hypotheses (as ``seqspeech transcribe --format jsonl`` prints) against references.

Each line is one JSON object such as ``{"path": "a.wav", "text": "hello world"}``. References come either from
a second JSONL, matched on ``key``, or from a ``reference`` field on each hypothesis line. Blank lines are
skipped; any other line that is not a JSON object with the needed fields is an error naming the file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from ..fileio import iter_jsonl
from .wer import DEFAULT_NORMALIZER, Normalizer, Unit, error_rate

REFERENCE_FIELD = "reference"
"""Field of a hypothesis line holding its reference, when no reference file is given."""

_METRIC_NAMES = {"word": "wer", "char": "cer"}


def evaluate_jsonl(
    hyp_path: str | Path,
    ref_path: str | Path | None = None,
    *,
    key: str = "path",
    hyp_field: str = "text",
    ref_field: str = "text",
    unit: Unit = "word",
    normalizer: Normalizer | None = DEFAULT_NORMALIZER,
) -> dict[str, Any]:
    """Corpus error rate of the hypotheses in ``hyp_path``.

    Args:
        hyp_path: JSONL of hypotheses, each with ``key`` and ``hyp_field``.
        ref_path: JSONL of references, each with ``key`` and ``ref_field``; None reads each hypothesis line's
            ``reference`` field instead.
        key: the field that pairs hypotheses with references.
        hyp_field, ref_field: the fields holding the text.
        unit: ``"word"`` (reports ``wer``) or ``"char"`` (reports ``cer``).
        normalizer: applied to both sides before scoring (see :func:`seqspeech.metrics.wer.error_rate`).

    Returns:
        ``{"wer" | "cer": rate, "substitutions", "deletions", "insertions", "hits", "n_ref_units", "n_utts",
        "missing": [keys with a reference but no hypothesis],
        "extra": [keys with a hypothesis but no reference]}``.
        A missing hypothesis is scored as empty (all its reference words are deletions), so dropped utterances
        cannot flatter the score; extra hypotheses are not scored.

    Raises:
        DataError: a malformed line (naming file and line), a duplicate key, or a file without any records.
    """
    if unit not in _METRIC_NAMES:
        raise ConfigError(f"unit must be 'word' or 'char', got {unit!r}")
    hyp_path = Path(hyp_path)
    records = _read_jsonl(hyp_path)
    hyps = _index(hyp_path, records, key, hyp_field)
    if ref_path is None:
        refs = {k: _text(hyp_path, n, r, REFERENCE_FIELD) for k, (n, r) in zip(hyps, records, strict=True)}
    else:
        refs = _index(Path(ref_path), _read_jsonl(Path(ref_path)), key, ref_field)
    if not refs:
        raise DataError(f"{ref_path or hyp_path}: no records to score")
    missing = [k for k in refs if k not in hyps]
    extra = [k for k in hyps if k not in refs]
    references = list(refs.values())
    hypotheses = [hyps.get(k, "") for k in refs]

    result = error_rate(references, hypotheses, unit=unit, normalizer=normalizer)
    counts = result.as_dict()
    return {_METRIC_NAMES[unit]: counts.pop("rate"), **counts, "missing": missing, "extra": extra}


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line."""
    return list(iter_jsonl(path))


def _index(path: Path, records: list[tuple[int, dict[str, Any]]], key: str, field: str) -> dict[str, str]:
    """``{key value: text}``, rejecting missing or duplicate keys."""
    texts: dict[str, str] = {}
    for line_no, record in records:
        value = record.get(key)
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise DataError(f"{path}:{line_no}: missing or non-scalar key field {key!r}")
        name = str(value)
        if name in texts:
            raise DataError(f"{path}:{line_no}: duplicate {key} {name!r}")
        texts[name] = _text(path, line_no, record, field)
    return texts


def _text(path: Path, line_no: int, record: dict[str, Any], field: str) -> str:
    text = record.get(field)
    if not isinstance(text, str):
        problem = "missing" if field not in record else f"not a string ({type(text).__name__})"
        raise DataError(f"{path}:{line_no}: field {field!r} is {problem}")
    return text
