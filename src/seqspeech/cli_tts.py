"""`seqspeech synthesize`: text to speech with a voice from the zoo or a path.

Inputs are checked before the voice loads: the text (or ``--input`` file: UTF-8, not binary, one utterance per
line), the output path (a file name whose folder exists or can be made; missing folders are made) and the controls
(``--speed`` in [0.25, 4], ``--pitch`` in [-12, 12] semitones, ``--energy`` in [0.1, 4]; NaN and inf are out of
range). Audio is spoken a sentence at a time and written as it comes, so a long text (up to
:data:`~seqspeech.text.frontend.MAX_TEXT_CHARS` characters; more goes in an ``--input`` file, a paragraph a line)
runs in bounded memory, with a progress bar over its sentences (over the lines with ``--input``). Every WAV goes
through a temp file renamed at the end: a failure or an interrupt leaves no partial WAV. With ``--input``, a line
that cannot be spoken is reported on stderr with its line number, the other lines are still written, and the exit
code is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import ConfigError, DataError, OutputError
from .fileio import read_text_file

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synthesize", help="text to speech",
        description="Speak text with a voice (default: slt, FastSpeech 2 + HiFi-GAN). Every waveform carries an "
                    "inaudible keyed watermark unless --no-watermark (check with `seqspeech detect-watermark`).",
    )  # fmt: skip
    p.add_argument("text", nargs="?", default=None, help="text to speak ('-' reads stdin)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="WAV file to write (one text); missing folders are made")
    p.add_argument("--input", type=Path, default=None,
                   help="a UTF-8 text file: one utterance per line, written to --output-dir as NNNN.wav (NNNN: the "
                        "line number); a line that cannot be spoken is reported and skipped (exit code 1)")
    p.add_argument("--output-dir", type=Path, default=None, help="folder for --input's WAVs (made if missing)")
    p.add_argument("--model", default="slt", help="voice: zoo name (slt, tacotron2-slt) or path")
    p.add_argument("--vocoder", default=None,
                   help="HiFi-GAN package path (or a voice folder: its vocoder), or griffin-lim (default: the voice's)")
    p.add_argument("--speed", type=float, default=1.0, help="> 1 speaks faster; 0.25 to 4")
    p.add_argument("--pitch", type=float, default=0.0, help="pitch shift in semitones, -12 to 12 (FastSpeech 2 voices)")
    p.add_argument("--energy", type=float, default=1.0, help="loudness scale, 0.1 to 4 (FastSpeech 2 voices)")
    p.add_argument("--stream", action="store_true",
                   help="synthesise in streaming mode (chunks written as they are ready; first-chunk latency shown)")
    p.add_argument("--no-watermark", dest="watermark", action="store_false", help="do not embed the watermark")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal and the work takes more than 2 s)")
    p.add_argument("--device", default=None)
    p.set_defaults(func=_cmd_synthesize)


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the non-blank lines of a UTF-8 text file; DataError naming the file otherwise."""
    text = read_text_file(path, what="text file (one utterance per line)")
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise DataError(f"{path}: no text to speak (the file is empty or blank)")
    return lines


def _read_text(args: argparse.Namespace) -> str:
    from .text.frontend import MAX_TEXT_CHARS

    if args.text != "-":
        text = args.text
    else:
        try:
            text = sys.stdin.buffer.read().decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise DataError(f"stdin: not UTF-8 text (byte {e.start}: {e.reason})") from None
    if len(text) > MAX_TEXT_CHARS:
        raise DataError(f"the text has {len(text):,} characters, more than {MAX_TEXT_CHARS:,}: put it in a file, a "
                        "paragraph a line, and give --input FILE --output-dir DIR")
    return text


def _speak(voice, text: str, args: argparse.Namespace, options: dict, progress: bool | None) -> Iterator:
    """The audio chunks of ``text``: streamed (``--stream``), else a sentence at a time."""
    if args.stream:
        return voice.synthesize_stream(text, progress=progress, **options)
    return voice.synthesize_sentences(text, progress=progress, **options)


def _cmd_synthesize(args: argparse.Namespace) -> int:
    from . import load_voice
    from .audio.io import write_wav_stream
    from .fileio import check_output_dir, check_output_path
    from .text.frontend import MAX_TEXT_CHARS
    from .tts.synthesizer import SynthesisOptions

    if args.input is not None:
        if args.text is not None or args.output is not None:
            raise ConfigError("--input writes one WAV per line into --output-dir; do not also give TEXT or -o")
        if args.output_dir is None:
            raise ConfigError("--input needs --output-dir")
        jobs = _read_lines(args.input)
        check_output_dir(args.output_dir)
    else:
        if args.text is None:
            raise ConfigError("give TEXT (or '-' for stdin), or --input FILE --output-dir DIR")
        if args.output is None:
            raise ConfigError("give -o/--output for the WAV file")
        if args.output_dir is not None:
            raise ConfigError("--output-dir is for --input; give -o/--output for one text")
        check_output_path(args.output)
        jobs = [(0, _read_text(args))]
    options = {"speed": args.speed, "pitch": args.pitch, "energy": args.energy, "watermark": args.watermark}
    for name in ("speed", "pitch", "energy"):  # out-of-range controls (NaN, inf too) fail before the voice loads
        try:
            SynthesisOptions(**{name: options[name]})
        except ConfigError as e:
            raise ConfigError(f"--{name}: {e}") from None
    voice = load_voice(args.model, vocoder=args.vocoder, device=args.device)

    from .progress import progress_bar

    many = args.input is not None
    bar = progress_bar(len(jobs), desc="synthesize", unit="line", enabled=args.progress if many else False)
    failed = 0
    try:
        for number, text in jobs:
            path = args.output_dir / f"{number:04d}.wav" if many else args.output
            t0 = time.perf_counter()
            try:
                if len(text) > MAX_TEXT_CHARS:
                    raise DataError(f"{len(text):,} characters, more than {MAX_TEXT_CHARS:,}: split it over lines")
                chunks = _speak(voice, text, args, options, progress=False if many else args.progress)
                samples, first = write_wav_stream(path, chunks, voice.sample_rate)
            except (DataError, OutputError) as e:  # this line's problem: the other lines are still spoken
                if not many:
                    raise
                bar.write(f"seqspeech: error: {args.input}:{number}: {e}", file=sys.stderr)
                failed += 1
                continue
            finally:
                bar.update(1)
            seconds = time.perf_counter() - t0
            audio_s = samples / voice.sample_rate
            report = {"output": str(path), "seconds": round(audio_s, 3),
                      "rtf": round(seconds / max(audio_s, 1e-9), 4), "watermark": args.watermark}
            if args.stream and first is not None:
                report["first_chunk_ms"] = round(first * 1000, 1)
            print(json.dumps(report), flush=True)
    finally:
        bar.close()
    if failed:
        print(f"seqspeech: {failed} of {len(jobs)} lines of {args.input} could not be spoken", file=sys.stderr)
    return 1 if failed else 0
