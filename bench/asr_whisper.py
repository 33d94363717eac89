#!/usr/bin/env python
"""Whisper ASR side by side: seqspeech vs faster-whisper (int8, float32) vs openai-whisper, same weights.

One run builds the corpus (espeak-ng and flite `slt` clips of Harvard sentences, plus one >= 5-minute long-form
file made from more of them), then runs each system in its own process (so peak RSS is its own) with beam size 5
and 2 threads, and writes bench/results/asr_whisper.json and the README's results table.

    python bench/asr_whisper.py                 # everything (about 15 minutes on 2 cores)
    python bench/asr_whisper.py --quick         # 12 clips, no long-form, fewer systems
    python bench/asr_whisper.py --systems seqspeech-int8,faster-whisper-int8
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / "cache" / "asr_whisper"
RESULTS = ROOT / "bench" / "results" / "asr_whisper.json"
THREADS = 2
WARMUP = np.zeros(16000, dtype=np.float32)  # one second of silence: first-call set-up, outside the timer
BEAM = 5
ESPEAK_VOICES = ["en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan"]
SYSTEMS = {
    "seqspeech-fp32": "seqspeech, float32, batch 4",
    "seqspeech-int8": "seqspeech, int8 decoder + float32 encoder, batch 4",
    "seqspeech-int8all": "seqspeech, int8 encoder and decoder, batch 4",
    "seqspeech-int8-win10": "seqspeech, int8 decoder, windows under 10 s encoded over 10 s, not 30 s",
    "faster-whisper-int8": "faster-whisper (CTranslate2) int8",
    "faster-whisper-fp32": "faster-whisper (CTranslate2) float32",
    "openai-whisper": "openai-whisper, float32 (PyTorch reference)",
}
EXTRA_SYSTEMS = {  # measured on request (--systems): not in the default run
    "seqspeech-int8all-audiopad": "seqspeech, int8 encoder and decoder, short windows padded with silence",
    "seqspeech-fp32-win10": "seqspeech, float32, windows under 10 s encoded over 10 s",
    "seqspeech-int8-win6": "seqspeech, int8 decoder, windows under 6 s encoded over 6 s (tiny.en loops)",
}


# ---------------------------------------------------------------- corpus
def build_corpus(n_clips: int, longform: bool) -> dict:
    from seqspeech.data.synth import HARVARD_SENTENCES, cached_clip

    clips = []
    for i in range(n_clips):
        text = HARVARD_SENTENCES[i % len(HARVARD_SENTENCES)]
        if i % 2 == 0:
            engine, voice = "espeak-ng", ESPEAK_VOICES[(i // 2) % len(ESPEAK_VOICES)]
        else:
            engine, voice = "flite", "slt"
        clips.append({"path": str(cached_clip(CACHE / "clips", text, engine=engine, voice=voice)),
                      "text": text, "voice": f"{engine}:{voice}"})
    corpus = {"clips": clips, "longform": None}
    if longform:
        path = CACHE / "longform.wav"
        ref_path = CACHE / "longform.txt"
        if not path.exists():
            pieces, texts, total, i = [], [], 0.0, 0
            silence = np.zeros(int(0.6 * 16000), dtype=np.float32)
            while total < 310.0:  # >= 5 minutes
                text = HARVARD_SENTENCES[i % len(HARVARD_SENTENCES)]
                engine, voice = ("flite", "slt") if i % 3 == 2 else ("espeak-ng", ESPEAK_VOICES[i % 6])
                from seqspeech.audio.io import load_audio

                audio = load_audio(cached_clip(CACHE / "clips", text, engine=engine, voice=voice), 16000)
                pieces += [audio, silence]
                texts.append(text)
                total += (len(audio) + len(silence)) / 16000
                i += 1
            sf.write(path, np.concatenate(pieces), 16000)
            ref_path.write_text(" ".join(texts))
        corpus["longform"] = {"path": str(path), "text": ref_path.read_text(),
                              "duration": sf.info(str(path)).duration}
    return corpus


def openai_checkpoint() -> Path:
    """The same tiny.en weights as an OpenAI .pt (openai-whisper cannot read CTranslate2 files)."""
    import torch

    from seqspeech.asr.whisper_loaders import load_whisper
    from seqspeech.zoo import resolve

    out = CACHE / "tiny.en-from-ct2.pt"
    if not out.exists():
        loaded = load_whisper(resolve("whisper-tiny.en")[0])
        torch.save({"dims": loaded.dims.to_dict(), "model_state_dict": loaded.model.state_dict()}, out)
    return out


# ---------------------------------------------------------------- workers (one process per system)
def run_system(system: str, paths: list[str]) -> list[str]:
    """Transcribe `paths` with `system`; returns texts. Model loading happens before the timer starts."""
    import torch

    torch.set_num_threads(THREADS)
    if system.startswith("seqspeech"):
        import seqspeech

        asr = seqspeech.load_model("whisper-tiny.en", device="cpu",
                                   compute_type=system.split("-")[1].replace("int8all", "int8_all")
                                   .replace("fp32", "float32"))
        short = next((float(p[3:]) for p in system.split("-") if p.startswith("win")), None)
        opts = dict(beam_size=BEAM, batch_size=4, short_window_s=short,
                    padding="audio" if system.endswith("audiopad") else "zeros")
        asr.transcribe(WARMUP, **opts)
        t0 = time.perf_counter()
        texts = [t.text for t in asr.transcribe_batch(paths, **opts)]
    elif system.startswith("faster-whisper"):
        from faster_whisper import WhisperModel

        from seqspeech.zoo import resolve

        model = WhisperModel(str(resolve("whisper-tiny.en")[0]), device="cpu",
                             compute_type="int8" if system.endswith("int8") else "float32", cpu_threads=THREADS)
        list(model.transcribe(WARMUP, beam_size=BEAM, language="en")[0])
        t0 = time.perf_counter()
        texts = ["".join(s.text for s in model.transcribe(p, beam_size=BEAM, language="en")[0]).strip()
                 for p in paths]
    elif system == "openai-whisper":
        import whisper

        model = whisper.load_model(str(openai_checkpoint()), device="cpu")
        model.transcribe(WARMUP, beam_size=BEAM, fp16=False, language="en")
        t0 = time.perf_counter()
        texts = [model.transcribe(p, beam_size=BEAM, fp16=False, language="en")["text"].strip() for p in paths]
    else:
        raise SystemExit(f"unknown system {system}")
    return texts, time.perf_counter() - t0


def worker(system: str, paths: list[str], out: Path) -> None:
    texts, wall = run_system(system, paths)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.write_text(json.dumps({"texts": texts, "wall_s": wall, "peak_rss_mb": peak_mb}))


def spawn(system: str, paths: list[str]) -> dict:
    tmp = CACHE / f"worker-{system}.json"
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, __file__, "--worker", system, "--out", str(tmp), "--"] + paths
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{system} failed (exit {proc.returncode})")
    return json.loads(tmp.read_text())


# ---------------------------------------------------------------- report
def update_readme(results: dict) -> None:
    readme = ROOT / "README.md"
    start, end = "<!-- bench:asr_whisper:start -->", "<!-- bench:asr_whisper:end -->"
    text = readme.read_text()
    if start not in text:
        return
    rows = ["| system | clips WER % | clips RTF | clips speed vs fw-int8 | long-form WER % | long-form RTF "
            "| long-form speed vs fw-int8 | peak RSS MB |", "|---|---|---|---|---|---|---|---|"]
    nan = float("nan")
    for name, r in results["systems"].items():
        lf = r.get("longform") or {}
        rows.append(f"| {name} | {r['clips']['wer'] * 100:.2f} | {r['clips']['rtf']:.3f} | "
                    f"{r['clips'].get('speed_vs_faster_whisper_int8', nan):.2f}× | "
                    f"{lf.get('wer', nan) * 100:.2f} | {lf.get('rtf', nan):.3f} | "
                    f"{lf.get('speed_vs_faster_whisper_int8', nan):.2f}× | {r['peak_rss_mb']:.0f} |")
    meta = results["meta"]
    rows.append("")
    rows.append(f"{meta['n_clips']} clips ({meta['clips_audio_s']:.0f} s of espeak-ng and flite slt speech) and "
                f"a {meta.get('longform_s', 0):.0f}-s long-form file; beam 5, {THREADS} threads, "
                f"`make bench` on {meta['machine']}, {meta['date']}.")
    new = text.split(start)[0] + start + "\n" + "\n".join(rows) + "\n" + end + text.split(end)[1]
    readme.write_text(new)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--clips", type=int, default=48)
    ap.add_argument("--report-only", action="store_true", help="re-render the README table from the last results")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.paths, args.out)
        return

    if args.report_only:
        update_readme(json.loads(RESULTS.read_text()))
        return

    from seqspeech.metrics.wer import wer

    systems = args.systems.split(",")
    if args.quick:
        args.clips = 12
    CACHE.mkdir(parents=True, exist_ok=True)
    corpus = build_corpus(args.clips, longform=not args.quick)
    clip_paths = [c["path"] for c in corpus["clips"]]
    clip_refs = [c["text"] for c in corpus["clips"]]
    clips_audio = sum(sf.info(p).duration for p in clip_paths)
    if "openai-whisper" in systems:
        openai_checkpoint()

    results = {"meta": {"n_clips": len(clip_paths), "clips_audio_s": clips_audio, "beam_size": BEAM,
                        "threads": THREADS, "date": time.strftime("%Y-%m-%d"),
                        "machine": f"{os.cpu_count()}-core CPU"},
               "systems": {}}
    if corpus["longform"]:
        results["meta"]["longform_s"] = corpus["longform"]["duration"]
    for system in systems:
        print(f"[bench] {system}: {len(clip_paths)} clips", file=sys.stderr, flush=True)
        r = spawn(system, clip_paths)
        entry = {"description": {**SYSTEMS, **EXTRA_SYSTEMS}.get(system, system), "peak_rss_mb": r["peak_rss_mb"],
                 "clips": {"wall_s": r["wall_s"], "rtf": r["wall_s"] / clips_audio,
                           "wer": wer(clip_refs, r["texts"])},
                 "hypotheses": r["texts"]}
        if corpus["longform"]:
            print(f"[bench] {system}: long-form", file=sys.stderr, flush=True)
            lf = spawn(system, [corpus["longform"]["path"]])
            entry["longform"] = {"wall_s": lf["wall_s"], "rtf": lf["wall_s"] / corpus["longform"]["duration"],
                                 "wer": wer([corpus["longform"]["text"]], lf["texts"])}
            entry["peak_rss_mb"] = max(entry["peak_rss_mb"], lf["peak_rss_mb"])
        results["systems"][system] = entry
        print(f"[bench] {system}: {json.dumps({k: v for k, v in entry.items() if k != 'hypotheses'})}",
              file=sys.stderr, flush=True)
    ref = results["systems"].get("faster-whisper-int8")
    if ref:
        for entry in results["systems"].values():
            entry["clips"]["speed_vs_faster_whisper_int8"] = ref["clips"]["wall_s"] / entry["clips"]["wall_s"]
            if "longform" in entry and "longform" in ref:
                entry["longform"]["speed_vs_faster_whisper_int8"] = \
                    ref["longform"]["wall_s"] / entry["longform"]["wall_s"]
    from seqspeech.fileio import write_atomic

    write_atomic(RESULTS, json.dumps(results, indent=2))
    update_readme(results)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "hypotheses"}
                      for k, v in results["systems"].items()}, indent=2))


if __name__ == "__main__":
    main()
