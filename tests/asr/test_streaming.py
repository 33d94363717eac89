"""The streaming layer (StreamingRecognizer, endpointing, decode_streams) with a fake engine that hears bursts of
tone as tokens, and the LAS stream engine (incremental fbank, AttentionASR.stream) on a tiny random MoChA LAS."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import soxr
import torch

from seqspeech.asr.streaming import (
    EndpointConfig,
    IncrementalFrontend,
    StreamEvent,
    StreamFinishedError,
    StreamingRecognizer,
    chunk_samples_from_ms,
    decode_streams,
)
from seqspeech.errors import AudioError, ConfigError

from streaming_fakes import SR, BurstEngine  # noqa: E402


def signal(*parts: tuple[str, float]) -> np.ndarray:
    """("tone", seconds) / ("sil", seconds) pieces -> float32 samples."""
    pieces = []
    for kind, seconds in parts:
        n = round(seconds * SR)
        t = np.arange(n) / SR
        pieces.append(0.5 * np.sin(2 * np.pi * 440 * t) if kind == "tone" else np.zeros(n))
    return np.concatenate(pieces).astype(np.float32)


THREE_UTTERANCES = signal(("sil", 0.3), ("tone", 0.25), ("sil", 0.2), ("tone", 0.15), ("sil", 1.2),
                          ("tone", 0.3), ("sil", 1.2), ("tone", 0.2), ("sil", 0.2), ("tone", 0.1), ("sil", 0.5))
SHORT = signal(("sil", 0.1), ("tone", 0.2), ("sil", 0.1), ("tone", 0.1), ("sil", 0.9), ("tone", 0.3), ("sil", 0.3))


def no_wall(events):
    return [dataclasses.replace(e, wall=0.0) for e in events]


def run(audio, sizes, engine=None, **kw) -> tuple[list[StreamEvent], StreamingRecognizer]:
    """Feed ``audio`` in pieces of ``sizes`` (cycled), then finish; (all events, the stream)."""
    stream = StreamingRecognizer(engine or BurstEngine(), **kw)
    events, pos, i = [], 0, 0
    while pos < len(audio):
        n = sizes[i % len(sizes)]
        events += stream.accept_audio(audio[pos : pos + n])
        pos, i = pos + n, i + 1
    events += stream.finish()
    assert events == stream.events
    return events, stream


# ---------------------------------------------------------------- the recogniser


def test_three_utterances_give_three_finals():
    events, stream = run(THREE_UTTERANCES, [2 * SR])
    finals = stream.results()
    assert [f.text for f in finals] == ["c b", "d", "c b"]
    assert [f.utterance for f in finals] == [0, 1, 2]
    assert stream.text() == "c b d c b"
    first = finals[0]
    assert first.start == pytest.approx(0.55) and first.end == pytest.approx(0.9)
    # rule 2: 0.8 s after the last token, at the next chunk boundary (0.1 s chunks)
    assert 0.8 - 1e-9 <= first.emitted_at - first.end < 0.9
    assert finals[1].emitted_at - finals[1].end >= 0.8 - 1e-9
    assert finals[2].emitted_at == pytest.approx(len(THREE_UTTERANCES) / SR)  # from finish()
    partials = [e for e in events if e.type == "partial"]
    assert [p.text for p in partials if p.utterance == 0] == ["b", "c", "c a", "c b"]
    assert all(p.emitted_at <= f.emitted_at for p in partials for f in finals if f.utterance == p.utterance)
    assert stream.partial() == "" and stream.finished
    assert all(json.loads(json.dumps(e.to_dict()))["type"] in ("partial", "final") for e in events)


@pytest.mark.parametrize("sizes", [[1], [2 * SR], [0, 7, 1600, 333, 5000, 1]])
def test_events_do_not_depend_on_chunk_size(sizes):
    reference, _ = run(SHORT, [1600])
    events, _ = run(SHORT, sizes)
    assert no_wall(events) == no_wall(reference)
    assert [e.type for e in reference].count("final") == 2


def test_int16_equals_float():
    pcm = np.round(SHORT * 32767).astype(np.int16)
    as_int, _ = run(pcm, [1000])
    as_float, _ = run(pcm.astype(np.float64) / 32768, [1000])
    assert no_wall(as_int) == no_wall(as_float) and as_int


def test_rule1_drops_a_long_silence_without_an_event():
    engine = BurstEngine()
    audio = signal(("sil", 3.0), ("tone", 0.2), ("sil", 0.3))
    stream = StreamingRecognizer(engine)
    assert stream.accept_audio(audio[: 3 * SR]) == []
    assert stream._state["ended"] == 1  # reset at 2.4 s: the engine started a new utterance
    stream.accept_audio(audio[3 * SR :])
    (final,) = [e for e in stream.finish() if e.type == "final"]
    assert final.utterance == 0 and final.text == "c" and final.start == pytest.approx(3.2)
    quiet, _ = run(audio, [SR], endpoint=EndpointConfig(enabled=False))
    assert [e.text for e in quiet if e.type == "final"] == ["c"]


def test_rule3_ends_long_utterances():
    audio = np.concatenate([signal(("tone", 0.1), ("sil", 0.1))] * 13)  # 2.6 s, never 0.8 s of silence
    _, stream = run(audio, [4000], endpoint=EndpointConfig(rule3_min_utterance_length=1.0))
    finals = stream.results()
    assert [f.emitted_at for f in finals] == pytest.approx([1.0, 2.0, 2.6])
    assert [len(f.tokens) for f in finals] == [5, 5, 3]
    _, whole = run(audio, [4000])
    assert len(whole.results()) == 1


def test_finish_semantics():
    engine = BurstEngine(chunk_samples=1200)
    stream = StreamingRecognizer(engine)
    stream.accept_audio(signal(("tone", 0.21)))  # two chunks (15 frames) decoded, 960 samples buffered
    assert stream.partial() == "b"
    events = stream.finish()
    assert [(e.type, e.text) for e in events] == [("partial", "c"), ("final", "c")]
    assert engine.calls[-1] == (1, (960,), (True,))  # the shorter last chunk, once, with final=True
    assert stream.finish() == []
    with pytest.raises(StreamFinishedError, match="finished"):
        stream.accept_audio(np.zeros(10, np.float32))
    silent = StreamingRecognizer(BurstEngine())
    silent.accept_audio(np.zeros(5000, np.float32))
    assert silent.finish() == [] and silent.text() == ""  # no final for an utterance without text
    empty = StreamingRecognizer(BurstEngine())
    assert empty.accept_audio(np.zeros(0, np.int16)) == [] and empty.finish() == []


def test_manual_endpoints_with_endpointing_off():
    stream = StreamingRecognizer(BurstEngine(), endpoint=EndpointConfig(enabled=False))
    stream.accept_audio(signal(("tone", 0.2), ("sil", 1.0)))
    assert stream.partial() == "c" and stream.is_endpoint()  # rule 2 holds; the caller decides
    (final,) = stream.reset()
    assert final.type == "final" and final.text == "c" and stream.partial() == "" and not stream.is_endpoint()
    assert [(e.type, e.text) for e in stream.accept_audio(signal(("tone", 0.1)))] == [("partial", "b")]
    assert [(e.type, e.text) for e in stream.finish()] == [("final", "b")] and stream.text() == "c b"
    assert [e.utterance for e in stream.results()] == [0, 1]


@pytest.mark.parametrize("samples, problem", [
    (np.zeros((2, 100), np.float32), "expected 1-D mono samples, got an array of shape (2, 100)"),
    (np.array([0.0, np.nan, 0.1]), "sample 1 of the chunk is nan"),
    (np.array([0.0, 0.1, np.inf], np.float32), "sample 2 of the chunk is inf"),
    (np.zeros(10, np.int32), "got dtype int32"),
    (np.full(10, 1000.0), "peak of 1000"),
    (np.float32(0.5), "shape ()"),
])
def test_bad_chunks_are_one_line_errors(samples, problem):
    stream = StreamingRecognizer(BurstEngine())
    stream.accept_audio(np.zeros(100, np.float32))
    with pytest.raises(AudioError) as info:
        stream.accept_audio(samples)
    assert problem in str(info.value) and "\n" not in str(info.value)
    assert stream.received_seconds == 100 / SR  # nothing buffered
    assert stream.accept_audio([0.0, 0.25]) == [] and stream.received_seconds == 102 / SR  # lists work


def test_accept_waveform_resamples_in_a_stream():
    audio8k = soxr.resample(SHORT, SR, 8000).astype(np.float32)
    a = StreamingRecognizer(BurstEngine())
    events, pos = [], 0
    for n in [1, 999, 4000, 17] * 1000:
        if pos >= len(audio8k):
            break
        events += a.accept_waveform(8000, audio8k[pos : pos + n])
        pos += n
    events += a.finish()
    whole = soxr.ResampleStream(8000, SR, 1, dtype="float32", quality="HQ").resample_chunk(audio8k, last=True)
    reference, _ = run(whole, [SR])
    assert no_wall(events) == no_wall(reference) and reference
    b = StreamingRecognizer(BurstEngine())
    b.accept_waveform(SR, np.zeros(10, np.float32))
    with pytest.raises(AudioError, match="16000 Hz; got a block at 8000 Hz"):
        b.accept_waveform(8000, np.zeros(10, np.float32))
    with pytest.raises(AudioError, match="positive integer"):
        b.accept_waveform(0, np.zeros(10, np.float32))


def test_decode_streams_batches_independent_streams():
    audios = [THREE_UTTERANCES, SHORT, signal(("sil", 0.5), ("tone", 0.4), ("sil", 1.0), ("tone", 0.2))]
    solo = [no_wall(run(a, [SR])[0]) for a in audios]
    engine = BurstEngine()
    streams = [StreamingRecognizer(engine) for _ in audios]
    other = StreamingRecognizer(BurstEngine())  # another engine: decoded in its own calls
    got = [[] for _ in audios]
    rng = np.random.default_rng(0)
    positions = [0] * len(audios)
    while any(p < len(a) for p, a in zip(positions, audios)):
        for i, a in enumerate(audios):
            n = int(rng.integers(0, 6000))
            streams[i].feed(a[positions[i] : positions[i] + n])
            positions[i] += n
        other.feed(SHORT[:3200])
        for i, events in enumerate(decode_streams([*streams, other])[: len(audios)]):
            got[i] += events
    for i, s in enumerate(streams):
        got[i] += s.finish()
        assert no_wall(got[i]) == solo[i], i
    assert max(size for size, _, _ in engine.calls) == 3  # one engine call served all three streams
    with pytest.raises(ValueError, match="twice"):
        decode_streams([other, other])


@pytest.mark.parametrize("field, value", [("rule1_min_trailing_silence", 0), ("rule2_min_trailing_silence", -1.0),
                                          ("rule3_min_utterance_length", float("nan")), ("enabled", 1)])
def test_endpoint_config_is_validated(field, value):
    with pytest.raises(ConfigError, match=field.split("_")[0] if field == "enabled" else field):
        EndpointConfig(**{field: value})


def test_chunk_ms_bounds():
    assert chunk_samples_from_ms(320) == 5120
    for bad in (0, -5, 5, 60_000, float("inf"), True):
        with pytest.raises(ConfigError, match="chunk_ms must be between 10 and 30000"):
            chunk_samples_from_ms(bad)


# ---------------------------------------------------------------- LAS


def test_incremental_fbank_equals_whole_utterance():
    from seqspeech.data.dataset import FeatureConfig, build_frontend

    frontend = build_frontend(FeatureConfig()).eval()
    wave = (np.random.default_rng(0).standard_normal(12345) * 0.1).astype(np.float32)
    whole = frontend(torch.from_numpy(wave))
    incremental = IncrementalFrontend(frontend)
    state, parts, pos = incremental.new_state(), [], 0
    rng = np.random.default_rng(1)
    while pos < len(wave):
        n = int(rng.choice([0, 1, 159, 160, 399, 400, 1000, 3000]))
        parts.append(incremental(state, wave[pos : pos + n]))
        pos += n
    streamed = torch.cat(parts)
    assert streamed.shape == whole.shape == ((12345 - 400) // 160 + 1, 80) and state.frames == whole.shape[0]
    torch.testing.assert_close(streamed, whole, atol=1e-4, rtol=1e-5)  # FFT batch-size rounding only


@pytest.fixture(scope="module")
def las_asr(tmp_path_factory):
    """A tiny random LAS with a causal listener and MoChA whose hard attention moves and which runs long."""
    from seqspeech.asr.attention_asr import AttentionASR

    asr = AttentionASR.from_path(_las_package(tmp_path_factory.mktemp("las"), attention="mocha",
                                              bidirectional=False), lm=False)
    model = asr.model
    with torch.no_grad():
        model.output[-1].bias[model.sos_eos] = -5.0
        for layer in (model.attention.monotonic.query_proj, model.attention.monotonic.key_proj):
            layer.weight.mul_(10.0)
        model.attention.monotonic.key_proj.bias.mul_(10.0)
    return asr


def _las_package(directory, family="las", **overrides):
    from seqspeech.asr.aed import AEDConfig, aed_model_from_config
    from seqspeech.asr.las import LASConfig, las_model_from_config
    from seqspeech.asr.package import save_package
    from seqspeech.data.dataset import FeatureConfig
    from seqspeech.nn.conformer import ConformerConfig
    from seqspeech.text.tokenizers import CharTokenizer

    tokenizer = CharTokenizer.train(["hello world"])
    torch.manual_seed(0)
    if family == "aed":
        config = AEDConfig(vocab_size=tokenizer.vocab_size, decoder_layers=1, decoder_heads=2, decoder_ff=16,
                           encoder=ConformerConfig(d_model=16, num_layers=1, num_heads=2, conv_kernel=3,
                                                   subsampling_channels=4))
        model = aed_model_from_config(config, feature_mean=torch.randn(80), feature_std=torch.rand(80) + 0.5)
    else:
        config = LASConfig(vocab_size=tokenizer.vocab_size, listener_layers=2, listener_hidden=8, pyramid_levels=2,
                           attention_dim=8, embed_dim=8, decoder_hidden=8, chunk_size=2, monotonic_init_r=0.0,
                           **overrides)
        model = las_model_from_config(config, feature_mean=torch.randn(80), feature_std=torch.rand(80) + 0.5)
    return save_package(directory / "model.safetensors", family, model, config, FeatureConfig(), tokenizer)


def test_las_stream_equals_offline_streamer(las_asr):
    from seqspeech.asr.las_streaming import LASStreamer

    wave = (np.random.default_rng(3).standard_normal(int(1.3 * SR)) * 0.2).astype(np.float32)
    stream = las_asr.stream(chunk_ms=100, endpoint=EndpointConfig(enabled=False))
    events, pos = [], 0
    for n in [700, 1, 3000, 0, 2222] * 20:
        events += stream.accept_audio(wave[pos : pos + n])
        pos += n
    events += stream.finish()
    (final,) = stream.results()
    reference = LASStreamer(las_asr.model, max_len_ratio=las_asr.options.max_length_ratio)
    features = las_asr.frontend(torch.from_numpy(wave))
    expected = reference.push(features) + reference.finish()
    assert len(expected) > 3 and list(final.tokens) == expected
    assert final.text == las_asr.tokenizer.decode(expected)
    offline = las_asr.model.greedy(features[None], torch.tensor([len(features)]),
                                   max_len_ratio=las_asr.options.max_length_ratio)[0].tokens
    assert list(final.tokens) == offline
    assert any(e.type == "partial" and e.emitted_at < 1.2 for e in events)  # tokens came out mid-stream
    assert 0 < final.start <= final.end <= len(wave) / SR + 1e-9
    # a second stream of the same options shares the engine; streams interleaved stay independent
    a, b = (las_asr.stream(chunk_ms=100, endpoint=EndpointConfig(enabled=False)) for _ in range(2))
    assert a.engine is b.engine is stream.engine
    a.feed(wave)
    b.feed(wave[::-1].copy())
    decode_streams([a, b])
    a.finish()
    assert a.text() == final.text


@pytest.mark.parametrize("family, overrides, problem", [
    ("aed", {}, "an AED model cannot stream"),
    ("las", {}, "its listener is bidirectional"),
    ("las", {"bidirectional": False, "attention": "location"}, "its location attention looks at the whole"),
])
def test_models_that_cannot_stream_say_why(tmp_path, family, overrides, problem):
    from seqspeech.asr.attention_asr import AttentionASR

    asr = AttentionASR.from_path(_las_package(tmp_path, family, **overrides), lm=False)
    with pytest.raises(ConfigError) as info:
        asr.stream()
    message = str(info.value)
    assert problem in message and "monotonic or MoChA" in message and "\n" not in message


def test_las_stream_options_are_checked(las_asr):
    with pytest.raises(ConfigError, match="chunk_ms"):
        las_asr.stream(chunk_ms=0)
    with pytest.raises(ConfigError, match="lookahead"):
        las_asr.stream(lookahead=-1)
