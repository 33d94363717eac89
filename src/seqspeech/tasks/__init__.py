"""Training tasks: a recipe's ``task`` key -> how to validate it and how to train it.

Each task module supplies ``load_recipe(mapping, where) -> recipe dataclass`` and
``train(recipe, out_dir, resume=...) -> summary dict``. The registry is a plain dict; later families (LAS,
transducers, TTS, translation) add their entry here.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..config import apply_overrides, load_yaml
from ..errors import ConfigError


@dataclass(frozen=True)
class Task:
    module: str  # imported on use, so `seqspeech --help` stays fast
    load: str = "load_recipe"
    train: str = "train"

    def function(self, name: str) -> Callable[..., Any]:
        return getattr(importlib.import_module(self.module), name)


TASKS: dict[str, Task] = {
    "asr_ctc": Task("seqspeech.tasks.asr_ctc", train="train_ctc"),
    "asr_attention": Task("seqspeech.tasks.asr_attention", train="train_attention"),
    "tts": Task("seqspeech.tasks.tts", train="train_tts"),
}


def read_recipe(path: str | os.PathLike, overrides: Sequence[str] = ()) -> tuple[Task, Any]:
    """Parse, override and strictly validate a recipe file; returns its task and the recipe object."""
    data = apply_overrides(load_yaml(path), overrides)
    name = data.get("task")
    if name not in TASKS:
        raise ConfigError(f"{path}: 'task' must be one of {sorted(TASKS)}, got {name!r}")
    task = TASKS[name]
    return task, task.function(task.load)(data, str(path))


def train_recipe(path: str | os.PathLike, out_dir: str | os.PathLike, *, overrides: Sequence[str] = (),
                 resume: bool = False) -> dict[str, Any]:
    task, recipe = read_recipe(path, overrides)
    return task.function(task.train)(recipe, out_dir, resume=resume)
