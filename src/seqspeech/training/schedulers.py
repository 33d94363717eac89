"""Learning-rate schedules as `torch.optim.lr_scheduler.LambdaLR` factories.

Each schedule is a small callable object mapping the scheduler's step counter (0 before the first optimizer
step)
to a factor of the base learning rate. The counter is shifted by one so the first update already uses a
non-zero
rate: update number ``s = step + 1`` (1-based) gets ``factor(s)``. Objects (not lambdas) are used so that
``LambdaLR.state_dict()`` holds plain numbers and loads with ``torch.load(weights_only=True)``.

    noam      min(s / warmup, sqrt(warmup / s))  -> rises linearly to 1.0 at s = warmup, then decays as
    1/sqrt(s)
    cosine    s / warmup during warmup, then cosine from 1.0 down to ``min_lr_ratio`` at ``total_steps``, flat
    after
    constant  s / warmup during warmup, then 1.0

The classic Noam formula ``d_model**-0.5 * min(s**-0.5, s * warmup**-1.5)`` is the same curve up to a
constant; here
it is scaled so its peak equals the optimizer's ``lr``.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from ..errors import ConfigError

SCHEDULERS = ("noam", "cosine", "constant")


class NoamFactor:
    """``min(s / warmup, sqrt(warmup / s))`` for 1-based update ``s``: peak 1.0 at ``s == warmup``."""

    def __init__(self, warmup_steps: int) -> None:
        if warmup_steps < 1:
            raise ConfigError(f"noam schedule needs warmup_steps >= 1, got {warmup_steps}")
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: int) -> float:
        s = step + 1
        return min(s / self.warmup_steps, math.sqrt(self.warmup_steps / s))


class CosineFactor:
    """Linear warmup to 1.0, then half a cosine down to ``min_lr_ratio`` at ``total_steps``, flat after."""

    def __init__(self, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0) -> None:
        if warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be >= 0, got {warmup_steps}")
        if total_steps < 1:
            raise ConfigError(f"cosine schedule needs total_steps >= 1, got {total_steps}")
        if not 0.0 <= min_lr_ratio <= 1.0:
            raise ConfigError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.min_lr_ratio = float(min_lr_ratio)

    def __call__(self, step: int) -> float:
        s = step + 1
        if s < self.warmup_steps:
            return s / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (s - self.warmup_steps) / span)
        return self.min_lr_ratio + (1.0 - self.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class ConstantFactor:
    """Linear warmup to 1.0, then constant."""

    def __init__(self, warmup_steps: int) -> None:
        if warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: int) -> float:
        if self.warmup_steps == 0:
            return 1.0
        return min(1.0, (step + 1) / self.warmup_steps)


def noam_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int) -> LambdaLR:
    """Noam (inverse square root) schedule whose peak, at update ``warmup_steps``, is the optimizer's lr."""
    return LambdaLR(optimizer, NoamFactor(warmup_steps))


def cosine_scheduler(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0
) -> LambdaLR:
    """Linear warmup, then cosine decay to ``min_lr_ratio * lr`` at ``total_steps``."""
    return LambdaLR(optimizer, CosineFactor(warmup_steps, total_steps, min_lr_ratio))


def constant_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int = 0) -> LambdaLR:
    """Linear warmup, then the optimizer's lr."""
    return LambdaLR(optimizer, ConstantFactor(warmup_steps))


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    name: str,
    *,
    warmup_steps: int,
    total_steps: int | None = None,
    min_lr_ratio: float = 0.0,
) -> LambdaLR:
    """The schedule called ``name`` (see :data:`SCHEDULERS`); ``"cosine"`` needs ``total_steps``."""
    if name == "noam":
        return noam_scheduler(optimizer, warmup_steps)
    if name == "cosine":
        if total_steps is None:
            raise ConfigError("cosine schedule needs total_steps (set cosine_steps or max_steps)")
        return cosine_scheduler(optimizer, warmup_steps, total_steps, min_lr_ratio)
    if name == "constant":
        return constant_scheduler(optimizer, warmup_steps)
    raise ConfigError(f"unknown scheduler {name!r}; expected one of {', '.join(SCHEDULERS)}")
