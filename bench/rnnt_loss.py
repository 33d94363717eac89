"""RNN-T loss cost: full joiner + ``rnnt_loss`` vs k2-style simple + pruned (``prune_range`` S) on one batch.

Setting: B=16, T=250 encoder frames, U=60 labels, V=500, a joiner of hidden size 256 (enc proj + pred proj -> tanh ->
Linear(256, V)); the pruned variant adds the simple loss's projections to V (``Linear(256, V)`` each, as icefall)
and uses ``loss = 0.5 * simple + pruned``. Every sequence is full length (the worst case).

Each variant runs in a fresh subprocess and reports, for one training step (joiner + loss, forward + backward):

* ``kept_bytes``: the size of the big tensors autograd keeps for backward — the (B, T, U+1, V) logits and the
  (B, T, U+1, 256) tanh activations for the full loss; the (B, T, S, V) / (B, T, S, 256) band plus the simple loss's
  (B, T, V) and (B, U+1, V) tensors for the pruned one (exact, from the shapes);
* ``peak_rss_delta_bytes``: the process's peak resident set (``resource.getrusage``) during the first step minus
  the peak before it (the inputs and parameters already allocated);
* ``step_s``: wall time of a step (median of ``--repeats`` after the first), and ``loss_only_s``: the loss alone,
  forward + backward, on ready logits (median of two).

Writes bench/results/rnnt_loss.json with ``ratio`` = full / pruned for each figure.

    python bench/rnnt_loss.py                  # both variants, 2 timed steps each
    python bench/rnnt_loss.py --repeats 3 --prune-range 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from seqspeech.fileio import write_atomic
from seqspeech.losses import prune_band, pruned_rnnt_loss, rnnt_loss, simple_rnnt_loss

RESULTS = ROOT / "bench" / "results" / "rnnt_loss.json"
BATCH, FRAMES, LABELS, VOCAB = 16, 250, 60, 500
ENC_DIM = PRED_DIM = 256
JOINER_DIM = 256
SIMPLE_SCALE = 0.5
FLOAT_BYTES = 4


class Joiner(nn.Module):
    """``tanh(enc_proj(enc) + pred_proj(pred)) -> Linear(JOINER_DIM, V)`` on whatever grid the inputs broadcast to."""

    def __init__(self) -> None:
        super().__init__()
        self.enc_proj = nn.Linear(ENC_DIM, JOINER_DIM)
        self.pred_proj = nn.Linear(PRED_DIM, JOINER_DIM)
        self.out = nn.Linear(JOINER_DIM, VOCAB)

    def forward(self, enc_band: torch.Tensor, pred_band: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(enc_band + pred_band))


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def child(variant: str, repeats: int, prune_range: int) -> dict:
    torch.manual_seed(0)
    joiner = Joiner()
    simple_am, simple_lm = nn.Linear(ENC_DIM, VOCAB), nn.Linear(PRED_DIM, VOCAB)
    enc = torch.randn(BATCH, FRAMES, ENC_DIM, requires_grad=True)
    pred = torch.randn(BATCH, LABELS + 1, PRED_DIM, requires_grad=True)
    targets = torch.randint(1, VOCAB, (BATCH, LABELS))
    frames = torch.full((BATCH,), FRAMES)
    labels = torch.full((BATCH,), LABELS)
    cols = LABELS + 1

    def step() -> float:
        if variant == "full":  # the projections run once, then broadcast to the (B, T, U+1, D) grid
            hidden = torch.tanh(joiner.enc_proj(enc)[:, :, None, :] + joiner.pred_proj(pred)[:, None, :, :])
            loss = rnnt_loss(joiner.out(hidden), targets, frames, labels)
        else:
            simple, ranges = simple_rnnt_loss(simple_am(enc), simple_lm(pred), targets, frames, labels,
                                              prune_range=prune_range)
            am_band, lm_band = prune_band(joiner.enc_proj(enc), joiner.pred_proj(pred), ranges)
            logits = joiner.out(torch.tanh(am_band + lm_band))
            loss = SIMPLE_SCALE * simple + pruned_rnnt_loss(logits, ranges, targets, frames, labels)
        loss.backward()
        return float(loss)

    before = peak_rss_bytes()
    start = time.perf_counter()
    loss_value = step()
    first_s = time.perf_counter() - start
    peak_delta = peak_rss_bytes() - before
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)

    width = min(prune_range, cols)
    if variant == "full":
        kept = {"logits": BATCH * FRAMES * cols * VOCAB * FLOAT_BYTES,
                "joiner_hidden": BATCH * FRAMES * cols * JOINER_DIM * FLOAT_BYTES}
        logits_shape = (BATCH, FRAMES, cols, VOCAB)
    else:
        kept = {"logits": BATCH * FRAMES * width * VOCAB * FLOAT_BYTES,
                "joiner_hidden": BATCH * FRAMES * width * JOINER_DIM * FLOAT_BYTES,
                "simple_am_lm": 2 * BATCH * (FRAMES + cols) * VOCAB * FLOAT_BYTES}  # projections and their exp
        logits_shape = (BATCH, FRAMES, width, VOCAB)

    loss_times = []
    for _ in range(2):
        logits = torch.randn(logits_shape, requires_grad=True)
        start = time.perf_counter()
        if variant == "full":
            rnnt_loss(logits, targets, frames, labels).backward()
        else:
            ranges = (torch.linspace(0, cols - width, FRAMES).long()[None, :, None] + torch.arange(width)).expand(
                BATCH, -1, -1).contiguous()
            pruned_rnnt_loss(logits, ranges, targets, frames, labels).backward()
        loss_times.append(time.perf_counter() - start)
        del logits

    return {
        "variant": variant,
        "logits_shape": list(logits_shape),
        "loss": loss_value,
        "kept_bytes": sum(kept.values()),
        "kept_bytes_parts": kept,
        "peak_rss_delta_bytes": peak_delta,
        "first_step_s": round(first_s, 3),
        "step_s": round(statistics.median(times), 3) if times else round(first_s, 3),
        "step_times_s": [round(t, 3) for t in times],
        "loss_only_s": round(statistics.median(loss_times), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2, help="timed steps after the first (default 2)")
    parser.add_argument("--prune-range", type=int, default=5)
    parser.add_argument("--child", choices=["full", "pruned"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.repeats, args.prune_range)))
        return

    results = {}
    for variant in ("full", "pruned"):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", variant, "--repeats", str(args.repeats),
             "--prune-range", str(args.prune_range)],
            capture_output=True, text=True, check=True,
        )
        results[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{variant}: {json.dumps(results[variant])}", flush=True)
    full, pruned = results["full"], results["pruned"]
    report = {
        "benchmark": "rnnt_loss",
        "setting": {"batch": BATCH, "frames": FRAMES, "labels": LABELS, "vocab": VOCAB, "joiner_dim": JOINER_DIM,
                    "prune_range": args.prune_range, "simple_scale": SIMPLE_SCALE, "dtype": "float32",
                    "device": "cpu", "step": "joiner + loss, forward + backward"},
        "variants": results,
        "ratio": {
            "kept_bytes": round(full["kept_bytes"] / pruned["kept_bytes"], 2),
            "peak_rss_delta": round(full["peak_rss_delta_bytes"] / max(pruned["peak_rss_delta_bytes"], 1), 2),
            "step_time": round(full["step_s"] / pruned["step_s"], 2),
            "loss_only_time": round(full["loss_only_s"] / pruned["loss_only_s"], 2),
        },
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                        "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
    }
    write_atomic(RESULTS, json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["ratio"]))


if __name__ == "__main__":
    main()
