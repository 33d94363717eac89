"""One training loop for every model family: AMP, DDP, accumulation, clipping, NaN guard, checkpoints, exact
resume.

Contracts
---------
* **Model**: any ``nn.Module`` whose ``forward(batch: dict) -> dict[str, Tensor]`` returns at least ``"loss"`` (a
  scalar already averaged over the batch). Every other scalar entry is logged (and averaged over the dev set).
  During training the batch also carries ``"train_step"`` (int, optimiser steps so far) for schedules that live
  in the model (scheduled sampling, guided-attention weight decay); evaluation batches do not.
* **Batch**: a dict of tensors (moved to the device, recursively) and other values (``"ids": list[str]`` counts
  the items; ``"num_skipped": int`` counts bad items the collate dropped; both are reported). A batch with
  ``"empty": True`` (the collate dropped every item) is counted and skipped; an epoch of nothing but empty batches
  is a :class:`TrainingError` (all the data unreadable), not an endless loop.
* **Data**: ``train_sampler`` is a *batch* sampler: ``__iter__`` yields lists of indices, ``__len__``,
  ``set_epoch(epoch)`` and optionally ``state_dict()``/``load_state_dict({"epoch", "position"})``. The trainer
  remembers ``(epoch, batches done in epoch)`` itself; on resume it calls ``set_epoch(epoch)`` then
  ``load_state_dict({"epoch": epoch, "position": done})`` so the sampler skips what was consumed (a sampler without
  ``load_state_dict`` is skipped by advancing its iterator, without loading those items). Curriculum ordering
  (shortest first in epoch 0) is the sampler's job, driven by ``set_epoch``; ``TrainerConfig.curriculum`` is
  recorded in the checkpoint for the recipe builder to pass to the sampler. A dataset with ``set_epoch(epoch)``
  gets it called too.

Exact resume: a run stopped after step k and resumed with ``fit(resume=True)`` reproduces the uninterrupted run
bitwise (CPU, ``num_workers=0``): model, optimizer, scheduler, GradScaler, counters, sampler position and the
Python, NumPy and torch RNG states are in the checkpoint, and the DataLoader draws its worker seeds from its own
generator (seeded per epoch) so creating a loader never advances the global RNG.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..errors import ConfigError, ModelLoadError, SeqSpeechError
from ..nn.precision import native_bf16
from . import distributed
from .checkpoint import (
    average_checkpoints,
    capture_rng_state,
    latest_checkpoint,
    list_step_checkpoints,
    load_checkpoint,
    restore_rng_state,
    rotate_checkpoints,
    save_checkpoint,
    step_checkpoint_name,
)
from .schedulers import SCHEDULERS, build_scheduler

AMP_MODES = ("none", "bf16", "fp16", "auto")
EARLY_STOP_MODES = ("min", "max")
LOG_FILE = "log.jsonl"
BEST_FILE = "best.pt"
AVERAGED_FILE = "averaged.pt"
TENSORBOARD_DIR = "tensorboard"

_clock: Callable[[], float] = time.perf_counter  # training wall-time source; tests monkeypatch it


class TrainingError(SeqSpeechError, RuntimeError):
    """Training cannot go on (e.g. too many non-finite losses in a row, a model without a "loss" output)."""


@dataclass(frozen=True)
class TrainerConfig:
    """How to train; every field is a plain type so a strict YAML loader can build it with
    ``TrainerConfig(**m)``.

    Stopping: whichever of ``max_steps`` (optimizer updates), ``max_epochs`` and ``max_minutes`` (training
    wall time,
    kept across resumes) comes first; at least one is required. ``snapshot_minutes`` saves
    ``snapshot-{m}min.pt`` the
    first time the training time crosses each mark. ``amp``: ``"bf16"`` autocast (CPU or CUDA; warns on a CPU
    without native bf16, where it is emulated and ~10x slower), ``"fp16"`` autocast
    with a GradScaler (CUDA only), ``"auto"`` = bf16 where the device computes it natively (CUDA with bf16
    support, a CPU with AVX512-BF16 or AMX: see :func:`seqspeech.nn.precision.native_bf16`), else none.
    ``grad_clip`` 0 or None turns
    clipping off (the norm is still logged). ``curriculum`` is passed through to the sampler by the recipe
    builder
    (the sampler orders epoch 0 shortest first); the trainer itself only calls ``sampler.set_epoch``.
    """

    max_steps: int | None = None
    max_epochs: int | None = None
    max_minutes: float | None = None
    lr: float = 1e-3
    weight_decay: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    scheduler: str = "noam"
    warmup_steps: int = 1000
    min_lr_ratio: float = 0.0
    cosine_steps: int | None = None
    grad_clip: float | None = 5.0
    accum_steps: int = 1
    amp: str = "none"
    nan_patience: int = 10
    curriculum: bool = True
    checkpoint_every: int = 500
    keep_checkpoints: int = 5
    snapshot_minutes: tuple[float, ...] = ()
    eval_every: int | None = None
    early_stop_patience: int | None = None
    early_stop_metric: str = "loss"
    early_stop_mode: str = "min"
    average_last: int = 0
    log_every: int = 50
    tensorboard: bool = True
    progress: bool = True
    seed: int = 0
    num_workers: int = 0
    device: str | None = None

    def __post_init__(self) -> None:
        # YAML gives lists; store tuples so the config stays hashable and frozen.
        if isinstance(self.betas, list):
            object.__setattr__(self, "betas", tuple(self.betas))
        if isinstance(self.snapshot_minutes, list | int | float):
            marks = (
                self.snapshot_minutes if isinstance(self.snapshot_minutes, list) else [self.snapshot_minutes]
            )
            object.__setattr__(self, "snapshot_minutes", tuple(marks))

        def fail(message: str) -> None:
            raise ConfigError(f"TrainerConfig: {message}")

        def positive_int(name: str, allow_none: bool = False, minimum: int = 1) -> None:
            value = getattr(self, name)
            if value is None and allow_none:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                fail(
                    f"{name} must be an integer >= {minimum}{' or None' if allow_none else ''}, got {value!r}"
                )

        if self.max_steps is None and self.max_epochs is None and self.max_minutes is None:
            fail("set at least one of max_steps, max_epochs, max_minutes")
        positive_int("max_steps", allow_none=True)
        positive_int("max_epochs", allow_none=True)
        if self.max_minutes is not None and not (_is_number(self.max_minutes) and self.max_minutes > 0):
            fail(f"max_minutes must be > 0 or None, got {self.max_minutes!r}")
        if not (_is_number(self.lr) and self.lr > 0):
            fail(f"lr must be > 0, got {self.lr!r}")
        if not (_is_number(self.weight_decay) and self.weight_decay >= 0):
            fail(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        if not (
            isinstance(self.betas, tuple)
            and len(self.betas) == 2
            and all(_is_number(b) and 0 <= b < 1 for b in self.betas)
        ):
            fail(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if not (_is_number(self.eps) and self.eps > 0):
            fail(f"eps must be > 0, got {self.eps!r}")
        if self.scheduler not in SCHEDULERS:
            fail(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {self.scheduler!r}")
        positive_int("warmup_steps", minimum=1 if self.scheduler == "noam" else 0)
        if not (_is_number(self.min_lr_ratio) and 0 <= self.min_lr_ratio <= 1):
            fail(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio!r}")
        positive_int("cosine_steps", allow_none=True)
        if (
            self.scheduler == "cosine"
            and self.cosine_steps is None
            and self.max_steps is None
            and self.max_epochs is None
        ):
            fail(
                "scheduler 'cosine' needs cosine_steps, max_steps or max_epochs to know where the decay ends"
            )
        if self.grad_clip is not None and not (_is_number(self.grad_clip) and self.grad_clip >= 0):
            fail(f"grad_clip must be >= 0 or None, got {self.grad_clip!r}")
        positive_int("accum_steps")
        if self.amp not in AMP_MODES:
            fail(f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        positive_int("nan_patience")
        positive_int("checkpoint_every")
        positive_int("keep_checkpoints")
        if not isinstance(self.snapshot_minutes, tuple) or not all(
            _is_number(m) and m > 0 for m in self.snapshot_minutes
        ):
            fail(f"snapshot_minutes must be a tuple of numbers > 0, got {self.snapshot_minutes!r}")
        positive_int("eval_every", allow_none=True)
        positive_int("early_stop_patience", allow_none=True)
        if not isinstance(self.early_stop_metric, str) or not self.early_stop_metric:
            fail(f"early_stop_metric must be a metric name, got {self.early_stop_metric!r}")
        if self.early_stop_mode not in EARLY_STOP_MODES:
            fail(f"early_stop_mode must be 'min' or 'max', got {self.early_stop_mode!r}")
        positive_int("average_last", minimum=0)
        if self.average_last > self.keep_checkpoints:
            fail(
                f"average_last ({self.average_last}) exceeds keep_checkpoints ({self.keep_checkpoints}): "
                "the older checkpoints would be rotated away"
            )
        positive_int("log_every")
        positive_int("seed", minimum=0)
        positive_int("num_workers", minimum=0)
        if self.device is not None and not isinstance(self.device, str):
            fail(f"device must be a string like 'cpu' or 'cuda:0', got {self.device!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class TrainResult:
    """What :meth:`Trainer.fit` did."""

    step: int
    epoch: int  # epochs completed
    stop_reason: str  # "max_steps" | "max_epochs" | "max_minutes" | "early_stop"
    best_metric: float | None
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    averaged_checkpoint: Path | None
    nan_skips: int
    skipped_items: int
    elapsed_seconds: float
    items_per_second: float
    batches_per_second: float
    dev_history: tuple[dict[str, float], ...] = field(default_factory=tuple)


@dataclass
class _Counters:
    """Mutable loop state that goes into checkpoints."""

    step: int = 0
    epoch: int = 0
    batches_done: int = 0  # batches of `epoch` consumed
    elapsed: float = 0.0  # training seconds before this fit() call
    best_metric: float | None = None
    bad_evals: int = 0
    nan_skips: int = 0
    nan_in_row: int = 0
    skipped_items: int = 0
    items: int = 0
    batches: int = 0
    snapshots_done: list[float] = field(default_factory=list)


class _SkipBatches:
    """A batch sampler view that drops the first ``skip`` batches of ``sampler`` (resume fallback)."""

    def __init__(self, sampler: Any, skip: int) -> None:
        self.sampler = sampler
        self.skip = skip

    def __iter__(self) -> Iterator[list[int]]:
        iterator = iter(self.sampler)
        for _ in range(self.skip):
            if next(iterator, None) is None:
                return
        yield from iterator

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)


def move_to_device(value: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Move every tensor in a (nested) dict/list/tuple to ``device``; other values are returned unchanged."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=non_blocking)
    if isinstance(value, Mapping):
        return {k: move_to_device(v, device, non_blocking) for k, v in value.items()}
    if isinstance(value, list):
        return [move_to_device(v, device, non_blocking) for v in value]
    if isinstance(value, tuple):
        moved = [move_to_device(v, device, non_blocking) for v in value]
        return type(value)(*moved) if hasattr(value, "_fields") else tuple(moved)
    return value


def _batch_items(batch: Mapping[str, Any]) -> int:
    """Number of items in a batch: ``len(batch["ids"])``, else the first tensor's leading size, else 1."""
    ids = batch.get("ids")
    if isinstance(ids, list | tuple):
        return len(ids)
    for value in batch.values():
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    return 1


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on matrices/kernels; none on biases and norm weights (``ndim <= 1``)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim > 1 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


class Trainer:
    """Train ``model`` on ``train_dataset`` batched by ``train_sampler`` and ``collate_fn``; see the module
    docs.

    ``evaluate_fn(model) -> dict[str, float]`` adds metrics (e.g. WER from decoding) to the dev losses; it
    runs on
    rank 0 with the unwrapped model in eval mode under ``torch.no_grad()``. ``extra_state`` (JSON-able
    metadata such
    as the model config and tokenizer) is stored in every checkpoint under ``"extra"``. Nothing is read or
    written
    until :meth:`fit`.
    """

    def __init__(
        self,
        model: nn.Module,
        train_dataset: Any,
        train_sampler: Any,
        collate_fn: Callable[[list[Any]], dict[str, Any]],
        config: TrainerConfig,
        out_dir: str | Path,
        *,
        dev_dataset: Any | None = None,
        dev_sampler: Any | None = None,
        evaluate_fn: Callable[[nn.Module], dict[str, float]] | None = None,
        extra_state: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(config, TrainerConfig):
            raise ConfigError(f"config must be a TrainerConfig, got {type(config).__name__}")
        for name in ("__iter__", "__len__", "set_epoch"):
            if not hasattr(train_sampler, name):
                raise ConfigError(
                    f"train_sampler must be a batch sampler with {name}() "
                    f"(got {type(train_sampler).__name__})"
                )
        if dev_dataset is not None and dev_sampler is None:
            raise ConfigError("dev_dataset needs a dev_sampler (a batch sampler) to batch it")
        if extra_state is not None:
            try:
                json.dumps(extra_state)
            except (TypeError, ValueError) as err:
                raise ConfigError(f"extra_state must be JSON-serialisable: {err}") from None
        self.model = model
        self.train_dataset = train_dataset
        self.train_sampler = train_sampler
        self.collate_fn = collate_fn
        self.config = config
        self.out_dir = Path(out_dir)
        self.dev_dataset = dev_dataset
        self.dev_sampler = dev_sampler
        self.evaluate_fn = evaluate_fn
        self.extra_state = extra_state or {}

    # ------------------------------------------------------------------ public
    def fit(self, resume: bool = False) -> TrainResult:
        """Train until a stop condition; ``resume=True`` continues from the newest checkpoint in out_dir."""
        run = _Run(self)
        try:
            return run.fit(resume)
        finally:
            run.close()


class _Run:
    """State of one :meth:`Trainer.fit` call (kept off the Trainer so fit() can be called again)."""

    def __init__(self, trainer: Trainer) -> None:
        self.t = trainer
        self.cfg = trainer.config
        self.progress_bar: Any = None
        self.writer: Any = None
        self.log_handle: Any = None

    # ------------------------------------------------------------------ setup
    def _setup(self, resume: bool) -> None:
        cfg, t = self.cfg, self.t
        _, _, local_rank = distributed.world_info()
        self.device = torch.device(cfg.device) if cfg.device else distributed.default_device(local_rank)
        self.rank, self.world_size = distributed.init_distributed(self.device)
        self.is_main = self.rank == 0

        self.amp = self._resolve_amp()
        random.seed(cfg.seed + self.rank)
        np.random.seed(cfg.seed + self.rank)
        torch.manual_seed(cfg.seed + self.rank)

        self.model = t.model.to(self.device)
        self.optimizer = torch.optim.AdamW(
            param_groups(self.model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps
        )
        self.scheduler = build_scheduler(
            self.optimizer,
            cfg.scheduler,
            warmup_steps=cfg.warmup_steps,
            total_steps=self._decay_steps(),
            min_lr_ratio=cfg.min_lr_ratio,
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == "fp16")
        self.c = _Counters()
        self.resumed_from: Path | None = None
        if resume:
            path = latest_checkpoint(t.out_dir)
            if path is not None:
                self._load_state(load_checkpoint(path, map_location="cpu"), path)
                self.resumed_from = path
        self.ddp_model = distributed.wrap_model(self.model, self.device)
        if self.is_main:
            t.out_dir.mkdir(parents=True, exist_ok=True)
            self.log_handle = (t.out_dir / LOG_FILE).open("a", encoding="utf-8")
            if cfg.tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter

                    self.writer = SummaryWriter(str(t.out_dir / TENSORBOARD_DIR))
                except ImportError:
                    warnings.warn(
                        "tensorboard is not installed: no TensorBoard logs (log.jsonl is still written)",
                        stacklevel=3,
                    )
            if cfg.progress:
                from tqdm import tqdm

                self.progress_bar = tqdm(
                    total=self._total_steps(),
                    initial=self.c.step,
                    unit="step",
                    file=sys.stderr,
                    dynamic_ncols=True,
                    leave=False,
                )

    def _resolve_amp(self) -> str:
        amp = self.cfg.amp
        if amp == "auto":
            return "bf16" if native_bf16(self.device) else "none"
        if amp == "fp16" and self.device.type != "cuda":
            raise ConfigError(f"amp='fp16' needs a CUDA device (got {self.device}); use 'bf16' on CPU")
        if amp == "bf16" and not native_bf16(self.device) and self.is_main:
            warnings.warn(
                f"amp='bf16' on {self.device}, which has no native bf16 (a CPU without AVX512-BF16 or AMX, or "
                "an older GPU): emulated bf16 trains about 10x slower than float32 on such a CPU; use amp: auto "
                "(bf16 only where native)",
                stacklevel=3,
            )
        return amp

    def _total_steps(self) -> int | None:
        """Optimizer steps the run will take if no other stop comes first (None: time budget only)."""
        cfg = self.cfg
        by_epochs = None
        if cfg.max_epochs is not None:
            by_epochs = cfg.max_epochs * max(1, math.ceil(len(self.t.train_sampler) / cfg.accum_steps))
        candidates = [n for n in (cfg.max_steps, by_epochs) if n is not None]
        return min(candidates) if candidates else None

    def _decay_steps(self) -> int | None:
        """Where the cosine schedule reaches its floor: ``cosine_steps``, else the run's planned length."""
        if self.cfg.scheduler != "cosine":
            return None
        return self.cfg.cosine_steps or self._total_steps()

    # ------------------------------------------------------------------ state
    def _state(self) -> dict[str, Any]:
        c = self.c
        return {
            "format": "seqspeech.trainer/1",
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": c.step,
            "epoch": c.epoch,
            "batches_done": c.batches_done,
            "elapsed_seconds": self._elapsed(),
            "rng": capture_rng_state(),
            "best_metric": c.best_metric,
            "bad_evals": c.bad_evals,
            "counters": {
                "nan_skips": c.nan_skips,
                "nan_in_row": c.nan_in_row,
                "skipped_items": c.skipped_items,
                "items": c.items,
                "batches": c.batches,
            },
            "snapshots_done": list(c.snapshots_done),
            "config": dataclasses.asdict(self.cfg),
            "extra": self.t.extra_state,
        }

    def _load_state(self, state: dict[str, Any], path: Path) -> None:
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            c = self.c
            c.step, c.epoch, c.batches_done = (
                int(state["step"]),
                int(state["epoch"]),
                int(state["batches_done"]),
            )
            c.elapsed = float(state["elapsed_seconds"])
            c.best_metric = state.get("best_metric")
            c.bad_evals = int(state.get("bad_evals", 0))
            counters = state.get("counters", {})
            c.nan_skips = int(counters.get("nan_skips", 0))
            c.nan_in_row = int(counters.get("nan_in_row", 0))
            c.skipped_items = int(counters.get("skipped_items", 0))
            c.items = int(counters.get("items", 0))
            c.batches = int(counters.get("batches", 0))
            c.snapshots_done = [float(m) for m in state.get("snapshots_done", [])]
            restore_rng_state(state["rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise ModelLoadError(
                f"{path}: cannot resume from this checkpoint: "
                f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
            ) from None

    def _save(self, path: Path) -> Path:
        return save_checkpoint(path, self._state())

    # ------------------------------------------------------------------ time and logs
    def _elapsed(self) -> float:
        return self.c.elapsed + (_clock() - self.t0)

    def _elapsed_synced(self) -> float:
        """Rank 0's training time on every rank, so time-based stops and snapshots agree across ranks."""
        if self.world_size == 1:
            return self._elapsed()
        value = torch.tensor([self._elapsed()], dtype=torch.float64, device=self.device)
        torch.distributed.broadcast(value, src=0)
        return float(value.item())

    def _log(self, record: dict[str, Any]) -> None:
        if not self.is_main:
            return
        record = {"time": round(time.time(), 3), **record}
        self.log_handle.write(json.dumps(record) + "\n")
        self.log_handle.flush()
        if self.writer is not None:
            prefix = "dev" if record.get("event") == "dev" else "train"
            for key, value in record.items():
                if key not in ("step", "time", "epoch") and _is_number(value):
                    self.writer.add_scalar(f"{prefix}/{key}", value, record.get("step", self.c.step))

    def close(self) -> None:
        if self.progress_bar is not None:
            self.progress_bar.close()
        if self.writer is not None:
            self.writer.close()
        if self.log_handle is not None:
            self.log_handle.close()

    # ------------------------------------------------------------------ loop
    def _should_stop(self) -> str | None:
        cfg, c = self.cfg, self.c
        if cfg.max_steps is not None and c.step >= cfg.max_steps:
            return "max_steps"
        if cfg.max_epochs is not None and c.epoch >= cfg.max_epochs:
            return "max_epochs"
        if cfg.max_minutes is not None and self._elapsed_synced() >= cfg.max_minutes * 60:
            return "max_minutes"
        if cfg.early_stop_patience is not None and c.bad_evals >= cfg.early_stop_patience:
            return "early_stop"
        return None

    def _loader(self, dataset: Any, batch_sampler: Any, epoch: int) -> DataLoader:
        generator = torch.Generator()
        generator.manual_seed(self.cfg.seed * 1_000_003 + epoch * 1009 + self.rank)
        return DataLoader(
            dataset,
            batch_sampler=batch_sampler,
            collate_fn=self.t.collate_fn,
            num_workers=self.cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            generator=generator,
        )

    def _epoch_loader(self) -> DataLoader:
        t, c = self.t, self.c
        t.train_sampler.set_epoch(c.epoch)
        if hasattr(t.train_dataset, "set_epoch"):
            t.train_dataset.set_epoch(c.epoch)
        sampler: Any = t.train_sampler
        if hasattr(sampler, "load_state_dict"):
            sampler.load_state_dict({"epoch": c.epoch, "position": c.batches_done})
        elif c.batches_done:
            sampler = _SkipBatches(sampler, c.batches_done)
        return self._loader(t.train_dataset, sampler, c.epoch)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp == "none":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.amp == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def fit(self, resume: bool) -> TrainResult:
        cfg, t = self.cfg, self.t
        self._setup(resume)
        c = self.c
        self.t0 = _clock()
        self.dev_history: list[dict[str, float]] = []
        last_path: Path | None = self.resumed_from
        last_saved_step = c.step if self.resumed_from is not None else -1
        self._log(
            {
                "event": "start",
                "step": c.step,
                "epoch": c.epoch,
                "resumed_from": str(self.resumed_from) if self.resumed_from else None,
                "device": str(self.device),
                "world_size": self.world_size,
                "amp": self.amp,
            }
        )
        window: dict[str, torch.Tensor] = {}
        window_steps = 0
        window_items = 0
        window_t0 = _clock()
        fit_items, fit_batches = 0, 0
        micro = 0  # micro-batches in the current accumulation window
        accum_outputs: dict[str, torch.Tensor] = {}
        stop = self._should_stop()
        non_blocking = self.device.type == "cuda"
        while stop is None:
            self.ddp_model.train()  # _evaluate() puts it back in train mode too
            epoch_from, epoch_batches, epoch_used = c.batches_done, 0, 0
            for batch in self._epoch_loader():
                c.batches_done += 1
                c.batches += 1
                fit_batches += 1
                epoch_batches += 1
                n_items = _batch_items(batch)
                c.items += n_items
                fit_items += n_items
                window_items += n_items
                skipped = batch.get("num_skipped", 0)
                if isinstance(skipped, int):
                    c.skipped_items += skipped
                if batch.get("empty") is True:  # the collate dropped every item (unreadable): nothing to learn
                    if self.world_size > 1:  # the other processes would wait for this one's gradients forever
                        raise TrainingError(
                            f"rank {self.rank}: a batch with no usable item (all {skipped} unreadable) at step "
                            f"{c.step}; under DDP every process must train on every batch: fix or drop the "
                            "unreadable items"
                        )
                    continue
                epoch_used += 1
                batch = move_to_device(batch, self.device, non_blocking)
                batch["train_step"] = c.step  # optimiser steps so far: schedules inside models read it
                micro += 1
                last_micro = micro == cfg.accum_steps
                sync = (
                    contextlib.nullcontext()
                    if last_micro or self.world_size == 1
                    else self.ddp_model.no_sync()
                )
                with sync:
                    with self._autocast():
                        outputs = self.ddp_model(batch)
                    if not isinstance(outputs, Mapping) or "loss" not in outputs:
                        raise TrainingError(
                            f"model forward must return a dict with a 'loss' entry, got "
                            f"{type(outputs).__name__}"
                            f"{' with keys ' + str(list(outputs)) if isinstance(outputs, Mapping) else ''}"
                        )
                    loss = outputs["loss"]
                    self.scaler.scale(loss.float() / cfg.accum_steps).backward()
                for key, value in outputs.items():
                    if isinstance(value, torch.Tensor) and value.dim() == 0:  # scalars only
                        value = value.detach().float().reshape(())
                        accum_outputs[key] = accum_outputs.get(key, 0.0) + value / cfg.accum_steps
                if not last_micro:
                    continue
                micro = 0
                grad_norm = self._clip()
                check = torch.stack(
                    [accum_outputs["loss"], grad_norm.float().to(accum_outputs["loss"].device)]
                )
                if self.world_size > 1:
                    check = distributed.all_reduce_sum(check.clone())
                loss_value, norm_value = check.tolist()
                bad = not math.isfinite(loss_value) or (
                    not math.isfinite(norm_value) and self.amp != "fp16"
                )
                if bad:
                    self.optimizer.zero_grad(set_to_none=True)
                    if self.amp == "fp16":
                        self.scaler.update()
                    c.nan_skips += 1
                    c.nan_in_row += 1
                    accum_outputs = {}
                    self._log(
                        {
                            "event": "nan_skip",
                            "step": c.step,
                            "epoch": c.epoch,
                            "loss": loss_value,
                            "grad_norm": norm_value,
                            "nan_skips": c.nan_skips,
                            "in_row": c.nan_in_row,
                        }
                    )
                    if c.nan_in_row >= cfg.nan_patience:
                        raise TrainingError(
                            f"{c.nan_in_row} non-finite losses or gradient norms in a row (nan_patience="
                            f"{cfg.nan_patience}) at step {c.step}, epoch {c.epoch}; last loss {loss_value}, "
                            f"grad norm {norm_value}. Lower lr, raise warmup_steps, check the data, or use "
                            f"amp='none'. See {t.out_dir / LOG_FILE}."
                        )
                    continue
                c.nan_in_row = 0
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.optimizer.zero_grad(set_to_none=True)
                lr = self.scheduler.get_last_lr()[0]
                self.scheduler.step()
                c.step += 1
                for key, value in accum_outputs.items():
                    window[key] = window.get(key, 0.0) + value
                window["grad_norm"] = window.get("grad_norm", 0.0) + grad_norm.detach().float()
                window_steps += 1
                accum_outputs = {}
                if self.progress_bar is not None:
                    self.progress_bar.update(1)
                if c.step % cfg.log_every == 0:
                    now = _clock()
                    record = {"event": "train", "step": c.step, "epoch": c.epoch, "lr": lr}
                    record.update({k: float(v) / window_steps for k, v in window.items()})
                    span = max(now - window_t0, 1e-9)
                    record.update(
                        {
                            "items_per_s": window_items / span,
                            "steps_per_s": window_steps / span,
                            "elapsed": self._elapsed(),
                            "nan_skips": c.nan_skips,
                            "skipped_items": c.skipped_items,
                        }
                    )
                    self._log(record)
                    if self.progress_bar is not None:
                        self.progress_bar.set_postfix(
                            loss=f"{record['loss']:.4g}", lr=f"{lr:.3g}", refresh=False
                        )
                    window, window_steps, window_items, window_t0 = {}, 0, 0, now
                if cfg.eval_every is not None and c.step % cfg.eval_every == 0:
                    self._evaluate()
                if c.step % cfg.checkpoint_every == 0:
                    last_path = self._checkpoint()
                    last_saved_step = c.step
                self._snapshots()
                stop = self._should_stop()
                if stop is not None:
                    break
            else:  # epoch finished
                if epoch_from == 0 and epoch_batches and not epoch_used:  # a whole epoch of empty batches
                    raise TrainingError(
                        f"epoch {c.epoch}: none of its {epoch_batches} batches had a usable item ({c.skipped_items} "
                        "unreadable items dropped so far): check that the training manifest's audio files exist "
                        "and can be read"
                    )
                c.epoch += 1
                c.batches_done = 0
                if cfg.eval_every is None and (t.dev_dataset is not None or t.evaluate_fn is not None):
                    self._evaluate()
                self._snapshots()
                stop = self._should_stop()
                if stop is None and fit_batches == 0 and c.batches_done == 0 and len(t.train_sampler) == 0:
                    raise TrainingError("train_sampler yields no batches: nothing to train on")
        if c.step != last_saved_step or last_path is None:
            last_path = self._checkpoint()
        averaged_path = self._average() if cfg.average_last else None
        best_path = t.out_dir / BEST_FILE if (t.out_dir / BEST_FILE).exists() else None
        span = max(_clock() - self.t0, 1e-9)
        result = TrainResult(
            step=c.step,
            epoch=c.epoch,
            stop_reason=stop,
            best_metric=c.best_metric,
            last_checkpoint=last_path,
            best_checkpoint=best_path,
            averaged_checkpoint=averaged_path,
            nan_skips=c.nan_skips,
            skipped_items=c.skipped_items,
            elapsed_seconds=self._elapsed(),
            items_per_second=fit_items / span,
            batches_per_second=fit_batches / span,
            dev_history=tuple(self.dev_history),
        )
        self._log(
            {
                "event": "end",
                "step": c.step,
                "epoch": c.epoch,
                "stop_reason": stop,
                "best_metric": c.best_metric,
                "nan_skips": c.nan_skips,
                "skipped_items": c.skipped_items,
                "elapsed": result.elapsed_seconds,
                "items_per_s": result.items_per_second,
                "last_checkpoint": str(last_path) if last_path else None,
            }
        )
        if self.is_main:
            best = (
                f"{cfg.early_stop_metric} {c.best_metric:.4g}" if c.best_metric is not None else "no dev eval"
            )
            print(
                f"training done ({stop}): step {c.step}, {c.epoch} epochs, "
                f"{result.elapsed_seconds / 60:.1f} min, {result.items_per_second:.1f} items/s, best {best}, "
                f"{c.nan_skips} non-finite steps skipped, "
                f"{c.skipped_items} bad items dropped; last checkpoint {last_path}",
                file=sys.stderr,
            )
        distributed.barrier()
        return result

    def _clip(self) -> torch.Tensor:
        """Unscale (fp16), clip to ``grad_clip`` and return the total gradient norm (a 0-dim tensor)."""
        self.scaler.unscale_(self.optimizer)
        params = [p for p in self.model.parameters() if p.grad is not None]
        if not params:
            return torch.zeros((), device=self.device)
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip else math.inf
        return torch.nn.utils.clip_grad_norm_(params, max_norm)

    def _checkpoint(self) -> Path:
        path = self.t.out_dir / step_checkpoint_name(self.c.step)
        if self.is_main:
            self._save(path)
            rotate_checkpoints(self.t.out_dir, self.cfg.keep_checkpoints)
        return path

    def _snapshots(self) -> None:
        if not self.cfg.snapshot_minutes:
            return
        elapsed = self._elapsed_synced()
        for mark in self.cfg.snapshot_minutes:
            if mark not in self.c.snapshots_done and elapsed >= mark * 60:
                self.c.snapshots_done.append(float(mark))
                if self.is_main:
                    path = self._save(self.t.out_dir / f"snapshot-{mark:g}min.pt")
                    self._log({"event": "snapshot", "step": self.c.step, "minutes": mark, "path": str(path)})

    def _average(self) -> Path | None:
        path = self.t.out_dir / AVERAGED_FILE
        if self.is_main:
            paths = [p for _, p in list_step_checkpoints(self.t.out_dir)][-self.cfg.average_last :]
            state = {
                "format": "seqspeech.trainer/1",
                "model": average_checkpoints(paths),
                "step": self.c.step,
                "averaged_from": [p.name for p in paths],
                "config": dataclasses.asdict(self.cfg),
                "extra": self.t.extra_state,
            }
            save_checkpoint(path, state)
        return path

    @torch.no_grad()
    def _evaluate(self) -> dict[str, float]:
        t, c, cfg = self.t, self.c, self.cfg
        self.model.eval()
        sums: dict[str, float] = {}
        results: dict[str, float] = {}
        try:
            if t.dev_dataset is not None:
                names: list[str] = []
                totals: list[torch.Tensor] = []
                count = 0
                for batch in self._loader(t.dev_dataset, t.dev_sampler, 0):
                    if batch.get("empty") is True:  # every item unreadable (the collate counted them)
                        continue
                    n = _batch_items(batch)
                    with self._autocast():
                        outputs = self.model(move_to_device(batch, self.device))
                    for key, value in outputs.items():
                        if isinstance(value, torch.Tensor) and value.dim() == 0:  # scalars only
                            if key not in names:
                                names.append(key)
                                totals.append(torch.zeros((), dtype=torch.float64, device=self.device))
                            totals[names.index(key)] += value.detach().double().reshape(()) * n
                    count += n
                packed = torch.stack(
                    [*totals, torch.tensor(float(count), dtype=torch.float64, device=self.device)]
                )
                packed = distributed.all_reduce_sum(packed).tolist()
                sums = {k: v / max(packed[-1], 1.0) for k, v in zip(names, packed[:-1], strict=True)}
                results.update(sums)
            if t.evaluate_fn is not None:
                extra = t.evaluate_fn(self.model) if self.is_main else None
                extra = distributed.broadcast_object(extra)
                results.update({k: float(v) for k, v in dict(extra).items()})
        finally:
            self.model.train()
        if not results:
            return results
        self.dev_history.append({"step": c.step, **results})
        if cfg.early_stop_metric not in results:
            raise ConfigError(
                f"early_stop_metric {cfg.early_stop_metric!r} is not among the dev results {sorted(results)}"
            )
        metric = results[cfg.early_stop_metric]
        better = c.best_metric is None or (
            metric < c.best_metric if cfg.early_stop_mode == "min" else metric > c.best_metric
        )
        if better and math.isfinite(metric):
            c.best_metric = float(metric)
            c.bad_evals = 0
            if self.is_main:
                self._save(t.out_dir / BEST_FILE)
        else:
            c.bad_evals += 1
        self._log(
            {
                "event": "dev",
                "step": c.step,
                "epoch": c.epoch,
                **results,
                "best": c.best_metric,
                "bad_evals": c.bad_evals,
            }
        )
        return results
