"""LibriSpeech: ``root/<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt`` beside
``<utt-id>.flac`` files.

Each transcript line is ``<speaker>-<chapter>-<utt> TEXT`` (upper case, no punctuation).
"""

from __future__ import annotations

from pathlib import Path

from ...errors import DataError
from ..manifest import Utterance
from ._common import ENGLISH, Collector, Normalizer, check_root, iter_lines

TRANS_SUFFIX = ".trans.txt"
AUDIO_SUFFIX = ".flac"


def read_librispeech(
    root: str | Path,
    *,
    split: str | None = None,
    normalizer: Normalizer = ENGLISH,
    with_durations: bool = True,
) -> list[Utterance]:
    """Utterances of every ``*.trans.txt`` under ``root`` (or ``root/split``), sorted by file path.

    Args:
        root: the LibriSpeech folder holding the splits, or one split folder.
        split: e.g. ``"dev-clean"``: read only ``root/split``.
        normalizer: makes ``normalized_text`` from the transcript.
        with_durations: read each file's header for its duration (else 0.0).

    Raises:
        DataError: no transcript files, or a malformed line (``file:line``).
    """
    root = check_root(root if split is None else Path(root) / split, "LibriSpeech")
    transcripts = sorted(root.rglob(f"*{TRANS_SUFFIX}"))
    if not transcripts:
        raise DataError(f"{root}: no LibriSpeech transcript files (*{TRANS_SUFFIX}) found")
    collector = Collector("LibriSpeech", root, normalizer, with_durations)
    for trans in transcripts:
        prefix = trans.name[: -len(TRANS_SUFFIX)] + "-"
        for lineno, line in iter_lines(trans):
            where = f"{trans}:{lineno}"
            utt_id, _, text = line.partition(" ")
            if not utt_id.startswith(prefix) or len(utt_id) == len(prefix):
                raise DataError(f"{where}: utterance id {utt_id!r} does not start with {prefix!r}")
            if not text.strip():
                raise DataError(f"{where}: utterance {utt_id!r} has no transcript")
            collector.add(
                utt_id,
                trans.parent / f"{utt_id}{AUDIO_SUFFIX}",
                text.strip(),
                where,
                speaker=utt_id.split("-", 1)[0],
            )
    return collector.finish()
