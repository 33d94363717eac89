"""`make demo` end to end: every shipped model transcribes the synthesized clips (the README's main job)."""

from __future__ import annotations

import shutil

import pytest

from seqspeech.demo import main

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("flite") is None, reason="needs espeak-ng, flite")
def test_demo_runs_every_shipped_model(tmp_path, capsys):
    assert main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("whisper-tiny.en", "ctc-conformer-synth-en", "aed-conformer-synth-en"):
        assert f"with {name}" in out, name
    assert "word timestamps (CTC forced alignment): the@" in out
    assert "attention of the first clip: diagonality" in out
    # and back again: the default voice speaks Whisper's first transcript, Whisper reads it back
    spoken = next(line for line in out.splitlines() if "transcript spoken" in line).split(":", 1)[1].strip()
    back = next(line for line in out.splitlines() if "transcribed back" in line).split(":", 1)[1].strip()
    assert spoken and back and "watermark present" in out
    assert (tmp_path / "spoken.wav").is_file()
