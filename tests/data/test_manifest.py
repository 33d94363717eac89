"""JSONL manifests: round trip, relative paths, and a file:line DataError for every malformed input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqspeech.data.manifest import Utterance, iter_manifest, read_manifest, write_manifest
from seqspeech.errors import DataError


def _utt(utt_id: str = "u1", audio: str = "/abs/a.wav", **kw: object) -> Utterance:
    fields: dict[str, object] = {"duration": 1.5, "text": "Hello.", "normalized_text": "hello"} | kw
    return Utterance(id=utt_id, audio=audio, **fields)  # type: ignore[arg-type]


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    utts = [
        _utt("a", speaker="s1", language="es", pair_id="p1", offset=2.25),
        _utt("b", text="Ünïcode — “quotes”"),
    ]
    path = write_manifest(tmp_path / "sub" / "m.jsonl", utts)
    assert read_manifest(path) == utts
    assert list(iter_manifest(path)) == utts


def test_lines_have_sorted_keys_and_defaults(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "m.jsonl", [_utt()])
    (line,) = path.read_text(encoding="utf-8").splitlines()
    data = json.loads(line)
    assert list(data) == sorted(data)
    assert data["language"] == "en" and data["offset"] == 0.0 and data["speaker"] is None


def test_relative_audio_resolved_against_manifest_folder_and_blank_lines_skipped(tmp_path: Path) -> None:
    line = json.dumps(_utt(audio="wavs/a.wav").to_dict())
    path = _write_lines(tmp_path / "m.jsonl", ["", line, "   "])
    (utt,) = read_manifest(path)
    assert Path(utt.audio) == tmp_path.absolute() / "wavs" / "a.wav"


def test_int_duration_becomes_float() -> None:
    data = _utt().to_dict() | {"duration": 2}
    utt = Utterance.from_dict(data)
    assert isinstance(utt.duration, float) and utt.duration == 2.0


def test_write_refuses_duplicate_ids(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="duplicate utterance id 'a'"):
        write_manifest(tmp_path / "m.jsonl", [_utt("a"), _utt("a")])
    assert not (tmp_path / "m.jsonl").exists()


def test_write_refuses_non_utterances(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not Utterance"):
        write_manifest(tmp_path / "m.jsonl", [_utt().to_dict()])  # type: ignore[list-item]


GOOD = _utt().to_dict()
NO_TEXT = {k: v for k, v in GOOD.items() if k != "text"}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"id": "x", ', "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps(GOOD | {"speeker": "s"}), r"unknown key\(s\) \['speeker'\]"),
        (json.dumps(NO_TEXT), r"missing required field\(s\) \['text'\]"),
        (json.dumps(GOOD | {"duration": "1.5"}), "'duration' must be a number"),
        (json.dumps(GOOD | {"duration": True}), "'duration' must be a number"),
        (json.dumps(GOOD | {"duration": -1}), "'duration' must be a finite number >= 0"),
        (json.dumps(GOOD | {"offset": float("nan")}), "'offset' must be a finite number >= 0"),
        (json.dumps(GOOD | {"text": 3}), "'text' must be a string"),
        (json.dumps(GOOD | {"speaker": 7}), "'speaker' must be a string or null"),
        (json.dumps(GOOD | {"id": ""}), "'id' must not be empty"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = _write_lines(tmp_path / "m.jsonl", [json.dumps(GOOD), "", line])
    with pytest.raises(DataError, match=rf"m\.jsonl:3: .*{problem}"):
        read_manifest(path)


def test_duplicate_id_on_read_names_both_lines(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "m.jsonl", [json.dumps(GOOD), json.dumps(GOOD)])
    with pytest.raises(DataError, match=r"m\.jsonl:2: duplicate utterance id 'u1' \(first on line 1\)"):
        read_manifest(path)


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"id": "\xff"}\n')
    with pytest.raises(DataError, match=r"m\.jsonl:1: not UTF-8"):
        read_manifest(path)
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(tmp_path / "nope.jsonl")


def test_iter_manifest_streams_good_lines_before_the_bad_one(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "m.jsonl", [json.dumps(GOOD), "not json"])
    stream = iter_manifest(path)
    assert next(stream).id == "u1"
    with pytest.raises(DataError, match=r"m\.jsonl:2"):
        next(stream)


def test_constructor_validates_types() -> None:
    with pytest.raises(DataError, match="'duration' must be a number"):
        Utterance(id="x", audio="a.wav", duration="1", text="", normalized_text="")  # type: ignore[arg-type]
