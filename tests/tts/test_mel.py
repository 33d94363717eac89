"""The shared TTS mel: framing, values against a direct numpy computation, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqspeech.audio.features import mel_filters
from seqspeech.tts.mel import TTS_LOG_SILENCE, MelConfig, MelSpectrogram


def _numpy_mel(wave: np.ndarray, cfg: MelConfig) -> np.ndarray:
    pad = (cfg.n_fft - cfg.hop_length) // 2
    x = np.pad(wave, (pad, cfg.n_fft - cfg.hop_length - pad), mode="reflect")
    window = np.hanning(cfg.win_length + 1)[:-1]  # periodic Hann, as torch.hann_window
    frames = len(wave) // cfg.hop_length
    spec = np.stack([np.abs(np.fft.rfft(x[t * cfg.hop_length:t * cfg.hop_length + cfg.n_fft] * window))
                     for t in range(frames)], axis=1)
    fb = mel_filters(cfg.n_mels, sr=cfg.sample_rate, n_fft=cfg.n_fft).numpy()
    return np.log(np.maximum(fb @ spec, 1e-5))


def test_matches_direct_computation_and_frame_count() -> None:
    rng = np.random.default_rng(0)
    wave = (0.2 * rng.standard_normal(16000 + 123)).astype(np.float32)
    cfg = MelConfig()
    mel = MelSpectrogram(cfg)(torch.from_numpy(wave))
    assert mel.shape == (80, (16000 + 123) // 256) == (80, cfg.num_frames(len(wave)))
    np.testing.assert_allclose(mel.numpy(), _numpy_mel(wave.astype(np.float64), cfg), atol=2e-3)
    batch = MelSpectrogram(cfg)(torch.from_numpy(np.stack([wave, wave[::-1].copy()])))
    torch.testing.assert_close(batch[0], mel)


def test_frame_t_reads_its_own_samples() -> None:
    """Frame t is centred on samples [t*hop, (t+1)*hop): a click there shows in frame t, not far away."""
    cfg = MelConfig()
    wave = torch.zeros(40 * 256)
    wave[20 * 256 + 128] = 1.0
    energy = MelSpectrogram(cfg)(wave).exp().sum(0)
    assert int(energy.argmax()) == 20
    assert torch.allclose(MelSpectrogram(cfg)(torch.zeros(4096)), torch.full((80, 16), TTS_LOG_SILENCE))


def test_config_validation_and_short_input() -> None:
    with pytest.raises(ValueError, match="win_length"):
        MelConfig(win_length=2048)
    with pytest.raises(ValueError, match="positive"):
        MelConfig(hop_length=0)
    assert MelConfig().frame_seconds == 0.016
    with pytest.raises(ValueError, match="shorter than half a frame"):
        MelSpectrogram()(torch.zeros(100))
    band = MelSpectrogram(MelConfig(f_min=60.0, f_max=7600.0))(torch.randn(8000))
    assert band.shape == (80, 31) and torch.isfinite(band).all()
