"""seqspeech.text.tokenizers: character and BPE tokenizers for the models we train, Whisper's for Whisper.

:func:`tokenizer_to_dict` / :func:`tokenizer_from_dict` turn a trained tokenizer into JSON (for checkpoint
metadata) and back, whichever kind it is.
"""

from __future__ import annotations

import base64
from typing import Any, Union

from ...errors import ModelLoadError
from .bpe import BPETokenizer
from .char import CharTokenizer

Tokenizer = Union[CharTokenizer, BPETokenizer]
_BPE_FORMAT = "seqspeech.bpe_tokenizer"

__all__ = ["BPETokenizer", "CharTokenizer", "Tokenizer", "tokenizer_from_dict", "tokenizer_to_dict"]


def tokenizer_to_dict(tokenizer: Tokenizer) -> dict[str, Any]:
    """A JSON-ready dict holding the whole tokenizer."""
    if isinstance(tokenizer, CharTokenizer):
        return tokenizer.to_dict()
    if isinstance(tokenizer, BPETokenizer):
        return {"format": _BPE_FORMAT, "model": base64.b64encode(tokenizer.to_bytes()).decode("ascii")}
    raise TypeError(f"cannot serialise a {type(tokenizer).__name__}")


def tokenizer_from_dict(data: Any, where: str = "<dict>") -> Tokenizer:
    """Inverse of :func:`tokenizer_to_dict`; ModelLoadError naming ``where`` for anything else."""
    if isinstance(data, dict) and data.get("format") == _BPE_FORMAT:
        try:
            proto = base64.b64decode(data["model"], validate=True)
        except (KeyError, TypeError, ValueError) as e:
            raise ModelLoadError(f"{where}: corrupt BPE tokenizer ({e})") from None
        return BPETokenizer.from_bytes(proto)
    return CharTokenizer.from_dict(data, where)
