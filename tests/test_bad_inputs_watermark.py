"""Bad input to `seqspeech detect-watermark`: the shared audio matrix in one call (good files still checked among
bad ones), silence and one-sample clips, a 10-minute file, wrong keys. Every readable file gets one verdict line on
stdout, every unreadable one exactly one error line on stderr naming it; no traceback."""

from __future__ import annotations

import time

import numpy as np
import pytest
import soundfile as sf

from seqspeech.audio.io import load_audio
from seqspeech.audio.watermark import MIN_RELIABLE_S, embed_watermark
from seqspeech.cli import main

TEN_MINUTES_S = 600
TEN_MINUTES_BUDGET_S = 60.0  # measured 0.9 s for 16 kHz mono and 2.6 s for 48 kHz stereo on 2 loaded CPU cores


def detect(capsys, *argv: str) -> tuple[int, list[str], list[str]]:
    """``seqspeech detect-watermark ARGV`` in-process: (exit code, stdout lines, stderr lines)."""
    capsys.readouterr()
    code = main(["detect-watermark", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "unexpected" not in err, err
    return code, out.splitlines(), err.splitlines()


def verdict(line: str, path: str) -> str:
    """The verdict of ``path``'s line (names may hold spaces: the verdict follows the padded name)."""
    assert line.startswith(path), (line, path)
    return line[len(path):].split()[0]


@pytest.fixture(scope="module")
def marked_clip(synth_speech, tmp_path_factory):
    """A marked 16 kHz speech clip (file) and its samples."""
    samples = load_audio(synth_speech("Glue the sheet to the dark blue background."), sr=16000)
    marked = embed_watermark(samples, 16000)
    path = tmp_path_factory.mktemp("marked") / "marked.wav"
    sf.write(path, marked, 16000, subtype="FLOAT")
    return path, marked


def test_the_audio_matrix_in_one_call(audio_matrix, capsys):
    cases = sorted(audio_matrix, key=lambda case: case.name)  # good and bad files interleaved
    assert any(not a.ok and b.ok for a, b in zip(cases, cases[1:]))  # a good file right after a bad one
    code, out, err = detect(capsys, *(str(case.path) for case in cases))
    good = [case for case in cases if case.ok]
    bad = [case for case in cases if not case.ok]
    assert good and bad
    assert code == 1  # some files could not be read
    assert len(out) == len(good) and len(err) == len(bad), (out, err)
    for case, line in zip(good, out):  # in the order given: every good file checked, bad ones before it or not
        assert verdict(line, str(case.path)) in ("present", "absent"), line
        assert "score=" in line
    for case in bad:
        lines = [line for line in err if str(case.path) in line]
        assert len(lines) == 1, (case.name, err)
        assert lines[0].startswith("seqspeech: error: ") and case.problem in lines[0].lower(), (case.name, lines[0])


def test_the_good_matrix_files_alone_exit_zero(audio_matrix, capsys):
    good = [str(case.path) for case in audio_matrix if case.ok]
    code, out, err = detect(capsys, *good)
    assert code == 0 and err == [] and len(out) == len(good)


def test_silence_and_a_single_sample_are_absent_with_a_note(tmp_path, capsys):
    silence, single, short = tmp_path / "silence.wav", tmp_path / "one sample.wav", tmp_path / "short.wav"
    sf.write(silence, np.zeros(48000), 16000)
    sf.write(single, np.array([0.25]), 16000)
    sf.write(short, np.random.default_rng(0).normal(0, 0.1, 8000), 16000)  # 0.5 s of noise
    code, out, err = detect(capsys, str(silence), str(single), str(short))
    assert code == 0 and err == []
    assert [verdict(line, str(p)) for line, p in zip(out, (silence, single, short))] == ["absent"] * 3
    assert "silent" in out[0]
    assert "too short to tell" in out[1] and f"{MIN_RELIABLE_S} s" in out[1]
    assert "too short to tell" in out[2]


def test_a_ten_minute_file_finishes_quickly(marked_clip, tmp_path, capsys):
    """The mark needs no synchronisation, so a marked clip repeated for 10 minutes still carries it."""
    _, marked = marked_clip
    repeats = int(np.ceil(TEN_MINUTES_S * 16000 / marked.size))
    long = tmp_path / "ten minutes.wav"
    sf.write(long, np.tile(marked, repeats)[: TEN_MINUTES_S * 16000], 16000)
    start = time.perf_counter()
    code, out, err = detect(capsys, str(long))
    seconds = time.perf_counter() - start
    assert code == 0 and err == []
    assert verdict(out[0], str(long)) == "present"
    assert seconds < TEN_MINUTES_BUDGET_S, seconds


def test_wrong_and_empty_keys(marked_clip, capsys):
    path, _ = marked_clip
    code, out, _ = detect(capsys, str(path))
    assert code == 0 and verdict(out[0], str(path)) == "present"
    for key in ("another-key", "0", " seqspeech", "ñandú 🔑"):
        code, out, err = detect(capsys, str(path), "--key", key)
        assert code == 0 and err == [] and verdict(out[0], str(path)) == "absent", key
    code, out, err = detect(capsys, str(path), "--key", "")
    assert code == 2 and out == []
    assert len(err) == 1 and err[0].startswith("seqspeech: error: ") and "--key" in err[0]
