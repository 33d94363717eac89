"""Objective TTS metrics against a reference recording: mel-cepstral distortion and F0 error after DTW alignment.

Both signals are analysed on one frame grid (``hop_length`` samples, 5 ms by default; ``frames = samples //
hop_length`` with frame ``t`` centred at ``t * hop_length + hop_length // 2``, as :mod:`seqspeech.tts.mel` and
:func:`seqspeech.audio.pitch.estimate_f0` frame), aligned by dynamic time warping (:func:`dtw`) of their
mel-cepstra, and compared along the path:

* ``mcd_db`` — mel-cepstral distortion, ``10 / ln 10 * sqrt(2 * sum_{d >= 1} (c_d - c'_d)^2)`` averaged over the
  path, c0 (level) excluded. The mel-cepstrum is :func:`mel_cepstrum`: the DCT-II of the log mel amplitude
  spectrum, scaled so that ``log|X| = c0 + 2 sum_m c_m cos(m w)`` on the mel axis (the real cepstrum's
  convention, which the MCD constant assumes), order 24. It is *not* SPTK's iterative ``mcep`` (pysptk has no
  wheel here and its source build fails): numbers are of the same scale but not identical to MCDs computed with
  SPTK, so compare MCDs from this function only with each other.
* ``f0_rmse_hz`` / ``f0_rmse_cents`` — root mean square F0 difference over the path pairs voiced in both
  (:func:`seqspeech.audio.pitch.estimate_f0`, pYIN); NaN when no pair is voiced in both.
* ``voicing_error`` — voicing decision error (VDE): the share of path pairs voiced in one signal and unvoiced
  in the other.
* ``gross_pitch_error`` — the share of pairs voiced in both whose F0 differs by more than 20 %.

Signals at different rates are resampled (soxr) to ``sample_rate``. Metrics are per utterance: DTW holds an
``(N, M)`` matrix (72 MB for two 15 s signals at 5 ms). Real-time factor is
:class:`seqspeech.metrics.rtf.RTFMeter`; :func:`first_chunk_latency` adds the streaming latency to it.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np
import torch

from seqspeech.audio.io import load_audio
from seqspeech.audio.pitch import estimate_f0
from seqspeech.errors import AudioError, ConfigError
from seqspeech.metrics.rtf import RTFMeter

__all__ = [
    "StreamTiming", "TTSMetrics", "dtw", "f0_rmse", "first_chunk_latency", "mel_cepstral_distortion",
    "mel_cepstrum", "metric_frame_settings", "tts_metrics",
]

METRIC_FRAME_SECONDS = 0.005  # 5 ms hop, the usual frame period of MCD and F0 evaluation
METRIC_WINDOW_SECONDS = 0.064  # analysis window, rounded to a power of two: 1024 samples at 16 kHz
MCEP_ORDER = 24  # c0..c24; MCD uses c1..c24
MCEP_N_MELS = 80
MCD_SCALE = 10.0 / math.log(10.0) * math.sqrt(2.0)  # dB per unit of cepstral Euclidean distance
GROSS_PITCH_ERROR_RATIO = 0.2
CENTS_PER_OCTAVE = 1200.0
POWER_FLOOR = 1e-10  # the TTS mel's amplitude floor (1e-5), squared


# ----------------------------------------------------------------
# results


@dataclass(frozen=True)
class TTSMetrics:
    """Distortion of a synthesised utterance against its reference (see the module docstring)."""

    mcd_db: float
    f0_rmse_hz: float
    f0_rmse_cents: float
    voicing_error: float
    gross_pitch_error: float
    ref_frames: int
    syn_frames: int
    path_length: int
    voiced_pairs: int  # path pairs voiced in both signals (what the F0 errors average over)

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


@dataclass(frozen=True)
class StreamTiming:
    """Timing of one streamed synthesis: latency to the first audio chunk and the real-time factor."""

    first_chunk_seconds: float
    wall_seconds: float
    audio_seconds: float
    n_chunks: int

    @property
    def rtf(self) -> float:
        """Wall seconds per audio second; NaN for no audio."""
        return self.wall_seconds / self.audio_seconds if self.audio_seconds > 0 else math.nan

    def to_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "rtf": self.rtf}


# ----------------------------------------------------------------
# dynamic time warping


def dtw(cost: np.ndarray | torch.Tensor) -> tuple[float, list[tuple[int, int]]]:
    """Minimum-cost monotonic alignment of two sequences.

    Steps ``(1, 0)``, ``(0, 1)`` and ``(1, 1)`` with unit weight: ``D(i, j) = cost(i, j) + min(D(i-1, j),
    D(i, j-1), D(i-1, j-1))``, from ``(0, 0)`` to ``(N-1, M-1)``. Each row is solved in closed form with a
    running minimum (``D(i, j) = C_j + min_{k <= j} (b_k - C_{k-1})``, ``C`` the row's cumulative cost), so the
    Python loop is over rows only; ``O(N M)`` time and memory, fine for a few thousand frames a side.

    Args:
        cost: ``(N, M)`` finite local costs, e.g. distances between frames of the two sequences.

    Returns:
        the total cost of the best path and the path, ``[(0, 0), ..., (N-1, M-1)]`` (ties prefer the diagonal).

    Raises:
        ValueError: ``cost`` is not a non-empty 2-D finite matrix.
    """
    if torch.is_tensor(cost):
        cost = cost.detach().to("cpu", torch.float64).numpy()
    c = np.asarray(cost, dtype=np.float64)
    if c.ndim != 2 or c.size == 0:
        raise ValueError(f"dtw: cost must be a non-empty (N, M) matrix, got shape {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError("dtw: cost contains NaN or infinite values")
    n, m = c.shape
    total = np.empty((n, m))
    total[0] = np.cumsum(c[0])
    below = np.empty(m)
    for i in range(1, n):
        previous = total[i - 1]
        below[0] = previous[0]
        np.minimum(previous[1:], previous[:-1], out=below[1:])
        running = np.cumsum(c[i])
        before = np.concatenate([[0.0], running[:-1]])
        total[i] = running + np.minimum.accumulate(below - before)

    i, j = n - 1, m - 1
    path = [(i, j)]
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            diagonal, up, left = total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]
            if diagonal <= up and diagonal <= left:
                i, j = i - 1, j - 1
            elif up <= left:
                i -= 1
            else:
                j -= 1
        path.append((i, j))
    path.reverse()
    return float(total[-1, -1]), path


# ----------------------------------------------------------------
# features


def metric_frame_settings(sample_rate: int) -> tuple[int, int]:
    """``(hop_length, n_fft)`` of the metric frame grid: a 5 ms hop and the power of two nearest to 64 ms."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ConfigError(f"sample_rate must be a positive int, got {sample_rate!r}")
    hop = max(round(METRIC_FRAME_SECONDS * sample_rate), 1)
    n_fft = 1 << round(math.log2(METRIC_WINDOW_SECONDS * sample_rate))
    return hop, max(n_fft, hop)


@cache
def _cepstrum_matrix(order: int, n_mels: int) -> np.ndarray:
    """``(order + 1, n_mels)`` DCT-II scaled so that ``L_k = c_0 + 2 sum_m c_m cos(pi m (k + 1/2) / K)``
    inverts it: ``c_m = mean_k L_k cos(pi m (k + 1/2) / K)``."""
    m = np.arange(order + 1)[:, None]
    k = np.arange(n_mels)[None, :]
    return np.cos(np.pi * m * (k + 0.5) / n_mels) / n_mels


def mel_cepstrum(
    wave: np.ndarray | torch.Tensor,
    sample_rate: int,
    *,
    order: int = MCEP_ORDER,
    hop_length: int | None = None,
    n_fft: int | None = None,
    n_mels: int = MCEP_N_MELS,
) -> np.ndarray:
    """Mel-cepstral coefficients ``c_0..c_order`` of every frame (MFCC-style; not SPTK's ``mcep``).

    Per frame: Hann-windowed ``n_fft``-point |STFT|^2 (:meth:`seqspeech.tts.mel.MelSpectrogram.magnitude`, so
    frames and padding are the TTS mel's), ``n_mels`` Slaney mel bands over 0..Nyquist, floored at 1e-10,
    ``L = ln(mel power) / 2`` (log amplitude), and ``c = DCT-II(L) / n_mels`` — the cepstrum of the log amplitude
    on the mel axis, ``L_k = c_0 + 2 sum_m c_m cos(pi m (k + 1/2) / n_mels)``.

    Args:
        wave: ``(S,)`` float samples at ``sample_rate``.
        sample_rate: samples per second.
        order: highest coefficient (``order + 1`` columns, c0 first).
        hop_length / n_fft: frame hop and window; default :func:`metric_frame_settings` (80 / 1024 at 16 kHz).
        n_mels: mel bands.

    Returns:
        ``(S // hop_length, order + 1)`` float64.

    Raises:
        AudioError: not 1-D finite float samples, or shorter than half a window.
        ConfigError: ``order`` not in ``[1, n_mels)`` or bad frame settings.
    """
    from seqspeech.tts.mel import MelConfig, MelSpectrogram  # noqa: PLC0415

    default_hop, default_fft = metric_frame_settings(sample_rate)
    hop_length = default_hop if hop_length is None else hop_length
    n_fft = default_fft if n_fft is None else n_fft
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 1 <= order < n_mels:
        raise ConfigError(f"order must be an int in [1, n_mels={n_mels}), got {order!r}")
    try:
        config = MelConfig(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, win_length=n_fft,
                           n_mels=n_mels)
    except ValueError as err:
        raise ConfigError(f"mel_cepstrum: {err}") from None
    x = _mono(wave, "mel_cepstrum")
    if x.size <= n_fft // 2:
        raise AudioError(f"mel_cepstrum: {x.size} samples is shorter than half a window ({n_fft // 2 + 1} needed)")
    mel = MelSpectrogram(config)
    with torch.no_grad():
        power = mel.magnitude(torch.from_numpy(x)).double() ** 2  # (freq, frames)
        mel_power = mel.filters.double() @ power
    log_amplitude = 0.5 * np.log(np.maximum(mel_power.numpy(), POWER_FLOOR))  # (n_mels, frames)
    return (_cepstrum_matrix(int(order), n_mels) @ log_amplitude).T


# ----------------------------------------------------------------
# metrics


def mel_cepstral_distortion(
    ref_wave: Any, syn_wave: Any, sample_rate: int, *, syn_sample_rate: int | None = None,
    order: int = MCEP_ORDER,
) -> float:
    """MCD in dB between a reference and a synthesised utterance, averaged over their DTW path (c0 excluded).

    Args:
        ref_wave / syn_wave: ``(S,)`` samples (numpy or torch) or audio file paths (read with
            :func:`seqspeech.audio.io.load_audio`).
        sample_rate: rate of ``ref_wave`` (and of ``syn_wave`` unless ``syn_sample_rate`` says otherwise); the
            analysis rate.
        syn_sample_rate: rate of an array ``syn_wave`` when it differs (it is resampled to ``sample_rate``).
        order: mel-cepstral order (coefficients 1..order are compared).

    Raises:
        AudioError: an input is unreadable, empty, too short, or holds NaN/inf.
    """
    ref, syn = _pair(ref_wave, syn_wave, sample_rate, syn_sample_rate)
    hop, _ = metric_frame_settings(sample_rate)
    distances, _ = _aligned_distances(ref, syn, sample_rate, hop, order)
    return float(MCD_SCALE * distances.mean())


def f0_rmse(
    ref_wave: Any, syn_wave: Any, sample_rate: int, *, syn_sample_rate: int | None = None,
    f_min: float = 60.0, f_max: float = 500.0,
) -> float:
    """Root mean square F0 difference in Hz over the DTW path pairs voiced in both signals (NaN if none).

    The voicing decision error and cents come with :func:`tts_metrics`. Arguments as for
    :func:`mel_cepstral_distortion`; ``f_min`` / ``f_max`` bound the F0 search (Hz).
    """
    return tts_metrics(ref_wave, syn_wave, sample_rate, syn_sample_rate=syn_sample_rate, f_min=f_min,
                       f_max=f_max).f0_rmse_hz


def tts_metrics(
    ref_wave: Any, syn_wave: Any, sample_rate: int, *, syn_sample_rate: int | None = None,
    order: int = MCEP_ORDER, f_min: float = 60.0, f_max: float = 500.0,
) -> TTSMetrics:
    """MCD, F0 RMSE (Hz and cents), voicing decision error and gross pitch error with one DTW alignment.

    Arguments as for :func:`mel_cepstral_distortion` and :func:`f0_rmse`.
    """
    ref, syn = _pair(ref_wave, syn_wave, sample_rate, syn_sample_rate)
    hop, _ = metric_frame_settings(sample_rate)
    distances, path = _aligned_distances(ref, syn, sample_rate, hop, order)
    ref_f0, ref_voiced = estimate_f0(ref, sample_rate, hop, f_min, f_max)
    syn_f0, syn_voiced = estimate_f0(syn, sample_rate, hop, f_min, f_max)
    i, j = np.asarray(path).T
    ref_v, syn_v = ref_voiced[i], syn_voiced[j]
    both = ref_v & syn_v
    a, b = ref_f0[i][both].astype(np.float64), syn_f0[j][both].astype(np.float64)
    if both.any():
        rmse_hz = float(np.sqrt(np.mean((a - b) ** 2)))
        rmse_cents = float(np.sqrt(np.mean((CENTS_PER_OCTAVE * np.log2(b / a)) ** 2)))
        gpe = float(np.mean(np.abs(b - a) > GROSS_PITCH_ERROR_RATIO * a))
    else:
        rmse_hz = rmse_cents = gpe = math.nan
    return TTSMetrics(
        mcd_db=float(MCD_SCALE * distances.mean()),
        f0_rmse_hz=rmse_hz,
        f0_rmse_cents=rmse_cents,
        voicing_error=float(np.mean(ref_v != syn_v)),
        gross_pitch_error=gpe,
        ref_frames=len(ref_f0),
        syn_frames=len(syn_f0),
        path_length=len(path),
        voiced_pairs=int(both.sum()),
    )


def first_chunk_latency(
    chunks: Iterable[Any], sample_rate: int, *, meter: RTFMeter | None = None
) -> tuple[StreamTiming, np.ndarray]:
    """Drain a streaming synthesiser's chunks, timing the first non-empty chunk and the whole stream.

    The clock starts when this function is called, so pass a lazy iterator (a generator that starts work on the
    first ``next``). Chunks are ``(..., S)`` arrays or tensors; their last axis is time.

    Args:
        chunks: the audio chunks, in order.
        sample_rate: their rate (to count audio seconds).
        meter: an :class:`~seqspeech.metrics.rtf.RTFMeter` to add this stream's audio and wall time to.

    Returns:
        the timing (``first_chunk_seconds`` is NaN when no chunk held audio) and the concatenated ``(S,)``
        float32 audio (chunks are flattened in order, so pass mono chunks).
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ConfigError(f"sample_rate must be a positive int, got {sample_rate!r}")
    start = time.perf_counter()
    first = math.nan
    pieces: list[np.ndarray] = []
    samples = 0
    for chunk in chunks:
        array = chunk.detach().to("cpu", torch.float32).numpy() if torch.is_tensor(chunk) else np.asarray(chunk)
        if array.shape and array.shape[-1] > 0 and math.isnan(first):
            first = time.perf_counter() - start
        samples += array.shape[-1] if array.shape else 0
        pieces.append(array.reshape(-1).astype(np.float32, copy=False))
    wall = time.perf_counter() - start
    timing = StreamTiming(first, wall, samples / sample_rate, len(pieces))
    if meter is not None:
        meter.accumulate(timing.audio_seconds, wall)
    audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    return timing, audio


# ----------------------------------------------------------------
# helpers


def _mono(wave: Any, what: str) -> np.ndarray:
    """``(S,)`` finite float samples -> float32 numpy."""
    if torch.is_tensor(wave):
        if not wave.is_floating_point():
            raise AudioError(f"{what}: wave must hold floating-point samples, got dtype {wave.dtype}")
        wave = wave.detach().to("cpu", torch.float32).numpy()
    array = np.asarray(wave)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.floating):
        raise AudioError(f"{what}: wave must be 1-D (S,) float samples, got shape {array.shape} "
                         f"and dtype {array.dtype}")
    if not np.isfinite(array).all():
        raise AudioError(f"{what}: wave contains NaN or infinite samples")
    return np.ascontiguousarray(array, dtype=np.float32)


def _load(source: Any, sample_rate: int, source_sr: int | None, what: str) -> np.ndarray:
    """A path (decoded) or samples at ``source_sr`` (default ``sample_rate``) -> ``(S,)`` float32 at the rate."""
    try:
        if isinstance(source, (str, os.PathLike)):
            return load_audio(source, sample_rate)
        return load_audio(source, sample_rate, source_sr=source_sr)
    except AudioError as err:
        raise AudioError(f"{what}: {err}") from None


def _pair(ref_wave: Any, syn_wave: Any, sample_rate: int, syn_sample_rate: int | None) -> tuple[np.ndarray, ...]:
    metric_frame_settings(sample_rate)  # validates the rate
    return (_load(ref_wave, sample_rate, None, "reference audio"),
            _load(syn_wave, sample_rate, syn_sample_rate, "synthesised audio"))


def _aligned_distances(
    ref: np.ndarray, syn: np.ndarray, sample_rate: int, hop: int, order: int
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Euclidean mel-cepstral distances (c0 excluded) along the DTW path of the two signals, and the path."""
    a = mel_cepstrum(ref, sample_rate, order=order, hop_length=hop)[:, 1:]
    b = mel_cepstrum(syn, sample_rate, order=order, hop_length=hop)[:, 1:]
    if len(a) == 0 or len(b) == 0:
        raise AudioError(f"audio too short for a {hop}-sample frame: {len(ref)} and {len(syn)} samples")
    squared = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T
    _, path = dtw(np.sqrt(np.maximum(squared, 0.0)))
    i, j = np.asarray(path).T
    return np.linalg.norm(a[i] - b[j], axis=1), path  # exact on the path (0 for identical frames)
