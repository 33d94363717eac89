"""`seqspeech` command line: transcribe, evaluate, train, align, plot-attention, corpus, synthesize,
detect-watermark."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from .errors import AudioError, ConfigError, SeqSpeechError
from .fileio import write_atomic
from .formats import FORMATS, render


def _temperatures(start: float, increment: float | None) -> tuple[float, ...]:
    if not increment:
        return (start,)
    temps, t = [], start
    while t <= 1.0 + 1e-6:
        temps.append(round(t, 4))
        t += increment
    return tuple(temps) or (start,)


def _add_transcribe(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transcribe",
        help="speech to text with a Whisper-style model",
        description="Transcribe audio files ('-' reads stdin).",
    )
    p.add_argument("files", nargs="+", help="audio files (wav, flac, ogg, mp3; m4a/mp4/webm via ffmpeg) or -")
    p.add_argument("--model", default="whisper-tiny.en", help="zoo name, local path or hub id")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--compute-type", default=None,
                   choices=["float32", "int8", "int8_all", "float16", "bfloat16"],
                   help="CPU default int8 (int8 decoder, float32 encoder); float32: the references' exact transcripts; "
                        "int8_all: encoder too (faster, less accurate)")
    p.add_argument("--beam-size", type=int, default=5)
    p.add_argument("--best-of", type=int, default=5)
    p.add_argument("--patience", type=float, default=None)
    p.add_argument("--length-penalty", type=float, default=None)
    p.add_argument("--language", default=None, help="language code; default: detect (multilingual models)")
    p.add_argument("--task", default="transcribe", choices=["transcribe", "translate"])
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument(
        "--temperature-increment-on-fallback",
        type=float,
        default=0.2,
        help="fallback ladder step; 0 disables fallback",
    )
    p.add_argument("--initial-prompt", default=None)
    p.add_argument("--no-condition-on-previous-text", dest="condition_on_previous_text", action="store_false")
    p.add_argument("--without-timestamps", action="store_true")
    p.add_argument(
        "--vad",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="drop silence with Silero VAD before decoding",
    )
    p.add_argument("--batch-size", type=int, default=4, help="windows decoded together")
    p.add_argument("--short-window", type=float, default=None, metavar="SECONDS",
                   help="encode windows holding less than 30 s of audio over max(audio, SECONDS) instead of 30 s "
                        "(faster on short clips; 10 is a measured safe value for tiny.en; default: always 30 s)")
    p.add_argument("--padding", default="zeros", choices=["zeros", "audio"],
                   help="fill short windows with log-mel zeros (openai-whisper, faster-whisper) or with silence")
    ctc = p.add_argument_group("CTC models (e.g. --model ctc-conformer-synth-en)")
    ctc.add_argument("--lm", default=None, help="ARPA n-gram LM for beam search (default: lm.arpa beside the model)")
    ctc.add_argument("--no-lm", dest="use_lm", action="store_false", help="beam search without the LM")
    ctc.add_argument("--lm-weight", type=float, default=None)
    ctc.add_argument("--word-bonus", type=float, default=None)
    att = p.add_argument_group("attention models (LAS, AED; e.g. --model aed-conformer-synth-en)")
    att.add_argument("--ctc-weight", type=float, default=None, help="joint CTC/attention weight (AED)")
    att.add_argument("--eos-threshold", type=float, default=None, help="allow the end token only above this")
    att.add_argument("--coverage-weight", type=float, default=None, help="bonus per attended frame")
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
        help="progress bar on stderr (default: when stderr is a terminal and audio is long)",
    )
    p.set_defaults(func=_cmd_transcribe)


def _cmd_transcribe(args: argparse.Namespace) -> int:
    from . import load_model

    if _family(args.model) == "ctc":
        asr = load_model(args.model, device=args.device, lm=args.lm or True)
        options = dict(beam_size=args.beam_size, use_lm=args.use_lm, lm_weight=args.lm_weight,
                       word_bonus=args.word_bonus)
        return _run_transcribe(args, asr, {k: v for k, v in options.items() if v is not None})
    if _family(args.model) in ("las", "aed"):
        asr = load_model(args.model, device=args.device, lm=args.lm or True)
        options = dict(beam_size=args.beam_size, use_lm=args.use_lm, lm_weight=args.lm_weight,
                       ctc_weight=args.ctc_weight, eos_threshold=args.eos_threshold,
                       coverage_weight=args.coverage_weight, length_penalty=args.length_penalty)
        return _run_transcribe(args, asr, {k: v for k, v in options.items() if v is not None})
    asr = load_model(args.model, device=args.device, compute_type=args.compute_type)
    options = dict(
        beam_size=args.beam_size if args.beam_size > 1 else None,
        best_of=args.best_of,
        patience=args.patience,
        length_penalty=args.length_penalty,
        language=args.language,
        task=args.task,
        temperature=_temperatures(args.temperature, args.temperature_increment_on_fallback),
        initial_prompt=args.initial_prompt,
        condition_on_previous_text=args.condition_on_previous_text,
        without_timestamps=args.without_timestamps,
        vad=args.vad,
        batch_size=args.batch_size,
        short_window_s=args.short_window,
        padding=args.padding,
    )
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
    from .asr.transcribe import AudioStream
    from .asr.whisper_asr import open_audio

    failures = 0
    names, sources = [], []
    for f in args.files:  # check every input first: a bad one is reported, the others are still transcribed
        try:
            sources.append(open_audio(f))
            names.append(f)
        except SeqSpeechError as e:
            print(f"seqspeech: error: {e}", file=sys.stderr)
            failures += 1
    try:
        results = asr.transcribe_batch(sources, progress=args.progress, **options) if sources else []
    except AudioError as e:  # a file broke mid-stream: go one by one so that the others still come out
        print(f"seqspeech: error: {e}; retrying the inputs one at a time", file=sys.stderr)
        results = []
        for name, source in zip(names, sources):
            try:
                results.append(asr.transcribe(name if isinstance(source, AudioStream) else source, **options))
            except AudioError as e1:
                print(f"seqspeech: error: {e1}", file=sys.stderr)
                results.append(None)
                failures += 1
    transcripts = [(n, t) for n, t in zip(names, results) if t is not None]
    jsonl_lines = []
    for name, t in transcripts:
        text = render(args.format, name, t)
        if args.output_dir is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        elif args.format == "jsonl":
            jsonl_lines.append(text)
        else:
            stem = "stdin" if name == "-" else Path(name).stem
            write_atomic(args.output_dir / f"{stem}.{args.format}", text)
    if jsonl_lines:
        write_atomic(args.output_dir / "transcripts.jsonl", "".join(jsonl_lines))
    return 1 if failures else 0


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
        if "word_bonus" in defaults and family != "ctc" or "ctc_weight" in defaults and family == "ctc":
            raise ConfigError(f"{model}: --word-bonus is for CTC models, --ctc-weight for attention models")
        modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
        asr = load_model(model, device=args.device, lm=args.lm or True, **defaults)
        if "beam_lm" in modes and asr.lm() is None:
            print(f"seqspeech: {model} has no LM: skipping mode beam_lm", file=sys.stderr)
            modes = tuple(m for m in modes if m != "beam_lm")
        progress = sys.stderr.isatty() if args.progress is None else args.progress
        result = evaluate_manifest(asr, manifest, modes=modes, beam_size=args.beam_size,
                                   max_utterances=args.max_utterances, hypotheses_out=args.hypotheses_out,
                                   progress=progress)
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
    text = args.text_file.read_text(encoding="utf-8") if args.text_file else args.text
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
    from .cli_tts import add_parser as add_synthesize
    from .cli_watermark import add_parser as add_detect_watermark

    add_corpus(sub)
    add_synthesize(sub)
    add_detect_watermark(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SeqSpeechError as e:
        print(f"seqspeech: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
