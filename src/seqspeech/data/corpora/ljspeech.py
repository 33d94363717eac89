"""LJSpeech: ``root/metadata.csv`` (``id|raw text|normalized text``, no quoting) and ``root/wavs/<id>.wav``.

``text`` is the third column (numbers and abbreviations already spelled out, case and punctuation kept: what
is spoken, and what TTS recipes train on); ``normalized_text`` is that after ``normalizer``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ...errors import DataError
from ..manifest import Utterance
from ._common import ENGLISH, Collector, Normalizer, check_root, read_text

METADATA = "metadata.csv"
WAVS = "wavs"
SPEAKER = "LJ"
N_COLUMNS = 3


def read_ljspeech(
    root: str | Path, *, normalizer: Normalizer = ENGLISH, with_durations: bool = True
) -> list[Utterance]:
    """Utterances of ``root/metadata.csv`` in file order, speaker ``"LJ"``.

    Raises:
        DataError: missing ``metadata.csv``, or a line without exactly 3 ``|``-separated columns or with an
            empty id (``file:line``).
    """
    root = check_root(root, "LJSpeech")
    metadata = root / METADATA
    rows = csv.reader(io.StringIO(read_text(metadata), newline=""), delimiter="|", quoting=csv.QUOTE_NONE)
    collector = Collector("LJSpeech", root, normalizer, with_durations)
    for lineno, row in enumerate(rows, start=1):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        where = f"{metadata}:{lineno}"
        if len(row) != N_COLUMNS:
            raise DataError(
                f"{where}: expected {N_COLUMNS} '|'-separated columns (id|text|normalized), got {len(row)}"
            )
        utt_id, raw, spoken = (column.strip() for column in row)
        if not utt_id:
            raise DataError(f"{where}: empty utterance id")
        text = spoken or raw
        collector.add(utt_id, root / WAVS / f"{utt_id}.wav", text, where, speaker=SPEAKER)
    return collector.finish()
