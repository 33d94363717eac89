"""Atomic file writes: checkpoints, manifests, results, transcripts and audio are never seen half-written.

:func:`write_atomic` writes bytes or text in one go; :func:`atomic_path` hands a writer (soundfile, torch.save) a
temp file beside the target and renames it over the target only when the writer finished, so a failure or an
interrupt leaves no partial file. :func:`check_output_path` and :func:`check_output_dir` fail early, before long
work, when an output cannot be written. Every problem is an :class:`~seqspeech.errors.OutputError` naming the path
the caller asked for. :func:`read_text_file` and :func:`iter_jsonl` read user text files with the same care.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import DataError, OutputError, SeqSpeechError


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (a dangling symbolic link counts as existing)."""
    while not (path.exists() or path.is_symlink()) and path != path.parent:
        path = path.parent
    return path


def _check_parent(path: Path, target: Path) -> None:
    ancestor = _nearest_existing(path)
    if not ancestor.is_dir():
        raise OutputError(f"{target}: cannot write: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"{target}: cannot write: no permission to create files in {ancestor}")


def check_output_path(path: str | os.PathLike) -> Path:
    """``path`` once it looks writable as a file: not a folder, and its folder exists or can be made in a folder we
    may write. A cheap check before long work; the write itself can still fail (disk full) with OutputError.

    Raises:
        OutputError: naming ``path`` and the problem.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give the name of the file to write")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{path}: cannot write: the file is read-only")
    _check_parent(path.parent, path)
    return path


def check_output_dir(path: str | os.PathLike) -> Path:
    """``path`` once it is a folder we may write into, or one that can be made (it is not made here).

    Raises:
        OutputError: naming ``path`` and the problem.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder")
    _check_parent(path, path)
    return path


def _file_mode(path: Path) -> int:
    """Permissions for a new file at ``path``: the old file's, else what ``open()`` would give (0666 & ~umask)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        pass
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


def _fsync_dir(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temp file beside ``path`` for the block to write; when the block ends without error the temp file is
    fsynced and renamed over ``path`` (missing folders are made), otherwise (an error, an interrupt) it is removed.

    Raises:
        OutputError: ``path`` is a folder, or its folder cannot be made or written (naming ``path``, never the
            temp file); the block's own exceptions pass through unchanged.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give the name of the file to write")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except FileExistsError:  # mkdir: a file where a folder should be
        raise OutputError(f"{path}: cannot write: {_nearest_existing(path.parent)} is a file, not a folder") from None
    except OSError as err:
        raise OutputError(f"{path}: cannot write ({_reason(err)})") from None
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, _file_mode(path))  # mkstemp makes it 0600
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.filename in (str(tmp), str(path)) or err.filename2 in (str(tmp), str(path)):  # ours, not the block's
            raise OutputError(f"{path}: cannot write ({_reason(err)})") from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` to a temp file in the same folder, fsync it, rename it over ``path``, fsync the folder.

    Raises:
        OutputError: the file cannot be written (naming ``path``); nothing is left behind.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        except OSError as err:
            raise OutputError(f"{path}: cannot write ({_reason(err)})") from None
    return path


def read_text_file(path: str | os.PathLike, *, what: str = "text file",
                   error: type[SeqSpeechError] = DataError) -> str:
    """A whole UTF-8 text file (a byte-order mark dropped). ``error`` (one line naming the file) when it is missing,
    a folder, unreadable, binary or not UTF-8; ``what`` names the kind of file in the message."""
    p = Path(path)
    if p.is_dir():
        raise error(f"{p}: is a folder, expected a {what}")
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise error(f"{p}: {what} not found") from None
    except OSError as e:
        raise error(f"{p}: cannot read ({_reason(e)})") from None
    if b"\x00" in raw:
        raise error(f"{p}: a binary file, not a {what} (expected UTF-8 text)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise error(f"{p}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the {what} as UTF-8") from None


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSONL file, read line by line.

    Raises DataError naming the file and line for text that is not UTF-8, invalid JSON, or a non-object line.
    """
    path = Path(path)
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(f"{path}:{line_no}: not UTF-8 text ({err.reason})") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{line_no}: invalid JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{line_no}: expected a JSON object, got {type(record).__name__}")
            yield line_no, record
