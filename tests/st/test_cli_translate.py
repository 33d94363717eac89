"""`seqspeech translate` and `translate-text` as a user runs them, with the shipped models, good input and bad."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from seqspeech.cli import main


def test_translate_text_defaults_and_wait_k(capsys):
    assert main(["translate-text", "¿Dónde está la llave?"]) == 0  # written form: brought to spoken form first
    assert capsys.readouterr().out.strip() == "where is the key"
    assert main(["translate-text", "ellos", "visitarán", "a", "pablo", "--wait-k", "3"]) == 0
    assert capsys.readouterr().out.strip() == "they will visit pablo"


def test_translate_text_from_a_file(tmp_path, capsys):
    lines = tmp_path / "es.txt"
    lines.write_text("dónde está la cama\n\nellos bailaron\n", encoding="utf-8")
    assert main(["translate-text", "--file", str(lines)]) == 0
    assert capsys.readouterr().out.splitlines() == ["where is the bed", "they danced"]


@pytest.mark.parametrize("argv,message", [
    (["translate-text"], "nothing to translate"),
    (["translate-text", "hola", "--wait-k", "0"], "--wait-k must be >= 1"),
    (["translate-text", "...", "--model", "slt"], "not a text translation"),
    (["translate-text", "  ?!  "], "nothing to translate"),
])
def test_translate_text_bad_input_is_one_line(argv, message, capsys):
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_translate_speech(tmp_path, synth_speech, capsys):
    src = synth_speech("¿Dónde está la cama?", voice="es")
    out = tmp_path / "out.wav"
    assert main(["translate", str(src), "-o", str(out), "--text"]) == 0
    printed = capsys.readouterr().out
    assert "source: dónde está la cama" in printed and "translation: where is the bed" in printed
    audio, rate = sf.read(out)
    assert rate == 16000 and len(audio) > 0.5 * rate


def test_translate_silence_and_missing_input_say_so_and_write_nothing(tmp_path, capsys):
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(16000, np.float32), 16000)
    out = tmp_path / "out.wav"
    assert main(["translate", str(quiet), "-o", str(out)]) != 0
    assert "no speech recognised" in capsys.readouterr().err
    assert main(["translate", str(tmp_path / "missing.wav"), "-o", str(out)]) != 0
    assert "missing.wav: audio file not found" in capsys.readouterr().err
    assert not out.exists()
