"""seqspeech.audio.io: decoding, resampling, validation errors and streaming windows."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from seqspeech.audio import io as audio_io
from seqspeech.audio.constants import SAMPLE_RATE
from seqspeech.audio.io import audio_info, iter_audio_windows, load_audio
from seqspeech.errors import AudioError

SPEECH_TEXT = "The quick brown fox jumps over the lazy dog."
TONE_HZ = 440.0
TONE_AMPLITUDE = 0.5
RESAMPLE_ATOL = 2e-3  # soxr HQ against the analytic tone, away from the edges
EDGE = 200  # samples ignored at each end where the resampler's filter runs off the signal

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg CLI is not installed")


def tone(rate: int, seconds: float, freq: float = TONE_HZ) -> np.ndarray:
    """``(round(seconds * rate),)`` float32 sine."""
    t = np.arange(round(seconds * rate)) / rate
    return (TONE_AMPLITUDE * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def ffmpeg_convert(src: Path, dst: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *args, str(dst)], check=True)
    return dst


@pytest.fixture(scope="module")
def speech_wav(synth_speech) -> Path:
    return synth_speech(SPEECH_TEXT)


# ---------------------------------------------------------------- decoding


def test_load_wav_is_float32_mono_at_16k(speech_wav):
    info = sf.info(str(speech_wav))
    audio = load_audio(speech_wav)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == pytest.approx(info.duration * SAMPLE_RATE, abs=1)
    assert 0.05 < np.abs(audio).max() <= 1.0


def test_str_path_and_pathlike_agree(speech_wav):
    np.testing.assert_array_equal(load_audio(str(speech_wav)), load_audio(speech_wav))


@pytest.mark.parametrize("fmt", ["flac", "ogg", "mp3"])
def test_soundfile_formats(speech_wav, tmp_path, fmt):
    reference = load_audio(speech_wav)
    data, rate = sf.read(str(speech_wav), dtype="float32")
    path = tmp_path / f"speech.{fmt}"
    sf.write(str(path), data, rate, format=fmt.upper() if fmt != "ogg" else "OGG")
    audio = load_audio(path)
    assert abs(len(audio) - len(reference)) <= 0.01 * len(reference)
    n = min(len(audio), len(reference))
    if fmt == "flac":  # lossless
        np.testing.assert_allclose(audio, reference, atol=1e-6)
    else:  # lossy codecs: still clearly the same signal
        assert np.corrcoef(audio[:n], reference[:n])[0, 1] > 0.9


def test_bytes_input_equals_path(speech_wav):
    np.testing.assert_array_equal(load_audio(speech_wav.read_bytes()), load_audio(speech_wav))


def test_stdin_dash(speech_wav, monkeypatch):
    class FakeStdin:
        buffer = io.BytesIO(speech_wav.read_bytes())

    monkeypatch.setattr(sys, "stdin", FakeStdin())
    np.testing.assert_array_equal(load_audio("-"), load_audio(speech_wav))


def test_empty_stdin(monkeypatch):
    class FakeStdin:
        buffer = io.BytesIO(b"")

    monkeypatch.setattr(sys, "stdin", FakeStdin())
    with pytest.raises(AudioError, match=r"<stdin>: audio input is empty"):
        load_audio("-")


@needs_ffmpeg
def test_m4a_through_ffmpeg(speech_wav, tmp_path):
    m4a = ffmpeg_convert(speech_wav, tmp_path / "speech.m4a", "-c:a", "aac", "-b:a", "96k")
    with pytest.raises(sf.LibsndfileError):
        sf.info(str(m4a))  # really needs the fallback
    reference = load_audio(speech_wav)
    audio = load_audio(m4a)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - len(reference)) < 0.05 * SAMPLE_RATE  # AAC adds at most a frame or two
    np.testing.assert_array_equal(load_audio(m4a.read_bytes()), audio)
    # AAC's encoder delay shifts the signal by a few ms; the best lag must show the same waveform
    n = min(len(audio), len(reference))
    lags = range(3000)
    best = max(lags, key=lambda lag: float(np.dot(audio[lag:n], reference[: n - lag])))
    assert np.corrcoef(audio[best:n], reference[: n - best])[0, 1] > 0.95
    duration, rate = audio_info(m4a)
    assert rate == sf.info(str(speech_wav)).samplerate
    assert duration == pytest.approx(sf.info(str(speech_wav)).duration, abs=0.05)


@needs_ffmpeg
def test_wav_from_a_pipe_writer_is_not_called_truncated(speech_wav, tmp_path):
    """Streaming writers put 0xFFFFFFFF in the size fields; that is not truncation."""
    piped = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(speech_wav), "-f", "wav", "-"],
        capture_output=True,
        check=True,
    ).stdout
    path = tmp_path / "piped.wav"
    path.write_bytes(piped)
    np.testing.assert_array_equal(load_audio(path), load_audio(speech_wav))


# ---------------------------------------------------------------- resampling


@pytest.mark.parametrize("native_rate", [22050, 44100, 8000])
def test_resampling_from_file(tmp_path, native_rate):
    path = tmp_path / f"tone{native_rate}.wav"
    sf.write(str(path), tone(native_rate, 1.0), native_rate, subtype="FLOAT")
    audio = load_audio(path)
    expected = tone(SAMPLE_RATE, 1.0)
    assert len(audio) == len(expected)
    np.testing.assert_allclose(audio[EDGE:-EDGE], expected[EDGE:-EDGE], atol=RESAMPLE_ATOL)


def test_resampling_to_other_rate(speech_wav):
    assert len(load_audio(speech_wav, sr=8000)) == pytest.approx(len(load_audio(speech_wav)) / 2, abs=1)


def test_stereo_file_is_averaged(tmp_path):
    left, right = tone(SAMPLE_RATE, 0.5), tone(SAMPLE_RATE, 0.5, freq=1000.0)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([left, right], axis=1), SAMPLE_RATE, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), (left + right) / 2, atol=1e-7)


# ---------------------------------------------------------------- arrays


def test_float_array_passes_through_as_a_copy():
    samples = tone(SAMPLE_RATE, 0.1)
    audio = load_audio(samples)
    np.testing.assert_array_equal(audio, samples)
    audio[0] = 1.0
    assert samples[0] != 1.0


def test_int16_array_is_scaled():
    ints = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    np.testing.assert_allclose(load_audio(ints), [0.0, 0.5, -1.0, 32767 / 32768])


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
def test_multichannel_array_downmix(layout):
    channels = np.stack([tone(SAMPLE_RATE, 0.1), np.zeros(SAMPLE_RATE // 10, np.float32)])
    array = channels if layout == "channels_first" else channels.T
    np.testing.assert_allclose(load_audio(array), channels.mean(axis=0), atol=1e-7)


def test_torch_tensor_and_source_sr():
    samples = tone(44100, 1.0)
    audio = load_audio(torch.from_numpy(samples).to(torch.float64), source_sr=44100)
    expected = tone(SAMPLE_RATE, 1.0)
    assert len(audio) == len(expected)
    np.testing.assert_allclose(audio[EDGE:-EDGE], expected[EDGE:-EDGE], atol=RESAMPLE_ATOL)
    np.testing.assert_array_equal(load_audio(torch.from_numpy(expected)), expected)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros(100, dtype=np.int64), "dtype int64"),
        (np.zeros(100, dtype=bool), "dtype bool"),
        (np.zeros(100, dtype=np.complex64), "dtype complex64"),
        (np.zeros((2, 3, 100), dtype=np.float32), r"shape \(2, 3, 100\)"),
        (np.zeros((100, 100), dtype=np.float32), r"shape \(100, 100\)"),
        (np.zeros(0, dtype=np.float32), "no audio samples"),
        (np.array([0.0, np.nan, 0.1], dtype=np.float32), "NaN/inf"),
        (np.array([0.0, np.inf], dtype=np.float64), "NaN/inf"),
    ],
)
def test_bad_arrays(array, message):
    with pytest.raises(AudioError, match=message):
        load_audio(array)


def test_bad_source_type_and_rate():
    with pytest.raises(AudioError, match="unsupported audio source of type list"):
        load_audio([0.0, 0.1])
    with pytest.raises(AudioError, match="sr must be a positive integer"):
        load_audio(np.zeros(10, np.float32), sr=0)
    with pytest.raises(AudioError, match="source_sr"):
        load_audio(np.zeros(10, np.float32), source_sr=-1)


# ---------------------------------------------------------------- bad files


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match=r"nope\.wav: audio file not found"):
        load_audio(tmp_path / "nope.wav")


def test_directory(tmp_path):
    with pytest.raises(AudioError, match="is a directory"):
        load_audio(tmp_path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.wav: audio file is empty \(0 bytes\)"):
        load_audio(path)
    with pytest.raises(AudioError, match="<bytes>: audio input is empty"):
        load_audio(b"")


def test_valid_header_without_samples(tmp_path):
    path = tmp_path / "nosamples.wav"
    sf.write(str(path), np.zeros(0, np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match=r"nosamples\.wav: contains no audio samples"):
        load_audio(path)


def test_header_only_wav_is_truncated(speech_wav, tmp_path):
    path = tmp_path / "header_only.wav"
    path.write_bytes(speech_wav.read_bytes()[:44])
    with pytest.raises(AudioError, match=r"header_only\.wav: truncated audio file"):
        load_audio(path)


def test_truncated_wav(speech_wav, tmp_path):
    path = tmp_path / "cut.wav"
    data = speech_wav.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=r"cut\.wav: truncated audio file: header declares \d+ bytes"):
        load_audio(path)
    with pytest.raises(AudioError, match=r"cut\.wav: truncated"):
        audio_info(path)


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.99])
def test_truncated_flac(speech_wav, tmp_path, fraction):
    full = tmp_path / "full.flac"
    sf.write(str(full), *sf.read(str(speech_wav)), format="FLAC")
    data = full.read_bytes()
    path = tmp_path / "cut.flac"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(AudioError, match=r"cut\.flac: (corrupt or truncated|truncated)"):
        load_audio(path)


@needs_ffmpeg
def test_random_bytes_named_wav(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(AudioError, match=r"noise\.wav: unknown, unsupported or corrupt audio .*ffmpeg:"):
        load_audio(path)
    with pytest.raises(AudioError, match=r"noise\.wav: unknown, unsupported or corrupt audio .*ffprobe:"):
        audio_info(path)


def test_unknown_format_without_ffmpeg_says_so(tmp_path, monkeypatch):
    path = tmp_path / "noise.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    monkeypatch.setattr(audio_io.shutil, "which", lambda name: None)
    with pytest.raises(
        AudioError, match=r"noise\.wav: unknown or unsupported audio format.*ffmpeg is not on PATH"
    ):
        load_audio(path)
    with pytest.raises(AudioError, match="ffmpeg is not on PATH"):
        next(iter_audio_windows(path, 1.0))
    with pytest.raises(AudioError, match="ffprobe is not on PATH"):
        audio_info(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_float_wav(tmp_path, bad):
    samples = tone(SAMPLE_RATE, 0.5)
    samples[4000] = bad
    path = tmp_path / "bad.wav"
    sf.write(str(path), samples, SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"bad\.wav: contains 1 NaN/inf sample values \(first at 0\.250 s\)"):
        load_audio(path)
    with pytest.raises(AudioError, match="NaN/inf"):
        list(iter_audio_windows(path, 0.1))


# ---------------------------------------------------------------- audio_info


def test_audio_info_reads_header(speech_wav, tmp_path):
    info = sf.info(str(speech_wav))
    assert audio_info(speech_wav) == (info.frames / info.samplerate, info.samplerate)
    with pytest.raises(AudioError, match="not found"):
        audio_info(tmp_path / "missing.flac")


# ---------------------------------------------------------------- windows


@pytest.fixture(scope="module")
def long_flac(tmp_path_factory, speech_wav) -> Path:
    """~10 s of 22.05 kHz stereo speech: several streaming blocks, downmixed and resampled on the way."""
    speech, rate = sf.read(str(speech_wav), dtype="float32")
    mono = np.tile(speech, int(np.ceil(10 * rate / len(speech))))
    path = tmp_path_factory.mktemp("long") / "long.flac"
    sf.write(str(path), np.stack([mono, 0.5 * mono], axis=1), rate, format="FLAC")
    return path


def test_windows_concatenate_to_load_audio(long_flac):
    reference = load_audio(long_flac)
    window_s = 1.5
    pieces = list(iter_audio_windows(long_flac, window_s))
    starts = [start for start, _ in pieces]
    assert starts == pytest.approx([i * window_s for i in range(len(pieces))])
    assert all(len(chunk) == int(window_s * SAMPLE_RATE) for _, chunk in pieces[:-1])
    joined = np.concatenate([chunk for _, chunk in pieces])
    assert len(joined) == len(reference)
    np.testing.assert_allclose(joined, reference, atol=1e-4)


def test_windows_stream_without_reading_the_whole_file(long_flac, monkeypatch):
    reads: list[int] = []
    real_read_block = audio_io._read_block

    def counting_read_block(handle, name, frames=-1):
        reads.append(frames)
        return real_read_block(handle, name, frames)

    monkeypatch.setattr(audio_io, "_read_block", counting_read_block)
    windows = iter_audio_windows(long_flac, 0.5)
    next(windows)
    assert reads == [round(audio_io.STREAM_BLOCK_SECONDS * sf.info(str(long_flac)).samplerate)]
    windows.close()


def test_overlapping_windows_are_slices_of_the_stream(long_flac):
    reference = load_audio(long_flac)
    window, overlap = 2.0, 0.5
    pieces = list(iter_audio_windows(long_flac, window, overlap_s=overlap))
    for start, chunk in pieces:
        begin = round(start * SAMPLE_RATE)
        np.testing.assert_allclose(chunk, reference[begin : begin + len(chunk)], atol=1e-4)
    last_start, last = pieces[-1]
    assert round(last_start * SAMPLE_RATE) + len(last) == len(reference)
    assert len(last) > overlap * SAMPLE_RATE  # never a window made only of overlap


def test_window_longer_than_file(speech_wav):
    pieces = list(iter_audio_windows(speech_wav, 100.0))
    assert len(pieces) == 1 and pieces[0][0] == 0.0
    np.testing.assert_allclose(pieces[0][1], load_audio(speech_wav), atol=1e-4)


@needs_ffmpeg
def test_windows_through_ffmpeg(speech_wav, tmp_path):
    m4a = ffmpeg_convert(speech_wav, tmp_path / "speech.m4a", "-c:a", "aac")
    joined = np.concatenate([chunk for _, chunk in iter_audio_windows(m4a, 0.25)])
    np.testing.assert_array_equal(joined, load_audio(m4a))


def test_window_errors(speech_wav, tmp_path):
    with pytest.raises(AudioError, match="window_s > 0"):
        next(iter_audio_windows(speech_wav, 0.0))
    with pytest.raises(AudioError, match="overlap_s < window_s"):
        next(iter_audio_windows(speech_wav, 1.0, overlap_s=1.0))
    with pytest.raises(AudioError, match="not found"):
        next(iter_audio_windows(tmp_path / "missing.wav", 1.0))
    cut = tmp_path / "cut.wav"
    cut.write_bytes(speech_wav.read_bytes()[:1000])
    with pytest.raises(AudioError, match="truncated"):
        next(iter_audio_windows(cut, 1.0))
