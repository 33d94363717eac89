"""``seqspeech stream``: live speech to text, results as the audio arrives.

    arecord -f S16_LE -r 16000 -c 1 | seqspeech stream -        # a microphone (WAV header or raw PCM)
    seqspeech stream talk.wav --realtime                         # a file, paced like a microphone
    seqspeech stream talk.wav --format jsonl                     # every event as JSON, one per line

The model's :meth:`stream` (:class:`~seqspeech.asr.streaming.StreamingRecognizer`) does the work; this module
only reads audio in blocks of ``--chunk-ms`` and prints the events as they come (see ``OUTPUT`` in the help).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from typing import Any, BinaryIO, Iterator, TextIO

import numpy as np

__all__ = ["DEFAULT_STREAM_MODEL", "add_parser", "open_stream"]

DEFAULT_STREAM_MODEL = "rnnt-synth-en"
READ_MS = 320  # stdin / file blocks when --chunk-ms is not given (results do not depend on it, latency does)
STDIN_RATE = 16000  # raw PCM on stdin without --rate
MIN_RATE, MAX_RATE = 4000, 384000  # what --rate accepts (resampled to 16 kHz)
PCM_BYTES = 2  # s16le
WAV_PCM, WAV_EXTENSIBLE = 1, 0xFFFE
MAX_WAV_HEADER_CHUNK = 1 << 20  # a LIST/INFO chunk before the data is small; more is not a WAV header
FORMATS = ("text", "jsonl")

OUTPUT_HELP = """\
OUTPUT (--format text, the default):
  on a terminal   one live line: the current utterance's partial text is rewritten in place
                  and the line is ended when the utterance is final
  otherwise       one line per final utterance (a transcript to pipe or save)
  --partials      every event on its own line, with the audio time it was made at:
                      1.28s  partial  the cat sat
                      2.40s  final    the cat sat on the mat
--format jsonl prints every event (partial and final) as one JSON object per line, flushed at once:
  {"type", "text", "tokens", "start", "end", "emitted_at", "utterance", "wall"} (seconds; emitted_at:
  audio decoded when the event was made, so emitted_at - end is the latency; wall: seconds since start).

An utterance ends after 0.8 s of silence following speech, or after 20 s (sherpa-onnx's endpoint rules);
--no-endpoint keeps one utterance until the audio ends.

INPUT: FILE is any audio file (wav, flac, ogg, mp3; m4a/mp4/webm via ffmpeg), any rate and channel count;
'-' reads 16-bit little-endian PCM from stdin as it arrives: raw (mono, --rate Hz, default 16000) or with a
WAV header (its rate and channels are used), e.g.
  arecord -f S16_LE -r 16000 -c 1 | seqspeech stream -
  ffmpeg -i talk.mp3 -f s16le -ac 1 -ar 16000 - | seqspeech stream - --realtime
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``stream`` to the top-level subcommands ``sub``."""
    p = sub.add_parser(
        "stream",
        help="live speech to text: partial and final results while the audio arrives (a file or stdin)",
        description="Recognise speech as it arrives, with a streaming model (transducer, monotonic/MoChA LAS, "
                    "streaming Whisper): partial results while an utterance goes on, a final result when it ends.",
        epilog=OUTPUT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("input", metavar="FILE|-", help="an audio file, or - for 16-bit PCM on stdin")
    p.add_argument("--model", default=DEFAULT_STREAM_MODEL,
                   help=f"a streaming model: zoo name or path (default {DEFAULT_STREAM_MODEL})")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--chunk-ms", type=int, default=None,
                   help="milliseconds of audio per decoding step, and per block read (default: the model's own "
                        f"chunk, e.g. 320 for LAS, 1000 for Whisper; blocks of {READ_MS} ms)")
    p.add_argument("--realtime", action="store_true",
                   help="feed the audio no faster than it plays (a file behaves like a microphone)")
    p.add_argument("--format", default="text", metavar="{text,jsonl}", help="see OUTPUT below (default text)")
    p.add_argument("--partials", action="store_true", help="(text) print every event as a timed line")
    p.add_argument("--rate", type=int, default=None,
                   help=f"(stdin, raw PCM) its sample rate in Hz (default {STDIN_RATE}; others are resampled)")
    p.add_argument("--no-endpoint", dest="endpoint", action="store_false",
                   help="no automatic utterance ends: one utterance until the audio ends")
    p.set_defaults(func=_cmd_stream)


def open_stream(model: str, chunk_ms: int | None = None, *, device: str | None = None) -> Any:
    """``seqspeech.load_model(model).stream(chunk_ms=chunk_ms)`` (``stream()``, the model's own chunk, for None),
    with one-line errors for a model that cannot stream."""
    import seqspeech

    from .errors import ConfigError, ModelLoadError
    from .zoo import MODELS

    if model == DEFAULT_STREAM_MODEL and model not in MODELS:
        raise ModelLoadError(f"the default streaming model {model} is not installed yet: choose one with --model "
                             "(a LAS model with monotonic or MoChA attention, or a Whisper model)")
    asr = seqspeech.load_model(model, **({"device": device} if device else {}))
    stream = getattr(asr, "stream", None)
    if not callable(stream):
        raise ConfigError(f"{model} cannot stream: {type(asr).__name__} has no streaming decoder (streaming models: "
                          "transducers, LAS with monotonic or MoChA attention, Whisper)")
    return stream() if chunk_ms is None else stream(chunk_ms=chunk_ms)


def _cmd_stream(args: argparse.Namespace) -> int:
    from .asr.streaming import EndpointConfig, chunk_samples_from_ms
    from .errors import ConfigError

    if args.format not in FORMATS:
        raise ConfigError(f"unknown --format {args.format!r}: choose text or jsonl")
    if args.partials and args.format != "text":
        raise ConfigError("--partials is for --format text (jsonl prints every event already)")
    if args.chunk_ms is not None:
        chunk_samples_from_ms(args.chunk_ms, "--chunk-ms")
    read_ms = args.chunk_ms or READ_MS
    if args.input == "-":
        if args.rate is not None and not MIN_RATE <= args.rate <= MAX_RATE:
            raise ConfigError(f"--rate must be a sample rate between {MIN_RATE} and {MAX_RATE} Hz, got {args.rate}")
        stdin = sys.stdin
        if getattr(stdin, "isatty", lambda: False)():
            raise ConfigError("stdin is a terminal: pipe 16-bit PCM into `seqspeech stream -` (e.g. arecord -f "
                              "S16_LE -r 16000 -c 1 | seqspeech stream -), or give a file")
        blocks = _pcm_blocks(stdin.buffer, read_ms, args.rate)
    else:
        if args.rate is not None:
            raise ConfigError(f"--rate is for raw PCM on stdin (-): {args.input}'s rate comes from the file itself")
        blocks = _file_blocks(args.input, read_ms)
        blocks = _primed(blocks, args.input)  # a missing or broken file fails before the model loads
    stream = open_stream(args.model, args.chunk_ms, device=args.device)
    if not args.endpoint:
        stream.endpoint = EndpointConfig(enabled=False)
    printer = Printer(sys.stdout, args.format, partials=args.partials, live=_stdout_is_tty())
    start = time.monotonic()
    fed = 0.0  # seconds of audio fed
    try:
        for rate, block in blocks:
            fed += len(block) / rate
            if args.realtime:  # a block of a microphone exists once its last sample was spoken
                delay = start + fed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            printer.show(stream.accept_waveform(rate, block))
        printer.show(stream.finish())
    except KeyboardInterrupt:  # Ctrl-C ends a microphone stream: its last utterance is still decoded
        printer.show(stream.finish())
        return 130
    except BrokenPipeError:  # the reader has gone (`| head`): nothing more to say to anyone
        printer.open = False
        _discard_stdout()
        return 0
    finally:
        printer.close()
    return 0


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so flushing it at exit does not raise again (Python's documented idiom)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # not a real file (captured in tests)
        pass


def _stdout_is_tty() -> bool:
    return bool(getattr(sys.stdout, "isatty", lambda: False)())


def _primed(blocks: Iterator[tuple[int, np.ndarray]], name: str) -> Iterator[tuple[int, np.ndarray]]:
    """``blocks`` with its first block read now: AudioError "no audio" when there is none."""
    from .errors import AudioError

    first = next(blocks, None)
    if first is None or not len(first[1]):
        raise AudioError(f"{name}: no audio (zero samples)")

    def chained() -> Iterator[tuple[int, np.ndarray]]:
        yield first
        yield from blocks

    return chained()


def _file_blocks(path: str, chunk_ms: int) -> Iterator[tuple[int, np.ndarray]]:
    """A file as 16 kHz mono float32 blocks of ``chunk_ms`` (decoded incrementally, any format and rate)."""
    from .audio.io import iter_audio_windows

    for _, samples in iter_audio_windows(path, chunk_ms / 1000, sr=STDIN_RATE):
        yield STDIN_RATE, samples


def _pcm_blocks(raw: BinaryIO, chunk_ms: int, rate: int | None) -> Iterator[tuple[int, np.ndarray]]:
    """16-bit little-endian PCM from ``raw`` in blocks of ``chunk_ms`` as ``(rate, samples)``: int16 for mono,
    float32 mixed down for more channels. A WAV header (``arecord``'s default) is read for rate and channels.

    Raises:
        AudioError: no audio, a byte count that is not whole samples, a WAV header that is not 16-bit PCM.
        ConfigError: ``rate`` disagrees with the WAV header.
    """
    from .errors import AudioError, ConfigError

    head = _read(raw, 12)
    channels = 1
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        header_rate, channels = _wav_header(raw)
        if rate is not None and rate != header_rate:
            raise ConfigError(f"--rate {rate} but the WAV header on stdin says {header_rate} Hz")
        rate, head = header_rate, b""
    rate = rate or STDIN_RATE
    frame_bytes = PCM_BYTES * channels
    block_bytes = frame_bytes * max(1, round(rate * chunk_ms / 1000))
    pending, total = head, len(head)
    while True:
        if len(pending) < block_bytes:
            data = raw.read(block_bytes - len(pending))
            if not data:  # end of input
                break
            total += len(data)
            pending += data
            if len(pending) < block_bytes:
                continue
        whole = len(pending) // frame_bytes * frame_bytes
        samples = np.frombuffer(pending[:whole], dtype="<i2")
        pending = pending[whole:]
        yield rate, _mono(samples, channels)
    whole = len(pending) // frame_bytes * frame_bytes
    if whole:
        yield rate, _mono(np.frombuffer(pending[:whole], dtype="<i2"), channels)
    if len(pending) != whole:
        what = "16-bit samples" if channels == 1 else f"{channels}-channel 16-bit frames"
        raise AudioError(f"stdin: {total} bytes is not a whole number of {what}")
    if total == 0:
        raise AudioError("stdin: no audio (0 bytes of PCM)")


def _mono(samples: np.ndarray, channels: int) -> np.ndarray:
    """int16 samples as they are (mono), or interleaved frames averaged to float32 in [-1, 1]."""
    if channels == 1:
        return samples.astype(np.int16)  # native byte order
    return samples.reshape(-1, channels).mean(axis=1, dtype=np.float32) / np.float32(32768)


def _read(raw: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes (fewer only at the end of the input)."""
    out = b""
    while len(out) < n:
        data = raw.read(n - len(out))
        if not data:
            break
        out += data
    return out


def _wav_header(raw: BinaryIO) -> tuple[int, int]:
    """Read a WAV header's chunks up to the start of its data (after ``RIFF....WAVE``): (rate, channels).

    The data chunk's size is ignored (a recorder writing to a pipe cannot know it): samples run to the end."""
    from .errors import AudioError

    fmt = None
    while True:
        chunk = _read(raw, 8)
        if len(chunk) < 8:
            raise AudioError("stdin: truncated WAV header (no data chunk)")
        kind, size = chunk[:4], int.from_bytes(chunk[4:], "little")
        if kind == b"data":
            break
        if size > MAX_WAV_HEADER_CHUNK:
            raise AudioError(f"stdin: WAV header chunk {kind!r} of {size} bytes before the audio: not a WAV stream")
        body = _read(raw, size + (size & 1))
        if len(body) < size:
            raise AudioError("stdin: truncated WAV header")
        if kind == b"fmt ":
            fmt = body
    if fmt is None or len(fmt) < 16:
        raise AudioError("stdin: WAV header without a format chunk")
    tag, channels, rate = (int.from_bytes(fmt[a:b], "little") for a, b in ((0, 2), (2, 4), (4, 8)))
    bits = int.from_bytes(fmt[14:16], "little")
    if tag == WAV_EXTENSIBLE and len(fmt) >= 26:
        tag = int.from_bytes(fmt[24:26], "little")
    if tag != WAV_PCM or bits != 16:
        kind = "PCM" if tag == WAV_PCM else "float" if tag == 3 else f"format {tag}"
        raise AudioError(f"stdin: WAV of {bits}-bit {kind} samples; `stream -` reads 16-bit PCM (give the file's "
                         "name instead of piping it, or convert: ffmpeg -i IN -f s16le -ac 1 -ar 16000 -)")
    if channels < 1 or not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"stdin: WAV header with {channels} channels at {rate} Hz")
    return rate, channels


class Printer:
    """Shows events on ``out`` as ``--format`` and ``--partials`` ask (see ``OUTPUT_HELP``); ``live``: rewrite
    one terminal line with the partial text."""

    def __init__(self, out: TextIO, fmt: str, *, partials: bool = False, live: bool = False) -> None:
        self.out = out
        self.fmt = fmt
        self.partials = partials
        self.live = live and fmt == "text" and not partials
        self.open = False  # a live line is on screen without its newline

    def show(self, events: list) -> None:
        for e in events:
            if self.fmt == "jsonl":
                self.out.write(json.dumps(e.to_dict(), ensure_ascii=False) + "\n")
            elif self.partials:
                self.out.write(f"{e.emitted_at:6.2f}s  {e.type:<7}  {e.text}".rstrip() + "\n")
            elif self.live:
                self._live(e)
            elif e.type == "final" and e.text.strip():
                self.out.write(e.text.strip() + "\n")
        if events:
            self.out.flush()

    def _live(self, e: Any) -> None:
        text = e.text.strip()
        if e.type == "partial":
            width = max(shutil.get_terminal_size().columns - 1, 10)
            shown = text if len(text) <= width else "\u2026" + text[-(width - 1):]
            self.out.write(f"\r{shown}\x1b[K")
            self.open = True
        else:
            self.out.write(f"\r{text}\x1b[K\n" if text else "\r\x1b[K")
            self.open = False

    def close(self) -> None:
        """End a live line left open (an error or Ctrl-C mid-utterance), so what follows starts a line."""
        if self.open:
            self.out.write("\n")
            self.out.flush()
            self.open = False
