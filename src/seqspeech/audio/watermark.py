"""Inaudible keyed audio watermark: a fine spectral ripple that follows the signal, found by correlation.

Embedding. A key selects ``N_BANDS`` pseudo-random signs ``p_k = ±1``, one per narrow band (Hann bumps
``BAND_HZ`` apart that overlap by half, so they sum to one) between ``BAND_LOW_HZ`` and ``BAND_HIGH_HZ`` — inside
what survives resampling to 8 kHz, telephone filters and MP3. In an STFT of the signal every cell is multiplied by
``1 + d(t, f) P(f)`` with ``P(f) = sum_k p_k b_k(f)``: a ripple on the magnitude spectrum. Being a product with the
signal, the mark follows it (silence stays silent, a gain change scales both); having the same sign pattern at
every instant, it needs no synchronisation (any shift, cut or codec delay still carries it). The depth ``d`` of
each cell grows where the signal's local spectral envelope is weak (``CELL_TILT``), up to ``MAX_RIPPLE``
(+2.3 / -3.1 dB): weak cells cost almost no energy but count as much for detection as loud ones. A single
constant, found by bisection, scales the depths so that the mark's energy is ``strength ** 2`` of the signal's
(32 dB SNR by default), one budget per block (``FIRST_BLOCK_S``, then ``EMBED_BLOCK_S`` at a time), so a stream
(:class:`StreamingWatermarker`) is marked exactly as the whole clip would be. On the test speech about half the
cells sit at the cap while the loudest tenth, which carry most of the energy, get a ripple of typically 0.1-0.3 dB.

Detection. Resample to ``DETECT_RATE``, take an STFT, and per frame the log magnitude minus its moving average
over ``2 * WHITEN_HZ`` (the spectral envelope and the level go, a fine ripple stays), clipped to
``±RESIDUAL_CLIP``; average it over active frames (weighted by how far each stands above the clip's noise floor),
pool it into the same bands (``u_k``), remove its mean and flatten its spectrum across bands (a steady voice's
harmonic comb is one peak there; the key pattern is white). The score is ``z = sum_k p_k u_k / ||u||``. For audio
not marked with this key the signs are independent of ``u``, so Hoeffding's inequality bounds
``P(z > t) <= exp(-t ** 2 / 2)`` whatever the audio: ``WATERMARK_THRESHOLD = sqrt(2 ln(1 / FALSE_POSITIVE_BOUND))``
keeps false positives at most 1 % for any input; unmarked speech scores about N(0, 1), about 0.1 % above it
(bench/watermark.py measures it), and a wrong key scores like unmarked audio.

    marked = embed_watermark(wave, 16000)               # same type, dtype, shape; within [-1, 1]
    detect_watermark(marked, 16000)                     # WatermarkResult(present=True, score=6.5, threshold=3.03)
    marker = StreamingWatermarker(16000)                # chunks: marker.push(chunk) ..., then marker.finish()
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from seqspeech.audio.io import load_audio
from seqspeech.errors import AudioError, ConfigError

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_KEY",
    "DEFAULT_STRENGTH",
    "MIN_RELIABLE_S",
    "StreamingWatermarker",
    "WATERMARK_THRESHOLD",
    "WatermarkStreamState",
    "WatermarkResult",
    "detect_watermark",
    "embed_watermark",
    "watermark_scores",
    "watermark_snr_db",
]

Wave = Union[np.ndarray, "torch.Tensor"]  # torch is never imported here
Key = Union[int, str]

DEFAULT_KEY: Key = "seqspeech"
KEY_DOMAIN = b"seqspeech-watermark-v1|"  # hashed with the key: a new scheme version gets new patterns

# Bands: bump k is centred at BAND_LOW_HZ + (k + 1) * BAND_HZ and spans one BAND_HZ either side.
BAND_LOW_HZ = 300.0
BAND_HZ = 31.25
N_BANDS = 102
BAND_HIGH_HZ = BAND_LOW_HZ + (N_BANDS + 1) * BAND_HZ  # 3518.75 Hz: below the ~3.6 kHz edge of 8 kHz resampling
MIN_SAMPLE_RATE = 8000  # the bands must fit below Nyquist

# Embedding.
DEFAULT_STRENGTH = 10 ** (-32 / 20)  # mark RMS / signal RMS: 32 dB SNR
MAX_STRENGTH = 0.1  # 20 dB SNR: anything louder is no longer a hidden mark
EMBED_WINDOW_S = 0.128  # STFT window of the embedder (a power of two near this): resolves the 31 Hz bands
ENVELOPE_HZ = 125.0  # half-width of the smoothing that gives each cell its spectral envelope
CELL_TILT = 1.5  # ripple depth per cell ~ envelope ** -CELL_TILT: deeper where the signal is weak ...
MAX_RIPPLE = 0.3  # ... up to this relative depth (+2.3 / -3.1 dB); 1 + ripple > 0: no bin is ever inverted
MAX_TOP_UP = 1.25  # the final rescale to the energy budget never deepens the ripple more than this
EMBED_BLOCK_S = 0.5  # marked block by block (each meets the budget): bounded memory, and streaming latency ...
FIRST_BLOCK_S = 0.125  # ... with a shorter first block: a stream's first marked sample waits for less audio

# Detection.
DETECT_RATE = 16000
DETECT_N_FFT = 2048  # 128 ms: 7.8 Hz bins, four per band step
DETECT_HOP = 512
DETECT_CHUNK_FRAMES = 512  # frames transformed at once (bounds memory on long files)
WHITEN_HZ = 125.0  # half-width of the moving average removed from each frame's log spectrum
RESIDUAL_CLIP = 1.5  # nats: harmonic peaks and deep valleys count no more than this
ACTIVE_DB = 40.0  # frames more than this below the loudest (in band) are ignored
NOISE_PERCENTILE = 10.0  # frame-energy percentile taken as the noise floor
BAND_SPECTRUM_SMOOTH = 4  # half-width of the smoothing in _whiten_bands (in rfft bins of the N_BANDS vector)
FALSE_POSITIVE_BOUND = 0.01  # proven for any audio; measured on speech it is about 0.1 %
MIN_RELIABLE_S = 1.5  # a clip shorter than this may carry the mark yet score below the threshold
WATERMARK_THRESHOLD = math.sqrt(2 * math.log(1 / FALSE_POSITIVE_BOUND))  # 3.035: P(false positive) <= 1 %


@dataclass(frozen=True)
class WatermarkResult:
    """Outcome of :func:`detect_watermark`: ``present`` is ``score > threshold``."""

    present: bool
    score: float
    threshold: float


# ----------------------------------------------------------------
# public API


def embed_watermark(
    wave: Wave, sample_rate: int, key: Key = DEFAULT_KEY, strength: float = DEFAULT_STRENGTH
) -> Wave:
    """Mark ``wave`` with the watermark of ``key``.

    Args:
        wave: float samples in [-1, 1], numpy array or torch tensor, ``(T,)`` or ``(C, T)`` (each row is
            marked on its own).
        sample_rate: rate of ``wave`` in Hz (at least ``MIN_SAMPLE_RATE``).
        key: int or str; ``1234`` and ``"1234"`` are the same key.
        strength: RMS of the mark relative to the signal's (``0.025``: 32 dB SNR); a clip with little energy in
            the watermark band gets less, never more (no cell's ripple goes deeper than ``MAX_RIPPLE`` times
            ``MAX_TOP_UP``).

    Returns:
        The marked samples: same type, shape, dtype (and device) as ``wave``, deterministic, never outside
        [-1, 1] (scaled down as a whole if the mark would push a peak over full scale).

    Raises:
        AudioError: non-float, NaN/inf, empty or wrongly shaped samples, or a rate below ``MIN_SAMPLE_RATE``.
        ConfigError: a bad key or strength.
    """
    samples, restore = _float_rows(wave, "embed_watermark")
    _check_rate(sample_rate)
    _check_strength(strength)
    signs = _key_signs(key)
    marked = np.stack([_embed_row(row, sample_rate, signs, float(strength)) for row in samples])
    peak = float(np.abs(marked).max(initial=0.0))
    if peak > 1.0:
        marked /= peak
    return restore(marked)


def detect_watermark(wave: Wave, sample_rate: int, key: Key = DEFAULT_KEY) -> WatermarkResult:
    """Look for the watermark of ``key`` in ``wave``.

    Args:
        wave: samples, numpy array or torch tensor, ``(T,)`` or ``(C, T)`` / ``(T, C)`` (channels averaged), any
            rate of at least ``MIN_SAMPLE_RATE``; ``MIN_RELIABLE_S`` (1.5 s) or more of speech for a reliable
            answer.
        sample_rate: rate of ``wave`` in Hz.
        key: the key it was marked with.

    Returns:
        ``WatermarkResult(present, score, threshold)``; ``score`` is about N(0, 1) for audio not marked with
        ``key`` (0.0 when there is nothing to measure: silence, or shorter than one 128 ms analysis frame).

    Raises:
        AudioError: unusable samples (empty, NaN/inf, bad dtype or shape) or a rate below ``MIN_SAMPLE_RATE``.
        ConfigError: a bad key.
    """
    score = float(watermark_scores(wave, sample_rate, [key])[0])
    return WatermarkResult(present=score > WATERMARK_THRESHOLD, score=score, threshold=WATERMARK_THRESHOLD)


def watermark_scores(wave: Wave, sample_rate: int, keys: Sequence[Key]) -> np.ndarray:
    """The scores of several keys from one analysis of ``wave`` (which key, if any, marked it?).

    Returns:
        ``(len(keys),)`` float64, each equal to ``detect_watermark(wave, sample_rate, key).score``.

    Raises:
        AudioError, ConfigError: as :func:`detect_watermark`.
    """
    _check_rate(sample_rate)
    signs = np.array([_key_signs(key) for key in keys]).reshape(len(keys), N_BANDS)
    residual = band_residual(load_audio(wave, sr=DETECT_RATE, source_sr=sample_rate))
    if residual is None or not np.any(residual):
        return np.zeros(len(keys))
    return signs @ residual / float(np.linalg.norm(residual))


def watermark_snr_db(original: Wave, marked: Wave) -> float:
    """Signal-to-watermark ratio in dB: ``10 log10(sum original² / sum (marked - original)²)`` (inf if equal)."""
    clean, _ = _float_rows(original, "original")
    other, _ = _float_rows(marked, "marked")
    if clean.shape != other.shape:
        raise AudioError(f"original has shape {clean.shape} but marked has shape {other.shape}")
    noise = float(np.sum((other - clean) ** 2))
    signal = float(np.sum(clean**2))
    if noise == 0.0:
        return math.inf
    return 10 * math.log10(signal / noise) if signal > 0 else -math.inf


def band_residual(samples: np.ndarray) -> np.ndarray | None:
    """The key-independent detection statistic: band residuals ``u`` of ``(T,)`` samples at 16 kHz.

    Returns:
        ``(N_BANDS,)``, zero mean and flattened across bands (:func:`_whiten_bands`), or ``None`` when the
        clip is shorter than one analysis frame or silent. ``detect_watermark``'s score for key signs ``p`` is
        ``p @ u / ||u||``.
    """
    if samples.size < DETECT_N_FFT:
        return None
    bins = np.arange(DETECT_N_FFT // 2 + 1) * (DETECT_RATE / DETECT_N_FFT)
    half = round(WHITEN_HZ * DETECT_N_FFT / DETECT_RATE)
    first = int(np.searchsorted(bins, BAND_LOW_HZ))  # bins the bands cover: [first, last)
    last = int(np.searchsorted(bins, BAND_HIGH_HZ, side="right"))
    lo, hi = first - half, last + half  # plus the moving average's reach
    pool = _bump_matrix(bins[first:last])  # (bins, N_BANDS), columns sum to 1
    window = np.hanning(DETECT_N_FFT + 1)[:-1]
    frames = np.lib.stride_tricks.sliding_window_view(samples.astype(np.float64), DETECT_N_FFT)[::DETECT_HOP]
    energies, pooled = [], []
    for start in range(0, len(frames), DETECT_CHUNK_FRAMES):
        chunk = frames[start : start + DETECT_CHUNK_FRAMES] * window
        magnitude = np.abs(np.fft.rfft(chunk, axis=-1)[:, lo:hi])
        energies.append(np.sum(magnitude[:, half:-half] ** 2, axis=1))
        floor = 1e-5 * magnitude.max(axis=1, keepdims=True) + 1e-12
        log_mag = np.log(magnitude + floor)
        cumulative = np.pad(np.cumsum(log_mag, axis=1), ((0, 0), (1, 0)))
        width = 2 * half + 1
        smooth = (cumulative[:, width:] - cumulative[:, :-width]) / width  # centred on bins [first, last)
        residual = np.clip(log_mag[:, half:-half] - smooth, -RESIDUAL_CLIP, RESIDUAL_CLIP)
        pooled.append(residual @ pool)
    energy = np.concatenate(energies)
    weights = _frame_weights(energy)
    if weights.sum() <= 0:
        return None
    u = weights @ np.concatenate(pooled) / weights.sum()
    return _whiten_bands(u - u.mean())


def _whiten_bands(u: np.ndarray) -> np.ndarray:
    """``u`` with its spectrum across bands flattened: ``irfft(U / smooth(|U|²))`` over ``u`` and its mirror image.

    The key pattern is white across bands; the host's residual is not (a steady voice leaves a harmonic comb, one
    peak in this spectrum), so dividing by its smoothed power spectrum is the matched filter for coloured noise.
    The mirror image (a cosine transform, in effect) keeps the two ends of the band from being read as neighbours,
    which would otherwise leave the same edge pattern in every clip. It depends on the audio only, so the score
    keeps its key-independent bound.
    """
    mirrored = np.concatenate([u, u[::-1]])
    spectrum = np.fft.rfft(mirrored)
    power = np.abs(spectrum) ** 2
    half = 2 * BAND_SPECTRUM_SMOOTH  # the mirrored spectrum has twice the resolution
    width = 2 * half + 1
    smooth = np.convolve(np.pad(power, half, mode="reflect"), np.ones(width) / width, mode="valid")
    return np.fft.irfft(spectrum / np.maximum(smooth, 1e-30), mirrored.size)[: u.size]


@dataclass(frozen=True)
class WatermarkStreamState:
    """Where a :class:`StreamingWatermarker` stands: ``pending[i]`` is (unmarked) stream sample ``offset + i``;
    the first ``emitted`` stream samples have been returned."""

    pending: np.ndarray
    offset: int = 0
    emitted: int = 0


class StreamingWatermarker:
    """Marks a stream chunk by chunk; the chunks it returns concatenate to ``embed_watermark`` of the whole.

    ``push(samples)`` returns the marked samples that are final so far (the output lags the input by at most
    :attr:`latency` samples: one block plus the look-ahead of its STFT frames; the first output comes after
    :attr:`first_latency` samples, the shorter first block plus the look-ahead); ``finish()`` returns the rest and
    resets. The only difference from the offline path: a sample the mark would push past full scale is clipped
    here, where the offline path scales the whole signal down.

    Args:
        sample_rate: rate of the stream in Hz (at least ``MIN_SAMPLE_RATE``).
        key, strength: as :func:`embed_watermark`.
    """

    def __init__(self, sample_rate: int, key: Key = DEFAULT_KEY, strength: float = DEFAULT_STRENGTH) -> None:
        _check_rate(sample_rate)
        _check_strength(strength)
        self.sample_rate = int(sample_rate)
        self.strength = float(strength)
        self.signs = _key_signs(key)
        self.n_fft, self.first, self.block, self.context = _block_geometry(self.sample_rate)
        self.state = WatermarkStreamState(np.zeros(0))

    @property
    def latency(self) -> int:
        """Most samples the output can lag the input by (before ``finish``)."""
        return max(self.first, self.block) + self.context

    @property
    def first_latency(self) -> int:
        """Samples a stream needs before its first marked samples come out (fewer at the end of the stream)."""
        return self.first + self.context

    def reset(self) -> None:
        """Forget the stream (start a new one)."""
        self.state = WatermarkStreamState(np.zeros(0))

    def push(self, samples: Wave) -> np.ndarray:
        """Add ``(T,)`` float samples; return the marked samples now final, float32 ``(n,)`` (possibly empty)."""
        self.state, out = self._step(self.state, _stream_chunk(samples), final=False)
        return out

    def finish(self) -> np.ndarray:
        """Mark and return what is left of the stream, then reset."""
        _, out = self._step(self.state, np.zeros(0), final=True)
        self.reset()
        return out

    def _step(self, state: WatermarkStreamState, x: np.ndarray, final: bool) -> tuple[WatermarkStreamState, np.ndarray]:
        pending = np.concatenate([state.pending, x])
        end = state.offset + pending.size
        emitted, out = state.emitted, []
        while emitted < end:
            block_end = _block_end(emitted, self.first, self.block)
            if not final and block_end + self.context > end:  # the block's look-ahead has not all arrived
                break
            stop = min(block_end, end)
            mark = _block_mark(pending, state.offset, emitted, stop, self.sample_rate, self.n_fft, self.context,
                               self.signs, self.strength)  # fmt: skip
            out.append(pending[emitted - state.offset : stop - state.offset] + mark)
            emitted = stop
        keep = max(state.offset, emitted - self.context)
        new_state = WatermarkStreamState(pending[keep - state.offset :], keep, emitted)
        marked = np.concatenate(out) if out else np.zeros(0)
        return new_state, np.clip(marked, -1.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------
# key and bands


def _key_signs(key: Any) -> np.ndarray:
    """``(N_BANDS,)`` ±1 signs drawn from a generator seeded by the SHA-256 of the key."""
    if isinstance(key, bool) or not isinstance(key, (int, np.integer, str)):
        raise ConfigError(f"watermark key must be an int or a str, got {type(key).__name__} {key!r}")
    if isinstance(key, str) and not key:
        raise ConfigError("watermark key must not be an empty string")
    digest = hashlib.sha256(KEY_DOMAIN + str(key).encode("utf-8")).digest()
    rng = np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))
    return rng.integers(0, 2, size=N_BANDS).astype(np.float64) * 2 - 1


def _band_position(freqs: np.ndarray) -> np.ndarray:
    """Position in band steps: bump k is centred where this equals k."""
    return (freqs - BAND_LOW_HZ) / BAND_HZ - 1.0


def _bump(distance: np.ndarray) -> np.ndarray:
    """Hann bump of half-width 1 (in band steps)."""
    return np.where(np.abs(distance) < 1, 0.5 * (1 + np.cos(np.pi * distance)), 0.0)


def _bump_matrix(freqs: np.ndarray) -> np.ndarray:
    """``(F, N_BANDS)`` bump weights at ``freqs``, each column normalised to sum 1 (band means)."""
    weights = _bump(_band_position(freqs)[:, None] - np.arange(N_BANDS)[None, :])
    return weights / np.maximum(weights.sum(axis=0, keepdims=True), 1e-12)


def _bump_neighbours(freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For frequencies inside the bands: their index, lower bump ``k`` (``-1 .. N_BANDS - 1``) and its weight.

    The upper neighbour ``k + 1`` has weight ``1 - w``; bumps ``-1`` and ``N_BANDS`` do not exist (weight 0).
    """
    position = _band_position(freqs)
    inside = np.flatnonzero((position > -1) & (position < N_BANDS))
    k = np.floor(position[inside]).astype(np.int64)
    weight = 0.5 * (1 + np.cos(np.pi * (position[inside] - k)))
    return inside, k, weight


def _ripple(freqs: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``sum_k values[k] b_k(f)`` at ``freqs``."""
    out = np.zeros(freqs.shape)
    inside, k, weight = _bump_neighbours(freqs)
    padded = np.concatenate([[0.0], values, [0.0]])  # padded[k + 1] = values[k]
    out[inside] = padded[k + 1] * weight + padded[k + 2] * (1 - weight)
    return out


# ----------------------------------------------------------------
# embedding


def _block_geometry(sample_rate: int) -> tuple[int, int, int, int]:
    """``(n_fft, first, block, context)`` in samples: the embedder's STFT size, the first block and every later
    block (each gets one energy budget), and the look-ahead / look-behind that gives every frame touching a block
    (and its neighbours, for the envelope's smoothing over time) the real signal. Offline and streaming marking
    share it, so they agree exactly."""
    n_fft = 1 << round(math.log2(EMBED_WINDOW_S * sample_rate))
    return n_fft, round(FIRST_BLOCK_S * sample_rate), round(EMBED_BLOCK_S * sample_rate), n_fft + n_fft // 4


def _block_end(start: int, first: int, block: int) -> int:
    """End of the block starting at stream sample ``start``: blocks are ``[0, first)``, then ``block`` long."""
    return first if start < first else start + block


def _embed_row(x: np.ndarray, sample_rate: int, signs: np.ndarray, strength: float) -> np.ndarray:
    """Marked copy of one channel ``(T,)`` (float64), a block at a time (each block meets the budget)."""
    n_fft, first, block, context = _block_geometry(sample_rate)
    marked = x.copy()
    start = 0
    while start < x.size:
        stop = min(_block_end(start, first, block), x.size)
        marked[start:stop] += _block_mark(x, 0, start, stop, sample_rate, n_fft, context, signs, strength)
        start = stop
    return marked


def _block_mark(
    x: np.ndarray, offset: int, start: int, stop: int, sample_rate: int, n_fft: int, context: int,
    signs: np.ndarray, strength: float,
) -> np.ndarray:  # fmt: skip
    """The mark of stream samples ``[start, stop)``; ``x[i]`` is stream sample ``offset + i`` and holds ``context``
    samples either side of the block where the stream has them."""
    lo, hi = max(offset, start - context), min(offset + x.size, stop + context)
    mark = _mark(x[lo - offset : hi - offset], sample_rate, n_fft, signs, strength)[start - lo : stop - lo]
    # the inverse STFT keeps a little less energy than the modified spectrum held: top the block up to its budget
    block = x[start - offset : stop - offset]
    mark_energy = float(np.dot(mark, mark))
    if mark_energy > 0:
        mark *= min(MAX_TOP_UP, strength * math.sqrt(float(np.dot(block, block)) / mark_energy))
    return mark


def _mark(x: np.ndarray, sample_rate: int, n_fft: int, signs: np.ndarray, strength: float) -> np.ndarray:
    """The watermark to add to ``x`` (``(T,)``): its STFT times the keyed ripple at the per-cell depths."""
    hop = n_fft // 4
    padded = np.pad(x, (n_fft, n_fft + hop))  # every sample of x lies under four whole frames
    spectrum = _stft(padded, n_fft, hop)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    inside = np.flatnonzero((freqs > BAND_LOW_HZ) & (freqs < BAND_HIGH_HZ))
    band = spectrum[:, inside]
    power = np.abs(band) ** 2
    total = float(np.sum(np.abs(spectrum) ** 2))
    if total == 0.0 or not power.any():
        return np.zeros_like(x)
    envelope = np.sqrt(_smooth_power(power, round(ENVELOPE_HZ * n_fft / sample_rate)))
    depth = _cell_depths(envelope, power, strength**2 * total)
    marked_band = np.zeros_like(spectrum)
    marked_band[:, inside] = band * depth * _ripple(freqs[inside], signs)
    return _istft(marked_band, n_fft, hop)[n_fft : n_fft + x.size]


def _cell_depths(envelope: np.ndarray, power: np.ndarray, budget: float) -> np.ndarray:
    """Relative ripple depth per cell, ``min(MAX_RIPPLE, c * envelope ** -CELL_TILT)``, with ``c`` chosen so the
    mark's energy ``sum(depth² power)`` meets ``budget`` (all cells at ``MAX_RIPPLE`` when even that is less)."""
    with np.errstate(divide="ignore"):
        shape = envelope ** (-CELL_TILT)  # inf where the envelope is 0: such cells are capped (and silent)

    def depth(log_c: float) -> np.ndarray:
        return np.minimum(MAX_RIPPLE, math.exp(log_c) * shape)

    def energy(log_c: float) -> float:
        return float(np.sum(depth(log_c) ** 2 * power))

    finite = shape[np.isfinite(shape) & (shape > 0)]
    if energy(math.log(MAX_RIPPLE / finite.min()) + 1.0) <= budget:  # every cell capped: the most it can carry
        return np.full_like(envelope, MAX_RIPPLE)
    lo, hi = math.log(MAX_RIPPLE / finite.max()) - 50.0, math.log(MAX_RIPPLE / finite.min()) + 1.0
    for _ in range(60):  # bisection on log c: energy is increasing in c
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if energy(mid) < budget else (lo, mid)
    return depth(lo)


def _smooth_power(power: np.ndarray, half: int) -> np.ndarray:
    """``(frames, bins)`` power averaged over ``2 * half + 1`` bins (edges: over what there is) and 3 frames."""
    cumulative = np.pad(np.cumsum(power, axis=1), ((0, 0), (1, 0)))
    idx = np.arange(power.shape[1])
    lo, hi = np.maximum(idx - half, 0), np.minimum(idx + half + 1, power.shape[1])
    smooth = (cumulative[:, hi] - cumulative[:, lo]) / (hi - lo)
    if smooth.shape[0] >= 3:
        edged = np.pad(smooth, ((1, 1), (0, 0)), mode="edge")
        smooth = 0.25 * edged[:-2] + 0.5 * edged[1:-1] + 0.25 * edged[2:]
    return smooth


def _stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """``(frames, n_fft // 2 + 1)`` STFT with a periodic sqrt-Hann window (frames start at 0, hop, ...)."""
    window = np.sqrt(np.hanning(n_fft + 1)[:-1])
    return np.fft.rfft(np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * window, axis=-1)


def _istft(spectrum: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Weighted overlap-add inverse of :func:`_stft` (exact where four frames overlap, ``hop = n_fft / 4``)."""
    frames = np.fft.irfft(spectrum, n_fft, axis=-1) * np.sqrt(np.hanning(n_fft + 1)[:-1])
    out = np.zeros((len(frames) - 1) * hop + n_fft)
    for index, frame in enumerate(frames):
        out[index * hop : index * hop + n_fft] += frame
    return out / (n_fft / (2 * hop))  # sum of the shifted Hann windows: 2 at 75 % overlap


# ----------------------------------------------------------------
# detection


def _frame_weights(energy: np.ndarray) -> np.ndarray:
    """Per-frame weight in [0, 1]: 0 below ``ACTIVE_DB`` under the loudest frame, else the share of the frame's
    energy above the noise floor (the ``NOISE_PERCENTILE`` of frame energies)."""
    loudest = float(energy.max(initial=0.0))
    if loudest <= 0:
        return np.zeros_like(energy)
    floor = float(np.percentile(energy, NOISE_PERCENTILE))
    active = energy >= loudest * 10 ** (-ACTIVE_DB / 10)
    share = np.clip(1 - floor / np.maximum(energy, 1e-300), 0.0, 1.0)
    return np.where(active, share, 0.0)


# ----------------------------------------------------------------
# input handling


def _check_rate(sample_rate: Any) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise AudioError(f"sample_rate must be an integer number of Hz, got {sample_rate!r}")
    if sample_rate < MIN_SAMPLE_RATE:
        raise AudioError(
            f"sample_rate {sample_rate} Hz is too low for the watermark: its band reaches {BAND_HIGH_HZ:.0f} Hz, "
            f"so at least {MIN_SAMPLE_RATE} Hz is needed"
        )


def _check_strength(strength: Any) -> None:
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 < strength <= MAX_STRENGTH:
        raise ConfigError(f"watermark strength must be a number in (0, {MAX_STRENGTH}], got {strength!r}")


def _stream_chunk(samples: Any) -> np.ndarray:
    """A pushed chunk as ``(T,)`` finite float64 (``(1, T)`` is accepted; empty chunks are fine)."""
    if hasattr(samples, "detach"):  # torch.Tensor, without importing torch
        samples = samples.detach().cpu().double().numpy()
    array = np.asarray(samples)
    if array.dtype.kind != "f":
        raise AudioError(f"StreamingWatermarker: expected float samples in [-1, 1], got dtype {array.dtype}")
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1:
        raise AudioError(f"StreamingWatermarker: expected a mono chunk of shape (T,), got {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise AudioError(f"StreamingWatermarker: chunk contains {int((~np.isfinite(array)).sum())} NaN/inf samples")
    return array.astype(np.float64)


def _float_rows(wave: Any, name: str) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """``wave`` as ``(C, T)`` finite float64 rows, and a function turning rows back into ``wave``'s type."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(wave, torch.Tensor):
        if not wave.is_floating_point():
            raise AudioError(f"{name}: expected float samples in [-1, 1], got a tensor of dtype {wave.dtype}")
        array = wave.detach().cpu().to(torch.float64).numpy()

        def restore(rows: np.ndarray) -> Any:
            return torch.from_numpy(rows.reshape(array.shape)).to(dtype=wave.dtype, device=wave.device)

    elif isinstance(wave, np.ndarray):
        if wave.dtype.kind != "f":
            raise AudioError(f"{name}: expected float samples in [-1, 1], got an array of dtype {wave.dtype}")
        array = wave.astype(np.float64)

        def restore(rows: np.ndarray) -> Any:
            return rows.reshape(array.shape).astype(wave.dtype)

    else:
        raise AudioError(f"{name}: expected a numpy array or torch tensor, got {type(wave).__name__}")
    if array.ndim not in (1, 2) or array.shape[-1] == 0:
        raise AudioError(f"{name}: expected samples of shape (T,) or (C, T) with T > 0, got {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise AudioError(f"{name}: contains {int((~np.isfinite(array)).sum())} NaN/inf sample values")
    return array.reshape(-1, array.shape[-1]), restore
