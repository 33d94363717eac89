"""Corpus readers on tiny fake trees: LibriSpeech, LJSpeech, Common Voice, Kaldi data dirs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from seqspeech.data.corpora import (
    READERS,
    read_commonvoice,
    read_corpus,
    read_kaldi,
    read_librispeech,
    read_ljspeech,
    register_reader,
)
from seqspeech.data.manifest import read_manifest, write_manifest
from seqspeech.errors import ConfigError, DataError

SR = 16_000
CLIP_S = 0.5
HAS_MP3 = "MP3" in sf.available_formats()


def _sine(path: Path, seconds: float = CLIP_S, **kw: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), SR, **kw)
    return path


def _text(path: Path, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# ---------------------------------------------------------------- registry


def test_registry_dispatches_and_rejects_unknown_kinds(tmp_path: Path) -> None:
    assert set(READERS) >= {"librispeech", "ljspeech", "commonvoice", "kaldi"}
    with pytest.raises(ConfigError, match="unknown corpus kind 'timit'"):
        read_corpus("timit", tmp_path)
    with pytest.raises(ConfigError, match="already registered"):
        register_reader("kaldi", read_kaldi)
    with pytest.raises(ConfigError, match="must be callable"):
        register_reader("other", 3)  # type: ignore[arg-type]


# ---------------------------------------------------------------- LibriSpeech


def _librispeech(root: Path) -> Path:
    chapter = root / "dev-clean" / "84" / "121123"
    _text(chapter / "84-121123.trans.txt", "84-121123-0000 GO DO YOU HEAR", "84-121123-0001 BUT IN LESS")
    _sine(chapter / "84-121123-0000.flac")
    _sine(chapter / "84-121123-0001.flac", seconds=0.25)
    return root


def test_librispeech(tmp_path: Path) -> None:
    root = _librispeech(tmp_path / "LibriSpeech")
    utts = read_corpus("librispeech", root, split="dev-clean")
    assert [u.id for u in utts] == ["84-121123-0000", "84-121123-0001"]
    first = utts[0]
    assert first.text == "GO DO YOU HEAR" and first.normalized_text == "go do you hear"
    assert first.speaker == "84" and first.language == "en"
    assert Path(first.audio) == root / "dev-clean" / "84" / "121123" / "84-121123-0000.flac"
    assert first.duration == pytest.approx(CLIP_S) and utts[1].duration == pytest.approx(0.25)
    assert read_librispeech(root, with_durations=False)[0].duration == 0.0


def test_librispeech_skips_and_counts_missing_audio(tmp_path: Path) -> None:
    root = _librispeech(tmp_path)
    (root / "dev-clean" / "84" / "121123" / "84-121123-0001.flac").unlink()
    with pytest.warns(UserWarning, match=r"skipped 1 utterance\(s\) whose audio file is missing"):
        utts = read_librispeech(root)
    assert [u.id for u in utts] == ["84-121123-0000"]


def test_librispeech_malformed(tmp_path: Path) -> None:
    trans = _text(tmp_path / "a" / "1" / "2" / "1-2.trans.txt", "1-2-0 OK", "9-9-9 WRONG PREFIX")
    with pytest.raises(DataError, match=r"1-2\.trans\.txt:2: utterance id '9-9-9'"):
        read_librispeech(tmp_path)
    _text(trans, "1-2-0")
    (tmp_path / "a" / "1" / "empty").mkdir()
    with pytest.raises(DataError, match=r"1-2\.trans\.txt:1: .*no transcript"):
        read_librispeech(tmp_path)
    with pytest.raises(DataError, match="empty folder"):
        read_librispeech(tmp_path / "a" / "1", split="empty")
    (tmp_path / "a" / "1" / "empty" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="no LibriSpeech transcript files"):
        read_librispeech(tmp_path / "a" / "1", split="empty")
    with pytest.raises(DataError, match="root folder not found"):
        read_librispeech(tmp_path / "missing")


# ---------------------------------------------------------------- LJSpeech


def test_ljspeech(tmp_path: Path) -> None:
    _text(
        tmp_path / "metadata.csv",
        "LJ001-0001|Printing, in 1840.|Printing, in eighteen forty.",
        'LJ001-0002|He said "no|He said "no" twice.',
    )
    _sine(tmp_path / "wavs" / "LJ001-0001.wav")
    _sine(tmp_path / "wavs" / "LJ001-0002.wav")
    utts = read_ljspeech(tmp_path)
    assert [u.id for u in utts] == ["LJ001-0001", "LJ001-0002"]
    assert utts[0].text == "Printing, in eighteen forty." and utts[0].normalized_text == "printing in 1840"
    assert utts[1].text == 'He said "no" twice.'  # quotes are literal, not CSV quoting
    assert {u.speaker for u in utts} == {"LJ"} and utts[0].duration == pytest.approx(CLIP_S)


def test_ljspeech_missing_audio_and_malformed(tmp_path: Path) -> None:
    _text(tmp_path / "metadata.csv", "LJ1|a|a", "LJ2|b|b")
    _sine(tmp_path / "wavs" / "LJ1.wav")
    with pytest.warns(UserWarning, match=r"LJSpeech .*skipped 1 utterance"):
        assert [u.id for u in read_ljspeech(tmp_path)] == ["LJ1"]
    _text(tmp_path / "metadata.csv", "LJ1|a|a", "LJ2|only two")
    with pytest.raises(DataError, match=r"metadata\.csv:2: expected 3 '\|'-separated columns"):
        read_ljspeech(tmp_path)
    _text(tmp_path / "metadata.csv", "LJ1|a|a", "LJ1|a|a")
    with pytest.raises(DataError, match=r"metadata\.csv:2: duplicate utterance id 'LJ1'"):
        read_ljspeech(tmp_path)
    (tmp_path / "metadata.csv").unlink()
    with pytest.raises(DataError, match=r"metadata\.csv: file not found"):
        read_ljspeech(tmp_path)


# ---------------------------------------------------------------- Common Voice


def _cv_tsv(root: Path, header: str, *rows: str, split: str = "train") -> Path:
    return _text(root / f"{split}.tsv", header, *rows)


@pytest.mark.skipif(not HAS_MP3, reason="this libsndfile cannot write MP3 (soundfile.available_formats())")
def test_commonvoice_mp3(tmp_path: Path) -> None:
    _cv_tsv(
        tmp_path,
        "client_id\tpath\tsentence\tup_votes\tlocale",
        'c1\tcommon_voice_en_1.mp3\tHe said "hi", Mr. Smith.\t2\ten',
        "c2\tcommon_voice_en_2.mp3\tMissing clip.\t1\ten",
    )
    _sine(tmp_path / "clips" / "common_voice_en_1.mp3", format="MP3", subtype="MPEG_LAYER_III")
    with pytest.warns(UserWarning, match="Common Voice .*skipped 1"):
        (utt,) = read_commonvoice(tmp_path)
    assert utt.id == "common_voice_en_1" and utt.speaker == "c1" and utt.language == "en"
    assert utt.text == 'He said "hi", Mr. Smith.' and utt.normalized_text == "he said hi mister smith"
    assert utt.duration == pytest.approx(CLIP_S, abs=0.1)  # mp3 frames pad the end


def test_commonvoice_language_and_normalizer(tmp_path: Path) -> None:
    _cv_tsv(tmp_path, "client_id\tpath\tsentence", "c1\tx.wav\tÉté, Noël!", split="dev")
    _sine(tmp_path / "clips" / "x.wav")
    with pytest.raises(DataError, match=r"dev\.tsv:1: no 'locale' column; pass language="):
        read_commonvoice(tmp_path, split="dev")
    (utt,) = read_commonvoice(tmp_path, split="dev", language="fr", with_durations=False)
    assert utt.language == "fr" and utt.normalized_text == "été noël" and utt.duration == 0.0
    (utt,) = read_commonvoice(tmp_path, split="dev", language="fr", normalizer=str.upper)
    assert utt.normalized_text == "ÉTÉ, NOËL!"


def test_commonvoice_malformed(tmp_path: Path) -> None:
    _cv_tsv(tmp_path, "client_id\tsentence\tlocale", "c1\thello\ten")
    with pytest.raises(DataError, match=r"train\.tsv:1: missing column\(s\) \['path'\]"):
        read_commonvoice(tmp_path)
    _cv_tsv(tmp_path, "client_id\tpath\tsentence\tlocale", "c1\tx.mp3\thello")
    with pytest.raises(DataError, match=r"train\.tsv:2: expected 4 tab-separated fields, got 3"):
        read_commonvoice(tmp_path)
    with pytest.raises(DataError, match=r"test\.tsv: file not found"):
        read_commonvoice(tmp_path, split="test")


# ---------------------------------------------------------------- Kaldi


def _kaldi(root: Path, audio: Path, *, segments: bool) -> Path:
    rec1 = _sine(audio / "rec1.wav", seconds=1.0)
    rec2 = _sine(audio / "rec2.flac")
    _text(root / "wav.scp", f"rec1 {rec1}", f"rec2 {rec2}")
    if segments:
        _text(root / "segments", "utt-a rec1 0.10 0.40", "utt-b rec1 0.5 -1", "utt-c rec2 0 0.25")
        _text(root / "text", "utt-a HELLO <unk> WORLD", "utt-b Dr. Who", "utt-c")
        _text(root / "utt2spk", "utt-a spk1", "utt-b spk1", "utt-c spk2")
    else:
        _text(root / "text", "rec1 FIRST ONE", "rec2 LAST")
    return root


def test_kaldi_without_segments(tmp_path: Path) -> None:
    root = _kaldi(tmp_path / "data" / "train", tmp_path / "audio", segments=False)
    utts = read_kaldi(root)
    assert [(u.id, u.speaker, u.offset) for u in utts] == [("rec1", None, 0.0), ("rec2", None, 0.0)]
    assert utts[0].duration == pytest.approx(1.0) and utts[1].duration == pytest.approx(CLIP_S)
    assert utts[1].audio == str(tmp_path / "audio" / "rec2.flac") and utts[1].normalized_text == "last"


def test_kaldi_segments_and_utt2spk(tmp_path: Path) -> None:
    root = _kaldi(tmp_path / "data", tmp_path / "audio", segments=True)
    utts = read_kaldi(root, language="de")
    a, b, c = utts
    assert (a.offset, a.duration, a.speaker) == (0.1, pytest.approx(0.3), "spk1")
    assert a.normalized_text == "hello world" and a.language == "de"
    assert (b.offset, b.duration) == (0.5, pytest.approx(0.5))  # end -1: to the end of the recording
    assert c.text == "" and c.speaker == "spk2" and c.audio == str(tmp_path / "audio" / "rec2.flac")
    assert read_kaldi(root, with_durations=False)[1].duration == 0.0


def test_kaldi_relative_paths_use_audio_root(tmp_path: Path) -> None:
    _sine(tmp_path / "audio" / "r.wav")
    _text(tmp_path / "d" / "wav.scp", "r audio/r.wav")
    _text(tmp_path / "d" / "text", "r hi")
    (utt,) = read_kaldi(tmp_path / "d", audio_root=tmp_path, with_durations=False)
    assert utt.audio == str(tmp_path / "audio" / "r.wav")


def test_kaldi_missing_recording_is_skipped_and_counted(tmp_path: Path) -> None:
    root = _kaldi(tmp_path / "data", tmp_path / "audio", segments=True)
    (tmp_path / "audio" / "rec1.wav").unlink()
    with pytest.warns(UserWarning, match=r"Kaldi .*skipped 2 utterance\(s\)"):
        assert [u.id for u in read_kaldi(root)] == ["utt-c"]


def test_kaldi_piped_wav_scp_is_unsupported(tmp_path: Path) -> None:
    _text(tmp_path / "wav.scp", "rec1 /a.wav", "rec2 sox /b.wav -t wav - |")
    _text(tmp_path / "text", "rec1 hi")
    with pytest.raises(DataError, match=r"wav\.scp:2: piped wav\.scp commands are unsupported"):
        read_kaldi(tmp_path)


@pytest.mark.parametrize(
    ("segments", "problem"),
    [
        ("utt-a rec9 0 1", r"segments:1: segment refers to recording 'rec9', which is not in wav\.scp"),
        ("utt-a rec1 0", r"segments:1: expected '<utt-id> <rec-id> <start> <end>'"),
        ("utt-a rec1 zero 1", r"segments:1: start and end must be numbers"),
        ("utt-a rec1 0.5 0.2", r"segments:1: need 0 <= start < end"),
    ],
)
def test_kaldi_bad_segments(tmp_path: Path, segments: str, problem: str) -> None:
    _text(tmp_path / "wav.scp", "rec1 /a.wav")
    _text(tmp_path / "text", "utt-a hi")
    _text(tmp_path / "segments", segments)
    with pytest.raises(DataError, match=problem):
        read_kaldi(tmp_path)


def test_kaldi_inconsistent_files(tmp_path: Path) -> None:
    _text(tmp_path / "wav.scp", "rec1 /a.wav")
    _text(tmp_path / "text", "rec2 hi")
    with pytest.raises(DataError, match=r"text:1: utterance 'rec2' has no entry in wav\.scp"):
        read_kaldi(tmp_path)
    _text(tmp_path / "segments", "utt-a rec1 0 1")
    with pytest.raises(DataError, match=r"text:1: utterance 'rec2' has no entry in .*segments"):
        read_kaldi(tmp_path)
    _text(tmp_path / "text", "utt-a hi", "utt-a again")
    with pytest.raises(DataError, match=r"text:2: duplicate utterance id 'utt-a' \(first at .*text:1\)"):
        read_kaldi(tmp_path)
    _text(tmp_path / "wav.scp", "rec1")
    with pytest.raises(DataError, match=r"wav\.scp:1: expected '<recording id> <value>'"):
        read_kaldi(tmp_path)
    (tmp_path / "wav.scp").unlink()
    with pytest.raises(DataError, match=r"wav\.scp: file not found"):
        read_kaldi(tmp_path)


# ---------------------------------------------------------------- readers -> manifest


def test_reader_output_round_trips_through_a_manifest(tmp_path: Path) -> None:
    utts = read_kaldi(_kaldi(tmp_path / "data", tmp_path / "audio", segments=True))
    path = write_manifest(tmp_path / "train.jsonl", utts)
    assert read_manifest(path) == utts
