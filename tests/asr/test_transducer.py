"""Transducer model and its streaming engine: losses agree, a packaged model loads, and streamed recognition equals
offline recognition of the same chunked model, token for token (transducer search and the chunked CTC head)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from seqspeech.asr.package import WEIGHTS_FILENAME, save_package
from seqspeech.asr.streaming import EndpointConfig, decode_streams
from seqspeech.asr.transducer import TransducerConfig, transducer_model_from_config
from seqspeech.asr.transducer_asr import TransducerASR, chunk_frames
from seqspeech.data.dataset import FeatureConfig
from seqspeech.errors import ConfigError
from seqspeech.text.tokenizers import CharTokenizer

TEXTS = ["the cat sat", "a dog ran home", "birds sing"]
NO_ENDPOINT = EndpointConfig(enabled=False)


def _config(vocab: int, **overrides: object) -> TransducerConfig:
    data = {"vocab_size": vocab, "input_dim": 80, "joiner_dim": 24, "ctc_weight": 0.2, "specaugment": None,
            "predictor": {"embed_dim": 16, "hidden": 24},
            "encoder": {"d_model": 32, "num_layers": 2, "num_heads": 4, "conv_kernel": 5, "dropout": 0.0,
                        "subsampling_channels": 8, "causal": True, "chunk_sizes": [2, 4, 0], "left_context": 8,
                        "decode_chunk": 4}, **overrides}
    return TransducerConfig.from_dict(data)


@pytest.fixture(scope="module")
def asr(tmp_path_factory) -> TransducerASR:
    """A random tiny model whose joiner is biased so it emits tokens (a random joiner mostly says blank)."""
    tokenizer = CharTokenizer.train(TEXTS)
    config = _config(tokenizer.vocab_size)
    torch.manual_seed(0)
    model = transducer_model_from_config(config).eval()
    with torch.no_grad():
        model.joiner.output.bias[0] -= 1.0  # blank less likely: several tokens per utterance
        model.ctc_head.bias[0] -= 1.0
        for block in model.encoder.blocks:
            block.conv.batch_norm.running_var.fill_(1.5)
    path = tmp_path_factory.mktemp("rnnt") / WEIGHTS_FILENAME
    save_package(path, "transducer", model, config, FeatureConfig(), tokenizer, dtype=torch.float32,
                 extra={"decode": {"method": "modified_beam", "beam_size": 3}})
    return TransducerASR.from_path(path, lm=False)


def _audio(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * (200 + 150 * np.sin(3 * t)) * t) + 0.05 * rng.standard_normal(t.size)).astype(
        np.float32)


def _stream(asr: TransducerASR, audio: np.ndarray, seed: int, **options: object) -> list[int]:
    rng = random.Random(seed)
    stream = asr.stream(endpoint=NO_ENDPOINT, **options)
    pos = 0
    while pos < audio.size:  # pieces of 1 sample to 2 s
        n = rng.choice([1, 7, 333, 1600, 5000, 32000])
        stream.accept_audio(audio[pos : pos + n])
        pos += n
    finals = [e for e in stream.finish() if e.type == "final"]
    assert len(finals) == 1
    return list(finals[0].tokens)


def test_loaded_package_is_a_transducer_with_stored_defaults(asr: TransducerASR) -> None:
    assert asr.family == "transducer" and asr.method == "modified_beam" and asr.beam_size == 3
    assert asr.chunk == 4 and chunk_frames(asr, 320) == 8 and chunk_frames(asr, None) == 4
    with pytest.raises(ConfigError, match="multiple of this model's 40 ms"):
        chunk_frames(asr, 100)


@pytest.mark.parametrize("method", ["greedy", "modified_beam", "beam"])
def test_streamed_transducer_equals_offline_at_the_same_chunk(asr: TransducerASR, method: str) -> None:
    audio = _audio(2.1)
    offline = asr.transcribe(audio, method=method, chunk=8).segments[0].tokens
    assert offline, "the biased joiner emits tokens"
    for seed in ((0, 1) if method == "greedy" else (1,)):
        assert _stream(asr, audio, seed, chunk_ms=320, method=method) == offline


def test_streamed_ctc_head_equals_offline_greedy_ctc(asr: TransducerASR) -> None:
    audio = _audio(2.3, seed=3)
    with torch.inference_mode():
        enc, lens = asr.encode([audio], chunk=4)
        best = asr.model.ctc_log_probs(enc)[0, : lens[0]].argmax(-1).tolist()
    offline = [k for t, k in enumerate(best) if k != 0 and (t == 0 or k != best[t - 1])]
    assert _stream(asr, audio, 2, chunk_ms=160, head="ctc", beam_size=1) == offline


def test_interleaved_streams_are_independent(asr: TransducerASR) -> None:
    a, b = _audio(2.0, seed=4), _audio(1.3, seed=5)
    alone = [_stream(asr, x, 0, method="greedy") for x in (a, b)]
    streams = [asr.stream(endpoint=NO_ENDPOINT, method="greedy") for _ in range(2)]
    assert streams[0].engine is streams[1].engine  # one engine: one batched forward per chunk
    for start in range(0, a.size, 4000):
        for s, x in zip(streams, (a, b)):
            s.feed(x[start : start + 4000])
        decode_streams(streams)
    together = [[e for e in s.finish() if e.type == "final"][0].tokens for s in streams]
    assert [list(t) for t in together] == alone


def test_full_and_pruned_losses_train_the_same_model() -> None:
    """With the band covering the whole lattice the pruned RNN-T loss equals the full one on the same weights."""
    torch.manual_seed(1)
    full = transducer_model_from_config(_config(9, loss="full", ctc_weight=0.0)).train()
    pruned = transducer_model_from_config(_config(9, loss="pruned", ctc_weight=0.0, prune_range=7)).train()
    missing, unexpected = pruned.load_state_dict(full.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("simple_") for k in missing)
    batch = {"features": torch.randn(2, 60, 80), "feature_lens": torch.tensor([60, 45]),
             "tokens": torch.tensor([[1, 2, 3, 4, 5, 6], [3, 4, 5, -1, -1, -1]]), "token_lens": torch.tensor([6, 3])}
    torch.manual_seed(2)
    a = full(batch)
    torch.manual_seed(2)  # the same random chunk size for both
    b = pruned(batch)
    torch.testing.assert_close(a["rnnt"], b["rnnt"], rtol=1e-4, atol=1e-4)
    b["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in pruned.parameters() if p.requires_grad)


def test_a_model_that_cannot_stream_says_why(tmp_path) -> None:
    tokenizer = CharTokenizer.train(TEXTS)
    config = _config(tokenizer.vocab_size, encoder={"d_model": 32, "num_layers": 1, "num_heads": 4,
                                                    "subsampling_channels": 8})
    model = transducer_model_from_config(config).eval()
    path = save_package(tmp_path / WEIGHTS_FILENAME, "transducer", model, config, FeatureConfig(), tokenizer)
    offline_only = TransducerASR.from_path(path, lm=False)
    assert isinstance(offline_only.transcribe(_audio(1.0)).text, str)
    with pytest.raises(ConfigError, match="cannot stream"):
        offline_only.stream()
