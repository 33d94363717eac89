"""F0 (pitch) tracking with probabilistic YIN, and FastSpeech 2's frame energy, on the TTS mel frame grid.

:func:`estimate_f0` is pYIN (Mauch & Dixon, ICASSP 2014) as the reference pYIN Vamp plugin and ``librosa.pyin``
implement it, in numpy with no compiled dependency:

1. YIN's cumulative mean normalised difference (CMND, de Cheveigné & Kawahara 2002) of every frame, from one
   FFT cross-correlation per frame plus running energies, vectorised over frames.
2. Every trough of the CMND between the periods of ``f_max`` and ``f_min`` is a period candidate, refined by
   parabolic interpolation. A Beta(2, 18) prior over YIN's absolute threshold spreads probability over the
   troughs: for each threshold the troughs below it share its mass (a Boltzmann prior favouring short periods);
   when no trough is below it, 1 % of its mass goes to the global minimum. A frame's voiced probability is the
   total mass its candidates received.
3. A hidden Markov model over 0.1-semitone pitch bins x {voiced, unvoiced}, with triangular local pitch
   transitions (at most 35.92 octaves per second) and a 1 % voicing switch probability, is decoded with Viterbi:
   this removes octave jumps and smooths the voicing decision.
4. A voiced frame's decoded bin is refined back to its candidate's interpolated period, so F0 is continuous,
   not quantised to the bin grid.

Framing matches :class:`seqspeech.tts.mel.MelSpectrogram`: ``frames = samples // hop_length`` and frame ``t`` is
centred at sample ``t * hop_length + hop_length // 2`` (exactly for the period of ``sqrt(f_min * f_max)``,
within half a period otherwise; the signal is zero-padded at both ends). Cost is about ``O(frames * frame_length
log frame_length)`` for the CMND plus ``O(frames * bins * transition width)`` for Viterbi: a few hundredths of
real time at 16 kHz with a 256-sample hop.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
import torch

from seqspeech.errors import AudioError, ConfigError

__all__ = ["default_frame_length", "estimate_f0", "frame_energy"]

# pYIN's published defaults (the Vamp plugin's and librosa.pyin's)
PYIN_N_THRESHOLDS = 100  # YIN thresholds 0.01, 0.02, ..., 1.0
PYIN_BETA = (2, 18)  # Beta prior over the threshold (mean 0.1)
PYIN_BOLTZMANN = 2.0  # prior over the troughs below a threshold: earlier (shorter period) troughs first
PYIN_NO_TROUGH_PROB = 0.01  # share of a threshold's mass given to the global minimum when no trough is below it
PYIN_BINS_PER_SEMITONE = 10  # HMM pitch resolution: 0.1 semitone
PYIN_MAX_OCTAVES_PER_SECOND = 35.92  # fastest pitch change the HMM allows
PYIN_SWITCH_PROB = 0.01  # voiced <-> unvoiced transition probability
SEMITONES_PER_OCTAVE = 12
FRAMES_PER_CHUNK = 256  # frames whose CMND is held in memory at once (bounds memory on long signals)
REFINE_CANDIDATES = 8  # candidates per frame kept to refine the decoded bin to an exact F0
_TINY = np.finfo(np.float64).tiny


# ----------------------------------------------------------------
# public API


def default_frame_length(sample_rate: int, f_min: float) -> int:
    """The smallest power of two whose second half holds the longest period (``ceil(sample_rate / f_min)``)
    plus one sample: 1024 at 16 kHz and 22.05 kHz for ``f_min = 60``."""
    longest = math.ceil(sample_rate / f_min)
    return 1 << (2 * (longest + 1) - 1).bit_length()


def estimate_f0(
    wave: np.ndarray | torch.Tensor,
    sample_rate: int,
    hop_length: int,
    f_min: float = 60.0,
    f_max: float = 500.0,
    frame_length: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """F0 of a mono signal with pYIN, one value per mel frame.

    Args:
        wave: ``(S,)`` float samples (numpy or torch), any level.
        sample_rate: samples per second.
        hop_length: samples between frames (``MelConfig.hop_length`` to align with the mel frames).
        f_min / f_max: the F0 search range in Hz, ``0 < f_min < f_max < sample_rate / 2``.
        frame_length: FFT frame in samples; the YIN integration window is its first half, so the second half
            must hold the longest period. Default :func:`default_frame_length` (1024 at 16 kHz).

    Returns:
        ``f0`` float32 ``(S // hop_length,)`` in Hz, 0 at unvoiced frames, and ``voiced`` bool of the same shape.

    Raises:
        AudioError: ``wave`` is not a 1-D array of finite floating-point samples.
        ConfigError: a non-positive rate or hop, an F0 range outside ``(0, sample_rate / 2)``, or a frame too
            short for ``f_min``.
    """
    x = _as_mono_float64(wave, "estimate_f0")
    sample_rate, hop_length = _positive_int(sample_rate, "sample_rate"), _positive_int(hop_length, "hop_length")
    if not 0 < f_min < f_max < sample_rate / 2:
        raise ConfigError(f"need 0 < f_min < f_max < sample_rate / 2 = {sample_rate / 2:g} Hz, "
                          f"got f_min={f_min:g}, f_max={f_max:g}")
    if frame_length is None:
        frame_length = default_frame_length(sample_rate, f_min)
    frame_length = _positive_int(frame_length, "frame_length")
    window = frame_length // 2
    min_period = max(math.floor(sample_rate / f_max), 1)
    max_period = math.ceil(sample_rate / f_min)
    if max_period > frame_length - window - 1:
        raise ConfigError(f"frame_length {frame_length} is too short for f_min={f_min:g} Hz at {sample_rate} Hz: "
                          f"its second half must exceed the longest period ({max_period} samples); use at least "
                          f"{default_frame_length(sample_rate, f_min)}")

    n_frames = x.size // hop_length
    if n_frames == 0:
        return np.zeros(0, np.float32), np.zeros(0, bool)
    # frame t is padded[t * hop + hop // 2 :][:frame_length] and starts `left` samples before t * hop + hop // 2 of
    # the signal. Lag tau compares x[j] with x[j + tau] for j < window: pairs centred (window + tau) / 2 into the
    # frame, so frames are centred for the lag of the geometric mean of f_min and f_max and are off by
    # (tau - tau_mid) / 2 samples otherwise (at most 5.5 ms, at 60 Hz, for the default range)
    left = (window + round(sample_rate / math.sqrt(f_min * f_max))) // 2
    padded_length = (n_frames - 1) * hop_length + hop_length // 2 + frame_length
    padded = np.zeros(max(padded_length, left + x.size))
    padded[left:left + x.size] = x
    starts = np.arange(n_frames) * hop_length + hop_length // 2

    hmm = _pitch_hmm(f_min, f_max, sample_rate, hop_length)
    viterbi = _Viterbi(hmm)
    candidates: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    frames_view = np.lib.stride_tricks.sliding_window_view(padded, frame_length)
    for first in range(0, n_frames, FRAMES_PER_CHUNK):
        frames = frames_view[starts[first:first + FRAMES_PER_CHUNK]]
        cmnd = _cmnd(frames, window, min_period, max_period)
        bins, freqs, probs = _candidates(cmnd, min_period, sample_rate, hmm)
        viterbi.feed(_observations(bins, probs, hmm.n_bins))
        keep = np.argsort(-probs, axis=1)[:, :REFINE_CANDIDATES]  # only the likeliest are kept for refinement
        candidates.append(tuple(np.take_along_axis(a, keep, axis=1) for a in (bins, freqs, probs)))
    states = viterbi.decode()

    voiced = states < hmm.n_bins
    decoded_bin = states % hmm.n_bins
    f0 = np.zeros(n_frames, np.float64)
    first = 0
    for bins, freqs, probs in candidates:
        stop = first + bins.shape[0]
        f0[first:stop] = _refine(decoded_bin[first:stop], bins, freqs, probs, hmm.bin_hz)
        first = stop
    f0 = np.where(voiced, np.clip(f0, f_min, f_max), 0.0)  # interpolation may step just past the range
    return f0.astype(np.float32), voiced


def frame_energy(wave: np.ndarray | torch.Tensor, mel_config: Any = None) -> np.ndarray:
    """FastSpeech 2's energy: the L2 norm of each linear STFT magnitude frame, on the mel frame grid.

    Args:
        wave: ``(S,)`` float samples at ``mel_config.sample_rate``.
        mel_config: a :class:`seqspeech.tts.mel.MelConfig` (default ``MelConfig()``).

    Returns:
        ``(S // hop_length,)`` float32, from :meth:`seqspeech.tts.mel.MelSpectrogram.magnitude` (same frames as
        the mel spectrogram).

    Raises:
        AudioError: not 1-D finite float samples, or shorter than half an FFT frame.
    """
    from seqspeech.tts.mel import MelConfig, MelSpectrogram  # noqa: PLC0415 (audio/ must not need tts/ to import)

    config = MelConfig() if mel_config is None else mel_config
    if not isinstance(config, MelConfig):
        raise ConfigError(f"frame_energy: mel_config must be a MelConfig, got {type(config).__name__}")
    x = _as_mono_float64(wave, "frame_energy")
    if x.size < config.n_fft // 2 + 1:
        raise AudioError(f"frame_energy: {x.size} samples is shorter than half an FFT frame "
                         f"({config.n_fft // 2 + 1} samples needed)")
    with torch.no_grad():
        magnitude = MelSpectrogram(config).magnitude(torch.from_numpy(x.astype(np.float32)))
        return torch.linalg.vector_norm(magnitude, dim=0).numpy().astype(np.float32)


# ----------------------------------------------------------------
# input checks


def _as_mono_float64(wave: Any, what: str) -> np.ndarray:
    if torch.is_tensor(wave):
        if not wave.is_floating_point():
            raise AudioError(f"{what}: wave must hold floating-point samples, got dtype {wave.dtype}")
        wave = wave.detach().to("cpu", torch.float64).numpy()
    array = np.asarray(wave)
    if array.ndim != 1:
        raise AudioError(f"{what}: wave must be 1-D (S,) mono samples, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise AudioError(f"{what}: wave must hold floating-point samples, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise AudioError(f"{what}: wave contains NaN or infinite samples")
    return array


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ConfigError(f"{name} must be a positive int, got {value!r}")
    return int(value)


# ----------------------------------------------------------------
# YIN: cumulative mean normalised difference


def _cmnd(frames: np.ndarray, window: int, min_period: int, max_period: int) -> np.ndarray:
    """``(F, L)`` frames -> ``(F, max_period - min_period + 1)`` CMND at periods ``min_period..max_period``.

    ``d(tau) = sum_{j < W} (x_j - x_{j+tau})^2 = E_0 + E_tau - 2 r(tau)`` with ``r`` from an FFT
    cross-correlation of the first ``W`` samples with the whole frame (no wrap-around for ``tau <= L - W``), and
    ``cmnd(tau) = d(tau) * tau / sum_{1..tau} d``. A frame of digital silence gets a flat CMND of 1 (no trough).
    """
    n_fft = frames.shape[1]
    spectrum = np.fft.rfft(frames, n_fft, axis=1)
    head = np.fft.rfft(frames[:, :window], n_fft, axis=1)
    corr = np.fft.irfft(np.conj(head) * spectrum, n_fft, axis=1)[:, :max_period + 1]
    energy = np.concatenate([np.zeros((frames.shape[0], 1)), np.cumsum(frames**2, axis=1)], axis=1)
    shifted = energy[:, window:window + max_period + 1] - energy[:, :max_period + 1]  # E_tau, tau = 0..max
    diff = np.maximum(shifted[:, :1] + shifted - 2.0 * corr, 0.0)
    running = np.cumsum(diff[:, 1:], axis=1)  # sum_{1..tau} d, tau = 1..max
    taus = np.arange(min_period, max_period + 1)
    denominator = running[:, min_period - 1:]
    scale = np.maximum(energy[:, -1:], _TINY) * 1e-12  # d below this is rounding noise of a silent frame
    silent = denominator <= scale
    return np.where(silent, 1.0, diff[:, min_period:] * taus / np.where(silent, 1.0, denominator))


def _parabolic_shifts(y: np.ndarray) -> np.ndarray:
    """Sub-sample offset of the vertex of the parabola through each point and its neighbours (0 at the ends and
    where the fit is not a minimum-like curve)."""
    shifts = np.zeros_like(y)
    a = y[:, 2:] + y[:, :-2] - 2.0 * y[:, 1:-1]
    b = 0.5 * (y[:, 2:] - y[:, :-2])
    ok = np.abs(b) < np.abs(a)
    shifts[:, 1:-1] = np.where(ok, -b / np.where(ok, a, 1.0), 0.0)
    return shifts


# ----------------------------------------------------------------
# pYIN: candidates and their probabilities


class _HMM:
    """The pitch-bin grid and the Viterbi weights of one (f_min, f_max, rate, hop) setting."""

    def __init__(self, f_min: float, f_max: float, sample_rate: int, hop_length: int) -> None:
        per_octave = SEMITONES_PER_OCTAVE * PYIN_BINS_PER_SEMITONE
        self.f_min = f_min
        self.bins_per_octave = per_octave
        self.n_bins = math.floor(per_octave * math.log2(f_max / f_min)) + 1
        self.bin_hz = f_min * 2.0 ** (np.arange(self.n_bins) / per_octave)
        thresholds = np.linspace(0.0, 1.0, PYIN_N_THRESHOLDS + 1)
        self.thresholds = thresholds[1:]
        self.beta_probs = np.diff(_beta_cdf(thresholds, *PYIN_BETA))
        self.beta_cumulative = np.concatenate([[0.0], np.cumsum(self.beta_probs)])
        semitones_per_frame = round(PYIN_MAX_OCTAVES_PER_SECOND * SEMITONES_PER_OCTAVE * hop_length / sample_rate)
        # half width of the triangle in bins (librosa: width = semitones * bins_per_semitone + 1)
        self.half_width = max(semitones_per_frame * PYIN_BINS_PER_SEMITONE // 2, 1)
        h = self.half_width
        triangle = (h + 1.0 - np.abs(np.arange(-h, h + 1))) / (h + 1.0)  # scipy triang(2h + 1)
        self.log_triangle = np.log(triangle)
        # each row (from-bin) of the banded transition matrix is normalised over the bins inside the grid
        row_sums = np.array([triangle[h - min(i, h):h + 1 + min(self.n_bins - 1 - i, h)].sum()
                             for i in range(self.n_bins)])
        self.log_row_sums = np.log(row_sums)
        self.log_stay = math.log(1.0 - PYIN_SWITCH_PROB)
        self.log_switch = math.log(PYIN_SWITCH_PROB)


@cache
def _pitch_hmm(f_min: float, f_max: float, sample_rate: int, hop_length: int) -> _HMM:
    return _HMM(f_min, f_max, sample_rate, hop_length)


def _beta_cdf(x: np.ndarray, a: int, b: int) -> np.ndarray:
    """Regularised incomplete beta function for integer ``a, b``: ``P(Binomial(a + b - 1, x) >= a)``."""
    n = a + b - 1
    return sum(math.comb(n, j) * x**j * (1.0 - x) ** (n - j) for j in range(a, n + 1))


def _candidates(
    cmnd: np.ndarray, min_period: int, sample_rate: int, hmm: _HMM
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CMND troughs of each frame -> ``(F, K)`` pitch bins (-1 = no candidate), F0 in Hz, probabilities."""
    n_frames = cmnd.shape[0]
    is_trough = np.zeros(cmnd.shape, bool)
    is_trough[:, 1:-1] = (cmnd[:, 1:-1] < cmnd[:, :-2]) & (cmnd[:, 1:-1] <= cmnd[:, 2:])
    is_trough[:, 0] = cmnd[:, 0] < cmnd[:, 1]
    is_trough[:, -1] = cmnd[:, -1] < cmnd[:, -2]
    # only troughs under the top threshold can take a threshold's mass, and the global minimum the rest: the
    # others would get probability 0, so they are dropped before the (frames, troughs, thresholds) work
    lowest = np.argmin(np.where(is_trough, cmnd, np.inf), axis=1)
    is_trough &= (cmnd < hmm.thresholds[-1]) | (np.arange(cmnd.shape[1]) == lowest[:, None])
    counts = is_trough.sum(axis=1)
    k = max(int(counts.max()), 1)
    # trough positions in order of period, padded on the right
    order = np.argsort(~is_trough, axis=1, kind="stable")[:, :k]
    valid = np.arange(k)[None, :] < counts[:, None]
    heights = np.where(valid, np.take_along_axis(cmnd, order, axis=1), np.inf)

    below = heights[:, :, None] < hmm.thresholds[None, None, :]  # (F, K, thresholds)
    position = np.cumsum(below, axis=1, dtype=np.int32)  # 1-based position among the troughs below a threshold
    n_below = position[:, -1, :]  # (F, thresholds)
    lam = PYIN_BOLTZMANN
    decay = np.exp(-lam * (np.arange(k + 1) - 1.0))  # Boltzmann pmf up to its normaliser, by position
    prior = np.where(below, decay[position], 0.0)
    weights = hmm.beta_probs * (1.0 - math.exp(-lam)) / (1.0 - np.exp(-lam * np.maximum(n_below, 1)))
    probs = np.matmul(prior, weights[:, :, None])[:, :, 0]  # (F, K)
    # thresholds under the global minimum give a little of their mass to it
    global_min = np.argmin(heights, axis=1)
    min_height = heights[np.arange(n_frames), global_min]
    thresholds_not_reached = np.searchsorted(hmm.thresholds, min_height, side="right")
    has_trough = counts > 0
    probs[np.arange(n_frames), global_min] += np.where(
        has_trough, PYIN_NO_TROUGH_PROB * hmm.beta_cumulative[thresholds_not_reached], 0.0)
    probs = np.where(valid, probs, 0.0)

    shifts = np.take_along_axis(_parabolic_shifts(cmnd), order, axis=1)
    periods = min_period + order + shifts
    freqs = sample_rate / periods
    bins = np.clip(np.round(hmm.bins_per_octave * np.log2(freqs / hmm.f_min)), 0, hmm.n_bins - 1).astype(np.int64)
    bins = np.where(valid & (probs > 0), bins, -1)
    return bins, freqs, probs


def _observations(bins: np.ndarray, probs: np.ndarray, n_bins: int) -> np.ndarray:
    """``(F, 2 * n_bins)`` emission probabilities: candidates' mass on voiced bins, the rest spread evenly over
    the unvoiced bins."""
    n_frames = bins.shape[0]
    keep = bins >= 0
    flat = (np.arange(n_frames)[:, None] * n_bins + bins)[keep]
    voiced = np.bincount(flat, weights=probs[keep], minlength=n_frames * n_bins).reshape(n_frames, n_bins)
    voiced_prob = np.clip(voiced.sum(axis=1, keepdims=True), 0.0, 1.0)
    unvoiced = np.broadcast_to((1.0 - voiced_prob) / n_bins, voiced.shape)
    return np.concatenate([voiced, unvoiced], axis=1)


def _refine(
    decoded: np.ndarray, bins: np.ndarray, freqs: np.ndarray, probs: np.ndarray, bin_hz: np.ndarray
) -> np.ndarray:
    """The F0 of the most probable candidate in each frame's decoded bin (the bin's centre if it has none)."""
    match = bins == decoded[:, None]
    best = np.argmax(np.where(match, probs, -1.0), axis=1)
    rows = np.arange(bins.shape[0])
    return np.where(match.any(axis=1), freqs[rows, best], bin_hz[decoded])


# ----------------------------------------------------------------
# Viterbi over (voiced, unvoiced) x pitch bins


class _Viterbi:
    """Max-product decoding fed chunk by chunk; the banded pitch transition is applied with a sliding window.

    State ``v * n_bins + i``: ``v = 0`` voiced, ``1`` unvoiced, ``i`` the pitch bin. The transition from
    ``(v, i)`` to ``(v', j)`` is ``switch(v, v') * triangle(j - i) / row_sum(i)``; decoding starts unvoiced.
    """

    def __init__(self, hmm: _HMM) -> None:
        self.hmm = hmm
        n = hmm.n_bins
        self.log_delta: np.ndarray | None = None
        self.pointers: list[np.ndarray] = []
        self.log_init = np.log(np.concatenate([np.zeros(n), np.full(n, 1.0 / n)]) + _TINY)

    def feed(self, observations: np.ndarray) -> None:
        hmm = self.hmm
        n, h = hmm.n_bins, hmm.half_width
        log_obs = np.log(observations + _TINY)
        padded = np.full((2, n + 2 * h), -np.inf)
        inner = padded[:, h:h + n]
        windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * h + 1, axis=1)  # (2, n, 2h + 1) view
        first_source = np.arange(n) - h  # predecessor bin of window offset 0
        same_voicing = np.array([[0], [n]]) + first_source  # source states, by voicing, before the offset
        other_voicing = np.array([[n], [0]]) + first_source
        pointers = np.empty((observations.shape[0], 2 * n), np.int16 if 2 * n < 2**15 else np.int32)
        for t, log_ob in enumerate(log_obs):
            if self.log_delta is None:
                self.log_delta = self.log_init + log_ob
                pointers[t] = -1
                continue
            np.subtract(self.log_delta.reshape(2, n), hmm.log_row_sums, out=inner)
            scores = windows + hmm.log_triangle
            offset = scores.argmax(axis=2)  # (2, n): best predecessor bin j - h + offset, per voicing
            best = scores.max(axis=2)
            stay = best + hmm.log_stay
            switch = best[::-1] + hmm.log_switch  # from the other voicing
            source = np.where(switch > stay, other_voicing + offset[::-1], same_voicing + offset)
            self.log_delta = np.maximum(stay, switch).reshape(-1) + log_ob
            pointers[t] = source.reshape(-1)
        self.pointers.append(pointers)

    def decode(self) -> np.ndarray:
        """The most probable state sequence ``(frames,)``."""
        pointers = np.concatenate(self.pointers)
        states = np.empty(pointers.shape[0], np.int64)
        states[-1] = int(np.argmax(self.log_delta))
        for t in range(pointers.shape[0] - 1, 0, -1):
            states[t - 1] = pointers[t, states[t]]
        return states
