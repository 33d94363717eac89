"""Training tasks: a recipe's ``task`` key -> how to validate it and how to train it.

Each task module supplies ``load_recipe(mapping, where) -> recipe dataclass`` and
``train(recipe, out_dir, resume=...) -> summary dict``. The registry is a plain dict; later families (LAS,
transducers, TTS, translation) add their entry here.
"""

from __future__ import annotations

import importlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..config import apply_overrides, check_key, load_yaml
from ..errors import ConfigError, SeqSpeechError


@dataclass(frozen=True)
class Task:
    module: str  # imported on use, so `seqspeech --help` stays fast
    recipe: str  # the recipe dataclass: its fields are the keys a recipe (and --set) may name
    load: str = "load_recipe"
    train: str = "train"

    def function(self, name: str) -> Callable[..., Any]:
        return getattr(importlib.import_module(self.module), name)


TASKS: dict[str, Task] = {
    "asr_ctc": Task("seqspeech.tasks.asr_ctc", "CTCRecipe", train="train_ctc"),
    "asr_attention": Task("seqspeech.tasks.asr_attention", "AttentionRecipe", train="train_attention"),
    "asr_transducer": Task("seqspeech.tasks.asr_transducer", "TransducerRecipe", train="train_transducer"),
    "tts": Task("seqspeech.tasks.tts", "TTSRecipe", train="train_tts"),
    "mt": Task("seqspeech.tasks.mt", "MTRecipe", train="train_mt"),
}


def read_recipe(path: str | os.PathLike, overrides: Sequence[str] = ()) -> tuple[Task, Any]:
    """Parse, override and strictly validate a recipe file; returns its task and the recipe object.

    Errors name the file and the key (``recipe.yaml: train.max_steps: expected an integer``); an override that
    names an unknown key, or has no ``=``, is reported as that ``--set``'s mistake.
    """
    data = apply_overrides(load_yaml(path), overrides)
    name = data.get("task")
    if name not in TASKS:
        raise ConfigError(f"{path}: 'task' must be one of {sorted(TASKS)}, got {name!r}")
    task = TASKS[name]
    recipe_cls = task.function(task.recipe)
    for item in overrides:
        check_key(recipe_cls, item.partition("=")[0].strip(), where=f"--set {item}")
    try:
        return task, task.function(task.load)(data, "")
    except ConfigError as e:
        for item in reversed(overrides):  # a bad value given with --set is that --set's mistake
            if str(e).startswith(f"{item.partition('=')[0].strip()}: "):
                raise ConfigError(f"--set {item}: {e}") from None
        raise ConfigError(f"{path}: {e}") from None


def check_run_folder(out_dir: str | os.PathLike, *, resume: bool) -> Path:
    """``out_dir`` once it can hold a run: not a file; with ``resume``, a folder with a step checkpoint; without,
    no step checkpoint (a new run would mix its checkpoints with the old run's, and a later resume would pick the
    old run's newest).

    Raises:
        ConfigError: naming the folder and the problem.
    """
    from ..training.checkpoint import latest_checkpoint

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a folder; --out names the run folder")
    newest = latest_checkpoint(out)
    if resume and newest is None:
        where = "does not exist" if not out.exists() else "holds no checkpoint (step-*.pt)"
        raise ConfigError(f"{out}: nothing to resume: the run folder {where}; run without --resume to start over")
    if not resume and newest is not None:
        raise ConfigError(f"{out}: already holds a run (newest checkpoint {newest.name}); add --resume to continue "
                          "it, or give another --out to start a new one")
    return out


def train_recipe(path: str | os.PathLike, out_dir: str | os.PathLike, *, overrides: Sequence[str] = (),
                 resume: bool = False) -> dict[str, Any]:
    """Validate the recipe and the run folder, then train. A run folder this call made is removed again when the
    run fails with a :class:`~seqspeech.errors.SeqSpeechError` before the trainer started (bad or unreadable data
    found while preparing: no log, no checkpoint yet), so a failed start leaves no half-made run behind; a run that
    failed while training keeps its log."""
    task, recipe = read_recipe(path, overrides)
    out = check_run_folder(out_dir, resume=resume)
    made = not out.exists()
    try:
        return task.function(task.train)(recipe, out, resume=resume)
    except SeqSpeechError:
        _remove_unstarted(out, made)
        raise


def _remove_unstarted(out: Path, made: bool) -> None:
    from ..training.checkpoint import latest_checkpoint
    from ..training.distributed import world_info
    from ..training.trainer import LOG_FILE

    started = (out / LOG_FILE).exists() or latest_checkpoint(out) is not None
    if made and world_info()[0] == 0 and out.is_dir() and not started:
        shutil.rmtree(out, ignore_errors=True)
