"""seqspeech.audio.vad against silero's own ONNX wrapper and get_speech_timestamps."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from seqspeech.audio.io import load_audio
from seqspeech.audio.vad import (
    VAD_CHUNK_SAMPLES,
    VAD_SAMPLE_RATE,
    SileroVAD,
    collect_chunks,
    default_model_path,
    timestamps_from_probs,
)
from seqspeech.errors import AudioError, ModelLoadError

PROB_ATOL = 1e-4
SILENCE_S = 1.0
GAP_S = 0.3  # short pause between two utterances: one segment unless min_silence is shorter
EDGE_TOLERANCE_S = 0.15  # detected speech edges vs. where the synthetic speech really starts and ends

# our keyword -> silero's keyword
SILERO_KWARGS = {
    "threshold": "threshold",
    "min_speech_ms": "min_speech_duration_ms",
    "min_silence_ms": "min_silence_duration_ms",
    "speech_pad_ms": "speech_pad_ms",
    "max_speech_s": "max_speech_duration_s",
    "neg_threshold": "neg_threshold",
}


@pytest.fixture(scope="module")
def silero():
    """silero's own ONNX wrapper and timestamp function (its import sets torch's threads to 1: undone)."""
    threads = torch.get_num_threads()
    silero_vad = pytest.importorskip("silero_vad")
    torch.set_num_threads(threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # silero's own importlib.resources.path call
        wrapper = silero_vad.load_silero_vad(onnx=True)
    return wrapper, silero_vad.get_speech_timestamps


@pytest.fixture(scope="module")
def vad() -> SileroVAD:
    return SileroVAD()


@pytest.fixture(scope="module")
def utterance(synth_speech) -> np.ndarray:
    """Trimmed 16 kHz speech, so its first and last samples are where the voice starts and stops."""
    audio = load_audio(synth_speech("Voice activity detection finds the speech in this recording."))
    voiced = np.flatnonzero(np.abs(audio) > 0.01)
    return audio[voiced[0] : voiced[-1] + 1]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * VAD_SAMPLE_RATE), dtype=np.float32)


@pytest.fixture(scope="module")
def padded(utterance) -> np.ndarray:
    """The utterance with 1 s of silence on each side."""
    return np.concatenate([silence(SILENCE_S), utterance, silence(SILENCE_S)])


@pytest.fixture(scope="module")
def two_utterances(utterance) -> np.ndarray:
    return np.concatenate([silence(SILENCE_S), utterance, silence(GAP_S), utterance, silence(SILENCE_S)])


def test_model_is_found_without_importing_silero():
    code = (
        "import sys; from seqspeech.audio.vad import default_model_path, SileroVAD; "
        "assert default_model_path().is_file(); SileroVAD(); assert 'silero_vad' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert default_model_path().name == "silero_vad.onnx"


def test_constructor_does_no_io():
    vad = SileroVAD("/nonexistent/model.onnx")
    with pytest.raises(ModelLoadError, match=r"model\.onnx: silero VAD model file not found"):
        vad.speech_probs(np.zeros(VAD_CHUNK_SAMPLES, np.float32))


def test_speech_probs_match_silero(vad, silero, padded):
    wrapper, _ = silero
    ours = vad.speech_probs(padded)
    reference = wrapper.audio_forward(torch.from_numpy(padded), VAD_SAMPLE_RATE)[0].numpy()
    assert ours.shape == reference.shape == (int(np.ceil(len(padded) / VAD_CHUNK_SAMPLES)),)
    np.testing.assert_allclose(ours, reference, atol=PROB_ATOL, rtol=0)
    assert ours.max() > 0.9 and ours[: int(0.5 * VAD_SAMPLE_RATE) // VAD_CHUNK_SAMPLES].max() < 0.1


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"threshold": 0.3, "speech_pad_ms": 200},
        {"min_silence_ms": 50, "min_speech_ms": 100},
        {"min_silence_ms": 1000, "max_speech_s": 2.0},  # cut at the pause inside an over-long segment
        {"max_speech_s": 0.5},  # no usable pause: cut at the limit
        {"threshold": 0.7, "neg_threshold": 0.2},
    ],
)
def test_timestamps_match_silero(vad, silero, two_utterances, kwargs):
    wrapper, get_speech_timestamps = silero
    ours = vad.speech_timestamps(two_utterances, **kwargs)
    silero_kwargs = {SILERO_KWARGS[key]: value for key, value in kwargs.items()}
    reference = get_speech_timestamps(torch.from_numpy(two_utterances), wrapper, **silero_kwargs)
    assert ours == reference
    assert ours


def test_timestamps_match_silero_on_padded_clip(vad, silero, padded):
    wrapper, get_speech_timestamps = silero
    assert vad.speech_timestamps(padded) == get_speech_timestamps(torch.from_numpy(padded), wrapper)


def test_timestamps_land_on_the_speech(vad, padded, utterance):
    segments = vad.speech_timestamps(padded)
    assert segments
    start_s = segments[0]["start"] / VAD_SAMPLE_RATE
    end_s = segments[-1]["end"] / VAD_SAMPLE_RATE
    assert start_s == pytest.approx(SILENCE_S, abs=EDGE_TOLERANCE_S)
    assert end_s == pytest.approx(SILENCE_S + len(utterance) / VAD_SAMPLE_RATE, abs=EDGE_TOLERANCE_S)


def test_silence_has_no_speech(vad):
    assert vad.speech_timestamps(silence(2.0)) == []
    assert timestamps_from_probs(np.zeros(10), 10 * VAD_CHUNK_SAMPLES) == []


def test_tensor_input_and_bad_input(vad, padded):
    assert vad.speech_timestamps(torch.from_numpy(padded)[None]) == vad.speech_timestamps(padded)
    with pytest.raises(AudioError, match="shape"):
        vad.speech_probs(np.zeros((2, 1000), np.float32))
    with pytest.raises(AudioError, match="dtype"):
        vad.speech_probs(np.zeros(1000, np.int16))
    with pytest.raises(AudioError, match="NaN"):
        vad.speech_probs(np.full(1000, np.nan, np.float32))


# ---------------------------------------------------------------- chunks


def test_collect_chunks_and_time_mapping():
    audio = np.arange(10 * VAD_SAMPLE_RATE, dtype=np.float32)
    timestamps = [{"start": 16000, "end": 32000}, {"start": 64000, "end": 80000}]
    chunks = collect_chunks(audio, timestamps)
    np.testing.assert_array_equal(chunks.audio, np.concatenate([audio[16000:32000], audio[64000:80000]]))
    assert chunks.to_original_time(0.0) == 1.0
    assert chunks.to_original_time(0.5) == 1.5
    assert chunks.to_original_time(1.0) == 4.0  # the boundary starts the next chunk ...
    assert chunks.to_original_time(1.0, is_end=True) == 2.0  # ... or ends the previous one
    assert chunks.to_original_time(1.25) == 4.25
    assert chunks.to_original_time(2.0, is_end=True) == 5.0
    assert chunks.to_original_time(99.0) == 5.0  # clamped to the collected audio
    np.testing.assert_allclose(chunks.to_original_time(np.array([0.25, 1.75])), [1.25, 4.75])
    # every collected sample maps back to the original sample it came from
    for t in (0.1, 0.9, 1.3, 1.9):
        original = chunks.to_original_time(t)
        assert chunks.audio[round(t * VAD_SAMPLE_RATE)] == audio[round(original * VAD_SAMPLE_RATE)]


def test_collect_chunks_edge_cases(vad, padded):
    empty = collect_chunks(padded, [])
    assert empty.audio.size == 0 and empty.to_original_time(1.5) == 1.5
    with pytest.raises(AudioError, match="timestamps must be sorted"):
        collect_chunks(padded, [{"start": 100, "end": 50}])
    with pytest.raises(AudioError, match="timestamps must be sorted"):
        collect_chunks(padded, [{"start": 0, "end": 500}, {"start": 400, "end": 600}])
    with pytest.raises(AudioError, match="timestamps must be sorted"):
        collect_chunks(padded, [{"start": 0, "end": len(padded) + 1}])
    timestamps = vad.speech_timestamps(padded)
    chunks = collect_chunks(padded, timestamps)
    assert chunks.audio.size == sum(ts["end"] - ts["start"] for ts in timestamps)
    assert chunks.to_original_time(0.0) == timestamps[0]["start"] / VAD_SAMPLE_RATE
