"""Bad input for the recognisers' commands — `transcribe` (every model family), `align`, `plot-attention`,
`evaluate`: each input gets a result or one line on stderr naming it and its problem; no traceback, no partial
output, and the other inputs of the same call are still processed.

The audio cases come from the shared matrix (`audio_matrix` in conftest.py: empty, truncated, corrupt, text named
.wav, mp3 named .wav, video with and without sound, 1 sample, silence, noise, NaN/inf, clipping, DC offset,
8-96 kHz, 2-6 channels, 8/24/32-bit and float PCM, a folder, a dangling link, a missing path, a non-ASCII name).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from seqspeech.audio.io import load_audio
from seqspeech.cli import main
from seqspeech.data.synth import HARVARD_SENTENCES
from seqspeech.metrics.wer import cer
from seqspeech.text.normalize import EnglishTextNormalizer

FAMILIES = ["whisper-tiny.en", "ctc-conformer-synth-en", "aed-conformer-synth-en", "las-synth-en"]


def _clean(err: str) -> list[str]:
    """stderr lines, asserting none is a traceback or an 'unexpected' (a bug) error."""
    assert "Traceback" not in err and "unexpected" not in err, err
    return [line for line in err.splitlines() if line.strip()]


def check_errors(err: str, cases) -> None:
    """One `seqspeech: error:` line per bad case, naming it and its problem; nothing for the good ones."""
    lines = [line for line in _clean(err) if line.startswith("seqspeech: error:")]
    for case in cases:
        mine = [line for line in lines if f"{case.path}:" in line or f"{case.path} " in line]
        if case.ok:
            assert not mine, (case.name, mine)
        else:
            assert len(mine) == 1, (case.name, lines)
            assert case.problem in mine[0].lower(), (case.name, mine[0])
    assert len(lines) == sum(not c.ok for c in cases), lines


@pytest.mark.parametrize("model", FAMILIES)
def test_transcribe_every_family_sorts_good_from_bad_in_one_call(model, audio_matrix, tmp_path, capsys):
    files = [str(c.path) for c in audio_matrix]
    # the matrix has ~30 inputs: greedy keeps this quick; the default options are tested in test_cli.py
    assert main(["transcribe", *files, "--model", model, "--beam-size", "1", "--format", "jsonl"]) == 1
    captured = capsys.readouterr()
    check_errors(captured.err, audio_matrix)
    records = {r["path"]: r for r in map(json.loads, captured.out.splitlines())}
    assert set(records) == {str(c.path) for c in audio_matrix if c.ok}
    by_name = {c.name: records.get(str(c.path)) for c in audio_matrix}
    assert by_name["one sample.wav"]["text"] == "" and by_name["silence.wav"]["text"] == ""
    for name in ("speech.wav", "rate 44100.wav", "channels 4.wav", "pcm_24.wav", "mp3 named.wav",
                 "video with audio.mp4", "ñandú 日本語 talk.wav"):
        assert "smooth" in by_name[name]["text"].lower() or "canoe" in by_name[name]["text"].lower(), \
            (name, by_name[name]["text"])


def test_output_dir_gets_only_good_transcripts_and_no_clashes(audio_matrix, tmp_path, capsys):
    """Per-input files for the good inputs only; speech.wav and speech.flac do not overwrite each other."""
    files = [str(c.path) for c in audio_matrix]
    out = tmp_path / "out"
    assert main(["transcribe", *files, "--model", "ctc-conformer-synth-en", "--format", "srt",
                 "--output-dir", str(out)]) == 1
    _clean(capsys.readouterr().err)
    written = sorted(p.name for p in out.iterdir())
    assert not [n for n in written if n.startswith(".")], written  # no temp file left behind
    assert "speech.wav.srt" in written and "speech.flac.srt" in written
    assert len(written) == sum(c.ok for c in audio_matrix)


@pytest.fixture(scope="module")
def ten_minutes(tmp_path_factory, synth_speech) -> tuple[Path, list[str]]:
    """A 10-minute recording: 20 different sentences said in turn, 0.6 s apart, over and over."""
    sentences = HARVARD_SENTENCES[:20]
    pause = np.zeros(int(0.6 * 16000), np.float32)
    clips = [np.concatenate([load_audio(synth_speech(s)), pause]) for s in sentences]
    audio, said = [], []
    while sum(map(len, audio)) < 600 * 16000:
        audio.append(clips[len(said) % len(clips)])
        said.append(sentences[len(said) % len(sentences)])
    path = tmp_path_factory.mktemp("long") / "ten minutes.wav"
    sf.write(path, np.concatenate(audio)[: 600 * 16000], 16000)
    return path, said


@pytest.mark.parametrize("model, options", [("whisper-tiny.en", ["--beam-size", "1"]),
                                            ("ctc-conformer-synth-en", [])])
def test_ten_minute_file(model, options, ten_minutes, capsys):
    """Long input is read window by window (never whole, for Whisper); the transcript covers all of it."""
    path, said = ten_minutes
    assert main(["transcribe", str(path), "--model", model, "--format", "json", *options]) == 0
    captured = capsys.readouterr()
    _clean(captured.err)
    record = json.loads(captured.out)
    assert record["duration"] == pytest.approx(600, abs=0.1)
    assert record["segments"][-1]["end"] > 590
    norm = EnglishTextNormalizer()
    # the last sentence is cut at 600 s; the CTC model reads these espeak-ng clips at ~19 % CER, 50 % WER (it
    # runs words together), so the score only shows that every window was read
    assert cer([norm(" ".join(said[:-1]))], [norm(record["text"])]) < 0.3


def test_align_bad_inputs(audio_matrix, tmp_path, capsys):
    speech = next(c.path for c in audio_matrix if c.name == "speech.wav")
    for case in audio_matrix:
        if case.ok:
            continue
        assert main(["align", str(case.path), "the birch canoe"]) == 2
        (line,) = _clean(capsys.readouterr().err)
        assert str(case.path) in line and case.problem in line.lower(), line
    cases = {
        "empty transcript": ([str(speech), ""], "empty"),
        "text longer than the audio can hold": ([str(speech), "word " * 20_000], "longer"),
        "a text file that is missing": ([str(speech), "--text-file", str(tmp_path / "gone.txt")], "gone.txt"),
        "a text file that is not UTF-8": ([str(speech), "--text-file", str(_latin1(tmp_path))], "utf-8"),
        "a Whisper model": ([str(speech), "the birch", "--model", "whisper-tiny.en"], "ctc model"),
    }
    for what, (args, problem) in cases.items():
        assert main(["align", *args]) == 2, what
        (line,) = _clean(capsys.readouterr().err)
        assert problem in line.lower(), (what, line)
    one = next(c.path for c in audio_matrix if c.name == "one sample.wav")
    assert main(["align", str(one), "the birch canoe"]) == 2
    (line,) = _clean(capsys.readouterr().err)
    assert str(one) in line and "too short" in line.lower(), line


def _latin1(tmp_path: Path) -> Path:
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9 au lait".encode("latin-1"))
    return path


def test_align_scores_prefer_the_right_transcript(audio_matrix, capsys):
    speech = next(c.path for c in audio_matrix if c.name == "speech.wav")
    scores = {}
    for text in ("the birch canoe slid on the smooth planks", "a dog barked at the mailman all day long"):
        assert main(["align", str(speech), text]) == 0
        words = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [w["word"] for w in words] == text.split()
        assert all(0 <= w["score"] <= 1 for w in words), words
        scores[text] = np.mean([w["score"] for w in words])
    right, wrong = scores.values()
    assert right > wrong + 0.2, scores


def test_plot_attention_bad_inputs_leave_no_png(audio_matrix, tmp_path, capsys):
    png = tmp_path / "att.png"
    for case in audio_matrix:
        if case.ok:
            continue
        assert main(["plot-attention", "aed-conformer-synth-en", str(case.path), "-o", str(png)]) == 2
        (line,) = _clean(capsys.readouterr().err)
        assert str(case.path) in line and case.problem in line.lower(), line
        assert not png.exists()
    speech = next(c.path for c in audio_matrix if c.name == "speech.wav")
    (tmp_path / "a folder.png").mkdir()
    for args, problem in (([str(speech), "-o", str(tmp_path / "a folder.png")], "folder"),
                          ([str(speech), "-o", str(png), "--text", ""], "empty"),
                          ([str(speech), "-o", str(png), "--model-is-missing"], None)):
        if problem is None:
            with pytest.raises(SystemExit):  # argparse's own usage error
                main(["plot-attention", "aed-conformer-synth-en", *args])
            capsys.readouterr()
            continue
        assert main(["plot-attention", "aed-conformer-synth-en", *args]) == 2
        (line,) = _clean(capsys.readouterr().err)
        assert problem in line.lower(), line
    assert main(["plot-attention", "ctc-conformer-synth-en", str(speech), "-o", str(png)]) == 2
    assert "attention model" in capsys.readouterr().err
    assert not png.exists() and not list(tmp_path.glob(".*"))
    one = next(c.path for c in audio_matrix if c.name == "one sample.wav")
    assert main(["plot-attention", "aed-conformer-synth-en", str(one), "-o", str(png)]) in (0, 2)
    _clean(capsys.readouterr().err)


def test_evaluate_bad_hypotheses_and_references(tmp_path, capsys):
    hyps = tmp_path / "hyps.jsonl"
    refs = tmp_path / "refs.jsonl"
    hyps.write_text(json.dumps({"path": "a.wav", "text": "hello world"}) + "\n")
    refs.write_text(json.dumps({"path": "a.wav", "text": "hello world"}) + "\n")
    cases = {
        "missing hypotheses": ([str(tmp_path / "nope.jsonl")], "nope.jsonl"),
        "a folder": ([str(tmp_path)], str(tmp_path)),
        "invalid JSON": ([str(_write(tmp_path / "bad.jsonl", '{"path": "a.wav", "text": \n'))], "bad.jsonl:1"),
        "not UTF-8": ([str(_write(tmp_path / "latin.jsonl", b'{"path": "\xe9"}\n'))], "latin.jsonl:1"),
        "empty": ([str(_write(tmp_path / "empty.jsonl", ""))], "empty.jsonl"),
        "no text field": ([str(_write(tmp_path / "notext.jsonl", '{"path": "a.wav"}\n'))], "notext.jsonl"),
        "missing references": ([str(hyps), "--references", str(tmp_path / "gone.jsonl")], "gone.jsonl"),
        "no reference for a hypothesis": ([str(hyps), "--references",
                                           str(_write(tmp_path / "other.jsonl", '{"path": "b.wav", "text": "x"}\n'))],
                                          None),
        "three inputs": ([str(hyps), str(hyps), str(hyps)], "evaluate takes"),
        "Whisper as MODEL": (["whisper-tiny.en", str(hyps)], "transcribe --format jsonl"),
        "unknown mode": (["ctc-conformer-synth-en", str(_manifest(tmp_path)), "--modes", "greedy,sideways"],
                         "sideways"),
        "manifest missing": (["ctc-conformer-synth-en", str(tmp_path / "none.jsonl")], "none.jsonl"),
    }
    for what, (args, problem) in cases.items():
        code = main(["evaluate", *args])
        err = _clean(capsys.readouterr().err)
        if problem is None:  # scored, with the unmatched hypothesis reported
            assert code == 0, (what, err)
            continue
        assert code == 2 and len(err) == 1, (what, err)
        assert problem in err[0], (what, err[0])


def test_evaluate_manifest_skips_unreadable_audio_and_counts_it(audio_matrix, tmp_path, capsys):
    speech = next(c.path for c in audio_matrix if c.name == "speech.wav")
    corrupt = next(c.path for c in audio_matrix if c.name == "corrupt.wav")
    manifest = tmp_path / "test.jsonl"
    rows = [_row("good", speech, "the birch canoe slid on the smooth planks"), _row("bad", corrupt, "anything"),
            _row("gone", tmp_path / "gone.wav", "anything")]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["evaluate", "ctc-conformer-synth-en", str(manifest), "--modes", "greedy"]) == 0
    captured = capsys.readouterr()
    _clean(captured.err)
    result = json.loads(captured.out)
    assert result["utterances"] == 1 and result["skipped"] == 2, result
    assert any("corrupt.wav" in s for s in result["skipped_examples"]), result


def _row(uid: str, audio: Path, text: str) -> dict:
    return {"id": uid, "audio": str(audio), "text": text, "normalized_text": text, "duration": 2.0}


def _manifest(tmp_path: Path) -> Path:
    return _write(tmp_path / "manifest.jsonl", json.dumps(_row("a", tmp_path / "a.wav", "hello")) + "\n")


def _write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path
