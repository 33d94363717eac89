"""The offline cascade's wiring: recogniser -> MT -> voice, one batch per stage, and no translation of nothing."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from seqspeech.errors import DataError
from seqspeech.st.cascade import Cascade
from seqspeech.st.mt import MTConfig, MTModel, Translator
from seqspeech.text.tokenizers import BPETokenizer

TEXTS = {"a.wav": "dónde está la cama", "b.wav": "ellos fueron a la iglesia", "quiet.wav": ""}


class FakeASR:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def transcribe_batch(self, inputs):
        self.batches.append(list(inputs))
        return [types.SimpleNamespace(text=TEXTS[i]) for i in inputs]


class FakeVoice:
    sample_rate = 16000

    def __init__(self) -> None:
        self.spoken: list[str] = []

    def synthesize(self, text: str) -> np.ndarray:
        self.spoken.append(text)
        return np.full(160 * len(text.split()), 0.1, np.float32)


@pytest.fixture()
def cascade():
    tokenizer = BPETokenizer.train(list(TEXTS.values())[:2] + ["where is the bed", "they went to the church"],
                                   vocab_size=30, model_type="unigram")
    torch.manual_seed(0)
    model = MTModel(MTConfig(vocab_size=tokenizer.vocab_size, dim=16, encoder_layers=1, decoder_layers=1, heads=2,
                             ff_dim=32, dropout=0.0)).eval()
    return Cascade(FakeASR(), Translator(model, tokenizer, beam_size=2), FakeVoice())


def test_each_stage_runs_once_per_batch_and_speaks_the_translation(cascade):
    out = cascade.translate_batch(["a.wav", "b.wav"])
    assert cascade.asr.batches == [["a.wav", "b.wav"]]
    assert [o.source_text for o in out] == [TEXTS["a.wav"], TEXTS["b.wav"]]
    assert [o.text for o in out] == cascade.mt.translate([TEXTS["a.wav"], TEXTS["b.wav"]])
    assert cascade.voice.spoken == [o.text for o in out if o.text.strip()]
    for o in out:
        assert o.sample_rate == 16000 and len(o.audio) == 160 * len(o.text.split())
        assert set(o.seconds) == {"asr", "mt", "tts"}
    assert cascade.translate("a.wav", speak=False).audio.size == 0


def test_audio_without_speech_is_an_error_naming_it(cascade):
    with pytest.raises(DataError, match="quiet.wav: no speech recognised"):
        cascade.translate_batch(["a.wav", "quiet.wav"])
    assert cascade.voice.spoken == []  # nothing was spoken for the good input either: one error, no partial output
