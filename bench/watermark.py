#!/usr/bin/env python
"""Watermark robustness and false-positive study on real (synthetic-voice) test speech.

Every clip of ``data/synth_en/test.jsonl`` and ``test_eval_voices.jsonl`` (espeak-ng and flite voices, 16 kHz) is
marked with ``embed_watermark`` and put through each attack: resampling to 8 kHz and back, MP3 at 64 kbps
(ffmpeg), ±6 dB gain (saturating at full scale), white noise at 20 dB SNR, a random shift, a 1.5 s cut at a
random place, conversion to 22.05/24/44.1/48 kHz, and a chain of several. For each attack it reports the
detection rate with the right key, and the false-positive rate of the *unmarked* clip under the same attack; plus
wrong keys on marked clips, FP_KEYS (200) keys on every unmarked clip (the false-positive rate of each key), the
mark's SNR (global and segmental), and embedding speed. Writes ``bench/results/watermark.json``.

    python bench/watermark.py               # all clips (600)
    python bench/watermark.py --limit 50    # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from seqspeech.audio import watermark as wm  # noqa: E402
from seqspeech.audio.io import load_audio  # noqa: E402
from seqspeech.fileio import iter_jsonl, write_atomic  # noqa: E402

DATA = ROOT / "data" / "synth_en"
MANIFESTS = ("test.jsonl", "test_eval_voices.jsonl")
RESULTS = ROOT / "bench" / "results" / "watermark.json"
RATE = 16000  # the TTS rate, and the corpus's
KEY = "bench-key"
WRONG_KEYS = 10
FP_KEYS = 200  # unmarked clips are also scored against this many keys (one analysis each): FP rate per key
NOISE_SNR_DB = 20.0
CUT_SECONDS = 1.5
SEGMENT_S = 0.032  # segmental SNR frames
SEGMENT_ACTIVE_DB = 40.0  # frames this far below the loudest are left out of the segmental SNR
HAS_FFMPEG = shutil.which("ffmpeg") is not None

Attack = Callable[[np.ndarray, int, np.random.Generator], tuple[np.ndarray, int]]


def resample_8k(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    return soxr.resample(soxr.resample(x, rate, 8000, quality="HQ"), 8000, rate, quality="HQ"), rate


def mp3_64k(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory(prefix="wm-bench-") as tmp:
        wav, mp3 = Path(tmp) / "in.wav", Path(tmp) / "out.mp3"
        sf.write(wav, x, rate, subtype="PCM_16")
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), "-b:a", "64k", str(mp3)],
                       check=True)  # fmt: skip
        return load_audio(mp3, sr=rate), rate


def gain(db: float) -> Attack:
    def attack(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        return np.clip(x * 10 ** (db / 20), -1.0, 1.0), rate

    return attack


def white_noise(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    power = float(np.mean(x.astype(np.float64) ** 2)) / 10 ** (NOISE_SNR_DB / 10)
    return (x + rng.normal(0.0, math.sqrt(power), x.shape)).astype(np.float32), rate


def random_shift(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    return x[int(rng.integers(1, rate // 2)) :], rate


def random_cut(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    n = min(x.size, round(CUT_SECONDS * rate))
    start = int(rng.integers(0, x.size - n + 1))
    return x[start : start + n], rate


def to_rate(other: int) -> Attack:
    def attack(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        return soxr.resample(x, rate, other, quality="HQ"), other

    return attack


def chain(*attacks: Attack) -> Attack:
    def attack(x: np.ndarray, rate: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        for step in attacks:
            x, rate = step(x, rate, rng)
        return x, rate

    return attack


def attacks() -> dict[str, Attack]:
    table: dict[str, Attack] = {
        "none": lambda x, rate, rng: (x, rate),
        "resample_8k": resample_8k,
        "gain_+6dB_saturating": gain(6.0),
        "gain_-6dB": gain(-6.0),
        "white_noise_20dB": white_noise,
        "shift_random": random_shift,
        "cut_1.5s_random": random_cut,
        **{f"rate_{r}": to_rate(r) for r in (22050, 24000, 44100, 48000)},
    }
    if HAS_FFMPEG:
        table["mp3_64k"] = mp3_64k
        table["chain_shift_resample8k_mp3_gain-6dB"] = chain(random_shift, resample_8k, mp3_64k, gain(-6.0))
        table["chain_mp3_noise20dB"] = chain(mp3_64k, white_noise)
    return table


def segmental_snr_db(x: np.ndarray, y: np.ndarray, rate: int) -> float:
    """Mean over active SEGMENT_S frames of the frame's signal-to-mark ratio in dB."""
    frame = round(SEGMENT_S * rate)
    n = x.size // frame * frame
    sig = np.sum(x[:n].astype(np.float64).reshape(-1, frame) ** 2, axis=1)
    mark = np.sum((y[:n].astype(np.float64) - x[:n]).reshape(-1, frame) ** 2, axis=1)
    active = sig >= sig.max() * 10 ** (-SEGMENT_ACTIVE_DB / 10)
    return float(np.mean(10 * np.log10(sig[active] / np.maximum(mark[active], 1e-20))))


def summary(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "min": float(a.min()), "p01": float(np.percentile(a, 1)),
            "p50": float(np.median(a)), "p99": float(np.percentile(a, 99)), "max": float(a.max())}  # fmt: skip


def clip_paths(limit: int | None) -> list[Path]:
    paths = []
    for name in MANIFESTS:
        for _, record in iter_jsonl(DATA / name):
            paths.append(DATA / record["audio"])
    return paths[:limit] if limit else paths


def run(limit: int | None) -> dict[str, Any]:
    table = attacks()
    paths = clip_paths(limit)
    marked_scores: dict[str, list[float]] = {name: [] for name in table}
    unmarked_scores: dict[str, list[float]] = {name: [] for name in table}
    wrong_key_scores: list[float] = []
    many_key_scores: list[np.ndarray] = []
    snrs, seg_snrs, durations, embed_rtf = [], [], [], []
    started = time.perf_counter()
    for index, path in enumerate(paths):
        x = load_audio(path, sr=RATE)
        durations.append(x.size / RATE)
        t0 = time.process_time()
        y = wm.embed_watermark(x, RATE, key=KEY)
        embed_rtf.append((time.process_time() - t0) / (x.size / RATE))
        snrs.append(wm.watermark_snr_db(x, y))
        seg_snrs.append(segmental_snr_db(x, y, RATE))
        for name, attack in table.items():
            for source, scores in ((y, marked_scores), (x, unmarked_scores)):
                rng = np.random.default_rng(index)  # the same shift/cut/noise for the marked and unmarked clip
                attacked, rate = attack(source, RATE, rng)
                scores[name].append(wm.detect_watermark(attacked, rate, key=KEY).score)
        wrong_key_scores += [wm.detect_watermark(y, RATE, key=f"wrong-{k}").score for k in range(WRONG_KEYS)]
        many_key_scores.append(wm.watermark_scores(x, RATE, [f"fp-key-{k}" for k in range(FP_KEYS)]))
        if (index + 1) % 50 == 0:
            print(f"{index + 1}/{len(paths)} clips, {time.perf_counter() - started:.0f} s", file=sys.stderr)

    threshold = wm.WATERMARK_THRESHOLD
    per_attack = {}
    for name in table:
        hits = np.asarray(marked_scores[name]) > threshold
        false = np.asarray(unmarked_scores[name]) > threshold
        per_attack[name] = {
            "detection_rate": float(hits.mean()),
            "false_positive_rate": float(false.mean()),
            "marked_score": summary(marked_scores[name]),
            "unmarked_score": summary(unmarked_scores[name]),
        }
    all_unmarked = np.concatenate([np.asarray(v) for v in unmarked_scores.values()])
    wrong = np.asarray(wrong_key_scores)
    many = np.stack(many_key_scores)  # (clips, keys)
    per_key = np.mean(many > threshold, axis=0)
    return {
        "clips": len(paths),
        "manifests": [str((DATA / m).relative_to(ROOT)) for m in MANIFESTS],
        "clip_seconds": summary(durations),
        "threshold": threshold,
        "false_positive_bound": wm.FALSE_POSITIVE_BOUND,
        "strength": wm.DEFAULT_STRENGTH,
        "attacks": per_attack,
        "false_positives_unmarked_all_attacks": {
            "trials": int(all_unmarked.size),
            "rate": float(np.mean(all_unmarked > threshold)),
            "score_mean": float(all_unmarked.mean()),
            "score_std": float(all_unmarked.std()),
            "score_max": float(all_unmarked.max()),
        },
        "false_positives_unmarked_many_keys": {
            "keys": FP_KEYS,
            "trials": int(many.size),
            "rate": float(np.mean(many > threshold)),
            "score_mean": float(many.mean()),
            "score_std": float(many.std()),
            "per_key_rate_max": float(per_key.max()),
            "keys_above_1_percent": int(np.sum(per_key > 0.01)),
            "per_key_mean_score_std": float(many.mean(axis=0).std()),
        },
        "wrong_key_on_marked": {
            "trials": int(wrong.size),
            "rate": float(np.mean(wrong > threshold)),
            "score_mean": float(wrong.mean()),
            "score_std": float(wrong.std()),
            "score_max": float(wrong.max()),
        },
        "snr_db": summary(snrs),
        "segmental_snr_db": summary(seg_snrs),
        "embed_real_time_factor": summary(embed_rtf),
        "config": {
            name: getattr(wm, name)
            for name in ("BAND_LOW_HZ", "BAND_HIGH_HZ", "BAND_HZ", "N_BANDS", "EMBED_WINDOW_S", "ENVELOPE_HZ",
                         "CELL_TILT", "MAX_RIPPLE", "MAX_TOP_UP", "DETECT_RATE", "DETECT_N_FFT", "DETECT_HOP",
                         "WHITEN_HZ", "RESIDUAL_CLIP", "ACTIVE_DB", "NOISE_PERCENTILE", "BAND_SPECTRUM_SMOOTH")
        },  # fmt: skip
        "mp3": "ffmpeg -b:a 64k (libmp3lame)" if HAS_FFMPEG else "skipped: ffmpeg not installed",
        "wall_seconds": time.perf_counter() - started,
        "platform": platform.platform(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="use only the first N clips")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = run(args.limit)
    write_atomic(args.out, json.dumps(results, indent=2) + "\n")
    width = max(map(len, results["attacks"]))
    for name, row in results["attacks"].items():
        print(f"{name:<{width}}  detected {row['detection_rate']:7.2%}  false positives "
              f"{row['false_positive_rate']:6.2%}  marked score p01 {row['marked_score']['p01']:5.2f}")  # fmt: skip
    print(f"FP over {FP_KEYS} keys {results['false_positives_unmarked_many_keys']['rate']:.3%}; "
          f"SNR {results['snr_db']['min']:.1f}..{results['snr_db']['max']:.1f} dB, segmental "
          f"{results['segmental_snr_db']['mean']:.1f} dB; wrong key {results['wrong_key_on_marked']['rate']:.2%}; "
          f"-> {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
