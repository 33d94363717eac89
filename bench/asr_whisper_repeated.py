#!/usr/bin/env python
"""Whisper on one sentence said over and over for 10 minutes: seqspeech vs faster-whisper, same tiny.en weights.

Speech that really repeats is where Whisper's fallback misfires: every 30-s window's right transcript is too
repetitive for the compression-ratio test (> 2.4), so each window is decoded again at temperatures 0.2 ... 1.0
(best of 5 samples each). openai-whisper then keeps the hottest sample and faster-whisper the most probable sample
that is not too repetitive, and both call a window silence when the last sample is improbable and the no-speech
probability high. seqspeech keeps the temperature-0 reading when the model was sure of it
(`asr/transcribe.py: _best_attempt, _silent`). This script measures all three rules side by side, each system in its
own process with 2 threads, on the defaults a user gets (beam 5, best of 5, int8), and writes
bench/results/asr_whisper_repeated.json.

    python bench/asr_whisper_repeated.py [--minutes 10] [--systems seqspeech,faster-whisper]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / "cache" / "asr_whisper_repeated"
RESULTS = ROOT / "bench" / "results" / "asr_whisper_repeated.json"
SENTENCE = "The birch canoe slid on the smooth planks."
PAUSE_S = 0.5
THREADS = 2
SYSTEMS = {
    "seqspeech": "seqspeech int8, beam 5, best of 5 (its fallback rule)",
    "seqspeech-faster-whisper-rule": "seqspeech int8, beam 5, best of 5, with faster-whisper's choice when every "
                                     "temperature fails and the references' silence rule",
    "seqspeech-openai-rule": "seqspeech int8, beam 5, best of 5, with openai-whisper's choice (the hottest attempt) "
                             "and silence rule: seqspeech before this bench",
    "faster-whisper": "faster-whisper int8, beam 5, best of 5",
}


def build(minutes: float) -> tuple[Path, str]:
    import soundfile as sf

    from seqspeech.audio.io import load_audio
    from seqspeech.data.synth import cached_clip

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"repeated-{minutes:g}min.wav"
    one = np.concatenate([load_audio(cached_clip(CACHE, SENTENCE, engine="espeak-ng", voice="en-us")),
                          np.zeros(int(PAUSE_S * 16000), np.float32)])
    times = int(np.ceil(minutes * 60 * 16000 / len(one)))
    if not path.exists():
        sf.write(path, np.tile(one, times)[: int(minutes * 60 * 16000)], 16000)
    said = int(minutes * 60 * 16000 // len(one))  # whole sentences in the file
    return path, " ".join([SENTENCE] * said)


def _reference_rule(choice: str) -> None:
    """Patch seqspeech's fallback back to the references' rules: the silence test on the latest attempt only
    (openai-whisper, faster-whisper), and when every temperature failed faster-whisper's choice (the most probable
    attempt that is not too repetitive) or openai-whisper's (the last, hottest one)."""
    from dataclasses import replace

    from seqspeech.asr import transcribe as t

    def silent(attempts, o):
        r = attempts[-1]
        return (o.no_speech_threshold is not None and o.logprob_threshold is not None
                and r.no_speech_prob > o.no_speech_threshold and r.avg_logprob < o.logprob_threshold)

    def best_attempt(attempts, o):
        if choice == "openai":
            return attempts[-1]
        fair = [r for r in attempts if not t._too_repetitive(r, o)] or attempts
        return replace(max(fair, key=lambda r: r.avg_logprob), temperature=attempts[-1].temperature)

    t._silent, t._best_attempt = silent, best_attempt


def run(system: str, path: Path) -> dict:
    from seqspeech.audio.io import load_audio

    if system.startswith("seqspeech"):
        import seqspeech

        if system.endswith("-rule"):
            _reference_rule(system.split("-")[1])
        asr = seqspeech.load_model("whisper-tiny.en")
        t0 = time.perf_counter()
        result = asr.transcribe(str(path), beam_size=5, best_of=5)
        wall = time.perf_counter() - t0
        segments = [(s.text, s.temperature) for s in result.segments]
    else:
        import faster_whisper

        from seqspeech.zoo import resolve

        model = faster_whisper.WhisperModel(str(resolve("whisper-tiny.en")[0]), device="cpu", compute_type="int8",
                                            cpu_threads=THREADS)
        audio = load_audio(path)
        t0 = time.perf_counter()
        found, _ = model.transcribe(audio, beam_size=5, best_of=5, language="en")
        segments = [(s.text, s.temperature) for s in found]
        wall = time.perf_counter() - t0
    return {"wall_s": round(wall, 1), "text": "".join(text for text, _ in segments).strip(),
            "segments": len(segments), "hot_segments": sum(temp > 0 for _, temp in segments)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    path, reference = build(args.minutes)
    if args.worker:
        print(json.dumps(run(args.worker, path)))
        return
    from seqspeech.metrics.wer import wer
    from seqspeech.text.normalize import EnglishTextNormalizer

    norm = EnglishTextNormalizer()
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS)}
    results = {"audio": f"{args.minutes:g} minutes: '{SENTENCE}' (espeak-ng en-us) and {PAUSE_S} s of silence, "
                        f"repeated", "reference_words": len(reference.split()), "systems": {}}
    if RESULTS.exists() and args.systems != ",".join(SYSTEMS):  # a subset: keep the other systems' rows
        kept = json.loads(RESULTS.read_text())
        if kept.get("audio") == results["audio"]:
            results["systems"] = kept["systems"]
    for system in args.systems.split(","):
        print(f"{system} ...", file=sys.stderr, flush=True)
        out = subprocess.run([sys.executable, __file__, "--minutes", str(args.minutes), "--worker", system],
                             env=env, capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        r["wer"] = round(100 * wer([norm(reference)], [norm(r["text"])]), 2)
        r["words"] = len(r["text"].split())
        r["opening"] = r.pop("text")[:120]
        r["rtf"] = round(r["wall_s"] / (args.minutes * 60), 3)
        r["description"] = SYSTEMS[system]
        results["systems"][system] = r
        print(json.dumps({system: r}), file=sys.stderr, flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
