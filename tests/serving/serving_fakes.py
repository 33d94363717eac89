"""Fake models for the serving tests: a recogniser that takes its time and records its batches, a voice that speaks
slowly and notices when it is stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from seqspeech.asr.transcribe import Segment, Transcript
from seqspeech.serving.registry import ServedModel


class SlowASR:
    """``transcribe_batch`` sleeps ``delay`` seconds per batch and answers "heard N samples"; ``batches`` records
    the size of each batch and ``heard`` every input's sample count."""

    family = "fake"

    def __init__(self, delay: float = 0.2) -> None:
        self.delay = delay
        self.batches: list[int] = []
        self.heard: list[int] = []

    def transcribe(self, audio: Any, **options: Any) -> Transcript:
        return self.transcribe_batch([audio], **options)[0]

    def transcribe_batch(self, audios: list[np.ndarray], **options: Any) -> list[Transcript]:
        time.sleep(self.delay)
        self.batches.append(len(audios))
        self.heard += [len(a) for a in audios]
        return [Transcript(text=f"heard {len(a)} samples", language="en", duration=len(a) / 16000,
                           segments=[Segment(0.0, len(a) / 16000, f"heard {len(a)} samples", [], 0.0, 0.0, 1.0,
                                             0.0)]) for a in audios]


class SlowVoice:
    """``synthesize_stream`` yields ``chunks`` chunks of 0.1 s, ``delay`` seconds apart; ``made`` counts them."""

    sample_rate = 16000

    def __init__(self, chunks: int = 50, delay: float = 0.05) -> None:
        self.chunks, self.delay = chunks, delay
        self.made = 0
        self.closed = threading.Event()

    def synthesize_stream(self, text: str, **options: Any) -> Iterator[np.ndarray]:
        try:
            for _ in range(self.chunks):
                time.sleep(self.delay)
                self.made += 1
                yield np.full(1600, 0.1, np.float32)
        finally:
            self.closed.set()


def fake_asr(name: str = "fake-asr", delay: float = 0.2) -> tuple[ServedModel, SlowASR]:
    asr = SlowASR(delay)
    return ServedModel(name, "asr", "fake", lambda: asr), asr


def fake_voice(name: str = "fake-voice", **kwargs: Any) -> tuple[ServedModel, SlowVoice]:
    voice = SlowVoice(**kwargs)
    return ServedModel(name, "tts", "fake", lambda: voice), voice


def wav_bytes(seconds: float = 0.5, rate: int = 16000) -> bytes:
    import io

    import soundfile as sf

    buf = io.BytesIO()
    t = np.arange(round(seconds * rate)) / rate
    sf.write(buf, (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()
