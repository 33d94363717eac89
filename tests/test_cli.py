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


def test_default_options_are_beam_5_with_best_of_5_fallback(clip, capsys, monkeypatch):
    """`seqspeech transcribe FILE` with no flags (the README's first command): beam 5 at temperature 0, best of 5
    samples at the fallback temperatures, as faster-whisper's and openai-whisper's transcribe take them."""
    import seqspeech
    from seqspeech.asr import transcribe as long_form

    seen = []
    decode = long_form.decode

    def spy(model, tokenizer, features, options, generator=None):
        seen.append(options)
        return decode(model, tokenizer, features, options, generator=generator)

    monkeypatch.setattr(long_form, "decode", spy)
    assert main(["transcribe", clip]) == 0
    out = capsys.readouterr().out
    assert seen[0].temperature == 0 and seen[0].beam_size == 5 and seen[0].best_of is None
    assert out.strip() == seqspeech.load_model("whisper-tiny.en").transcribe(clip, beam_size=5).text
    # the same options with every window forced through the whole fallback ladder
    seen.clear()
    from seqspeech.asr.whisper_asr import WhisperASR

    forced = {"compression_ratio_threshold": 0.0}
    original = WhisperASR.transcribe_batch
    monkeypatch.setattr(WhisperASR, "transcribe_batch", lambda self, audios, **kw: original(self, audios,
                                                                                            **kw, **forced))
    assert main(["transcribe", clip, "--format", "json"]) == 0
    assert [o.temperature for o in seen] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert all(o.best_of == 5 and o.beam_size is None for o in seen[1:])
    record = json.loads(capsys.readouterr().out)
    assert record["segments"][0]["temperature"] == 1.0  # the last temperature tried (the prompt resets after it)


@pytest.mark.parametrize("args, problem", [
    (["--task", "translate"], "cannot translate"),
    (["--language", "fr"], "cannot take language 'fr'"),
    (["--language", "klingon"], "unsupported language"),
    (["--temperature-increment-on-fallback", "-0.2"], "must be in (0, 1]"),
    (["--temperature", "nan"], "temperatures must be finite"),
    (["--best-of", "0"], "best_of must be >= 1"),
    (["--beam-size", "0"], "--beam-size must be >= 1"),
    (["--patience", "0"], "patience must be > 0"),
    (["--length-penalty", "2"], "length_penalty must be in [0, 1]"),
    (["--batch-size", "0"], "batch_size must be >= 1"),
    (["--short-window", "45"], "short_window_s must be in (0, 30]"),
    (["--word-bonus", "1"], "--word-bonus is for CTC, transducer models, not whisper-tiny.en"),
    (["--model", "ctc-conformer-synth-en", "--language", "en"], "--language is for Whisper models"),
    (["--model", "ctc-conformer-synth-en", "--ctc-weight", "0.3"], "--ctc-weight is for LAS, AED models"),
    (["--model", "aed-conformer-synth-en", "--vad"], "--vad is for Whisper models"),
])
def test_option_errors_are_one_line(args, problem, clip, capsys):
    assert main(["transcribe", clip, *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("seqspeech: error:") and problem in err, err


def test_option_pairs_the_references_accept(clip, capsys):
    """beam_size with best_of, patience and a length penalty, a temperature ladder, English by name."""
    assert main(["transcribe", clip, "--beam-size", "3", "--best-of", "2", "--patience", "2", "--length-penalty",
                 "0.5", "--temperature", "0", "--temperature-increment-on-fallback", "0.5", "--language",
                 "English"]) == 0
    assert "background" in capsys.readouterr().out.lower()
    assert main(["transcribe", clip, "--beam-size", "1", "--patience", "2"]) == 0  # patience: beam search only
    assert "background" in capsys.readouterr().out.lower()


def test_our_models_keep_their_stored_beam_unless_told(clip, monkeypatch, capsys):
    from seqspeech.asr.ctc_asr import CTCASR

    seen = []
    decode = CTCASR.decode

    def spy(self, log_probs, lengths, **options):
        seen.append(options.get("beam_size", self.beam_size))
        return decode(self, log_probs, lengths, **options)

    monkeypatch.setattr(CTCASR, "decode", spy)
    assert main(["transcribe", clip, "--model", "ctc-conformer-synth-en"]) == 0
    assert main(["transcribe", clip, "--model", "ctc-conformer-synth-en", "--beam-size", "2"]) == 0
    assert seen == [8, 2]  # the recipe's tuned beam (stored with the model), then the flag
    capsys.readouterr()


@pytest.mark.parametrize("model", ["whisper-tiny.en", "ctc-conformer-synth-en"])
def test_progress_bar_on_request(model, clip, capsys):
    assert main(["transcribe", clip, clip, "--model", model, "--beam-size", "1", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "transcribe" in err and "100%" in err, err
