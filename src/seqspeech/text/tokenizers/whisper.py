"""Whisper's tokenizer: GPT-2 style byte-level BPE followed by Whisper's special tokens.

Token ids are laid out as in openai-whisper's ``tokenizer.py``::

    0 .. eot-1            ordinary BPE tokens (their bytes)
    eot                   <|endoftext|>
    eot+1                 <|startoftranscript|>
    eot+2 ..              one <|xx|> per language (99, or 100 for large-v3)
    then                  <|translate|> <|transcribe|> <|startoflm|> <|startofprev|> <|nospeech|>
                          <|notimestamps|>
    timestamp_begin ..    <|0.00|> <|0.02|> ... <|30.00|>  (1501 tokens)

so English-only models have 51864 tokens, multilingual ones 51865 and large-v3 51866. The BPE part comes
either from a Hugging Face ``tokenizer.json`` (the ``tokenizers`` library encodes) or from a tiktoken ranks
file shipped in ``seqspeech/assets`` (``tiktoken`` encodes); the special tokens are always derived from the
layout above, so a ``tokenizer.json`` that lacks the timestamp tokens (as English-only conversions do) still
yields the right ids, and one whose special tokens disagree with the layout is rejected.

``encode`` treats text that looks like a special token (``"<|en|>"``) as ordinary text, so transcripts and
prompts cannot inject control tokens; ask for special ids through the properties instead.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType

import tiktoken
import tiktoken.load
import tokenizers

from seqspeech.errors import ConfigError, ModelLoadError
from seqspeech.text.tokenizers.languages import LANGUAGES, language_code

N_TIMESTAMPS = 1501
"""Timestamp tokens <|0.00|> .. <|30.00|>."""
TIMESTAMP_RESOLUTION = 0.02
"""Seconds per timestamp token step."""

TIKTOKEN_NAMES = ("gpt2", "multilingual")
"""Ranks files shipped in ``seqspeech/assets`` (English-only and multilingual Whisper models)."""

VOCAB_LAYOUTS: Mapping[int, tuple[bool, int]] = MappingProxyType(
    {51864: (False, 99), 51865: (True, 99), 51866: (True, 100)}
)
"""Model vocabulary size -> (multilingual, number of language tokens)."""

# GPT-2's pre-tokenisation pattern, as used by openai-whisper's tiktoken encodings.
_PAT_STR = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_TASK_AND_CONTROL_TOKENS = (
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nospeech|>",
    "<|notimestamps|>",
)
# older names found in some tokenizer.json files
_SPECIAL_ALIASES = {"<|nocaptions|>": "<|nospeech|>", "<|iw|>": "<|he|>"}
_NO_SPACE_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "yue"})
_TASKS = ("transcribe", "translate")

# Symbols whose tokens are suppressed to avoid speaker tags and sound annotations (openai-whisper's list).
_NON_SPEECH_SYMBOLS = [
    *'"#()*+/:;<=>@[\\]^_`{|}~「」『』',
    *["<<", ">>", "<<<", ">>>", "--", "---", "-(", "-[", "('", '("', "((", "))", "(((", ")))"],
    *["[[", "]]", "{{", "}}", "♪♪", "♪♪♪"],
]
# U+2640..U+267F symbols that share their first two UTF-8 bytes: suppressing the first token is safe.
_MISCELLANEOUS_SYMBOLS = "♩♪♫♬♭♮♯"


def special_token_names(num_languages: int) -> list[str]:
    """The special tokens in id order, starting at ``eot`` (see the module docstring)."""
    if not 1 <= num_languages <= len(LANGUAGES):
        raise ConfigError(f"num_languages must be in 1..{len(LANGUAGES)}, got {num_languages}")
    return [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *(f"<|{code}|>" for code in list(LANGUAGES)[:num_languages]),
        *_TASK_AND_CONTROL_TOKENS,
        *(f"<|{i * TIMESTAMP_RESOLUTION:.2f}|>" for i in range(N_TIMESTAMPS)),
    ]


class WhisperTokenizer:
    """Whisper's tokenizer, with openai-whisper's ``Tokenizer`` semantics.

    Build it with :meth:`for_vocab`, :meth:`from_tokenizer_json` or :meth:`from_tiktoken`; the constructor
    only assembles already-loaded parts.

    Args:
        encode_ordinary: text -> ordinary token ids (no special tokens).
        token_bytes: the bytes of each ordinary token, indexed by id; its length is the id of
            ``<|endoftext|>``.
        multilingual: whether the model takes language and task tokens in its start-of-transcript sequence.
        num_languages: number of language tokens (99, or 100 for large-v3).
    """

    def __init__(
        self,
        encode_ordinary: Callable[[str], list[int]],
        token_bytes: Sequence[bytes],
        *,
        multilingual: bool,
        num_languages: int = 99,
    ) -> None:
        specials = special_token_names(num_languages)
        eot = len(token_bytes)
        self._encode_ordinary = encode_ordinary
        self._token_bytes: tuple[bytes, ...] = (*token_bytes, *(name.encode() for name in specials))
        self._special_ids: Mapping[str, int] = MappingProxyType({n: eot + i for i, n in enumerate(specials)})
        self._multilingual = multilingual
        self._num_languages = num_languages

    # ---------------------------------------------------------------------------------------------- factories

    @classmethod
    def for_vocab(cls, n_vocab: int, *, tokenizer_json: str | Path | None = None) -> WhisperTokenizer:
        """The tokenizer of a Whisper model with ``n_vocab`` output tokens.

        Uses ``tokenizer_json`` when given (checking it matches ``n_vocab``), else the shipped tiktoken ranks.

        Raises:
            ModelLoadError: unknown vocabulary size, or a tokenizer file that is missing, corrupt or
                inconsistent.
        """
        if n_vocab not in VOCAB_LAYOUTS:
            sizes = ", ".join(map(str, VOCAB_LAYOUTS))
            raise ModelLoadError(f"no Whisper tokenizer has {n_vocab} tokens (known sizes: {sizes})")
        multilingual, num_languages = VOCAB_LAYOUTS[n_vocab]
        if tokenizer_json is None:
            name = "multilingual" if multilingual else "gpt2"
            return cls.from_tiktoken(name, num_languages=num_languages)
        tokenizer = cls.from_tokenizer_json(
            tokenizer_json, multilingual=multilingual, num_languages=num_languages
        )
        if tokenizer.n_vocab != n_vocab:
            raise ModelLoadError(
                f"{tokenizer_json}: tokenizer has {tokenizer.n_vocab} tokens but the model has {n_vocab}"
            )
        return tokenizer

    @classmethod
    def from_tiktoken(
        cls, name: str = "gpt2", num_languages: int = 99, *, path: str | Path | None = None
    ) -> WhisperTokenizer:
        """Whisper's tokenizer from a tiktoken ranks file, exactly as openai-whisper builds it.

        Args:
            name: ``"gpt2"`` (English-only models) or ``"multilingual"``.
            num_languages: number of language tokens (99, or 100 for large-v3).
            path: a ranks file to read instead of the shipped ``seqspeech/assets/{name}.tiktoken``.

        Raises:
            ModelLoadError: the ranks file is missing or corrupt.
        """
        if name not in TIKTOKEN_NAMES:
            raise ConfigError(f"unknown tiktoken ranks {name!r}; expected one of {TIKTOKEN_NAMES}")
        if path is None:
            path = Path(str(resources.files("seqspeech") / "assets" / f"{name}.tiktoken"))
        encode_ordinary, token_bytes = _load_tiktoken(str(path))
        return cls(
            encode_ordinary, token_bytes, multilingual=name == "multilingual", num_languages=num_languages
        )

    @classmethod
    def from_tokenizer_json(
        cls, path: str | Path, *, multilingual: bool, num_languages: int = 99
    ) -> WhisperTokenizer:
        """Whisper's tokenizer from a Hugging Face ``tokenizer.json`` (as shipped with CTranslate2/HF models).

        Special tokens the file declares must sit where Whisper's layout puts them (the older names
        ``<|nocaptions|>`` and ``<|iw|>`` are accepted for ``<|nospeech|>`` and ``<|he|>``); those it lacks,
        typically the timestamps, are derived from the layout.

        Raises:
            ModelLoadError: the file is missing, not a byte-level BPE tokenizer.json, or inconsistent with the
                layout.
        """
        path = Path(path)
        spec = _read_json(path)
        model = spec.get("model")
        if (
            not isinstance(model, dict)
            or model.get("type") != "BPE"
            or not isinstance(model.get("vocab"), dict)
            or not all(isinstance(i, int) for i in model["vocab"].values())
        ):
            raise ModelLoadError(f"{path}: not a BPE tokenizer.json (no model.vocab of a BPE model)")
        named: dict[str, int] = dict(model["vocab"])
        for added in spec.get("added_tokens") or []:
            if not (
                isinstance(added, dict)
                and isinstance(added.get("content"), str)
                and isinstance(added.get("id"), int)
            ):
                raise ModelLoadError(f"{path}: malformed entry in added_tokens: {added!r}")
            named[added["content"]] = added["id"]
        eot = named.get("<|endoftext|>")
        if not isinstance(eot, int):
            raise ModelLoadError(f"{path}: no <|endoftext|> token")
        ordinary = {token: i for token, i in model["vocab"].items() if i < eot}
        if sorted(ordinary.values()) != list(range(eot)):
            raise ModelLoadError(f"{path}: ordinary token ids are not exactly 0..{eot - 1}")

        expected = {name: eot + i for i, name in enumerate(special_token_names(num_languages))}
        for name, i in named.items():
            canonical = _SPECIAL_ALIASES.get(name, name)
            if i >= eot and expected.get(canonical) != i:
                where = f"id {expected[canonical]}" if canonical in expected else "no place"
                raise ModelLoadError(
                    f"{path}: special token {name!r} has id {i}, but Whisper's layout with {num_languages} "
                    f"languages gives it {where} (wrong multilingual/num_languages for this file?)"
                )

        byte_of = {char: byte for byte, char in _bytes_to_unicode().items()}
        token_bytes: list[bytes] = [b""] * eot
        try:
            for token, i in ordinary.items():
                token_bytes[i] = bytes(byte_of[char] for char in token)
        except KeyError as exc:
            raise ModelLoadError(f"{path}: token {token!r} is not byte-level BPE (character {exc})") from None

        # Encode with the BPE model only: added tokens and post-processing are ours to handle.
        try:
            backend = tokenizers.Tokenizer.from_str(
                json.dumps({**spec, "added_tokens": [], "post_processor": None})
            )
        except Exception as exc:  # the tokenizers library raises a bare Exception on malformed specs
            raise ModelLoadError(f"{path}: the tokenizers library rejected it: {exc}") from exc

        def encode_ordinary(text: str) -> list[int]:
            return backend.encode(text, add_special_tokens=False).ids

        return cls(encode_ordinary, token_bytes, multilingual=multilingual, num_languages=num_languages)

    # ------------------------------------------------------------------------------------ encoding / decoding

    def encode(self, text: str) -> list[int]:
        """Ordinary token ids of ``text`` (special-token look-alikes are encoded as plain text)."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        return list(self._encode_ordinary(text))

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``, dropping timestamp tokens; other special tokens appear as ``<|...|>``."""
        begin = self.timestamp_begin
        return self._decode([i for i in self._checked(ids) if i < begin])

    def decode_with_timestamps(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` with every special token, timestamps included, written out (``"<|1.08|>"``)."""
        return self._decode(self._checked(ids))

    def _checked(self, ids: Iterable[int]) -> list[int]:
        """``ids`` as a list of ints, all inside the vocabulary (accepts numpy/torch integers)."""
        ids = [int(i) for i in ids]
        if ids and not (min(ids) >= 0 and max(ids) < self.n_vocab):
            bad = next(i for i in ids if not 0 <= i < self.n_vocab)
            raise ValueError(f"token id {bad} is outside the vocabulary (0..{self.n_vocab - 1})")
        return ids

    def _decode(self, ids: list[int]) -> str:
        return b"".join(self._token_bytes[i] for i in ids).decode("utf-8", errors="replace")

    # ----------------------------------------------------------------------------------------- special tokens

    @property
    def n_vocab(self) -> int:
        """Number of tokens, special ones included (the model's output size)."""
        return len(self._token_bytes)

    @property
    def is_multilingual(self) -> bool:
        """Whether the model takes language and task tokens."""
        return self._multilingual

    @property
    def num_languages(self) -> int:
        """Number of language tokens."""
        return self._num_languages

    @property
    def special_tokens(self) -> Mapping[str, int]:
        """Special token text -> id (read-only)."""
        return self._special_ids

    @property
    def eot(self) -> int:
        """``<|endoftext|>``: end of transcript."""
        return self._special_ids["<|endoftext|>"]

    @property
    def sot(self) -> int:
        """``<|startoftranscript|>``."""
        return self._special_ids["<|startoftranscript|>"]

    @property
    def sot_prev(self) -> int:
        """``<|startofprev|>``: precedes the previous-text prompt."""
        return self._special_ids["<|startofprev|>"]

    @property
    def sot_lm(self) -> int:
        """``<|startoflm|>``."""
        return self._special_ids["<|startoflm|>"]

    @property
    def no_speech(self) -> int:
        """``<|nospeech|>`` (``<|nocaptions|>`` in older files)."""
        return self._special_ids["<|nospeech|>"]

    @property
    def no_timestamps(self) -> int:
        """``<|notimestamps|>``."""
        return self._special_ids["<|notimestamps|>"]

    @property
    def timestamp_begin(self) -> int:
        """``<|0.00|>``; every id from here on is a timestamp."""
        return self._special_ids["<|0.00|>"]

    @property
    def transcribe(self) -> int:
        """``<|transcribe|>``."""
        return self._special_ids["<|transcribe|>"]

    @property
    def translate(self) -> int:
        """``<|translate|>``."""
        return self._special_ids["<|translate|>"]

    def language_token(self, language: str) -> int:
        """The id of ``<|xx|>`` for a language code or English name.

        Raises:
            ValueError: unknown language, or one beyond this tokenizer's ``num_languages``.
        """
        token = f"<|{language_code(language)}|>"
        if token not in self._special_ids:
            raise ConfigError(
                f"language {language!r} is not among this tokenizer's {self._num_languages} languages"
            )
        return self._special_ids[token]

    @property
    def all_language_codes(self) -> tuple[str, ...]:
        """Language codes in token order."""
        return tuple(LANGUAGES)[: self._num_languages]

    @property
    def all_language_tokens(self) -> tuple[int, ...]:
        """Language token ids in order (``<|en|>`` first)."""
        first = self.sot + 1
        return tuple(range(first, first + self._num_languages))

    def sot_sequence(
        self, language: str | None = None, task: str | None = "transcribe", without_timestamps: bool = False
    ) -> tuple[int, ...]:
        """The decoder prompt: ``<|startoftranscript|>`` [language] [task] [``<|notimestamps|>``].

        English-only models take no language or task token (``language`` may only be None or English, ``task``
        only transcribe). On multilingual models a None language or task is left out, as openai-whisper's
        ``Tokenizer`` does; detect the language first to fill it in.

        Raises:
            ValueError: unknown language or task, or one the model cannot do.
        """
        if task is not None and task not in _TASKS:
            raise ConfigError(f"task must be one of {_TASKS} or None, got {task!r}")
        sequence = [self.sot]
        if self._multilingual:
            if language is not None:
                sequence.append(self.language_token(language))
            if task is not None:
                sequence.append(self.transcribe if task == "transcribe" else self.translate)
        else:
            if language is not None and language_code(language) != "en":
                raise ConfigError(f"English-only model: it cannot take language {language!r} (a multilingual "
                                  "Whisper model can; leave the language out for English)")
            if task == "translate":
                raise ConfigError("English-only model: it cannot translate (task 'translate' needs a multilingual "
                                  "Whisper model)")
        if without_timestamps:
            sequence.append(self.no_timestamps)
        return tuple(sequence)

    @cached_property
    def non_speech_tokens(self) -> tuple[int, ...]:
        """Tokens to suppress so the model does not write speaker tags or sound annotations (``♪♪♪``,
        ``( SPEAKING FOREIGN LANGUAGE )``, ``[DAVID]``), keeping plain punctuation (openai-whisper's set)."""
        # allow hyphens and single quotes between words, but not at the beginning of a word
        result = {self.encode(" -")[0], self.encode(" '")[0]}
        for symbol in [*_NON_SPEECH_SYMBOLS, *_MISCELLANEOUS_SYMBOLS]:
            for tokens in (self.encode(symbol), self.encode(" " + symbol)):
                if len(tokens) == 1 or symbol in _MISCELLANEOUS_SYMBOLS:
                    result.add(tokens[0])
        return tuple(sorted(result))

    # --------------------------------------------------------------------------------------------- word split

    def split_to_word_tokens(
        self, ids: Sequence[int], language: str | None = None
    ) -> tuple[list[str], list[list[int]]]:
        """Group ``ids`` into words: at spaces and punctuation, or at every complete character for languages
        written without spaces (zh, ja, th, lo, my, yue). Returns (words, the ids of each word)."""
        if language is not None and language_code(language) in _NO_SPACE_LANGUAGES:
            return self._split_on_unicode(ids)
        return self._split_on_spaces(ids)

    def _split_on_unicode(self, ids: Sequence[int]) -> tuple[list[str], list[list[int]]]:
        """Split wherever the ids decoded so far form complete UTF-8 characters."""
        decoded_full = self.decode_with_timestamps(ids)
        replacement_char = "\ufffd"
        words: list[str] = []
        word_tokens: list[list[int]] = []
        current: list[int] = []
        offset = 0
        for token in ids:
            current.append(token)
            decoded = self.decode_with_timestamps(current)
            if (
                replacement_char not in decoded
                or decoded_full[offset + decoded.index(replacement_char)] == replacement_char
            ):
                words.append(decoded)
                word_tokens.append(current)
                current = []
                offset += len(decoded)
        return words, word_tokens

    def _split_on_spaces(self, ids: Sequence[int]) -> tuple[list[str], list[list[int]]]:
        """Merge character pieces into words that start at a space, a punctuation mark or a special token."""
        words: list[str] = []
        word_tokens: list[list[int]] = []
        for subword, subword_tokens in zip(*self._split_on_unicode(ids), strict=True):
            special = subword_tokens[0] >= self.eot
            with_space = subword.startswith(" ")
            punctuation = subword.strip() in string.punctuation
            if special or with_space or punctuation or not words:
                words.append(subword)
                word_tokens.append(subword_tokens)
            else:
                words[-1] += subword
                word_tokens[-1].extend(subword_tokens)
        return words, word_tokens

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_vocab={self.n_vocab}, multilingual={self._multilingual}, "
            f"num_languages={self._num_languages})"
        )


# ----------------------------------------------------------------------------------------------- file readers


@lru_cache(maxsize=4)
def _load_tiktoken(path: str) -> tuple[Callable[[str], list[int]], tuple[bytes, ...]]:
    """Read a tiktoken ranks file once: (encode_ordinary, bytes of each token by id)."""
    if not Path(path).is_file():
        raise ModelLoadError(f"{path}: tiktoken ranks file not found")
    try:
        ranks = tiktoken.load.load_tiktoken_bpe(path)
    except (ValueError, OSError, UnicodeDecodeError) as exc:  # binascii.Error is a ValueError
        raise ModelLoadError(f"{path}: not a tiktoken ranks file ({exc})") from exc
    if not ranks or sorted(ranks.values()) != list(range(len(ranks))):
        raise ModelLoadError(f"{path}: ranks are not exactly 0..n-1")
    encoding = tiktoken.Encoding(
        name=Path(path).stem, pat_str=_PAT_STR, mergeable_ranks=ranks, special_tokens={}
    )
    token_bytes = tuple(sorted(ranks, key=ranks.__getitem__))
    return encoding.encode_ordinary, token_bytes


def _read_json(path: Path) -> dict:
    """Parse a JSON object from ``path``, raising ModelLoadError naming the file."""
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: tokenizer file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: not a readable tokenizer.json ({exc})") from exc
    if not isinstance(spec, dict):
        raise ModelLoadError(f"{path}: not a tokenizer.json (top level is not an object)")
    return spec


@lru_cache(maxsize=1)
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map used by byte-level BPE vocabularies."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping
