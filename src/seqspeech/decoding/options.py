"""Decoding options and results: frozen, validated at construction, shared by every attention decoder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from ..errors import ConfigError

TASKS = ("transcribe", "translate")


@dataclass(frozen=True)
class DecodingOptions:
    """What to decode and how. One instance describes one pass over a batch of inputs.

    temperature 0 selects greedy (beam_size None/1) or beam search (beam_size > 1; `best_of` is ignored);
    temperature > 0 samples `best_of` independent trajectories and keeps the best ranked one (`beam_size` and
    `patience` are ignored). So one instance carries both, as openai-whisper's and faster-whisper's transcribe take
    them: beam search for the temperature-0 pass, `best_of` samples for the fallback temperatures.
    """

    task: str = "transcribe"
    language: str | None = None  # None: detect it (multilingual models) or English (English-only models)

    temperature: float = 0.0
    sample_len: int | None = None  # max new tokens; None: half the decoder context
    best_of: int | None = None  # independent samples when temperature > 0 (ignored at temperature 0)
    beam_size: int | None = None  # beams when temperature == 0 (ignored when sampling)
    patience: float | None = None  # beam search patience (arXiv:2204.05424): stop after beam_size*patience ends
    length_penalty: float | None = (
        None  # None: rank by average log-prob; alpha: Google NMT's ((5+len)/6)^alpha
    )

    prompt: str | Sequence[int] | None = None  # previous-context text or tokens (<|startofprev|> ...)
    prefix: str | Sequence[int] | None = None  # forced start of the current output

    suppress_tokens: str | Iterable[int] | None = "-1"  # "-1": the tokenizer's non-speech symbols
    suppress_blank: bool = True  # forbid a blank (space or end) as the first sampled token

    without_timestamps: bool = False  # decode text only (<|notimestamps|>)
    max_initial_timestamp: float | None = 1.0  # seconds; the first timestamp may not be later than this

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {TASKS}, got {self.task!r}")
        if not 0 <= self.temperature < float("inf"):
            raise ConfigError(f"temperature must be finite and >= 0, got {self.temperature}")
        if self.beam_size is not None and self.beam_size < 1:
            raise ConfigError(f"beam_size must be >= 1, got {self.beam_size}")
        if self.best_of is not None and self.best_of < 1:
            raise ConfigError(f"best_of must be >= 1, got {self.best_of}")
        if self.patience is not None and not 0 < self.patience < float("inf"):
            raise ConfigError(f"patience must be > 0, got {self.patience}")
        if self.length_penalty is not None and not 0 <= self.length_penalty <= 1:
            raise ConfigError(f"length_penalty must be in [0, 1], got {self.length_penalty}")
        if self.sample_len is not None and self.sample_len < 1:
            raise ConfigError(f"sample_len must be >= 1, got {self.sample_len}")


@dataclass(frozen=True)
class DecodingResult:
    """One decoded hypothesis for one input."""

    tokens: list[int] = field(default_factory=list)  # sampled tokens, prompt and end-of-text excluded
    text: str = ""
    language: str | None = None
    language_probs: dict[str, float] | None = None
    avg_logprob: float = float("nan")
    sum_logprob: float = float("nan")
    no_speech_prob: float = float("nan")
    temperature: float = float("nan")
    compression_ratio: float = float("nan")


# how `seqspeech transcribe` and the server decode Whisper unless told otherwise
WHISPER_BEAM_SIZE = 5  # beam 5, as faster-whisper's CLI does
WHISPER_BEST_OF = 5  # samples per fallback temperature (openai-whisper's and faster-whisper's default)


def temperature_ladder(start: float, increment: float | None) -> tuple[float, ...]:
    """openai-whisper's ladder: start, start + increment, ... up to 1.0 (increment 0 or None: start alone)."""
    if not increment:
        return (start,)
    if not 0 < increment <= 1:
        raise ConfigError(f"--temperature-increment-on-fallback must be in (0, 1] (or 0: no fallback), got {increment}")
    temps, t = [], start
    while t <= 1.0 + 1e-6:
        temps.append(round(t, 4))
        t += increment
    return tuple(temps) or (start,)
