"""Training checkpoints: atomic save, safe load, rotation, averaging and RNG state capture.

A checkpoint is a plain dict saved with ``torch.save`` and read back with ``torch.load(weights_only=True)``,
so it may
hold only tensors, numbers, strings, None and lists/tuples/dicts of those -- never pickled objects. RNG states
are
converted accordingly (:func:`capture_rng_state`).

Step checkpoints are named ``step-{step:08d}.pt`` and are rotated; anything else in the folder (``best.pt``,
``averaged.pt``, ``snapshot-10min.pt``) is never removed by :func:`rotate_checkpoints`.
"""

from __future__ import annotations

import io
import os
import random
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ModelLoadError
from ..fileio import write_atomic

STEP_PATTERN = re.compile(r"^step-(\d+)\.pt$")


def step_checkpoint_name(step: int) -> str:
    """File name of the step checkpoint for ``step``: ``step-00001234.pt``."""
    return f"step-{step:08d}.pt"


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Save ``state`` atomically (temp file in the same folder, fsync, rename): never half a file."""
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    return write_atomic(path, buffer.getbuffer())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict with ``weights_only=True``; ModelLoadError naming the file if bad."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: checkpoint not found")
    with warnings.catch_warnings(record=True) as caught:  # torch warns about odd pickles before failing on them
        warnings.simplefilter("always")
        try:
            state = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as err:  # noqa: BLE001 -- the unpickler raises many types (IndexError, UnpicklingError, ...)
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelLoadError(f"{path}: not a readable checkpoint (truncated or corrupt?): {first}") from None
    for warning in caught:  # a checkpoint that loaded: its warnings still reach the user
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if not isinstance(state, dict):
        raise ModelLoadError(f"{path}: expected a checkpoint dict, got {type(state).__name__}")
    return state


def list_step_checkpoints(directory: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, path)`` of every step checkpoint in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        match = STEP_PATTERN.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The step checkpoint with the highest step in ``directory``, or None if there is none."""
    found = list_step_checkpoints(directory)
    return found[-1][1] if found else None


def rotate_checkpoints(directory: str | os.PathLike, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` step checkpoints; returns the removed paths."""
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    found = list_step_checkpoints(directory)
    removed = [path for _, path in found[:-keep]]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def average_checkpoints(paths: Sequence[str | os.PathLike]) -> dict[str, torch.Tensor]:
    """Average the model weights of several checkpoints (their ``"model"`` entry, or the dict itself).

    Floating-point tensors are averaged (in float64, cast back); integer and bool tensors (e.g. BatchNorm's
    ``num_batches_tracked``) are taken from the last checkpoint. Raises ModelLoadError on mismatched keys or
    shapes.
    """
    if not paths:
        raise ValueError("average_checkpoints needs at least one checkpoint path")
    total: dict[str, torch.Tensor] = {}
    last: dict[str, torch.Tensor] = {}
    reference_keys: set[str] | None = None
    for path in paths:
        state = load_checkpoint(path)
        weights = state.get("model", state)
        if not isinstance(weights, dict):
            raise ModelLoadError(f"{path}: no model state_dict in checkpoint")
        if reference_keys is None:
            reference_keys = set(weights)
        elif set(weights) != reference_keys:
            diff = sorted(set(weights) ^ reference_keys)[:5]
            raise ModelLoadError(f"{path}: parameter names differ from {paths[0]} (e.g. {diff})")
        for name, tensor in weights.items():
            if name in total and total[name].shape != tensor.shape:
                raise ModelLoadError(
                    f"{path}: shape of {name} is {tuple(tensor.shape)}, expected {tuple(total[name].shape)}"
                )
            if tensor.is_floating_point():
                value = tensor.detach().to(torch.float64)
                total[name] = value if name not in total else total[name] + value
            last[name] = tensor
    count = len(paths)
    return {
        name: (total[name] / count).to(tensor.dtype) if tensor.is_floating_point() else tensor.clone()
        for name, tensor in last.items()
    }


# ---------------------------------------------------------------- RNG state (weights_only-safe)
def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and (when present) CUDA RNG states as tensors, lists and numbers."""
    version, internal, gauss_next = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [int(version), [int(v) for v in internal], gauss_next],
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss_next = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss_next))
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np_state["keys"].numpy().astype(np.uint32),
            int(np_state["pos"]),
            int(np_state["has_gauss"]),
            float(np_state["cached_gaussian"]),
        )
    )
    torch.set_rng_state(state["torch"].cpu())
    cuda_states = state.get("cuda")
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states[: torch.cuda.device_count()]])
