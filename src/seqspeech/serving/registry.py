"""The models a server was started with, and how a request's ``model`` / ``voice`` name finds one.

A request names a model from this list only (or an OpenAI alias of a default): never a path. The operator may start
the server with a zoo name or a local path; a path is served under its folder or file name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

# OpenAI's names, for drop-in clients: they map to the server's default recogniser / voice
ASR_ALIASES = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
TTS_ALIASES = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse")
KINDS = ("asr", "tts")


class UnknownModelError(LookupError):
    """A request named a model (or voice) this server does not serve."""


@dataclass
class ServedModel:
    """One model behind the server: its public ``name``, ``kind`` ("asr" or "tts"), zoo ``family`` and a ``load``
    function (called once, at start). Its work runs on its own single thread (``executor``): a model computes one
    batch at a time, and the batcher feeds it."""

    name: str
    kind: str
    family: str
    load: Callable[[], Any]
    instance: Any = None
    executor: ThreadPoolExecutor = field(default=None)  # type: ignore[assignment]
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"model kind must be one of {KINDS}, got {self.kind!r}")
        if self.executor is None:
            self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"model-{self.name}")

    def get(self) -> Any:
        """The loaded model (loaded on first use)."""
        with self._lock:
            if self.instance is None:
                self.instance = self.load()
            return self.instance

    @property
    def can_stream(self) -> bool:
        return self.kind == "asr" and callable(getattr(self.get(), "stream", None))


def served_name(name_or_path: str) -> str:
    """How a model given at start is named to clients: a zoo name as it is, a path by its last component."""
    from ..zoo import MODELS

    if name_or_path in MODELS:
        return name_or_path
    path = Path(name_or_path)
    return path.stem if path.suffix in (".safetensors", ".pt") else path.name


def model_from_zoo(name_or_path: str, *, device: str | None = None, backend: str = "torch") -> ServedModel:
    """A :class:`ServedModel` for a zoo name or local path (``backend="onnx"``: a folder from ``seqspeech export``)."""
    import seqspeech

    if backend == "onnx":
        from ..export.runtime import load_onnx_model  # type: ignore[import-not-found]

        model = warmed_up(load_onnx_model(name_or_path))
        kind = "tts" if hasattr(model, "synthesize_stream") else "asr"
        return ServedModel(served_name(name_or_path), kind, getattr(model, "family", "onnx"), lambda: model,
                           instance=model)
    from ..zoo import resolve

    _, family = resolve(name_or_path)
    if family == "tts":
        return ServedModel(served_name(name_or_path), "tts", family,
                           lambda: warmed_up(seqspeech.load_voice(name_or_path, device=device)))
    return ServedModel(served_name(name_or_path), "asr", family,
                       lambda: warmed_up(seqspeech.load_model(name_or_path, device=device)))


WARMUP_TEXT = "Ready."
WARMUP_SECONDS = 1.0


def warmed_up(model: Any) -> Any:
    """``model`` after one small job, so the first request does not pay for lazy initialisation (measured: the
    first speech request of a fresh voice took 2.7 s to its first byte, later ones 0.2 s)."""
    import numpy as np

    if hasattr(model, "synthesize_stream"):
        for _ in model.synthesize_stream(WARMUP_TEXT, progress=False):
            pass
    else:
        rng = np.random.default_rng(0)
        model.transcribe(rng.normal(0, 0.01, round(WARMUP_SECONDS * 16000)).astype(np.float32))
    return model


class ModelRegistry:
    """The served models by name; the first ASR model and the first voice are the defaults the OpenAI names use."""

    def __init__(self, models: Sequence[ServedModel]) -> None:
        self.models: dict[str, ServedModel] = {}
        for m in models:
            if m.name in self.models:
                raise ConfigError(f"two models are served as {m.name!r}; give each a distinct name")
            if m.name in ASR_ALIASES + TTS_ALIASES:
                raise ConfigError(f"{m.name!r} is reserved for OpenAI's name of the default model")
            self.models[m.name] = m
        if not self.models:
            raise ConfigError("a server needs at least one model")
        self.default_asr = next((m.name for m in models if m.kind == "asr"), None)
        self.default_voice = next((m.name for m in models if m.kind == "tts"), None)

    def names(self, kind: str | None = None) -> list[str]:
        return [n for n, m in self.models.items() if kind is None or m.kind == kind]

    def aliases(self) -> dict[str, str]:
        """OpenAI model names -> the served model they stand for."""
        out = {}
        if self.default_asr:
            out.update(dict.fromkeys(ASR_ALIASES, self.default_asr))
        if self.default_voice:
            out.update(dict.fromkeys(TTS_ALIASES, self.default_voice))
        return out

    def find(self, name: str | None, kind: str) -> ServedModel:
        """The served model of ``kind`` a request's ``model`` names (None: the default). UnknownModelError when this
        server has no such model, ConfigError when it names a model of the other kind."""
        default = self.default_asr if kind == "asr" else self.default_voice
        key = name or default
        key = self.aliases().get(key, key) if key else key
        if key is None or key not in self.models:
            known = ", ".join(self.names(kind) + [a for a, t in self.aliases().items() if self.models[t].kind == kind])
            raise UnknownModelError(f"model {name!r} is not served here (served: {known or 'none of this kind'})")
        model = self.models[key]
        if model.kind != kind:
            what = "speech recognition" if kind == "asr" else "text-to-speech"
            raise ConfigError(f"model {name!r} is a {'voice' if model.kind == 'tts' else 'recogniser'}, not a "
                              f"{what} model")
        return model

    def find_voice(self, model: str | None, voice: str | None) -> ServedModel:
        """The voice for ``/v1/audio/speech``: ``voice`` when it names one of ours; an OpenAI voice name (or none)
        takes ``model``'s voice (``tts-1``: the default voice)."""
        if voice and voice in self.models:
            return self.find(voice, "tts")
        if voice and voice not in OPENAI_VOICES:
            ours = ", ".join(self.names("tts"))
            raise UnknownModelError(f"voice {voice!r} is not served here (voices: {ours}, or OpenAI's names "
                                    f"{', '.join(OPENAI_VOICES)} for the default)")
        return self.find(model, "tts")

    def load_all(self) -> None:
        """Load every model now (a bad one fails the start, not a request)."""
        for m in self.models.values():
            m.get()

    def close(self) -> None:
        for m in self.models.values():
            m.executor.shutdown(wait=False, cancel_futures=True)
