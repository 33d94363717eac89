#!/usr/bin/env python
"""PyTorch vs ONNX Runtime float32 vs ONNX Runtime int8 for every shipped model, side by side, in one run.

For whisper-tiny.en, ctc-conformer-synth-en and rnnt-synth-en: WER / CER and real-time factor on the first N clips
of the synthetic test set (data/synth_en/test.jsonl: held-out sentences, espeak-ng and flite voices): Whisper
greedy (see WHISPER_OPTIONS), CTC and transducer with their stored decoding defaults (beam search with the LM beside
the model). For the slt voice: real-time factor of synthesising the same N
sentences, the largest sample difference from the PyTorch waveform, and the WER / CER of whisper-tiny.en
(PyTorch, float32, greedy) transcribing the audio. Two threads everywhere (torch and ONNX Runtime); every system
is warmed up on one clip first; times are wall-clock over the whole set.

    python bench/export_onnx.py                  # everything, 20 clips (about 10 minutes on 2 busy cores)
    python bench/export_onnx.py --clips 5 --models ctc-conformer-synth-en

Writes results/export_onnx.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

RESULTS = ROOT / "results" / "export_onnx.json"
TEST_SET = ROOT / "data" / "synth_en" / "test.jsonl"
THREADS = 2
MODELS = ("whisper-tiny.en", "ctc-conformer-synth-en", "rnnt-synth-en", "slt")
# greedy, no temperature fallback, windows under 10 s encoded over 10 s: deterministic and affordable on 2 cores (on
# these voices tiny.en often loops to its 224-token limit, and fallback sampling made one system take minutes)
WHISPER_OPTIONS = {"beam_size": 1, "temperature": 0.0, "short_window_s": 10.0}


def load_test_set(n: int) -> list[dict]:
    from seqspeech.audio.io import load_audio

    rows = [json.loads(line) for line in TEST_SET.read_text().splitlines() if line.strip()][:n]
    for row in rows:
        row["wave"] = load_audio(TEST_SET.parent / row["audio"], 16000)
    return rows


def folder_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.iterdir() if p.suffix == ".onnx") / 1e6, 1)


def export(name: str, work: Path, int8: bool) -> tuple[Path, float]:
    from seqspeech.export import export_onnx

    out = work / f"{name}-{'int8' if int8 else 'fp32'}"
    start = time.perf_counter()
    export_onnx(name, out, int8=int8)
    return out, round(time.perf_counter() - start, 1)


def score(references: list[str], hypotheses: list[str]) -> dict:
    from seqspeech.metrics.wer import error_rate

    return {"wer": round(error_rate(references, hypotheses).rate, 4),
            "cer": round(error_rate(references, hypotheses, unit="char").rate, 4)}


def bench_asr(name: str, systems: dict, rows: list[dict], options: dict) -> dict:
    waves = [row["wave"] for row in rows]
    audio_s = sum(len(w) for w in waves) / 16000
    reference_field = "text" if name.startswith("whisper") else "normalized_text"
    references = [row[reference_field] for row in rows]
    out = {}
    for label, asr in systems.items():
        asr.transcribe_batch(waves[:1], **options)  # warm-up: sessions, LM, first-call costs
        start = time.perf_counter()
        hypotheses = [t.text for t in asr.transcribe_batch(waves, **options)]
        wall = time.perf_counter() - start
        out[label] = {**score(references, hypotheses), "rtf": round(wall / audio_s, 4), "wall_s": round(wall, 2),
                      "hypotheses": hypotheses}
        print(f"  {label}: {out[label]['wer']:.2%} WER, {out[label]['cer']:.2%} CER, RTF {out[label]['rtf']:.3f}",
              flush=True)
    same = {label: sum(a == b for a, b in zip(r["hypotheses"], out["pytorch"]["hypotheses"]))
            for label, r in out.items()}
    for label, result in out.items():
        result["same_transcripts_as_pytorch"] = same[label]
    return {"audio_s": round(audio_s, 2), "clips": len(rows), "references": reference_field, "systems": out}


def bench_tts(systems: dict, rows: list[dict], judge) -> dict:
    texts = [row["text"] for row in rows]
    out, waves = {}, {}
    for label, voice in systems.items():
        voice.synthesize(texts[0], watermark=False)  # warm-up
        start = time.perf_counter()
        waves[label] = [voice.synthesize(t, watermark=False) for t in texts]
        wall = time.perf_counter() - start
        audio_s = sum(len(w) for w in waves[label]) / voice.sample_rate
        hypotheses = [t.text for t in judge.transcribe_batch(waves[label], **WHISPER_OPTIONS)]
        diffs = [float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")
                 for a, b in zip(waves[label], waves["pytorch"])]
        out[label] = {**score(texts, hypotheses), "rtf": round(wall / audio_s, 4), "wall_s": round(wall, 2),
                      "audio_s": round(audio_s, 2), "max_abs_diff_vs_pytorch": max(diffs),
                      "same_length_as_pytorch": sum(a.shape == b.shape for a, b in zip(waves[label], waves["pytorch"])),
                      "hypotheses": hypotheses}
        print(f"  {label}: RTF {out[label]['rtf']:.3f}, judge {out[label]['wer']:.2%} WER, max |diff| "
              f"{out[label]['max_abs_diff_vs_pytorch']:.2e}", flush=True)
    return {"sentences": len(texts), "judge": f"whisper-tiny.en, PyTorch float32, {WHISPER_OPTIONS}", "systems": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()

    import torch

    import seqspeech
    from seqspeech.export import load_onnx_model
    from seqspeech.fileio import write_atomic

    torch.set_num_threads(THREADS)
    rows = load_test_set(args.clips)
    results = {"threads": THREADS, "clips": len(rows), "test_set": str(TEST_SET.relative_to(ROOT)),
               "whisper_options": WHISPER_OPTIONS,
               "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "torch": torch.__version__,
               "models": {}}
    import onnxruntime

    results["onnxruntime"] = onnxruntime.__version__
    judge = None
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        work = Path(tmp)
        for name in args.models.split(","):
            print(f"{name}:", flush=True)
            fp32, fp32_s = export(name, work, int8=False)
            int8, int8_s = export(name, work, int8=True)
            exports = {"fp32": {"seconds": fp32_s, "onnx_mb": folder_mb(fp32)},
                       "int8": {"seconds": int8_s, "onnx_mb": folder_mb(int8),
                                "quantized": json.loads((int8 / "manifest.json").read_text())["int8_graphs"]}}
            onnx_systems = {"onnx-fp32": load_onnx_model(fp32, threads=THREADS),
                            "onnx-int8": load_onnx_model(int8, threads=THREADS)}
            if name == "slt":
                if judge is None:
                    judge = seqspeech.load_model("whisper-tiny.en", device="cpu", compute_type="float32")
                systems = {"pytorch": seqspeech.load_voice(name, device="cpu"), **onnx_systems}
                result = bench_tts(systems, rows, judge)
            elif name.startswith("whisper"):
                systems = {"pytorch": seqspeech.load_model(name, device="cpu", compute_type="float32"),
                           "pytorch-int8": seqspeech.load_model(name, device="cpu"),  # the CPU default
                           **onnx_systems}
                result = bench_asr(name, systems, rows, WHISPER_OPTIONS)
            else:
                systems = {"pytorch": seqspeech.load_model(name, device="cpu"), **onnx_systems}
                result = bench_asr(name, systems, rows, {})
            results["models"][name] = {"export": exports, **result}
            write_atomic(RESULTS, json.dumps(results, indent=1) + "\n")  # partial results survive an interrupt
    print(table(results))


def table(results: dict) -> str:
    lines = ["| model | system | WER % | CER % | RTF | same as PyTorch | ONNX MB |", "|---|---|---|---|---|---|---|"]
    for name, model in results["models"].items():
        for label, r in model["systems"].items():
            size = model["export"].get(label.removeprefix("onnx-"), {}).get("onnx_mb", "")
            same = r.get("same_transcripts_as_pytorch", r.get("same_length_as_pytorch"))
            lines.append(f"| {name} | {label} | {r['wer'] * 100:.1f} | {r['cer'] * 100:.1f} | {r['rtf']:.3f} | "
                         f"{same} | {size} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
