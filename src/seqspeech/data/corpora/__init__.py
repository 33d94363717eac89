"""Corpus readers: each turns a corpus as distributed into a list of
:class:`~seqspeech.data.manifest.Utterance` (LibriSpeech, LJSpeech, Common Voice, Kaldi data dirs, the Free
Spoken Digit Dataset).

Every reader has the signature ``read_X(root, *, normalizer=..., with_durations=True, ...)``; malformed files
raise :class:`~seqspeech.errors.DataError` naming ``file:line``, and utterances whose audio file is missing
are skipped, counted and reported in one warning.

    from seqspeech.data.corpora import read_corpus
    utts = read_corpus("librispeech", "/data/LibriSpeech", split="dev-clean")
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ..manifest import Utterance
from .commonvoice import read_commonvoice
from .fsdd import read_fsdd
from .kaldi import read_kaldi
from .librispeech import read_librispeech
from .ljspeech import read_ljspeech

__all__ = [
    "READERS",
    "read_commonvoice",
    "read_corpus",
    "read_fsdd",
    "read_kaldi",
    "read_librispeech",
    "read_ljspeech",
    "register_reader",
]

Reader = Callable[..., list[Utterance]]

READERS: dict[str, Reader] = {
    "librispeech": read_librispeech,
    "ljspeech": read_ljspeech,
    "commonvoice": read_commonvoice,
    "kaldi": read_kaldi,
    "fsdd": read_fsdd,
}


def register_reader(kind: str, reader: Reader) -> None:
    """Add a reader under ``kind``; an existing kind or a non-callable reader is a ConfigError."""
    if not isinstance(kind, str) or not kind:
        raise ConfigError(f"corpus kind must be a non-empty string, got {kind!r}")
    if not callable(reader):
        raise ConfigError(f"corpus reader for {kind!r} must be callable, got {type(reader).__name__}")
    if kind in READERS:
        raise ConfigError(f"corpus kind {kind!r} is already registered")
    READERS[kind] = reader


def read_corpus(kind: str, root: str | Path, **kw: Any) -> list[Utterance]:
    """``READERS[kind](root, **kw)``; an unknown kind is a ConfigError listing the known ones."""
    if kind not in READERS:
        raise ConfigError(f"unknown corpus kind {kind!r}; known kinds: {sorted(READERS)}")
    return READERS[kind](root, **kw)
