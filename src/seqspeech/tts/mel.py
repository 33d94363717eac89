"""The one mel-spectrogram definition every TTS part shares (acoustic models predict it, vocoders invert it).

HiFi-GAN's convention at 16 kHz: |STFT| magnitude (not power) of a Hann-windowed 1024-point frame every 256 samples
(16 ms), 80 Slaney mel bands over 0-8 kHz, natural log floored at 1e-5. ``frames = samples // hop_length``: the
signal is reflect-padded by ``(n_fft - hop_length) / 2`` on each side and not centred, so frame ``t`` covers samples
``[t * hop, t * hop + n_fft)`` of the padded signal and a vocoder that upsamples by ``hop_length`` gives back exactly
``frames * hop_length`` samples.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn

from ..audio.features import _slaney_mel_matrix, mel_filters

TTS_SAMPLE_RATE = 16_000  # flite slt speaks at 16 kHz; the default voice is trained at its native rate
# 64 ms windows. Measured on 60 held-out slt sentences (Whisper tiny.en ASR-WER, recordings 14.5 %): Griffin-Lim
# rebuilds the recordings' mels far better with 32 ms windows (15.3 % vs 20.3 %), but the whole recipe retrained at
# 32 ms (aligner, FastSpeech 2, HiFi-GAN, same minutes) was worse end to end: FastSpeech 2 + Griffin-Lim 25.6 % vs
# 22.5 %, + HiFi-GAN 34.6 % vs 29.4 %. The smoother 64 ms mel is easier to predict; the vocoder recovers the timing
# inside a window from its multi-resolution mel loss (HiFiGANConfig.mel_loss_windows).
TTS_N_FFT = 1024
TTS_HOP_LENGTH = 256  # 16 ms; HiFi-GAN upsampling factors multiply to this
TTS_WIN_LENGTH = 1024
TTS_N_MELS = 80
TTS_LOG_FLOOR = 1e-5
TTS_LOG_SILENCE = math.log(TTS_LOG_FLOOR)  # the value of a silent mel bin (-11.51)


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int = TTS_SAMPLE_RATE
    n_fft: int = TTS_N_FFT
    hop_length: int = TTS_HOP_LENGTH
    win_length: int = TTS_WIN_LENGTH
    n_mels: int = TTS_N_MELS
    f_min: float = 0.0
    f_max: float | None = None  # None: Nyquist

    def __post_init__(self) -> None:
        if min(self.sample_rate, self.n_fft, self.hop_length, self.win_length, self.n_mels) <= 0:
            raise ValueError(f"mel settings must be positive: {self}")
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length {self.win_length} exceeds n_fft {self.n_fft}")
        if self.n_fft < self.hop_length:
            raise ValueError(f"n_fft {self.n_fft} is shorter than hop_length {self.hop_length}")

    @property
    def frame_seconds(self) -> float:
        return self.hop_length / self.sample_rate

    def num_frames(self, num_samples: int) -> int:
        return num_samples // self.hop_length

    def to_dict(self) -> dict:
        return asdict(self)


@cache
def _band_matrix(n_mels: int, sr: int, n_fft: int, f_min: float, f_max: float | None, device: str) -> torch.Tensor:
    if f_min == 0.0 and f_max is None:
        return mel_filters(n_mels, sr=sr, n_fft=n_fft, device=device)
    weights = _slaney_mel_matrix(n_mels, sr, n_fft, f_min, f_max)
    return torch.from_numpy(weights.astype("float32")).to(device)


class MelSpectrogram(nn.Module):
    """``(B, T)`` or ``(T,)`` float waveform -> ``(B, n_mels, T // hop)`` or ``(n_mels, T // hop)`` log-mel."""

    def __init__(self, config: MelConfig | None = None) -> None:
        super().__init__()
        self.config = config or MelConfig()
        c = self.config
        self.register_buffer("window", torch.hann_window(c.win_length), persistent=False)
        self.register_buffer(
            "filters", _band_matrix(c.n_mels, c.sample_rate, c.n_fft, c.f_min, c.f_max, "cpu").clone(),
            persistent=False,
        )

    def magnitude(self, wave: torch.Tensor) -> torch.Tensor:
        """``(..., T)`` -> linear STFT magnitude ``(..., n_fft // 2 + 1, T // hop)``."""
        c = self.config
        squeeze = wave.dim() == 1
        x = wave.unsqueeze(0) if squeeze else wave
        pad = (c.n_fft - c.hop_length) // 2
        x = F.pad(x.float().unsqueeze(1), (pad, c.n_fft - c.hop_length - pad), mode="reflect").squeeze(1)
        spec = torch.stft(x, c.n_fft, c.hop_length, c.win_length, window=self.window, center=False,
                          return_complex=True).abs()
        frames = wave.shape[-1] // c.hop_length
        spec = spec[..., :frames]
        return spec.squeeze(0) if squeeze else spec

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.shape[-1] < self.config.n_fft // 2:
            raise ValueError(f"waveform of {wave.shape[-1]} samples is shorter than half a frame "
                             f"({self.config.n_fft // 2})")
        return torch.clamp(self.filters @ self.magnitude(wave), min=TTS_LOG_FLOOR).log()
