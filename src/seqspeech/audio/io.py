"""Decode any audio input into float32 mono samples at one rate.

``load_audio`` is the single entry point for files, stdin, encoded bytes and in-memory arrays;
``audio_info`` reads only the header; ``iter_audio_windows`` streams a long file in fixed windows without
loading it whole.

Decoding goes through libsndfile (``soundfile``: WAV, FLAC, OGG/Vorbis, Opus, MP3, AIFF, ...) and falls back
to the ``ffmpeg`` CLI for containers libsndfile does not know (m4a, mp4, webm, ...). Resampling uses soxr
(quality HQ). Every problem raises :class:`~seqspeech.errors.AudioError` naming the input and what is wrong
with it; nothing is dropped silently (a WAV whose header promises more data than the file holds is an error,
not a short result).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import soundfile as sf
import soxr

from seqspeech.audio.constants import SAMPLE_RATE
from seqspeech.errors import AudioError
from seqspeech.fileio import atomic_path

if TYPE_CHECKING:
    import torch

__all__ = ["AudioSource", "audio_info", "iter_audio_windows", "load_audio", "write_wav", "write_wav_stream"]

AudioSource = Union[str, os.PathLike, bytes, np.ndarray, "torch.Tensor"]  # torch is never imported here

STDIN_NAME = "-"
RESAMPLE_QUALITY = "HQ"
MAX_CHANNELS = 16  # an array axis this short (and shorter than the other) is read as channels
STREAM_BLOCK_SECONDS = 4.0  # native-rate block read per step by iter_audio_windows
FFMPEG_READ_BYTES = 1 << 16
FLOAT32_BYTES = 4
# Integer PCM dtypes and the divisor that maps them to [-1, 1) (the same scale libsndfile uses).
_INT_SCALES: dict[np.dtype, float] = {np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31}
# Placeholder sizes that streaming writers (ffmpeg or sox writing to a pipe) leave in a header they cannot
# seek back to fix: 0, or something near 2**31 / 2**32. Such a header says nothing about truncation.
_PLACEHOLDER_SIZE_MIN = 0x7FFF0000
# libsndfile logs "data : <declared> (should be <actual>)" when a WAV/AIFF data chunk overruns the file.
_DECLARED_SIZE_RE = re.compile(r"^(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# libsndfile's message when it does not know the container at all (the ffmpeg fallback applies).
_UNKNOWN_FORMAT_MARKERS = ("format not recognised", "unknown format", "not supported")
# Formats whose frame count in the header is an estimate, so a short read is only warned about.
_ESTIMATED_LENGTH_FORMATS = frozenset({"MP3", "MPEG"})


# ----------------------------------------------------------------
# public API


def load_audio(source: AudioSource, sr: int = SAMPLE_RATE, *, source_sr: int | None = None) -> np.ndarray:
    """Decode ``source`` into float32 mono samples at ``sr`` Hz.

    Args:
        source: a file path (``str`` / ``PathLike``), ``"-"`` to read an encoded file from stdin, ``bytes``
            holding an encoded file, or samples as a numpy array / torch tensor of shape ``(T,)``,
            ``(C, T)`` or ``(T, C)``. Arrays are float (any width), int16 or int32 (scaled to [-1, 1));
            channels are averaged.
        sr: output sample rate.
        source_sr: rate of array input; arrays are assumed to already be at ``sr`` when it is ``None``.
            Ignored for encoded input, whose rate comes from its header.

    Returns:
        ``(T,)`` float32 samples at ``sr``.

    Raises:
        AudioError: missing / empty / corrupt / truncated / unsupported input, no samples, NaN or inf samples,
            arrays of an unusable dtype or shape.
    """
    _check_rate(sr, "sr")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _load_encoded_bytes(bytes(source), "<bytes>", sr)
    if isinstance(source, (str, os.PathLike)):
        if os.fspath(source) == STDIN_NAME:
            return _load_encoded_bytes(sys.stdin.buffer.read(), "<stdin>", sr)
        return _load_path(_check_path(source), sr)
    if source_sr is not None:
        _check_rate(source_sr, "source_sr")
    array = _array_from(source)
    return _finish(_array_to_mono(array), "audio array", source_sr or sr, sr)


def decode_audio_bytes(data: bytes, name: str, sr: int = SAMPLE_RATE) -> np.ndarray:
    """An encoded audio file held in memory (an upload) -> float32 mono samples at ``sr``; errors name ``name``."""
    _check_rate(sr, "sr")
    return _load_encoded_bytes(bytes(data), name, sr)


def audio_info(path: str | os.PathLike) -> tuple[float, int]:
    """Duration in seconds and native sample rate of an audio file, read from its header when possible.

    Uses libsndfile's header parse, and ``ffprobe`` for containers libsndfile does not know.

    Raises:
        AudioError: missing / empty / unreadable / truncated file, or an unknown format with no ``ffprobe``
            on PATH.
    """
    path = _check_path(path)
    try:
        handle = _open_soundfile(str(path), str(path))
    except _UnknownToLibsndfile as unknown:
        return _ffprobe_info(path, str(unknown))
    with handle:
        _check_declared_size(handle, str(path))
        return handle.frames / handle.samplerate, int(handle.samplerate)


def iter_audio_windows(
    path: str | os.PathLike, window_s: float, sr: int = SAMPLE_RATE, overlap_s: float = 0.0
) -> Iterator[tuple[float, np.ndarray]]:
    """Stream a long file as consecutive windows of float32 mono samples at ``sr``, without loading it whole.

    Blocks are decoded incrementally (libsndfile blocks, or an ``ffmpeg`` pipe), averaged to mono and
    resampled by a stateful soxr stream, so the concatenation of non-overlapping windows matches
    :func:`load_audio` up to resampler edge effects.

    Args:
        path: audio file.
        window_s: window length in seconds (> 0).
        sr: output sample rate.
        overlap_s: seconds shared by consecutive windows, ``0 <= overlap_s < window_s``.

    Yields:
        ``(start_seconds, samples)`` with ``samples`` of shape ``(round(window_s * sr),)``; only the last
        window may be shorter. A window made only of already-yielded overlap is never emitted.

    Raises:
        AudioError: as :func:`load_audio`, raised when the problem is reached in the stream.
    """
    _check_rate(sr, "sr")
    window = round(window_s * sr)
    hop = window - round(overlap_s * sr)
    if window <= 0 or overlap_s < 0 or hop <= 0:
        raise AudioError(
            f"{path}: need window_s > 0 and 0 <= overlap_s < window_s, "
            f"got window_s={window_s}, overlap_s={overlap_s}"
        )
    path = _check_path(path)
    buffer = np.zeros(0, dtype=np.float32)
    buffer_start = 0  # absolute sample index of buffer[0]
    covered = 0  # absolute sample index where the last yielded window ended
    for block in _iter_blocks(path, sr):
        buffer = np.concatenate([buffer, block])
        while buffer.size >= window:
            yield buffer_start / sr, buffer[:window].copy()
            covered = buffer_start + window
            buffer, buffer_start = buffer[hop:], buffer_start + hop
    if buffer_start + buffer.size > covered:
        yield buffer_start / sr, buffer.copy()


# ----------------------------------------------------------------
# validation helpers


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono float samples as 16-bit PCM WAV, atomically (a reader never sees half a file); values outside
    [-1, 1] are clipped."""
    write_wav_stream(path, [samples], sample_rate)


def write_wav_stream(path: str | os.PathLike, chunks: Iterable[np.ndarray], sample_rate: int
                     ) -> tuple[int, float | None]:
    """Write mono float chunks as one 16-bit PCM WAV as they come (bounded memory for long synthesis), through a
    temp file renamed at the end: a chunk that raises, or an interrupt, leaves nothing behind. Values outside
    [-1, 1] are clipped. Returns (samples written, seconds until the first chunk arrived)."""
    samples, first = 0, None
    t0 = time.perf_counter()
    with atomic_path(path) as tmp:
        with sf.SoundFile(tmp, "w", samplerate=sample_rate, channels=1, subtype="PCM_16", format="WAV") as handle:
            for chunk in chunks:
                if first is None:
                    first = time.perf_counter() - t0
                chunk = np.clip(np.asarray(chunk, dtype=np.float32).reshape(-1), -1.0, 1.0)
                handle.write(chunk)
                samples += chunk.size
    return samples, first


def _check_rate(rate: Any, what: str) -> None:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
        raise AudioError(f"{what} must be a positive integer sample rate, got {rate!r}")


def _check_path(path: str | os.PathLike) -> Path:
    """The path as a ``Path`` once it is known to be an existing, non-empty regular file."""
    path = Path(path)
    if not path.exists():
        if path.is_symlink():
            raise AudioError(f"{path}: audio file not found (a symbolic link to {os.readlink(path)}, which is gone)")
        raise AudioError(f"{path}: audio file not found")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, expected an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: audio file is empty (0 bytes)")
    return path


def _check_finite(samples: np.ndarray, name: str, offset_s: float = 0.0, sr: int = 1) -> None:
    bad = ~np.isfinite(samples)
    if bad.any():
        first = int(np.argmax(bad.reshape(bad.shape[0], -1).any(axis=1)))
        raise AudioError(
            f"{name}: contains {int(bad.sum())} NaN/inf sample values "
            f"(first at {offset_s + first / sr:.3f} s)"
        )


def _finish(mono: np.ndarray, name: str, in_sr: int, out_sr: int) -> np.ndarray:
    """Validate ``(T,)`` samples at ``in_sr`` and resample them to ``out_sr``."""
    if mono.size == 0:
        raise AudioError(f"{name}: contains no audio samples (zero length)")
    _check_finite(mono, name, sr=in_sr)
    return _resample(mono, in_sr, out_sr)


def _resample(mono: np.ndarray, in_sr: int, out_sr: int) -> np.ndarray:
    if in_sr == out_sr:
        return np.ascontiguousarray(mono, dtype=np.float32)
    return soxr.resample(mono, in_sr, out_sr, quality=RESAMPLE_QUALITY).astype(np.float32, copy=False)


def _to_mono(frames: np.ndarray) -> np.ndarray:
    """``(T, C)`` -> ``(T,)`` float32 by averaging channels."""
    if frames.shape[1] == 1:
        return frames[:, 0].astype(np.float32)
    return frames.mean(axis=1, dtype=np.float64).astype(np.float32)


# ----------------------------------------------------------------
# arrays


def _array_from(source: Any) -> np.ndarray:
    """A numpy view of an array or torch tensor; anything else is an error."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(source, torch.Tensor):
        tensor = source.detach().cpu()
        if tensor.is_floating_point() and tensor.dtype not in (torch.float16, torch.float32, torch.float64):
            tensor = tensor.float()  # bfloat16 and friends have no numpy dtype
        return tensor.numpy()
    if isinstance(source, np.ndarray):
        return source
    raise AudioError(
        f"unsupported audio source of type {type(source).__name__}: expected a path, '-', bytes, "
        "a numpy array or a torch tensor"
    )


def _array_to_mono(array: np.ndarray) -> np.ndarray:
    """``(T,)``, ``(C, T)`` or ``(T, C)`` float/int16/int32 samples -> ``(T,)`` float32, input scale."""
    if array.dtype in _INT_SCALES:
        array = array.astype(np.float32) / np.float32(_INT_SCALES[array.dtype])
    elif array.dtype.kind == "f":
        array = array.astype(np.float32)  # always a copy: the result never aliases the caller's buffer
    else:
        raise AudioError(
            f"audio array has dtype {array.dtype}; expected float16/32/64, int16 or int32 samples "
            "(convert other integer types explicitly so their scale is not guessed)"
        )
    if array.ndim == 1:
        return array
    if array.ndim == 2:
        rows, cols = array.shape
        if rows <= MAX_CHANNELS and rows < cols:
            return _to_mono(array.T)
        if cols <= MAX_CHANNELS and cols < rows:
            return _to_mono(array)
        if min(rows, cols) == 1:  # (1, 1) and friends
            return array.reshape(-1)
    raise AudioError(
        f"audio array has shape {tuple(array.shape)}; expected (T,), (C, T) or (T, C) with at most "
        f"{MAX_CHANNELS} channels and more samples than channels"
    )


# ----------------------------------------------------------------
# libsndfile


def _sf_message(err: sf.LibsndfileError) -> str:
    return (getattr(err, "error_string", "") or str(err)).strip()


def _is_unknown_format(err: sf.LibsndfileError) -> bool:
    message = _sf_message(err).lower()
    return any(marker in message for marker in _UNKNOWN_FORMAT_MARKERS)


class _UnknownToLibsndfile(Exception):
    """libsndfile does not know the container (its message is the exception text); ffmpeg may."""


def _open_soundfile(file: Any, name: str) -> sf.SoundFile:
    """Open with libsndfile; raises ``_UnknownToLibsndfile`` for formats it does not know."""
    try:
        return sf.SoundFile(file)
    except sf.LibsndfileError as err:
        if _is_unknown_format(err):
            raise _UnknownToLibsndfile(_sf_message(err)) from None
        raise AudioError(f"{name}: corrupt or truncated audio file ({_sf_message(err)})") from err


def _check_declared_size(handle: sf.SoundFile, name: str) -> None:
    """Raise when the header declares more sample data than the file holds (libsndfile would cut it)."""
    for declared, actual in _DECLARED_SIZE_RE.findall(handle.extra_info):
        declared, actual = int(declared), int(actual)
        if actual < declared < _PLACEHOLDER_SIZE_MIN:
            raise AudioError(
                f"{name}: truncated audio file: header declares {declared} bytes of sample data "
                f"but only {actual} are present"
            )


def _check_frame_count(handle: sf.SoundFile, decoded: int, name: str) -> None:
    """Refuse a file that decoded to fewer frames than its header declares (warn where that is a guess)."""
    if decoded < handle.frames:
        message = f"decoded {decoded} of the {handle.frames} frames its header declares"
        if handle.format in _ESTIMATED_LENGTH_FORMATS:
            warnings.warn(f"{name}: {message} (the file may be truncated)", stacklevel=4)
        else:
            raise AudioError(f"{name}: truncated audio file: {message}")


def _read_block(handle: sf.SoundFile, name: str, frames: int = -1) -> np.ndarray:
    """Up to ``frames`` frames (all when -1) of an open file as ``(n, C)`` float32."""
    try:
        return handle.read(frames, dtype="float32", always_2d=True)
    except sf.LibsndfileError as err:
        raise AudioError(f"{name}: corrupt or truncated audio file ({_sf_message(err)})") from err


def _read_soundfile(handle: sf.SoundFile, name: str) -> np.ndarray:
    """All frames of an open file as ``(T, C)`` float32, refusing truncated files."""
    _check_declared_size(handle, name)
    frames = _read_block(handle, name)
    _check_frame_count(handle, frames.shape[0], name)
    return frames


def _decode_soundfile(file: Any, name: str, sr: int) -> np.ndarray:
    """Decode with libsndfile to ``(T,)`` at ``sr``; ``_UnknownToLibsndfile`` for formats it does not know."""
    with _open_soundfile(file, name) as handle:
        frames = _read_soundfile(handle, name)
        native_sr = handle.samplerate
    return _finish(_to_mono(frames), name, native_sr, sr)


# ----------------------------------------------------------------
# ffmpeg fallback


def _ffmpeg_command(path: Path, sr: int, name: str, sf_reason: str) -> list[str]:
    """ffmpeg CLI decoding the first audio stream of ``path`` to f32le mono at ``sr`` on stdout."""
    if shutil.which("ffmpeg") is None:
        raise _unsupported(name, sf_reason)
    # fmt: off
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-v", "error",
        "-i", str(path), "-map", "0:a:0",
        "-f", "f32le", "-acodec", "pcm_f32le", "-ac", "1", "-ar", str(sr), "-",
    ]
    # fmt: on


def _unsupported(name: str, sf_reason: str) -> AudioError:
    return AudioError(
        f"{name}: unknown or unsupported audio format (libsndfile: {sf_reason}) and ffmpeg is not on PATH "
        "to try other decoders; install ffmpeg to read m4a/mp4/webm and other containers"
    )


def _ffmpeg_failure(name: str, sf_reason: str, stderr: bytes) -> AudioError:
    detail = stderr.decode(errors="replace").strip().splitlines()
    if any("matches no streams" in line for line in detail):  # `-map 0:a:0` found no audio: a silent video
        return AudioError(f"{name}: has no audio stream (a video or container without sound)")
    return AudioError(
        f"{name}: unknown, unsupported or corrupt audio (libsndfile: {sf_reason}; "
        f"ffmpeg: {detail[-1] if detail else 'no audio decoded'})"
    )


def _warn_ffmpeg_stderr(name: str, stderr: bytes) -> None:
    text = stderr.decode(errors="replace").strip()
    if text:
        warnings.warn(
            f"{name}: ffmpeg reported problems while decoding: {text.splitlines()[-1]}", stacklevel=4
        )


def _decode_ffmpeg(path: Path, name: str, sr: int, sf_reason: str) -> np.ndarray:
    """Decode the first audio stream of ``path`` with the ffmpeg CLI to ``(T,)`` float32 at ``sr``."""
    command = _ffmpeg_command(path, sr, name, sf_reason)
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        raise _ffmpeg_failure(name, sf_reason, result.stderr)
    _warn_ffmpeg_stderr(name, result.stderr)
    usable = len(result.stdout) // FLOAT32_BYTES * FLOAT32_BYTES
    return _finish(np.frombuffer(result.stdout[:usable], np.float32).copy(), name, sr, sr)


def _ffprobe_info(path: Path, sf_reason: str) -> tuple[float, int]:
    if shutil.which("ffprobe") is None:
        raise AudioError(
            f"{path}: unknown or unsupported audio format (libsndfile: {sf_reason}) "
            "and ffprobe is not on PATH"
        )
    # fmt: off
    command = [
        "ffprobe", "-v", "error", "-select_streams", "a:0",
        "-show_entries", "stream=sample_rate,duration:format=duration", "-of", "default=noprint_wrappers=1",
        str(path),
    ]
    # fmt: on
    result = subprocess.run(command, capture_output=True, check=False, text=True)
    fields: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition("=")
        if value not in ("", "N/A"):
            fields.setdefault(key, value)  # the stream's duration comes before the container's
    if result.returncode == 0 and "sample_rate" not in fields:  # a container ffprobe reads, without sound
        raise AudioError(f"{path}: has no audio stream (a video or container without sound)")
    if result.returncode != 0 or "sample_rate" not in fields or "duration" not in fields:
        detail = result.stderr.strip().splitlines()
        raise AudioError(
            f"{path}: unknown, unsupported or corrupt audio (libsndfile: {sf_reason}; "
            f"ffprobe: {detail[-1] if detail else 'no audio stream found'})"
        )
    return float(fields["duration"]), int(fields["sample_rate"])


# ----------------------------------------------------------------
# encoded input


def _load_path(path: Path, sr: int) -> np.ndarray:
    try:
        return _decode_soundfile(str(path), str(path), sr)
    except _UnknownToLibsndfile as unknown:
        return _decode_ffmpeg(path, str(path), sr, str(unknown))


def _load_encoded_bytes(data: bytes, name: str, sr: int) -> np.ndarray:
    """Decode the contents of an encoded audio file held in memory (``bytes`` input or stdin)."""
    if not data:
        raise AudioError(f"{name}: audio input is empty (0 bytes)")
    try:
        return _decode_soundfile(io.BytesIO(data), name, sr)
    except _UnknownToLibsndfile as unknown:
        reason = str(unknown)
    # ffmpeg gets a real, seekable file: mp4/m4a keep their index at the end, which a pipe cannot reach.
    with tempfile.TemporaryDirectory(prefix="seqspeech-audio-") as tmp:
        path = Path(tmp) / "input"
        path.write_bytes(data)
        return _decode_ffmpeg(path, name, sr, reason)


# ----------------------------------------------------------------
# streaming


def _iter_blocks(path: Path, sr: int) -> Iterator[np.ndarray]:
    """``(n,)`` float32 blocks at ``sr`` covering the whole file in order (blocks may be empty)."""
    name = str(path)
    try:
        handle = _open_soundfile(name, name)
    except _UnknownToLibsndfile as unknown:
        yield from _iter_ffmpeg_blocks(path, sr, str(unknown))
        return
    with handle:
        _check_declared_size(handle, name)
        native_sr = handle.samplerate
        block_frames = max(1, int(STREAM_BLOCK_SECONDS * native_sr))
        resampler = (
            None
            if native_sr == sr
            else soxr.ResampleStream(native_sr, sr, 1, dtype="float32", quality=RESAMPLE_QUALITY)
        )
        done = 0
        while True:
            mono = _to_mono(_read_block(handle, name, block_frames))
            last = mono.size < block_frames
            _check_finite(mono, name, offset_s=done / native_sr, sr=native_sr)
            done += mono.size
            if last and done == 0:
                raise AudioError(f"{name}: contains no audio samples (zero length)")
            if last:
                _check_frame_count(handle, done, name)
            yield mono if resampler is None else resampler.resample_chunk(mono, last=last)
            if last:
                return


def _iter_ffmpeg_blocks(path: Path, sr: int, sf_reason: str) -> Iterator[np.ndarray]:
    """Blocks of ``(n,)`` float32 at ``sr`` read incrementally from an ffmpeg pipe."""
    name = str(path)
    command = _ffmpeg_command(path, sr, name, sf_reason)
    with tempfile.TemporaryFile() as stderr:  # a file, not a pipe: ffmpeg can never block on a full stderr
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL)
        assert process.stdout is not None
        try:
            pending = b""
            done = 0
            while chunk := process.stdout.read(FFMPEG_READ_BYTES):
                pending += chunk
                usable = len(pending) // FLOAT32_BYTES * FLOAT32_BYTES
                block = np.frombuffer(pending[:usable], np.float32).copy()
                pending = pending[usable:]
                _check_finite(block, name, offset_s=done / sr, sr=sr)
                done += block.size
                yield block
            returncode = process.wait()
            stderr.seek(0)
            message = stderr.read()
            if returncode != 0:
                raise _ffmpeg_failure(name, sf_reason, message)
            _warn_ffmpeg_stderr(name, message)
            if done == 0:
                raise AudioError(f"{name}: contains no audio samples (zero length)")
        finally:
            if process.poll() is None:
                process.kill()
            process.stdout.close()
            process.wait()
