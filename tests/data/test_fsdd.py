"""FSDD: the reader on tiny fake trees (wav folder, recordings/, the tarball), `corpus prepare` on bad inputs for
every kind, connected-digit strings, and results/asr_fsdd.py run small on the real recordings."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from seqspeech.cli import main
from seqspeech.data.corpora import READERS, read_corpus
from seqspeech.data.corpora.fsdd import (
    DIGIT_WORDS,
    build_connected_digits,
    extract_fsdd,
    fsdd_clip,
    read_fsdd,
)
from seqspeech.data.manifest import read_manifest
from seqspeech.errors import ConfigError, DataError

FSDD_SR = 8_000
SPEAKERS = ("jackson", "theo")
DIGITS = (0, 3, 7)
TAKES = (0, 4, 5, 12)
ROOT = Path(__file__).resolve().parents[2]


def _clip(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * FSDD_SR)) / FSDD_SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _fake_fsdd(folder: Path) -> Path:
    """``folder/{digit}_{speaker}_{take}.wav`` for SPEAKERS x DIGITS x TAKES; clip length encodes digit and take."""
    folder.mkdir(parents=True, exist_ok=True)
    for s, speaker in enumerate(SPEAKERS):
        for digit in DIGITS:
            for take in TAKES:
                seconds = 0.2 + 0.01 * digit + 0.001 * take
                sf.write(folder / f"{digit}_{speaker}_{take}.wav", _clip(seconds, 200 + 100 * s), FSDD_SR,
                         subtype="PCM_16")
    return folder


def _tarball(path: Path, recordings: Path, extra: dict[str, bytes] | None = None) -> Path:
    """``path`` (.tar.gz) holding ``recordings/*.wav`` (as the dataset ships) plus ``extra`` members."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(recordings, arcname="recordings")
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


N_CLIPS = len(SPEAKERS) * len(DIGITS) * len(TAKES)


# ---------------------------------------------------------------- reader


def test_reads_a_wav_folder(tmp_path: Path) -> None:
    folder = _fake_fsdd(tmp_path / "wavs")
    utts = read_fsdd(folder)
    assert len(utts) == N_CLIPS
    # sorted by speaker, digit, take (take numerically: 5 before 12)
    assert [u.id for u in utts[: len(TAKES)]] == [f"0_jackson_{t}" for t in TAKES]
    seven = next(u for u in utts if u.id == "7_theo_12")
    assert seven.text == seven.normalized_text == "seven"  # spoken form, as our models read and write
    assert seven.speaker == "theo" and seven.language == "en"
    assert Path(seven.audio) == folder / "7_theo_12.wav"
    assert seven.duration == pytest.approx(0.2 + 0.07 + 0.012, abs=1e-3)
    assert fsdd_clip(seven) == fsdd_clip("7_theo_12")
    clip = fsdd_clip(seven)
    assert (clip.digit, clip.speaker, clip.take, clip.word, clip.split) == (7, "theo", 12, "seven", "train")
    assert read_fsdd(folder, with_durations=False)[0].duration == 0.0
    assert READERS["fsdd"] is read_fsdd
    assert [u.id for u in read_corpus("fsdd", folder)] == [u.id for u in utts]


def test_splits_by_take_and_speaker(tmp_path: Path) -> None:
    folder = _fake_fsdd(tmp_path)
    test = read_fsdd(folder, split="test")
    assert {fsdd_clip(u).take for u in test} == {0, 4}  # takes 0-4 are the dataset's test set
    train = read_fsdd(folder, split="train")
    assert {fsdd_clip(u).take for u in train} == {5, 12} and len(test) + len(train) == N_CLIPS
    held_out = read_fsdd(folder, speakers=["theo"])
    assert {u.speaker for u in held_out} == {"theo"} and len(held_out) == N_CLIPS // 2
    assert {u.speaker for u in read_fsdd(folder, split="train", speakers=["jackson"])} == {"jackson"}
    with pytest.raises(DataError, match=r"no FSDD recordings of speaker\(s\) \['nobody'\]; speakers: \['jackson'"):
        read_fsdd(folder, speakers=["nobody"])
    with pytest.raises(ConfigError, match="split must be one of"):
        read_fsdd(folder, split="dev")
    with pytest.raises(DataError, match="not an FSDD id"):
        fsdd_clip("LJ001-0001")


def test_accepts_recordings_folder_and_the_tarball(tmp_path: Path) -> None:
    recordings = _fake_fsdd(tmp_path / "dist" / "recordings")
    expected = [u.id for u in read_fsdd(recordings)]
    assert [u.id for u in read_fsdd(tmp_path / "dist")] == expected  # a folder holding recordings/

    archive = _tarball(tmp_path / "shared" / "recordings.tar.gz", recordings)
    utts = read_fsdd(archive, extract_to=tmp_path / "cache")
    assert [u.id for u in utts] == expected
    assert all(Path(u.audio).parent == tmp_path / "cache" / "recordings" for u in utts)
    # a folder holding only the archive works too; files already extracted are not written again
    stamp = (tmp_path / "cache" / "recordings" / "0_theo_0.wav").stat().st_mtime_ns
    assert [u.id for u in read_fsdd(tmp_path / "shared", extract_to=tmp_path / "cache")] == expected
    assert (tmp_path / "cache" / "recordings" / "0_theo_0.wav").stat().st_mtime_ns == stamp


def test_extraction_writes_only_recordings_by_name(tmp_path: Path) -> None:
    recordings = _fake_fsdd(tmp_path / "recordings")
    wav = (recordings / "3_theo_4.wav").read_bytes()
    archive = _tarball(tmp_path / "a.tar.gz", recordings,
                       {"../../2_evil_1.wav": wav, "recordings/README.md": b"hi", "recordings/x.wav": wav})
    out = extract_fsdd(archive, tmp_path / "dest")
    assert out == tmp_path / "dest" / "recordings"
    assert (out / "2_evil_1.wav").is_file() and not (tmp_path / "2_evil_1.wav").exists()  # no path traversal
    assert not (out / "README.md").exists() and not (out / "x.wav").exists()
    assert len(list(out.iterdir())) == N_CLIPS + 1


def test_reader_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing: FSDD root folder not found"):
        read_fsdd(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: empty folder"):
        read_fsdd(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"notes\.txt: a file, not an FSDD folder"):
        read_fsdd(tmp_path / "notes.txt")
    (tmp_path / "wrong").mkdir()
    (tmp_path / "wrong" / "speech.wav").write_bytes(b"")
    with pytest.raises(DataError, match=r"wrong: no FSDD recordings here"):
        read_fsdd(tmp_path / "wrong")
    (tmp_path / "broken.tar.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"broken\.tar\.gz: not a readable tar archive"):
        read_fsdd(tmp_path / "broken.tar.gz", extract_to=tmp_path / "cache")
    with tarfile.open(tmp_path / "other.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "notes.txt", arcname="notes.txt")
    with pytest.raises(DataError, match=r"other\.tar\.gz: no FSDD recordings"):
        read_fsdd(tmp_path / "other.tar.gz", extract_to=tmp_path / "cache")


def test_odd_wav_names_are_ignored_with_one_warning(tmp_path: Path) -> None:
    folder = _fake_fsdd(tmp_path)
    sf.write(folder / "seven.wav", _clip(0.1, 300), FSDD_SR)
    with pytest.warns(UserWarning, match=r"ignored 1 \.wav file\(s\) not named .*seven\.wav"):
        assert len(read_fsdd(folder)) == N_CLIPS


# ---------------------------------------------------------------- corpus prepare


def _prepare(capsys, *args: str) -> tuple[int, str]:
    code = main(["corpus", "prepare", *args])
    return code, capsys.readouterr().err


def test_prepare_fsdd_from_the_tarball(tmp_path: Path, capsys) -> None:
    archive = _tarball(tmp_path / "recordings.tar.gz", _fake_fsdd(tmp_path / "src" / "recordings"))
    out = tmp_path / "data" / "fsdd" / "test.jsonl"
    code, err = _prepare(capsys, "fsdd", str(archive), str(out), "--split", "test")
    assert code == 0, err
    utts = read_manifest(out)
    assert len(utts) == N_CLIPS // 2 and "utterances ->" in err
    assert all(Path(u.audio).parent == out.parent / "recordings" for u in utts)  # extracted next to OUT
    other = tmp_path / "elsewhere"
    code, err = _prepare(capsys, "fsdd", str(archive), str(tmp_path / "all.jsonl"), "--extract-to", str(other))
    assert code == 0, err
    assert len(read_manifest(tmp_path / "all.jsonl")) == N_CLIPS and (other / "recordings").is_dir()


KINDS = ("librispeech", "ljspeech", "commonvoice", "kaldi", "fsdd")


@pytest.mark.parametrize("kind", KINDS)
def test_prepare_bad_sources_are_one_line_errors(kind: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.jsonl"
    (tmp_path / "empty").mkdir()
    (tmp_path / "wrong").mkdir()
    (tmp_path / "wrong" / "readme.txt").write_text("not a corpus")
    (tmp_path / "a_file.txt").write_text("x")
    for src, problem in [("missing", "not found"), ("a_file.txt", "a file, not"), ("empty", "empty folder"),
                         ("wrong", "")]:
        code, err = _prepare(capsys, kind, str(tmp_path / src), str(out))
        assert code == 2, (kind, src, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("seqspeech: error: "), err
        assert str(tmp_path / src) in lines[0] and problem in lines[0]
        assert not out.exists() and not list(tmp_path.glob(".out.jsonl*"))


@pytest.mark.parametrize("kind", KINDS)
def test_prepare_unwritable_output_is_a_one_line_error(kind: str, tmp_path: Path, capsys) -> None:
    src = _fake_fsdd(tmp_path / "src")  # only fsdd can read it: the output is checked before the source
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_dir").mkdir()
    for out, problem in [(tmp_path / "a_file" / "out.jsonl", "is a file, not a folder"),
                         (tmp_path / "a_dir", "is a folder")]:
        code, err = _prepare(capsys, kind, str(src), str(out))
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert str(out) in err and problem in err
    assert list((tmp_path / "a_dir").iterdir()) == []


def test_prepare_unwritable_folder(tmp_path: Path, capsys) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes to read-only folders")
    src = _fake_fsdd(tmp_path / "src")
    (tmp_path / "ro").mkdir(mode=0o555)
    code, err = _prepare(capsys, "fsdd", str(src), str(tmp_path / "ro" / "out.jsonl"))
    assert code == 2 and "no permission" in err


def test_prepare_writes_nothing_without_audio_and_rejects_foreign_options(tmp_path: Path, capsys) -> None:
    (tmp_path / "lj").mkdir()
    (tmp_path / "lj" / "metadata.csv").write_text("LJ1|a|a\n")
    out = tmp_path / "out.jsonl"
    code, err = _prepare(capsys, "ljspeech", str(tmp_path / "lj"), str(out))  # (and a warning: 1 skipped)
    assert code == 2 and "no ljspeech utterances with audio found; nothing written" in err and not out.exists()
    code, err = _prepare(capsys, "kaldi", str(tmp_path / "lj"), str(out), "--split", "test")
    assert code == 2 and "--split is not supported for kaldi" in err
    code, err = _prepare(capsys, "ljspeech", str(tmp_path / "lj"), str(out), "--extract-to", str(tmp_path))
    assert code == 2 and "--extract-to is only for fsdd" in err
    code, err = _prepare(capsys, "fsdd", str(_fake_fsdd(tmp_path / "f")), str(out), "--split", "dev")
    assert code == 2 and "split must be one of" in err and not out.exists()


# ---------------------------------------------------------------- connected digits


def test_connected_digit_strings(tmp_path: Path) -> None:
    clips = read_fsdd(_fake_fsdd(tmp_path / "wavs"), split="test")
    lengths = {u.id: u.duration for u in clips}
    manifest = build_connected_digits(clips, tmp_path / "a", count=12, min_digits=2, max_digits=4, seed=3)
    utts = read_manifest(manifest)
    assert [u.id for u in utts] == [f"fsdd-digits-{i:04d}" for i in range(12)]
    assert [u.speaker for u in utts] == list(SPEAKERS) * 6  # every speaker an equal share
    for u in utts:
        words = u.text.split()
        assert 2 <= len(words) <= 4 and set(words) <= {DIGIT_WORDS[d] for d in DIGITS}
        assert u.normalized_text == u.text
        wave, sr = sf.read(u.audio)
        assert sr == 16_000 and u.duration == pytest.approx(len(wave) / sr, abs=1e-4)
        # the speaker's clips (each 0.2-0.3 s) plus len(words) + 1 gaps of 0.1-0.3 s
        assert 0.2 * len(words) + 0.1 * (len(words) + 1) - 0.01 <= u.duration
        assert u.duration <= 0.3 * len(words) + 0.3 * (len(words) + 1) + 0.01
        lead = wave[: int(0.1 * sr)]
        assert 20 * np.log10(np.sqrt(np.mean(lead**2))) == pytest.approx(-60.0, abs=3.0)  # low noise, not speech
    assert any(len(u.text.split()) == 2 for u in utts) and any(len(u.text.split()) == 4 for u in utts)
    assert max(lengths.values()) < 0.3

    def digest(folder: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}

    build_connected_digits(clips, tmp_path / "b", count=12, min_digits=2, max_digits=4, seed=3)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")  # deterministic by seed, byte for byte
    build_connected_digits(clips, tmp_path / "c", count=12, min_digits=2, max_digits=4, seed=4)
    assert [u.text for u in read_manifest(tmp_path / "c" / manifest.name)] != [u.text for u in utts]
    first = build_connected_digits(clips, tmp_path / "d", count=3, min_digits=2, max_digits=4, seed=3)
    assert [u.text for u in read_manifest(first)] == [u.text for u in utts[:3]]  # a prefix of a longer build


def test_connected_digits_silence_and_bad_arguments(tmp_path: Path) -> None:
    clips = read_fsdd(_fake_fsdd(tmp_path / "wavs"), split="test")
    manifest = build_connected_digits(clips, tmp_path / "s", count=2, noise_dbfs=None, gap_s=(0.2, 0.2))
    wave, sr = sf.read(read_manifest(manifest)[0].audio)
    assert np.all(wave[: int(0.2 * sr)] == 0.0) and np.any(wave != 0.0)
    with pytest.raises(ConfigError, match="count must be"):
        build_connected_digits(clips, tmp_path / "x", count=0)
    with pytest.raises(ConfigError, match="min_digits"):
        build_connected_digits(clips, tmp_path / "x", min_digits=3, max_digits=2)
    with pytest.raises(ConfigError, match="gap_s"):
        build_connected_digits(clips, tmp_path / "x", gap_s=(0.3, 0.1))
    with pytest.raises(ConfigError, match="noise_dbfs"):
        build_connected_digits(clips, tmp_path / "x", noise_dbfs=3.0)
    with pytest.raises(DataError, match="no clips"):
        build_connected_digits([], tmp_path / "x")
    with pytest.raises(DataError, match="has no speaker"):
        build_connected_digits([clips[0].__class__(**{**clips[0].to_dict(), "speaker": None})], tmp_path / "x")


# ---------------------------------------------------------------- results/asr_fsdd.py, small, on the real data


def _real_fsdd() -> Path | None:
    for candidate in (Path("/work/shared/data/fsdd"), ROOT.parent / "shared" / "data" / "fsdd"):
        if (candidate / "recordings.tar.gz").is_file() or (candidate / "recordings").is_dir():
            return candidate
    return None


def _readme_block() -> str:
    """The README's asr_fsdd results block (other sections may change while the test runs)."""
    text = (ROOT / "README.md").read_text()
    return text.partition("<!-- results:asr_fsdd:start -->")[2].partition("<!-- results:asr_fsdd:end -->")[0]


@pytest.mark.skipif(_real_fsdd() is None, reason="the FSDD recordings (../shared/data/fsdd) are not here")
def test_results_script_runs_small_on_real_recordings(tmp_path: Path) -> None:
    readme = _readme_block()
    card = (ROOT / "models" / "ctc-conformer-synth-en" / "model_card.json").read_bytes()
    out = tmp_path / "asr_fsdd.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "results" / "asr_fsdd.py"), "--fsdd", str(_real_fsdd()), "--work",
         str(tmp_path / "work"), "--limit", "3", "--models", "ctc-conformer-synth-en", "--out", str(out),
         "--no-readme", "--no-cards"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert list(results["models"]) == ["ctc-conformer-synth-en"]
    for name in ("isolated", "connected"):
        r = results["models"]["ctc-conformer-synth-en"]["sets"][name]
        assert r["utterances"] == 3 and 0.0 <= r["string_error_rate"] <= 100.0 and r["digit_wer"] >= 0.0
        assert len(r["hypotheses"]) == 3 and r["per_speaker"]
    assert "connected digits" in proc.stdout and "| `ctc-conformer-synth-en` |" in proc.stdout
    assert len(read_manifest(tmp_path / "work" / "connected" / "connected_seed0.jsonl")) == 3
    # the repository's README and model cards are untouched
    assert _readme_block() == readme
    assert (ROOT / "models" / "ctc-conformer-synth-en" / "model_card.json").read_bytes() == card
