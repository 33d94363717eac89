"""The bytes of a model package, shared by every family (ASR in :mod:`seqspeech.asr.package`, TTS in
:mod:`seqspeech.tts.package`): one safetensors file holding the weights and string metadata, or a trainer
checkpoint (``*.pt``) carrying the same metadata in its ``extra`` state.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Mapping

import torch

from .errors import ModelLoadError
from .fileio import write_atomic

FORMAT_PREFIX = "seqspeech."


def write_weights(path: str | Path, state_dict: Mapping[str, torch.Tensor], metadata: dict[str, str], *,
                  dtype: torch.dtype = torch.float16) -> Path:
    """One safetensors file, written atomically: float tensors cast to ``dtype``, others kept."""
    from safetensors.torch import save

    tensors = {
        k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous() for k, v in state_dict.items()
    }
    return write_atomic(Path(path), save(tensors, metadata=metadata))


def read_metadata(path: Path) -> dict[str, str]:
    """The string metadata of a safetensors file (ModelLoadError naming it when unreadable)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError) as e:
        raise ModelLoadError(f"{path}: not a readable safetensors file ({e})") from None


def read_weights(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """(metadata, float32 state dict) of a safetensors file."""
    from safetensors import SafetensorError, safe_open

    meta = read_metadata(path)
    try:
        with safe_open(str(path), "pt") as handle:
            state = {k: handle.get_tensor(k) for k in handle.keys()}
    except (SafetensorError, OSError) as e:
        raise ModelLoadError(f"{path}: unreadable weights ({e})") from None
    return meta, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def checkpoint_package(path: Path, keys: tuple[str, ...] = ("package",)) -> tuple[dict[str, str], dict] | None:
    """(package metadata + ``extra`` with the recipe's decode section, model state) of a trainer checkpoint, or
    None when it carries no model description under any of ``keys``."""
    from .training.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    extra = state.get("extra") or {}
    if not isinstance(extra, dict):
        return None
    meta = next((extra[k] for k in keys if isinstance(extra.get(k), dict)), None)
    if meta is None:
        return None
    decode = (extra.get("recipe") or {}).get("decode") or {}
    return {**meta, "extra": json.dumps({"decode": decode})}, state["model"]


def format_family(meta: Mapping[str, str]) -> str | None:
    """``"seqspeech.<family>"`` -> family, else None."""
    fmt = meta.get("format", "")
    return fmt.removeprefix(FORMAT_PREFIX) if fmt.startswith(FORMAT_PREFIX) else None


def json_field(meta: Mapping[str, str], key: str, where: str) -> Any:
    try:
        return json.loads(meta[key])
    except KeyError:
        raise ModelLoadError(f"{where}: model metadata lacks {key!r}") from None
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"{where}: corrupt {key!r} metadata: {e}") from None


def registry_parts(registry: Mapping[str, str], family: str, what: str = "model") -> list[Any]:
    """The objects named by ``registry[family]`` (``"module:Name:Name"``), importing the module on use."""
    if family not in registry:
        raise ModelLoadError(f"unknown {what} family {family!r}; known: {sorted(registry)}")
    module, *names = registry[family].split(":")
    mod = importlib.import_module(module)
    return [getattr(mod, name) for name in names]
