"""pYIN F0 tracker and frame energy: accuracy on signals of known F0, voicing, framing, espeak speech, librosa."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import torch

from seqspeech.audio.io import load_audio
from seqspeech.audio.pitch import default_frame_length, estimate_f0, frame_energy
from seqspeech.errors import AudioError, ConfigError
from seqspeech.tts.mel import MelConfig, MelSpectrogram

SR = 16_000
HOP = 256
EDGE = 3  # frames at each end whose analysis span reaches past the signal


def frame_times(n_frames: int, hop: int = HOP, sr: int = SR) -> np.ndarray:
    return (np.arange(n_frames) * hop + hop // 2) / sr


def harmonic(f0: float | np.ndarray, seconds: float, harmonics=(1, 2, 3), sr: int = SR) -> np.ndarray:
    """Sum of equal-amplitude harmonics of a (possibly time-varying, per sample) F0."""
    n = int(seconds * sr)
    f = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f) / sr
    return (sum(np.sin(k * phase) for k in harmonics) / len(harmonics)).astype(np.float32) * 0.5


def gross_pitch_error(f0: np.ndarray, voiced: np.ndarray, truth: np.ndarray) -> float:
    """Share of frames (all assumed voiced) that are unvoiced or more than 20 % off."""
    wrong = ~voiced | (np.abs(f0 - truth) > 0.2 * truth)
    return float(wrong.mean())


@pytest.mark.parametrize("f0", [80.0, 150.0, 220.0, 440.0])
def test_sine_f0(f0):
    f0_est, voiced = estimate_f0(harmonic(f0, 1.0, harmonics=(1,)), SR, HOP)
    inner = slice(EDGE, -EDGE)
    assert gross_pitch_error(f0_est[inner], voiced[inner], np.full(len(f0_est), f0)[inner]) < 0.02
    assert np.median(np.abs(f0_est[inner][voiced[inner]] / f0 - 1)) < 0.002
    assert f0_est.dtype == np.float32 and voiced.dtype == bool


@pytest.mark.parametrize("f0", [110.0, 150.0, 260.0])
def test_missing_fundamental(f0):
    wave = harmonic(f0, 1.0, harmonics=(2, 3, 4, 5))  # no energy at f0 itself
    f0_est, voiced = estimate_f0(wave, SR, HOP)
    inner = slice(EDGE, -EDGE)
    assert gross_pitch_error(f0_est[inner], voiced[inner], np.full(len(f0_est), f0)[inner]) < 0.02
    assert np.median(np.abs(f0_est[inner] / f0 - 1)) < 0.005


def test_exponential_glide():
    seconds, low, high = 1.5, 100.0, 300.0
    t = np.arange(int(seconds * SR)) / SR
    wave = harmonic(low * (high / low) ** (t / seconds), seconds)
    f0_est, voiced = estimate_f0(wave, SR, HOP)
    truth = low * (high / low) ** (frame_times(len(f0_est)) / seconds)
    inner = slice(EDGE, -EDGE)
    assert gross_pitch_error(f0_est[inner], voiced[inner], truth[inner]) < 0.02
    cents = 1200 * np.abs(np.log2(f0_est[inner][voiced[inner]] / truth[inner][voiced[inner]]))
    assert np.median(cents) < 10.0


def test_noise_and_silence_are_unvoiced():
    noise = np.random.default_rng(0).normal(0.0, 0.1, SR).astype(np.float32)
    f0, voiced = estimate_f0(noise, SR, HOP)
    assert voiced.mean() < 0.05
    f0, voiced = estimate_f0(np.zeros(SR, np.float32), SR, HOP)
    assert not voiced.any() and not f0.any()
    assert np.all(f0[~voiced] == 0.0)


def test_voicing_onset_is_on_the_mel_frame_grid():
    """A tone switched on at sample `onset` is voiced from about the frame whose centre follows the onset."""
    onset = 12_345
    wave = np.zeros(2 * SR, np.float32)
    wave[onset:onset + SR // 2] = harmonic(200.0, 0.5)
    f0, voiced = estimate_f0(wave, SR, HOP)
    centres = np.arange(len(f0)) * HOP + HOP // 2
    inside = (centres > onset + 2 * HOP) & (centres < onset + SR // 2 - 2 * HOP)
    outside = (centres < onset - 2 * HOP) | (centres > onset + SR // 2 + 2 * HOP)
    assert voiced[inside].all()
    assert not voiced[outside].any()
    first = int(np.argmax(voiced))
    assert abs(centres[first] - onset) <= 1.5 * HOP


def test_level_and_input_type_invariance():
    wave = harmonic(180.0, 0.8)
    f0, voiced = estimate_f0(wave, SR, HOP)
    quiet_f0, quiet_voiced = estimate_f0(wave * 1e-3, SR, HOP)
    torch_f0, torch_voiced = estimate_f0(torch.from_numpy(wave), SR, HOP)
    np.testing.assert_array_equal(voiced, quiet_voiced)
    np.testing.assert_allclose(f0, quiet_f0, rtol=1e-4)
    np.testing.assert_array_equal(voiced, torch_voiced)
    np.testing.assert_allclose(f0, torch_f0, rtol=1e-6)


@pytest.mark.parametrize("samples", [HOP - 1, HOP, 1000, 16_000, 16_000 + 255, 16_000 + 256])
def test_frame_count_matches_the_mel_spectrogram(samples):
    wave = harmonic(150.0, samples / SR + 1e-9)[:samples]
    assert len(wave) == samples
    f0, voiced = estimate_f0(wave, SR, HOP)
    assert f0.shape == voiced.shape == (samples // HOP,)
    if samples > MelConfig().n_fft // 2:
        mel = MelSpectrogram()(torch.from_numpy(wave))
        energy = frame_energy(wave, MelConfig())
        assert mel.shape[-1] == len(f0) == len(energy)


def test_other_rates_and_hops():
    wave = harmonic(200.0, 1.0, sr=22_050)
    f0, voiced = estimate_f0(wave, 22_050, 110)
    assert len(f0) == len(wave) // 110
    assert default_frame_length(22_050, 60.0) == 1024 and default_frame_length(16_000, 60.0) == 1024
    inner = slice(2 * EDGE, -2 * EDGE)
    assert gross_pitch_error(f0[inner], voiced[inner], np.full(len(f0), 200.0)[inner]) < 0.02


def test_frame_energy_matches_a_numpy_stft():
    config = MelConfig()
    rng = np.random.default_rng(1)
    wave = (harmonic(130.0, 0.5) + rng.normal(0, 0.01, SR // 2)).astype(np.float32)
    energy = frame_energy(wave, config)
    pad = (config.n_fft - config.hop_length) // 2
    padded = np.pad(wave.astype(np.float64), (pad, config.n_fft - config.hop_length - pad), mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(config.n_fft) / config.n_fft)  # periodic Hann
    frames = np.stack([padded[t * config.hop_length:t * config.hop_length + config.n_fft]
                       for t in range(len(wave) // config.hop_length)])
    reference = np.sqrt((np.abs(np.fft.rfft(frames * window, axis=1)) ** 2).sum(axis=1))
    np.testing.assert_allclose(energy, reference, rtol=1e-4)
    np.testing.assert_allclose(frame_energy(2 * wave), 2 * energy, rtol=1e-5)
    assert not frame_energy(np.zeros(4000, np.float32)).any()


def test_invalid_input():
    with pytest.raises(AudioError, match="1-D"):
        estimate_f0(np.zeros((2, 1000), np.float32), SR, HOP)
    with pytest.raises(AudioError, match="NaN"):
        estimate_f0(np.full(1000, np.nan, np.float32), SR, HOP)
    with pytest.raises(AudioError, match="floating-point"):
        estimate_f0(np.zeros(1000, np.int16), SR, HOP)
    with pytest.raises(ConfigError, match="f_min"):
        estimate_f0(np.zeros(1000, np.float32), SR, HOP, f_min=300.0, f_max=200.0)
    with pytest.raises(ConfigError, match="too short for f_min"):
        estimate_f0(np.zeros(1000, np.float32), SR, HOP, frame_length=256)
    with pytest.raises(ConfigError, match="hop_length"):
        estimate_f0(np.zeros(1000, np.float32), SR, 0)
    with pytest.raises(AudioError, match="shorter than half"):
        frame_energy(np.zeros(100, np.float32))


def test_speed():
    """Well under 0.05 x real time at 16 kHz, hop 256 (10 s of a varying harmonic signal with pauses)."""
    seconds = 10.0
    t = np.arange(int(seconds * SR)) / SR
    wave = harmonic(150 + 60 * np.sin(2 * np.pi * 0.7 * t), seconds) * (np.sin(2 * np.pi * 0.4 * t) > -0.3)
    wave = wave + np.random.default_rng(2).normal(0, 0.003, len(wave)).astype(np.float32)
    estimate_f0(wave[:SR], SR, HOP)  # warm-up
    start = time.perf_counter()
    estimate_f0(wave, SR, HOP)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.05 * seconds * 2  # 2x slack for a busy machine


# ----------------------------------------------------------------
# speech


def _espeak(tmp_path_factory, text: str, pitch: int) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from seqspeech.data.synth import cached_clip

    directory = tmp_path_factory.getbasetemp() / "pitch_clips"
    return load_audio(cached_clip(directory, text, engine="espeak-ng", voice="en-us", pitch=pitch), SR)


TEXT = "The birch canoe slid on the smooth planks."


def test_espeak_pitch_setting_orders_f0(tmp_path_factory):
    medians = []
    for pitch in (30, 70):
        f0, voiced = estimate_f0(_espeak(tmp_path_factory, TEXT, pitch), SR, HOP)
        assert 0.25 < voiced.mean() < 0.95  # speech has voiced and unvoiced parts
        assert np.all((f0[voiced] >= 60) & (f0[voiced] <= 500))
        medians.append(np.median(f0[voiced]))
    assert medians[1] > 1.15 * medians[0], medians


def test_agrees_with_librosa_pyin(tmp_path_factory):
    """Same algorithm, different difference function: librosa >= 0.11 sums over the whole (centred) frame, we use
    YIN's fixed window; voicing and pitch must still agree closely on speech."""
    librosa = pytest.importorskip("librosa")
    wave = _espeak(tmp_path_factory, TEXT, 50)
    f0, voiced = estimate_f0(wave, SR, HOP)
    frame_length = default_frame_length(SR, 60.0)
    # center=False frames of a signal padded so that librosa's frame k is centred on our frame k
    padded = np.pad(wave, (frame_length // 2 - HOP // 2, frame_length))
    ref_f0, ref_voiced, _ = librosa.pyin(padded, fmin=60.0, fmax=500.0, sr=SR, frame_length=frame_length,
                                         hop_length=HOP, center=False)
    ref_f0, ref_voiced = ref_f0[:len(f0)], ref_voiced[:len(f0)]
    assert len(ref_f0) == len(f0)
    assert np.mean(voiced == ref_voiced) > 0.9
    both = voiced & ref_voiced
    cents = 1200 * np.abs(np.log2(f0[both] / ref_f0[both]))
    assert np.median(cents) < 15.0  # librosa quantises to 10-cent bins
    assert np.mean(cents < 50.0) > 0.95


def test_candidate_stage_and_viterbi_match_librosa(tmp_path_factory):
    """Our vectorised trough probabilities and banded Viterbi against librosa's per-frame pYIN helper and its
    dense Viterbi, fed the same CMND (frames of espeak speech)."""
    pytest.importorskip("librosa")
    import scipy.stats
    from librosa import sequence
    from librosa.core import pitch as librosa_pitch

    from seqspeech.audio import pitch

    wave = _espeak(tmp_path_factory, TEXT, 50).astype(np.float64)
    frame_length = default_frame_length(SR, 60.0)
    min_period, max_period = SR // 500, int(np.ceil(SR / 60.0))
    frames = np.lib.stride_tricks.sliding_window_view(wave, frame_length)[::HOP]
    cmnd = pitch._cmnd(frames, frame_length // 2, min_period, max_period)
    hmm = pitch._pitch_hmm(60.0, 500.0, SR, HOP)
    bins, _, probs = pitch._candidates(cmnd, min_period, SR, hmm)
    observations = pitch._observations(bins, probs, hmm.n_bins)  # (F, 2 n_bins)

    thresholds = np.linspace(0, 1, 101)
    beta_probs = np.diff(scipy.stats.beta.cdf(thresholds, 2, 18))
    np.testing.assert_allclose(hmm.beta_probs, beta_probs, atol=1e-12)
    shifts = librosa_pitch._parabolic_interpolation(cmnd.T)
    np.testing.assert_allclose(pitch._parabolic_shifts(cmnd), shifts.T, atol=1e-12)
    helper = getattr(librosa_pitch, "__pyin_helper")
    reference, _ = helper(cmnd.T, shifts, SR, thresholds, 2, beta_probs, 0.01, min_period, 60.0, hmm.n_bins, 10)
    np.testing.assert_allclose(observations, reference[0].T, atol=1e-12)

    n = hmm.n_bins
    width = round(35.92 * 12 * HOP / SR) * 10 + 1
    transition = np.kron(sequence.transition_loop(2, 0.99),
                         sequence.transition_local(n, width, window="triangle", wrap=False))
    p_init = np.r_[np.zeros(n), np.full(n, 1.0 / n)]
    expected = sequence.viterbi(observations.T, transition, p_init=p_init)
    viterbi = pitch._Viterbi(hmm)
    viterbi.feed(observations[:40])  # fed in two chunks, as estimate_f0 does
    viterbi.feed(observations[40:])
    states = viterbi.decode()
    np.testing.assert_array_equal(states < n, expected < n)
    voiced = states < n
    assert voiced.mean() > 0.3
    np.testing.assert_array_equal(states[voiced], expected[voiced])  # unvoiced bins may differ on exact ties
