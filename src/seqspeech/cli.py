"""`seqspeech` command line: transcribe, evaluate, train, align, plot-attention, corpus, synthesize,
detect-watermark."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .errors import AudioError, ConfigError, SeqSpeechError
from .fileio import check_output_dir, check_output_path, read_text_file, write_atomic
from .decoding.options import WHISPER_BEAM_SIZE, WHISPER_BEST_OF
from .decoding.options import temperature_ladder as _temperatures
from .formats import FORMATS, render


# flags that only some model families take: giving one to another family is an error, not silently ignored
WHISPER_ONLY = ("compute_type", "best_of", "patience", "language", "task", "temperature",
                "temperature_increment_on_fallback", "initial_prompt", "condition_on_previous_text",
                "without_timestamps", "vad", "short_window", "padding")
FLAG_FAMILIES = {
    **{flag: ("whisper",) for flag in WHISPER_ONLY},
    "length_penalty": ("whisper", "las", "aed"),
    **{flag: ("ctc", "transducer", "las", "aed") for flag in ("lm", "use_lm", "lm_weight")},
    "word_bonus": ("ctc", "transducer"),
    "ctc_weight": ("las", "aed"), "eos_threshold": ("las", "aed"), "coverage_weight": ("las", "aed"),
}
FAMILY_LABELS = {"whisper": "Whisper", "ctc": "CTC", "transducer": "transducer", "las": "LAS", "aed": "AED"}
NEGATIVE_FLAGS = {"use_lm": "--no-lm", "condition_on_previous_text": "--no-condition-on-previous-text"}


def _add_transcribe(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transcribe",
        help="speech to text (Whisper, or our CTC, transducer, AED and LAS models)",
        description="Transcribe audio files ('-' reads stdin). Defaults: Whisper decodes with beam 5 and falls back "
        "to sampling (best of 5) at temperatures 0.2 ... 1.0 when a window's output is too repetitive or unsure; "
        "our models use the decoding options stored with them (beam search, LM beside the model).",
    )
    p.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, mp3; m4a/mp4/webm via ffmpeg) or -")
    p.add_argument("--model", default="whisper-tiny.en", help="zoo name, local path or hub id")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--beam-size", type=int, default=None,
                   help=f"beams (1: greedy); default: {WHISPER_BEAM_SIZE} for Whisper, the model's own for ours")
    p.add_argument("--batch-size", type=int, default=None, help="windows decoded together (default: 4 for Whisper, "
                   "8 for our models)")
    p.add_argument("--format", default="txt", choices=FORMATS)
    p.add_argument(
        "--output-dir",
        default=None,
        type=Path,
        help="write <name>.<format> per input (jsonl: transcripts.jsonl) instead of stdout",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal and the work takes more than 2 s)",
    )
    p.add_argument("--word-timestamps", action="store_const", const=True, default=None,
                   help="each segment's words with start and end times (json, jsonl); Whisper and CTC models")
    w = p.add_argument_group("Whisper models (the default whisper-tiny.en, or any Whisper checkpoint)")
    w.add_argument("--compute-type", default=None,
                   choices=["float32", "int8", "int8_all", "float16", "bfloat16"],
                   help="CPU default int8 (int8 decoder, float32 encoder); float32: the references' exact transcripts; "
                        "int8_all: encoder too (faster, less accurate)")
    w.add_argument("--best-of", type=int, default=None,
                   help=f"samples per fallback temperature (default {WHISPER_BEST_OF})")
    w.add_argument("--patience", type=float, default=None, help="beam search patience (default 1)")
    w.add_argument("--length-penalty", type=float, default=None,
                   help="rank hypotheses by ((5 + length) / 6) ** alpha instead of the mean log-prob (also LAS/AED)")
    w.add_argument("--language", default=None, help="language code or name; default: detect (multilingual models)")
    w.add_argument("--task", default=None, choices=["transcribe", "translate"], help="default: transcribe")
    w.add_argument("--temperature", type=float, default=None, help="first temperature (default 0)")
    w.add_argument("--temperature-increment-on-fallback", type=float, default=None,
                   help="fallback ladder step (default 0.2); 0 disables fallback")
    w.add_argument("--initial-prompt", default=None)
    w.add_argument("--no-condition-on-previous-text", dest="condition_on_previous_text", action="store_const",
                   const=False, default=None)
    w.add_argument("--without-timestamps", action="store_const", const=True, default=None)
    w.add_argument("--vad", action=argparse.BooleanOptionalAction, default=None,
                   help="drop silence with Silero VAD before decoding (default: off)")
    w.add_argument("--short-window", type=float, default=None, metavar="SECONDS",
                   help="encode windows holding less than 30 s of audio over max(audio, SECONDS) instead of 30 s "
                        "(faster on short clips; 10 is a measured safe value for tiny.en; default: always 30 s)")
    w.add_argument("--padding", default=None, choices=["zeros", "audio"],
                   help="fill short windows with log-mel zeros (default, as openai-whisper and faster-whisper) or "
                        "with silence")
    ctc = p.add_argument_group("CTC and transducer models (e.g. --model ctc-conformer-synth-en, rnnt-synth-en)")
    ctc.add_argument("--lm", default=None, help="ARPA n-gram LM for beam search (default: lm.arpa beside the model)")
    ctc.add_argument("--no-lm", dest="use_lm", action="store_const", const=False, default=None,
                     help="beam search without the LM")
    ctc.add_argument("--lm-weight", type=float, default=None)
    ctc.add_argument("--word-bonus", type=float, default=None)
    att = p.add_argument_group("attention models (LAS, AED; e.g. --model aed-conformer-synth-en)")
    att.add_argument("--ctc-weight", type=float, default=None, help="joint CTC/attention weight (AED)")
    att.add_argument("--eos-threshold", type=float, default=None, help="allow the end token only above this")
    att.add_argument("--coverage-weight", type=float, default=None, help="bonus per attended frame")
    p.set_defaults(func=_cmd_transcribe)


def _check_flags(args: argparse.Namespace, family: str) -> None:
    """A flag meant for another model family is an error naming the flag and the model."""
    for dest, families in FLAG_FAMILIES.items():
        if getattr(args, dest) is not None and family not in families:
            flag = NEGATIVE_FLAGS.get(dest, "--" + dest.replace("_", "-"))
            takers = ", ".join(FAMILY_LABELS[f] for f in families)
            raise ConfigError(f"{flag} is for {takers} models, not {args.model} ({FAMILY_LABELS[family]})")


def _given(args: argparse.Namespace, *names: str) -> dict:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _cmd_transcribe(args: argparse.Namespace) -> int:
    from . import load_model

    family = _family(args.model)
    _check_flags(args, family)
    if args.output_dir is not None:
        check_output_dir(args.output_dir)
    if args.beam_size is not None and args.beam_size < 1:
        raise ConfigError(f"--beam-size must be >= 1, got {args.beam_size}")
    if family in ("ctc", "transducer", "las", "aed"):
        asr = load_model(args.model, device=args.device, lm=args.lm or True)
        names = ("beam_size", "use_lm", "lm_weight", "word_bonus", "batch_size") if family in ("ctc", "transducer") else (
            "beam_size", "use_lm", "lm_weight", "ctc_weight", "eos_threshold", "coverage_weight", "length_penalty",
            "batch_size")
        return _run_transcribe(args, asr, _given(args, *names, "word_timestamps"))
    asr = load_model(args.model, device=args.device, compute_type=args.compute_type)
    beam_size = WHISPER_BEAM_SIZE if args.beam_size is None else args.beam_size
    temperature = 0.0 if args.temperature is None else args.temperature
    increment = 0.2 if args.temperature_increment_on_fallback is None else args.temperature_increment_on_fallback
    options = dict(
        beam_size=beam_size if beam_size > 1 else None,
        best_of=WHISPER_BEST_OF if args.best_of is None else args.best_of,
        temperature=_temperatures(temperature, increment),
        task=args.task or "transcribe",
        **_given(args, "patience", "length_penalty", "language", "initial_prompt", "condition_on_previous_text",
                 "without_timestamps", "vad", "batch_size", "padding", "word_timestamps"),
    )
    if args.short_window is not None:
        options["short_window_s"] = args.short_window
    return _run_transcribe(args, asr, options)


def _family(model: str) -> str:
    from .zoo import MODELS, resolve

    if model in MODELS:
        return MODELS[model].family
    try:
        return resolve(model)[1]
    except SeqSpeechError:
        return "whisper"  # load_model reports the problem


def _run_transcribe(args: argparse.Namespace, asr, options: dict) -> int:
    from .asr.whisper_asr import open_audio

    failures = 0
    names, sources = [], []
    for f in args.files:  # check every input's header first: a bad one is reported, the others still transcribed
        try:
            sources.append(open_audio(f))
            names.append(f)
        except SeqSpeechError as e:
            _error(e)
            failures += 1
    results = asr.transcribe_batch(sources, progress=args.progress, errors="return", **options) if sources else []
    for i, result in enumerate(results):  # a file that broke while it was decoded (NaN samples, a corrupt block)
        if isinstance(result, AudioError):
            _error(result)
            results[i] = None
            failures += 1
    transcripts = [(n, t) for n, t in zip(names, results) if t is not None]
    output_names = _output_names(names, args.format)
    jsonl_lines = []
    for name, t in transcripts:
        text = render(args.format, name, t)
        if args.output_dir is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        elif args.format == "jsonl":
            jsonl_lines.append(text)
        else:
            write_atomic(args.output_dir / output_names[name], text)
    if jsonl_lines:
        write_atomic(args.output_dir / "transcripts.jsonl", "".join(jsonl_lines))
    return 1 if failures else 0


def _output_names(inputs: list[str], fmt: str) -> dict[str, str]:
    """File names for --output-dir: <stem>.<fmt>, or <name>.<fmt> when two inputs share a stem (talk.wav and
    talk.mp3), with a number added if even those clash (two folders' talk.wav), so no transcript overwrites another."""
    stems = ["stdin" if n == "-" else Path(n).stem for n in inputs]
    names = [Path(n).name if stems.count(stem) > 1 else stem for n, stem in zip(inputs, stems)]
    out: dict[str, str] = {}
    taken: set[str] = set()
    for n, name in zip(inputs, names):
        candidate, k = f"{name}.{fmt}", 1
        while candidate in taken:
            k += 1
            candidate = f"{name}-{k}.{fmt}"
        taken.add(candidate)
        out[n] = candidate
    return out


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score a model on a manifest (MODEL MANIFEST) or a JSONL of hypotheses (HYPOTHESES)",
        description="`seqspeech evaluate MODEL MANIFEST` decodes a JSONL manifest and reports CER/WER per decoding "
        "mode; `seqspeech evaluate HYPOTHESES.jsonl` scores transcripts already made.",
    )
    p.add_argument("inputs", nargs="+", help="MODEL MANIFEST, or HYPOTHESES (JSONL with path and text per line)")
    p.add_argument(
        "--references",
        type=Path,
        default=None,
        help="(HYPOTHESES) JSONL with the same key and the reference text; default: a 'reference' field per line",
    )
    p.add_argument("--key", default="path", help="(HYPOTHESES) field joining hypotheses and references")
    p.add_argument("--unit", default="word", choices=["word", "char"], help="(HYPOTHESES) WER or CER")
    p.add_argument("--modes", default="greedy,beam,beam_lm",
                   help="(MODEL) comma-separated decoding modes: greedy, beam, beam_lm (beam_lm needs an LM); "
                        "attention models also report alignment diagnostics of the first mode")
    p.add_argument("--beam-size", type=int, default=8)
    p.add_argument("--lm", default=None, help="(MODEL) ARPA LM (default: lm.arpa beside the model)")
    p.add_argument("--lm-weight", type=float, default=None)
    p.add_argument("--word-bonus", type=float, default=None, help="(CTC models)")
    p.add_argument("--ctc-weight", type=float, default=None, help="(attention models) joint CTC/attention weight")
    p.add_argument("--max-utterances", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--hypotheses-out", type=Path, default=None, help="(MODEL) write every hypothesis here (JSONL)")
    p.add_argument("--output", type=Path, default=None, help="also write the result JSON here")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    for path in (args.output, args.hypotheses_out):
        if path is not None:
            check_output_path(path)
    if len(args.inputs) == 1:
        from .metrics.evaluate import evaluate_jsonl

        result = evaluate_jsonl(Path(args.inputs[0]), args.references, key=args.key, unit=args.unit)
    elif len(args.inputs) == 2:
        from . import load_model
        from .tasks.evaluation import evaluate_manifest

        model, manifest = args.inputs
        family = _family(model)
        if family == "whisper":
            raise ConfigError(f"{model}: `evaluate MODEL MANIFEST` supports our trained models (CTC, LAS, AED); for "
                              "Whisper, run `transcribe --format jsonl` and score the JSONL")
        options = (("lm_weight", args.lm_weight), ("word_bonus", args.word_bonus), ("ctc_weight", args.ctc_weight))
        defaults = {k: v for k, v in options if v is not None}
        if "word_bonus" in defaults and family not in ("ctc", "transducer") or "ctc_weight" in defaults and family in (
                "ctc", "transducer"):
            raise ConfigError(f"{model}: --word-bonus is for CTC and transducer models, --ctc-weight for attention "
                              "models")
        modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
        asr = load_model(model, device=args.device, lm=args.lm or True, **defaults)
        if "beam_lm" in modes and asr.lm() is None:
            print(f"seqspeech: {model} has no LM: skipping mode beam_lm", file=sys.stderr)
            modes = tuple(m for m in modes if m != "beam_lm")
        result = evaluate_manifest(asr, manifest, modes=modes, beam_size=args.beam_size,
                                   max_utterances=args.max_utterances, hypotheses_out=args.hypotheses_out,
                                   progress=args.progress)
    else:
        raise ConfigError("evaluate takes MODEL MANIFEST or one HYPOTHESES file")
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        write_atomic(args.output, text + "\n")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a recipe (YAML)",
                       description="Train from RECIPE.yaml; launch under torchrun for multi-process DDP.")
    p.add_argument("recipe", type=Path)
    p.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<recipe folder>-<recipe name>)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in the run folder")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set train.lr=1e-3 (repeatable)")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from .tasks import train_recipe

    out = args.out or Path("runs") / f"{args.recipe.parent.name}-{args.recipe.stem}"
    summary = train_recipe(args.recipe, out, overrides=args.overrides, resume=args.resume)
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _add_align(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("align", help="CTC forced alignment: word timestamps for audio and its transcript")
    p.add_argument("audio", help="audio file")
    p.add_argument("text", nargs="?", default=None, help="transcript (default: the model's own transcript)")
    p.add_argument("--text-file", type=Path, default=None, help="read the transcript from this file")
    p.add_argument("--model", default="ctc-conformer-synth-en", help="a CTC model: zoo name or path")
    p.add_argument("--device", default=None)
    p.set_defaults(func=_cmd_align)


def _cmd_align(args: argparse.Namespace) -> int:
    from . import load_model

    if _family(args.model) != "ctc":
        raise ConfigError(f"{args.model}: alignment needs a CTC model")
    text = read_text_file(args.text_file, what="transcript file") if args.text_file else args.text
    asr = load_model(args.model, device=args.device, lm=False)
    spans = asr.word_timestamps(args.audio, text)
    for s in spans:
        print(json.dumps({"word": s.word, "start": round(s.start_s, 3), "end": round(s.end_s, 3),
                          "score": round(float(s.score), 4)}))
    return 0


def _add_plot_attention(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot-attention", help="draw an attention model's alignment of audio and its transcript",
                       description="Heatmap of the decoder's attention over encoder frames (PNG), with the argmax "
                       "path and alignment diagnostics (diagonality, focus rate, skips, repeats, stuck decoding).")
    p.add_argument("model", help="an attention model (LAS, AED): zoo name or path")
    p.add_argument("audio", help="audio file")
    p.add_argument("-o", "--output", type=Path, required=True, help="PNG file to write")
    p.add_argument("--text", default=None, help="align this transcript (default: the model's own, greedy)")
    p.add_argument("--device", default=None)
    p.set_defaults(func=_cmd_plot_attention)


def _cmd_plot_attention(args: argparse.Namespace) -> int:
    from . import load_model
    from .viz import plot_attention

    if _family(args.model) not in ("las", "aed"):
        raise ConfigError(f"{args.model}: plot-attention needs an attention model (LAS or AED)")
    check_output_path(args.output)
    asr = load_model(args.model, device=args.device, lm=False)
    options = {} if args.text is not None else {"beam_size": 1}
    alignment = asr.alignment(args.audio, args.text, **options)
    metrics = alignment.metrics
    plot_attention(alignment.weights, args.output, tokens=alignment.labels, frame_shift_s=alignment.frame_seconds,
                   title=f"{Path(args.audio).name}: {alignment.text[:60]}", metrics=metrics)
    summary = {k: v for k, v in metrics.to_dict().items() if k != "path"}
    print(json.dumps({"output": str(args.output), "text": alignment.text, **summary}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqspeech", description="Sequence-to-sequence speech toolkit")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_transcribe(sub)
    _add_evaluate(sub)
    _add_train(sub)
    _add_align(sub)
    _add_plot_attention(sub)
    from .cli_corpus import add_parser as add_corpus
    from .cli_export import add_parser as add_export
    from .cli_serve import add_parser as add_serve
    from .cli_stream import add_parser as add_stream
    from .cli_translate import add_parser as add_translate_text
    from .cli_tts import add_parser as add_synthesize
    from .cli_watermark import add_parser as add_detect_watermark

    add_corpus(sub)
    add_synthesize(sub)
    add_detect_watermark(sub)
    add_stream(sub)
    add_export(sub)
    add_serve(sub)
    add_translate_text(sub)
    return parser


def _one_line(message: object) -> str:
    return " ".join(str(message).split())


def _error(message: object) -> None:
    """The one shape of a CLI error: one line on stderr."""
    print(f"seqspeech: error: {_one_line(message)}", file=sys.stderr)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings reach a CLI user as one line each, without the source line of the code that warned."""
    print(f"seqspeech: warning: {_one_line(message)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Errors are one line on stderr (exit 2); a traceback only with SEQSPEECH_DEBUG=1."""
    import os
    import warnings

    args = build_parser().parse_args(argv)
    shown = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        return args.func(args)
    except (SeqSpeechError, OSError) as e:  # OSError: a path we could not read or write; the message names it
        _error(e)
        return 2
    except KeyboardInterrupt:
        print("seqspeech: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: still one line for the user, the traceback on request
        if os.environ.get("SEQSPEECH_DEBUG"):
            raise
        _error(f"unexpected {type(e).__name__}: {e} (this is a bug in seqspeech; SEQSPEECH_DEBUG=1 shows the "
               "traceback)")
        return 3
    finally:
        warnings.showwarning = shown


if __name__ == "__main__":
    sys.exit(main())
