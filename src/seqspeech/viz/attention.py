"""Attention plots: a heatmap of decoder steps over encoder frames, written as PNG.

matplotlib is imported lazily (only when a plot is drawn) and drives its Agg canvas directly: no pyplot state, no
GUI backend, safe in threads and on headless machines.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..fileio import write_atomic
from ..metrics.attention import AlignmentMetrics, as_weight_matrix

__all__ = ["figure_size", "plot_attention"]

DPI = 100
MAX_LABELLED_ROWS = 60  # beyond this many output tokens, label every n-th row only


def figure_size(n_rows: int, n_frames: int) -> tuple[float, float]:
    """(width, height) in inches for a (U, T) alignment: wider with more frames, taller with more tokens."""
    width = min(16.0, max(5.0, 3.0 + 0.06 * n_frames))
    height = min(12.0, max(3.0, 1.5 + 0.2 * n_rows))
    return width, height


def _summary(metrics: AlignmentMetrics | Mapping[str, Any]) -> str:
    if isinstance(metrics, AlignmentMetrics):
        return (
            f"focus {metrics.focus_rate:.2f} · diagonality {metrics.diagonality:.2f} · skips {len(metrics.skips)} · "
            f"repeats {len(metrics.repeats)} · stuck {len(metrics.stuck)}"
        )
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be AlignmentMetrics or a mapping, got {type(metrics).__name__}")
    parts = []
    for key, value in metrics.items():
        if isinstance(value, bool):
            parts.append(f"{key} {value}")
        elif isinstance(value, float):
            parts.append(f"{key} {value:.3g}")
        elif isinstance(value, (int, str)):
            parts.append(f"{key} {value}")
    return " · ".join(parts)


def plot_attention(
    weights: Any,
    path: str | os.PathLike,
    *,
    tokens: Sequence[str] | None = None,
    frame_shift_s: float | None = None,
    title: str | None = None,
    metrics: AlignmentMetrics | Mapping[str, Any] | None = None,
    dpi: int = DPI,
) -> Path:
    """Draw ``weights (U, T)`` (tensor, array or nested list; U output steps over T encoder frames) to a PNG.

    Args:
        path: the .png file to write (atomically; parent folders are created).
        tokens: U labels for the rows (e.g. the decoded symbols, the end token included).
        frame_shift_s: seconds per encoder frame; the x axis is then time instead of frame index.
        title: a title line.
        metrics: :class:`AlignmentMetrics` (its argmax path is drawn over the heatmap and its numbers added under
            the title) or a mapping of numbers to print there.
        dpi: pixels per inch; the image is ``figure_size(U, T) * dpi`` pixels.

    Returns the path written. Raises ValueError for empty, non-2-D, NaN/inf or negative weights, mismatched
    tokens or a path that is not .png; OSError naming the path when it cannot be written.
    """
    w = as_weight_matrix(weights)
    n_rows, n_frames = w.shape
    out = Path(path)
    if out.suffix.lower() != ".png":
        raise ValueError(f"{out}: attention plots are written as PNG; use a .png path")
    if out.is_dir():
        raise OSError(f"cannot write the attention plot to {out}: it is a directory")
    if tokens is not None and len(tokens) != n_rows:
        raise ValueError(f"{len(tokens)} token labels for {n_rows} attention rows")
    if frame_shift_s is not None and not (math.isfinite(frame_shift_s) and frame_shift_s > 0):
        raise ValueError(f"frame_shift_s must be a finite number > 0, got {frame_shift_s!r}")
    if isinstance(dpi, bool) or not isinstance(dpi, int) or dpi < 10:
        raise ValueError(f"dpi must be an int >= 10, got {dpi!r}")

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figure_size(n_rows, n_frames), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    shift = frame_shift_s or 1.0
    x0, x1 = (0.0, n_frames * shift) if frame_shift_s else (-0.5, n_frames - 0.5)
    image = ax.imshow(w, aspect="auto", origin="lower", interpolation="nearest", cmap="viridis",
                      extent=(x0, x1, -0.5, n_rows - 0.5))
    fig.colorbar(image, ax=ax, label="attention weight")
    ax.set_xlabel("time (s)" if frame_shift_s else "encoder frame")
    if tokens is not None:
        every = max(1, math.ceil(n_rows / MAX_LABELLED_ROWS))
        rows = list(range(0, n_rows, every))
        ax.set_yticks(rows)
        ax.set_yticklabels([str(tokens[u]).strip() or "␣" for u in rows], fontsize=8)  # a space shows as ␣
        ax.set_ylabel("output token")
    else:
        ax.set_ylabel("decoder step")
    if isinstance(metrics, AlignmentMetrics):
        if metrics.path and len(metrics.path) != n_rows:
            raise ValueError(f"metrics describe {len(metrics.path)} rows, the weights have {n_rows}")
        points = [(u, t) for u, t in enumerate(metrics.path) if t >= 0]
        if points:
            xs = [(t + 0.5) * shift if frame_shift_s else t for _, t in points]
            ax.plot(xs, [u for u, _ in points], linestyle="none", marker=".", markersize=3, color="red",
                    label="argmax path")
    lines = [line for line in (title, _summary(metrics) if metrics is not None else None) if line]
    if lines:
        ax.set_title("\n".join(lines), fontsize=9)

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    try:
        return write_atomic(out, buffer.getvalue())
    except OSError as err:
        raise OSError(f"cannot write the attention plot to {out}: {err.strerror or err}") from None
