"""One file per trained model: weights plus everything needed to run them, for every family we train.

A model travels as one safetensors file: weights (fp16 or fp32) and string metadata holding ``format``
(``seqspeech.<family>``), the model config, the feature config, the tokenizer and ``extra`` (decoding defaults
tuned by the recipe). Trainer checkpoints (``*.pt`` from ``seqspeech train``) carry the same metadata in their
``extra`` state under ``"package"`` and load the same way.

Families are registered in :data:`FAMILIES` by name -> ``"module:ConfigClass:builder"``; modules are imported only
when a model of that family is loaded, so reading a CTC model never imports the LAS code.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import from_mapping, to_mapping
from ..data.dataset import FeatureConfig
from ..errors import ConfigError, ModelLoadError
from ..packaging import (
    FORMAT_PREFIX, checkpoint_package, format_family, read_metadata, read_weights, registry_parts, write_weights,
)
from ..text.tokenizers import Tokenizer, tokenizer_from_dict, tokenizer_to_dict

WEIGHTS_FILENAME = "model.safetensors"
FAMILIES: dict[str, str] = {
    "ctc": "seqspeech.asr.ctc:CTCConfig:ctc_model_from_config",
    "las": "seqspeech.asr.las:LASConfig:las_model_from_config",
    "aed": "seqspeech.asr.aed:AEDConfig:aed_model_from_config",
    "transducer": "seqspeech.asr.transducer:TransducerConfig:transducer_model_from_config",
}
CHECKPOINT_KEYS = ("package", "ctc")  # "ctc": checkpoints written before other families existed


@dataclass(frozen=True)
class ModelPackage:
    """A loaded model with its config, front-end settings, tokenizer and stored decoding defaults."""

    family: str
    model: torch.nn.Module
    config: Any
    features: FeatureConfig
    tokenizer: Tokenizer
    path: Path
    decode: dict[str, Any] = field(default_factory=dict)


def family_parts(family: str) -> tuple[type, Any]:
    config_cls, builder = registry_parts(FAMILIES, family)
    return config_cls, builder


def package_metadata(family: str, config: Any, features: FeatureConfig, tokenizer: Tokenizer) -> dict[str, str]:
    """The string metadata stored with a model's weights (and in trainer checkpoints under ``"package"``)."""
    if family not in FAMILIES:
        raise ConfigError(f"unknown model family {family!r}; known: {sorted(FAMILIES)}")
    return {
        "format": FORMAT_PREFIX + family,
        "config": json.dumps(config.to_dict()),
        "features": json.dumps(to_mapping(features)),
        "tokenizer": json.dumps(tokenizer_to_dict(tokenizer)),
    }


def save_package(
    path: str | os.PathLike,
    family: str,
    model: torch.nn.Module,
    config: Any,
    features: FeatureConfig,
    tokenizer: Tokenizer,
    *,
    dtype: torch.dtype = torch.float16,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write one safetensors file: weights cast to ``dtype`` (float buffers such as feature statistics too) and
    the metadata of :func:`package_metadata` (plus ``extra``, JSON-encoded)."""
    metadata = package_metadata(family, config, features, tokenizer)
    if extra:
        metadata["extra"] = json.dumps(extra)
    return write_weights(path, model.state_dict(), metadata, dtype=dtype)


def weights_path(path: str | os.PathLike) -> Path:
    """``path`` itself, or ``path/model.safetensors`` for a folder."""
    p = Path(path)
    return p / WEIGHTS_FILENAME if p.is_dir() else p


def _checkpoint_metadata(path: Path) -> tuple[dict[str, str], dict[str, Any]] | None:
    return checkpoint_package(path, CHECKPOINT_KEYS)


def model_family(path: str | os.PathLike) -> str | None:
    """The family (``"ctc"``, ``"las"``, ``"aed"``) of our model at ``path`` (file, folder or checkpoint), else
    None. Never raises for a foreign or unreadable file."""
    p = weights_path(path)
    if not p.is_file():
        return None
    try:
        if p.suffix == ".safetensors":
            family = format_family(read_metadata(p))
        elif p.suffix == ".pt":
            found = _checkpoint_metadata(p)
            family = format_family(found[0]) if found else None
        else:
            return None
    except ModelLoadError:
        return None
    return family if family in FAMILIES else None


def _decode_defaults(extra: str | None, where: str) -> dict[str, Any]:
    if not extra:
        return {}
    try:
        decode = json.loads(extra).get("decode") or {}
    except (json.JSONDecodeError, AttributeError) as e:
        raise ModelLoadError(f"{where}: corrupt 'extra' metadata: {e}") from None
    if not isinstance(decode, dict):
        raise ModelLoadError(f"{where}: 'extra.decode' must be a mapping, got {type(decode).__name__}")
    return decode


def load_package(
    path: str | os.PathLike, device: str | torch.device | None = None, *, family: str | None = None
) -> ModelPackage:
    """Load a model from our safetensors file, a folder holding one, or a trainer checkpoint (``.pt``).

    ``family`` (optional) is the family the caller expects; another family is a :class:`ModelLoadError`.
    """
    p = weights_path(path)
    if not p.exists():
        raise ModelLoadError(f"{p}: no such file")
    if p.suffix == ".pt":
        found = _checkpoint_metadata(p)
        if found is None:
            raise ModelLoadError(f"{p}: trainer checkpoint without a model description")
        meta, state_dict = found
    else:
        meta, state_dict = read_weights(p)
    found_family = format_family(meta)
    if found_family not in FAMILIES:
        raise ModelLoadError(f"{p}: not a seqspeech model (format {meta.get('format')!r})")
    if family is not None and found_family != family:
        raise ModelLoadError(f"{p}: a {found_family!r} model, expected {family!r}")
    config_cls, builder = family_parts(found_family)
    try:
        config = config_cls.from_dict(json.loads(meta["config"]))
        features = from_mapping(FeatureConfig, json.loads(meta["features"]), "features")
        tokenizer = tokenizer_from_dict(json.loads(meta["tokenizer"]), str(p))
    except (KeyError, json.JSONDecodeError, ConfigError) as e:
        raise ModelLoadError(f"{p}: corrupt {found_family} model metadata: {e}") from None
    model = builder(config)
    state_dict = {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        raise ModelLoadError(f"{p}: weights do not match the model config: {e}") from None
    model.eval().to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return ModelPackage(
        family=found_family, model=model, config=config, features=features, tokenizer=tokenizer, path=p,
        decode=_decode_defaults(meta.get("extra"), str(p)),
    )
