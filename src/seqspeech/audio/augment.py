"""Data augmentation: SpecAugment on features (a module, torch RNG) and waveform perturbations (numpy RNG).

Feature domain — :class:`SpecAugment` masks frequency bands and time spans of a padded batch ``(B, T, F)``,
each item only inside its own valid length, and can warp the frequency axis (cheap feature-domain VTLP). It
draws from torch's global RNG, so a trainer that saves and restores ``torch.get_rng_state()`` replays it
exactly; in eval mode it is the identity.

Waveform domain — functions on float32 mono numpy samples, each taking an explicit ``np.random.Generator``
so a dataset can seed them per item (results then do not depend on worker processes):
:func:`speed_perturb` (Kaldi-style: resample, so duration scales by ``1 / factor`` and pitch by ``factor``),
:func:`add_noise` at a signal-to-noise ratio, synthetic :func:`colored_noise` (white, pink, brown),
:func:`reverberate` with a synthetic exponentially decaying room impulse response, :func:`random_gain`.
:class:`WaveAugment` chains them per a :class:`WaveAugmentConfig`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import soxr
import torch
from torch import nn

from seqspeech.audio.constants import SAMPLE_RATE
from seqspeech.errors import ConfigError

__all__ = [
    "NOISE_EXPONENTS", "SpecAugment", "SpecAugmentConfig", "WaveAugment", "WaveAugmentConfig", "add_noise",
    "colored_noise", "random_gain", "reverberate", "room_impulse_response", "speed_perturb",
]

# Power spectral density ~ 1 / f**exponent.
NOISE_EXPONENTS: dict[str, float] = {"white": 0.0, "pink": 1.0, "brown": 2.0}
SPEED_RESAMPLE_QUALITY = "MQ"  # speed perturbation changes the signal anyway; MQ is plenty and cheap
RT60_DECAY_DB = 60.0  # RT60: time for the reverberant energy to fall by 60 dB
POWER_EPS = 1e-12  # below this mean power a signal counts as silence
PEAK_LIMIT = 1.0  # outputs are scaled down to stay within [-PEAK_LIMIT, PEAK_LIMIT]


# ----------------------------------------------------------------
# SpecAugment


@dataclass(frozen=True)
class SpecAugmentConfig:
    """SpecAugment settings (Park et al. 2019, with the adaptive time masks of Park et al. 2020).

    Attributes:
        freq_masks: frequency masks per item.
        freq_width: largest frequency-mask width in bins (each width is uniform in ``[0, freq_width]``).
        time_masks: time masks per item (the minimum when ``time_mask_rate > 0``).
        time_width_ratio: largest time-mask width as a fraction of the item's valid length ...
        max_time_width: ... capped at this many frames.
        time_mask_rate: adaptive masking: an item of ``L`` frames gets ``max(time_masks, int(rate * L))``
            masks (0 disables).
        mask_value: the value written into masked cells (0.0 is the mean of normalised features).
        warp_factor_range: ``(low, high)`` for a per-item frequency-axis warp factor (VTLP-like; e.g.
            ``(0.9, 1.1)``), or None for no warping.
    """

    freq_masks: int = 2
    freq_width: int = 27
    time_masks: int = 2
    time_width_ratio: float = 0.05
    max_time_width: int = 40
    time_mask_rate: float = 0.0
    mask_value: float = 0.0
    warp_factor_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        for name in ("freq_masks", "freq_width", "time_masks", "max_time_width"):
            if getattr(self, name) < 0:
                raise ConfigError(f"SpecAugmentConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.time_width_ratio <= 1.0:
            raise ConfigError(
                f"SpecAugmentConfig.time_width_ratio must be in [0, 1], got {self.time_width_ratio}"
            )
        if not 0.0 <= self.time_mask_rate <= 1.0:
            raise ConfigError(
                f"SpecAugmentConfig.time_mask_rate must be in [0, 1], got {self.time_mask_rate}"
            )
        if self.warp_factor_range is not None:
            low, high = _pair(self.warp_factor_range, "SpecAugmentConfig.warp_factor_range")
            if not 0.0 < low <= high:
                raise ConfigError(
                    f"SpecAugmentConfig.warp_factor_range must satisfy 0 < low <= high, got {(low, high)}"
                )
            object.__setattr__(self, "warp_factor_range", (low, high))


class SpecAugment(nn.Module):
    """Frequency and time masking (and optional frequency warping) of a padded feature batch.

    Args: see :class:`SpecAugmentConfig` (``SpecAugment(**asdict(config))`` or :meth:`from_config`).
    """

    def __init__(
        self,
        freq_masks: int = 2,
        freq_width: int = 27,
        time_masks: int = 2,
        time_width_ratio: float = 0.05,
        max_time_width: int = 40,
        time_mask_rate: float = 0.0,
        mask_value: float = 0.0,
        warp_factor_range: tuple[float, float] | None = None,
    ) -> None:
        super().__init__()
        config = SpecAugmentConfig(  # validates
            freq_masks, freq_width, time_masks, time_width_ratio, max_time_width, time_mask_rate, mask_value,
            warp_factor_range,
        )
        self.config = config

    @classmethod
    def from_config(cls, config: SpecAugmentConfig) -> SpecAugment:
        return cls(
            config.freq_masks, config.freq_width, config.time_masks, config.time_width_ratio,
            config.max_time_width, config.time_mask_rate, config.mask_value, config.warp_factor_range,
        )

    def extra_repr(self) -> str:
        return repr(self.config)

    def forward(self, x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """``(B, T, F)`` features and ``(B,)`` valid frame counts -> ``(B, T, F)`` augmented (a new tensor).

        Identity (the input itself) in eval mode. Padding frames (``t >= lens[b]``) are never modified.
        """
        if not self.training or x.numel() == 0:
            return x
        if x.dim() != 3:
            raise ValueError(f"SpecAugment expects (B, T, F) features, got shape {tuple(x.shape)}")
        cfg = self.config
        batch, frames, bins = x.shape
        # Random numbers come from the CPU generator (one state to save), then move to x's device.
        lens_cpu = lens.detach().to("cpu", torch.long).clamp(0, frames)
        if cfg.warp_factor_range is not None:
            x = _warp_frequency(x, cfg.warp_factor_range)
        keep = torch.ones(batch, frames, bins, dtype=torch.bool, device=x.device)
        if cfg.freq_masks > 0 and cfg.freq_width > 0:
            width = torch.randint(0, min(cfg.freq_width, bins) + 1, (batch, cfg.freq_masks))
            start = (torch.rand(batch, cfg.freq_masks) * (bins - width + 1)).long()
            masked = _span_mask(start, width, bins).to(x.device)  # (B, F)
            valid = torch.arange(frames, device=x.device)[None, :] < lens_cpu.to(x.device)[:, None]  # (B, T)
            keep &= ~(masked[:, None, :] & valid[:, :, None])
        num_time = cfg.time_masks
        if cfg.time_mask_rate > 0:
            num_time = max(num_time, int(cfg.time_mask_rate * int(lens_cpu.max())))
        if num_time > 0 and cfg.max_time_width > 0 and cfg.time_width_ratio > 0:
            per_item = torch.full((batch,), cfg.time_masks, dtype=torch.long)
            if cfg.time_mask_rate > 0:
                per_item = torch.clamp((cfg.time_mask_rate * lens_cpu).long(), min=cfg.time_masks)
            max_width = torch.clamp((cfg.time_width_ratio * lens_cpu).long(), max=cfg.max_time_width)
            width = (torch.rand(batch, num_time) * (max_width[:, None] + 1).float()).long()
            room = (lens_cpu[:, None] - width + 1).clamp(min=1).float()
            start = (torch.rand(batch, num_time) * room).long()
            width = width * (torch.arange(num_time)[None, :] < per_item[:, None])  # unused slots mask nothing
            masked = _span_mask(start, width, frames).to(x.device)  # (B, T), always inside [0, len)
            keep &= ~masked[:, :, None]
        return torch.where(keep, x, torch.as_tensor(cfg.mask_value, dtype=x.dtype, device=x.device))


def _span_mask(start: torch.Tensor, width: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, M)`` starts and widths -> ``(B, size)`` bool, True inside any ``[start, start + width)``."""
    position = torch.arange(size)[None, None, :]
    inside = (position >= start[..., None]) & (position < (start + width)[..., None])
    return inside.any(dim=1)


def _warp_frequency(x: torch.Tensor, factor_range: tuple[float, float]) -> torch.Tensor:
    """Resample each item's frequency axis at ``bin * factor`` (linear interpolation, clamped at the top)."""
    batch, _, bins = x.shape
    low, high = factor_range
    factor = (low + (high - low) * torch.rand(batch)).to(x.device, x.dtype)
    position = torch.arange(bins, device=x.device, dtype=x.dtype)[None, :] * factor[:, None]
    position = position.clamp(max=bins - 1)
    lower = position.floor().long().clamp(max=bins - 1)  # (B, F)
    upper = (lower + 1).clamp(max=bins - 1)
    frac = (position - lower.to(x.dtype))[:, None, :]
    gather = lambda index: torch.gather(x, 2, index[:, None, :].expand(-1, x.shape[1], -1))  # noqa: E731
    return gather(lower) * (1 - frac) + gather(upper) * frac


# ----------------------------------------------------------------
# waveform perturbations


def _pair(value: object, name: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a (low, high) pair of numbers, got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ConfigError(f"{name} must be finite with low <= high, got {value!r}")
    return low, high


def _mono(wave: np.ndarray, what: str = "wave") -> np.ndarray:
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise ValueError(f"{what} must be (T,) mono samples, got shape {wave.shape}")
    return wave.astype(np.float32, copy=False)


def speed_perturb(wave: np.ndarray, factor: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Kaldi/sox ``speed`` perturbation: play ``(T,)`` samples ``factor`` times faster.

    The length becomes about ``T / factor`` and every frequency is scaled by ``factor`` (tempo and pitch
    change together), done by resampling with soxr.
    """
    wave = _mono(wave)
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"speed factor must be a positive finite number, got {factor!r}")
    if factor == 1.0 or wave.size == 0:
        return wave.copy()
    out = soxr.resample(wave, sr * factor, sr, quality=SPEED_RESAMPLE_QUALITY)
    return np.ascontiguousarray(out, dtype=np.float32)


def colored_noise(kind: str, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """``(num_samples,)`` float32 noise of unit RMS, power spectrum ``~ 1 / f**e`` (white 0, pink 1, brown 2).

    Shaped in the frequency domain: white Gaussian noise, its rFFT scaled by ``f**(-e/2)`` (DC removed).
    """
    if kind not in NOISE_EXPONENTS:
        raise ValueError(f"unknown noise kind {kind!r}; expected one of {sorted(NOISE_EXPONENTS)}")
    if num_samples <= 0:
        return np.zeros(0, np.float32)
    white = rng.standard_normal(num_samples)
    exponent = NOISE_EXPONENTS[kind]
    if exponent == 0.0:
        noise = white
    else:
        spectrum = np.fft.rfft(white)
        freqs = np.arange(spectrum.size, dtype=np.float64)
        freqs[0] = 1.0
        shaping = freqs ** (-exponent / 2.0)
        shaping[0] = 0.0
        noise = np.fft.irfft(spectrum * shaping, n=num_samples)
    rms = float(np.sqrt(np.mean(noise**2)))
    return (noise / rms if rms > 0 else noise).astype(np.float32)


def add_noise(wave: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Mix ``noise`` into ``(T,)`` ``wave`` at ``snr_db`` (signal power / noise power, in dB).

    The noise is tiled or cut to ``T`` samples. A silent wave (or silent noise) is returned unchanged, since
    no SNR is defined. The result is not clipped (see :class:`WaveAugment`).
    """
    wave, noise = _mono(wave), _mono(noise, "noise")
    if wave.size == 0 or noise.size == 0:
        return wave.copy()
    if noise.size < wave.size:
        noise = np.tile(noise, -(-wave.size // noise.size))
    noise = noise[: wave.size]
    signal_power = float(np.mean(wave.astype(np.float64) ** 2))
    noise_power = float(np.mean(noise.astype(np.float64) ** 2))
    if signal_power < POWER_EPS or noise_power < POWER_EPS:
        return wave.copy()
    scale = math.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (wave + scale * noise).astype(np.float32)


def room_impulse_response(rt60: float, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A synthetic RIR of ``rt60`` seconds: a unit direct path then Gaussian noise whose energy decays by
    60 dB over ``rt60``; scaled to unit energy.

    Returns:
        ``(round(rt60 * sr),)`` float32 (at least 1 sample).
    """
    if not (math.isfinite(rt60) and rt60 > 0):
        raise ValueError(f"rt60 must be a positive number of seconds, got {rt60!r}")
    length = max(1, round(rt60 * sr))
    t = np.arange(length) / sr
    # amplitude envelope: energy falls by RT60_DECAY_DB dB at t = rt60
    envelope = np.exp(-math.log(10.0) * RT60_DECAY_DB / 20.0 * t / rt60)
    rir = rng.standard_normal(length) * envelope
    rir[0] = 1.0
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float32)


def reverberate(
    wave: np.ndarray,
    rng: np.random.Generator,
    rt60_range: tuple[float, float] = (0.1, 0.6),
    sr: int = SAMPLE_RATE,
) -> np.ndarray:
    """Convolve ``(T,)`` samples with a synthetic RIR of random RT60 in ``rt60_range``; length stays ``T``.

    The reverberant signal is rescaled to the input's RMS, so loudness stays comparable.
    """
    wave = _mono(wave)
    low, high = _pair(rt60_range, "rt60_range")
    if wave.size == 0:
        return wave.copy()
    rir = room_impulse_response(float(rng.uniform(low, high)), rng, sr)
    size = 1 << (wave.size + rir.size - 2).bit_length()
    wet = np.fft.irfft(np.fft.rfft(wave, size) * np.fft.rfft(rir, size), size)[: wave.size]
    dry_rms = float(np.sqrt(np.mean(wave.astype(np.float64) ** 2)))
    wet_rms = float(np.sqrt(np.mean(wet**2)))
    if wet_rms > 0 and dry_rms > 0:
        wet *= dry_rms / wet_rms
    return wet.astype(np.float32)


def random_gain(
    wave: np.ndarray, rng: np.random.Generator, db_range: tuple[float, float] = (-6.0, 6.0)
) -> np.ndarray:
    """``(T,)`` samples times a gain drawn uniformly in ``db_range`` dB (no clipping applied here)."""
    low, high = _pair(db_range, "db_range")
    return (_mono(wave) * np.float32(10.0 ** (rng.uniform(low, high) / 20.0))).astype(np.float32)


@dataclass(frozen=True)
class WaveAugmentConfig:
    """Waveform augmentation, applied in order: speed, reverb, noise, gain, then a peak limit.

    Attributes:
        speeds: speed factors drawn uniformly (include 1.0 to keep some items unchanged); ``()`` disables.
        noise_prob: probability of adding synthetic noise of a random colour from ``noise_kinds``.
        snr_db: ``(low, high)`` SNR range in dB for that noise.
        reverb_prob: probability of reverberation.
        rt60: ``(low, high)`` RT60 range in seconds.
        gain_db: ``(low, high)`` gain range in dB; ``(0.0, 0.0)`` disables.
        noise_kinds: colours to choose from (keys of ``NOISE_EXPONENTS``).
        sample_rate: rate of the samples, Hz.
    """

    speeds: tuple[float, ...] = (0.9, 1.0, 1.1)
    noise_prob: float = 0.3
    snr_db: tuple[float, float] = (10.0, 30.0)
    reverb_prob: float = 0.2
    rt60: tuple[float, float] = (0.1, 0.6)
    gain_db: tuple[float, float] = (-6.0, 6.0)
    noise_kinds: tuple[str, ...] = ("white", "pink", "brown")
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        speeds = tuple(float(s) for s in self.speeds)
        if any(not (math.isfinite(s) and s > 0) for s in speeds):
            raise ConfigError(f"WaveAugmentConfig.speeds must be positive numbers, got {self.speeds!r}")
        object.__setattr__(self, "speeds", speeds)
        for name in ("noise_prob", "reverb_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"WaveAugmentConfig.{name} must be in [0, 1], got {getattr(self, name)!r}")
        for name in ("snr_db", "rt60", "gain_db"):
            object.__setattr__(self, name, _pair(getattr(self, name), f"WaveAugmentConfig.{name}"))
        if self.rt60[0] <= 0:
            raise ConfigError(f"WaveAugmentConfig.rt60 must be positive seconds, got {self.rt60!r}")
        unknown = [k for k in self.noise_kinds if k not in NOISE_EXPONENTS]
        if unknown or (self.noise_prob > 0 and not self.noise_kinds):
            raise ConfigError(
                f"WaveAugmentConfig.noise_kinds must be non-empty and from {sorted(NOISE_EXPONENTS)}, "
                f"got {self.noise_kinds!r}"
            )
        object.__setattr__(self, "noise_kinds", tuple(self.noise_kinds))
        if self.sample_rate <= 0:
            raise ConfigError(f"WaveAugmentConfig.sample_rate must be positive, got {self.sample_rate!r}")


class WaveAugment:
    """Callable ``(wave (T,), rng) -> (T',)`` float32 applying a :class:`WaveAugmentConfig`.

    All randomness comes from ``rng``, so equal seeds give equal outputs. The output is finite and within
    [-1, 1] (scaled down when the mix would clip).
    """

    def __init__(self, config: WaveAugmentConfig | None = None) -> None:
        self.config = config if config is not None else WaveAugmentConfig()

    def __repr__(self) -> str:
        return f"WaveAugment({self.config!r})"

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cfg = self.config
        wave = _mono(wave)
        if cfg.speeds:
            factor = cfg.speeds[int(rng.integers(len(cfg.speeds)))]
            if factor != 1.0:
                wave = speed_perturb(wave, factor, cfg.sample_rate)
        if cfg.reverb_prob > 0 and rng.random() < cfg.reverb_prob:
            wave = reverberate(wave, rng, cfg.rt60, cfg.sample_rate)
        if cfg.noise_prob > 0 and rng.random() < cfg.noise_prob:
            kind = cfg.noise_kinds[int(rng.integers(len(cfg.noise_kinds)))]
            wave = add_noise(wave, colored_noise(kind, wave.size, rng), float(rng.uniform(*cfg.snr_db)))
        if cfg.gain_db != (0.0, 0.0):
            wave = random_gain(wave, rng, cfg.gain_db)
        return _limit(wave)


def _limit(wave: np.ndarray) -> np.ndarray:
    """Finite float32 samples within [-1, 1]: NaN/inf become 0, a peak above 1 scales the signal down."""
    wave = np.nan_to_num(wave.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    if peak > PEAK_LIMIT:
        wave = wave * np.float32(PEAK_LIMIT / peak)
        np.clip(wave, -PEAK_LIMIT, PEAK_LIMIT, out=wave)  # rounding can leave 1 + eps
    return wave
