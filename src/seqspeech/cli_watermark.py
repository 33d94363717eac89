"""``seqspeech detect-watermark``: is the keyed watermark of synthesised speech in these files?

    seqspeech detect-watermark out.wav call.mp3
    out.wav  present  score=9.41  (threshold 3.72)
    call.mp3 absent   score=-0.37  (threshold 3.72)

One line per file on stdout; a file that cannot be read is reported on stderr (naming it) and the others are
still checked; the exit code is 0 when every file was read, 1 otherwise. Silence and clips too short to carry a
measurable mark (under ``MIN_RELIABLE_S``, 1.5 s) get a verdict too, "absent", with a note saying why it cannot
be trusted (a short marked clip may score below the threshold).
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``detect-watermark`` to the top-level subcommands ``sub``."""
    from .audio.watermark import DEFAULT_KEY

    p = sub.add_parser(
        "detect-watermark",
        help="report whether audio files carry the keyed watermark of synthesised speech",
        description="Look for the inaudible keyed watermark that `seqspeech synthesize` embeds. It survives "
                    "resampling, MP3, gain changes, moderate noise and cutting; clips of 1.5 s or more.",
    )  # fmt: skip
    p.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, mp3; m4a/mp4/webm via ffmpeg) or -")
    p.add_argument("--key", default=str(DEFAULT_KEY),
                   help="watermark key the audio was marked with (an int and its digits as a str are the same key)")
    p.set_defaults(func=_cmd_detect)


def _cmd_detect(args: argparse.Namespace) -> int:
    from .audio.io import load_audio
    from .audio.watermark import DETECT_RATE, MIN_RELIABLE_S, detect_watermark
    from .errors import AudioError, ConfigError

    if not args.key:
        raise ConfigError("--key must not be empty")
    width = max(len(name) for name in args.files)
    failures = 0
    for name in args.files:
        try:
            samples = load_audio(name, sr=DETECT_RATE)
        except AudioError as err:  # the message names the file
            print(f"seqspeech: error: {err}", file=sys.stderr, flush=True)
            failures += 1
            continue
        except OSError as err:  # e.g. no permission to read it
            print(f"seqspeech: error: {name}: cannot read ({err.strerror or err})", file=sys.stderr, flush=True)
            failures += 1
            continue
        result = detect_watermark(samples, DETECT_RATE, key=args.key)
        verdict = "present" if result.present else "absent"
        seconds = samples.size / DETECT_RATE
        note = ""
        if not samples.any():
            note = "  (silent: nothing to measure)"
        elif seconds < MIN_RELIABLE_S and not result.present:
            note = f"  ({seconds:.2f} s: too short to tell; {MIN_RELIABLE_S} s or more gives a reliable answer)"
        print(f"{name:<{width}}  {verdict:<7}  score={result.score:.2f}  (threshold {result.threshold:.2f}){note}",
              flush=True)  # fmt: skip
    return 1 if failures else 0
