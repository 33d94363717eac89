"""Training: one loop for every model family (AMP, DDP, accumulation, clipping, NaN guard, resume)."""

from .checkpoint import (
    average_checkpoints,
    latest_checkpoint,
    load_checkpoint,
    rotate_checkpoints,
    save_checkpoint,
)
from .distributed import world_info
from .schedulers import build_scheduler, constant_scheduler, cosine_scheduler, noam_scheduler
from .trainer import Trainer, TrainerConfig, TrainingError, TrainResult

__all__ = [
    "Trainer",
    "TrainerConfig",
    "TrainResult",
    "TrainingError",
    "average_checkpoints",
    "build_scheduler",
    "constant_scheduler",
    "cosine_scheduler",
    "latest_checkpoint",
    "load_checkpoint",
    "noam_scheduler",
    "rotate_checkpoints",
    "save_checkpoint",
    "world_info",
]
