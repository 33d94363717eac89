"""Alignment diagnostics for attention decoders: is the attention a clean, monotonic, diagonal path?

For one utterance, ``weights (U, T)`` are the attention weights of the U output steps (tokens, the end token's
row included) over the T valid encoder frames: crop padding away before calling. Rows need not sum to one
(monotonic attentions may lose mass); a row with no mass at all is *empty*.

* ``focus_rate`` — mean over rows of the largest weight (FastSpeech, Ren et al. 2019): 1 for hard attention,
  1/T for uniform attention. Empty rows count 0.
* ``diagonality`` — the share of attention mass near the normalised diagonal: each non-empty row is normalised
  to sum 1 and the mass within ``|(u + 0.5)/U - (t + 0.5)/T| <= band + 0.5/T`` is counted (half a frame of slack
  so a diagonal drawn on a coarse grid stays inside); the mean over non-empty rows. In [0, 1], 1 for a diagonal.
* ``path`` — the argmax frame of each row (-1 for an empty row).
* ``skips`` — rows where the path jumps forward by more than ``max_jump`` frames from the previous non-empty row
  (audio skipped: deleted words). Default ``max(3, ceil(3 T / U))``: three tokens' worth of frames.
* ``repeats`` — rows where the path jumps back by more than ``repeat_tolerance`` frames (attention returns to
  audio already transcribed: repeated words). Default ``max(2, ceil(T / U))``: one token's worth.
* ``stuck`` — runs of at least ``stuck_rows`` consecutive rows whose path stays within ``stuck_tolerance``
  frames (a vertical line: the decoder emits token after token on the same audio). Defaults
  ``max(4, ceil(3 U / T))`` rows and ``max(1, T // (2 U))`` frames. Each run is (first row, number of rows).
* ``is_diagonal`` — no empty rows, skips, repeats or stuck runs, and diagonality >= ``diagonal_threshold``.

:func:`summarize_alignments` turns many of these into the numbers an evaluation report prints.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

__all__ = ["AlignmentMetrics", "alignment_metrics", "as_weight_matrix", "summarize_alignments",
           "synthesis_alignment_metrics"]

EMPTY_ROW_MASS = 1e-8  # rows with less total attention than this count as empty


@dataclass(frozen=True)
class AlignmentMetrics:
    """Diagnostics of one alignment (see the module docstring for the definitions)."""

    n_rows: int
    n_frames: int
    focus_rate: float
    diagonality: float
    path: tuple[int, ...]
    skips: tuple[int, ...]  # rows that jumped forward too far
    repeats: tuple[int, ...]  # rows that jumped back
    stuck: tuple[tuple[int, int], ...]  # (first row, number of rows) of each vertical run
    empty_rows: int
    is_diagonal: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (lists instead of tuples)."""
        out = asdict(self)
        out["path"] = list(self.path)
        out["skips"] = list(self.skips)
        out["repeats"] = list(self.repeats)
        out["stuck"] = [list(run) for run in self.stuck]
        return out


def as_weight_matrix(weights: Any) -> np.ndarray:
    """A (U, T) tensor, array or nested list -> float64 array; ValueError for anything not a finite, non-negative,
    non-empty 2-D matrix."""
    if hasattr(weights, "detach"):
        weights = weights.detach().float().cpu().numpy()
    try:
        array = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"attention weights must be a numeric (U, T) matrix: {err}") from None
    if array.ndim != 2:
        raise ValueError(f"attention weights must be 2-D (U, T), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"attention weights are empty (shape {array.shape})")
    if not np.isfinite(array).all():
        raise ValueError("attention weights contain NaN or infinite values")
    if (array < 0).any():
        raise ValueError(f"attention weights must be >= 0, got a minimum of {array.min():.3g}")
    return array


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return int(value)


def _stuck_runs(path: Sequence[int], min_rows: int, tolerance: int) -> list[tuple[int, int]]:
    """Maximal runs of >= min_rows consecutive non-empty rows whose path stays within `tolerance` frames."""
    runs: list[list[int]] = []  # [first row, end row (exclusive)]
    start = 0
    for u, frame in enumerate(path):
        if frame < 0:
            start = u + 1
            continue
        while max(path[start : u + 1]) - min(path[start : u + 1]) > tolerance:
            start += 1
        if u + 1 - start >= min_rows:  # the longest window ending here is long enough
            if runs and start <= runs[-1][1]:
                runs[-1][1] = u + 1
            else:
                runs.append([start, u + 1])
    return [(first, end - first) for first, end in runs]


def alignment_metrics(
    weights: Any,
    *,
    band: float = 0.1,
    max_jump: int | None = None,
    repeat_tolerance: int | None = None,
    stuck_rows: int | None = None,
    stuck_tolerance: int | None = None,
    diagonal_threshold: float = 0.5,
) -> AlignmentMetrics:
    """Diagnostics of one alignment ``weights (U, T)`` (valid region only); None thresholds take the defaults of
    the module docstring, derived from U and T."""
    w = as_weight_matrix(weights)
    n_rows, n_frames = w.shape
    if not (math.isfinite(band) and band >= 0):
        raise ValueError(f"band must be a finite number >= 0, got {band!r}")
    if not 0.0 <= diagonal_threshold <= 1.0:
        raise ValueError(f"diagonal_threshold must be in [0, 1], got {diagonal_threshold!r}")
    ratio = n_frames / n_rows
    max_jump = max(3, math.ceil(3 * ratio)) if max_jump is None else _positive_int(max_jump, "max_jump")
    if repeat_tolerance is None:
        repeat_tolerance = max(2, math.ceil(ratio))
    repeat_tolerance = _positive_int(repeat_tolerance, "repeat_tolerance")
    stuck_rows = max(4, math.ceil(3 / ratio)) if stuck_rows is None else _positive_int(stuck_rows, "stuck_rows")
    if stuck_rows < 2:
        raise ValueError(f"stuck_rows must be >= 2, got {stuck_rows}")
    if stuck_tolerance is None:
        stuck_tolerance = max(1, n_frames // (2 * n_rows))
    stuck_tolerance = _positive_int(stuck_tolerance, "stuck_tolerance")

    mass = w.sum(axis=1)
    empty = mass < EMPTY_ROW_MASS
    focus_rate = float(np.where(empty, 0.0, w.max(axis=1)).mean())

    u_pos = (np.arange(n_rows) + 0.5) / n_rows
    t_pos = (np.arange(n_frames) + 0.5) / n_frames
    in_band = np.abs(u_pos[:, None] - t_pos[None, :]) <= band + 0.5 / n_frames + 1e-12
    full = ~empty
    if full.any():
        normalised = w[full] / mass[full, None]
        diagonality = float((normalised * in_band[full]).sum(axis=1).mean())
    else:
        diagonality = 0.0

    path = [int(t) if not e else -1 for t, e in zip(w.argmax(axis=1), empty)]
    skips, repeats = [], []
    previous = -1
    for u, frame in enumerate(path):
        if frame < 0:
            continue
        if previous >= 0:
            jump = frame - previous
            if jump > max_jump:
                skips.append(u)
            elif jump < -repeat_tolerance:
                repeats.append(u)
        previous = frame
    stuck = _stuck_runs(path, stuck_rows, stuck_tolerance)
    n_empty = int(empty.sum())
    healthy = not (skips or repeats or stuck or n_empty)
    return AlignmentMetrics(
        n_rows=n_rows,
        n_frames=n_frames,
        focus_rate=focus_rate,
        diagonality=min(1.0, diagonality),
        path=tuple(path),
        skips=tuple(skips),
        repeats=tuple(repeats),
        stuck=tuple(stuck),
        empty_rows=n_empty,
        is_diagonal=healthy and diagonality >= diagonal_threshold,
    )


def synthesis_alignment_metrics(weights: Any, step_seconds: float, *, max_hold_seconds: float = 1.0,
                                max_jump: int = 3) -> AlignmentMetrics:
    """:func:`alignment_metrics` with thresholds for a synthesis decoder (Tacotron 2), whose ``weights (steps,
    tokens)`` have many decoder steps per input token, each step ``step_seconds`` of audio: a *skip* passes more
    than ``max_jump`` tokens in one step, a *repeat* goes back more than one token, a token held longer than
    ``max_hold_seconds`` (within one token) is *stuck*. The ASR defaults would call any phoneme or pause longer
    than three average tokens stuck."""
    if not (math.isfinite(step_seconds) and step_seconds > 0):
        raise ValueError(f"step_seconds must be a finite number > 0, got {step_seconds!r}")
    return alignment_metrics(weights, max_jump=max_jump, repeat_tolerance=1,
                             stuck_rows=max(2, math.ceil(max_hold_seconds / step_seconds)), stuck_tolerance=1)


def summarize_alignments(metrics: Sequence[AlignmentMetrics]) -> dict[str, float]:
    """Corpus-level numbers for a report.

    Returns ``n`` (utterances), means of ``focus_rate`` and ``diagonality``, the share of utterances with at
    least one skip / repeat / stuck run / empty row (``skip_rate``, ``repeat_rate``, ``stuck_rate``,
    ``empty_rate``), ``diagonal_rate`` (share with is_diagonal) and the totals ``n_skips``, ``n_repeats``,
    ``n_stuck``. With no utterances every rate and mean is NaN.
    """
    items = list(metrics)
    for i, m in enumerate(items):
        if not isinstance(m, AlignmentMetrics):
            raise TypeError(f"metrics[{i}] is a {type(m).__name__}, not AlignmentMetrics")
    n = len(items)

    def mean(values: list[float]) -> float:
        return float(sum(values) / n) if n else float("nan")

    return {
        "n": n,
        "focus_rate": mean([m.focus_rate for m in items]),
        "diagonality": mean([m.diagonality for m in items]),
        "skip_rate": mean([float(bool(m.skips)) for m in items]),
        "repeat_rate": mean([float(bool(m.repeats)) for m in items]),
        "stuck_rate": mean([float(bool(m.stuck)) for m in items]),
        "empty_rate": mean([float(m.empty_rows > 0) for m in items]),
        "diagonal_rate": mean([float(m.is_diagonal) for m in items]),
        "n_skips": sum(len(m.skips) for m in items),
        "n_repeats": sum(len(m.repeats) for m in items),
        "n_stuck": sum(len(m.stuck) for m in items),
    }
