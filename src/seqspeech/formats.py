"""Transcript writers: txt, json, jsonl, srt, vtt."""

from __future__ import annotations

import json
from typing import Any

FORMATS = ("txt", "json", "jsonl", "srt", "vtt")


def transcript_record(path: str, transcript: Any) -> dict[str, Any]:
    """The JSON object for one input: path, text, language, duration, segments (without token ids)."""
    d = transcript.to_dict()
    for seg in d["segments"]:
        seg.pop("tokens", None)
    return {"path": path, **d}


def _timestamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def render(fmt: str, path: str, transcript: Any) -> str:
    """The text of one transcript in `fmt` (jsonl: one line, json: an indented object)."""
    if fmt == "txt":
        return transcript.text + "\n"
    if fmt == "jsonl":
        return json.dumps(transcript_record(path, transcript), ensure_ascii=False) + "\n"
    if fmt == "json":
        return json.dumps(transcript_record(path, transcript), ensure_ascii=False, indent=2) + "\n"
    if fmt in ("srt", "vtt"):
        sep = "," if fmt == "srt" else "."
        blocks = ["WEBVTT\n"] if fmt == "vtt" else []
        for i, seg in enumerate(transcript.segments, start=1):
            head = f"{i}\n" if fmt == "srt" else ""
            blocks.append(
                f"{head}{_timestamp(seg.start, sep)} --> {_timestamp(seg.end, sep)}\n{seg.text.strip()}\n"
            )
        return "\n".join(blocks)
    raise ValueError(f"unknown format {fmt!r}; choose from {FORMATS}")
