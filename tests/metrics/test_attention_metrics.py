"""Alignment diagnostics on constructed alignments: diagonal, skip, repeat, stuck, uniform."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from seqspeech.metrics.attention import (
    AlignmentMetrics, alignment_metrics, summarize_alignments, synthesis_alignment_metrics,
)


def hard(path, frames):
    """One-hot rows on the given frames."""
    w = np.zeros((len(path), frames))
    w[np.arange(len(path)), path] = 1.0
    return w


def diagonal_path(rows, frames):
    return [int((u + 0.5) * frames / rows) for u in range(rows)]


def brute_diagonality(w, band):
    rows, frames = w.shape
    shares = []
    for u in range(rows):
        total = w[u].sum()
        if total < 1e-8:
            continue
        limit = band + 0.5 / frames + 1e-12
        near = sum(w[u, t] for t in range(frames) if abs((u + 0.5) / rows - (t + 0.5) / frames) <= limit)
        shares.append(near / total)
    return sum(shares) / len(shares)


@pytest.mark.parametrize("rows, frames", [(10, 40), (12, 12), (7, 50), (20, 10)])
def test_hard_diagonal_is_perfect(rows, frames):
    m = alignment_metrics(hard(diagonal_path(rows, frames), frames))
    assert m.focus_rate == 1.0
    assert m.diagonality == pytest.approx(1.0)
    assert list(m.path) == diagonal_path(rows, frames)
    assert m.skips == () and m.repeats == () and m.stuck == () and m.empty_rows == 0
    assert m.is_diagonal


def test_soft_diagonal_from_a_tensor():
    rows, frames = 10, 40
    t = torch.arange(frames).float()
    centres = torch.tensor(diagonal_path(rows, frames)).float()
    w = torch.softmax(-((t[None, :] - centres[:, None]) ** 2) / 4.0, dim=1)
    m = alignment_metrics(w)
    assert m.focus_rate == pytest.approx(float(w.max(dim=1).values.mean()), abs=1e-6)
    assert 0.2 < m.focus_rate < 1.0
    assert m.diagonality == pytest.approx(brute_diagonality(w.double().numpy(), 0.1), abs=1e-9)
    assert m.diagonality > 0.9
    assert m.is_diagonal


def test_skip_is_a_long_forward_jump():
    path = [0, 3, 6, 9, 12, 30, 33, 36, 39]  # 12 -> 30 jumps 18 frames; default max_jump = ceil(3 * 40 / 9) = 14
    m = alignment_metrics(hard(path, 40))
    assert m.skips == (5,)
    assert m.repeats == () and m.stuck == ()
    assert not m.is_diagonal
    assert alignment_metrics(hard(path, 40), max_jump=20).skips == ()


def test_repeat_is_a_backward_jump():
    path = [0, 4, 8, 12, 16, 20, 8, 12, 16, 20, 24, 28, 32, 36]  # attention returns from 20 to 8
    m = alignment_metrics(hard(path, 40))
    assert m.repeats == (6,)
    assert m.skips == () and m.stuck == ()
    assert not m.is_diagonal
    jitter = [0, 4, 8, 7, 12, 16, 20, 24, 28, 32, 36, 39]  # one frame back is jitter, not a repeat
    assert alignment_metrics(hard(jitter, 40)).repeats == ()


def test_stuck_is_a_vertical_line():
    path = [0, 3, 6, 9, 9, 10, 9, 9, 9, 12, 15, 18, 21]  # rows 3..8 sit on frames 9-10
    m = alignment_metrics(hard(path, 40))
    assert m.stuck == ((3, 6),)
    assert m.skips == () and m.repeats == ()
    assert not m.is_diagonal
    strict = alignment_metrics(hard(path, 40), stuck_tolerance=0)  # frame 10 breaks the exact run
    assert strict.stuck == ()  # the longest exact run (rows 6..8) is shorter than 4 rows
    assert alignment_metrics(hard(path, 40), stuck_tolerance=0, stuck_rows=3).stuck == ((6, 3),)


def test_uniform_attention_has_low_focus_and_is_not_diagonal():
    rows, frames = 8, 32
    w = np.full((rows, frames), 1.0 / frames)
    m = alignment_metrics(w)
    assert m.focus_rate == pytest.approx(1.0 / frames)
    assert m.diagonality == pytest.approx(brute_diagonality(w, 0.1))
    assert m.diagonality < 0.3
    assert not m.is_diagonal


def test_random_alignments_match_brute_force_definitions():
    rng = np.random.default_rng(0)
    for _ in range(5):
        w = rng.random((6, 15)) ** 4
        w[2] = 0.0  # an empty row
        m = alignment_metrics(w, band=0.2)
        assert m.empty_rows == 1 and m.path[2] == -1
        assert m.focus_rate == pytest.approx(np.mean([w[u].max() for u in range(6)]))
        assert m.diagonality == pytest.approx(brute_diagonality(w, 0.2))
        assert [p for u, p in enumerate(m.path) if u != 2] == [int(np.argmax(w[u])) for u in range(6) if u != 2]
        assert not m.is_diagonal  # an empty row is never healthy


def test_to_dict_is_json():
    m = alignment_metrics(hard([0, 3, 6, 9, 9, 9, 9, 9, 12], 20))
    data = json.loads(json.dumps(m.to_dict()))
    assert data["path"] == list(m.path)
    assert data["stuck"] == [list(r) for r in m.stuck]
    assert data["is_diagonal"] is False


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((0, 5)), "empty"),
        (np.zeros(5), "2-D"),
        (np.array([[0.5, float("nan")]]), "NaN"),
        (np.array([[0.5, -0.1]]), ">= 0"),
        ([["a", "b"]], "numeric"),
    ],
)
def test_bad_weights(bad, match):
    with pytest.raises(ValueError, match=match):
        alignment_metrics(bad)


def test_bad_thresholds():
    w = hard([0, 1, 2], 3)
    with pytest.raises(ValueError, match="band"):
        alignment_metrics(w, band=-0.1)
    with pytest.raises(ValueError, match="stuck_rows"):
        alignment_metrics(w, stuck_rows=1)
    with pytest.raises(ValueError, match="max_jump"):
        alignment_metrics(w, max_jump=-2)


def test_summary_rates():
    frames = 40
    items = [
        alignment_metrics(hard(diagonal_path(10, frames), frames)),
        alignment_metrics(hard([0, 3, 6, 9, 12, 30, 33, 36, 39], frames)),  # skip
        alignment_metrics(hard([0, 4, 8, 12, 16, 20, 8, 12, 16, 20, 24, 28, 32, 36], frames)),  # repeat
        alignment_metrics(hard([0, 3, 6, 9, 9, 10, 9, 9, 9, 12, 15, 18, 21], frames)),  # stuck
    ]
    s = summarize_alignments(items)
    assert s["n"] == 4
    assert s["skip_rate"] == s["repeat_rate"] == s["stuck_rate"] == 0.25
    assert s["diagonal_rate"] == 0.25
    assert s["n_skips"] == s["n_repeats"] == s["n_stuck"] == 1
    assert s["focus_rate"] == 1.0
    assert s["diagonality"] == pytest.approx(np.mean([m.diagonality for m in items]))
    empty = summarize_alignments([])
    assert empty["n"] == 0 and math.isnan(empty["diagonal_rate"])
    with pytest.raises(TypeError, match="AlignmentMetrics"):
        summarize_alignments([{"focus_rate": 1.0}])
    assert isinstance(items[0], AlignmentMetrics)


def test_synthesis_alignment_metrics_use_durations_not_asr_defaults() -> None:
    """A Tacotron-style alignment (many 32 ms steps per token, a long first phoneme, a zero-length word boundary)
    is clean; the ASR defaults would call its long tokens stuck. Skips, repeats and long holds are still found."""
    durations = [12, 3, 0, 4, 2, 5, 0, 3, 6, 2]  # decoder steps per token
    path = [t for t, d in enumerate(durations) for _ in range(d)]
    clean = synthesis_alignment_metrics(hard(path, len(durations)), 0.032)
    assert clean.is_diagonal and not clean.skips and not clean.repeats and not clean.stuck
    assert alignment_metrics(hard(path, len(durations))).stuck  # the ASR defaults: 12 steps on one token
    skipping = path[:15] + [t + 4 if t >= 2 else t for t in path[15:20]] + [9] * 5
    assert synthesis_alignment_metrics(hard(skipping, len(durations)), 0.032).skips
    back = path[:20] + [1, 1] + path[20:]
    assert synthesis_alignment_metrics(hard(back, len(durations)), 0.032).repeats
    held = path[:12] + [1] * 40 + path[12:]  # 1.3 s on one phoneme
    m = synthesis_alignment_metrics(hard(held, len(durations)), 0.032)
    assert m.stuck and not m.is_diagonal
    with pytest.raises(ValueError, match="step_seconds"):
        synthesis_alignment_metrics(hard(path, len(durations)), 0.0)
