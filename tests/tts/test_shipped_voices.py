"""The voices that ship in models/ (recipes/synth_slt/): they must speak words our recogniser reads back, carry the
watermark, follow the controls and stream; the CLI and the demo use them by zoo name."""

from __future__ import annotations

import json

import numpy as np
import pytest

import seqspeech
from seqspeech.audio.io import audio_info
from seqspeech.audio.watermark import detect_watermark
from seqspeech.errors import ModelLoadError
from seqspeech.metrics.wer import wer
from seqspeech.tts.synthesizer import DEFAULT_CHUNK_FRAMES

# Harvard sentences (not in the slt corpus's held-out lists: any English text the voice never saw as audio)
SENTENCES = ["the birch canoe slid on the smooth planks", "glue the sheet to the dark blue background"]


def _voice(name: str):
    try:
        return seqspeech.load_voice(name, device="cpu")
    except ModelLoadError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def whisper():
    return seqspeech.load_model("whisper-tiny.en", device="cpu")


@pytest.mark.slow
@pytest.mark.parametrize("name,acoustic,max_wer", [
    # measured on held-out sentences (results/tts_synth.json): slt 17.2 % ASR-WER on 100 (the recordings 14.9 %),
    # tacotron2-slt 81.6 % on 100
    ("slt", "fastspeech2", 0.5),
    ("tacotron2-slt", "tacotron2", 0.95),
])
def test_shipped_voice_is_intelligible_and_watermarked(name, acoustic, max_wer, whisper):
    voice = _voice(name)
    card = json.loads((voice.acoustic.path.parent / "model_card.json").read_text())
    assert card["name"] == name and card["family"] == "tts" and acoustic in card["architecture"]
    assert voice.acoustic.family == acoustic and voice.vocoder_name == "hifigan"
    waves = [voice.synthesize(text, seed=0) for text in SENTENCES]
    for text, wave in zip(SENTENCES, waves):
        assert wave.dtype == np.float32 and 0.5 < len(wave) / voice.sample_rate < 2.0 * len(text.split())
        assert np.abs(wave).max() <= 1.0 and detect_watermark(wave, voice.sample_rate).present
    hyps = [whisper.transcribe(wave).text for wave in waves]
    assert wer(SENTENCES, hyps) < max_wer, hyps


@pytest.mark.slow
def test_default_voice_controls_and_streaming():
    voice = _voice("slt")
    text = SENTENCES[0]
    base = voice.synthesize(text, watermark=False)
    fast = voice.synthesize(text, speed=1.5, watermark=False)
    assert 0.55 < len(fast) / len(base) < 0.8
    chunks = list(voice.synthesize_stream(text, watermark=False))
    assert len(chunks) > 1
    streamed = np.concatenate(chunks)
    assert len(streamed) == len(base)
    np.testing.assert_allclose(streamed, base, atol=1e-4)  # local decoder window, finite vocoder receptive field


@pytest.mark.slow
def test_default_voice_first_audio_needs_one_acoustic_chunk(monkeypatch):
    """The first watermarked audio comes out after the acoustic model's first mel chunk: the default chunk covers the
    vocoder's look-ahead plus the watermark's short first block and its look-ahead (the first-chunk latency)."""
    voice = _voice("slt")
    produced = []
    decode_windows = voice.acoustic.model.decode_windows

    def counted(jobs):
        chunks = decode_windows(jobs)
        produced.extend(chunk.shape[-1] for chunk in chunks)
        return chunks

    monkeypatch.setattr(voice.acoustic.model, "decode_windows", counted)
    stream = voice.synthesize_stream(SENTENCES[1])
    first = next(stream)
    assert first.size > 0 and produced == [DEFAULT_CHUNK_FRAMES]
    rest = np.concatenate([first, *stream])
    np.testing.assert_allclose(rest, voice.synthesize(SENTENCES[1]), atol=1e-4)  # streamed == offline, marked


@pytest.mark.slow
def test_synthesize_cli_uses_the_default_voice(tmp_path, capsys):
    _voice("slt")
    from seqspeech.cli import main

    out = tmp_path / "hello.wav"
    assert main(["synthesize", "Dr. Smith paid $5 on May 3rd.", "-o", str(out)]) == 0
    seconds, rate = audio_info(out)
    assert rate == 16000 and 1.5 < seconds < 8.0
