"""`seqspeech` CLI: every output format, bad inputs among good ones, evaluate."""

import json
import subprocess
import sys

import pytest

from seqspeech.cli import main
from seqspeech.data.synth import HARVARD_SENTENCES
from seqspeech.metrics.wer import wer

SENTENCE = HARVARD_SENTENCES[1]


@pytest.fixture(scope="module")
def clip(synth_speech):
    return str(synth_speech(SENTENCE))


@pytest.mark.parametrize("fmt", ["txt", "json", "jsonl", "srt", "vtt"])
def test_formats_on_stdout(fmt, clip, capsys):
    assert main(["transcribe", clip, "--beam-size", "1", "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "txt":
        assert "background" in out.lower()
    elif fmt in ("json", "jsonl"):
        if fmt == "jsonl":
            assert len(out.strip().splitlines()) == 1
        record = json.loads(out)
        assert {"path", "text", "language", "duration", "segments"} <= set(record)
        assert record["path"] == clip and record["language"] == "en"
        seg = record["segments"][0]
        assert {"start", "end", "text", "avg_logprob", "no_speech_prob"} <= set(seg)
    elif fmt == "srt":
        assert out.startswith("1\n00:00:0") and " --> " in out and "," in out.splitlines()[1]
    else:
        assert out.startswith("WEBVTT") and " --> " in out


def test_bad_file_is_reported_and_others_still_transcribed(clip, tmp_path, capsys):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    out_dir = tmp_path / "out"
    code = main(["transcribe", str(bad), clip, "--beam-size", "1", "--format", "jsonl",
                 "--output-dir", str(out_dir)])
    captured = capsys.readouterr()
    assert code == 1
    assert "broken.wav" in captured.err
    lines = (out_dir / "transcripts.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["path"] == clip


def test_output_dir_per_file(clip, tmp_path):
    assert main(["transcribe", clip, "--beam-size", "1", "--format", "srt", "--output-dir", str(tmp_path)]) == 0
    (written,) = tmp_path.glob("*.srt")
    assert " --> " in written.read_text()


def test_missing_model_is_a_clear_error(clip, capsys):
    assert main(["transcribe", clip, "--model", "/nonexistent/model"]) == 2
    assert "/nonexistent/model" in capsys.readouterr().err


def test_evaluate_round_trip(clip, tmp_path, capsys):
    assert main(["transcribe", clip, "--beam-size", "1", "--format", "jsonl"]) == 0
    hyp = tmp_path / "hyp.jsonl"
    hyp.write_text(capsys.readouterr().out)
    text = json.loads(hyp.read_text())["text"]
    ref = tmp_path / "ref.jsonl"
    ref.write_text(json.dumps({"path": clip, "text": SENTENCE}) + "\n")
    assert main(["evaluate", str(hyp), "--references", str(ref)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["wer"] == pytest.approx(wer([SENTENCE], [text]))
    assert result["wer"] < 1.0  # the transcript has something to do with the sentence


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "seqspeech.cli", "transcribe", "--help"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "--format" in out.stdout


def test_stdin_input(clip):
    with open(clip, "rb") as f:
        out = subprocess.run([sys.executable, "-m", "seqspeech.cli", "transcribe", "-", "--beam-size", "1",
                              "--format", "jsonl"], stdin=f, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    assert record["path"] == "-" and "background" in record["text"].lower()
