"""Mozilla Common Voice: ``root/<split>.tsv`` (header with ``client_id``, ``path``, ``sentence``, optional
``locale``) and clips in ``root/clips/<path>`` (mp3)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ...errors import DataError
from ...text.normalize import BasicTextNormalizer
from ..manifest import Utterance
from ._common import ENGLISH, Collector, Normalizer, check_root, read_text

CLIPS = "clips"
REQUIRED_COLUMNS = ("client_id", "path", "sentence")
LOCALE_COLUMN = "locale"
_BASIC = BasicTextNormalizer()


def read_commonvoice(
    root: str | Path,
    *,
    split: str = "train",
    language: str | None = None,
    normalizer: Normalizer | None = None,
    with_durations: bool = True,
) -> list[Utterance]:
    """Utterances of ``root/<split>.tsv`` in file order; ``id`` is the clip's file name without extension,
    ``speaker`` the ``client_id``.

    Args:
        split: ``train``, ``dev``, ``test``, ``validated``, ... (the TSV's name).
        language: language code for every utterance; by default the row's ``locale`` column.
        normalizer: makes ``normalized_text``; by default English normalisation for ``en*`` languages and
            :class:`BasicTextNormalizer` for the others (the English one would strip their diacritics).
        with_durations: read each clip's header for its duration (else 0.0).

    Raises:
        DataError: missing TSV, missing required columns, a row with the wrong number of fields, or no
            language (no ``locale`` column and no ``language=``).
    """
    root = check_root(root, "Common Voice")
    tsv = root / f"{split}.tsv"
    rows = csv.reader(io.StringIO(read_text(tsv), newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(rows, None)
    if header is None:
        raise DataError(f"{tsv}: empty file, expected a header line")
    header = [name.strip() for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise DataError(f"{tsv}:1: missing column(s) {missing} in header {header}")
    if language is None and LOCALE_COLUMN not in header:
        raise DataError(f"{tsv}:1: no {LOCALE_COLUMN!r} column; pass language= to read_commonvoice")
    column = {name: header.index(name) for name in (*REQUIRED_COLUMNS, LOCALE_COLUMN) if name in header}
    collector = Collector("Common Voice", root, normalizer or ENGLISH, with_durations)
    for lineno, row in enumerate(rows, start=2):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        where = f"{tsv}:{lineno}"
        if len(row) != len(header):
            raise DataError(f"{where}: expected {len(header)} tab-separated fields, got {len(row)}")
        clip = row[column["path"]].strip()
        if not clip:
            raise DataError(f"{where}: empty 'path' field")
        lang = language or row[column[LOCALE_COLUMN]].strip()
        if not lang:
            raise DataError(f"{where}: empty {LOCALE_COLUMN!r} field; pass language= to read_commonvoice")
        collector.add(
            Path(clip).stem,
            root / CLIPS / clip,
            row[column["sentence"]].strip(),
            where,
            speaker=row[column["client_id"]].strip() or None,
            language=lang,
            normalizer=normalizer or (ENGLISH if lang.lower().startswith("en") else _BASIC),
        )
    return collector.finish()
