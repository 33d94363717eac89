"""Free Spoken Digit Dataset (FSDD): ``recordings/{digit}_{speaker}_{take}.wav``, one spoken digit per file, 8 kHz.

Real human recordings (Zohar Jackson et al., github.com/Jakobovski/free-spoken-digit-dataset,
DOI 10.5281/zenodo.1342401, CC BY-SA 4.0: credit it where results on it are shown). ``read_fsdd(src)`` accepts

- the folder holding the ``.wav`` files,
- a folder holding ``recordings/``,
- ``recordings.tar.gz`` itself, or a folder holding it (and no recordings): its ``.wav`` members are extracted,
  by file name only (never by the archive's paths), into ``extract_to/recordings/``. ``extract_to`` defaults to
  ``$XDG_CACHE_HOME/seqspeech/fsdd`` (``~/.cache/seqspeech/fsdd``); ``seqspeech corpus prepare fsdd`` extracts
  next to its output manifest instead. A file already extracted with the right size is not written again.

Each utterance: ``id`` is the file name without ``.wav`` (``"7_jackson_32"``), ``text`` and ``normalized_text``
the digit as a spoken word (``"seven"``: lower-case spoken form, as the synthetic corpora and our character models
use), ``speaker`` the speaker; the take stays in the id (:func:`fsdd_clip` parses it back). ``split="test"`` keeps
takes 0-4 (the dataset's own test set), ``"train"`` the others; ``speakers=`` keeps some speakers, so a speaker can
be held out.

:func:`build_connected_digits` joins clips of one speaker into connected-digit strings ("four seven two"), at
16 kHz, with short gaps of low noise between them, deterministically from a seed.
"""

from __future__ import annotations

import os
import re
import sys
import tarfile
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...audio.constants import SAMPLE_RATE
from ...audio.io import load_audio, write_wav
from ...errors import ConfigError, DataError, SeqSpeechError
from ...fileio import write_atomic
from ..manifest import Utterance, write_manifest
from ._common import Collector, Normalizer, check_root

__all__ = [
    "DIGIT_WORDS",
    "FsddClip",
    "build_connected_digits",
    "default_cache",
    "extract_fsdd",
    "fsdd_clip",
    "locate_recordings",
    "read_fsdd",
]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
RECORDINGS = "recordings"  # the folder the archive unpacks to
ARCHIVE = "recordings.tar.gz"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
FILE_PATTERN = "{digit}_{speaker}_{take}.wav"
_NAME_RE = re.compile(r"^([0-9])_(.+)_([0-9]+)$")  # a file stem / utterance id
TEST_TAKES = range(0, 5)  # takes 0-4 of each digit and speaker are the dataset's test set
SPLITS = ("test", "train")


def _spoken(text: str) -> str:
    """The default ``normalized_text``: lower-case words, whitespace collapsed (``"seven"`` stays ``"seven"``)."""
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class FsddClip:
    """What an FSDD file name says: ``digit``, ``speaker`` and ``take``."""

    digit: int
    speaker: str
    take: int

    @property
    def word(self) -> str:
        return DIGIT_WORDS[self.digit]

    @property
    def split(self) -> str:
        return "test" if self.take in TEST_TAKES else "train"


def _parse(stem: str) -> FsddClip | None:
    m = _NAME_RE.match(stem)
    return FsddClip(int(m.group(1)), m.group(2), int(m.group(3))) if m else None


def fsdd_clip(utt_or_id: Utterance | str) -> FsddClip:
    """Digit, speaker and take of an FSDD utterance (or its id, ``"7_jackson_32"``).

    Raises:
        DataError: the id is not ``{digit}_{speaker}_{take}``.
    """
    utt_id = utt_or_id.id if isinstance(utt_or_id, Utterance) else utt_or_id
    clip = _parse(utt_id)
    if clip is None:
        raise DataError(f"utterance id {utt_id!r} is not an FSDD id ({FILE_PATTERN} without .wav)")
    return clip


def _is_archive(path: Path) -> bool:
    return path.name.endswith(ARCHIVE_SUFFIXES)


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/seqspeech/fsdd`` (``~/.cache/seqspeech/fsdd``): where a tarball is extracted by default."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "seqspeech" / "fsdd"


def extract_fsdd(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract the FSDD recordings of ``archive`` into ``dest/recordings/`` and return that folder.

    Only regular members named ``{digit}_{speaker}_{take}.wav`` are written, under their base name (so no member
    can write outside ``dest``); a file already there with the member's size is kept. Each file is written
    atomically, so an interrupted extraction resumes cleanly.

    Raises:
        DataError: the archive is missing, unreadable or corrupt, holds no FSDD recordings, or ``dest`` cannot be
            written.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise DataError(f"{archive}: FSDD archive not found")
    out = Path(dest) / RECORDINGS
    written = found = 0
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = member.name.rsplit("/", 1)[-1]
                if not member.isfile() or not name.endswith(".wav") or _parse(name[: -len(".wav")]) is None:
                    continue
                found += 1
                target = out / name
                if target.is_file() and target.stat().st_size == member.size:
                    continue
                handle = tar.extractfile(member)
                if handle is None:  # pragma: no cover - isfile() members always have data
                    continue
                write_atomic(target, handle.read())
                written += 1
    except SeqSpeechError:  # a write that failed, already naming its path
        raise
    except (tarfile.TarError, EOFError, zlib.error) as err:
        raise DataError(f"{archive}: not a readable tar archive ({err})") from None
    except OSError as err:
        raise DataError(f"{archive}: cannot extract into {out} ({err.strerror or err})") from None
    if not found:
        raise DataError(f"{archive}: no FSDD recordings ({FILE_PATTERN}) in the archive")
    if written:
        print(f"extracted {written} of {found} FSDD recordings from {archive} into {out}", file=sys.stderr)
    return out


def _wavs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix == ".wav" and p.is_file())


def locate_recordings(src: str | os.PathLike, extract_to: str | os.PathLike | None = None) -> Path:
    """The folder holding the FSDD ``.wav`` files for any accepted form of ``src`` (see the module doc)."""
    src = Path(src)
    if src.is_file():
        if not _is_archive(src):
            raise DataError(f"{src}: a file, not an FSDD folder or {ARCHIVE}")
        return extract_fsdd(src, extract_to if extract_to is not None else default_cache())
    root = check_root(src, "FSDD")
    if any(_parse(p.stem) for p in _wavs(root)):
        return root
    if (root / RECORDINGS).is_dir():
        return root / RECORDINGS
    if (root / ARCHIVE).is_file():
        return extract_fsdd(root / ARCHIVE, extract_to if extract_to is not None else default_cache())
    raise DataError(
        f"{root}: no FSDD recordings here: expected {FILE_PATTERN} files, a {RECORDINGS}/ folder or {ARCHIVE}"
    )


def read_fsdd(
    root: str | Path,
    *,
    split: str | None = None,
    speakers: Sequence[str] | None = None,
    extract_to: str | os.PathLike | None = None,
    normalizer: Normalizer = _spoken,
    with_durations: bool = True,
) -> list[Utterance]:
    """FSDD utterances sorted by speaker, digit and take.

    Args:
        root: the wav folder, a folder holding ``recordings/`` or ``recordings.tar.gz``, or the archive.
        split: ``"test"`` (takes 0-4), ``"train"`` (takes 5 and up) or None (all).
        speakers: keep only these speakers (each must have recordings).
        extract_to: where an archive is extracted (``extract_to/recordings/``); default :func:`default_cache`.
        normalizer: makes ``normalized_text`` from ``text``; default: lower-case spoken form (``"seven"``).
        with_durations: read each file's header for its duration (else 0.0).

    Raises:
        ConfigError: an unknown split.
        DataError: no source, a file that is not an archive, an empty folder, no ``{digit}_{speaker}_{take}.wav``
            files, a speaker in ``speakers`` with no recordings.
    """
    if split is not None and split not in SPLITS:
        raise ConfigError(f"FSDD split must be one of {SPLITS} or None, got {split!r}")
    folder = locate_recordings(root, extract_to)
    clips: list[tuple[FsddClip, Path]] = []
    ignored: list[Path] = []
    for path in _wavs(folder):
        clip = _parse(path.stem)
        if clip is None:
            ignored.append(path)
        else:
            clips.append((clip, path))
    if not clips:
        raise DataError(f"{folder}: no FSDD recordings ({FILE_PATTERN}) found")
    if ignored:
        warnings.warn(f"FSDD ({folder}): ignored {len(ignored)} .wav file(s) not named {FILE_PATTERN} "
                      f"(first: {ignored[0].name})", stacklevel=2)
    if speakers is not None:
        known = {clip.speaker for clip, _ in clips}
        unknown = sorted(set(speakers) - known)
        if unknown:
            raise DataError(f"{folder}: no FSDD recordings of speaker(s) {unknown}; speakers: {sorted(known)}")
        keep = set(speakers)
        clips = [(clip, path) for clip, path in clips if clip.speaker in keep]
    if split is not None:
        clips = [(clip, path) for clip, path in clips if clip.split == split]
    clips.sort(key=lambda cp: (cp[0].speaker, cp[0].digit, cp[0].take))
    collector = Collector("FSDD", folder, normalizer, with_durations)
    for clip, path in clips:
        collector.add(path.stem, path, clip.word, str(path), speaker=clip.speaker)
    return collector.finish()


def build_connected_digits(
    clips: Sequence[Utterance],
    out_dir: str | os.PathLike,
    *,
    count: int = 100,
    min_digits: int = 2,
    max_digits: int = 6,
    gap_s: tuple[float, float] = (0.1, 0.3),
    noise_dbfs: float | None = -60.0,
    seed: int = 0,
    manifest_name: str = "connected_digits.jsonl",
    id_prefix: str = "fsdd-digits",
    load: Callable[[str], np.ndarray] | None = None,
) -> Path:
    """Join clips of one speaker into ``count`` connected-digit strings; write WAVs and a manifest.

    String ``i`` belongs to speaker ``i mod n_speakers`` (speakers sorted, so every speaker gets an equal share),
    has ``min_digits``-``max_digits`` clips drawn without repetition from that speaker's clips (with repetition
    only when the speaker has fewer clips than the string needs), and a gap drawn uniformly from ``gap_s`` before,
    between and after the clips. Gaps hold white noise at ``noise_dbfs`` RMS (None: digital silence). Audio is
    16 kHz mono 16-bit; ``text`` and ``normalized_text`` are the clips' joined by spaces. The same arguments
    give the same files, byte for byte.

    Args:
        clips: the source utterances (e.g. ``read_fsdd(src, split="test")``); each needs a speaker.
        out_dir: gets ``wavs/<id>.wav`` and ``manifest_name`` (audio paths relative to it).
        load: reads a clip at 16 kHz (default :func:`~seqspeech.audio.io.load_audio`); for tests.

    Returns:
        The manifest's path.

    Raises:
        ConfigError: bad counts, gap range or noise level.
        DataError: no clips, or a clip without a speaker.
    """
    if count < 1:
        raise ConfigError(f"count must be >= 1, got {count}")
    if not 1 <= min_digits <= max_digits:
        raise ConfigError(f"need 1 <= min_digits <= max_digits, got {min_digits} and {max_digits}")
    if not (len(gap_s) == 2 and 0.0 <= gap_s[0] <= gap_s[1]):
        raise ConfigError(f"gap_s must be (low, high) seconds with 0 <= low <= high, got {gap_s!r}")
    if noise_dbfs is not None and not noise_dbfs < 0:
        raise ConfigError(f"noise_dbfs must be below 0 dBFS (or None for silence), got {noise_dbfs}")
    if not clips:
        raise DataError("build_connected_digits: no clips to join")
    by_speaker: dict[str, list[Utterance]] = {}
    for utt in clips:
        if not utt.speaker:
            raise DataError(f"utterance {utt.id!r} has no speaker; connected strings join one speaker's clips")
        by_speaker.setdefault(utt.speaker, []).append(utt)
    speakers = sorted(by_speaker)
    for pool in by_speaker.values():
        pool.sort(key=lambda u: u.id)
    load = load or (lambda path: load_audio(path, SAMPLE_RATE))
    noise_rms = 0.0 if noise_dbfs is None else 10 ** (noise_dbfs / 20)
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    cache: dict[str, np.ndarray] = {}

    def gap() -> np.ndarray:
        n = int(round(rng.uniform(*gap_s) * SAMPLE_RATE))
        return (rng.standard_normal(n) * noise_rms).astype(np.float32)

    utterances = []
    for i in range(count):
        speaker = speakers[i % len(speakers)]
        pool = by_speaker[speaker]
        n = int(rng.integers(min_digits, max_digits + 1))
        picks = [pool[j] for j in rng.choice(len(pool), size=n, replace=len(pool) < n)]
        pieces = [gap()]
        for utt in picks:
            if utt.audio not in cache:
                cache[utt.audio] = load(utt.audio)
            pieces += [cache[utt.audio], gap()]
        wave = np.concatenate(pieces)
        utt_id = f"{id_prefix}-{i:04d}"
        rel = Path("wavs") / f"{utt_id}.wav"
        write_wav(out_dir / rel, wave, SAMPLE_RATE)
        utterances.append(Utterance(
            id=utt_id, audio=str(rel), duration=round(len(wave) / SAMPLE_RATE, 4),
            text=" ".join(u.text for u in picks), normalized_text=" ".join(u.normalized_text for u in picks),
            speaker=speaker,
        ))  # fmt: skip
    return write_manifest(out_dir / manifest_name, utterances)
