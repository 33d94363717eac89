"""JSONL manifests: one utterance per line, the common currency between corpus readers, training and
evaluation.

A line looks like (keys sorted)::

    {"audio": "wavs/LJ001-0001.wav", "duration": 9.66, "id": "LJ001-0001", "language": "en",
     "normalized_text": "printing in the only sense ...", "offset": 0.0, "pair_id": null, "speaker": "LJ",
     "text": "Printing, in the only sense ..."}

``audio`` is stored as written; on reading, a relative path is resolved against the manifest's folder, so a
folder holding a manifest and its audio can be moved as a whole. ``offset`` is the start of the utterance
inside ``audio`` (Kaldi ``segments``); ``duration`` is 0.0 when it was not measured.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import DataError
from ..fileio import iter_jsonl, write_atomic

__all__ = ["Utterance", "iter_manifest", "read_manifest", "write_manifest"]


@dataclass(frozen=True)
class Utterance:
    """One utterance: an audio span and its transcript.

    Attributes:
        id: unique within a manifest.
        audio: path of the audio file (absolute once read from a manifest).
        duration: seconds of audio in the utterance (0.0 when not measured).
        text: transcript as the corpus gives it (case and punctuation kept).
        normalized_text: ``text`` after a text normaliser, for scoring.
        speaker: speaker id, when the corpus has one.
        language: language code (``"en"``, ``"es"``, ...).
        pair_id: links utterances of parallel sets (speech translation: source and target share it).
        offset: start of the utterance inside ``audio``, in seconds.
    """

    id: str
    audio: str
    duration: float
    text: str
    normalized_text: str
    speaker: str | None = None
    language: str = "en"
    pair_id: str | None = None
    offset: float = 0.0

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        _check_values(values, f"utterance {self.id!r}")
        for name in _FLOAT_FIELDS:  # ints are accepted and stored as floats
            object.__setattr__(self, name, float(values[name]))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "<dict>") -> Utterance:
        """Build from a dict; unknown keys, missing fields and wrong types raise :class:`DataError`.

        Args:
            data: the dict (e.g. one parsed manifest line).
            where: names the source in error messages, e.g. ``"train.jsonl:12"``.
        """
        if not isinstance(data, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - _FIELD_NAMES)
        if unknown:
            raise DataError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(_FIELD_NAMES)}")
        missing = [name for name in _REQUIRED if name not in data]
        if missing:
            raise DataError(f"{where}: missing required field(s) {missing}")
        _check_values(data, where)
        return cls(**data)


_FIELD_NAMES = frozenset(f.name for f in fields(Utterance))
_REQUIRED = ("id", "audio", "duration", "text", "normalized_text")
_FLOAT_FIELDS = ("duration", "offset")
_STR_FIELDS = ("id", "audio", "text", "normalized_text", "language")
_OPTIONAL_STR_FIELDS = ("speaker", "pair_id")
_NON_EMPTY = ("id", "audio", "language")


def _check_values(values: dict[str, Any], where: str) -> None:
    """Raise DataError naming ``where`` and the field when a present field has the wrong type or value."""
    for name in _STR_FIELDS:
        if name in values and not isinstance(values[name], str):
            raise DataError(f"{where}: field {name!r} must be a string, got {type(values[name]).__name__}")
        if name in _NON_EMPTY and values.get(name) == "":
            raise DataError(f"{where}: field {name!r} must not be empty")
    for name in _OPTIONAL_STR_FIELDS:
        value = values.get(name)
        if value is not None and not isinstance(value, str):
            raise DataError(f"{where}: field {name!r} must be a string or null, got {type(value).__name__}")
    for name in _FLOAT_FIELDS:
        if name not in values:
            continue
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DataError(f"{where}: field {name!r} must be a number, got {type(value).__name__}")
        if not math.isfinite(value) or value < 0:
            raise DataError(f"{where}: field {name!r} must be a finite number >= 0, got {value!r}")


def write_manifest(path: str | os.PathLike, utterances: Iterable[Utterance]) -> Path:
    """Write ``utterances`` as JSONL (sorted keys, UTF-8), atomically.

    Raises:
        DataError: two utterances share an id (nothing is written).
        TypeError: an item is not an :class:`Utterance`.
    """
    path = Path(path)
    lines: list[str] = []
    seen: set[str] = set()
    for index, utt in enumerate(utterances):
        if not isinstance(utt, Utterance):
            raise TypeError(f"write_manifest({path}): item {index} is {type(utt).__name__}, not Utterance")
        if utt.id in seen:
            raise DataError(f"{path}: duplicate utterance id {utt.id!r} (item {index}); ids must be unique")
        seen.add(utt.id)
        lines.append(json.dumps(utt.to_dict(), sort_keys=True, ensure_ascii=False) + "\n")
    return write_atomic(path, "".join(lines))


def iter_manifest(path: str | os.PathLike) -> Iterator[Utterance]:
    """Stream the utterances of a JSONL manifest, one line at a time.

    Blank lines are skipped; relative ``audio`` paths are resolved against the manifest's folder.

    Raises:
        DataError: ``"file:line: problem"`` for a missing or undecodable file, bad JSON, a line that is not an
            object, unknown keys, missing fields, wrong types or a duplicate id.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: manifest not found")
    folder = path.absolute().parent
    seen: dict[str, int] = {}
    for lineno, data in iter_jsonl(path):
        where = f"{path}:{lineno}"
        utt = Utterance.from_dict(data, where)
        if utt.id in seen:
            raise DataError(f"{where}: duplicate utterance id {utt.id!r} (first on line {seen[utt.id]})")
        seen[utt.id] = lineno
        audio = Path(utt.audio)
        if not audio.is_absolute():
            utt = Utterance(**{**utt.to_dict(), "audio": str(folder / audio)})
        yield utt


def read_manifest(path: str | os.PathLike) -> list[Utterance]:
    """All utterances of a JSONL manifest; see :func:`iter_manifest`."""
    return list(iter_manifest(path))
