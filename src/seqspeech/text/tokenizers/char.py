"""Character tokenizer for CTC and attention ASR.

Id layout (fixed, shared with :mod:`.bpe`)::

    0  <blank>    CTC blank (never produced by ``encode``)
    1  <unk>      a character not seen in training
    2  <sos/eos>  start and end of sentence for attention decoders (one shared id, as in ESPnet)
    3… characters seen in the training text, sorted by code point

A space is stored as the visible symbol ``"▁"`` (U+2581, as sentencepiece does), so vocabularies, logs and
attention plots show word boundaries. ``encode`` collapses runs of whitespace to one space and strips the
ends; ``decode`` maps ``"▁"`` back to ``" "``, drops the three special tokens (``<unk>`` included) and
collapses the whitespace that leaves, so ``decode(encode(t))`` is ``t`` whenever every character of ``t`` is
known. A literal ``"▁"`` in the input is read as a space.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ...data.manifest import iter_manifest
from ...errors import ConfigError, DataError, ModelLoadError
from ...fileio import write_atomic

__all__ = ["BLANK", "SOS_EOS", "SPACE", "UNK", "CharTokenizer", "manifest_texts"]

BLANK = "<blank>"
UNK = "<unk>"
SOS_EOS = "<sos/eos>"
SPECIALS = (BLANK, UNK, SOS_EOS)
BLANK_ID, UNK_ID, SOS_EOS_ID = 0, 1, 2
SPACE = "\u2581"  # "▁": a space, made visible
_FORMAT = "seqspeech.char_tokenizer"
_VERSION = 1
_TEXT_FIELDS = ("text", "normalized_text")


def _clean(text: str, where: str = "text") -> str:
    """``text`` with whitespace runs collapsed to one space, ends stripped; TypeError for non-strings."""
    if not isinstance(text, str):
        raise TypeError(f"{where} must be a str, got {type(text).__name__}")
    return " ".join(text.split())


def manifest_texts(path: str | os.PathLike, field: str = "normalized_text") -> Iterable[str]:
    """Stream the ``field`` (``"text"`` or ``"normalized_text"``) of each utterance in a JSONL manifest."""
    if field not in _TEXT_FIELDS:
        raise ConfigError(f"field must be one of {list(_TEXT_FIELDS)}, got {field!r}")
    return (getattr(utt, field) for utt in iter_manifest(path))


class CharTokenizer:
    """Maps text to character ids and back.

    Args:
        symbols: the whole vocabulary in id order: ``<blank>``, ``<unk>``, ``<sos/eos>``, then single
            characters (``"▁"`` for space), each once. Build one with :meth:`train` or :meth:`from_manifest`.
    """

    blank_id = BLANK_ID
    unk_id = UNK_ID
    sos_eos_id = SOS_EOS_ID

    def __init__(self, symbols: Sequence[str]) -> None:
        symbols = list(symbols)
        if tuple(symbols[:3]) != SPECIALS:
            raise ConfigError(f"CharTokenizer symbols must start with {list(SPECIALS)}, got {symbols[:3]}")
        for index, sym in enumerate(symbols[3:], start=3):
            if not isinstance(sym, str) or len(sym) != 1 or (sym.isspace()):
                raise ConfigError(
                    f"CharTokenizer symbol {index} must be one non-whitespace character, got {sym!r}"
                )
        if len(set(symbols)) != len(symbols):
            dupes = sorted({s for s in symbols if symbols.count(s) > 1})
            raise ConfigError(f"CharTokenizer symbols must be unique; repeated: {dupes}")
        self._symbols = tuple(symbols)
        self._ids = {sym: i for i, sym in enumerate(symbols)}

    # -- building --------------------------------------------------------------------------------------------

    @classmethod
    def train(cls, texts: Iterable[str]) -> CharTokenizer:
        """A vocabulary of every character in ``texts`` (streamed once), sorted, after the special tokens.

        Raises:
            ConfigError: the texts hold no characters at all.
        """
        chars: set[str] = set()
        for index, text in enumerate(texts):
            chars.update(_clean(text, f"text {index}"))
        if not chars:
            raise ConfigError("cannot train a CharTokenizer: the training text is empty")
        chars.discard(" ")
        chars.add(SPACE)
        return cls([*SPECIALS, *sorted(chars)])

    @classmethod
    def from_manifest(cls, path: str | os.PathLike, field: str = "normalized_text") -> CharTokenizer:
        """Train on the ``field`` ("text" or "normalized_text") of every utterance of a JSONL manifest."""
        try:
            return cls.train(manifest_texts(path, field))
        except ConfigError as err:
            if "empty" in str(err):
                raise DataError(f"{path}: no text in field {field!r} to train a CharTokenizer on") from None
            raise

    # -- use -------------------------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self._symbols)

    @property
    def symbols(self) -> tuple[str, ...]:
        """The vocabulary in id order."""
        return self._symbols

    def encode(self, text: str) -> list[int]:
        """Ids of the characters of ``text`` (no ``<sos/eos>`` added); unseen characters become ``<unk>``."""
        ids = self._ids
        return [ids.get(SPACE if ch == " " else ch, UNK_ID) for ch in _clean(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``, specials dropped, whitespace collapsed; CTC collapsing is the decoder's job."""
        out: list[str] = []
        size = len(self._symbols)
        for i in ids:
            i = int(i)
            if not 0 <= i < size:
                raise ValueError(f"token id {i} is out of range for a vocabulary of {size}")
            if i >= 3:
                out.append(self._symbols[i])
        return _clean("".join(out).replace(SPACE, " "))

    # -- serialisation ---------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, e.g. for a checkpoint's metadata."""
        return {"format": _FORMAT, "version": _VERSION, "symbols": list(self._symbols)}

    @classmethod
    def from_dict(cls, data: Any, where: str = "<dict>") -> CharTokenizer:
        """Inverse of :meth:`to_dict`; ModelLoadError naming ``where`` for anything else."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ModelLoadError(f"{where}: not a CharTokenizer (expected format {_FORMAT!r})")
        if data.get("version") != _VERSION:
            raise ModelLoadError(f"{where}: unsupported CharTokenizer version {data.get('version')!r}")
        symbols = data.get("symbols")
        if not isinstance(symbols, list):
            raise ModelLoadError(f"{where}: 'symbols' must be a list")
        try:
            return cls(symbols)
        except ConfigError as err:
            raise ModelLoadError(f"{where}: {err}") from None

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON, atomically."""
        return write_atomic(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> CharTokenizer:
        """Read a file written by :meth:`save`."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelLoadError(f"{path}: tokenizer file not found") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ModelLoadError(f"{path}: not a JSON tokenizer file ({err})") from None
        return cls.from_dict(data, str(path))

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharTokenizer) and other._symbols == self._symbols

    __hash__ = None  # type: ignore[assignment]
