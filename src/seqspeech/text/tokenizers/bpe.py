"""Subword tokenizer (BPE or unigram) for CTC and attention ASR, wrapping sentencepiece.

Id layout (the same as :class:`.char.CharTokenizer`)::

    0  <blank>    CTC blank: sentencepiece's pad piece, never produced by ``encode``
    1  <unk>      sentencepiece's unknown piece
    2  <sos/eos>  one control symbol shared by start and end of sentence (sentencepiece's own bos/eos are off)
    3… subword pieces learnt from the training text ("▁" marks the start of a word)

Training runs in memory (``sentence_iterator=`` and ``model_writer=``), with ``character_coverage=1.0`` and
the ``identity`` normalisation rule, so text passes through unchanged apart from whitespace runs collapsing to
one space. ``decode`` drops the special tokens, ``<unk>`` included, and collapses the whitespace that leaves.
The model is the plain sentencepiece ``.model`` proto: :meth:`BPETokenizer.to_bytes` stores it in a
checkpoint, and a saved file also loads in sentencepiece itself.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import sentencepiece as spm

from ...errors import ConfigError, DataError, ModelLoadError
from ...fileio import write_atomic
from .char import BLANK, BLANK_ID, SOS_EOS, SOS_EOS_ID, UNK, UNK_ID, _clean, manifest_texts

__all__ = ["MODEL_TYPES", "BPETokenizer"]

MODEL_TYPES = ("bpe", "unigram")
MIN_VOCAB_SIZE = 4  # the three specials and at least one piece


class BPETokenizer:
    """Maps text to subword ids and back.

    Args:
        model_proto: a serialized sentencepiece model with the id layout above (from :meth:`train` or
            :meth:`to_bytes`).
    """

    blank_id = BLANK_ID
    unk_id = UNK_ID
    sos_eos_id = SOS_EOS_ID

    def __init__(self, model_proto: bytes) -> None:
        if not isinstance(model_proto, (bytes, bytearray)) or not model_proto:
            raise ModelLoadError("BPETokenizer needs the non-empty bytes of a sentencepiece model")
        processor = spm.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(bytes(model_proto))
        except (RuntimeError, OSError) as err:
            raise ModelLoadError(f"not a sentencepiece model ({err})") from None
        layout = [processor.id_to_piece(i) for i in range(min(3, processor.get_piece_size()))]
        if layout != [BLANK, UNK, SOS_EOS] or processor.unk_id() != UNK_ID or processor.bos_id() != -1:
            raise ModelLoadError(
                f"sentencepiece model has ids 0-2 = {layout}; expected {[BLANK, UNK, SOS_EOS]} "
                "(train it with BPETokenizer.train)"
            )
        self._proto = bytes(model_proto)
        self._sp = processor

    # -- building --------------------------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        model_type: str = "bpe",
        *,
        character_coverage: float = 1.0,
    ) -> BPETokenizer:
        """Learn a ``model_type`` ("bpe" or "unigram") vocabulary of ``vocab_size`` ids, specials included.

        Raises:
            ConfigError: a bad option, empty text, or a corpus too small for ``vocab_size`` (the message
                says the largest size sentencepiece could build, when it tells us).
        """
        if model_type not in MODEL_TYPES:
            raise ConfigError(f"model_type must be one of {list(MODEL_TYPES)}, got {model_type!r}")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < MIN_VOCAB_SIZE:
            raise ConfigError(f"vocab_size must be an int >= {MIN_VOCAB_SIZE}, got {vocab_size!r}")
        if not 0.0 < character_coverage <= 1.0:
            raise ConfigError(f"character_coverage must be in (0, 1], got {character_coverage!r}")
        counter = [0]

        def sentences() -> Iterator[str]:
            for index, text in enumerate(texts):
                text = _clean(text, f"text {index}")
                if text:
                    counter[0] += 1
                    yield text

        writer = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=sentences(),
                model_writer=writer,
                model_type=model_type,
                vocab_size=vocab_size,
                character_coverage=character_coverage,
                normalization_rule_name="identity",
                pad_id=BLANK_ID,
                pad_piece=BLANK,
                unk_id=UNK_ID,
                unk_piece=UNK,
                unk_surface="",
                bos_id=-1,
                eos_id=-1,
                control_symbols=[SOS_EOS],
                num_threads=1,
                minloglevel=2,
            )
        except RuntimeError as err:
            if counter[0] == 0:
                raise ConfigError("cannot train a BPETokenizer: the training text is empty") from None
            reason = str(err).split("] ", 1)[-1].strip()
            hint = " Use a smaller vocab_size or more text." if "too high" in reason else ""
            raise ConfigError(
                f"cannot train a {model_type} tokenizer with vocab_size={vocab_size} "
                f"on {counter[0]} sentence(s): sentencepiece says {reason!r}.{hint}"
            ) from None
        return cls(writer.getvalue())

    @classmethod
    def from_manifest(
        cls,
        path: str | os.PathLike,
        vocab_size: int,
        model_type: str = "bpe",
        field: str = "normalized_text",
        *,
        character_coverage: float = 1.0,
    ) -> BPETokenizer:
        """Train on the ``field`` ("text" or "normalized_text") of every utterance of a JSONL manifest."""
        try:
            return cls.train(
                manifest_texts(path, field), vocab_size, model_type, character_coverage=character_coverage
            )
        except ConfigError as err:
            if "training text is empty" in str(err):
                raise DataError(f"{path}: no text in field {field!r} to train a BPETokenizer on") from None
            raise ConfigError(f"{path}: {err}") from None

    # -- use -------------------------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    @property
    def model_type(self) -> str:
        """"bpe" or "unigram"."""
        from sentencepiece import sentencepiece_model_pb2 as pb2

        proto = pb2.ModelProto()
        proto.ParseFromString(self._proto)
        return pb2.TrainerSpec.ModelType.Name(proto.trainer_spec.model_type).lower()

    def id_to_piece(self, i: int) -> str:
        return self._sp.id_to_piece(int(i))

    def encode(self, text: str) -> list[int]:
        """Piece ids of ``text`` (no ``<sos/eos>`` added); characters unseen in training become ``<unk>``."""
        return list(self._sp.encode(_clean(text)))

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` with the special tokens dropped."""
        size = self.vocab_size
        checked: list[int] = []
        for i in ids:
            i = int(i)
            if not 0 <= i < size:
                raise ValueError(f"token id {i} is out of range for a vocabulary of {size}")
            checked.append(i)
        # sentencepiece drops control pieces (<blank>, <sos/eos>) and writes <unk> as "" (its unk_surface)
        return _clean(self._sp.decode(checked))

    # -- serialisation ---------------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The serialized sentencepiece model, e.g. for a checkpoint."""
        return self._proto

    @classmethod
    def from_bytes(cls, model_proto: bytes) -> BPETokenizer:
        """Inverse of :meth:`to_bytes`."""
        return cls(model_proto)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the sentencepiece ``.model`` file, atomically."""
        return write_atomic(path, self._proto)

    @classmethod
    def load(cls, path: str | os.PathLike) -> BPETokenizer:
        """Read a file written by :meth:`save` (or any sentencepiece model with the id layout above)."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelLoadError(f"{path}: tokenizer file not found") from None
        try:
            return cls(data)
        except ModelLoadError as err:
            raise ModelLoadError(f"{path}: {err}") from None

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size}, model_type={self.model_type!r})"
