"""Long audio for models trained on short utterances: fixed windows, batched by length, one Transcript per input.

A subclass implements :meth:`WindowedASR.decode_windows` (a batch of waveform windows -> one :class:`Segment`
each, times relative to the window start); this class cuts the inputs, orders windows longest first so batches
pad little, shifts segment times to the input's clock and assembles the transcripts.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..audio.constants import SAMPLE_RATE
from ..audio.io import load_audio
from ..errors import ConfigError, ModelLoadError
from .transcribe import AudioStream, Segment, Transcript

AudioInput = str | Path | bytes | np.ndarray | torch.Tensor | AudioStream
MIN_WINDOW_SAMPLES = 400  # one 25 ms analysis frame


def load_wave(audio: AudioInput) -> np.ndarray:
    """Any supported input -> 16 kHz mono float32 samples."""
    if isinstance(audio, np.ndarray):
        return audio.astype(np.float32, copy=False)
    if isinstance(audio, AudioStream):
        blocks = list(audio.open_blocks())
        return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    return load_audio(audio, SAMPLE_RATE)


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


class WindowedASR:
    """Base for our trained recognisers: a ``model`` with a fbank ``frontend``, decoding audio in windows of
    ``window_s`` seconds."""

    window_s: float = 20.0
    decode_options: frozenset[str] = frozenset()
    family: str = "?"
    model: torch.nn.Module
    frontend: torch.nn.Module

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
        self, audios: Sequence[AudioInput], *, batch_size: int = 8, progress: bool | None = None, **options: Any
    ) -> list[Transcript]:
        """Many inputs, decoded in batches of windows of similar length."""
        unknown = set(options) - self.decode_options
        if unknown:
            raise ConfigError(
                f"unknown option(s) for a {self.family} model: {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(self.decode_options))}"
            )
        step = int(self.window_s * SAMPLE_RATE)
        waves = [load_wave(audio) for audio in audios]
        windows = [(i, start) for i, w in enumerate(waves) for start in range(0, max(len(w), 1), step)]
        length = [min(len(waves[i]) - s, step) for i, s in windows]
        order = sorted(range(len(windows)), key=lambda j: -length[j])
        results: dict[int, Segment] = {}
        bar = _progress(len(windows), progress)
        for b in range(0, len(order), batch_size):
            chunk = order[b : b + batch_size]
            pieces = [waves[windows[j][0]][windows[j][1] : windows[j][1] + step] for j in chunk]
            pieces = [np.pad(p, (0, max(0, MIN_WINDOW_SAMPLES - len(p)))) for p in pieces]
            for j, segment in zip(chunk, self.decode_windows(pieces, **options)):
                offset = windows[j][1] / SAMPLE_RATE
                results[j] = replace(segment, start=round(segment.start + offset, 3),
                                     end=round(segment.end + offset, 3))
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        out = []
        for i, wave in enumerate(waves):
            segments = [results[j] for j, w in enumerate(windows) if w[0] == i and results[j].text]
            out.append(Transcript(text=" ".join(s.text for s in segments), segments=segments, language=None,
                                  duration=len(wave) / SAMPLE_RATE))
        return out


def _progress(total: int, enabled: bool | None):
    if not enabled or total < 2:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="window", desc="transcribe")
