"""Text in, waveform out: front end -> acoustic model (FastSpeech 2 or Tacotron 2) -> vocoder -> watermark.

``Synthesizer.synthesize(text)`` returns the whole waveform; ``synthesize_stream(text)`` yields audio chunks as
soon as they are ready: sentence by sentence, the acoustic model's mel chunks are vocoded with overlap (so joins are
inaudible) and watermarked on the fly. Both paths share every step, so a stream concatenates to the offline audio
except within the vocoder's overlap regions (Griffin-Lim) — exactly with HiFi-GAN, whose receptive field is finite.
``synthesize_sentences(text)`` yields the offline audio a sentence at a time: long text (a book chapter) in bounded
memory. The two generators take ``progress`` (a bar over sentences on stderr, :mod:`seqspeech.progress`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DataError, ModelLoadError
from .mel import MelConfig
from .package import (ACOUSTIC_FAMILIES, ACOUSTIC_FILE, VOCODER_FAMILIES, VOCODER_FILE, TTSPackage, acoustic_file,
                      load_tts_package)

# 512 ms of audio per streamed mel chunk at hop 256 / 16 kHz: the first chunk alone yields audio, since it covers the
# HiFi-GAN look-ahead (13 frames) plus the watermark's first block and look-ahead (4,560 samples: 18 frames)
DEFAULT_CHUNK_FRAMES = 32
SENTENCE_PAUSE_S = 0.12


@dataclass(frozen=True)
class SynthesisOptions:
    """``speed`` > 1 speaks faster; ``pitch`` shifts by semitones and ``energy`` scales loudness (FastSpeech 2;
    Tacotron 2 supports ``speed`` only, by resampling its mel in time); ``watermark`` embeds the keyed watermark."""

    speed: float = 1.0
    pitch: float = 0.0
    energy: float = 1.0
    watermark: bool = True
    chunk_frames: int = DEFAULT_CHUNK_FRAMES
    seed: int | None = 0  # Tacotron 2's prenet dropout stays on at inference: a seed makes its output repeatable

    def __post_init__(self) -> None:
        if not 0.25 <= self.speed <= 4.0:
            raise ConfigError(f"speed must lie in [0.25, 4], got {self.speed}")
        if not -12.0 <= self.pitch <= 12.0:
            raise ConfigError(f"pitch shift must lie in [-12, 12] semitones, got {self.pitch}")
        if not 0.1 <= self.energy <= 4.0:
            raise ConfigError(f"energy scale must lie in [0.1, 4], got {self.energy}")
        if self.chunk_frames < 4:
            raise ConfigError(f"chunk_frames must be >= 4, got {self.chunk_frames}")


class Synthesizer:
    """A voice: acoustic model package + vocoder (a HiFi-GAN package, or Griffin-Lim when None)."""

    def __init__(self, acoustic: TTSPackage, vocoder: TTSPackage | None = None, *,
                 device: str | torch.device | None = None) -> None:
        if acoustic.family not in ACOUSTIC_FAMILIES:
            raise ModelLoadError(f"{acoustic.path}: a {acoustic.family!r} model cannot speak text; need one of "
                                 f"{ACOUSTIC_FAMILIES}")
        if acoustic.frontend is None:
            raise ModelLoadError(f"{acoustic.path}: the acoustic model has no text front end in its metadata")
        if vocoder is not None and vocoder.mel != acoustic.mel:
            raise ModelLoadError(f"{vocoder.path}: the vocoder's mel settings {vocoder.mel} differ from the acoustic "
                                 f"model's {acoustic.mel}")
        self.acoustic = acoustic
        self.device = torch.device(device) if device else next(acoustic.model.parameters()).device
        self.acoustic.model.to(self.device)
        if vocoder is None:
            from .vocoders.griffin_lim import GriffinLim

            self.vocoder: Any = GriffinLim(acoustic.mel).to(self.device)
            self.vocoder_name = "griffin-lim"
        else:
            self.vocoder = vocoder.model.to(self.device)
            self.vocoder_name = vocoder.family
        self.mel_config: MelConfig = acoustic.mel
        self.frontend = acoustic.frontend

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_path(cls, path: str | os.PathLike, *, vocoder: str | os.PathLike | None = None,
                  device: str | torch.device | None = None) -> Synthesizer:
        """A voice folder (``acoustic.safetensors`` + optional ``vocoder.safetensors``), a TTS training run's folder
        (its ``model.safetensors``; Griffin-Lim unless ``vocoder`` is given) or an acoustic model file;
        ``vocoder``: a HiFi-GAN package path, ``"griffin-lim"``, or None (the folder's vocoder, else Griffin-Lim)."""
        p = Path(path)
        if not p.exists():
            raise ModelLoadError(f"{p}: no such voice folder or model file")
        acoustic_path = acoustic_file(p) if p.is_dir() else p
        if acoustic_path is None:
            raise ModelLoadError(f"{p}: not a voice: no acoustic model ({ACOUSTIC_FILE}, or the model.safetensors "
                                 "of a FastSpeech 2 or Tacotron 2 training run) in this folder")
        acoustic = load_tts_package(acoustic_path, family=ACOUSTIC_FAMILIES, device=device)
        voc: TTSPackage | None = None
        if vocoder is None and p.is_dir() and (p / VOCODER_FILE).is_file():
            vocoder = p / VOCODER_FILE
        if vocoder is not None and str(vocoder) != "griffin-lim":
            vocoder_path = Path(vocoder)
            if vocoder_path.is_dir():  # a voice folder: its vocoder
                if not (vocoder_path / VOCODER_FILE).is_file():
                    raise ModelLoadError(f"{vocoder_path}: a folder without a vocoder ({VOCODER_FILE}); give a "
                                         "HiFi-GAN file, a voice folder that has one, or griffin-lim")
                vocoder_path = vocoder_path / VOCODER_FILE
            voc = load_tts_package(vocoder_path, family=VOCODER_FAMILIES, device=device)
        return cls(acoustic, voc, device=device)

    @property
    def sample_rate(self) -> int:
        return self.mel_config.sample_rate

    # ------------------------------------------------------------------ steps
    def sentences(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise DataError(f"text must be a string, got {type(text).__name__}")
        parts = [s for s in self.frontend.split_sentences(text) if s.strip()]
        speakable = []
        for s in parts:
            try:
                self.frontend.encode(s)
            except DataError:
                continue  # e.g. a stray "..." between sentences
            speakable.append(s)
        if not speakable:
            self.frontend.encode(text)  # raises the front end's clear error for the whole text
            raise DataError(f"nothing speakable in {text[:80]!r}")
        return speakable

    def _tokens(self, sentence: str) -> torch.Tensor:
        return torch.tensor([self.frontend.encode(sentence)], dtype=torch.long, device=self.device)

    def _fs2_kwargs(self, opts: SynthesisOptions) -> dict[str, float]:
        return {"speed": opts.speed, "pitch_shift": opts.pitch, "energy_scale": opts.energy}

    def _generator(self, opts: SynthesisOptions) -> torch.Generator | None:
        if opts.seed is None:
            return None
        return torch.Generator(device=self.device).manual_seed(opts.seed)

    def _check_controls(self, opts: SynthesisOptions) -> None:
        if self.acoustic.family == "tacotron2" and (opts.pitch != 0.0 or opts.energy != 1.0):
            raise ConfigError("pitch and energy controls need a FastSpeech 2 voice; Tacotron 2 supports speed only")

    @torch.inference_mode()
    def mel(self, sentence: str, opts: SynthesisOptions | None = None) -> torch.Tensor:
        """The acoustic model's log-mel ``(n_mels, T)`` for one sentence."""
        opts = opts or SynthesisOptions()
        self._check_controls(opts)
        tokens = self._tokens(sentence)
        lens = torch.tensor([tokens.shape[1]], device=self.device)
        model = self.acoustic.model
        if self.acoustic.family == "fastspeech2":
            out = model.infer(tokens, lens, **self._fs2_kwargs(opts))
        else:
            out = model.infer(tokens, lens, generator=self._generator(opts))
        mel = out.mels[0, :, : int(out.mel_lens[0])]
        return _stretch(mel, opts.speed) if self.acoustic.family == "tacotron2" else mel

    def mel_chunks(self, sentence: str, opts: SynthesisOptions) -> Iterator[torch.Tensor]:
        """The same mel as :meth:`mel`, in chunks as the acoustic model produces them."""
        self._check_controls(opts)
        tokens = self._tokens(sentence)
        model = self.acoustic.model
        with torch.inference_mode():
            if self.acoustic.family == "fastspeech2":
                yield from model.infer_stream(tokens, chunk_frames=opts.chunk_frames, **self._fs2_kwargs(opts))
            elif opts.speed != 1.0:  # resampling in time needs the whole mel
                yield self.mel(sentence, opts)
            else:
                yield from model.infer_stream(tokens, chunk_frames=opts.chunk_frames, generator=self._generator(opts))

    @torch.inference_mode()
    def vocode(self, mel: torch.Tensor) -> np.ndarray:
        wave = self.vocoder.infer(mel.unsqueeze(0).to(self.device))
        return wave.reshape(-1).float().cpu().numpy()

    def _pause(self) -> np.ndarray:
        return np.zeros(round(SENTENCE_PAUSE_S * self.sample_rate), np.float32)

    # ------------------------------------------------------------------ public
    def synthesize(self, text: str, **options: Any) -> np.ndarray:
        """Speak ``text``: float32 mono samples at :attr:`sample_rate` (options: :class:`SynthesisOptions`).

        The whole waveform is held in memory (about 4 bytes x 16,000 a second, times a few while it is marked):
        for long text use :meth:`synthesize_sentences`, which yields it a sentence at a time.
        """
        opts = SynthesisOptions(**options)
        pieces: list[np.ndarray] = []
        for i, sentence in enumerate(self.sentences(text)):
            if i:
                pieces.append(self._pause())
            pieces.append(self.vocode(self.mel(sentence, opts)))
        wave = np.clip(np.concatenate(pieces), -1.0, 1.0).astype(np.float32)
        if opts.watermark:
            from ..audio.watermark import embed_watermark

            wave = embed_watermark(wave, self.sample_rate)
        return wave

    def synthesize_sentences(self, text: str, *, progress: bool | None = None,
                             **options: Any) -> Iterator[np.ndarray]:
        """Yield the audio of ``text`` about a sentence at a time (float32 chunks; the watermark's look-ahead
        holds back the last fraction of a second of each until the next): memory stays bounded however long the
        text, and a caller can write each chunk out as it comes.

        The chunks concatenate to :meth:`synthesize`'s waveform, except that a sample the watermark would push
        past full scale is clipped instead of the whole waveform being scaled down. ``progress``: a bar over the
        sentences on stderr (None: when stderr is a terminal and the work takes more than 2 s).

        Raises:
            DataError: the text has nothing to speak (before anything is yielded).
            ConfigError: a bad option.
        """
        opts = SynthesisOptions(**options)
        marker = self._marker(opts)
        for i, sentence in self._sentence_bar(text, progress):
            pieces = [self._pause()] if i else []
            pieces.append(self.vocode(self.mel(sentence, opts)))
            yield from _emit(marker, np.concatenate(pieces))
        yield from _finish(marker)

    def synthesize_stream(self, text: str, *, progress: bool | None = None,
                          **options: Any) -> Iterator[np.ndarray]:
        """Yield float32 audio chunks of ``text`` as they are ready (watermarked unless ``watermark=False``);
        ``progress``: a bar over the sentences on stderr (None: when stderr is a terminal, after 2 s).

        One :class:`SpeechStream` stepped alone: :meth:`step_streams` steps many at once (the server batches the
        requests of one voice so)."""
        from ..progress import progress_bar

        stream = self.open_stream(text, **options)
        bar = progress_bar(len(stream.sentences), desc="synthesize", unit="sentence", enabled=progress)
        shown = 0
        try:
            while not stream.done:
                samples = self.step_streams([stream])[0]
                bar.update(stream.index - shown)
                shown = stream.index
                if samples.size:
                    yield samples
        finally:
            bar.close()

    def open_stream(self, text: str, **options: Any) -> SpeechStream:
        """A :class:`SpeechStream` of ``text`` for :meth:`step_streams`.

        Raises:
            DataError: the text has nothing to speak. ConfigError: a bad option."""
        opts = SynthesisOptions(**options)
        self._check_controls(opts)
        return SpeechStream(self.sentences(text), opts, self._marker(opts))

    def step_streams(self, streams: list[SpeechStream]) -> list[np.ndarray]:
        """Advance each stream by one mel chunk: the FastSpeech 2 decoder runs once over the chunks of all streams
        (with a ``decoder_window``), and the vocoder once over their windows (:func:`push_streams`). Returns each
        stream's new float32 samples (possibly empty; a finished stream gives none). A stream's chunks
        concatenate to what it gives stepped alone, up to float rounding."""
        from .vocoders.streaming import StreamingVocoder, push_streams

        live = [st for st in streams if not st.done]
        heads: dict[int, list[np.ndarray]] = {id(st): [] for st in streams}
        for st in live:
            if st.source is None:  # the next sentence begins
                if st.index:
                    heads[id(st)].append(self._pause())
                st.source = self._mel_source(st.sentences[st.index], st.opts)
                st.vocoder = StreamingVocoder(self.vocoder)
        windowed = [st for st in live if isinstance(st.source, _Windows)]
        jobs = [st.source.next_job() for st in windowed if st.source.left()]
        decoded = self.acoustic.model.decode_windows(jobs) if jobs else []
        chunks: dict[int, torch.Tensor] = {}
        for st in windowed:
            chunks[id(st)] = decoded.pop(0) if st.source.left() else self._empty_mel()
            st.source.advance()
        finals = []
        for st in live:
            if isinstance(st.source, _Windows):
                finals.append(not st.source.left())
            else:  # a generator, one chunk ahead so its last chunk is known as such
                chunks[id(st)] = st.source.pending if st.source.pending is not None else self._empty_mel()
                st.source.advance()
                finals.append(st.source.pending is None)
        with torch.inference_mode():
            waves = push_streams([st.vocoder for st in live], [chunks[id(st)].to(self.device) for st in live], finals)
        done_now = {id(st): (wave, final) for st, wave, final in zip(live, waves, finals)}
        out: list[np.ndarray] = []
        for st in streams:
            pieces = heads[id(st)]
            if id(st) in done_now:
                wave, final = done_now[id(st)]
                pieces.append(_to_numpy(wave))
                if final:
                    st.source, st.index = None, st.index + 1
            marked = [x for piece in pieces for x in _emit(st.marker, piece)]
            if id(st) in done_now and st.index == len(st.sentences):
                marked.extend(_finish(st.marker))
                st.done = True
            out.append(np.concatenate(marked) if marked else np.zeros(0, np.float32))
        return out

    def _mel_source(self, sentence: str, opts: SynthesisOptions) -> _Windows | MelChunks:
        model = self.acoustic.model
        if self.acoustic.family == "fastspeech2" and model.stream_context is not None:
            with torch.inference_mode():
                frames = model.regulated(self._tokens(sentence), opts.speed, opts.pitch, opts.energy)
            return _Windows(frames, model.stream_windows(frames.size(0), opts.chunk_frames))
        return MelChunks(self.mel_chunks(sentence, opts))

    def _empty_mel(self) -> torch.Tensor:
        return torch.zeros(self.mel_config.n_mels, 0, device=self.device)

    def _marker(self, opts: SynthesisOptions) -> Any:
        if not opts.watermark:
            return None
        from ..audio.watermark import StreamingWatermarker

        return StreamingWatermarker(self.sample_rate)

    def _sentence_bar(self, text: str, progress: bool | None) -> Iterator[tuple[int, str]]:
        """``(index, sentence)`` of ``text``'s speakable sentences, advancing a progress bar (closed at the end,
        on an error, and when the caller stops early)."""
        from ..progress import progress_bar

        sentences = self.sentences(text)
        bar = progress_bar(len(sentences), desc="synthesize", unit="sentence", enabled=progress)
        try:
            for i, sentence in enumerate(sentences):
                yield i, sentence
                bar.update(1)
        finally:
            bar.close()


def _emit(marker: Any, samples: np.ndarray) -> Iterator[np.ndarray]:
    """``samples`` clipped to [-1, 1] and pushed through the watermarker (when there is one): what is final."""
    samples = np.clip(np.asarray(samples, dtype=np.float32).reshape(-1), -1.0, 1.0)
    if marker is not None:
        samples = marker.push(samples)
    if samples.size:
        yield samples


def _finish(marker: Any) -> Iterator[np.ndarray]:
    if marker is not None:
        tail = marker.finish()
        if tail.size:
            yield tail


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.reshape(-1).float().cpu().numpy()
    return np.asarray(x, dtype=np.float32).reshape(-1)


def _stretch(mel: torch.Tensor, speed: float) -> torch.Tensor:
    """Resample a mel ``(n_mels, T)`` in time to ``T / speed`` frames (linear interpolation)."""
    if speed == 1.0:
        return mel
    frames = max(1, round(mel.shape[-1] / speed))
    return torch.nn.functional.interpolate(mel.unsqueeze(0), size=frames, mode="linear",
                                           align_corners=True).squeeze(0)


@dataclass(eq=False)
class SpeechStream:
    """One text being spoken, between :meth:`Synthesizer.step_streams` calls: its sentences, the one being
    spoken (``index``) and where in it (``source``: its mel chunks to come; ``vocoder``: its streaming vocoder),
    and the watermarker's state. ``done`` once all its audio was returned."""

    sentences: list[str]
    opts: SynthesisOptions
    marker: Any
    index: int = 0
    source: Any = None
    vocoder: Any = None
    done: bool = False


class _Windows:
    """A FastSpeech 2 sentence's regulated frames and the chunks still to decode from them (batched across
    streams by :meth:`FastSpeech2.decode_windows`)."""

    def __init__(self, frames: torch.Tensor, windows: list[tuple[int, int]]) -> None:
        self.frames, self.windows = frames, windows

    def left(self) -> bool:
        return bool(self.windows)

    def next_job(self) -> tuple[torch.Tensor, tuple[int, int]]:
        return self.frames, self.windows[0]

    def advance(self) -> None:
        self.windows = self.windows[1:]


class MelChunks:
    """Mel chunks from a generator (Tacotron 2, a global-attention FastSpeech 2), one read ahead so the last is
    known."""

    def __init__(self, chunks: Iterator[torch.Tensor]) -> None:
        self.chunks = chunks
        self.pending: torch.Tensor | None = next(chunks, None)

    def advance(self) -> None:
        self.pending = next(self.chunks, None)
