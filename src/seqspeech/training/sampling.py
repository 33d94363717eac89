"""Training-time schedules that live in the model: scheduled sampling and decaying auxiliary-loss weights.

Models read the trainer's optimiser step from ``batch["train_step"]`` (see :mod:`seqspeech.training.trainer`) and
ask these objects for the value at that step, so the schedules are resumed exactly with the step counter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ConfigError

SAMPLING_KINDS = ("linear", "exponential", "inverse_sigmoid")


@dataclass(frozen=True)
class ScheduledSamplingConfig:
    """Teacher-forcing probability ``ε_i`` at step ``i`` (Bengio et al. 2015); each input token is the ground truth
    with probability ``ε_i``, else the model's own previous prediction.

    Kinds (``i`` counts steps after ``start_step``; before it ``ε = 1``):
        ``linear``: ``ε = max(min_prob, 1 - i / decay_steps)``.
        ``exponential``: ``ε = max(min_prob, k^i)`` with ``k = 0.5 ** (1 / decay_steps)`` (half-life
        ``decay_steps``).
        ``inverse_sigmoid``: ``ε = max(min_prob, k / (k + exp(i / k)))`` with ``k = max(1, decay_steps / 10)``.
    """

    kind: str = "linear"
    start_step: int = 0
    decay_steps: int = 10000
    min_prob: float = 0.7

    def __post_init__(self) -> None:
        if self.kind not in SAMPLING_KINDS:
            raise ConfigError(f"scheduled sampling kind must be one of {list(SAMPLING_KINDS)}, got {self.kind!r}")
        if not (self.start_step >= 0 and self.decay_steps >= 1):  # written so that NaN fails too
            raise ConfigError(
                f"scheduled sampling needs start_step >= 0 and decay_steps >= 1, got {self.start_step}, "
                f"{self.decay_steps}"
            )
        if not 0.0 <= self.min_prob <= 1.0:
            raise ConfigError(f"scheduled sampling min_prob must be in [0, 1], got {self.min_prob}")

    def teacher_forcing_prob(self, step: int) -> float:
        i = step - self.start_step
        if i <= 0:
            return 1.0
        if self.kind == "linear":
            eps = 1.0 - i / self.decay_steps
        elif self.kind == "exponential":
            eps = 0.5 ** (i / self.decay_steps)
        else:
            k = max(self.decay_steps / 10.0, 1.0)
            eps = k / (k + math.exp(min(i / k, 700.0)))
        return max(self.min_prob, eps)


@dataclass(frozen=True)
class GuidedAttentionConfig:
    """Weight of the guided-attention loss: ``weight * 0.5 ** (step / half_life)``, and 0 from ``stop_step`` on
    (None: never stop). ``sigma`` is the width of the diagonal prior (normalised positions)."""

    weight: float = 1.0
    sigma: float = 0.2
    half_life: int = 1000
    stop_step: int | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.weight) and self.weight >= 0 and math.isfinite(self.sigma) and self.sigma > 0
                and self.half_life >= 1):
            raise ConfigError(
                f"guided attention needs finite weight >= 0, finite sigma > 0, half_life >= 1; got {self.weight}, "
                f"{self.sigma}, {self.half_life}"
            )
        if self.stop_step is not None and not self.stop_step >= 0:
            raise ConfigError(f"guided attention stop_step must be None or >= 0, got {self.stop_step}")

    def weight_at(self, step: int) -> float:
        if self.stop_step is not None and step >= self.stop_step:
            return 0.0
        return self.weight * 0.5 ** (max(step, 0) / self.half_life)
