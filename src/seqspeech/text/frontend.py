"""The TTS text front end: written text -> the token ids an acoustic model (Tacotron 2, FastSpeech 2) reads.

>>> frontend = TTSFrontend("phoneme")
>>> frontend.tokens("Hi, Dr. Lee")
['HH', 'AY1', ',', ' ', 'D', 'AA1', 'K', 'T', 'ER0', ' ', 'L', 'IY1', '.']

Steps: :func:`~seqspeech.text.tts_normalize.normalize_for_tts` (spoken-form words, pause marks kept), then
:class:`~seqspeech.text.g2p.G2P` phones (``mode="phoneme"``) or the characters themselves (``mode="char"``).
An utterance always ends with a pause mark: the text's own last mark, else ``"."`` is appended, so the model
always sees an end.

The vocabulary is fixed by the mode, so no training data is needed to build it and every checkpoint of a mode
agrees on the ids:

- ``0`` ``<pad>`` (batches are padded with 0), ``1`` ``" "`` (word boundary), ``2..7`` the pause marks
  ``, . ? ! ; :``, then
- phoneme mode: the 69 ARPAbet phones with stress (:data:`~seqspeech.text.g2p.PHONES`), 77 tokens in all;
- char mode: ``'`` and ``a``..``z``, 35 tokens in all.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from typing import Any

from ..errors import ConfigError, DataError, ModelLoadError
from .g2p import G2P, PHONES, WORD_BOUNDARY
from .tts_normalize import PAUSE_MARKS, SENTENCE_END_MARKS, normalize_for_tts

__all__ = ["MAX_TEXT_CHARS", "MODES", "PAD", "PAD_ID", "TTSFrontend"]

PAD = "<pad>"
PAD_ID = 0
MODES = ("phoneme", "char")
MAX_TEXT_CHARS = 1_000_000
"""Longest text :meth:`TTSFrontend.tokens` accepts; split longer text with :meth:`TTSFrontend.split_sentences`."""
_FORMAT = "seqspeech.tts_frontend"
_VERSION = 1
_MARKS = frozenset(PAUSE_MARKS)
_SPECIALS = (PAD, WORD_BOUNDARY, *PAUSE_MARKS)
_VOCABS = {
    "phoneme": (*_SPECIALS, *PHONES),
    "char": (*_SPECIALS, "'", *string.ascii_lowercase),
}


def _preview(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


class TTSFrontend:
    """Text -> tokens -> ids for TTS acoustic models; see the module docstring.

    Args:
        mode: ``"phoneme"`` (ARPAbet through :class:`G2P`) or ``"char"`` (normalised letters).
        g2p: the G2P of phoneme mode (default: ``G2P()``, CMU dictionary + espeak-ng, loaded on first use);
            must be None in char mode.
    """

    def __init__(self, mode: str = "phoneme", g2p: G2P | None = None) -> None:
        if mode not in MODES:
            raise ConfigError(f"TTSFrontend mode must be one of {list(MODES)}, got {mode!r}")
        if g2p is not None and not isinstance(g2p, G2P):
            raise ConfigError(f"TTSFrontend g2p must be a G2P, got {type(g2p).__name__}")
        if mode == "char" and g2p is not None:
            raise ConfigError("TTSFrontend: g2p is only used in phoneme mode; pass g2p=None with mode='char'")
        self.mode = mode
        self.g2p = (g2p or G2P()) if mode == "phoneme" else None
        self._vocab: tuple[str, ...] = _VOCABS[mode]
        self._ids = {token: i for i, token in enumerate(self._vocab)}

    # -- vocabulary ---------------------------------------------------------------------------------------------

    @property
    def vocab(self) -> tuple[str, ...]:
        """All tokens in id order (id 0 is ``<pad>``)."""
        return self._vocab

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    # -- text -> tokens -> ids -----------------------------------------------------------------------------------

    def normalize(self, text: str) -> str:
        """Spoken form of ``text`` with pause marks (:func:`normalize_for_tts`), checked to hold words.

        Raises:
            DataError: the text is empty, too long, or has nothing to speak (only punctuation, emoji, symbols).
        """
        if not isinstance(text, str):
            raise TypeError(f"TTSFrontend: text must be a str, got {type(text).__name__}")
        if not text.strip():
            raise DataError("TTSFrontend: the text is empty; there is nothing to synthesise")
        if len(text) > MAX_TEXT_CHARS:
            raise DataError(
                f"TTSFrontend: the text has {len(text):,} characters, more than {MAX_TEXT_CHARS:,}; "
                "split it with split_sentences() and synthesise the parts"
            )
        normalized = normalize_for_tts(text)
        if not re.search("[a-z]", normalized):
            raise DataError(
                f"TTSFrontend: the text {_preview(text)} has nothing to speak "
                "(only punctuation, symbols, emoji or characters without an English reading)"
            )
        return normalized

    def tokens(self, text: str) -> list[str]:
        """Tokens of ``text``: phones (or characters), ``" "`` between words, pause marks, a final mark.

        Raises:
            DataError: see :meth:`normalize`.
        """
        normalized = self.normalize(text)
        tokens = self.g2p(normalized) if self.g2p is not None else list(normalized)
        if tokens[-1] not in _MARKS:
            tokens.append(".")
        return tokens

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (never 0, the padding id).

        Raises:
            DataError: see :meth:`normalize`; or a token outside the vocabulary (a custom G2P dictionary with
                non-ARPAbet phones).
        """
        ids = self._ids
        out = []
        for token in self.tokens(text):
            index = ids.get(token)
            if index is None:
                raise DataError(
                    f"TTSFrontend: token {token!r} of {_preview(text)} is not in the {self.mode} vocabulary"
                )
            out.append(index)
        return out

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids``, padding (id 0) dropped: ``decode(encode(t)) == tokens(t)``.

        Raises:
            ValueError: an id outside ``0..vocab_size-1``.
        """
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self._vocab):
                raise ValueError(f"TTSFrontend: token id {i} is out of range for a vocabulary of {self.vocab_size}")
            if i != PAD_ID:
                out.append(self._vocab[i])
        return out

    # -- streaming -------------------------------------------------------------------------------------------------

    def split_sentences(self, text: str, max_chars: int = 200) -> list[str]:
        """``text`` as normalised sentences to synthesise one at a time (streaming).

        The text is normalised first, so abbreviations (``Dr.``, ``e.g.``), decimals and times never split a
        sentence; it is cut after each ``.``/``?``/``!``. A sentence longer than ``max_chars`` is cut further
        after its ``,``/``;``/``:`` (as few pieces as fit), and a clause still longer at word boundaries with a
        ``,`` added so the piece ends in a pause. Each piece is valid input to :meth:`tokens` (normalisation is
        idempotent).

        Raises:
            ConfigError: ``max_chars`` < 20.
            DataError: see :meth:`normalize`.
        """
        if max_chars < 20:
            raise ConfigError(f"split_sentences: max_chars must be at least 20, got {max_chars}")
        sentences: list[list[str]] = [[]]
        for word in self.normalize(text).split(" "):
            sentences[-1].append(word)
            if word[-1] in SENTENCE_END_MARKS:
                sentences.append([])
        pieces = []
        for sentence in sentences:
            if sentence:
                pieces.extend(_split_long(sentence, max_chars))
        return pieces

    # -- serialisation ---------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict for a model package (a custom G2P dictionary is not saved)."""
        data: dict[str, Any] = {"format": _FORMAT, "version": _VERSION, "mode": self.mode, "vocab": list(self._vocab)}
        if self.g2p is not None:
            data["g2p"] = {"use_espeak": self.g2p.use_espeak}
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str = "<dict>") -> TTSFrontend:
        """Inverse of :meth:`to_dict`; ModelLoadError naming ``where`` for anything else."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ModelLoadError(f"{where}: not a TTS front end (expected format {_FORMAT!r})")
        if data.get("version") != _VERSION:
            raise ModelLoadError(f"{where}: unsupported TTS front end version {data.get('version')!r}")
        mode = data.get("mode")
        if mode not in MODES:
            raise ModelLoadError(f"{where}: TTS front end mode must be one of {list(MODES)}, got {mode!r}")
        if data.get("vocab") != list(_VOCABS[mode]):
            raise ModelLoadError(
                f"{where}: the saved {mode} vocabulary differs from this version's, so the model's token ids "
                "would not match"
            )
        g2p = None
        if mode == "phoneme":
            options = data.get("g2p", {})
            if not isinstance(options, dict) or set(options) - {"use_espeak"}:
                raise ModelLoadError(f"{where}: 'g2p' must be a dict with only 'use_espeak', got {options!r}")
            g2p = G2P(use_espeak=bool(options.get("use_espeak", True)))
        return cls(mode, g2p)

    def __repr__(self) -> str:
        return f"TTSFrontend(mode={self.mode!r}, vocab_size={self.vocab_size})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TTSFrontend) and other.mode == self.mode and other._vocab == self._vocab

    __hash__ = None  # type: ignore[assignment]


def _split_long(words: list[str], max_chars: int) -> list[str]:
    """One sentence (its words, marks attached) as pieces of at most ``max_chars`` where possible."""
    text = " ".join(words)
    if len(text) <= max_chars:
        return [text]
    clauses: list[list[str]] = [[]]
    for word in words:
        clauses[-1].append(word)
        if word[-1] in _MARKS:
            clauses.append([])
    pieces: list[str] = []
    current = ""
    for clause in (c for c in clauses if c):
        for part in _split_words(clause, max_chars):
            if current and len(current) + 1 + len(part) <= max_chars:
                current = f"{current} {part}"
            else:
                if current:
                    pieces.append(current)
                current = part
    if current:
        pieces.append(current)
    return pieces


def _split_words(words: list[str], max_chars: int) -> list[str]:
    """A clause cut at word boundaries into pieces of at most ``max_chars``; cut pieces end with ``,``."""
    pieces: list[str] = []
    current: list[str] = []
    length = 0
    for word in words:
        if current and length + 1 + len(word) > max_chars - 1:  # room for the added ","
            pieces.append(" ".join(current) + ("" if current[-1][-1] in _MARKS else ","))
            current, length = [], 0
        current.append(word)
        length += len(word) + (1 if length else 0)
    if current:
        pieces.append(" ".join(current))
    return pieces
