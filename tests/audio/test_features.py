"""seqspeech.audio.features against the references: openai-whisper's log-mel and kaldi-native-fbank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seqspeech.audio.constants import HOP_LENGTH, N_FRAMES, N_SAMPLES, SAMPLE_RATE
from seqspeech.audio.features import Fbank, WhisperLogMel, log_mel_spectrogram, mel_filters, pad_or_trim
from seqspeech.audio.io import load_audio
from seqspeech.errors import AudioError

whisper = pytest.importorskip(
    "whisper", reason="openai-whisper is the log-mel reference (pip install .[test])"
)
knf = pytest.importorskip(
    "kaldi_native_fbank", reason="kaldi-native-fbank is the fbank reference (pip install .[test])"
)

MEL_ATOL = 1e-4
FILTERS_ATOL = 1e-6
FBANK_ATOL = 1e-3
INT16_SCALE = 32768.0
NOISE_LEVEL = 1e-3  # keeps every mel band well above float32 round-off, where both implementations are exact


@pytest.fixture(scope="module")
def speech(synth_speech) -> np.ndarray:
    return load_audio(synth_speech("Features are computed from this sentence, twice over."))


@pytest.fixture(scope="module")
def noisy_speech(speech) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (speech + NOISE_LEVEL * rng.standard_normal(len(speech))).astype(np.float32)


# ---------------------------------------------------------------- mel filters


@pytest.mark.parametrize("n_mels", [80, 128])
def test_mel_filters_match_whisper_asset(n_mels):
    asset = Path(whisper.__file__).parent / "assets" / "mel_filters.npz"
    with np.load(asset) as npz:
        expected = npz[f"mel_{n_mels}"]
    filters = mel_filters(n_mels)
    assert filters.shape == (n_mels, 201) and filters.dtype == torch.float32
    np.testing.assert_allclose(filters.numpy(), expected, atol=FILTERS_ATOL, rtol=0)


def test_mel_filters_are_cached_per_key():
    assert mel_filters(80) is mel_filters(80, SAMPLE_RATE, 400, "cpu")
    assert mel_filters(80) is not mel_filters(128)
    assert mel_filters(40, sr=8000, n_fft=256).shape == (40, 129)


# ---------------------------------------------------------------- log-mel


@pytest.mark.parametrize("n_mels", [80, 128])
@pytest.mark.parametrize("padding", [0, N_SAMPLES])
def test_log_mel_matches_whisper(speech, n_mels, padding):
    ours = log_mel_spectrogram(speech, n_mels=n_mels, padding=padding)
    reference = whisper.log_mel_spectrogram(torch.from_numpy(speech), n_mels=n_mels, padding=padding)
    assert ours.shape == reference.shape == (n_mels, (len(speech) + padding) // HOP_LENGTH)
    assert (ours - reference).abs().max().item() < MEL_ATOL


@pytest.mark.parametrize("n_mels", [80, 128])
def test_batched_log_mel_uses_per_example_max(speech, n_mels):
    batch = torch.stack([torch.from_numpy(speech), 0.01 * torch.from_numpy(speech[::-1].copy())])
    ours = log_mel_spectrogram(batch, n_mels=n_mels)
    assert ours.shape == (2, n_mels, len(speech) // HOP_LENGTH)
    for i in range(2):
        reference = whisper.log_mel_spectrogram(batch[i], n_mels=n_mels)
        assert (ours[i] - reference).abs().max().item() < MEL_ATOL


def test_module_equals_function_and_keeps_buffers_out_of_checkpoints(speech):
    frontend = WhisperLogMel(n_mels=128)
    batch = torch.from_numpy(pad_or_trim(speech))[None].repeat(2, 1)
    out = frontend(batch)
    assert out.shape == (2, 128, N_FRAMES)
    torch.testing.assert_close(out, log_mel_spectrogram(batch, n_mels=128), rtol=0, atol=0)
    assert frontend.state_dict() == {}


def test_log_mel_accepts_a_path(synth_speech):
    path = synth_speech("Features are computed from this sentence, twice over.")
    torch.testing.assert_close(log_mel_spectrogram(path), log_mel_spectrogram(load_audio(path)))


def test_log_mel_rejects_bad_input():
    with pytest.raises(AudioError, match="too short"):
        log_mel_spectrogram(np.zeros(100, np.float32))
    with pytest.raises(AudioError, match="shape"):
        log_mel_spectrogram(np.zeros((1, 2, 1000), np.float32))
    with pytest.raises(AudioError, match="floating point"):
        log_mel_spectrogram(np.zeros(1000, np.int16))


# ---------------------------------------------------------------- pad_or_trim


@pytest.mark.parametrize("make", [np.asarray, torch.as_tensor])
def test_pad_or_trim(make):
    array = make(np.arange(12, dtype=np.float32).reshape(3, 4))
    padded = pad_or_trim(array, 6)
    assert tuple(padded.shape) == (3, 6)
    np.testing.assert_array_equal(np.asarray(padded)[:, 4:], 0)
    np.testing.assert_array_equal(np.asarray(pad_or_trim(array, 2)), np.asarray(array)[:, :2])
    np.testing.assert_array_equal(np.asarray(pad_or_trim(array, 5, axis=0))[3:], 0)
    assert tuple(pad_or_trim(array, 1, axis=0).shape) == (1, 4)
    assert pad_or_trim(array, 4) is array
    assert pad_or_trim(make(np.ones(10, np.float32))).shape[-1] == N_SAMPLES


def test_pad_or_trim_matches_whisper():
    for length in (5, N_SAMPLES - 1, N_SAMPLES + 7):
        array = np.random.default_rng(length).standard_normal((2, length)).astype(np.float32)
        np.testing.assert_array_equal(pad_or_trim(array), whisper.pad_or_trim(array))
        torch.testing.assert_close(
            pad_or_trim(torch.from_numpy(array)), whisper.pad_or_trim(torch.from_numpy(array))
        )


# ---------------------------------------------------------------- Kaldi fbank


def kaldi_fbank(samples: np.ndarray, num_mel_bins: int = 80) -> np.ndarray:
    """``(frames, num_mel_bins)`` from kaldi-native-fbank with Kaldi's defaults and dither off."""
    options = knf.FbankOptions()
    options.frame_opts.dither = 0.0
    options.mel_opts.num_bins = num_mel_bins
    fbank = knf.OnlineFbank(options)
    fbank.accept_waveform(SAMPLE_RATE, samples.tolist())
    fbank.input_finished()
    return np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])


def test_fbank_matches_kaldi_on_speech(noisy_speech):
    reference = kaldi_fbank(noisy_speech)
    features, lengths = Fbank()(torch.from_numpy(noisy_speech))
    assert features.shape == (1, *reference.shape) and lengths.tolist() == [reference.shape[0]]
    assert np.abs(features[0].numpy() - reference).max() < FBANK_ATOL


def test_fbank_matches_kaldi_at_int16_scale_and_other_bins():
    noise = np.random.default_rng(1).standard_normal(SAMPLE_RATE // 2).astype(np.float32) * 3000.0
    reference = kaldi_fbank(noise, num_mel_bins=40)
    features, _ = Fbank(num_mel_bins=40)(torch.from_numpy(noise))
    assert np.abs(features[0].numpy() - reference).max() < FBANK_ATOL


def test_fbank_batch_with_lengths(noisy_speech):
    short = noisy_speech[: len(noisy_speech) // 2]
    batch = torch.zeros(2, len(noisy_speech))
    batch[0] = torch.from_numpy(noisy_speech)
    batch[1, : len(short)] = torch.from_numpy(short)
    features, lengths = Fbank()(batch, torch.tensor([len(noisy_speech), len(short)]))
    expected = kaldi_fbank(short)
    assert lengths.tolist() == [features.shape[1], expected.shape[0]]
    assert np.abs(features[1, : lengths[1]].numpy() - expected).max() < FBANK_ATOL


def test_fbank_short_input_and_dither():
    fbank = Fbank()
    features, lengths = fbank(torch.zeros(1, 399))
    assert features.shape == (1, 0, 80) and lengths.tolist() == [0]
    assert fbank.num_frames(torch.tensor([400, 559, 560])).tolist() == [1, 1, 2]
    signal = torch.randn(1, 4000)
    dithered = Fbank(dither=1.0)
    assert not torch.equal(dithered.train()(signal)[0], dithered(signal)[0])
    torch.testing.assert_close(dithered.eval()(signal)[0], fbank(signal)[0])
