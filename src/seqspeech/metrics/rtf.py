"""Real-time factor: processing time per second of audio.

``rtf = wall_seconds / audio_seconds`` (below 1 is faster than real time) and ``throughput = 1 / rtf``
(seconds of audio processed per wall-clock second).

    meter = RTFMeter()
    for path in paths:
        audio = load(path)
        with meter.measure(audio_seconds=len(audio) / SAMPLE_RATE):
            model.transcribe(audio)
    print(meter.rtf, meter.throughput)
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class RTFMeter:
    """Accumulates audio duration and wall-clock time over any number of calls."""

    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    n_calls: int = 0

    def accumulate(self, audio_seconds: float, wall_seconds: float) -> None:
        """Add one measurement.

        Raises:
            ValueError: a negative or non-finite duration.
        """
        _check_duration("audio_seconds", audio_seconds)
        _check_duration("wall_seconds", wall_seconds)
        self.audio_seconds += audio_seconds
        self.wall_seconds += wall_seconds
        self.n_calls += 1

    @contextmanager
    def measure(self, audio_seconds: float) -> Iterator[RTFMeter]:
        """Time the ``with`` block (``time.perf_counter``) and add it with ``audio_seconds`` of audio.

        A block that raises is not counted: its audio was not processed.
        """
        _check_duration("audio_seconds", audio_seconds)
        start = time.perf_counter()
        yield self
        self.accumulate(audio_seconds, time.perf_counter() - start)

    @property
    def rtf(self) -> float:
        """Wall seconds per audio second; NaN before any audio was measured."""
        return self.wall_seconds / self.audio_seconds if self.audio_seconds > 0 else math.nan

    @property
    def throughput(self) -> float:
        """Audio seconds per wall second (the "x real time" speed); NaN before any time was measured."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else math.nan

    def as_dict(self) -> dict[str, float | int]:
        """Totals and ratios, for JSON reports."""
        return {
            "audio_seconds": self.audio_seconds,
            "wall_seconds": self.wall_seconds,
            "n_calls": self.n_calls,
            "rtf": self.rtf,
            "throughput": self.throughput,
        }


def _check_duration(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
