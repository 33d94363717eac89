"""Shared pieces of the corpus readers: line reading with file:line errors, utterance building, missing-audio
bookkeeping."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from ...audio.io import audio_info
from ...errors import DataError
from ...fileio import read_text_file
from ...text.normalize import EnglishTextNormalizer
from ..manifest import Utterance

Normalizer = Callable[[str], str]
ENGLISH = EnglishTextNormalizer()


def check_root(root: str | Path, corpus: str) -> Path:
    """``root`` as a Path; DataError naming it when it is missing, a file, unreadable or an empty folder."""
    root = Path(root)
    if root.is_file():
        raise DataError(f"{root}: a file, not a folder: expected the {corpus} root folder")
    if not root.is_dir():
        raise DataError(f"{root}: {corpus} root folder not found")
    try:
        empty = next(root.iterdir(), None) is None
    except OSError as err:
        raise DataError(f"{root}: cannot list the {corpus} root folder ({err.strerror or err})") from None
    if empty:
        raise DataError(f"{root}: empty folder: expected the {corpus} root folder")
    return root


def read_text(path: Path) -> str:
    """The whole file as UTF-8 text; DataError naming the file when it is missing or not UTF-8."""
    return read_text_file(path, what="file")


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, stripped line)`` of the non-blank lines of a UTF-8 text file."""
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        line = line.strip()
        if line:
            yield lineno, line


class Collector:
    """Builds utterances for one corpus, skipping (and counting) those whose audio file is missing."""

    def __init__(self, corpus: str, root: Path, normalizer: Normalizer, with_durations: bool) -> None:
        self.corpus = corpus
        self.root = root
        self.normalizer = normalizer
        self.with_durations = with_durations
        self.utterances: list[Utterance] = []
        self.missing: list[Path] = []
        self._ids: dict[str, str] = {}

    def add(
        self,
        utt_id: str,
        audio: Path,
        text: str,
        where: str,
        *,
        speaker: str | None = None,
        language: str = "en",
        offset: float = 0.0,
        duration: float | None = None,
        normalizer: Normalizer | None = None,
    ) -> None:
        """Append one utterance, or count it as skipped when ``audio`` does not exist.

        ``duration=None`` means "measure it" (when ``with_durations``, else 0.0).
        """
        if utt_id in self._ids:
            raise DataError(f"{where}: duplicate utterance id {utt_id!r} (first at {self._ids[utt_id]})")
        self._ids[utt_id] = where
        if not audio.is_file():
            self.missing.append(audio)
            return
        if duration is None:
            duration = audio_info(audio)[0] - offset if self.with_durations else 0.0
        self.utterances.append(
            Utterance(
                id=utt_id,
                audio=str(audio),
                duration=max(0.0, float(duration)),
                text=text,
                normalized_text=(normalizer or self.normalizer)(text),
                speaker=speaker,
                language=language,
                offset=offset,
            )
        )

    def finish(self) -> list[Utterance]:
        """The utterances; warns with the count (and first path) of those skipped for missing audio."""
        if self.missing:
            warnings.warn(
                f"{self.corpus} ({self.root}): skipped {len(self.missing)} utterance(s) whose audio file is "
                f"missing (first: {self.missing[0]})",
                stacklevel=3,
            )
        return self.utterances
