"""Whisper decoding on small random models: prompt layout, language detection, translate, fallback plumbing."""

import numpy as np
import pytest
import torch

from seqspeech.asr.whisper import Whisper, WhisperDims
from seqspeech.asr.whisper_asr import WhisperASR, split_options
from seqspeech.asr.whisper_decoding import compression_ratio, decode, detect_language, initial_tokens
from seqspeech.decoding.options import DecodingOptions
from seqspeech.errors import ConfigError
from seqspeech.text.tokenizers.whisper import WhisperTokenizer


def _tiny(n_vocab: int) -> Whisper:
    torch.manual_seed(0)
    dims = WhisperDims(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=1,
                       n_vocab=n_vocab, n_text_ctx=64, n_text_state=64, n_text_head=2, n_text_layer=1)
    model = Whisper(dims)
    for p in model.parameters():
        if p.is_meta:
            raise AssertionError("meta parameter")
    with torch.no_grad():
        model.decoder.positional_embedding.normal_(0, 0.02)
    return model.eval()


@pytest.fixture(scope="module")
def multilingual():
    model = _tiny(51865)
    return model, WhisperTokenizer.for_vocab(51865)


def test_initial_tokens_layout():
    tok = WhisperTokenizer.for_vocab(51865)
    opts = DecodingOptions(task="translate", prompt="hello there", prefix="so", without_timestamps=True,
                           sample_len=20)
    tokens = initial_tokens(tok, opts, "de", n_text_ctx=64)
    prev = tok.encode(" hello there")
    assert tokens[0] == tok.sot_prev and tokens[1:1 + len(prev)] == prev
    rest = tokens[1 + len(prev):]
    assert rest[:4] == [tok.sot, tok.language_token("de"), tok.translate, tok.no_timestamps]
    assert rest[4:] == tok.encode(" so")


def test_detect_language_is_a_distribution(multilingual):
    model, tok = multilingual
    feats = model.embed_audio(torch.randn(3, 80, 3000))
    langs, probs = detect_language(model, tok, feats)
    assert len(langs) == 3 and len(probs[0]) == 99
    for lang, p in zip(langs, probs):
        assert sum(p.values()) == pytest.approx(1.0, abs=1e-4)
        assert lang == max(p, key=p.get)


def test_decode_detects_language_and_translates(multilingual):
    model, tok = multilingual
    feats = model.embed_audio(torch.randn(2, 80, 3000))
    results = decode(model, tok, feats, DecodingOptions(task="translate", sample_len=5, beam_size=2))
    for r in results:
        assert r.language in r.language_probs and len(r.tokens) <= 5
        assert 0 <= r.no_speech_prob <= 1


def test_english_only_cannot_detect_or_translate():
    model = _tiny(51864)
    tok = WhisperTokenizer.for_vocab(51864)
    feats = model.embed_audio(torch.randn(1, 80, 3000))
    with pytest.raises(ConfigError, match="English-only"):
        detect_language(model, tok, feats)
    with pytest.raises(ConfigError, match="translate"):
        decode(model, tok, feats, DecodingOptions(task="translate", sample_len=3))


def test_transcribe_random_multilingual_model_end_to_end(multilingual):
    model, tok = multilingual
    asr = WhisperASR(model, tok, name="random")
    t = asr.transcribe(np.random.default_rng(0).normal(0, 0.1, 16000 * 3).astype(np.float32), sample_len=6,
                       temperature=(0.0, 0.5), without_timestamps=True)
    assert t.language_probs is not None and t.language in t.language_probs


def test_split_options_and_compression_ratio():
    o = split_options(beam_size=3, temperature=0.2, vad=True, language="en")
    assert o.decoding.beam_size == 3 and o.temperatures == (0.2,) and o.vad
    with pytest.raises(ConfigError, match="nonsense"):
        split_options(nonsense=1)
    assert compression_ratio("the cat " * 50) > 2.4 > compression_ratio("The quick brown fox jumps over it.")
