"""Long audio for models trained on short utterances: fixed windows, batched by length, one Transcript per input.

A subclass implements :meth:`WindowedASR.decode_windows` (a batch of waveform windows -> one :class:`Segment`
each, times relative to the window start); this class cuts the inputs, orders windows longest first so batches
pad little, shifts segment (and word) times to the input's clock and assembles the transcripts. A subclass that
sets ``supports_word_timestamps`` gets ``word_timestamps=True`` in ``decode_windows``' options when asked for
words, and fills each segment's ``words``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..audio.constants import SAMPLE_RATE
from ..audio.io import load_audio
from ..errors import AudioError, ConfigError, ModelLoadError
from ..progress import progress_bar
from .transcribe import AudioStream, Segment, Transcript, load_inputs

# the model families whose transcripts can carry word timestamps (Whisper: cross-attention DTW; CTC: forced
# alignment); the others raise ConfigError when asked
WORD_TIMESTAMP_FAMILIES = ("whisper", "ctc")

AudioInput = str | Path | bytes | np.ndarray | torch.Tensor | AudioStream
SegmentCallback = Callable[[int, list[Segment]], None]  # (input index, its next segments)
MIN_SPEECH_SAMPLES = SAMPLE_RATE // 10  # 0.1 s: shorter audio holds no word
SILENT_PEAK = 10 ** (-70 / 20)  # a window whose loudest sample is below -70 dBFS holds no speech


def load_wave(audio: AudioInput) -> np.ndarray:
    """Any supported input -> 16 kHz mono float32 samples."""
    if isinstance(audio, np.ndarray):
        return audio.astype(np.float32, copy=False)
    if isinstance(audio, AudioStream):
        blocks = list(audio.open_blocks())
        return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    return load_audio(audio, SAMPLE_RATE)


def input_name(audio: AudioInput) -> str:
    """How an error names an input: its path, or what kind of thing it is."""
    return str(audio) if isinstance(audio, (str, Path)) else f"<{type(audio).__name__} input>"


def load_wave_to_align(audio: AudioInput) -> np.ndarray:
    """load_wave for alignment and attention plots, which need some audio: AudioError below 0.1 s."""
    wave = load_wave(audio)
    if len(wave) < MIN_SPEECH_SAMPLES:
        raise AudioError(f"{input_name(audio)}: {len(wave) / SAMPLE_RATE:.3f} s of audio is too short to align "
                         f"(at least {MIN_SPEECH_SAMPLES / SAMPLE_RATE:g} s)")
    return wave


LM_FILENAME = "lm.arpa"  # an n-gram LM beside a model's weights


def lm_beside(weights: Path, lm: str | os.PathLike | bool | None) -> Path | None:
    """The LM to use: ``True`` -> ``lm.arpa`` beside ``weights`` when there is one; a path (must exist); else None."""
    if lm is True:
        candidate = weights.parent / LM_FILENAME
        return candidate if candidate.exists() else None
    if lm:
        path = Path(lm)
        if not path.exists():
            raise ModelLoadError(f"{path}: no such LM file")
        return path
    return None


def _shifted(segment: Segment, offset: float) -> Segment:
    """``segment`` (and its words) with ``offset`` seconds added to its times."""
    words = None if segment.words is None else [
        replace(w, start=round(w.start + offset, 3), end=round(w.end + offset, 3)) for w in segment.words]
    return replace(segment, start=round(segment.start + offset, 3), end=round(segment.end + offset, 3), words=words)


class WindowedASR:
    """Base for our trained recognisers: a ``model`` with a fbank ``frontend``, decoding audio in windows of
    ``window_s`` seconds."""

    window_s: float = 20.0
    decode_options: frozenset[str] = frozenset()
    supports_word_timestamps: bool = False
    family: str = "?"
    model: torch.nn.Module
    frontend: torch.nn.Module
    lm_path: Path | None = None
    _lm: Any = None

    def lm(self) -> Any:
        """The word LM scorer of ``lm_path`` (loaded on first use), or None."""
        if self._lm is None and self.lm_path is not None:
            from ..decoding.lm import WordLMScorer

            self._lm = WordLMScorer.from_arpa(self.lm_path)
        return self._lm

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def compute_type(self) -> str:
        return str(next(self.model.parameters()).dtype).removeprefix("torch.")

    def features(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """16 kHz waveforms -> padded fbank features (B, T, F) and their lengths (B,)."""
        feats = [self.frontend(torch.from_numpy(np.ascontiguousarray(w)).to(self.device)) for w in waves]
        lens = torch.tensor([f.shape[0] for f in feats], device=self.device)
        return torch.nn.utils.rnn.pad_sequence(feats, batch_first=True), lens

    def decode_windows(self, pieces: list[np.ndarray], **options: Any) -> list[Segment]:
        raise NotImplementedError

    def transcribe(self, audio: AudioInput, **options: Any) -> Transcript:
        """One input -> :class:`Transcript` (one segment per window)."""
        return self.transcribe_batch([audio], **options)[0]

    def transcribe_batch(
        self, audios: Sequence[AudioInput], *, batch_size: int = 8, progress: bool | None = None,
        errors: str = "raise", on_segments: SegmentCallback | None = None, **options: Any
    ) -> list[Transcript]:
        """Many inputs, decoded in batches of windows of similar length. ``on_segments(index, segments)`` hears
        each input's segments in order as soon as they and all before them are decoded (a server streams them).

        ``errors="return"`` puts an input's :class:`AudioError` in its place in the result instead of raising it,
        so one unreadable file does not cost the others (the CLI's way). ``word_timestamps=True`` fills each
        segment's ``words`` (families in ``WORD_TIMESTAMP_FAMILIES`` only: ConfigError for the others)."""
        if options.pop("word_timestamps", False):
            if not self.supports_word_timestamps:
                raise ConfigError(f"word timestamps are supported for {' and '.join(WORD_TIMESTAMP_FAMILIES)} "
                                  f"models only, not this {self.family} model")
            options["word_timestamps"] = True  # only a supporting decode_windows takes the flag
        unknown = set(options) - self.decode_options - {"word_timestamps"}
        if unknown:
            raise ConfigError(
                f"unknown option(s) for a {self.family} model: {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(self.decode_options))}"
            )
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        waves, failed = load_inputs(audios, load_wave, errors, lambda: np.zeros(0, np.float32))
        step = int(self.window_s * SAMPLE_RATE)
        # a window with less than MIN_SPEECH_SAMPLES of audio (a whole input that short, or a file's last
        # crumbs) holds no word: it is not decoded (the encoders' subsampling could not even take one)
        # the same for a window of digital silence (a muted microphone): nothing to hear, and attention decoders
        # trained on speech would invent words for it
        windows = [(i, start) for i, w in enumerate(waves) for start in range(0, len(w), step)
                   if len(w) - start >= MIN_SPEECH_SAMPLES and np.abs(w[start : start + step]).max() >= SILENT_PEAK]
        length = [min(len(waves[i]) - s, step) for i, s in windows]
        order = sorted(range(len(windows)), key=lambda j: -length[j])
        results: dict[int, Segment] = {}
        told = dict.fromkeys(range(len(waves)), 0)  # per input: its windows already given to on_segments
        per_input = [[j for j, w in enumerate(windows) if w[0] == i] for i in range(len(waves))]
        bar = progress_bar(len(windows), desc="transcribe", unit="window", enabled=progress)
        for b in range(0, len(order), batch_size):
            chunk = order[b : b + batch_size]
            pieces = [waves[windows[j][0]][windows[j][1] : windows[j][1] + step] for j in chunk]
            for j, segment in zip(chunk, self.decode_windows(pieces, **options)):
                results[j] = _shifted(segment, windows[j][1] / SAMPLE_RATE)
            bar.update(len(chunk))
            if on_segments is not None:
                for i in sorted({windows[j][0] for j in chunk}):
                    ready = per_input[i][told[i]:]
                    ready = ready[: next((k for k, j in enumerate(ready) if j not in results), len(ready))]
                    if ready:
                        told[i] += len(ready)
                        on_segments(i, [results[j] for j in ready if results[j].text])
        bar.close()
        out: list = []
        for i, wave in enumerate(waves):
            if i in failed:
                out.append(failed[i])
                continue
            segments = [results[j] for j, w in enumerate(windows) if w[0] == i and results[j].text]
            out.append(Transcript(text=" ".join(s.text for s in segments), segments=segments, language=None,
                                  duration=len(wave) / SAMPLE_RATE))
        return out

