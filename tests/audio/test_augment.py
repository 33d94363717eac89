"""seqspeech.audio.augment: SpecAugment and waveform perturbations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seqspeech.audio.augment import (
    SpecAugment,
    SpecAugmentConfig,
    WaveAugment,
    WaveAugmentConfig,
    add_noise,
    colored_noise,
    random_gain,
    reverberate,
    room_impulse_response,
    speed_perturb,
)
from seqspeech.errors import ConfigError

SR = 16000


def _tone(seconds: float = 1.0, hz: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _dominant_hz(wave: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(wave))
    return float(np.argmax(spectrum) * SR / wave.size)


# ---------------------------------------------------------------- waveform


@pytest.mark.parametrize("factor", [0.9, 1.1, 1.25])
def test_speed_perturb_scales_length_and_pitch(factor):
    wave = _tone(1.0, 500.0)
    out = speed_perturb(wave, factor, SR)
    assert out.dtype == np.float32
    assert abs(out.size - wave.size / factor) <= 2
    assert _dominant_hz(out) == pytest.approx(500.0 * factor, rel=0.01)


def test_speed_perturb_identity_and_errors():
    wave = _tone(0.1)
    out = speed_perturb(wave, 1.0)
    np.testing.assert_array_equal(out, wave)
    assert out is not wave
    with pytest.raises(ValueError, match="speed factor"):
        speed_perturb(wave, 0.0)


@pytest.mark.parametrize("kind", ["white", "pink", "brown"])
@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_add_noise_reaches_requested_snr(kind, snr_db):
    rng = np.random.default_rng(1)
    wave = _tone(1.0)
    noise = colored_noise(kind, wave.size, rng)
    mixed = add_noise(wave, noise, snr_db)
    residual = mixed.astype(np.float64) - wave
    measured = 10 * math.log10(np.mean(wave.astype(np.float64) ** 2) / np.mean(residual**2))
    assert measured == pytest.approx(snr_db, abs=0.05)


def test_add_noise_tiles_short_noise_and_leaves_silence_alone():
    wave = _tone(0.5)
    mixed = add_noise(wave, np.ones(100, np.float32) * 0.1, 20.0)
    assert mixed.shape == wave.shape
    silence = np.zeros(800, np.float32)
    np.testing.assert_array_equal(add_noise(silence, np.ones(800, np.float32), 10.0), silence)


def test_noise_colours_have_their_spectral_slope():
    rng = np.random.default_rng(0)
    slopes = {}
    for kind in ("white", "pink", "brown"):
        noise = colored_noise(kind, 1 << 16, rng)
        assert noise.dtype == np.float32
        assert np.sqrt(np.mean(noise.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-4)
        power = np.abs(np.fft.rfft(noise)) ** 2
        low, high = power[100:200].mean(), power[10000:20000].mean()  # bins ~ 100x apart in frequency
        slopes[kind] = 10 * math.log10(low / high) / 20  # ~ exponent (dB per decade / 10)
    assert slopes["white"] == pytest.approx(0.0, abs=0.2)
    assert slopes["pink"] == pytest.approx(1.0, abs=0.3)
    assert slopes["brown"] == pytest.approx(2.0, abs=0.3)
    with pytest.raises(ValueError, match="unknown noise kind"):
        colored_noise("purple", 10, rng)


def test_reverberate_keeps_length_and_smears_energy():
    rng = np.random.default_rng(3)
    wave = np.zeros(SR, np.float32)
    wave[100] = 0.5  # an impulse: the output is the RIR
    out = reverberate(wave, rng, (0.3, 0.3), SR)
    assert out.shape == wave.shape and np.all(np.isfinite(out))
    assert np.count_nonzero(np.abs(out[2000:]) > 1e-6) > 1000  # a tail, where the input is silent


def test_room_impulse_response_decays_by_60_db():
    rir = room_impulse_response(0.5, np.random.default_rng(0), SR)
    assert rir.size == SR // 2
    assert np.sum(rir.astype(np.float64) ** 2) == pytest.approx(1.0, rel=1e-5)
    head = np.mean(rir[1:800].astype(np.float64) ** 2)
    tail = np.mean(rir[-800:].astype(np.float64) ** 2)
    assert 10 * math.log10(head / tail) > 45


def test_random_gain_within_range():
    rng = np.random.default_rng(0)
    wave = _tone(0.1, amp=0.1)
    for _ in range(20):
        gain = np.max(np.abs(random_gain(wave, rng, (-6.0, 6.0)))) / np.max(np.abs(wave))
        assert 10 ** (-6 / 20) - 1e-6 <= gain <= 10 ** (6 / 20) + 1e-6


def test_wave_augment_deterministic_bounded_and_varied():
    config = WaveAugmentConfig(noise_prob=1.0, reverb_prob=1.0, gain_db=(12.0, 12.0))
    augment = WaveAugment(config)
    wave = _tone(1.0, amp=0.9)
    a = augment(wave, np.random.default_rng(7))
    b = augment(wave, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    outputs = [augment(wave, np.random.default_rng(seed)) for seed in range(6)]
    for out in outputs:
        assert out.dtype == np.float32 and np.all(np.isfinite(out))
        assert np.max(np.abs(out)) <= 1.0  # +12 dB on a 0.9 peak would clip: scaled down instead
    assert len({out.size for out in outputs}) > 1  # speeds 0.9/1.0/1.1 were drawn


def test_wave_augment_config_validation():
    with pytest.raises(ConfigError, match="noise_prob"):
        WaveAugmentConfig(noise_prob=1.5)
    with pytest.raises(ConfigError, match="speeds"):
        WaveAugmentConfig(speeds=(0.0,))
    with pytest.raises(ConfigError, match="snr_db"):
        WaveAugmentConfig(snr_db=(30.0, 10.0))
    assert WaveAugmentConfig(snr_db=[5, 10]).snr_db == (5.0, 10.0)  # YAML lists become tuples


# ---------------------------------------------------------------- SpecAugment


def test_specaugment_masks_only_valid_frames():
    torch.manual_seed(0)
    aug = SpecAugment(freq_masks=2, freq_width=10, time_masks=3, time_width_ratio=0.2, max_time_width=30)
    aug.train()
    x = torch.randn(4, 120, 40) + 5.0  # nothing is 0 before masking
    lens = torch.tensor([120, 80, 50, 0])
    padded = x.clone()
    for b, n in enumerate(lens.tolist()):
        padded[b, n:] = 7.0
    masked_any = False
    for _ in range(10):
        y = aug(padded, lens)
        assert y.shape == padded.shape
        for b, n in enumerate(lens.tolist()):
            assert torch.equal(y[b, n:], padded[b, n:])  # padding untouched
        zero = y == 0
        masked_any |= bool(zero.any())
        # time masks: whole frames; frequency masks: whole bins of the valid region
        frame_masked = zero[0].all(dim=1)
        assert frame_masked.sum() <= 3 * 24
    assert masked_any


def test_specaugment_widths_respect_limits():
    torch.manual_seed(1)
    aug = SpecAugment(freq_masks=1, freq_width=5, time_masks=0).train()
    x = torch.ones(8, 50, 30)
    y = aug(x, torch.full((8,), 50))
    masked_bins = (y == 0).all(dim=1).sum(dim=1)
    assert masked_bins.max() <= 5
    assert masked_bins.sum() > 0


def test_specaugment_is_reproducible_from_torch_rng_and_identity_in_eval():
    aug = SpecAugment().train()
    x = torch.randn(2, 200, 80)
    lens = torch.tensor([200, 150])
    torch.manual_seed(5)
    a = aug(x, lens)
    torch.manual_seed(5)
    b = aug(x, lens)
    assert torch.equal(a, b) and not torch.equal(a, x)
    aug.eval()
    assert aug(x, lens) is x


def test_specaugment_adaptive_time_masks():
    torch.manual_seed(0)
    aug = SpecAugment(
        freq_masks=0, time_masks=1, time_mask_rate=0.05, time_width_ratio=0.01, max_time_width=5
    )
    x = torch.ones(1, 1000, 4)
    y = aug.train()(x, torch.tensor([1000]))
    masked = (y[0, :, 0] == 0).float()
    starts = int(((masked[1:] - masked[:-1]) == 1).sum() + masked[0])
    assert starts > 5  # ~50 masks allowed, far more than time_masks=1


def test_specaugment_frequency_warp():
    torch.manual_seed(0)
    aug = SpecAugment(freq_masks=0, time_masks=0, warp_factor_range=(1.1, 1.1)).train()
    ramp = torch.arange(20, dtype=torch.float32).expand(2, 3, 20).clone()
    y = aug(ramp, torch.tensor([3, 3]))
    expected = (torch.arange(20) * 1.1).clamp(max=19)
    torch.testing.assert_close(y[0, 0], expected)
    with pytest.raises(ConfigError, match="warp_factor_range"):
        SpecAugmentConfig(warp_factor_range=(1.2, 0.9))
