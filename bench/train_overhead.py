#!/usr/bin/env python
"""Trainer overhead: a bare PyTorch loop vs ``seqspeech.training.Trainer.fit`` on the same model and batches.

Both sides train the same small model (a Conformer CTC encoder when ``seqspeech.nn.conformer`` is importable,
else
a Transformer stand-in of similar size) from the same initial weights on the same precomputed batches with
AdamW
and gradient clipping at 5. The trainer runs at realistic defaults (log every 50 steps, TensorBoard, progress
bar,
Noam schedule, NaN guard) with ``checkpoint_every`` larger than the run, so the only checkpoint is the final
one,
which is counted in the whole-run time. Each side runs ``--repeats`` times alternately. The headline ratio
compares the median step interval (time between consecutive forward calls, loop work included), which shrugs
off
bursts of CPU contention; the whole-run wall-time ratio is reported too.
Target: trainer overhead <= 5 %. Writes bench/results/train_overhead.json.

    python bench/train_overhead.py              # 200 steps, 3 repeats
    python bench/train_overhead.py --quick      # 30 steps, 2 repeats, 2 layers
    python bench/train_overhead.py --steps 500
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from seqspeech.fileio import write_atomic  # noqa: E402
from seqspeech.training import Trainer, TrainerConfig  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "train_overhead.json"
FEATURES = 80
VOCAB = 32
GRAD_CLIP = 5.0
LR = 1e-3


class CTCModel(nn.Module):
    """Encoder -> Linear(D, VOCAB) -> CTC loss; ``forward(batch) -> {"loss"}`` (the trainer's contract)."""

    def __init__(self, encoder: nn.Module, d_model: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(d_model, VOCAB)
        self.stamps: list[float] = []  # perf_counter() at each forward call: step intervals, loop included

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        self.stamps.append(time.perf_counter())
        y, lens = self.encoder(batch["x"], batch["x_lens"])
        log_probs = self.head(y).log_softmax(-1).float().transpose(0, 1)  # (T', B, V)
        loss = nn.functional.ctc_loss(
            log_probs, batch["targets"], lens, batch["target_lens"], zero_infinity=True
        )
        return {"loss": loss}


class TransformerStandIn(nn.Module):
    """Stride-4 frame stacking + Transformer encoder: ``(x (B, T, F), lens) -> (y (B, T/4, D), lens/4)``."""

    def __init__(self, d_model: int, num_layers: int) -> None:
        super().__init__()
        self.proj = nn.Linear(FEATURES * 4, d_model)
        layer = nn.TransformerEncoderLayer(d_model, 4, 4 * d_model, dropout=0.1, batch_first=True)
        self.layers = nn.TransformerEncoder(layer, num_layers)

    def forward(self, x: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, f = x.shape
        t4 = t // 4
        y = self.proj(x[:, : t4 * 4].reshape(b, t4, 4 * f))
        lens = lens // 4
        pad = torch.arange(t4, device=x.device)[None, :] >= lens[:, None]
        return self.layers(y, src_key_padding_mask=pad), lens


def build_model(d_model: int, num_layers: int, seed: int, device: str = "cpu") -> tuple[nn.Module, str]:
    torch.manual_seed(seed)
    try:
        from seqspeech.nn.conformer import ConformerEncoder
    except ImportError:
        model, name = CTCModel(TransformerStandIn(d_model, num_layers), d_model), "transformer-stand-in"
    else:
        encoder = ConformerEncoder(FEATURES, d_model=d_model, num_layers=num_layers, num_heads=4)
        model, name = CTCModel(encoder, d_model), "seqspeech.nn.conformer.ConformerEncoder"
    return model.to(device), name


def make_batches(n: int, batch_size: int, frames: int, seed: int) -> list[dict[str, Any]]:
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        x_lens = torch.randint(frames // 2, frames + 1, (batch_size,), generator=g)
        x_lens[0] = frames
        target_lens = torch.clamp(x_lens // 12, min=1)
        batches.append(
            {
                "ids": [f"utt{i}" for i in range(batch_size)],
                "x": torch.randn(batch_size, frames, FEATURES, generator=g),
                "x_lens": x_lens,
                "targets": torch.randint(1, VOCAB, (batch_size, int(target_lens.max())), generator=g),
                "target_lens": target_lens,
            }
        )
    return batches


class ListSampler:
    """Batch sampler over precomputed batches: batch ``i`` is dataset item ``i``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def set_epoch(self, epoch: int) -> None:
        pass

    def __iter__(self):
        return iter([[i] for i in range(self.n)])

    def __len__(self) -> int:
        return self.n


def first_item(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate for :class:`ListSampler`: each "batch" of one dataset item is a whole precomputed batch."""
    return items[0]


def median_step(model: CTCModel) -> float:
    """Median seconds between consecutive forward calls: a whole step plus the loop's own work, robust to
    bursts of CPU contention from other processes."""
    gaps = sorted(b - a for a, b in zip(model.stamps, model.stamps[1:], strict=False))
    return gaps[len(gaps) // 2] if gaps else float("nan")


def run_bare(batches: list[dict[str, Any]], steps: int, args: argparse.Namespace) -> tuple[float, float]:
    model, _ = build_model(args.d_model, args.layers, seed=0, device=args.device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.98), weight_decay=1e-2)
    start = time.perf_counter()
    for step in range(steps):
        batch = {
            k: v.to(args.device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batches[step % len(batches)].items()
        }  # what the trainer does per batch, too
        loss = model(batch)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
    return time.perf_counter() - start, median_step(model)


def run_trainer(batches: list[dict[str, Any]], steps: int, args: argparse.Namespace) -> tuple[float, float]:
    model, _ = build_model(args.d_model, args.layers, seed=0, device=args.device)
    config = TrainerConfig(
        max_steps=steps,
        lr=LR,
        grad_clip=GRAD_CLIP,
        warmup_steps=100,
        log_every=50,
        checkpoint_every=10**9,
        tensorboard=True,
        progress=True,
        device=args.device,
    )
    with tempfile.TemporaryDirectory() as out_dir:
        trainer = Trainer(model, batches, ListSampler(len(batches)), first_item, config, out_dir)
        start = time.perf_counter()
        trainer.fit()
        return time.perf_counter() - start, median_step(model)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="optimizer steps per run (default 200, quick 30)"
    )
    parser.add_argument("--quick", action="store_true", help="30 steps, 2 repeats, 2 layers")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--frames", type=int, default=300, help="feature frames per utterance (10 ms each)")
    parser.add_argument("--d-model", type=int, default=144)
    parser.add_argument("--layers", type=int, default=None, help="encoder layers (default 4, quick 2)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    steps = args.steps or (30 if args.quick else 200)
    repeats = args.repeats or (2 if args.quick else 3)
    args.layers = args.layers or (2 if args.quick else 4)
    torch.set_num_threads(args.threads)

    batches = make_batches(min(steps, 50), args.batch_size, args.frames, seed=1)
    model, model_name = build_model(args.d_model, args.layers, seed=0)
    params = sum(p.numel() for p in model.parameters())
    print(
        f"model: {model_name}, {params / 1e6:.2f} M parameters; {steps} steps x batch {args.batch_size} x "
        f"{args.frames} frames; {repeats} repeat(s); device {args.device}",
        file=sys.stderr,
    )

    run_bare(batches, 3, args)  # warm-up: allocator, thread pool, kernels
    bare_runs, trainer_runs = [], []
    for _ in range(repeats):
        bare_runs.append(run_bare(batches, steps, args))
        trainer_runs.append(run_trainer(batches, steps, args))
        print(
            f"bare {bare_runs[-1][0]:.2f} s (median step {1e3 * bare_runs[-1][1]:.1f} ms), trainer "
            f"{trainer_runs[-1][0]:.2f} s (median step {1e3 * trainer_runs[-1][1]:.1f} ms)",
            file=sys.stderr,
        )
    bare, trained = min(t for t, _ in bare_runs), min(t for t, _ in trainer_runs)
    bare_step, trainer_step = min(m for _, m in bare_runs), min(m for _, m in trainer_runs)
    result = {
        "benchmark": "train_overhead",
        "model": model_name,
        "parameters": params,
        "d_model": args.d_model,
        "layers": args.layers,
        "steps": steps,
        "batch_size": args.batch_size,
        "frames": args.frames,
        "repeats": repeats,
        "device": args.device,
        "threads": args.threads,
        "bare_median_step_ms": round(1e3 * bare_step, 3),
        "trainer_median_step_ms": round(1e3 * trainer_step, 3),
        "ratio": round(trainer_step / bare_step, 4),
        "overhead_percent": round(100 * (trainer_step / bare_step - 1), 2),
        "bare_total_seconds": round(bare, 4),
        "trainer_total_seconds": round(trained, 4),
        "total_ratio": round(trained / bare, 4),
        "bare_total_seconds_all": [round(t, 4) for t, _ in bare_runs],
        "trainer_total_seconds_all": [round(t, 4) for t, _ in trainer_runs],
        "target_overhead_percent": 5.0,
        "trainer_settings": "log_every=50, tensorboard, progress bar, noam, grad_clip=5",
        "ratio_note": "ratio = median step interval (trainer / bare), robust to CPU contention; "
        "total_ratio = whole "
        "run wall time incl. the trainer's set-up (TensorBoard import) and its final checkpoint",
        "quick": args.quick,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    write_atomic(RESULTS, json.dumps(result, indent=2) + "\n")
    print(
        f"trainer/bare step-time ratio {result['ratio']:.3f} ({result['overhead_percent']:+.1f} %, target <= "
        f"+5 %); whole-run ratio {result['total_ratio']:.3f}; wrote {RESULTS}"
    )


if __name__ == "__main__":
    main()
