"""`seqspeech synthesize`: text to speech with a voice from the zoo or a path."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .errors import ConfigError, DataError

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synthesize", help="text to speech",
        description="Speak text with a voice (default: slt, FastSpeech 2 + HiFi-GAN). Every waveform carries an "
                    "inaudible keyed watermark unless --no-watermark (check with `seqspeech detect-watermark`).",
    )  # fmt: skip
    p.add_argument("text", nargs="?", default=None, help="text to speak ('-' reads stdin)")
    p.add_argument("-o", "--output", type=Path, default=None, help="WAV file to write (one text)")
    p.add_argument("--input", type=Path, default=None,
                   help="a text file: one utterance per line, written to --output-dir as 0001.wav, 0002.wav, ...")
    p.add_argument("--output-dir", type=Path, default=None, help="folder for --input's WAVs")
    p.add_argument("--model", default="slt", help="voice: zoo name (slt, tacotron2-slt) or path")
    p.add_argument("--vocoder", default=None, help="HiFi-GAN package path, or griffin-lim (default: the voice's)")
    p.add_argument("--speed", type=float, default=1.0, help="> 1 speaks faster")
    p.add_argument("--pitch", type=float, default=0.0, help="pitch shift in semitones (FastSpeech 2 voices)")
    p.add_argument("--energy", type=float, default=1.0, help="loudness scale (FastSpeech 2 voices)")
    p.add_argument("--stream", action="store_true",
                   help="synthesise in streaming mode (chunks written as they are ready; first-chunk latency shown)")
    p.add_argument("--no-watermark", dest="watermark", action="store_false", help="do not embed the watermark")
    p.add_argument("--device", default=None)
    p.set_defaults(func=_cmd_synthesize)



def _speak(voice, text: str, args: argparse.Namespace) -> tuple:
    import numpy as np

    options = {"speed": args.speed, "pitch": args.pitch, "energy": args.energy, "watermark": args.watermark}
    t0 = time.perf_counter()
    if not args.stream:
        wave = voice.synthesize(text, **options)
        return wave, None, time.perf_counter() - t0
    chunks, first = [], None
    for chunk in voice.synthesize_stream(text, **options):
        if first is None:
            first = time.perf_counter() - t0
        chunks.append(chunk)
    return np.concatenate(chunks), first, time.perf_counter() - t0


def _cmd_synthesize(args: argparse.Namespace) -> int:
    from . import load_voice
    from .audio.io import write_wav

    if args.input is not None:
        if args.text is not None or args.output is not None:
            raise ConfigError("--input writes one WAV per line into --output-dir; do not also give TEXT or -o")
        if args.output_dir is None:
            raise ConfigError("--input needs --output-dir")
        try:
            lines = args.input.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"{args.input}: cannot read the text file ({e})") from None
        jobs = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
        if not jobs:
            raise DataError(f"{args.input}: no text lines")
    else:
        text = sys.stdin.read() if args.text == "-" else args.text
        if text is None:
            raise ConfigError("give TEXT (or '-' for stdin), or --input FILE --output-dir DIR")
        if args.output is None:
            raise ConfigError("give -o/--output for the WAV file")
        jobs = [(0, text)]
    voice = load_voice(args.model, vocoder=args.vocoder, device=args.device)
    failed = 0
    for number, text in jobs:
        path = args.output if number == 0 else args.output_dir / f"{number:04d}.wav"
        try:
            wave, first, seconds = _speak(voice, text, args)
        except DataError as e:
            if number == 0:
                raise
            print(f"seqspeech: line {number} of {args.input}: {e}", file=sys.stderr)
            failed += 1
            continue
        write_wav(path, wave, voice.sample_rate)
        audio_s = len(wave) / voice.sample_rate
        report = {"output": str(path), "seconds": round(audio_s, 3), "rtf": round(seconds / max(audio_s, 1e-9), 4),
                  "watermark": args.watermark}
        if first is not None:
            report["first_chunk_ms"] = round(first * 1000, 1)
        print(json.dumps(report))
    return 1 if failed else 0
