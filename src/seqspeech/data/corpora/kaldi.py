"""Kaldi data directories: ``wav.scp``, ``text``, optional ``segments`` and ``utt2spk``.

Only plain paths in ``wav.scp`` are supported: piped commands (``sox ... |``) and ark offsets are not run or
read. Relative paths are resolved, as Kaldi does, against the current folder, or against ``audio_root``.
"""

from __future__ import annotations

import math
from pathlib import Path

from ...audio.io import audio_info
from ...errors import DataError
from ..manifest import Utterance
from ._common import ENGLISH, Collector, Normalizer, check_root, iter_lines

WAV_SCP = "wav.scp"
TEXT = "text"
SEGMENTS = "segments"
UTT2SPK = "utt2spk"
TO_END = -1.0  # a segment end of -1 means "to the end of the recording"


def _read_table(path: Path, what: str, *, allow_empty_value: bool = False) -> dict[str, tuple[str, str]]:
    """``key -> (value, "file:line")`` of a ``<key> <value>`` file; duplicate keys are errors."""
    table: dict[str, tuple[str, str]] = {}
    for lineno, line in iter_lines(path):
        where = f"{path}:{lineno}"
        key, _, value = line.partition(" ")
        value = value.strip()
        if not value and not allow_empty_value:
            raise DataError(f"{where}: expected '<{what}> <value>', got {line!r}")
        if key in table:
            raise DataError(f"{where}: duplicate {what} {key!r} (first at {table[key][1]})")
        table[key] = (value, where)
    return table


def _recording_path(value: str, where: str, audio_root: Path | None) -> Path:
    if value.endswith("|"):
        raise DataError(f"{where}: piped wav.scp commands are unsupported ({value!r}); write audio files")
    path = Path(value)
    if not path.is_absolute():
        path = (audio_root or Path.cwd()) / path
    return path


def _segment(fields: list[str], where: str, recordings: dict[str, Path]) -> tuple[str, float, float]:
    """``(recording id, start, end)`` of one ``segments`` line."""
    if len(fields) != 4:
        raise DataError(f"{where}: expected '<utt-id> <rec-id> <start> <end>', got {len(fields)} fields")
    _, rec_id, start_text, end_text = fields
    if rec_id not in recordings:
        raise DataError(f"{where}: segment refers to recording {rec_id!r}, which is not in {WAV_SCP}")
    try:
        start, end = float(start_text), float(end_text)
    except ValueError:
        raise DataError(f"{where}: start and end must be numbers, got {start_text!r} {end_text!r}") from None
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or (end <= start and end != TO_END):
        raise DataError(f"{where}: need 0 <= start < end (or end = -1), got start={start} end={end}")
    return rec_id, start, end


def read_kaldi(
    root: str | Path,
    *,
    language: str = "en",
    audio_root: str | Path | None = None,
    normalizer: Normalizer = ENGLISH,
    with_durations: bool = True,
) -> list[Utterance]:
    """Utterances of the Kaldi data dir ``root``, in ``text`` order.

    Without ``segments`` each utterance is a whole recording (utterance id = recording id); with it,
    ``offset`` and ``duration`` come from the segment (an end of -1 is measured from the file when
    ``with_durations``). ``speaker`` comes from ``utt2spk`` when present.

    Raises:
        DataError: missing ``wav.scp`` / ``text``, malformed lines, piped ``wav.scp`` entries, segments
            naming an unknown recording, utterances with no recording or segment, duplicate ids (all
            ``file:line``).
    """
    root = check_root(root, "Kaldi data dir")
    audio_root = Path(audio_root) if audio_root is not None else None
    recordings = {
        rec_id: _recording_path(value, where, audio_root)
        for rec_id, (value, where) in _read_table(root / WAV_SCP, "recording id").items()
    }
    texts = _read_table(root / TEXT, "utterance id", allow_empty_value=True)
    speakers: dict[str, str] = {}
    if (root / UTT2SPK).exists():
        speakers = {utt_id: spk for utt_id, (spk, _) in _read_table(root / UTT2SPK, "utterance id").items()}
    segments: dict[str, tuple[str, float, float]] | None = None
    if (root / SEGMENTS).exists():
        segments = {}
        for lineno, line in iter_lines(root / SEGMENTS):
            where = f"{root / SEGMENTS}:{lineno}"
            fields = line.split()
            if fields[0] in segments:
                raise DataError(f"{where}: duplicate utterance id {fields[0]!r}")
            segments[fields[0]] = _segment(fields, where, recordings)

    collector = Collector("Kaldi", root, normalizer, with_durations)
    lengths: dict[Path, float] = {}  # recording durations, read once per recording
    for utt_id, (text, where) in texts.items():
        offset, duration = 0.0, None
        if segments is None:
            if utt_id not in recordings:
                raise DataError(
                    f"{where}: utterance {utt_id!r} has no entry in {WAV_SCP} (and no {SEGMENTS} file)"
                )
            audio = recordings[utt_id]
        else:
            if utt_id not in segments:
                raise DataError(f"{where}: utterance {utt_id!r} has no entry in {root / SEGMENTS}")
            rec_id, offset, end = segments[utt_id]
            audio = recordings[rec_id]
            if end != TO_END:
                duration = end - offset
            elif with_durations and audio.is_file():
                if audio not in lengths:
                    lengths[audio] = audio_info(audio)[0]
                duration = lengths[audio] - offset
            else:
                duration = 0.0
        collector.add(
            utt_id, audio, text, where, speaker=speakers.get(utt_id), language=language, offset=offset,
            duration=duration,
        )
    return collector.finish()
