"""`seqspeech translate`: Spanish speech to English speech; `seqspeech translate-text`: the text MT alone.

    seqspeech translate hola.wav -o hello.wav --text                   # cascade: ASR -> MT -> TTS; prints both texts
    seqspeech translate-text "dónde está la llave"                    # where is the key
    seqspeech translate-text "ellos visitarán a pablo" --wait-k 3     # the simultaneous (wait-3) policy
    seqspeech translate-text --file sentences.txt                      # one sentence per line

Prints one translation per line. Input is brought to the spoken form the recognisers write (numbers in words,
lower case, no punctuation) and so is the output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser"]

MODES = ("cascade",)  # the direct (Translatotron) model comes with its training


def add_parser(sub: argparse._SubParsersAction) -> None:
    from .st.cascade import DEFAULT_ASR, DEFAULT_MT, DEFAULT_VOICE

    t = sub.add_parser("translate", help="translate Spanish speech into English speech",
                       description="Speech-to-speech translation: the cascade recognises the Spanish "
                                   f"({DEFAULT_ASR}), translates the text ({DEFAULT_MT}) and speaks it "
                                   f"({DEFAULT_VOICE}).")
    t.add_argument("audio", help="the Spanish audio file (any format `transcribe` reads)")
    t.add_argument("-o", "--output", type=Path, default=None,
                   help="WAV file for the English speech (default: <audio name>.en.wav beside the input)")
    t.add_argument("--mode", default="cascade", choices=MODES, help="cascade (ASR -> MT -> TTS)")
    t.add_argument("--text", action="store_true", help="also print the recognised source and its translation")
    t.add_argument("--asr", default=DEFAULT_ASR, help=f"source-language recogniser (default {DEFAULT_ASR})")
    t.add_argument("--mt", default=DEFAULT_MT, help=f"MT model (default {DEFAULT_MT})")
    t.add_argument("--voice", default=DEFAULT_VOICE, help=f"target-language voice (default {DEFAULT_VOICE})")
    t.add_argument("--beam-size", type=int, default=None, help="MT beam size (default: the model's)")
    t.add_argument("--device", default=None)
    t.set_defaults(func=_cmd_translate)

    p = sub.add_parser("translate-text", help="translate text (Spanish to English)",
                       description="Translate text with a trained MT model: the whole sentence (beam search), or "
                                   "under a wait-k policy as a simultaneous interpreter would.")
    p.add_argument("text", nargs="*", help="the text to translate (several arguments are one sentence)")
    p.add_argument("--file", type=Path, default=None, help="translate each non-empty line of this UTF-8 file")
    p.add_argument("--model", default=DEFAULT_MT, help=f"MT model: zoo name or folder (default {DEFAULT_MT})")
    p.add_argument("--beam-size", type=int, default=None, help="beam size (default: the model's, 5)")
    p.add_argument("--wait-k", type=int, default=None, metavar="K",
                   help="simultaneous policy: write each target token after reading K more source tokens")
    p.add_argument("--device", default=None)
    p.set_defaults(func=_cmd_translate_text)


def _cmd_translate(args: argparse.Namespace) -> int:
    from .audio.io import write_wav
    from .errors import AudioError, ConfigError
    from .fileio import check_output_path
    from .st.cascade import Cascade

    if args.beam_size is not None and args.beam_size < 1:
        raise ConfigError(f"--beam-size must be >= 1, got {args.beam_size}")
    src = Path(args.audio)
    if args.audio != "-" and not src.exists():  # before the three models load
        raise AudioError(f"{args.audio}: audio file not found")
    out = args.output or src.with_name(src.stem + ".en.wav")
    if out.suffix.lower() != ".wav":
        raise ConfigError(f"{out}: the output is written as WAV; give a .wav file name")
    check_output_path(out)  # before the models load
    cascade = Cascade.load(args.asr, args.mt, args.voice, device=args.device)
    result = cascade.translate(args.audio, beam_size=args.beam_size)
    write_wav(out, result.audio, result.sample_rate)
    if args.text:
        print(f"source: {result.source_text}")
        print(f"translation: {result.text}")
    print(f"{out} ({len(result.audio) / result.sample_rate:.2f} s)", file=sys.stderr)
    return 0


def _cmd_translate_text(args: argparse.Namespace) -> int:
    from . import load_mt
    from .errors import ConfigError
    from .fileio import read_text_file

    if args.file is not None and args.text:
        raise ConfigError("give the text as arguments or with --file, not both")
    if args.file is not None:
        lines = [line.strip() for line in read_text_file(args.file, what="text file").splitlines() if line.strip()]
        if not lines:
            raise ConfigError(f"{args.file}: no text to translate (the file has no non-empty line)")
    elif args.text:
        lines = [" ".join(args.text)]
    else:
        raise ConfigError("nothing to translate: give the text as arguments or --file FILE")
    if args.beam_size is not None and args.beam_size < 1:
        raise ConfigError(f"--beam-size must be >= 1, got {args.beam_size}")
    if args.wait_k is not None and args.wait_k < 1:
        raise ConfigError(f"--wait-k must be >= 1, got {args.wait_k}")
    mt = load_mt(args.model, device=args.device)
    for line in mt.translate(lines, beam_size=1 if args.wait_k else args.beam_size, wait_k=args.wait_k):
        print(line)
    sys.stdout.flush()
    return 0
