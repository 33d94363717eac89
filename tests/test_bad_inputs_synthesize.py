"""Bad input to `seqspeech synthesize`: every case gets a result or one error line on stderr naming the input and
the problem; no traceback, no partial WAV left behind, and with --input the good lines are still written.

A tiny untrained voice (FastSpeech 2 + HiFi-GAN, a few thousand weights) keeps each call fast; what is checked is
the handling of the input, not how the voice sounds. The text front end needs espeak-ng for words outside the CMU
dictionary, so a few tests use only dictionary words.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from seqspeech.cli import main
from seqspeech.errors import DataError, OutputError
from seqspeech.fileio import atomic_path
from seqspeech.text.frontend import MAX_TEXT_CHARS, TTSFrontend
from seqspeech.tts.fastspeech2 import FastSpeech2, FastSpeech2Config
from seqspeech.tts.mel import MelConfig
from seqspeech.tts.package import ACOUSTIC_FILE, VOCODER_FILE, save_tts_package
from seqspeech.tts.synthesizer import Synthesizer
from seqspeech.tts.vocoders.hifigan import HiFiGAN, hifigan_v2

GOOD = "Hello there."


@pytest.fixture(scope="module")
def voice(tmp_path_factory) -> Path:
    """A voice folder with tiny untrained models (fast on CPU; it speaks noise, which is all these tests need)."""
    folder = tmp_path_factory.mktemp("tiny voice")
    frontend = TTSFrontend()
    torch.manual_seed(0)
    config = FastSpeech2Config(vocab_size=frontend.vocab_size, d_model=16, heads=2, ff_dim=32, encoder_layers=1,
                               decoder_layers=1, variance_channels=16, pitch_bins=8, energy_bins=8,
                               postnet_layers=1, postnet_channels=16, decoder_window=6)
    acoustic = FastSpeech2(config).eval()
    with torch.no_grad():  # an untrained duration predictor says ~0 frames: make every token last a few
        acoustic.duration_predictor.proj.bias.fill_(1.5)
    save_tts_package(folder / ACOUSTIC_FILE, "fastspeech2", acoustic, config, mel=MelConfig(), frontend=frontend,
                     dtype=torch.float32)
    vconfig = hifigan_v2(upsample_initial_channel=16, resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1,),),
                         discriminator_channels=32, mpd_periods=(2,), msd_scales=1)
    save_tts_package(folder / VOCODER_FILE, "hifigan", HiFiGAN(vconfig).eval(), vconfig, mel=MelConfig(),
                     dtype=torch.float32)
    return folder


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``seqspeech synthesize ARGV`` in-process: (exit code, stdout, stderr), with the checks every case shares."""
    capsys.readouterr()
    code = main(["synthesize", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "unexpected" not in err, err  # "unexpected ...": a bug caught by main()
    return code, out, err


def one_error(err: str, *fragments: str) -> str:
    """The single stderr line of a failed call; it must contain every fragment (the input's name, the problem)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("seqspeech: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Every file under ``folder`` (temp files of an atomic write start with '.')."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    "text, problem",
    [
        ("", "empty"),
        ("   \n\t  ", "empty"),
        ("🙂🎉👍", "nothing to speak"),
        ("\x00\x01\x02\x1b", "nothing to speak"),
        ("!!! ... ???", "nothing to speak"),
    ],
    ids=["empty", "whitespace", "emoji", "control", "punctuation"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["offline", "stream"])
def test_unspeakable_text_is_one_error_and_no_wav(voice, tmp_path, capsys, text, problem, stream):
    out = tmp_path / "out.wav"
    code, stdout, err = run(capsys, text, "-o", str(out), "--model", str(voice), *(["--stream"] if stream else []))
    assert code == 2 and stdout == ""
    one_error(err, problem)
    assert leftovers(tmp_path) == []  # no out.wav, no temp file


def test_odd_but_speakable_text_is_spoken(voice, tmp_path, capsys):
    for name, text in [("controls.wav", "Hello\x00 there\x07, my\tfriend."), ("accents.wav", "Café naïve, résumé."),
                       ("mixed scripts.wav", "Hello 日本語 and ñandú there.")]:
        code, stdout, err = run(capsys, text, "-o", str(tmp_path / name), "--model", str(voice))
        assert code == 0 and err == "", (name, err)
        audio, rate = sf.read(tmp_path / name)
        assert rate == 16000 and audio.size > 0 and np.isfinite(audio).all()
    assert leftovers(tmp_path) == ["accents.wav", "controls.wav", "mixed scripts.wav"]


def test_text_over_the_limit_points_to_input(voice, tmp_path, capsys):
    code, _, err = run(capsys, "a" * (MAX_TEXT_CHARS + 1), "-o", str(tmp_path / "out.wav"), "--model", str(voice))
    assert code == 2
    one_error(err, f"{MAX_TEXT_CHARS:,}", "--input")
    assert leftovers(tmp_path) == []


def test_long_text_is_spoken_a_sentence_at_a_time_with_a_progress_bar(voice, tmp_path, capsys):
    sentences = 10
    text = " ".join(f"This is sentence number {i + 1}." for i in range(sentences))
    out = tmp_path / "long.wav"
    code, stdout, err = run(capsys, text, "-o", str(out), "--model", str(voice), "--progress")
    assert code == 0
    assert f"{sentences}/{sentences}" in err and "sentence" in err  # the bar counted every sentence
    report = json.loads(stdout)
    audio, rate = sf.read(out)
    assert report["seconds"] == pytest.approx(audio.size / rate, abs=1e-3)
    code, _, err = run(capsys, GOOD + " " + GOOD, "-o", str(out), "--model", str(voice), "--no-progress")
    assert code == 0 and err == ""


def test_a_huge_text_starts_speaking_without_holding_it_all(voice):
    """100,000 characters: the generator yields the first sentence's audio long before the rest exists."""
    synth = Synthesizer.from_path(voice, device="cpu")
    text = ("The cat sat on the mat. " * 5000)[:100_000]
    chunks = synth.synthesize_sentences(text, progress=False)
    first = next(chunks)
    assert 0 < first.size < 10 * synth.sample_rate  # one sentence of audio, not the text's ~2 hours
    chunks.close()


def test_sentence_by_sentence_audio_is_the_offline_audio(voice):
    synth = Synthesizer.from_path(voice, device="cpu")
    text = "The first sentence. A second one, longer than the first! And a third?"
    whole = synth.synthesize(text, watermark=False)
    pieces = list(synth.synthesize_sentences(text, watermark=False, progress=False))
    assert len(pieces) == 3
    np.testing.assert_array_equal(np.concatenate(pieces), whole)
    marked = np.concatenate(list(synth.synthesize_sentences(text, progress=False)))
    assert marked.size == whole.size
    if np.abs(synth.synthesize(text)).max() < 1.0:  # nothing scaled down for full scale: the same marked audio
        np.testing.assert_allclose(marked, synth.synthesize(text), atol=1e-5)


def test_stdin_that_is_not_utf8_is_one_error(voice, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"caf\xe9 au lait")))
    code, _, err = run(capsys, "-", "-o", str(tmp_path / "out.wav"), "--model", str(voice))
    assert code == 2
    one_error(err, "stdin", "UTF-8")
    assert leftovers(tmp_path) == []


# ----------------------------------------------------------------------------------------------------- --input


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("missing.txt", None, "not found"),
        ("a folder.txt", "DIR", "is a folder"),
        ("binary.txt", bytes(range(256)) * 4, "binary"),
        ("latin1.txt", "one line\ncafé au lait\n".encode("latin-1"), ":2: not UTF-8"),
        ("empty.txt", b"", "no text"),
        ("blank.txt", b"\n   \n\t\n", "no text"),
    ],
)
def test_unreadable_input_file_is_one_error(voice, tmp_path, capsys, name, content, problem):
    path = tmp_path / name
    if content == "DIR":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    wavs = tmp_path / "wavs"
    code, stdout, err = run(capsys, "--input", str(path), "--output-dir", str(wavs), "--model", str(voice))
    assert code == 2 and stdout == ""
    one_error(err, str(path), problem)
    assert not wavs.exists()


def test_bad_lines_are_reported_and_good_lines_still_written(voice, tmp_path, capsys):
    lines = tmp_path / "lines.txt"
    text = "\ufeffHello there.\n🙂🙂\n\nGood morning, world.\n\x01\x02\n!!!\nThe end.\n"
    lines.write_text(text, encoding="utf-8")
    wavs = tmp_path / "wavs"
    code, stdout, err = run(capsys, "--input", str(lines), "--output-dir", str(wavs), "--model", str(voice),
                            "--no-progress")
    assert code == 1
    assert leftovers(wavs) == ["0001.wav", "0004.wav", "0007.wav"]  # named by line number; the BOM is not spoken
    assert len(stdout.splitlines()) == 3
    errors = err.strip().splitlines()
    assert [line for line in errors if line.startswith("seqspeech: error: ")] == errors[:3]
    for line, number in zip(errors, (2, 5, 6)):
        assert f"{lines}:{number}: " in line and "nothing to speak" in line
    assert "3 of 6 lines" in errors[3]


def test_many_lines_show_a_progress_bar(voice, tmp_path, capsys):
    lines = tmp_path / "lines.txt"
    lines.write_text("".join(f"Line {i}.\n" for i in range(8)) + "🙂\n")
    code, _, err = run(capsys, "--input", str(lines), "--output-dir", str(tmp_path / "wavs"), "--model", str(voice),
                       "--progress")
    assert code == 1
    assert "9/9" in err and "line" in err  # the bar reached the end, the bad line counted too
    assert f"{lines}:9: " in err
    assert len(leftovers(tmp_path / "wavs")) == 8


# ------------------------------------------------------------------------------------------------------ outputs


def test_output_that_is_a_folder_is_one_error(voice, tmp_path, capsys):
    folder = tmp_path / "out.wav"
    folder.mkdir()
    code, _, err = run(capsys, GOOD, "-o", str(folder), "--model", str(voice))
    assert code == 2
    one_error(err, str(folder), "is a folder")
    assert leftovers(tmp_path) == []


def test_missing_parent_folders_are_made(voice, tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "out.wav"
    code, _, err = run(capsys, GOOD, "-o", str(out), "--model", str(voice))
    assert code == 0 and err == "" and out.is_file()
    wavs = tmp_path / "made" / "wavs"
    (tmp_path / "one.txt").write_text(GOOD + "\n")
    code, _, _ = run(capsys, "--input", str(tmp_path / "one.txt"), "--output-dir", str(wavs), "--model", str(voice))
    assert code == 0 and leftovers(wavs) == ["0001.wav"]


def test_a_line_whose_wav_cannot_be_written_does_not_stop_the_others(voice, tmp_path, capsys):
    lines = tmp_path / "lines.txt"
    lines.write_text("Line one.\nLine two.\nLine three.\n")
    wavs = tmp_path / "wavs"
    (wavs / "0002.wav").mkdir(parents=True)  # a folder in the way of line 2's WAV
    code, _, err = run(capsys, "--input", str(lines), "--output-dir", str(wavs), "--model", str(voice))
    assert code == 1
    assert f"{lines}:2: {wavs / '0002.wav'}: is a folder" in err
    assert leftovers(wavs) == ["0001.wav", "0003.wav"]


def test_output_under_a_file_is_one_error(voice, tmp_path, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    for argv in (["-o", str(blocker / "out.wav")], ["-o", str(blocker / "sub" / "out.wav")]):
        code, _, err = run(capsys, GOOD, *argv, "--model", str(voice))
        assert code == 2
        one_error(err, argv[1], "notes.txt is a file")
    lines = tmp_path / "lines.txt"
    lines.write_text(GOOD + "\n")
    code, _, err = run(capsys, "--input", str(lines), "--output-dir", str(blocker), "--model", str(voice))
    assert code == 2
    one_error(err, str(blocker), "not a folder")
    assert leftovers(tmp_path) == ["lines.txt", "notes.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_folder_is_one_error(voice, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, _, err = run(capsys, GOOD, "-o", str(locked / "out.wav"), "--model", str(voice))
        assert code == 2
        one_error(err, str(locked / "out.wav"), "permission")
        assert leftovers(locked) == []
    finally:
        locked.chmod(0o755)


def test_a_refused_write_is_one_error(voice, tmp_path, capsys, monkeypatch):
    """What a read-only folder or a full disk looks like to us (root may write anywhere, so it is simulated)."""
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    out = tmp_path / "out.wav"
    code, _, err = run(capsys, GOOD, "-o", str(out), "--model", str(voice))
    assert code == 2
    one_error(err, f"{out}: cannot write (Permission denied)")
    assert leftovers(tmp_path) == []


def test_names_with_spaces_and_non_ascii(voice, tmp_path, capsys):
    out = tmp_path / "my folder ñandú" / "日本語 out put.wav"
    code, stdout, err = run(capsys, GOOD, "-o", str(out), "--model", str(voice))
    assert code == 0 and err == "" and out.is_file()
    assert json.loads(stdout)["output"] == str(out)
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(out).st_mode & 0o777 == 0o666 & ~umask  # as open() makes a file (mkstemp's would be 0600)


def test_failure_while_writing_leaves_no_partial_wav(voice, tmp_path, capsys, monkeypatch):
    """The second sentence fails after the first one's audio was written: no out.wav, no temp file."""
    calls = {"n": 0}
    vocode = Synthesizer.vocode

    def failing(self, mel):
        calls["n"] += 1
        if calls["n"] == 2:
            raise DataError("simulated failure in the vocoder")
        return vocode(self, mel)

    monkeypatch.setattr(Synthesizer, "vocode", failing)
    text = "The first sentence is fine. The second one fails. The third is never reached."
    code, _, err = run(capsys, text, "-o", str(tmp_path / "out.wav"), "--model", str(voice))
    assert code == 2 and calls["n"] == 2
    one_error(err, "simulated failure")
    assert leftovers(tmp_path) == []

    calls["n"] = 0
    lines = tmp_path / "lines.txt"
    lines.write_text("Line one.\nTwo sentences. Fail here.\nLine three.\n")
    code, _, err = run(capsys, "--input", str(lines), "--output-dir", str(tmp_path / "wavs"), "--model", str(voice))
    assert code == 1
    assert f"{lines}:2: simulated failure" in err
    assert leftovers(tmp_path / "wavs") == ["0001.wav", "0003.wav"]


def test_interrupted_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.wav"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"RIFF half a file")
            raise KeyboardInterrupt
    assert leftovers(tmp_path) == []
    target.mkdir()
    with pytest.raises(OutputError, match="out.wav: is a folder"):
        with atomic_path(target):
            pass


# --------------------------------------------------------------------------------------------- model and vocoder


def test_bad_voice_or_vocoder_is_one_error(voice, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"not a model at all" * 10)
    junk_pt = tmp_path / "junk.pt"
    junk_pt.write_bytes(b"\x80\x04junk")
    empty = tmp_path / "empty folder"
    empty.mkdir()
    truncated = tmp_path / "truncated voice"
    truncated.mkdir()
    (truncated / ACOUSTIC_FILE).write_bytes((voice / ACOUSTIC_FILE).read_bytes()[:3000])
    cases = [
        (["--model", str(tmp_path / "no such voice")], ["no such voice", "slt"]),
        (["--model", "ctc-conformer-synth-en"], ["ctc-conformer-synth-en", "speech recognition model"]),
        (["--model", str(corrupt)], [str(corrupt), "not a readable"]),
        (["--model", str(junk_pt)], [str(junk_pt), "not a readable"]),
        (["--model", str(empty)], [str(empty), "no acoustic model"]),
        (["--model", str(truncated)], [str(truncated / ACOUSTIC_FILE), "not a readable"]),
        (["--model", str(voice), "--vocoder", str(tmp_path / "no vocoder.safetensors")], ["no vocoder", "no such"]),
        (["--model", str(voice), "--vocoder", str(corrupt)], [str(corrupt), "not a readable"]),
        (["--model", str(voice), "--vocoder", str(voice / ACOUSTIC_FILE)], ["fastspeech2", "expected hifigan"]),
        (["--model", str(voice), "--vocoder", str(empty)], [str(empty), "without a vocoder"]),
    ]
    out = tmp_path / "out.wav"
    for argv, fragments in cases:
        code, stdout, err = run(capsys, GOOD, "-o", str(out), *argv)
        assert code == 2 and stdout == "", argv
        one_error(err, *fragments)
        assert not out.exists()
    # a voice folder as --vocoder means its vocoder
    code, _, err = run(capsys, GOOD, "-o", str(out), "--model", str(voice), "--vocoder", str(voice))
    assert code == 0 and out.is_file(), err


# -------------------------------------------------------------------------------------------------- controls


@pytest.mark.parametrize(
    "flag, value",
    [("--speed", "0"), ("--speed", "-1"), ("--speed", "nan"), ("--speed", "inf"), ("--speed", "100"),
     ("--pitch", "nan"), ("--pitch", "-inf"), ("--energy", "-1"), ("--energy", "0")],
)
def test_out_of_range_controls_fail_before_the_voice_loads(tmp_path, capsys, flag, value):
    # the voice does not exist: the control is checked first, so its error is the one reported
    code, _, err = run(capsys, GOOD, "-o", str(tmp_path / "out.wav"), "--model", str(tmp_path / "nope"),
                       f"{flag}={value}")
    assert code == 2
    one_error(err, f"{flag}:", "must lie in", f"got {float(value)}")
    assert leftovers(tmp_path) == []


def test_controls_in_range_are_spoken(voice, tmp_path, capsys):
    code, stdout, err = run(capsys, GOOD, "-o", str(tmp_path / "out.wav"), "--model", str(voice),
                            "--speed", "0.25", "--pitch", "-12", "--energy", "4", "--stream")
    assert code == 0 and err == ""
    assert "first_chunk_ms" in stdout
