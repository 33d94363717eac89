#!/usr/bin/env python
"""Streaming Whisper (tiny.en) against offline Whisper on the long-form file: WER, latency of committed words, RTF.

The long-form file is bench/asr_whisper.py's recipe (Harvard sentences, espeak-ng voices with every third
sentence by flite slt, 0.6 s of silence after each), built here with the sentence spans kept; ``--limit`` cuts
it at the last sentence that ends before that many seconds. Systems, all with the CPU default model
(``load_model("whisper-tiny.en")``: int8 decoder, float32 encoder), 2 threads (``--threads``), one after another
in one process:

* ``offline-greedy``: ``transcribe()`` with its defaults (greedy, temperature fallback, previous-text prompt);
* ``offline-beam5``: the same with ``beam_size=5`` (bench/asr_whisper.py's setting);
* ``local-agreement``, ``alignatt``: the streaming engines with their defaults, 1.0-s chunks, fed as one
  continuous utterance (no endpointing: the policy and its buffer cuts alone), the last chunk final;
  ``local-agreement-prompt`` (on request): LocalAgreement the whisper_streaming way (``mode="prompt"``).

Latency of a committed word (matched to the reference word it transcribes, correct words only): the time it
became committed minus the reference word's end. "Algorithmic": committed at the end of the chunk whose step
committed it. "With compute": a real-time clock where step k starts when its chunk has arrived and the previous
step is done, and ends after its measured wall time (the lag a live stream on this machine would have). Reference
word ends are spread over each sentence's speech (the clip's span above -50 dBFS) in proportion to their
letters: exact at sentence ends, an estimate within a sentence.

    python bench/asr_whisper_streaming.py               # 120 s of audio (about 4 minutes on 2 idle cores)
    python bench/asr_whisper_streaming.py --limit 300   # more audio
    python bench/asr_whisper_streaming.py --systems alignatt --frame-threshold 25
    python bench/asr_whisper_streaming.py --systems offline-greedy,alignatt-ft25,alignatt-ft50  # side by side
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
CACHE = ROOT / "bench" / "cache" / "asr_whisper_streaming"
RESULTS = ROOT / "bench" / "results" / "asr_whisper_streaming.json"
THREADS = 2
SR = 16000
GAP_S = 0.6
LONGFORM_S = 310.0
SYSTEMS = ("offline-greedy", "offline-beam5", "local-agreement", "alignatt")
STREAMING = {  # system -> (policy, options)
    "local-agreement": ("local-agreement", {}),
    "local-agreement-prompt": ("local-agreement", {"mode": "prompt"}),  # whisper_streaming's own way
    "alignatt": ("alignatt", {}),
}


# ---------------------------------------------------------------- corpus
def longform() -> tuple[np.ndarray, list[dict]]:
    """bench/asr_whisper.py's long-form recipe with each sentence's text and speech span (seconds)."""
    from asr_whisper import ESPEAK_VOICES

    from seqspeech.audio.io import load_audio
    from seqspeech.data.synth import HARVARD_SENTENCES, cached_clip

    wav, meta = CACHE / "longform.wav", CACHE / "longform.json"
    if wav.exists() and meta.exists():
        return sf.read(str(wav), dtype="float32")[0], json.loads(meta.read_text())
    pieces, sentences, total, i = [], [], 0, 0
    silence = np.zeros(int(GAP_S * SR), dtype=np.float32)
    while total < LONGFORM_S * SR:
        text = HARVARD_SENTENCES[i % len(HARVARD_SENTENCES)]
        engine, voice = ("flite", "slt") if i % 3 == 2 else ("espeak-ng", ESPEAK_VOICES[i % 6])
        audio = load_audio(cached_clip(CACHE / "clips", text, engine=engine, voice=voice), SR)
        loud = np.flatnonzero(np.abs(audio) > 10 ** (-50 / 20))
        first, last = (int(loud[0]), int(loud[-1]) + 1) if loud.size else (0, len(audio))
        sentences.append({"text": text, "voice": f"{engine}:{voice}", "start": (total + first) / SR,
                          "end": (total + last) / SR, "clip_end": (total + len(audio)) / SR})
        pieces += [audio, silence]
        total += len(audio) + len(silence)
        i += 1
    audio = np.concatenate(pieces)
    CACHE.mkdir(parents=True, exist_ok=True)
    sf.write(str(wav), audio, SR)
    meta.write_text(json.dumps(sentences, indent=1))
    return audio, sentences


def norm(word: str) -> str:
    return re.sub(r"[^a-z0-9']", "", word.lower())


def reference_words(sentences: list[dict]) -> list[tuple[str, float]]:
    """(normalised word, estimated end time) for every reference word."""
    out = []
    for s in sentences:
        words = [w for w in s["text"].split() if norm(w)]
        weights = np.cumsum([len(norm(w)) + 1 for w in words], dtype=float)
        ends = s["start"] + (s["end"] - s["start"]) * weights / weights[-1]
        out += [(norm(w), float(e)) for w, e in zip(words, ends)]
    return out


# ---------------------------------------------------------------- systems
def run_offline(asr, audio: np.ndarray, **options) -> dict:
    asr.transcribe(np.zeros(SR, np.float32), **options)  # warm-up outside the timer
    t0 = time.perf_counter()
    text = asr.transcribe(audio, **options).text
    return {"text": text, "wall_s": time.perf_counter() - t0}


def run_stream(asr, audio: np.ndarray, policy: str, chunk_ms: float, **options) -> dict:
    engine = asr.stream_engine(policy, chunk_ms, **options)
    warm = engine.new_state()
    engine.decode([warm], [np.zeros(engine.chunk_samples, np.float32)], [True])  # first-call set-up
    state, n = engine.new_state(), engine.chunk_samples
    commit_step: list[int] = []  # per committed token: the step that committed it
    arrived, walls = [], []
    full = len(audio) // n * n
    bounds = [(i, i + n, False) for i in range(0, full, n)] + [(full, len(audio), True)]
    hypothesis = None
    for k, (a, b, last) in enumerate(bounds):
        t0 = time.perf_counter()
        hypothesis = engine.decode([state], [audio[a:b]], [last])[0]
        if last:
            hypothesis = engine.end_utterance(state)
        walls.append(time.perf_counter() - t0)
        arrived.append(b / SR)
        commit_step += [k] * (hypothesis.stable - len(commit_step))
    done, finish = 0.0, []
    for a, w in zip(arrived, walls):
        done = max(done, a) + w
        finish.append(done)
    tokens = hypothesis.tokens
    words, groups = asr.tokenizer.split_to_word_tokens(tokens)
    hyp_words, k = [], 0
    for word, group in zip(words, groups):
        k += len(group)
        if norm(word):
            step = commit_step[k - 1]
            hyp_words.append((norm(word), arrived[step], finish[step]))
    return {"text": engine.text(tokens), "wall_s": float(sum(walls)), "steps": state.steps,
            "max_buffer_s": state.max_buffer_seen / SR, "hyp_words": hyp_words,
            "step_wall_p95_s": float(np.percentile(walls, 95))}


def latency(hyp_words: list[tuple[str, float, float]], ref_words: list[tuple[str, float]]) -> dict:
    # a minimum-edit alignment (jiwer's), not difflib's longest blocks: the long-form file repeats its sentence list,
    # and a longest-block match paired words of the second pass with the first (latencies of 180 s)
    import jiwer

    algo, comp = [], []
    if ref_words and hyp_words:
        out = jiwer.process_words(" ".join(w for w, _ in ref_words), " ".join(w for w, _, _ in hyp_words))
        for chunk in out.alignments[0]:
            if chunk.type != "equal":
                continue
            for i in range(chunk.ref_end_idx - chunk.ref_start_idx):
                end = ref_words[chunk.ref_start_idx + i][1]
                _, at, done = hyp_words[chunk.hyp_start_idx + i]
                algo.append(at - end)
                comp.append(done - end)
    stats = {}
    for name, values in (("algorithmic", algo), ("with_compute", comp)):
        v = np.asarray(values)
        stats[name] = {"mean_s": float(v.mean()), "p50_s": float(np.percentile(v, 50)),
                       "p95_s": float(np.percentile(v, 95)), "max_s": float(v.max())} if v.size else {}
    stats["matched_words"] = len(algo)
    stats["reference_words"] = len(ref_words)
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=float, default=120.0, help="seconds of the long-form file to use (default 120)")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--chunk-ms", type=float, default=1000.0)
    ap.add_argument("--frame-threshold", type=int, default=None, help="AlignAtt's (default: the engine's)")
    ap.add_argument("--compute-type", default=None, help="default: load_model's CPU default (int8)")
    ap.add_argument("--threads", type=int, default=THREADS, help=f"torch threads (default {THREADS})")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import seqspeech
    from seqspeech.fileio import write_atomic
    from seqspeech.metrics.wer import wer

    audio, sentences = longform()
    sentences = [s for s in sentences if s["clip_end"] <= args.limit] or sentences[:1]
    audio = audio[: int(round((sentences[-1]["clip_end"] + GAP_S) * SR))]
    reference = " ".join(s["text"] for s in sentences)
    ref_words = reference_words(sentences)
    duration = len(audio) / SR
    asr = seqspeech.load_model("whisper-tiny.en", device="cpu",
                               **({"compute_type": args.compute_type} if args.compute_type else {}))
    results = {"meta": {"audio_s": duration, "sentences": len(sentences), "chunk_ms": args.chunk_ms,
                        "compute_type": asr.compute_type, "threads": args.threads, "machine": f"{os.cpu_count()}-core CPU",
                        "load_average_before": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d"),
                        "command": "python bench/asr_whisper_streaming.py " + " ".join(sys.argv[1:]),
                        "latency_note": "algorithmic: chunk end when committed - reference word end; with_compute: "
                                        "a real-time clock including each step's measured wall time"},
               "systems": {}}
    for system in args.systems.split(","):
        print(f"[bench] {system} on {duration:.0f} s", file=sys.stderr, flush=True)
        if system == "offline-greedy":
            r = run_offline(asr, audio)
        elif system == "offline-beam5":
            r = run_offline(asr, audio, beam_size=5)
        elif system in STREAMING or re.fullmatch(r"alignatt-ft\d+", system):
            threshold = system.removeprefix("alignatt-ft")
            policy, options = STREAMING.get(system) or ("alignatt", {"frame_threshold": int(threshold)})
            if policy == "alignatt" and args.frame_threshold is not None:
                options = {**options, "frame_threshold": args.frame_threshold}
            r = run_stream(asr, audio, policy, args.chunk_ms, **options)
            r["options"] = options
            r["latency"] = latency(r.pop("hyp_words"), ref_words)
        else:
            raise SystemExit(f"unknown system {system}")
        r["wer"] = wer([reference], [r["text"]])
        r["rtf"] = r["wall_s"] / duration
        results["systems"][system] = r
        print(f"[bench] {system}: {json.dumps({k: v for k, v in r.items() if k != 'text'})}", file=sys.stderr,
              flush=True)
        write_atomic(args.out, json.dumps(results, indent=2))  # what is done so far survives an interruption
    results["meta"]["load_average_after"] = os.getloadavg()[0]

    offline = [results["systems"][s]["wer"] for s in ("offline-greedy", "offline-beam5") if s in results["systems"]]
    streams = {s: r for s, r in results["systems"].items() if "latency" in r}
    if offline and streams:  # against the better offline setting
        rows = {name: {"wer_gap_points": round(100 * (r["wer"] - min(offline)), 2),
                       "mean_latency_algorithmic_s": round(r["latency"]["algorithmic"].get("mean_s", math.inf), 3),
                       "mean_latency_with_compute_s": round(r["latency"]["with_compute"].get("mean_s", math.inf), 3)}
                for name, r in streams.items()}
        results["target"] = {
            "goal": "the better policy within 1 WER point of offline Whisper at <= 2 s mean latency",
            "offline_wer": min(offline), "better_policy": min(streams, key=lambda name: streams[name]["wer"]),
            "per_streaming_system": rows,
            "met": any(r["wer_gap_points"] <= 1.0 and r["mean_latency_with_compute_s"] <= 2.0 for r in rows.values())}
    write_atomic(args.out, json.dumps(results, indent=2))
    print(json.dumps({"target": results.get("target"),
                      **{k: {kk: vv for kk, vv in v.items() if kk not in ("text",)}
                         for k, v in results["systems"].items()}}, indent=2))


if __name__ == "__main__":
    main()
