"""`WhisperASR`: a loaded Whisper model, its tokenizer and front end behind one `transcribe()` call."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..audio.constants import SAMPLE_RATE
from ..audio.features import WhisperLogMel
from ..audio.io import STDIN_NAME, audio_info, iter_audio_windows, load_audio
from ..decoding.options import DecodingOptions
from ..errors import ConfigError
from ..text.tokenizers.whisper import WhisperTokenizer
from .transcribe import AudioStream, TranscribeOptions, Transcript, load_inputs, transcribe_audio
from .whisper import Whisper, quantize_dynamic_int8
from .whisper_loaders import load_whisper

AudioInput = str | Path | bytes | np.ndarray | torch.Tensor | AudioStream
COMPUTE_TYPES = ("float32", "int8", "int8_all", "float16", "bfloat16")
# which parts each int8 compute type quantizes (see quantize_dynamic_int8 for the measurements)
INT8_PARTS = {"int8": ("decoder",), "int8_all": ("encoder", "decoder")}
_DECODING_FIELDS = {f.name for f in dataclasses.fields(DecodingOptions)}
_TRANSCRIBE_FIELDS = {f.name for f in dataclasses.fields(TranscribeOptions)} - {"decoding"}


def split_options(**options: Any) -> TranscribeOptions:
    """Flat keyword options (as the CLI and the Python API take them) -> TranscribeOptions.

    `temperature` may be one value or a fallback ladder; `beam_size`, `language`, ... go to DecodingOptions.
    Unknown keys are errors.
    """
    unknown = set(options) - _DECODING_FIELDS - _TRANSCRIBE_FIELDS
    if unknown:
        raise ConfigError(
            f"unknown transcribe option(s): {', '.join(sorted(unknown))}; known: "
            f"{', '.join(sorted((_DECODING_FIELDS | _TRANSCRIBE_FIELDS) - {'temperature'}))}"
            ", temperature"
        )
    temperature = options.pop("temperature", None)
    decoding_kwargs = {k: options.pop(k) for k in list(options) if k in _DECODING_FIELDS}
    if temperature is not None:
        temps = (
            (float(temperature),) if isinstance(temperature, (int, float)) else tuple(map(float, temperature))
        )
        options["temperatures"] = temps
    return TranscribeOptions(decoding=DecodingOptions(**decoding_kwargs), **options)


STREAM_BLOCK_S = 30.0  # files are decoded this many seconds at a time


def open_audio(source: AudioInput) -> AudioStream | np.ndarray:
    """A file path becomes a stream (header checked now, samples decoded window by window); anything else
    (stdin, bytes, arrays) is decoded whole. Raises AudioError naming the input."""
    if isinstance(source, AudioStream):
        return source
    if isinstance(source, (str, Path)) and str(source) != STDIN_NAME:
        duration, _ = audio_info(source)

        def open_blocks():
            return (samples for _, samples in iter_audio_windows(source, STREAM_BLOCK_S, SAMPLE_RATE))

        return AudioStream(open_blocks, duration=duration)
    return load_audio(source, SAMPLE_RATE)


class WhisperASR:
    """Whisper speech recognition: `transcribe(audio)` for one input, `transcribe_batch(inputs)` for many."""

    def __init__(
        self,
        model: Whisper,
        tokenizer: WhisperTokenizer,
        *,
        name: str = "whisper",
        compute_type: str = "float32",
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.compute_type = compute_type
        self.device = model.device
        self.frontend = WhisperLogMel(n_mels=model.dims.n_mels).to(self.device)
        self._vad = None
        self._stream_engines: dict[tuple, Any] = {}

    @classmethod
    def from_path(
        cls,
        path: str | Path,
        *,
        name: str | None = None,
        device: str | None = None,
        compute_type: str | None = None,
    ) -> "WhisperASR":
        """Load OpenAI .pt, our .safetensors, a Hugging Face dir or a CTranslate2 dir.

        compute_type: int8 (CPU default: int8 decoder, float32 encoder; fast and as accurate), float32 (exactly
        the references' transcripts),
        int8_all (encoder too: faster, less accurate), float16/bfloat16
        (CUDA default float16).
        """
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        compute_type = compute_type or ("float16" if dev.type == "cuda" else "int8")
        if compute_type not in COMPUTE_TYPES:
            raise ConfigError(f"compute_type must be one of {COMPUTE_TYPES}, got {compute_type!r}")
        if compute_type in INT8_PARTS and dev.type != "cpu":
            raise ConfigError(f"compute_type {compute_type} (dynamic quantisation) runs on CPU only")
        loaded = load_whisper(path)
        model = loaded.model.eval()
        if compute_type in INT8_PARTS:
            model = quantize_dynamic_int8(model, inplace=True, parts=INT8_PARTS[compute_type])
        elif compute_type in ("float16", "bfloat16"):
            model = model.to(dtype=getattr(torch, compute_type))
        model = model.to(dev)
        tokenizer = WhisperTokenizer.for_vocab(model.dims.n_vocab, tokenizer_json=loaded.tokenizer_json)
        return cls(model, tokenizer, name=name or str(path), compute_type=compute_type)

    # -- front end -------------------------------------------------------------------------------------------
    @property
    def vad(self):
        if self._vad is None:
            from ..audio.vad import SileroVAD

            self._vad = SileroVAD()
        return self._vad

    # -- public API ------------------------------------------------------------------------------------------
    def transcribe(self, audio: AudioInput, **options: Any) -> Transcript:
        """Transcribe one file path, '-' (stdin), encoded bytes, or a 16 kHz float array."""
        return self.transcribe_batch([audio], **options)[0]

    def transcribe_batch(
        self, audios: Sequence[AudioInput], *, progress: bool | None = None, errors: str = "raise",
        on_segments: Any = None, **options: Any
    ) -> list[Transcript]:
        """Transcribe many inputs; short ones share decoder batches (`batch_size`, default 4).

        ``errors="return"`` puts an input's :class:`AudioError` in its place in the result instead of raising it,
        so one unreadable file does not cost the others (the CLI's way). ``on_segments(index, segments)`` hears
        each input's segments as they are decoded."""
        topts = split_options(**options)
        try:  # the language and task this model can do, checked before any audio is read
            self.tokenizer.sot_sequence(language=topts.decoding.language, task=topts.decoding.task)
        except ConfigError as e:
            raise ConfigError(f"{self.name}: {e}") from None
        sources, failed = load_inputs(audios, open_audio, errors, lambda: np.zeros(0, np.float32))
        results = transcribe_audio(
            self.model,
            self.tokenizer,
            sources,
            topts,
            frontend=self.frontend,
            vad=self.vad if topts.vad else None,
            progress=progress,
            errors=errors,
            on_segments=on_segments,
        )
        return [failed.get(i, r) for i, r in enumerate(results)]

    # -- streaming -------------------------------------------------------------------------------------------
    def stream_engine(self, policy: str = "local-agreement", chunk_ms: float = 1000, **options: Any) -> Any:
        """The shared streaming engine for these options (made once; streams of one engine batch together).

        policy: "local-agreement" (LocalAgreement-2, whisper_streaming) or "alignatt" (AlignAtt, SimulStreaming);
        options: ``language``, ``task`` and the policy's settings (``max_buffer_s``, ``frame_threshold``, ...; see
        :mod:`seqspeech.asr.whisper_streaming`)."""
        from .streaming import chunk_samples_from_ms
        from .whisper_streaming import whisper_stream_engine

        chunk_s = chunk_samples_from_ms(chunk_ms) / SAMPLE_RATE
        key = (policy, chunk_s, repr(sorted(options.items())))
        if key not in self._stream_engines:
            try:
                self._stream_engines[key] = whisper_stream_engine(
                    self.model, self.tokenizer, self.frontend, policy=policy, chunk_s=chunk_s, **options)
            except ConfigError as e:
                raise ConfigError(f"{self.name}: {e}") from None
        return self._stream_engines[key]

    def stream(self, policy: str = "local-agreement", chunk_ms: float = 1000, *, endpoint: Any = None,
               **options: Any) -> Any:
        """A new :class:`~seqspeech.asr.streaming.StreamingRecognizer` over :meth:`stream_engine`'s engine;
        ``endpoint``: an :class:`~seqspeech.asr.streaming.EndpointConfig` (default: sherpa-onnx's rules)."""
        from .streaming import EndpointConfig, StreamingRecognizer

        engine = self.stream_engine(policy, chunk_ms, **options)
        return StreamingRecognizer(engine, endpoint=EndpointConfig() if endpoint is None else endpoint)
