"""One package format for every trained family, and AttentionASR inference (LAS and AED) on tiny random models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import seqspeech
from seqspeech import zoo
from seqspeech.asr.aed import AEDConfig, aed_model_from_config
from seqspeech.asr.attention_asr import AttentionASR
from seqspeech.asr.las import LASConfig, las_model_from_config
from seqspeech.asr.package import load_package, model_family, save_package
from seqspeech.data.dataset import FeatureConfig
from seqspeech.errors import ConfigError, ModelLoadError
from seqspeech.metrics.wer import cer
from seqspeech.nn.conformer import ConformerConfig
from seqspeech.text.tokenizers import CharTokenizer

TOKENIZER = CharTokenizer.train(["hello world"])
CONFIGS = {
    "las": LASConfig(vocab_size=TOKENIZER.vocab_size, listener_layers=2, listener_hidden=8, attention_dim=8,
                     embed_dim=8, decoder_hidden=8, ctc_weight=0.3),
    "aed": AEDConfig(vocab_size=TOKENIZER.vocab_size, decoder_layers=1, decoder_heads=2, decoder_ff=16,
                     encoder=ConformerConfig(d_model=16, num_layers=1, num_heads=2, conv_kernel=3,
                                             subsampling_channels=4)),
}
BUILDERS = {"las": las_model_from_config, "aed": aed_model_from_config}


def _save(tmp_path, family: str, dtype=torch.float32, extra=None):
    torch.manual_seed(0)
    model = BUILDERS[family](CONFIGS[family], feature_mean=torch.randn(80), feature_std=torch.rand(80) + 0.5)
    path = save_package(tmp_path / "model.safetensors", family, model, CONFIGS[family], FeatureConfig(), TOKENIZER,
                        dtype=dtype, extra=extra)
    return model, path


@pytest.mark.parametrize("family", ["las", "aed"])
def test_package_round_trip_and_family_detection(tmp_path, family):
    model, path = _save(tmp_path, family, extra={"decode": {"beam_size": 3, "eos_threshold": 1.5}})
    pkg = load_package(path, device="cpu")
    assert pkg.family == family and pkg.config == CONFIGS[family] and pkg.tokenizer == TOKENIZER
    for key, value in model.state_dict().items():
        assert torch.equal(pkg.model.state_dict()[key], value), key
    assert pkg.decode == {"beam_size": 3, "eos_threshold": 1.5}
    assert model_family(path) == family and model_family(tmp_path) == family
    assert zoo.resolve(str(tmp_path))[1] == family
    with pytest.raises(ModelLoadError, match=f"a '{family}' model, expected 'ctc'"):
        load_package(path, family="ctc")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model")
    assert model_family(junk) is None
    with pytest.raises(ModelLoadError, match="junk.safetensors"):
        load_package(junk)


@pytest.mark.parametrize("family", ["las", "aed"])
def test_transcribe_windows_long_audio_and_stored_options(tmp_path, family):
    _save(tmp_path, family, extra={"decode": {"beam_size": 2, "max_length_ratio": 0.5}})
    asr = seqspeech.load_model(str(tmp_path), device="cpu")
    assert isinstance(asr, AttentionASR) and asr.family == family
    assert asr.options.beam_size == 2 and asr.options.max_length_ratio == 0.5
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(int((asr.window_s * 2 + 1) * 16000))).astype(np.float32)
    t = asr.transcribe(audio, beam_size=1)
    assert t.duration == pytest.approx(asr.window_s * 2 + 1)
    assert all(s.start >= 0 and s.end <= t.duration + 1e-6 for s in t.segments)
    ctc_options = {"ctc_weight": 0.3} if CONFIGS[family].ctc_weight > 0 else {}
    batch = asr.transcribe_batch([audio[:16000], audio[:24000]], beam_size=2, **ctc_options)
    assert len(batch) == 2
    with pytest.raises(ConfigError, match="word_bonus"):
        asr.transcribe(audio[:16000], word_bonus=1.0)
    with pytest.raises(ConfigError, match="beam_size"):
        asr.transcribe(audio[:16000], beam_size=0)


@pytest.mark.parametrize("family", ["las", "aed"])
def test_alignment_of_a_given_text_has_one_row_per_token_plus_the_end(tmp_path, family):
    _save(tmp_path, family)
    asr = AttentionASR.from_path(tmp_path, lm=False)
    audio = (0.1 * np.random.default_rng(1).standard_normal(24000)).astype(np.float32)
    alignment = asr.alignment(audio, "hello world")
    assert alignment.weights.shape[0] == len("hello world") + 1
    assert alignment.weights.shape[1] == asr.encode([audio])[1][0]
    assert alignment.labels[-1] == "</s>" and len(alignment.labels) == alignment.weights.shape[0]
    assert 0.0 <= alignment.metrics.focus_rate <= 1.0 and alignment.text == "hello world"


def test_missing_lm_file_is_a_clear_error(tmp_path):
    _save(tmp_path, "aed")
    with pytest.raises(ModelLoadError, match="no-lm.arpa"):
        AttentionASR.from_path(tmp_path, lm=tmp_path / "no-lm.arpa")


@pytest.mark.slow
def test_shipped_aed_recognises_unseen_sentences(synth_speech):
    """The zoo's AED model (trained by recipes/synth_en/aed_conformer.yaml) on sentences it never saw."""
    try:
        asr = seqspeech.load_model("aed-conformer-synth-en", device="cpu")
    except ModelLoadError as e:
        pytest.skip(str(e))
    card = json.loads((asr.package.path.parent / "model_card.json").read_text())
    assert card["name"] == "aed-conformer-synth-en" and card["family"] == "aed"
    refs = ["the birch canoe slid on the smooth planks", "glue the sheet to the dark blue background"]
    wavs = [str(synth_speech(r, voice="en-us")) for r in refs]
    hyps = [t.text for t in asr.transcribe_batch(wavs)]
    assert cer(refs, hyps) < 0.25, hyps


@pytest.mark.slow
def test_shipped_las_transcribes_unseen_sentences(synth_speech):
    """The zoo's LAS model (recipes/synth_en/las_location.yaml, 80 min): far from the AED, but it must read speech."""
    try:
        asr = seqspeech.load_model("las-synth-en", device="cpu")
    except ModelLoadError as e:
        pytest.skip(str(e))
    card = json.loads((asr.package.path.parent / "model_card.json").read_text())
    assert card["name"] == "las-synth-en" and card["family"] == "las"
    refs = ["the birch canoe slid on the smooth planks", "glue the sheet to the dark blue background"]
    hyps = [t.text for t in asr.transcribe_batch([str(synth_speech(r, voice="en-us")) for r in refs])]
    assert cer(refs, hyps) < 0.5, hyps
