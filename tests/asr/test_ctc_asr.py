"""CTC model packaging (safetensors + metadata), loading by path and by zoo name, and CTCASR inference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import seqspeech
from seqspeech import zoo
from seqspeech.asr.ctc import CTCConfig, ctc_model_from_config
from seqspeech.asr.ctc_asr import CTCASR, WINDOW_S, is_ctc_model, load_ctc, save_ctc
from seqspeech.data.dataset import FeatureConfig
from seqspeech.errors import ConfigError, ModelLoadError
from seqspeech.metrics.wer import cer
from seqspeech.nn.conformer import ConformerConfig
from seqspeech.text.tokenizers import BPETokenizer, CharTokenizer

TINY = ConformerConfig(d_model=16, num_layers=1, num_heads=2, conv_kernel=3, subsampling_channels=4)


def _tiny(tmp_path, tokenizer=None, dtype=torch.float16, extra=None):
    tokenizer = tokenizer or CharTokenizer.train(["hello world"])
    config = CTCConfig(vocab_size=tokenizer.vocab_size, encoder=TINY)
    torch.manual_seed(0)
    model = ctc_model_from_config(config, feature_mean=torch.randn(80), feature_std=torch.rand(80) + 0.5)
    path = save_ctc(tmp_path / "model.safetensors", model, config, FeatureConfig(), tokenizer, dtype=dtype,
                    extra=extra)
    return model, config, tokenizer, path


def test_save_load_round_trip_keeps_weights_config_and_tokenizer(tmp_path):
    model, config, tokenizer, path = _tiny(tmp_path, dtype=torch.float32)
    pkg = load_ctc(path, device="cpu")
    assert pkg.config == config and pkg.tokenizer == tokenizer and pkg.features == FeatureConfig()
    for key, value in model.state_dict().items():
        assert torch.equal(pkg.model.state_dict()[key], value), key
    assert is_ctc_model(path) and is_ctc_model(tmp_path)  # a folder holding model.safetensors
    assert zoo.resolve(str(path))[1] == "ctc"


def test_fp16_package_is_close_and_bpe_tokenizers_travel_too(tmp_path):
    bpe = BPETokenizer.train(["the cat sat on the mat", "a dog ran in the park"] * 20, vocab_size=30)
    model, _, _, path = _tiny(tmp_path, tokenizer=bpe)
    pkg = load_ctc(path, device="cpu")
    assert pkg.tokenizer.encode("the cat") == bpe.encode("the cat")
    x, lens = torch.randn(2, 120, 80), torch.tensor([120, 90])
    model.eval()
    ref, _ = model.encode(x, lens)
    got, _ = pkg.model.encode(x, lens)
    assert torch.allclose(ref, got, atol=0.05)


def test_decoding_defaults_travel_with_the_model(tmp_path):
    _, _, _, path = _tiny(tmp_path, extra={"decode": {"beam_size": 4, "lm_weight": 0.8, "word_bonus": 2.0,
                                                       "lm_order": 3}})
    assert load_ctc(path).decode == {"beam_size": 4, "lm_weight": 0.8, "word_bonus": 2.0}
    asr = CTCASR.from_path(path, lm=False, word_bonus=0.5)  # explicit arguments win
    assert (asr.beam_size, asr.lm_weight, asr.word_bonus) == (4, 0.8, 0.5)


def test_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="no such file"):
        load_ctc(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="junk.safetensors"):
        load_ctc(junk)
    assert not is_ctc_model(junk)
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(other), metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="not a seqspeech model"):
        load_ctc(other)


def test_transcribe_windows_long_audio_and_rejects_unknown_options(tmp_path):
    _, _, _, path = _tiny(tmp_path)
    asr = seqspeech.load_model(str(path), device="cpu")
    assert isinstance(asr, CTCASR) and asr.lm() is None
    rng = np.random.default_rng(0)
    long_audio = (0.1 * rng.standard_normal(int((WINDOW_S * 2 + 3) * 16000))).astype(np.float32)
    t = asr.transcribe(long_audio)
    assert t.duration == pytest.approx(WINDOW_S * 2 + 3)
    assert all(s.start < s.end <= t.duration + 1e-6 for s in t.segments)
    assert t.text == " ".join(s.text for s in t.segments)
    with pytest.raises(ConfigError, match="temperature"):
        asr.transcribe(long_audio, temperature=0.5)


def test_repo_models_folder_and_env_override(tmp_path, monkeypatch):
    model_dir = tmp_path / "ctc-conformer-synth-en"
    model_dir.mkdir()
    _tiny(model_dir)
    monkeypatch.setenv("SEQSPEECH_MODELS", str(tmp_path))
    path, family = zoo.resolve("ctc-conformer-synth-en")
    assert path == model_dir and family == "ctc"
    monkeypatch.setenv("SEQSPEECH_MODELS", str(tmp_path / "nowhere"))
    locate = zoo._repo_model("no-such-model")
    with pytest.raises(ModelLoadError, match="no-such-model"):
        locate()


@pytest.mark.slow
def test_shipped_model_recognises_unseen_sentences(synth_speech):
    """The zoo's CTC model (trained by recipes/synth_en) on sentences and a voice it never saw in training."""
    try:
        asr = seqspeech.load_model("ctc-conformer-synth-en", device="cpu")
    except ModelLoadError as e:
        pytest.skip(str(e))
    card = json.loads((asr.package.path.parent / "model_card.json").read_text())
    assert card["name"] == "ctc-conformer-synth-en"
    refs = ["the birch canoe slid on the smooth planks", "glue the sheet to the dark blue background"]
    wavs = [str(synth_speech(r, voice="en-us")) for r in refs]
    hyps = [t.text for t in asr.transcribe_batch(wavs, beam_size=8)]
    assert cer(refs, hyps) < 0.25, hyps
