"""Regenerate results/asr_rnnt_synth.json and the README table for the streaming RNN-T (synth_en recipe).

    python results/asr_rnnt_synth.py --run runs/synth_en-asr_rnnt_ctc [--max-utterances N] [--ship models/rnnt-synth-en]
    python results/asr_rnnt_synth.py --report-only

What it measures (one process, nothing else running):

* **accuracy**: CER/WER of the run's final model on the recipe's held-out sets, per chunk size (160 / 320 / 640 ms
  and full context) and decoding mode (greedy, beam search, beam + 3-gram LM; and the same encoder's chunked CTC
  head), next to the shipped CTC model trained on the same corpus for 40 minutes (results/asr_ctc_synth.json)
  and the RNN-T trained from scratch for those 40 minutes (results/asr_rnnt_synth_scratch.json, this script's
  output for runs/synth_en-asr_rnnt); the LM weight and word bonus are tuned on dev first;
* **latency**, measured with real-time pacing (audio fed at wall-clock speed, 320 ms chunks): held-out sentences
  joined by 1.5 s of silence make one stream; each word's end (forced alignment by the shipped CTC model) -> the
  first event showing it; each utterance's end of speech -> the first event with its final text, and -> its
  endpointed ``final`` event;
* **throughput**: real-time factor of 1 and 16 concurrent streams batched through one engine (no pacing);
* the RNN-T loss benchmark (bench/rnnt_loss.py) and the Whisper streaming benchmark (bench/asr_whisper_streaming.py)
  are read from their JSON files.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DATA_CARD, LIMITATIONS, ROOT, SET_TITLES, relative, ship, training_summary, update_readme,
)

OUT = ROOT / "results" / "asr_rnnt_synth.json"
CTC_RESULTS = ROOT / "results" / "asr_ctc_synth.json"
LOSS_BENCH = ROOT / "bench" / "results" / "rnnt_loss.json"
WHISPER_BENCH = ROOT / "bench" / "results" / "asr_whisper_streaming.json"
SCRATCH = ROOT / "results" / "asr_rnnt_synth_scratch.json"  # the same model from scratch, 40 minutes
CHUNKS = {"160 ms": 4, "320 ms": 8, "640 ms": 16, "full context": 0}
MAIN_CHUNK = "320 ms"
MODES = ("greedy", "beam", "beam_lm")
CTC_MODES = ("ctc_greedy", "ctc_beam_lm")
LM_WEIGHTS = (0.1, 0.2, 0.3)
WORD_BONUSES = (0.5, 1.0, 1.5)
GAP_S = 1.5  # silence between the utterances of the latency stream
LATENCY_UTTERANCES = 16
STREAMS = 16


def tune(asr, manifest: str, beam_size: int, limit: int) -> dict:
    """LM weight and word bonus by dev WER (the model's beam search + LM, one encoder pass)."""
    from seqspeech.data.dataset import load_utterance_audio
    from seqspeech.data.manifest import read_manifest
    from seqspeech.metrics.wer import error_rate

    utts = read_manifest(manifest)[:limit]
    grid = [(w, b) for w in LM_WEIGHTS for b in WORD_BONUSES]
    hyps: dict = {g: [] for g in grid}
    for i in range(0, len(utts), 16):
        chunk = utts[i : i + 16]
        enc, lens = asr.encode([load_utterance_audio(u) for u in chunk])
        for w, b in grid:
            tokens = asr.decode(enc, lens, method=asr.method, beam_size=beam_size, lm_weight=w, word_bonus=b)
            hyps[(w, b)].extend(asr.tokenizer.decode(t) for t in tokens)
    refs = [u.normalized_text for u in utts]
    scores = {g: error_rate(refs, hyps[g], unit="word", normalizer=None).rate for g in grid}
    best = min(grid, key=lambda g: (scores[g], g))
    print("dev WER by (lm_weight, word_bonus): " + ", ".join(f"{g}: {scores[g] * 100:.2f}" for g in grid), flush=True)
    return {"method": asr.method, "lm_weight": best[0], "word_bonus": best[1], "dev_wer": round(scores[best] * 100, 2),
            "dev_utterances": len(utts), "grid": {f"{w},{b}": round(v * 100, 2) for (w, b), v in scores.items()}}


def accuracy(asr, recipe: dict, beam_size: int, max_utterances: int | None, sweep_utterances: int) -> dict:
    """CER/WER per chunk size, set and mode: every set and mode at 320 ms; the other chunks on fewer utterances."""
    from seqspeech.tasks.evaluation import evaluate_manifest

    out: dict = {}
    for label, chunk in CHUNKS.items():
        asr.chunk = chunk
        main = label == MAIN_CHUNK
        out[label] = {}
        for name, manifest in recipe.get("eval", {}).items():
            if not main and name == "test_eval_voices":
                continue
            modes = MODES + CTC_MODES if main else ("greedy", "beam_lm")
            r = evaluate_manifest(asr, manifest, modes=modes, beam_size=beam_size,
                                  max_utterances=max_utterances if main else sweep_utterances)
            out[label][name] = r
            print(f"{label:>12}  {name:<18} " + "  ".join(
                f"{m}: CER {r[m]['cer']:.2f} WER {r[m]['wer']:.2f} RTF {r[m]['rtf']:.3f}" for m in modes), flush=True)
    asr.chunk = CHUNKS[MAIN_CHUNK]
    return out


# -- latency and throughput ------------------------------------------------------------------------------------------


def speech_bounds(wave: np.ndarray, frame: int = 160, floor_db: float = -45.0) -> tuple[int, int]:
    """First and last sample of speech: 10 ms frames within ``floor_db`` of the loudest frame."""
    n = max(len(wave) // frame, 1)
    energy = np.array([np.sqrt(np.mean(wave[i * frame : (i + 1) * frame] ** 2) + 1e-12) for i in range(n)])
    loud = np.nonzero(20 * np.log10(energy / energy.max()) > floor_db)[0]
    return int(loud[0] * frame), int((loud[-1] + 1) * frame)


def latency_stream(manifest: str, count: int) -> tuple[np.ndarray, list[dict]]:
    """Held-out utterances joined by silence, with each utterance's speech span and reference words' ends (forced
    alignment of the reference by the shipped CTC model), in stream seconds."""
    import seqspeech
    from seqspeech.data.dataset import load_utterance_audio
    from seqspeech.data.manifest import read_manifest

    aligner = seqspeech.load_model("ctc-conformer-synth-en", lm=False)
    pieces, utterances, pos = [np.zeros(int(0.5 * 16000), np.float32)], [], int(0.5 * 16000)
    for utt in read_manifest(manifest)[:count]:
        wave = load_utterance_audio(utt)
        start, end = speech_bounds(wave)
        words = aligner.word_timestamps(wave, utt.normalized_text)
        utterances.append({"text": utt.normalized_text, "start": (pos + start) / 16000, "end": (pos + end) / 16000,
                           "word_ends": [pos / 16000 + w.end_s for w in words]})
        pieces += [wave, np.zeros(int(GAP_S * 16000), np.float32)]
        pos += len(wave) + int(GAP_S * 16000)
    return np.concatenate(pieces), utterances


def paced_events(asr, audio: np.ndarray, chunk_ms: float) -> list:
    """Feed ``audio`` at wall-clock speed in ``chunk_ms`` pieces; every event (``wall`` = seconds since start)."""
    stream = asr.stream(chunk_ms)
    step = int(chunk_ms * 16)
    t0 = time.monotonic()
    events = []
    for start in range(0, len(audio), step):
        delay = t0 + (start + step) / 16000 - time.monotonic()  # the piece has been "spoken" only at its end
        if delay > 0:
            time.sleep(delay)
        events += stream.accept_audio(audio[start : start + step])
    events += stream.finish()
    return events


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    a = np.asarray(values)
    return {"n": len(values), "mean": round(float(a.mean()), 3), "p50": round(float(np.percentile(a, 50)), 3),
            "p95": round(float(np.percentile(a, 95)), 3)}


def latency(asr, manifest: str, chunk_ms: float, count: int) -> dict:
    audio, utterances = latency_stream(manifest, count)
    t0 = time.monotonic()
    events = paced_events(asr, audio, chunk_ms)
    wall = time.monotonic() - t0
    finals = [e for e in events if e.type == "final"]
    word_lat, text_lat, final_lat, first_lat = [], [], [], []
    for k, utt in enumerate(utterances):
        # the utterance's events: those of the final whose span overlaps it most (endpointing decides the split)
        match = [f for f in finals if f.start < utt["end"] + 0.5 and f.end > utt["start"] - 0.5]
        if not match:
            continue
        final = match[-1]
        ev = [e for e in events if e.utterance == final.utterance]
        words = final.text.split()
        first = next((e for e in ev if e.text), None)
        if first is not None:
            first_lat.append(first.wall - utt["start"])
        text_ready = next((e for e in ev if e.text == final.text), final)
        text_lat.append(text_ready.wall - utt["end"])
        final_lat.append(final.wall - utt["end"])
        for i, end in enumerate(utt["word_ends"][: len(words)]):
            shown = next((e for e in ev if e.text.split()[: i + 1] == words[: i + 1]), None)
            if shown is not None:
                word_lat.append(shown.wall - end)
    return {
        "chunk_ms": chunk_ms, "utterances": len(utterances), "finals": len(finals),
        "audio_seconds": round(len(audio) / 16000, 1), "wall_seconds": round(wall, 1),
        "word_to_partial_s": percentiles(word_lat),
        "speech_start_to_first_partial_s": percentiles(first_lat),
        "speech_end_to_final_text_s": percentiles(text_lat),
        "speech_end_to_endpointed_final_s": percentiles(final_lat),
        "endpoint_rule2_silence_s": 0.8,
    }


def throughput(asr, manifest: str, chunk_ms: float, streams: int, seconds: float) -> dict:
    """Real-time factor of ``streams`` concurrent streams through one engine (unpaced): wall time / audio time."""
    from seqspeech.asr.streaming import decode_streams
    from seqspeech.data.dataset import load_utterance_audio
    from seqspeech.data.manifest import read_manifest

    utts = read_manifest(manifest)
    audio = np.concatenate([load_utterance_audio(u) for u in utts[: int(seconds) // 2 + 4]])[: int(seconds * 16000)]
    out = {}
    for n in sorted({1, streams}):
        group = [asr.stream(chunk_ms) for _ in range(n)]
        step = int(chunk_ms * 16)
        offsets = [(k * 7919) % len(audio) for k in range(n)]  # each stream a different part of the audio
        waves = [np.roll(audio, -o) for o in offsets]
        t0 = time.perf_counter()
        for start in range(0, len(audio), step):
            for s, w in zip(group, waves):
                s.feed(w[start : start + step])
            decode_streams(group)
        for s in group:
            s.finish()
        wall = time.perf_counter() - t0
        out[f"{n}_streams"] = {"audio_seconds_per_stream": round(len(audio) / 16000, 1), "wall_seconds": round(wall, 2),
                               "rtf": round(wall / (len(audio) / 16000), 3)}
        print(f"throughput {n} streams: RTF {out[f'{n}_streams']['rtf']}", flush=True)
    return out


def evaluate(run: Path, args: argparse.Namespace) -> dict:
    import yaml

    from seqspeech.asr.transducer_asr import TransducerASR

    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    asr = TransducerASR.from_path(run / "model.safetensors", lm=run / "lm.arpa", name="rnnt-synth-en")
    asr.method = args.method
    results: dict = {"run": relative(run), "model": "model.safetensors (final, averaged)",
                     "recipe_file": args.recipe, "init": recipe.get("init")}
    results["decode"] = tune(asr, recipe["data"]["dev"], args.beam_size, args.dev_utterances)
    asr.lm_weight, asr.word_bonus = results["decode"]["lm_weight"], results["decode"]["word_bonus"]
    results["accuracy"] = accuracy(asr, recipe, args.beam_size, args.max_utterances, args.sweep_utterances)
    if not args.skip_latency:
        results["latency"] = latency(asr, recipe["eval"]["test"], CHUNKS[MAIN_CHUNK] * 40.0, args.latency_utterances)
        print("latency:", json.dumps(results["latency"]), flush=True)
        results["throughput"] = throughput(asr, recipe["eval"]["test"], CHUNKS[MAIN_CHUNK] * 40.0, STREAMS,
                                           args.throughput_seconds)
    results["training"] = training_summary(run)
    return results


# -- report ----------------------------------------------------------------------------------------------------------


def ctc_reference() -> dict:
    """The shipped CTC model's final numbers per set (same corpus, same 40 minutes, full context)."""
    if not CTC_RESULTS.exists():
        return {}
    return json.loads(CTC_RESULTS.read_text())["snapshots"][-1]["sets"]


def targets(results: dict) -> dict:
    """The issue's targets, each with the measured value and whether it is met."""
    out: dict = {}
    ctc = ctc_reference()
    main = results.get("accuracy", {}).get(MAIN_CHUNK, {})
    for name in ("test", "test_voices"):
        if name in main and name in ctc:
            ours, theirs = main[name]["beam_lm"]["cer"], ctc[name]["beam_lm"]["cer"]
            out[f"cer_320ms_vs_ctc_{name}"] = {"rnnt": ours, "ctc": theirs, "ratio": round(ours / theirs, 2),
                                              "target": "<= 1.3", "met": ours / theirs <= 1.3}
    lat = results.get("latency")
    if lat:
        p95 = lat["speech_end_to_final_text_s"].get("p95")
        out["final_text_p95_s"] = {"value": p95, "target": f"<= chunk + 0.1 = {lat['chunk_ms'] / 1000 + 0.1:.2f} s",
                                   "met": p95 is not None and p95 <= lat["chunk_ms"] / 1000 + 0.1}
    thr = results.get("throughput", {}).get(f"{STREAMS}_streams")
    if thr:
        out["streams_16_rtf"] = {"value": thr["rtf"], "target": "< 1 (keeps up with real time)", "met": thr["rtf"] < 1}
    if LOSS_BENCH.exists():
        bench = json.loads(LOSS_BENCH.read_text())
        ratio = (bench.get("ratio") or {}).get("peak_rss_delta") or (bench.get("ratio") or {}).get("kept_bytes")
        out["pruned_loss_memory_ratio"] = {"value": ratio, "target": ">= 3", "met": bool(ratio and ratio >= 3)}
    return out


def table(results: dict) -> str:
    ctc = ctc_reference()
    lines = ["| chunk | evaluation set | CER greedy | CER beam | CER beam+LM | WER beam+LM | chunked CTC head CER "
             "greedy / beam+LM | CTC model (full context) CER beam+LM |", "|---|---|---|---|---|---|---|---|"]
    for label, sets in results.get("accuracy", {}).items():
        for name, r in sets.items():
            cer = [f"{r[m]['cer']:.2f} %" if m in r else "–" for m in MODES]
            head = " / ".join(f"{r[m]['cer']:.2f} %" for m in CTC_MODES if m in r) or "–"
            ref = f"{ctc[name]['beam_lm']['cer']:.2f} %" if name in ctc else "–"
            wer = f"{r['beam_lm']['wer']:.2f} %" if "beam_lm" in r else "–"
            lines.append(f"| {label} | {SET_TITLES.get(name, name)} ({r['utterances']} utt) | " + " | ".join(cer)
                         + f" | {wer} | {head} | {ref} |")
    d = results.get("decode") or {}
    method = "Modified beam search (one label a frame)" if d.get("method", "modified_beam") == "modified_beam" else \
        "Time-synchronous beam search (up to 3 labels a frame)"
    lines += ["", f"{method}, beam 4; beam+LM: 3-gram word LM, weight {d.get('lm_weight')}, word bonus "
              f"{d.get('word_bonus')} (tuned on {d.get('dev_utterances')} dev utterances). Chunks other than "
              f"{MAIN_CHUNK} on the first utterances of each set only."]
    lat = results.get("latency")
    if lat:
        def fmt(key: str) -> str:
            p = lat[key]
            return f"p50 {p.get('p50')} s, p95 {p.get('p95')} s" if p.get("n") else "none"

        lines += ["", f"Latency, {lat['chunk_ms']:g} ms chunks, audio paced at real time ({lat['utterances']} held-out "
                  f"sentences joined by {GAP_S} s of silence, {lat['audio_seconds']} s): word end -> first partial "
                  f"showing it: {fmt('word_to_partial_s')}; end of speech -> final text: "
                  f"{fmt('speech_end_to_final_text_s')}; end of speech -> endpointed final event (0.8 s of "
                  f"trailing silence): {fmt('speech_end_to_endpointed_final_s')}."]
    thr = results.get("throughput")
    if thr:
        search = d.get("method", "modified_beam").replace("_", " ")
        lines += ["", f"Throughput (2 CPU cores, 320 ms chunks, {search} + LM): " + "; ".join(
            f"{k.replace('_', ' ')}: RTF {v['rtf']}" for k, v in thr.items()) + "."]
    if LOSS_BENCH.exists():
        lines += ["", "RNN-T loss, B=16, T=250, U=60, V=500 (bench/rnnt_loss.py): " + loss_line()]
    if SCRATCH.exists() and results.get("init"):
        lines += ["", scratch_line(results)]
    if WHISPER_BENCH.exists():
        lines += ["", "Whisper streaming (bench/asr_whisper_streaming.py): " + whisper_line()]
    t = targets(results)
    if t:
        lines += ["", "Targets: " + "; ".join(f"{k}: {v.get('value', v.get('ratio'))} ({v['target']}) "
                                             f"{'met' if v['met'] else 'MISSED'}" for k, v in t.items()) + "."]
    tr = results.get("training") or {}
    if tr:
        lines += ["", f"Training: {tr.get('utterances_per_second')} utterances/s on 2 CPU cores, peak memory "
                  f"{tr.get('peak_rss_mb')} MB, {tr.get('steps')} steps in {tr.get('train_seconds')} s, "
                  f"{tr.get('parameters')} parameters."]
    return "\n".join(lines)


def scratch_line(results: dict) -> str:
    """The same transducer trained from scratch for the CTC model's 40 minutes, at the main chunk size."""
    base = json.loads(SCRATCH.read_text())
    main = base.get("accuracy", {}).get(MAIN_CHUNK, {})
    cers = "; ".join(f"{SET_TITLES.get(n, n)} {r['beam_lm']['cer']:.2f} % (chunked CTC head "
                     f"{r['ctc_beam_lm']['cer']:.2f} %)" for n, r in main.items() if "ctc_beam_lm" in r)
    tr = base.get("training") or {}
    init = (results.get("init") or {}).get("source")
    how = f"this model starts its encoder and CTC head from {init}; " if init else ""
    return (f"From scratch ({how}{base.get('recipe_file', 'recipes/synth_en/asr_rnnt_streaming.yaml')}, "
            f"{tr.get('steps')} steps in {tr.get('train_seconds')} s, {base.get('run')}), {MAIN_CHUNK} beam+LM CER: "
            f"{cers}.")


def loss_line() -> str:
    bench = json.loads(LOSS_BENCH.read_text())
    return json.dumps({k: bench[k] for k in bench if k in ("full", "pruned", "ratio")}, separators=(", ", ": "))


def whisper_line() -> str:
    """Each system's WER and latency from the Whisper streaming benchmark, and whether its target is met."""
    bench = json.loads(WHISPER_BENCH.read_text())
    parts = []
    for name, r in bench["systems"].items():
        lat = (r.get("latency") or {}).get("with_compute")
        parts.append(f"{name} WER {r['wer'] * 100:.1f} %" + (f", mean latency {lat['mean_s']:.2f} s" if lat else "")
                     + f", RTF {r['rtf']:.2f}")
    target = bench.get("target") or {}
    meta = bench.get("meta") or {}
    return (f"{meta.get('audio_s', 0):.0f} s of the long-form file, {meta.get('chunk_ms', 0):g} ms chunks, "
            f"{meta.get('threads')} thread{'' if meta.get('threads') == 1 else 's'}: " + "; ".join(parts) + f". Target ({target.get('goal')}): "
            + ("met" if target.get("met") else "MISSED") + ".")


def ship_rnnt(run: Path, results: dict, dest: Path) -> None:
    main = results["accuracy"][MAIN_CHUNK]
    decode = {"method": results["decode"].get("method", "modified_beam"), "beam_size": 4, "chunk": CHUNKS[MAIN_CHUNK],
              "lm_order": 3,
              **{k: results["decode"][k] for k in ("lm_weight", "word_bonus")}}
    card = {
        "architecture": "RNN-T: chunked causal Conformer encoder (8 x 144, chunk attention with 2.56 s left context, "
                        "causal depthwise convolutions, dynamic chunk training 160/320/640 ms/full), LSTM predictor, "
                        "joiner 256, auxiliary CTC head; pruned RNN-T loss (k2 style)",
        "parameters": (results.get("training") or {}).get("parameters"),
        "tokenizer": "characters (blank at 0); lower-case spoken-form output",
        "recipe": results.get("recipe_file", "recipes/synth_en/asr_rnnt_streaming.yaml"),
        "initialisation": (f"encoder and CTC head from {results['init']['source']} (40 min of CTC training), "
                           "predictor and joiner fresh" if results.get("init") else "from scratch"),
        "data": DATA_CARD,
        "training": results.get("training"),
        "metrics": {name: {m: r[m] for m in MODES + CTC_MODES if m in r} | {"utterances": r["utterances"]}
                    for name, r in main.items()},
        "chunk_sweep": {label: {name: {m: r[m]["cer"] for m in ("greedy", "beam_lm") if m in r}
                                for name, r in sets.items()} for label, sets in results["accuracy"].items()},
        "latency": results.get("latency"),
        "throughput": results.get("throughput"),
        "decoding": f"streaming at 320 ms chunks by default (`seqspeech stream`); {decode['method']} search, beam 4, "
                    f"3-gram word LM (lm.arpa) with weight and bonus tuned on dev: {decode}",
        "files": {"model.safetensors": "weights fp16 + config, features and tokenizer in the metadata",
                  "lm.arpa": "3-gram LM on the training transcripts"},
        "limitations": LIMITATIONS + " Streams English only; the encoder sees only the last 2.56 s of audio, and the "
                       "endpointer needs 0.8 s of silence to close an utterance. Words show up about 1 s after they "
                       "are spoken (trained without an emission-delay penalty such as FastEmit); on voices unlike its "
                       "training voices (flite rms/awb) it errs 1.5x as often as the full-context CTC model.",
    }
    ship(run, dest, card, decode)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=ROOT / "runs" / "synth_en-asr_rnnt_ctc")
    ap.add_argument("--recipe", default="recipes/synth_en/asr_rnnt_from_ctc.yaml", help="the run's recipe file")
    ap.add_argument("--out", type=Path, default=OUT, help=f"results JSON (default {relative(OUT)})")
    ap.add_argument("--max-utterances", type=int, default=200, help="per set at 320 ms (default 200)")
    ap.add_argument("--sweep-utterances", type=int, default=100, help="per set for the other chunk sizes")
    ap.add_argument("--dev-utterances", type=int, default=100)
    ap.add_argument("--latency-utterances", type=int, default=LATENCY_UTTERANCES)
    ap.add_argument("--throughput-seconds", type=float, default=20.0, help="audio per stream for the RTF")
    ap.add_argument("--beam-size", type=int, default=4)
    ap.add_argument("--method", default="beam", choices=("beam", "modified_beam"),
                    help="beam search: time-synchronous (up to 3 labels a frame; characters need it) or modified "
                         "(one label a frame, as icefall)")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--report-only", action="store_true", help="rewrite the README table from the JSON")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--ship", type=Path, default=None, metavar="DIR", help="e.g. models/rnnt-synth-en")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from seqspeech.fileio import write_atomic

    if args.report_only:
        results = json.loads(args.out.read_text())
    else:
        results = evaluate(args.run.resolve(), args)
        results["targets"] = targets(results)
        write_atomic(args.out, json.dumps(results, indent=2) + "\n")
    if not args.no_readme:
        update_readme("asr_rnnt_synth", table(results))
    print(table(results))
    if args.ship:
        ship_rnnt(args.run.resolve(), results, args.ship)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
