"""Spectral features: Whisper's log-mel spectrogram and Kaldi-compatible filter banks, as nn.Modules too.

``log_mel_spectrogram`` (function) and ``WhisperLogMel`` (module) share one implementation,
``_whisper_log_mel``; they differ only in where the window and filter bank live (a per-device cache vs.
module buffers). The mel filter bank is computed here (librosa's Slaney scale and area normalisation), so no
asset file or librosa is needed.
"""

from __future__ import annotations

import math
import os
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seqspeech.audio.constants import HOP_LENGTH, N_FFT, N_SAMPLES, SAMPLE_RATE
from seqspeech.audio.io import load_audio
from seqspeech.errors import AudioError

__all__ = [
    "STFT_CONTEXT", "Fbank", "WhisperLogMel", "kaldi_mel_banks", "log_mel_spectrogram", "mel_filters",
    "normalize_log_mel", "pad_or_trim",
]

# Whisper log-mel recipe
LOG_MEL_FLOOR = 1e-10  # power floor before log10
LOG_MEL_DYNAMIC_RANGE = 8.0  # log10 units kept below each example's maximum (80 dB)
LOG_MEL_OFFSET = 4.0  # (log10 + 4) / 4 maps the usual range to about [-1, 1]
LOG_MEL_SCALE = 4.0
STFT_CONTEXT = N_FFT // 2  # samples on each side of a frame's centre that a centred STFT frame reads
SILENCE_LOG10 = math.log10(LOG_MEL_FLOOR)  # log10 mel of digital silence: the lowest possible peak

# Slaney mel scale (librosa htk=False): linear below 1 kHz, logarithmic above.
SLANEY_HZ_PER_MEL = 200.0 / 3.0
SLANEY_LOG_START_HZ = 1000.0
SLANEY_LOG_STEP = math.log(6.4) / 27.0

# Kaldi fbank defaults (feat/feature-fbank.h, feature-window.h, mel-computations.h)
KALDI_FRAME_LENGTH_MS = 25.0
KALDI_FRAME_SHIFT_MS = 10.0
KALDI_PREEMPHASIS = 0.97
KALDI_POVEY_POWER = 0.85  # povey window = hann ** 0.85 (with the N-1 denominator)
KALDI_LOW_FREQ = 20.0
KALDI_HIGH_FREQ = 0.0  # <= 0 means nyquist + high_freq
KALDI_NUM_MEL_BINS = 80
KALDI_MEL_BREAK_HZ = 700.0
KALDI_MEL_FACTOR = 1127.0
KALDI_ENERGY_EPS = float(np.finfo(np.float32).eps)  # Kaldi floors mel energies at FLT_EPSILON before the log

MS_PER_SECOND = 1000.0


# ----------------------------------------------------------------
# shared helpers


def pad_or_trim(
    array: np.ndarray | torch.Tensor, length: int = N_SAMPLES, *, axis: int = -1
) -> np.ndarray | torch.Tensor:
    """Zero-pad or cut ``array`` (numpy or torch) along ``axis`` to exactly ``length`` samples."""
    size = array.shape[axis]
    if torch.is_tensor(array):
        if size > length:
            return array.narrow(axis, 0, length)
        if size < length:
            pads = [0, 0] * array.ndim
            pads[2 * (array.ndim - 1 - (axis % array.ndim)) + 1] = length - size
            return F.pad(array, pads)
        return array
    if size > length:
        return array.take(indices=range(length), axis=axis)
    if size < length:
        widths = [(0, 0)] * array.ndim
        widths[axis] = (0, length - size)
        return np.pad(array, widths)
    return array


def _as_waveform(
    audio: np.ndarray | torch.Tensor | str | os.PathLike, device: torch.device | str | None
) -> torch.Tensor:
    """``(T,)`` or ``(B, T)`` float32 tensor on ``device``; paths are decoded with ``load_audio``."""
    if isinstance(audio, (str, os.PathLike)):
        audio = load_audio(audio)
    if not torch.is_tensor(audio):
        audio = torch.from_numpy(np.ascontiguousarray(audio))
    if audio.dim() not in (1, 2):
        raise AudioError(f"audio must have shape (T,) or (B, T), got {tuple(audio.shape)}")
    if not audio.is_floating_point():
        raise AudioError(f"audio must be floating point samples, got dtype {audio.dtype}")
    return audio.to(device=device if device is not None else audio.device, dtype=torch.float32)


# ----------------------------------------------------------------
# Whisper log-mel


def _hz_to_slaney_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / SLANEY_HZ_PER_MEL
    log_start_mel = SLANEY_LOG_START_HZ / SLANEY_HZ_PER_MEL
    logarithmic = (
        log_start_mel + np.log(np.maximum(hz, SLANEY_LOG_START_HZ) / SLANEY_LOG_START_HZ) / SLANEY_LOG_STEP
    )
    return np.where(hz >= SLANEY_LOG_START_HZ, logarithmic, linear)


def _slaney_mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    log_start_mel = SLANEY_LOG_START_HZ / SLANEY_HZ_PER_MEL
    linear = mel * SLANEY_HZ_PER_MEL
    logarithmic = SLANEY_LOG_START_HZ * np.exp(
        SLANEY_LOG_STEP * (np.maximum(mel, log_start_mel) - log_start_mel)
    )
    return np.where(mel >= log_start_mel, logarithmic, linear)


def _slaney_mel_matrix(n_mels: int, sr: int, n_fft: int, f_min: float = 0.0, f_max: float | None = None) -> np.ndarray:
    """``(n_mels, n_fft // 2 + 1)`` float64 Slaney-scale triangles over ``[f_min, f_max]`` (default: 0 to Nyquist),
    area-normalised (librosa defaults)."""
    fft_hz = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    top = sr / 2 if f_max is None else f_max
    edges_hz = _slaney_mel_to_hz(np.linspace(_hz_to_slaney_mel(f_min), _hz_to_slaney_mel(top), n_mels + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights * (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]


@cache
def _cached_mel_filters(n_mels: int, sr: int, n_fft: int, device: str) -> torch.Tensor:
    matrix = _slaney_mel_matrix(n_mels, sr, n_fft).astype(np.float32)
    return torch.from_numpy(matrix).to(device)


def mel_filters(
    n_mels: int, sr: int = SAMPLE_RATE, n_fft: int = N_FFT, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Slaney-scale, area-normalised mel filter bank ``(n_mels, n_fft // 2 + 1)`` float32.

    Equal to ``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)`` and hence to Whisper's shipped
    ``mel_filters.npz``. Cached per ``(n_mels, sr, n_fft, device)``; treat the result as read-only.
    """
    if n_mels <= 0 or sr <= 0 or n_fft <= 0:
        raise ValueError(f"n_mels, sr and n_fft must be positive, got {n_mels}, {sr}, {n_fft}")
    return _cached_mel_filters(int(n_mels), int(sr), int(n_fft), str(torch.device(device)))


@cache
def _cached_hann_window(n_fft: int, device: str) -> torch.Tensor:
    return torch.hann_window(n_fft, device=device)


def _log10_mel(audio: torch.Tensor, window: torch.Tensor, filters: torch.Tensor, center: bool) -> torch.Tensor:
    """log10 of the mel power, floored at 1e-10: ``(..., T)`` -> ``(..., n_mels, frames)``.

    center=True: Whisper's framing (reflect-padded edges, last frame dropped), ``frames = T // HOP_LENGTH``.
    center=False: the caller supplies ``STFT_CONTEXT`` samples of context on each side,
    ``frames = (T - 2 * STFT_CONTEXT) // HOP_LENGTH``.
    """
    stft = torch.stft(audio, N_FFT, HOP_LENGTH, window=window, center=center, return_complex=True)
    power = stft[..., :-1].abs() ** 2
    return torch.clamp(filters @ power, min=LOG_MEL_FLOOR).log10()


def normalize_log_mel(log_spec: torch.Tensor, peak: torch.Tensor | float | None = None) -> torch.Tensor:
    """Whisper's dynamic-range floor (``peak - 8``) and scaling. peak: per example ``(B, 1, 1)``, a number, or
    None for the maximum of each example's own ``log_spec``."""
    if peak is None:
        peak = log_spec.amax(dim=(-2, -1), keepdim=True)
    floor = torch.as_tensor(peak, dtype=log_spec.dtype, device=log_spec.device) - LOG_MEL_DYNAMIC_RANGE
    return (torch.maximum(log_spec, floor) + LOG_MEL_OFFSET) / LOG_MEL_SCALE


def _whisper_log_mel(
    audio: torch.Tensor, window: torch.Tensor, filters: torch.Tensor, padding: int
) -> torch.Tensor:
    """Whisper's log-mel recipe on ``(T,)`` or ``(B, T)`` -> ``(n_mels, frames)`` or ``(B, n_mels, frames)``.

    ``frames = (T + padding) // HOP_LENGTH``. The dynamic-range floor is taken per example.
    """
    if padding > 0:
        audio = F.pad(audio, (0, padding))
    if audio.shape[-1] <= N_FFT // 2:
        raise AudioError(
            f"audio too short for a log-mel spectrogram: {audio.shape[-1]} samples, need > {N_FFT // 2}"
        )
    return normalize_log_mel(_log10_mel(audio, window, filters, center=True))


def log_mel_spectrogram(
    audio: np.ndarray | torch.Tensor | str | os.PathLike,
    n_mels: int = 80,
    padding: int = 0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Whisper's log-mel spectrogram of 16 kHz audio.

    Args:
        audio: ``(T,)`` or ``(B, T)`` samples (numpy or torch), or a path decoded with ``load_audio``.
        n_mels: number of mel bins (80 for Whisper v1/v2, 128 for v3).
        padding: zeros appended on the right before the STFT.
        device: where to compute (default: the tensor's own device).

    Returns:
        ``(n_mels, frames)`` or ``(B, n_mels, frames)`` float32 with ``frames = (T + padding) // HOP_LENGTH``.
    """
    audio = _as_waveform(audio, device)
    key = str(audio.device)
    return _whisper_log_mel(
        audio, _cached_hann_window(N_FFT, key), mel_filters(n_mels, SAMPLE_RATE, N_FFT, key), padding
    )


class WhisperLogMel(nn.Module):
    """Whisper's log-mel front end as a module: ``(B, T)`` 16 kHz samples -> ``(B, n_mels, T // HOP_LENGTH)``.

    The Hann window and mel filters are non-persistent buffers, so they follow ``.to(device)`` but stay out of
    checkpoints.
    """

    def __init__(self, n_mels: int = 80) -> None:
        super().__init__()
        self.n_mels = n_mels
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.register_buffer("filters", mel_filters(n_mels).clone(), persistent=False)

    def forward(self, audio: torch.Tensor, padding: int = 0) -> torch.Tensor:
        """``(B, T)`` (or ``(T,)``) samples -> ``(B, n_mels, frames)`` (or ``(n_mels, frames)``)."""
        return _whisper_log_mel(audio.to(self.window.dtype), self.window, self.filters, padding)

    def log10_frames(self, audio_with_context: torch.Tensor) -> torch.Tensor:
        """Un-normalised log10 mel of a slice of a longer signal: ``(B, T + 2 * STFT_CONTEXT)`` samples, the
        slice with ``STFT_CONTEXT`` samples of its surroundings on each side -> ``(B, n_mels, T // HOP_LENGTH)``,
        exactly the frames Whisper's whole-signal STFT has there. Normalise with `normalize_log_mel` and the
        whole signal's peak."""
        return _log10_mel(audio_with_context.to(self.window.dtype), self.window, self.filters, center=False)


# ----------------------------------------------------------------
# Kaldi fbank


def _kaldi_mel(hz: np.ndarray) -> np.ndarray:
    return KALDI_MEL_FACTOR * np.log1p(np.asarray(hz, dtype=np.float64) / KALDI_MEL_BREAK_HZ)


def kaldi_mel_banks(
    num_bins: int, sample_rate: float, padded_window: int, low_freq: float, high_freq: float
) -> np.ndarray:
    """Kaldi's ``MelBanks`` weights ``(num_bins, padded_window // 2 + 1)``; no VTLN, Nyquist column zero.

    Triangles are equally spaced on Kaldi's mel scale ``1127 ln(1 + f / 700)`` between ``low_freq`` and
    ``high_freq`` (``<= 0`` means relative to Nyquist), with peak 1 and no area normalisation.
    """
    nyquist = 0.5 * sample_rate
    high = high_freq if high_freq > 0 else nyquist + high_freq
    if not 0.0 <= low_freq < high <= nyquist:
        raise ValueError(f"need 0 <= low_freq < high_freq <= nyquist, got low={low_freq}, high={high}")
    num_fft_bins = padded_window // 2
    mel_low, mel_high = _kaldi_mel(low_freq), _kaldi_mel(high)
    delta = (mel_high - mel_low) / (num_bins + 1)
    left = mel_low + delta * np.arange(num_bins)[:, None]
    center, right = left + delta, left + 2 * delta
    mel = _kaldi_mel(sample_rate / padded_window * np.arange(num_fft_bins))[None, :]
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    weights = np.where((mel > left) & (mel < right), np.where(mel <= center, up, down), 0.0)
    return np.pad(weights, ((0, 0), (0, 1)))  # Kaldi never uses the Nyquist bin


def _povey_window(length: int) -> torch.Tensor:
    n = torch.arange(length, dtype=torch.float64)
    return (0.5 - 0.5 * torch.cos(2 * math.pi * n / (length - 1))).pow(KALDI_POVEY_POWER).float()


class Fbank(nn.Module):
    """Kaldi-compatible log mel filter bank (``compute-fbank-feats`` defaults, ``snip_edges=true``).

    Per frame: optional dither, DC removal, pre-emphasis, povey window, zero-pad to a power of two, power
    spectrum, Kaldi mel banks, ``log(max(energy, FLT_EPSILON))``. Kaldi's own tools expect samples in int16
    scale; pass ``waveform * 32768`` to reproduce features computed from 16-bit files.

    Args:
        sample_rate: input rate in Hz.
        num_mel_bins: mel bands.
        frame_length_ms / frame_shift_ms: analysis window and hop.
        low_freq / high_freq: mel range in Hz; ``high_freq <= 0`` is relative to Nyquist.
        preemphasis: pre-emphasis coefficient.
        dither: Gaussian dither amplitude, added only in training mode (0 disables).
        remove_dc_offset: subtract each frame's mean.
    """

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        num_mel_bins: int = KALDI_NUM_MEL_BINS,
        frame_length_ms: float = KALDI_FRAME_LENGTH_MS,
        frame_shift_ms: float = KALDI_FRAME_SHIFT_MS,
        low_freq: float = KALDI_LOW_FREQ,
        high_freq: float = KALDI_HIGH_FREQ,
        preemphasis: float = KALDI_PREEMPHASIS,
        dither: float = 0.0,
        remove_dc_offset: bool = True,
    ) -> None:
        super().__init__()
        self.frame_length = int(sample_rate * frame_length_ms / MS_PER_SECOND)
        self.frame_shift = int(sample_rate * frame_shift_ms / MS_PER_SECOND)
        self.padded_length = 1 << (self.frame_length - 1).bit_length()
        self.preemphasis = preemphasis
        self.dither = dither
        self.remove_dc_offset = remove_dc_offset
        banks = kaldi_mel_banks(num_mel_bins, sample_rate, self.padded_length, low_freq, high_freq)
        self.register_buffer("window", _povey_window(self.frame_length), persistent=False)
        self.register_buffer("mel_banks", torch.from_numpy(banks.T.astype(np.float32)), persistent=False)

    def num_frames(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames made from ``lengths`` samples with ``snip_edges=true`` (0 when shorter than a frame)."""
        return torch.where(
            lengths >= self.frame_length,
            torch.div(lengths - self.frame_length, self.frame_shift, rounding_mode="floor") + 1,
            torch.zeros_like(lengths),
        )

    def forward(
        self, waveform: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T)`` or ``(T,)`` samples, optional ``(B,)`` lengths -> ``(B, frames, n_mels)``, ``(B,)``.

        A ``(T,)`` input is treated as a batch of one. Frames past an example's valid length are computed from
        padding and should be masked with the returned frame lengths.
        """
        if waveform.dim() == 1:
            waveform = waveform.unsqueeze(0)
        if waveform.dim() != 2:
            raise AudioError(f"Fbank expects (B, T) or (T,) audio, got shape {tuple(waveform.shape)}")
        batch, total = waveform.shape
        if lengths is None:
            lengths = torch.full((batch,), total, dtype=torch.long, device=waveform.device)
        frame_lengths = self.num_frames(lengths.to(device=waveform.device, dtype=torch.long))
        if total < self.frame_length:
            empty = waveform.new_zeros(batch, 0, self.mel_banks.shape[1])
            return empty, frame_lengths

        frames = waveform.to(self.window.dtype).unfold(-1, self.frame_length, self.frame_shift)  # (B, F, L)
        if self.training and self.dither > 0:
            frames = frames + self.dither * torch.randn_like(frames)
        if self.remove_dc_offset:
            frames = frames - frames.mean(dim=-1, keepdim=True)
        if self.preemphasis:
            previous = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
            frames = frames - self.preemphasis * previous
        frames = frames * self.window
        spectrum = torch.fft.rfft(frames, n=self.padded_length)  # (B, F, padded // 2 + 1)
        power = spectrum.real.square() + spectrum.imag.square()
        features = torch.clamp(power @ self.mel_banks, min=KALDI_ENERGY_EPS).log()
        return features, frame_lengths
