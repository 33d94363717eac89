"""``seqspeech detect-watermark``: is the keyed watermark of synthesised speech in these files?

    seqspeech detect-watermark out.wav call.mp3
    out.wav  present  score=9.41  (threshold 3.72)
    call.mp3 absent   score=-0.37  (threshold 3.72)

One line per file on stdout; a file that cannot be read is reported on stderr (naming it) and the others are
still checked; the exit code is 0 when every file was read, 1 otherwise.
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
    from .audio.watermark import DETECT_RATE, detect_watermark
    from .errors import AudioError

    width = max(len(name) for name in args.files)
    failures = 0
    for name in args.files:
        try:
            samples = load_audio(name, sr=DETECT_RATE)
        except AudioError as err:  # the message names the file
            print(f"seqspeech: error: {err}", file=sys.stderr)
            failures += 1
            continue
        result = detect_watermark(samples, DETECT_RATE, key=args.key)
        verdict = "present" if result.present else "absent"
        print(f"{name:<{width}}  {verdict:<7}  score={result.score:.2f}  (threshold {result.threshold:.2f})",
              flush=True)  # fmt: skip
    return 1 if failures else 0
