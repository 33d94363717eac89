"""evaluate_jsonl on small JSONL files written to tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqspeech.metrics import evaluate_jsonl


def write_jsonl(path: Path, records: list[dict | str]) -> Path:
    """One line per record; strings are written verbatim (for blank and malformed lines)."""
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture()
def refs(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "refs.jsonl",
        [
            {"path": "a.wav", "text": "Hello, world!"},
            {"path": "b.wav", "text": "the cat sat on the mat"},
            {"path": "c.wav", "text": "twenty one apples"},
        ],
    )


def test_against_reference_file(tmp_path, refs):
    hyps = write_jsonl(
        tmp_path / "hyps.jsonl",
        [
            {"path": "c.wav", "text": "21 apples", "language": "en", "duration": 1.2},
            "",
            {"path": "a.wav", "text": "hello word"},
            {"path": "z.wav", "text": "not in the references"},
        ],
    )
    result = evaluate_jsonl(hyps, refs)
    # a: 1 substitution of 2; b: missing -> 6 deletions; c: exact after normalisation
    assert result == {
        "wer": pytest.approx(7 / 10),
        "substitutions": 1,
        "deletions": 6,
        "insertions": 0,
        "hits": 3,
        "n_ref_units": 10,
        "n_utts": 3,
        "missing": ["b.wav"],
        "extra": ["z.wav"],
    }
    json.dumps(result)  # ready for the CLI to print


def test_reference_field_in_hypothesis_lines(tmp_path):
    hyps = write_jsonl(
        tmp_path / "hyps.jsonl",
        [
            {"path": "a.wav", "text": "hello world", "reference": "Hello world."},
            {"path": "b.wav", "text": "good bye", "reference": "goodbye"},
        ],
    )
    result = evaluate_jsonl(hyps)
    assert result["wer"] == pytest.approx(2 / 3)
    assert (result["substitutions"], result["insertions"], result["n_utts"]) == (1, 1, 2)
    assert result["missing"] == [] and result["extra"] == []


def test_char_unit_and_custom_fields(tmp_path):
    refs = write_jsonl(tmp_path / "r.jsonl", [{"id": 1, "sentence": "abcd"}])
    hyps = write_jsonl(tmp_path / "h.jsonl", [{"id": 1, "transcript": "abed"}])
    result = evaluate_jsonl(
        hyps, refs, key="id", hyp_field="transcript", ref_field="sentence", unit="char", normalizer=None
    )
    assert result["cer"] == pytest.approx(0.25) and "wer" not in result


def test_malformed_line_names_file_and_line(tmp_path, refs):
    hyps = write_jsonl(
        tmp_path / "hyps.jsonl", [{"path": "a.wav", "text": "hi"}, "", '{"path": "b.wav", "text": ']
    )
    with pytest.raises(ValueError, match=r"hyps\.jsonl:3: invalid JSON"):
        evaluate_jsonl(hyps, refs)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('["a.wav", "hi"]', "expected a JSON object, got list"),
        ('{"text": "hi"}', "missing or non-scalar key field 'path'"),
        ('{"path": "a.wav"}', "field 'text' is missing"),
        ('{"path": "a.wav", "text": 3}', "field 'text' is not a string"),
    ],
)
def test_bad_records(tmp_path, refs, line, problem):
    hyps = write_jsonl(tmp_path / "hyps.jsonl", [{"path": "b.wav", "text": "x"}, line])
    with pytest.raises(ValueError, match=rf"hyps\.jsonl:2: {problem}"):
        evaluate_jsonl(hyps, refs)


def test_duplicate_keys_and_missing_reference_field(tmp_path, refs):
    hyps = write_jsonl(
        tmp_path / "dup.jsonl", [{"path": "a.wav", "text": "x"}, {"path": "a.wav", "text": "y"}]
    )
    with pytest.raises(ValueError, match=r"dup\.jsonl:2: duplicate path 'a.wav'"):
        evaluate_jsonl(hyps, refs)
    no_ref = write_jsonl(tmp_path / "noref.jsonl", [{"path": "a.wav", "text": "x"}])
    with pytest.raises(ValueError, match=r"noref\.jsonl:1: field 'reference' is missing"):
        evaluate_jsonl(no_ref)


def test_empty_and_undecodable_files(tmp_path, refs):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty.jsonl: no records"):
        evaluate_jsonl(empty)
    assert evaluate_jsonl(empty, refs)["wer"] == 1.0  # every reference missing
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match=r"binary\.jsonl:1: not UTF-8"):
        evaluate_jsonl(binary, refs)
