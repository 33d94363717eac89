"""Audio encoders that work chunk by chunk, so speech streams out while the voice still speaks.

``wav``: a 16-bit PCM header with the streaming placeholder sizes (0xFFFFFFFF, as ffmpeg and OpenAI write to a pipe)
then samples; ``pcm``: raw 16-bit little-endian samples at 24 kHz, OpenAI's ``pcm`` (resampled on the fly);
``flac``, ``mp3``, ``opus`` (Ogg) and ``aac`` (ADTS): an ``ffmpeg`` process fed through a pipe.
"""

from __future__ import annotations

import queue
import shutil
import struct
import subprocess
import threading

import numpy as np

from ..errors import ConfigError

FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
CONTENT_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
                 "wav": "audio/wav", "pcm": "audio/pcm"}
PCM_RATE = 24000  # OpenAI's raw pcm is 24 kHz 16-bit mono
STREAMING_SIZE = 0xFFFFFFFF  # RIFF/data size of a WAV whose length is not known when its header is sent
FFMPEG_ARGS = {"mp3": ["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"],
               "opus": ["-c:a", "libopus", "-b:a", "32k", "-f", "ogg"],
               "aac": ["-c:a", "aac", "-b:a", "64k", "-f", "adts"],
               "flac": ["-c:a", "flac", "-f", "flac"]}
FFMPEG_READ_BYTES = 1 << 14
FIRST_BYTES_WAIT_S = 0.5


def pcm16(samples: np.ndarray) -> bytes:
    """float32 samples in [-1, 1] (clipped) -> 16-bit little-endian PCM bytes."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def wav_header(sample_rate: int, data_bytes: int = STREAMING_SIZE) -> bytes:
    """A 44-byte mono 16-bit PCM WAV header (sizes are placeholders when ``data_bytes`` is unknown)."""
    riff = STREAMING_SIZE if data_bytes == STREAMING_SIZE else 36 + data_bytes
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate,
                                                                            sample_rate * 2, 2, 16)
            + b"data" + struct.pack("<I", data_bytes))


class AudioEncoder:
    """``push(samples) -> bytes`` for each float32 chunk, then ``finish() -> bytes``; ``close()`` frees resources
    (an ffmpeg process) when a stream is abandoned."""

    def __init__(self, fmt: str, sample_rate: int) -> None:
        if fmt not in FORMATS:
            raise ConfigError(f"response_format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        self.fmt, self.sample_rate = fmt, sample_rate
        self.content_type = CONTENT_TYPES[fmt]
        self._started = False
        self._resampler = None
        self._ffmpeg: subprocess.Popen | None = None
        self._out: queue.Queue = queue.Queue()
        self._reader: threading.Thread | None = None
        if fmt == "pcm" and sample_rate != PCM_RATE:
            import soxr

            self._resampler = soxr.ResampleStream(sample_rate, PCM_RATE, 1, dtype="float32")
        if fmt in FFMPEG_ARGS:
            self._start_ffmpeg()

    def push(self, samples: np.ndarray) -> bytes:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self.fmt == "wav":
            head = b"" if self._started else wav_header(self.sample_rate)
            self._started = True
            return head + pcm16(samples)
        if self.fmt == "pcm":
            if self._resampler is not None:
                samples = self._resampler.resample_chunk(samples)
            return pcm16(samples)
        assert self._ffmpeg is not None and self._ffmpeg.stdin is not None
        self._ffmpeg.stdin.write(np.ascontiguousarray(samples, dtype="<f4").tobytes())
        self._ffmpeg.stdin.flush()
        data = self._drain()
        if not data and not self._started and samples.size:
            # the first bytes are worth a short wait (ffmpeg starts in ~0.1 s): they end the client's silence
            try:
                data = self._out.get(timeout=FIRST_BYTES_WAIT_S) + self._drain()
            except queue.Empty:
                pass
        self._started = self._started or bool(data)
        return data

    def finish(self) -> bytes:
        if self.fmt == "wav":
            return b"" if self._started else wav_header(self.sample_rate)
        if self.fmt == "pcm":
            return pcm16(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)) if self._resampler \
                else b""
        assert self._ffmpeg is not None and self._ffmpeg.stdin is not None
        self._ffmpeg.stdin.close()
        assert self._reader is not None
        self._reader.join()
        code = self._ffmpeg.wait()
        if code != 0:
            err = self._ffmpeg.stderr.read().decode(errors="replace").strip() if self._ffmpeg.stderr else ""
            raise RuntimeError(f"ffmpeg could not encode {self.fmt}: {err.splitlines()[-1] if err else code}")
        return self._drain()

    def close(self) -> None:
        if self._ffmpeg is not None and self._ffmpeg.poll() is None:
            self._ffmpeg.kill()
            self._ffmpeg.wait()

    def _start_ffmpeg(self) -> None:
        if shutil.which("ffmpeg") is None:
            raise ConfigError(f"response_format {self.fmt} needs the ffmpeg program, which is not installed; "
                              "ask for wav or pcm")
        cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-probesize", "32", "-analyzeduration", "0",
               "-fflags", "+nobuffer", "-f", "f32le", "-ar", str(self.sample_rate),
               "-ac", "1", "-i", "pipe:0", *FFMPEG_ARGS[self.fmt], "-flush_packets", "1", "pipe:1"]
        self._ffmpeg = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def read() -> None:  # ffmpeg's output is read as it comes, so neither pipe can fill and block the other
            assert self._ffmpeg is not None and self._ffmpeg.stdout is not None
            while block := self._ffmpeg.stdout.read1(FFMPEG_READ_BYTES):
                self._out.put(block)

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()

    def _drain(self) -> bytes:
        parts = []
        while True:
            try:
                parts.append(self._out.get_nowait())
            except queue.Empty:
                return b"".join(parts)
