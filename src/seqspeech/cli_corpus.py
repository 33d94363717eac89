"""``seqspeech corpus``: build synthetic speech corpora and turn distributed corpora into JSONL manifests.

    seqspeech corpus synth data/synth_en --language en --sentences 6000 --dev 200 --test 200 --seed 0
    seqspeech corpus prepare librispeech /data/LibriSpeech/dev-clean dev-clean.jsonl
    seqspeech corpus prepare fsdd ../shared/data/fsdd/recordings.tar.gz data/fsdd/test.jsonl --split test

``prepare`` fails with one line naming the path, and writes nothing, for a missing source, a file where a folder is
expected, an empty folder or one without the corpus's layout, a corpus with no audio found, and an output that
cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser"]

PREPARE_KINDS = ("librispeech", "ljspeech", "commonvoice", "kaldi", "fsdd")
SPLIT_KINDS = ("librispeech", "commonvoice", "fsdd")  # the readers that take split=


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``corpus`` (with ``synth`` and ``prepare``) to the top-level subcommands ``sub``."""
    p = sub.add_parser("corpus", help="build or prepare speech corpora (JSONL manifests)",
                       description="Build synthetic corpora or convert distributed corpora to JSONL manifests.")
    csub = p.add_subparsers(dest="corpus_command", required=True)

    s = csub.add_parser(
        "synth",
        help="synthesise a corpus with espeak-ng and flite",
        description="Generate sentences, speak them with many synthetic voices and write train/dev/test manifests "
                    "(plus test_voices: held-out voices, test_eval_voices: flite rms/awb). Re-running with the same "
                    "arguments resumes an interrupted build.",
    )  # fmt: skip
    s.add_argument("out_dir", type=Path, help="output folder (manifests, wavs/, corpus.json)")
    s.add_argument("--language", default="en", choices=["en", "es-en"])
    s.add_argument("--sentences", type=int, default=6000, help="training sentences (pairs for es-en)")
    s.add_argument("--dev", type=int, default=200, help="dev sentences")
    s.add_argument("--test", type=int, default=200, help="test sentences")
    s.add_argument("--per-sentence", type=int, default=1, help="training utterances per sentence (distinct voices)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--jobs", type=int, default=None, help="parallel synthesis workers (default: CPU count)")
    s.add_argument("--heldout-voices", nargs="+", default=None, metavar="VOICE",
                   help="espeak-ng voice+variant names kept for test_voices only (default: a fixed list of 8)")
    s.add_argument("--no-eval-voices", dest="eval_voices", action="store_false",
                   help="do not write test_eval_voices (flite rms/awb)")
    s.add_argument("--voice", default=None, metavar="VOICE",
                   help="one voice speaks every split at its default rate and pitch (a single-speaker TTS corpus), "
                        "e.g. flite:slt")
    s.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="progress bar on stderr")
    s.set_defaults(func=_cmd_synth)

    q = csub.add_parser("prepare", help="write a JSONL manifest for a corpus on disk",
                        description="Read a corpus as distributed and write its utterances as a JSONL manifest.")
    q.add_argument("kind", choices=PREPARE_KINDS)
    q.add_argument("src", type=Path, help="corpus folder (e.g. LibriSpeech/dev-clean, LJSpeech-1.1); fsdd: the wav "
                                          "folder, a folder holding recordings/ or recordings.tar.gz, or the archive")
    q.add_argument("out", type=Path, help="output manifest (.jsonl)")
    q.add_argument("--no-durations", dest="with_durations", action="store_false",
                   help="do not read audio headers for durations (faster; duration 0.0)")
    q.add_argument("--split", default=None,
                   help="librispeech: a split folder under SRC (dev-clean); commonvoice: the TSV's name (default "
                        "train); fsdd: test (takes 0-4) or train (takes 5-49), default all")
    q.add_argument("--extract-to", type=Path, default=None, metavar="DIR",
                   help="fsdd from recordings.tar.gz: extract into DIR/recordings/ (default: OUT's folder)")
    q.set_defaults(func=_cmd_prepare)


def _cmd_synth(args: argparse.Namespace) -> int:
    from .data.corpora.synth import build_synth_corpus
    from .data.manifest import read_manifest

    manifests = build_synth_corpus(
        args.out_dir, language=args.language, num_sentences=args.sentences, seed=args.seed,
        dev_sentences=args.dev, test_sentences=args.test, utterances_per_sentence=args.per_sentence,
        heldout_voices=args.heldout_voices, eval_only_voices=args.eval_voices, voice=args.voice, jobs=args.jobs,
        progress=args.progress,
    )  # fmt: skip
    for name, path in manifests.items():
        utts = read_manifest(path)
        hours = sum(u.duration for u in utts) / 3600
        print(f"{name}: {len(utts)} utterances, {hours:.2f} h -> {path}")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from .data.corpora import read_corpus
    from .data.manifest import write_manifest
    from .errors import ConfigError, DataError
    from .fileio import check_output_path

    options: dict = {"with_durations": args.with_durations}
    if args.split is not None:
        if args.kind not in SPLIT_KINDS:
            raise ConfigError(f"--split is not supported for {args.kind} (only for {', '.join(SPLIT_KINDS)})")
        options["split"] = args.split
    if args.kind == "fsdd":
        options["extract_to"] = args.extract_to if args.extract_to is not None else args.out.absolute().parent
    elif args.extract_to is not None:
        raise ConfigError(f"--extract-to is only for fsdd, not {args.kind}")
    check_output_path(args.out)  # before reading: a corpus can take a while
    utts = read_corpus(args.kind, args.src, **options)
    if not utts:
        raise DataError(f"{args.src}: no {args.kind} utterances with audio found; nothing written to {args.out}")
    path = write_manifest(args.out, utts)  # atomic: a failed write leaves no partial manifest (OutputError)
    print(f"{len(utts)} utterances -> {path}", file=sys.stderr)
    return 0
