"""`seqspeech stream`: output formats, stdin PCM (raw and WAV), pacing, and one-line errors, with a fake streaming
model (bursts of tone are tokens) injected through seqspeech.load_model; a tiny random LAS through the real
loader (a real Whisper run is left out: whisper-tiny.en streams a 3 s clip in 20-40 s on 2 busy cores)."""

from __future__ import annotations

import io
import json
import re
import time

import numpy as np
import pytest
import soundfile as sf
import torch

import seqspeech
from seqspeech import cli_stream
from seqspeech.asr.streaming import StreamingRecognizer
from seqspeech.cli import main

from streaming_fakes import SR, BurstEngine  # noqa: E402


class FakeStreamingModel:
    def __init__(self) -> None:
        self.chunk_ms: list[int] = []

    def stream(self, chunk_ms=320):
        self.chunk_ms.append(chunk_ms)
        return StreamingRecognizer(BurstEngine(chunk_ms * SR // 1000))


class FakeStdin:
    def __init__(self, data: bytes, tty: bool = False) -> None:
        self.buffer = io.BytesIO(data)
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def signal(*parts: tuple[str, float], rate: int = SR) -> np.ndarray:
    pieces = []
    for kind, seconds in parts:
        t = np.arange(round(seconds * rate)) / rate
        pieces.append(0.5 * np.sin(2 * np.pi * 440 * t) if kind == "tone" else np.zeros(t.size))
    return np.concatenate(pieces).astype(np.float32)


AUDIO = signal(("sil", 0.2), ("tone", 0.3), ("sil", 1.3), ("tone", 0.2), ("sil", 0.3))  # "d", then "c"
PCM = np.round(AUDIO * 32767).astype("<i2")


@pytest.fixture
def fake(monkeypatch):
    model = FakeStreamingModel()
    names = []

    def load_model(name, **kwargs):
        names.append(name)
        return model

    monkeypatch.setattr(seqspeech, "load_model", load_model)
    model.names = names
    return model


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "talk.wav"
    sf.write(str(path), PCM, SR, subtype="PCM_16")
    return str(path)


def stream(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["stream", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_text_off_a_terminal_is_one_line_per_final(fake, wav, capsys):
    code, out, err = stream(capsys, wav, "--model", "fake")
    assert (code, out, err) == (0, "d\nc\n", "")
    assert fake.chunk_ms == [320] and fake.names == ["fake"]


def test_partials_are_timed_lines(fake, wav, capsys):
    code, out, _ = stream(capsys, wav, "--model", "fake", "--partials", "--chunk-ms", "100")
    assert code == 0 and fake.chunk_ms == [100]
    lines = out.splitlines()
    assert all(re.fullmatch(r" +\d+\.\d\ds  (partial|final  )  [a-z ]+", line) for line in lines), lines
    assert lines[0] == "  0.30s  partial  b" and lines[-1] == "  2.30s  final    c"
    assert [line.split()[-1] for line in lines if "final" in line] == ["d", "c"]


def test_jsonl_is_every_event(fake, wav, capsys):
    code, out, _ = stream(capsys, wav, "--model", "fake", "--format", "jsonl")
    assert code == 0
    records = events(out)
    assert {r["type"] for r in records} == {"partial", "final"}
    finals = [r for r in records if r["type"] == "final"]
    assert [(f["text"], f["utterance"]) for f in finals] == [("d", 0), ("c", 1)]
    assert finals[0]["start"] == pytest.approx(0.5) and finals[0]["emitted_at"] >= finals[0]["end"] + 0.8
    emitted = [r["emitted_at"] for r in records]
    assert emitted == sorted(emitted)


def test_live_line_on_a_terminal(fake, wav, capsys, monkeypatch):
    monkeypatch.setattr(cli_stream, "_stdout_is_tty", lambda: True)
    code, out, _ = stream(capsys, wav, "--model", "fake", "--chunk-ms", "100")
    assert code == 0
    assert out.endswith("\rc\x1b[K\n") and "\rb\x1b[K\rc\x1b[K" in out and "\rd\x1b[K\n" in out
    assert [line.rsplit("\r", 1)[-1] for line in out.split("\n")[:-1]] == ["d\x1b[K", "c\x1b[K"]


def test_stdin_raw_pcm_and_wav_header_equal_the_file(fake, wav, capsys, monkeypatch):
    def no_wall(out):
        return [{k: v for k, v in r.items() if k != "wall"} for r in events(out)]

    _, reference, _ = stream(capsys, wav, "--model", "fake", "--format", "jsonl")
    monkeypatch.setattr("sys.stdin", FakeStdin(PCM.tobytes()))
    code, out, err = stream(capsys, "-", "--model", "fake", "--format", "jsonl")
    assert code == 0 and no_wall(out) == no_wall(reference), err
    header = io.BytesIO()
    sf.write(header, np.stack([PCM, PCM], axis=1), SR, format="WAV", subtype="PCM_16")  # stereo: mixed down
    monkeypatch.setattr("sys.stdin", FakeStdin(header.getvalue()))
    code, out, err = stream(capsys, "-", "--model", "fake", "--format", "jsonl")
    assert code == 0 and no_wall(out) == no_wall(reference), err
    slow = np.round(signal(("sil", 0.2), ("tone", 0.3), ("sil", 1.3), ("tone", 0.2), ("sil", 0.3), rate=8000)
                    * 32767).astype("<i2")
    monkeypatch.setattr("sys.stdin", FakeStdin(slow.tobytes()))
    assert stream(capsys, "-", "--model", "fake", "--rate", "8000") == (0, "d\nc\n", "")  # resampled


def test_realtime_paces_the_audio(fake, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", FakeStdin(PCM[: int(0.3 * SR)].tobytes()))
    start = time.monotonic()
    code, _, _ = stream(capsys, "-", "--model", "fake", "--realtime", "--chunk-ms", "100")
    assert code == 0 and time.monotonic() - start >= 0.25
    monkeypatch.setattr("sys.stdin", FakeStdin(PCM.tobytes()))
    start = time.monotonic()
    assert stream(capsys, "-", "--model", "fake")[0] == 0 and time.monotonic() - start < 1.5  # 2 s, not paced


def test_ctrl_c_still_prints_the_last_utterance(fake, wav, capsys, monkeypatch):
    calls = []
    accept = StreamingRecognizer.accept_waveform

    def interrupted(self, rate, samples):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return accept(self, rate, samples)

    monkeypatch.setattr(StreamingRecognizer, "accept_waveform", interrupted)
    assert stream(capsys, wav, "--model", "fake") == (130, "d\n", "")  # the open utterance ends at 0.64 s


def test_a_closed_pipe_ends_quietly(fake, wav, capsys, monkeypatch):
    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("sys.stdout", ClosedPipe())
    assert main(["stream", wav, "--model", "fake", "--format", "jsonl"]) == 0  # `seqspeech stream ... | head -1`
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("args, stdin, problem", [
    (["-"], b"\x01" * 12345, "stdin: 12345 bytes is not a whole number of 16-bit samples"),
    (["-"], b"", "stdin: no audio"),
    (["-", "--rate", "0"], b"\0\0", "--rate must be a sample rate between 4000 and 384000 Hz, got 0"),
    (["-", "--rate", "8000"], "wav16k", "--rate 8000 but the WAV header on stdin says 16000 Hz"),
    (["-"], "wavfloat", "stdin: WAV of 32-bit float samples; `stream -` reads 16-bit PCM"),
    (["-"], "tty", "stdin is a terminal"),
    (["WAV", "--rate", "8000"], None, "--rate is for raw PCM on stdin (-)"),
    (["/no/such/talk.wav"], None, "/no/such/talk.wav: audio file not found"),
    (["WAV", "--chunk-ms", "0"], None, "--chunk-ms must be between 10 and 30000 milliseconds, got 0"),
    (["WAV", "--chunk-ms", "-5"], None, "--chunk-ms must be between 10 and 30000 milliseconds, got -5"),
    (["WAV", "--chunk-ms", "100000"], None, "--chunk-ms must be between 10 and 30000"),
    (["WAV", "--format", "xml"], None, "unknown --format 'xml': choose text or jsonl"),
    (["WAV", "--format", "jsonl", "--partials"], None, "--partials is for --format text"),
    (["EMPTY"], None, "empty.wav: "),
])
def test_errors_are_one_line(args, stdin, problem, fake, wav, tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, np.int16), SR, subtype="PCM_16")
    args = [wav if a == "WAV" else str(empty) if a == "EMPTY" else a for a in args]
    if stdin is not None:
        data = stdin if isinstance(stdin, bytes) else b""
        if stdin in ("wav16k", "wavfloat"):
            buffer = io.BytesIO()
            sf.write(buffer, AUDIO, SR, format="WAV", subtype="PCM_16" if stdin == "wav16k" else "FLOAT")
            data = buffer.getvalue()
        monkeypatch.setattr("sys.stdin", FakeStdin(data, tty=stdin == "tty"))
    code, out, err = stream(capsys, *args, "--model", "fake")
    assert code == 2 and err.count("\n") == 1 and err.startswith("seqspeech: error:") and problem in err, err
    assert "Traceback" not in err and out == ""


def test_models_that_cannot_stream(monkeypatch, wav, capsys):
    monkeypatch.setattr(seqspeech, "load_model", lambda name, **kw: object())
    code, _, err = stream(capsys, wav, "--model", "plain")
    assert code == 2 and err == "seqspeech: error: plain cannot stream: object has no streaming decoder " \
                                "(streaming models: transducers, LAS with monotonic or MoChA attention, Whisper)\n"


def test_default_model_missing_is_one_line(wav, capsys):
    from seqspeech.errors import ModelLoadError
    from seqspeech.zoo import MODELS

    try:
        MODELS[cli_stream.DEFAULT_STREAM_MODEL].locate()
        pytest.skip("the default streaming model is installed: nothing to report")
    except (KeyError, ModelLoadError):
        pass
    code, _, err = stream(capsys, wav)
    assert code == 2 and err.count("\n") == 1 and "rnnt-synth-en" in err, err


def test_bad_and_unusual_files(audio_matrix, fake, capsys):
    """Every input of the shared matrix: a result, or one line naming the file and the problem."""
    for case in audio_matrix:
        code, _, err = stream(capsys, str(case.path), "--model", "fake", "--format", "jsonl")
        if case.ok:
            assert code == 0 and err == "", (case.name, err)
        else:
            assert code == 2 and err.count("\n") == 1 and case.path.name in err, (case.name, err)
            assert case.problem in err.lower(), (case.name, err)


def _package(tmp_path, family):
    from seqspeech.asr.aed import AEDConfig, aed_model_from_config
    from seqspeech.asr.las import LASConfig, las_model_from_config
    from seqspeech.asr.package import save_package
    from seqspeech.data.dataset import FeatureConfig
    from seqspeech.nn.conformer import ConformerConfig
    from seqspeech.text.tokenizers import CharTokenizer

    tokenizer = CharTokenizer.train(["hello world"])
    torch.manual_seed(0)
    stats = {"feature_mean": torch.randn(80), "feature_std": torch.rand(80) + 0.5}
    if family == "aed":
        config = AEDConfig(vocab_size=tokenizer.vocab_size, decoder_layers=1, decoder_heads=2, decoder_ff=16,
                           encoder=ConformerConfig(d_model=16, num_layers=1, num_heads=2, conv_kernel=3,
                                                   subsampling_channels=4))
        model = aed_model_from_config(config, **stats)
    else:
        config = LASConfig(vocab_size=tokenizer.vocab_size, listener_layers=2, listener_hidden=8, pyramid_levels=2,
                           attention="mocha", bidirectional=False, attention_dim=8, embed_dim=8, decoder_hidden=8,
                           chunk_size=2)
        model = las_model_from_config(config, **stats)
    return save_package(tmp_path / f"{family}.safetensors", family, model, config, FeatureConfig(), tokenizer)


def test_a_real_las_model_through_the_loader(wav, tmp_path, capsys):
    code, out, err = stream(capsys, wav, "--model", str(_package(tmp_path, "las")), "--format", "jsonl",
                            "--chunk-ms", "160")
    assert code == 0 and err == ""
    assert all(r["type"] in ("partial", "final") for r in events(out))
    aed = str(_package(tmp_path, "aed"))
    code, _, err = stream(capsys, wav, "--model", aed)
    assert code == 2 and err.count("\n") == 1 and "an AED model cannot stream" in err
