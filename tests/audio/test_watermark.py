"""seqspeech.audio.watermark: detection after attacks, wrong keys, false positives, inaudibility, I/O contract."""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from seqspeech.audio import watermark
from seqspeech.audio.io import load_audio
from seqspeech.audio.watermark import (
    DEFAULT_STRENGTH,
    StreamingWatermarker,
    WATERMARK_THRESHOLD,
    WatermarkResult,
    detect_watermark,
    embed_watermark,
    watermark_scores,
    watermark_snr_db,
)
from seqspeech.cli_watermark import add_parser
from seqspeech.data.synth import HARVARD_SENTENCES
from seqspeech.errors import AudioError, ConfigError

KEY = "test-key"
# (sentence, espeak-ng voice, rate the clip is marked at): TTS rate, espeak's own rate, a studio rate.
CLIPS = [
    (HARVARD_SENTENCES[0], "en", 16000),
    (HARVARD_SENTENCES[6], "en-us", 22050),
    (HARVARD_SENTENCES[13], "en-gb-x-rp", 48000),
]
SNR_FLOOR_DB = 30.0  # the mark must stay at least this far below the signal
SHIFT = 1234
NOISE_SNR_DB = 20.0
MIN_SECONDS = 1.5
FALSE_POSITIVE_SIGNALS = 240
MAX_FALSE_POSITIVE_RATE = 0.01

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg CLI is not installed")


@pytest.fixture(scope="module")
def clips(synth_speech) -> list[tuple[np.ndarray, int]]:
    """Unmarked speech: ``(samples float32, rate)`` for each of CLIPS."""
    return [(load_audio(synth_speech(text, voice=voice), sr=rate), rate) for text, voice, rate in CLIPS]


@pytest.fixture(scope="module")
def marked(clips) -> list[tuple[np.ndarray, int]]:
    return [(embed_watermark(x, rate, key=KEY), rate) for x, rate in clips]


# ---------------------------------------------------------------- attacks


def resample_8k(x: np.ndarray, rate: int, tmp: Path) -> np.ndarray:
    return soxr.resample(soxr.resample(x, rate, 8000, quality="HQ"), 8000, rate, quality="HQ")


def mp3_64k(x: np.ndarray, rate: int, tmp: Path) -> np.ndarray:
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg CLI is not installed")
    wav, mp3 = tmp / f"in-{rate}.wav", tmp / f"out-{rate}.mp3"
    sf.write(wav, x, rate, subtype="PCM_16")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), "-b:a", "64k", str(mp3)], check=True)
    return load_audio(mp3, sr=rate)


def gain(db: float):
    def attack(x: np.ndarray, rate: int, tmp: Path) -> np.ndarray:
        return np.clip(x * 10 ** (db / 20), -1.0, 1.0)  # a gain that saturates, as a fixed-point file would

    return attack


def white_noise(x: np.ndarray, rate: int, tmp: Path) -> np.ndarray:
    rng = np.random.default_rng(rate)
    power = np.mean(x.astype(np.float64) ** 2) / 10 ** (NOISE_SNR_DB / 10)
    return (x + rng.normal(0.0, math.sqrt(power), x.shape)).astype(np.float32)


def shift(x: np.ndarray, rate: int, tmp: Path) -> np.ndarray:
    return x[SHIFT:]


def cut_short(x: np.ndarray, rate: int, tmp: Path) -> np.ndarray:
    """The middle MIN_SECONDS of the clip (a stream cut at both ends)."""
    n = round(MIN_SECONDS * rate)
    start = (x.size - n) // 2
    return x[start : start + n]


ATTACKS = {
    "none": lambda x, rate, tmp: x,
    "resample_8k": resample_8k,
    "mp3_64k": mp3_64k,
    "gain_+6dB": gain(6.0),
    "gain_-6dB": gain(-6.0),
    "noise_20dB": white_noise,
    "shift_1234": shift,
    "cut_1.5s": cut_short,
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_detected_after_attack(attack, marked, clips, tmp_path):
    for (y, rate), (x, _) in zip(marked, clips):
        attacked = ATTACKS[attack](y, rate, tmp_path)
        result = detect_watermark(attacked, rate, key=KEY)
        assert result.present, f"{attack} at {rate} Hz: score {result.score:.2f}"
        # the unmarked clip under the same attack stays below the threshold
        assert not detect_watermark(ATTACKS[attack](x, rate, tmp_path), rate, key=KEY).present


def test_detected_at_other_rates(marked):
    """A clip marked at 16 kHz is found after conversion to the common rates."""
    y, rate = marked[0]
    for other in (8000, 22050, 24000, 44100, 48000):
        converted = soxr.resample(y, rate, other, quality="HQ")
        assert detect_watermark(converted, other, key=KEY).present, other


def test_wrong_key_looks_unmarked(marked):
    scores = [detect_watermark(y, rate, key=f"other-{i}").score for y, rate in marked for i in range(30)]
    assert max(scores) < WATERMARK_THRESHOLD
    assert abs(np.mean(scores)) < 0.6 and 0.5 < np.std(scores) < 1.6  # like unmarked audio: about N(0, 1)


def test_scores_of_many_keys_match_single_detections(marked):
    y, rate = marked[1]
    keys = [KEY, "other", 7]
    np.testing.assert_allclose(watermark_scores(y, rate, keys), [detect_watermark(y, rate, k).score for k in keys])
    assert watermark_scores(np.zeros(rate, dtype=np.float32), rate, keys).tolist() == [0.0, 0.0, 0.0]


def test_int_key_and_its_digits_are_one_key(clips):
    x, rate = clips[0]
    y = embed_watermark(x, rate, key=4321)
    np.testing.assert_array_equal(y, embed_watermark(x, rate, key="4321"))
    assert detect_watermark(y, rate, key="4321").present
    assert not np.array_equal(y, embed_watermark(x, rate, key=4322))


def unmarked_signals(clips, count: int) -> list[tuple[np.ndarray, int]]:
    """Speech cuts (random offsets and lengths, three voices, three rates), noises and tones."""
    rng = np.random.default_rng(0)
    signals = []
    while len(signals) < count:
        kind = len(signals) % 4
        if kind < 2:  # a cut of real (synthetic) speech, 1.5 s or more
            x, rate = clips[rng.integers(len(clips))]
            n = int(rng.integers(round(MIN_SECONDS * rate), x.size + 1))
            start = int(rng.integers(0, x.size - n + 1))
            signals.append((x[start : start + n] * rng.uniform(0.1, 1.0), rate))
            continue
        rate = int(rng.choice([16000, 22050, 44100]))
        n = int(rng.uniform(MIN_SECONDS, 3.0) * rate)
        t = np.arange(n) / rate
        if kind == 2:  # coloured noise: white, pink-ish, brown-ish
            white = rng.normal(size=n)
            tilt = rng.choice([0.0, 0.5, 1.0])
            spectrum = np.fft.rfft(white) / np.maximum(np.fft.rfftfreq(n, 1 / rate), 20.0) ** tilt
            noise = np.fft.irfft(spectrum, n)
            signals.append((0.1 * noise / noise.std(), rate))
        else:  # a harmonic tone, steady or gliding
            f0 = rng.uniform(80, 300) * (1 + rng.uniform(0, 0.5) * t / t[-1])
            phase = 2 * np.pi * np.cumsum(f0) / rate
            tone = sum(np.sin(h * phase) / h for h in range(1, 20))
            signals.append((0.2 * tone, rate))
    return signals


def test_false_positive_rate(clips):
    signals = unmarked_signals(clips, FALSE_POSITIVE_SIGNALS)
    scores = np.array([detect_watermark(x, rate, key=KEY).score for x, rate in signals])
    assert np.mean(scores > WATERMARK_THRESHOLD) <= MAX_FALSE_POSITIVE_RATE
    # about N(0, 1); the speech cuts share their clip's projection on the key, so the mean is looser than 1/sqrt(n)
    assert abs(scores.mean()) < 1.0 and 0.4 < scores.std() < 1.6


def test_mark_is_quiet(clips, marked):
    for (x, _), (y, _) in zip(clips, marked):
        snr = watermark_snr_db(x, y)
        assert snr >= SNR_FLOOR_DB
        asked = -20 * math.log10(DEFAULT_STRENGTH)
        assert asked - 0.3 <= snr <= asked + 1.5  # as asked; a block that cannot carry it all gets less, never more


def test_silence_stays_silent(clips):
    x, rate = clips[0]
    silence = np.zeros(rate, dtype=np.float32)
    y = embed_watermark(np.concatenate([silence, x, silence]), rate)
    margin = round(0.3 * rate)  # the ripple's impulse response has died out this far from the speech
    assert np.abs(y[: rate - margin]).max() < 1e-5 and np.abs(y[-(rate - margin) :]).max() < 1e-5
    np.testing.assert_array_equal(embed_watermark(silence, rate), silence)


def test_types_shapes_and_full_scale(clips):
    x, rate = clips[1]
    loud = (x / np.abs(x).max()).astype(np.float32)  # peaks at exactly full scale
    for wave in (loud, loud.astype(np.float64), np.stack([loud, 0.5 * loud])):
        y = embed_watermark(wave, rate)
        assert type(y) is np.ndarray and y.shape == wave.shape and y.dtype == wave.dtype
        assert np.abs(y).max() <= 1.0 and not np.array_equal(y, wave)
    tensor = torch.from_numpy(loud)
    y = embed_watermark(tensor, rate)
    assert isinstance(y, torch.Tensor) and y.shape == tensor.shape and y.dtype == torch.float32
    np.testing.assert_array_equal(y.numpy(), embed_watermark(loud, rate))  # deterministic, same on both types
    result = detect_watermark(y, rate)
    assert isinstance(result, WatermarkResult) and result.present and result.threshold == WATERMARK_THRESHOLD


def test_embedding_is_fast(clips):
    x, rate = clips[0]
    ten_seconds = np.tile(x, -(-10 * rate // x.size))[: 10 * rate]
    start = time.process_time()
    embed_watermark(ten_seconds, rate)
    assert time.process_time() - start < 0.5  # 0.05 x real time on one core


def test_bad_input_is_a_clear_error(clips):
    x, rate = clips[0]
    with pytest.raises(AudioError, match="dtype"):
        embed_watermark((x * 32767).astype(np.int16), rate)
    with pytest.raises(AudioError, match="NaN"):
        embed_watermark(np.full(rate, np.nan, dtype=np.float32), rate)
    with pytest.raises(AudioError, match="too low"):
        embed_watermark(x, 4000)
    with pytest.raises(AudioError, match="too low"):
        detect_watermark(x, 4000)
    with pytest.raises(ConfigError, match="key"):
        embed_watermark(x, rate, key=1.5)
    with pytest.raises(ConfigError, match="strength"):
        embed_watermark(x, rate, strength=0.0)
    assert detect_watermark(np.zeros(rate, dtype=np.float32), rate).score == 0.0  # nothing to measure


def test_cli_reports_each_file(clips, marked, tmp_path, capsys):
    (x, rate), (y, _) = clips[0], marked[0]
    good, plain, bad = tmp_path / "marked.wav", tmp_path / "plain.wav", tmp_path / "broken.wav"
    sf.write(good, y, rate)
    sf.write(plain, x, rate)
    bad.write_bytes(b"RIFF not really a wave file")
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command", required=True))

    args = parser.parse_args(["detect-watermark", str(good), str(plain), "--key", KEY])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(str(good)) and lines[0].split()[1] == "present" and "score=" in lines[0]
    assert lines[1].startswith(str(plain)) and lines[1].split()[1] == "absent"

    args = parser.parse_args(["detect-watermark", str(bad), str(good), "--key", KEY])
    assert args.func(args) == 1
    captured = capsys.readouterr()
    assert "broken.wav" in captured.err and captured.out.split()[1] == "present"


def test_blocks_meet_the_budget_without_seams(clips, monkeypatch):
    """Marking a block at a time (FIRST_BLOCK_S, then EMBED_BLOCK_S) costs about the same SNR as one budget for the
    whole clip, and no block edge leaves a step in the mark."""
    x, rate = clips[0]
    blocked = embed_watermark(x, rate, key=KEY)
    monkeypatch.setattr(watermark, "FIRST_BLOCK_S", 60.0)
    monkeypatch.setattr(watermark, "EMBED_BLOCK_S", 60.0)
    whole = embed_watermark(x, rate, key=KEY)
    assert watermark_snr_db(x, blocked) == pytest.approx(watermark_snr_db(x, whole), abs=1.0)
    assert detect_watermark(blocked, rate, key=KEY).present
    mark = np.diff(blocked.astype(np.float64) - x)
    first, block = round(0.125 * rate), round(0.5 * rate)  # the defaults (the attributes are patched above)
    edges = np.arange(first, x.size - 1, block)
    assert np.abs(mark[edges - 1]).max() <= 4 * np.percentile(np.abs(mark), 99) + 1e-9


def test_stream_concatenates_to_offline(clips):
    x, rate = clips[1]
    x = 0.5 * x / np.abs(x).max()  # no peak near full scale: the two paths treat overshoot differently
    marker = StreamingWatermarker(rate, key=KEY)
    rng = np.random.default_rng(1)
    out, pushed = [], 0
    while pushed < x.size:
        n = int(rng.integers(1, rate // 3))
        out.append(marker.push(x[pushed : pushed + n]))
        pushed = min(pushed + n, x.size)
        assert sum(map(len, out)) >= pushed - marker.latency  # the output lags by at most the latency
        if pushed >= marker.first_latency:  # the short first block comes out early
            assert sum(map(len, out)) >= marker.first_latency - marker.context
    out.append(marker.finish())
    streamed = np.concatenate(out)
    assert streamed.dtype == np.float32 and streamed.size == x.size
    np.testing.assert_allclose(streamed, embed_watermark(x, rate, key=KEY), atol=1e-6)
    assert marker.finish().size == 0  # finish resets
