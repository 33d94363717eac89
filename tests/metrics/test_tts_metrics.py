"""TTS metrics: DTW against brute force and hand cases, mel-cepstrum convention, MCD, F0 RMSE, VDE, latency."""

from __future__ import annotations

import itertools
import math
import shutil

import numpy as np
import pytest
import torch

from seqspeech.audio.io import load_audio
from seqspeech.errors import AudioError
from seqspeech.metrics import RTFMeter
from seqspeech.metrics import tts as tts_module
from seqspeech.metrics.tts import (
    MCEP_ORDER,
    TTSMetrics,
    dtw,
    f0_rmse,
    first_chunk_latency,
    mel_cepstral_distortion,
    mel_cepstrum,
    metric_frame_settings,
    tts_metrics,
)
from seqspeech.tts.mel import MelConfig, MelSpectrogram

SR = 16_000


# ----------------------------------------------------------------
# DTW


def brute_force_dtw(cost: np.ndarray) -> float:
    """Minimum total over every monotone path of unit steps (right, down, diagonal)."""
    n, m = cost.shape
    best = math.inf
    stack = [(0, 0, cost[0, 0])]
    while stack:
        i, j, total = stack.pop()
        if (i, j) == (n - 1, m - 1):
            best = min(best, total)
            continue
        for di, dj in ((1, 0), (0, 1), (1, 1)):
            if i + di < n and j + dj < m:
                stack.append((i + di, j + dj, total + cost[i + di, j + dj]))
    return best


def path_cost(cost: np.ndarray, path: list[tuple[int, int]]) -> float:
    return float(sum(cost[i, j] for i, j in path))


def check_path(path: list[tuple[int, int]], n: int, m: int) -> None:
    assert path[0] == (0, 0) and path[-1] == (n - 1, m - 1)
    for (i0, j0), (i1, j1) in itertools.pairwise(path):
        assert (i1 - i0, j1 - j0) in {(1, 0), (0, 1), (1, 1)}


def test_dtw_identity_path():
    a = np.arange(6, dtype=float)
    total, path = dtw(np.abs(a[:, None] - a[None, :]))
    assert total == 0.0
    assert path == [(k, k) for k in range(6)]


def test_dtw_stretched_copy_aligns_at_zero_cost():
    a = np.array([0.0, 3.0, 1.0, 4.0, 2.0])
    b = np.repeat(a, 3)  # every element held three times
    total, path = dtw(np.abs(a[:, None] - b[None, :]))
    assert total == 0.0
    check_path(path, len(a), len(b))
    assert path == [(j // 3, j) for j in range(len(b))]


def test_dtw_hand_case():
    cost = np.array([[1.0, 3.0, 5.0], [2.0, 1.0, 4.0], [6.0, 2.0, 1.0]])
    # D = [[1, 4, 9], [3, 2, 6], [9, 4, 3]]
    total, path = dtw(cost)
    assert total == 3.0
    assert path == [(0, 0), (1, 1), (2, 2)]
    total, path = dtw(np.array([[1.0, 2.0, 3.0]]))
    assert total == 6.0 and path == [(0, 0), (0, 1), (0, 2)]
    total, path = dtw(torch.tensor([[1.0], [2.0]]))
    assert total == 3.0 and path == [(0, 0), (1, 0)]


@pytest.mark.parametrize("seed", range(6))
def test_dtw_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    cost = rng.random((rng.integers(1, 6), rng.integers(1, 7)))
    total, path = dtw(cost)
    check_path(path, *cost.shape)
    assert total == pytest.approx(brute_force_dtw(cost), abs=1e-12)
    assert path_cost(cost, path) == pytest.approx(total, abs=1e-12)


def test_dtw_rejects_bad_costs():
    with pytest.raises(ValueError, match="NaN"):
        dtw(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="matrix"):
        dtw(np.zeros(4))
    with pytest.raises(ValueError, match="matrix"):
        dtw(np.zeros((0, 3)))


# ----------------------------------------------------------------
# synthetic utterances: harmonic "vowels" with formant envelopes

VOWELS = {"a": (700, 1200, 2600), "i": (300, 2300, 3000), "u": (300, 800, 2300), "e": (500, 1900, 2500),
          "o": (500, 900, 2400)}


def vowel(name: str, seconds: float, f0: float = 140.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    out = np.zeros_like(t)
    for k in range(1, int(4000 / f0)):
        gain = sum(np.exp(-0.5 * ((k * f0 - formant) / 90.0) ** 2) for formant in VOWELS[name]) + 0.02
        out += gain / k**0.5 * np.sin(2 * np.pi * k * f0 * t + k)
    return out / np.abs(out).max() * 0.3


def utterance(names: str, seconds: float, sr: int = SR) -> np.ndarray:
    """Vowels in a row over a faint noise floor (so no mel band is at the log floor)."""
    voiced = np.concatenate([vowel(v, seconds, sr=sr) for v in names])
    return (voiced + np.random.default_rng(len(voiced)).normal(0, 1e-3, len(voiced))).astype(np.float32)


def test_mel_cepstrum_convention():
    """Columns are c0..c_order of the log mel amplitude: L_k = c0 + 2 sum_m c_m cos(pi m (k + 1/2) / K)."""
    wave = utterance("aiu", 0.3)
    hop, n_fft = metric_frame_settings(SR)
    assert (hop, n_fft) == (80, 1024)
    full = mel_cepstrum(wave, SR, order=79)
    assert full.shape == (len(wave) // hop, 80)
    mel = MelSpectrogram(MelConfig(sample_rate=SR, n_fft=n_fft, hop_length=hop, win_length=n_fft))
    power = mel.filters.double() @ mel.magnitude(torch.from_numpy(wave)).double() ** 2
    log_amplitude = 0.5 * np.log(np.maximum(power.numpy(), 1e-10))  # (K, frames)
    k = np.arange(80)
    basis = np.cos(np.pi * np.arange(1, 80)[:, None] * (k[None, :] + 0.5) / 80)
    rebuilt = full[:, :1].T + 2 * (full[:, 1:] @ basis).T
    np.testing.assert_allclose(rebuilt, log_amplitude, atol=1e-9)
    # a gain only moves c0, by ln(gain)
    low = mel_cepstrum(wave, SR)
    high = mel_cepstrum(2 * wave, SR)
    assert low.shape[1] == MCEP_ORDER + 1
    np.testing.assert_allclose(high[:, 0] - low[:, 0], math.log(2), atol=1e-6)
    np.testing.assert_allclose(high[:, 1:], low[:, 1:], atol=1e-6)


def test_mcd_identity_gain_and_noise():
    wave = utterance("aeiou", 0.25)
    assert mel_cepstral_distortion(wave, wave, SR) == 0.0
    assert mel_cepstral_distortion(wave, 0.5 * wave, SR) < 1e-4  # c0 is excluded
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, len(wave)).astype(np.float32)
    rms = np.sqrt(np.mean(wave**2))
    mcds = [mel_cepstral_distortion(wave, wave + noise * rms * 10 ** (-snr / 20), SR) for snr in (30, 20, 10, 0)]
    assert 0 < mcds[0] < mcds[1] < mcds[2] < mcds[3], mcds


def test_mcd_time_stretched_copy_is_small():
    ref = utterance("aiueo", 0.2)
    stretched = utterance("aiueo", 0.3)  # 1.5x slower, same spectra
    unrelated = utterance("uoaie", 0.2)
    near = mel_cepstral_distortion(ref, stretched, SR)
    far = mel_cepstral_distortion(ref, unrelated, SR)
    assert near < 0.25 * far, (near, far)
    # the path pairs frames of the same vowel (within a vowel any path is free: its frames are all alike)
    hop, _ = metric_frame_settings(SR)
    a, b = mel_cepstrum(ref, SR)[:, 1:], mel_cepstrum(stretched, SR)[:, 1:]
    _, path = dtw(np.linalg.norm(a[:, None] - b[None], axis=-1))
    i, j = np.asarray(path).T
    ref_vowel = ((i * hop + hop // 2) / SR / 0.2).astype(int)
    stretched_vowel = ((j * hop + hop // 2) / SR / 0.3).astype(int)
    assert np.mean(ref_vowel == stretched_vowel) > 0.95


def test_f0_rmse_of_sines():
    t = np.arange(SR) / SR
    ref = (0.3 * np.sin(2 * np.pi * 200.0 * t)).astype(np.float32)
    assert f0_rmse(ref, ref, SR) == pytest.approx(0.0, abs=0.5)
    for freq in (210.0, 300.0):
        syn = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        metrics = tts_metrics(ref, syn, SR)
        assert metrics.f0_rmse_hz == pytest.approx(freq - 200.0, abs=1.0)
        assert metrics.f0_rmse_cents == pytest.approx(1200 * math.log2(freq / 200.0), abs=5.0)
        assert metrics.voicing_error < 0.05
        assert metrics.gross_pitch_error == (1.0 if freq / 200 > 1.2 else 0.0)
        assert f0_rmse(ref, syn, SR) == metrics.f0_rmse_hz


def test_voicing_decision_error():
    t = np.arange(SR) / SR
    ref = (0.3 * np.sin(2 * np.pi * 150.0 * t)).astype(np.float32)
    syn = ref.copy()
    syn[SR // 2:] = np.random.default_rng(3).normal(0, 0.2, SR // 2)  # second half unvoiced
    metrics = tts_metrics(ref, syn, SR)
    assert 0.2 < metrics.voicing_error < 0.7  # 100 noise frames on a path of 200 to 399 pairs
    assert metrics.f0_rmse_hz < 3.0  # the voiced pairs agree
    assert tts_metrics(ref, ref, SR).voicing_error == 0.0
    silent = tts_metrics(np.zeros(SR, np.float32), np.zeros(SR, np.float32), SR)
    assert math.isnan(silent.f0_rmse_hz) and silent.voiced_pairs == 0 and silent.mcd_db == 0.0


def test_tts_metrics_fields_and_resampling():
    ref = utterance("aiu", 0.3)
    syn = utterance("aiu", 0.3, sr=22_050)
    metrics = tts_metrics(ref, syn, SR, syn_sample_rate=22_050)
    assert isinstance(metrics, TTSMetrics)
    assert metrics.mcd_db < 1.0 and metrics.f0_rmse_hz < 2.0
    assert metrics.ref_frames == len(ref) // 80 and metrics.syn_frames == metrics.ref_frames
    assert metrics.mcd_db == pytest.approx(mel_cepstral_distortion(ref, syn, SR, syn_sample_rate=22_050))
    assert set(metrics.to_dict()) >= {"mcd_db", "f0_rmse_hz", "voicing_error", "gross_pitch_error"}
    with pytest.raises(AudioError, match="synthesised audio"):
        mel_cepstral_distortion(ref, np.full(1000, np.nan, np.float32), SR)
    with pytest.raises(AudioError, match="reference audio"):
        mel_cepstral_distortion(np.zeros(0, np.float32), ref, SR)


def test_espeak_rate_change_vs_other_sentence(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from seqspeech.data.synth import cached_clip

    directory = tmp_path_factory.getbasetemp() / "mcd_clips"

    def clip(text: str, rate: int) -> np.ndarray:
        return load_audio(cached_clip(directory, text, engine="espeak-ng", voice="en-us", rate=rate), SR)

    ref = clip("Glue the sheet to the dark blue background.", 175)
    slower = clip("Glue the sheet to the dark blue background.", 130)
    other = clip("Rice is often served in round bowls.", 175)
    assert mel_cepstral_distortion(ref, ref, SR) == 0.0
    same_text = tts_metrics(ref, slower, SR)
    other_text = tts_metrics(ref, other, SR)
    assert same_text.mcd_db < 0.7 * other_text.mcd_db, (same_text, other_text)
    assert same_text.voicing_error < other_text.voicing_error


# ----------------------------------------------------------------
# streaming latency


def test_first_chunk_latency(monkeypatch):
    clock = iter([10.0, 10.25, 11.0])  # start, first non-empty chunk, end
    monkeypatch.setattr(tts_module.time, "perf_counter", lambda: next(clock))

    def stream():
        yield np.zeros(0, np.float32)
        yield np.ones(1600, np.float32)
        yield torch.full((800,), 2.0)

    meter = RTFMeter()
    timing, audio = first_chunk_latency(stream(), SR, meter=meter)
    assert timing.first_chunk_seconds == 0.25 and timing.wall_seconds == 1.0
    assert timing.audio_seconds == pytest.approx(0.15) and timing.n_chunks == 3
    assert timing.rtf == pytest.approx(1.0 / 0.15)
    np.testing.assert_array_equal(audio, np.r_[np.ones(1600), np.full(800, 2.0)])
    assert meter.n_calls == 1 and meter.audio_seconds == pytest.approx(0.15)
    assert timing.to_dict()["rtf"] == pytest.approx(timing.rtf)
