"""ONNX export: ONNX Runtime against PyTorch, family by family.

Random tiny models (conftest) check the graphs numerically (log-probs, encoder frames, caches, logits, mels, waves)
and the runtime objects' transcripts against the PyTorch classes'; the shipped models check the same end to end on
speech (whisper-tiny.en encoder and decoder, the CTC and transducer transcripts, the slt voice), and int8 exports by
their error rate.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from seqspeech import load_model, load_voice
from seqspeech.asr.whisper_decoding import decode
from seqspeech.decoding.options import DecodingOptions
from seqspeech.errors import ConfigError, ModelLoadError, OutputError
from seqspeech.export import export_model, export_onnx, load_onnx_model
from seqspeech.export.onnx import MANIFEST_FILE, _istft, _polar
from seqspeech.metrics.wer import error_rate

ATOL = 2e-4


def _features(batch_lens: list[int], seed: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw-fbank-like random features (B, T, 80), padded, and their lengths."""
    generator = torch.Generator().manual_seed(seed)
    feats = torch.randn(len(batch_lens), max(batch_lens), 80, generator=generator) * 3 + 10
    return feats, torch.tensor(batch_lens)


def _close_rows(onnx_out: torch.Tensor, torch_out: torch.Tensor, lens: torch.Tensor, atol: float = ATOL) -> None:
    for b, n in enumerate(lens.tolist()):
        assert n > 0
        torch.testing.assert_close(onnx_out[b, :n], torch_out[b, :n].float(), atol=atol, rtol=1e-4)


def _texts(asr, clips, **options) -> list[str]:
    return [t.text for t in asr.transcribe_batch(clips, **options)]


# ----------------------------------------------------------------------------------------------------------------
# CTC


def test_ctc_log_probs_match_pytorch_in_a_padded_batch(exported) -> None:
    asr, folder = exported("ctc")
    onnx_asr = load_onnx_model(folder, threads=2)
    feats, lens = _features([130, 97, 40])
    with torch.inference_mode():
        ref, ref_lens = asr.model.encode(feats, lens)
    log_probs, out_lens = onnx_asr.model.encode(feats, lens)
    assert torch.equal(out_lens, ref_lens)
    _close_rows(log_probs, ref, out_lens)


def test_ctc_recognizer_has_the_pytorch_api_and_transcripts(exported, clips) -> None:
    asr, folder = exported("ctc")
    onnx_asr = load_onnx_model(folder, threads=2)
    assert (onnx_asr.family, onnx_asr.name, onnx_asr.compute_type) == ("ctc", "tiny-ctc", "float32")
    greedy = _texts(onnx_asr, clips, beam_size=1)
    assert any(greedy) and greedy == _texts(asr, clips, beam_size=1)
    assert _texts(onnx_asr, clips, beam_size=4) == _texts(asr, clips, beam_size=4)
    assert onnx_asr.transcribe(clips[0], beam_size=1).text == greedy[0]
    words, expected_words = (r.transcribe(clips[0], beam_size=1, word_timestamps=True).segments[0].words
                             for r in (onnx_asr, asr))
    assert words and [(w.word, w.start, w.end) for w in words] == [(w.word, w.start, w.end) for w in expected_words]
    with pytest.raises(ConfigError, match="unknown option"):
        onnx_asr.transcribe(clips[0], temperature=0.5)


# ----------------------------------------------------------------------------------------------------------------
# transducer


@pytest.mark.parametrize("chunk", [4, 2])
def test_streaming_encoder_matches_pytorch_at_each_chunk_size(exported, chunk: int) -> None:
    asr, folder = exported("rnnt")
    model = load_onnx_model(folder, threads=2).model
    feats, lens = _features([150, 91, 33])
    with torch.inference_mode():
        ref, ref_lens = asr.model.encode(feats, lens, chunk=chunk)
        ctc_ref = asr.model.ctc_log_probs(ref)
    enc, enc_lens = model.encode(feats, lens, chunk=chunk)
    assert torch.equal(enc_lens, ref_lens)
    _close_rows(enc, ref, enc_lens)
    _close_rows(model.ctc_log_probs(enc), ctc_ref, enc_lens)
    with pytest.raises(ConfigError, match="chunk 0"):
        model.encode(feats, lens, chunk=0)


def test_predictor_and_joiner_match_pytorch(exported) -> None:
    asr, folder = exported("rnnt")
    model = load_onnx_model(folder, threads=2).model
    ref = asr.model
    with torch.inference_mode():
        g_ref, state_ref = ref.predictor.init_state(3)
        tokens = torch.tensor([4, 0, 7])
        g2_ref, state2_ref = ref.predictor.step(tokens, ref.predictor.select_state(state_ref, torch.tensor([2, 0, 1])))
        enc = torch.randn(3, 32)
        logits_ref = ref.joiner(ref.joiner.project_encoder(enc), ref.joiner.project_predictor(g2_ref))
    g, state = model.predictor.init_state(3)
    g2, state2 = model.predictor.step(tokens, model.predictor.select_state(state, torch.tensor([2, 0, 1])))
    torch.testing.assert_close(g, g_ref, atol=ATOL, rtol=1e-4)
    torch.testing.assert_close(g2, g2_ref, atol=ATOL, rtol=1e-4)
    for ours, theirs in zip(state2, state2_ref):
        torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=1e-4)
    logits = model.joiner(model.joiner.project_encoder(enc[:, None])[:, 0], model.joiner.project_predictor(g2))
    torch.testing.assert_close(logits, logits_ref, atol=ATOL, rtol=1e-4)


def test_transducer_transcripts_and_streams_match_pytorch(exported, clips) -> None:
    asr, folder = exported("rnnt")
    onnx_asr = load_onnx_model(folder, threads=2)
    assert (onnx_asr.family, onnx_asr.chunk) == ("transducer", 4)
    for method in ("greedy", "modified_beam"):
        expected = _texts(asr, clips, method=method)
        assert any(expected) and _texts(onnx_asr, clips, method=method) == expected, method

    def stream_text(recognizer) -> tuple[str, list[str]]:
        stream = recognizer.stream(chunk_ms=160)
        events = [e for block in np.array_split(clips[0], 7) for e in stream.accept_audio(block)]
        events += stream.finish()
        return stream.text(), [e.text for e in events]

    assert stream_text(onnx_asr) == stream_text(asr)


def test_full_context_transducer_with_a_stateless_predictor(exported, clips) -> None:
    asr, folder = exported("rnnt-stateless")
    onnx_asr = load_onnx_model(folder, threads=2)
    assert "encoder" in json.loads((folder / MANIFEST_FILE).read_text())["graphs"]
    feats, lens = _features([120, 64])
    with torch.inference_mode():
        ref, ref_lens = asr.model.encode(feats, lens)
    enc, enc_lens = onnx_asr.model.encode(feats, lens)
    assert torch.equal(enc_lens, ref_lens)
    _close_rows(enc, ref, enc_lens)
    assert _texts(onnx_asr, clips) == _texts(asr, clips)
    with pytest.raises(ConfigError, match="cannot stream"):
        onnx_asr.stream()


# ----------------------------------------------------------------------------------------------------------------
# Whisper


def test_whisper_encoder_cross_cache_and_decoder_steps_match_pytorch(exported) -> None:
    asr, folder = exported("whisper")
    ours = load_onnx_model(folder, threads=2).model
    ref = asr.model
    generator = torch.Generator().manual_seed(7)
    for frames in (100, 60):  # a full window and a shorter one
        mel = torch.randn(2, 80, frames, generator=generator)
        with torch.inference_mode():
            torch.testing.assert_close(ours.embed_audio(mel), ref.embed_audio(mel), atol=ATOL, rtol=1e-4)
    with torch.inference_mode():
        features = ref.embed_audio(mel)
        state_ref = ref.decoder.init_state(features)
        prompt = torch.tensor([[50257, 50362, 464, 3797], [50257, 50362, 40, 1101]])
        logits_ref, state_ref = ref.decoder(prompt, state_ref)
        state_ref = state_ref.index_select(torch.tensor([1, 1, 0]))  # beams: reorder and repeat rows
        step = torch.tensor([[11], [318], [257]])
        step_ref, _ = ref.decoder(step, state_ref)
    state = ours.decoder.init_state(features)
    logits, state = ours.decoder(prompt, state)
    torch.testing.assert_close(logits, logits_ref, atol=1e-3, rtol=1e-4)
    state = state.index_select(torch.tensor([1, 1, 0]))
    assert (state.offset, state.batch_size) == (4, 3)
    step_logits, after = ours.decoder(step, state)
    torch.testing.assert_close(step_logits, step_ref, atol=1e-3, rtol=1e-4)
    assert after.self_k[0].shape == (3, 4, 5, 16) and state.self_k[0].shape == (3, 4, 4, 16)  # state not mutated
    with pytest.raises(ValueError, match="rows"):
        ours.decoder(prompt, after)


@pytest.mark.parametrize("beam_size", [None, 3])
def test_whisper_decoding_loop_gives_pytorch_tokens(exported, beam_size: int | None) -> None:
    asr, folder = exported("whisper")
    onnx_asr = load_onnx_model(folder, threads=2)
    mel = torch.randn(2, 80, 100, generator=torch.Generator().manual_seed(8))
    options = DecodingOptions(beam_size=beam_size, without_timestamps=True, sample_len=8)
    with torch.inference_mode():
        expected = decode(asr.model, asr.tokenizer, asr.model.embed_audio(mel), options)
        got = decode(onnx_asr.model, onnx_asr.tokenizer, onnx_asr.model.embed_audio(mel), options)
    assert [r.tokens for r in got] == [r.tokens for r in expected]
    assert [r.tokens for r in expected] != [[], []]
    np.testing.assert_allclose([r.avg_logprob for r in got], [r.avg_logprob for r in expected], atol=1e-3)
    assert (onnx_asr.family, onnx_asr.runtime) == ("whisper", "onnxruntime")
    with pytest.raises(ConfigError, match="cross-attention weights"):
        onnx_asr.stream()
    with pytest.raises(ConfigError, match="word_timestamps reads cross-attention"):
        onnx_asr.transcribe(np.zeros(16000, np.float32), word_timestamps=True)


# ----------------------------------------------------------------------------------------------------------------
# text to speech


def test_istft_formulation_matches_torch_istft() -> None:
    generator = torch.Generator().manual_seed(9)
    magnitude, angle = torch.rand(2, 9, 40, generator=generator), torch.randn(2, 9, 40, generator=generator)
    window = torch.hann_window(16)
    expected = torch.istft(torch.polar(magnitude, angle), 16, 4, window=window, center=True, length=160)
    torch.testing.assert_close(_istft(_polar(magnitude, angle), 16, 4, window=window, length=160), expected,
                               atol=1e-6, rtol=1e-5)


def test_acoustic_graph_takes_per_row_controls_and_matches_pytorch(exported) -> None:
    voice, folder = exported("voice")
    onnx_voice = load_onnx_model(folder, threads=2)
    frontend = voice.frontend
    rows = [frontend.encode("hello there world"), frontend.encode("cats sing")]
    tokens = torch.tensor([r + [0] * (len(rows[0]) - len(r)) for r in rows])
    lens = torch.tensor([len(r) for r in rows])
    controls = [(1.0, 0.0, 1.0), (1.4, 3.0, 0.6)]
    graph = onnx_voice.acoustic.model.graph
    mels, mel_lens, durations, pitch, _ = graph(tokens, lens, *(np.array(c, np.float32) for c in zip(*controls)))
    for i, (speed, shift, scale) in enumerate(controls):
        ref = voice.acoustic.model.infer(tokens[i : i + 1, : lens[i]], speed=speed, pitch_shift=shift,
                                         energy_scale=scale)
        n = int(ref.mel_lens[0])
        assert mel_lens[i] == n and n > 0
        assert np.array_equal(durations[i, : lens[i]], ref.durations[0].numpy())
        np.testing.assert_allclose(mels[i, :, :n], ref.mels[0].numpy(), atol=ATOL)
        np.testing.assert_allclose(pitch[i, : lens[i]], ref.pitch[0].numpy(), atol=ATOL)
    assert not np.array_equal(durations[0], durations[1])
    with torch.inference_mode():
        wave_ref = voice.vocoder.infer(torch.from_numpy(mels[:1, :, : mel_lens[0]]))
    wave = onnx_voice.vocoder.infer(torch.from_numpy(mels[:1, :, : mel_lens[0]]))
    torch.testing.assert_close(wave, wave_ref, atol=1e-4, rtol=1e-4)


def test_synthesizer_api_matches_pytorch(exported) -> None:
    voice, folder = exported("voice")
    onnx_voice = load_onnx_model(folder, threads=2)
    text = "Hello there. Cats sing at dawn!"
    assert onnx_voice.sample_rate == voice.sample_rate == 16000
    expected = voice.synthesize(text, watermark=False, speed=1.2, pitch=2.0)
    np.testing.assert_allclose(onnx_voice.synthesize(text, watermark=False, speed=1.2, pitch=2.0), expected,
                               atol=1e-4)
    chunks = list(onnx_voice.synthesize_stream(text, watermark=False))
    assert len(chunks) == 2 and all(c.dtype == np.float32 for c in chunks)  # one per sentence
    np.testing.assert_allclose(np.concatenate(chunks), onnx_voice.synthesize(text, watermark=False), atol=1e-6)
    marked = onnx_voice.synthesize(text)  # watermarked by default, as the PyTorch voice
    np.testing.assert_allclose(marked, voice.synthesize(text), atol=1e-3)


# ----------------------------------------------------------------------------------------------------------------
# manifest, options and errors


def test_manifest_lists_graphs_files_and_metadata(exported) -> None:
    _, folder = exported("rnnt")
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert (manifest["family"], manifest["opset"], manifest["int8"]) == ("transducer", 17, False)
    assert set(manifest["graphs"]) == {"subsampling", "encoder_chunk", "encoder_proj", "ctc_head", "predictor",
                                       "predictor_proj", "joiner"}
    for info in manifest["graphs"].values():
        graph = onnx.load(str(folder / info["file"])).graph
        assert [i.name for i in graph.input] == info["inputs"] and [o.name for o in graph.output] == info["outputs"]
        assert graph.node  # not empty
    assert sorted(manifest["files"]) == sorted(p.name for p in folder.iterdir() if p.name != MANIFEST_FILE)
    assert manifest["decode"] == {"method": "modified_beam", "beam_size": 3, "lm_weight": 0.3, "word_bonus": 0.5,
                                  "chunk": 4}
    assert manifest["tokenizer"]["symbols"][-1] == "\u2581" and manifest["lm"] is None


def test_load_errors_name_the_folder_in_one_line(tmp_path: Path, exported) -> None:
    _, folder = exported("ctc")
    with pytest.raises(ModelLoadError, match="no such folder"):
        load_onnx_model(tmp_path / "missing")
    with pytest.raises(ModelLoadError, match="no manifest.json"):
        load_onnx_model(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ModelLoadError, match="invalid JSON") as info:
        load_onnx_model(tmp_path)
    assert "\n" not in str(info.value) and str(tmp_path) in str(info.value)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(manifest))  # lists ctc.onnx, which is not here
    with pytest.raises(ModelLoadError, match="missing: ctc.onnx"):
        load_onnx_model(tmp_path)
    (tmp_path / "ctc.onnx").write_bytes(b"not a graph")
    with pytest.raises(ModelLoadError, match="cannot load this graph"):
        load_onnx_model(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({**manifest, "family": "las"}))
    with pytest.raises(ModelLoadError, match="unknown family 'las'"):
        load_onnx_model(tmp_path)


def test_export_refuses_what_it_cannot_export(tmp_path: Path, exported) -> None:
    asr, _ = exported("ctc")
    with pytest.raises(ConfigError, match="opset"):
        export_model(asr, tmp_path / "a", opset=9)
    with pytest.raises(ConfigError, match="supports"):
        export_model(object(), tmp_path / "b")
    with pytest.raises(ConfigError, match="already an ONNX export"):
        export_model(load_onnx_model(exported("ctc")[1]), tmp_path / "b")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        export_model(asr, tmp_path / "file")
    with pytest.raises(ModelLoadError, match="not a known model name"):
        export_onnx("no-such-model", tmp_path / "c")
    with pytest.raises(ConfigError, match="decoding defaults"):
        load_onnx_model(exported("voice")[1], beam_size=3)


# ----------------------------------------------------------------------------------------------------------------
# shipped models


@pytest.mark.slow
def test_shipped_ctc_transcripts_equal_pytorch_and_int8_stays_close(tmp_path_factory, clips, clip_texts) -> None:
    fp32 = export_onnx("ctc-conformer-synth-en", tmp_path_factory.mktemp("ctc-fp32"))
    int8 = export_onnx("ctc-conformer-synth-en", tmp_path_factory.mktemp("ctc-int8"), int8=True)
    reference = load_model("ctc-conformer-synth-en", device="cpu")
    onnx_fp32 = load_onnx_model(fp32, threads=2)
    assert onnx_fp32.lm_path == fp32 / "lm.arpa" and onnx_fp32.beam_size == reference.beam_size
    assert _texts(onnx_fp32, clips) == _texts(reference, clips)  # stored defaults: beam search + the LM
    greedy = {"beam_size": 1, "use_lm": False}
    expected = _texts(reference, clips, **greedy)
    assert _texts(onnx_fp32, clips, **greedy) == expected
    onnx_int8 = load_onnx_model(int8, threads=2, lm=False)
    assert onnx_int8.compute_type == "int8"
    ops = {node.op_type for node in onnx.load(str(int8 / "ctc.onnx")).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    assert (int8 / "ctc.onnx").stat().st_size < 0.5 * (fp32 / "ctc.onnx").stat().st_size
    got = _texts(onnx_int8, clips, **greedy)
    assert error_rate(expected, got, unit="char").rate <= 0.1  # int8 vs float32 transcripts
    assert error_rate(clip_texts, got, unit="char").rate <= error_rate(clip_texts, expected, unit="char").rate + 0.05


@pytest.mark.slow
def test_shipped_whisper_tiny_encoder_decoder_parity_and_transcripts(tmp_path_factory, clips) -> None:
    folder = export_onnx("whisper-tiny.en", tmp_path_factory.mktemp("whisper"))
    reference = load_model("whisper-tiny.en", device="cpu", compute_type="float32")
    ours = load_onnx_model(folder, threads=2)
    assert (ours.family, ours.name, ours.compute_type) == ("whisper", "whisper-tiny.en", "float32")
    assert (folder / "tokenizer.json").is_file()
    mel = reference.frontend(torch.from_numpy(clips[0]))[None, :, :400]  # 4 s of real speech
    with torch.inference_mode():
        features = reference.model.embed_audio(mel)
        torch.testing.assert_close(ours.model.embed_audio(mel), features, atol=1e-3, rtol=1e-3)
        prompt = torch.tensor([list(reference.tokenizer.sot_sequence(without_timestamps=True))])
        logits_ref, state_ref = reference.model.decoder(prompt, reference.model.decoder.init_state(features))
        next_ref, _ = reference.model.decoder(logits_ref[:, -1:].argmax(-1), state_ref)
    logits, state = ours.model.decoder(prompt, ours.model.decoder.init_state(features))
    next_logits, _ = ours.model.decoder(logits[:, -1:].argmax(-1), state)
    torch.testing.assert_close(logits, logits_ref, atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(next_logits, next_ref, atol=2e-3, rtol=1e-3)
    options = {"beam_size": 1, "temperature": 0.0, "short_window_s": 10.0}
    assert _texts(ours, clips, **options) == _texts(reference, clips, **options)


@pytest.mark.slow
def test_shipped_transducer_transcripts_equal_pytorch(tmp_path_factory, clips) -> None:
    folder = export_onnx("rnnt-synth-en", tmp_path_factory.mktemp("rnnt"))
    reference = load_model("rnnt-synth-en", device="cpu")
    ours = load_onnx_model(folder, threads=2)
    options = {"method": "greedy", "use_lm": False}
    assert _texts(ours, clips[:1], **options) == _texts(reference, clips[:1], **options)


@pytest.mark.slow
def test_shipped_slt_voice_matches_pytorch(tmp_path_factory) -> None:
    folder = export_onnx("slt", tmp_path_factory.mktemp("slt"))
    ours, reference = load_onnx_model(folder, threads=2), load_voice("slt", device="cpu")
    text = "It speaks. Twice?"
    np.testing.assert_allclose(ours.synthesize(text, watermark=False, energy=1.3),
                               reference.synthesize(text, watermark=False, energy=1.3), atol=1e-4)
