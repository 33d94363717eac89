"""TTS model packages: one safetensors file per trained part (acoustic model, duration aligner, vocoder), and a
voice = a folder holding an acoustic model and a vocoder.

Metadata: ``format`` (``seqspeech.<family>``), ``config`` (the model's ``to_dict()``), ``mel`` (the
:class:`~seqspeech.tts.mel.MelConfig`), ``frontend`` (the :class:`~seqspeech.text.frontend.TTSFrontend`'s
``to_dict()``, acoustic models and aligners) and ``extra`` (JSON: recipe defaults, statistics). Trainer checkpoints
carry the same strings under ``extra["package"]`` and load the same way.

A voice folder: ``acoustic.safetensors`` (Tacotron 2 or FastSpeech 2), ``vocoder.safetensors`` (HiFi-GAN; absent =
Griffin-Lim) and ``model_card.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, ModelLoadError
from ..packaging import (
    FORMAT_PREFIX, checkpoint_package, format_family, json_field, read_metadata, read_weights, registry_parts,
    write_weights,
)
from .mel import MelConfig

# family -> "module:ConfigClass:ModelClass"; every model class is built as ModelClass(config)
TTS_FAMILIES: dict[str, str] = {
    "tacotron2": "seqspeech.tts.tacotron2:Tacotron2Config:Tacotron2",
    "fastspeech2": "seqspeech.tts.fastspeech2:FastSpeech2Config:FastSpeech2",
    "ctc_aligner": "seqspeech.tts.aligner:CTCAlignerConfig:CTCAligner",
    "hifigan": "seqspeech.tts.vocoders.hifigan:HiFiGANConfig:HiFiGAN",
}
ACOUSTIC_FAMILIES = ("tacotron2", "fastspeech2")
VOCODER_FAMILIES = ("hifigan",)
ACOUSTIC_FILE = "acoustic.safetensors"
VOCODER_FILE = "vocoder.safetensors"


@dataclass(frozen=True)
class TTSPackage:
    family: str
    model: torch.nn.Module
    config: Any
    mel: MelConfig
    frontend: Any | None  # TTSFrontend for models that read text
    path: Path
    extra: dict[str, Any] = field(default_factory=dict)


def tts_family_parts(family: str) -> tuple[type, type]:
    config_cls, model_cls = registry_parts(TTS_FAMILIES, family, "TTS model")
    return config_cls, model_cls


def tts_metadata(family: str, config: Any, mel: MelConfig, frontend: Any | None = None,
                 extra: dict[str, Any] | None = None) -> dict[str, str]:
    """The string metadata of a TTS package (also stored in trainer checkpoints under ``"package"``)."""
    if family not in TTS_FAMILIES:
        raise ConfigError(f"unknown TTS model family {family!r}; known: {sorted(TTS_FAMILIES)}")
    meta = {"format": FORMAT_PREFIX + family, "config": json.dumps(config.to_dict()),
            "mel": json.dumps(mel.to_dict())}
    if frontend is not None:
        meta["frontend"] = json.dumps(frontend.to_dict())
    if extra:
        meta["extra"] = json.dumps(extra)
    return meta


def save_tts_package(path: str | os.PathLike, family: str, model: torch.nn.Module, config: Any, *,
                     mel: MelConfig, frontend: Any | None = None, extra: dict[str, Any] | None = None,
                     dtype: torch.dtype = torch.float16) -> Path:
    """Weights (cast to ``dtype``) + metadata. A model with ``inference_state_dict()`` (HiFi-GAN: the generator
    without its discriminators) saves only that."""
    state = model.inference_state_dict() if hasattr(model, "inference_state_dict") else model.state_dict()
    return write_weights(path, state, tts_metadata(family, config, mel, frontend, extra), dtype=dtype)


def tts_model_family(path: str | os.PathLike) -> str | None:
    """The TTS family of a package file or checkpoint, else None (never raises)."""
    p = Path(path)
    try:
        if p.suffix == ".safetensors" and p.is_file():
            family = format_family(read_metadata(p))
        elif p.suffix == ".pt" and p.is_file():
            found = checkpoint_package(p)
            family = format_family(found[0]) if found else None
        else:
            return None
    except (ModelLoadError, OSError, RuntimeError, ValueError):
        return None
    return family if family in TTS_FAMILIES else None


RUN_MODEL_FILE = "model.safetensors"  # what `seqspeech train` leaves in a run folder


def acoustic_file(folder: str | os.PathLike) -> Path | None:
    """The acoustic model a folder speaks with: a voice folder's ``acoustic.safetensors``, or a TTS training run's
    ``model.safetensors`` when that is an acoustic model (FastSpeech 2, Tacotron 2); else None."""
    p = Path(folder)
    if not p.is_dir():
        return None
    if (p / ACOUSTIC_FILE).is_file():
        return p / ACOUSTIC_FILE
    return p / RUN_MODEL_FILE if tts_model_family(p / RUN_MODEL_FILE) in ACOUSTIC_FAMILIES else None


def load_tts_package(path: str | os.PathLike, *, family: str | tuple[str, ...] | None = None,
                     device: str | torch.device | None = None) -> TTSPackage:
    """Load a TTS part from its safetensors file or a trainer checkpoint; ``family`` = the family (or families)
    the caller accepts."""
    p = Path(path)
    if not p.is_file():
        raise ModelLoadError(f"{p}: is a folder, expected a model file" if p.is_dir() else f"{p}: no such file")
    if p.suffix == ".pt":
        found = checkpoint_package(p)
        if found is None:
            raise ModelLoadError(f"{p}: trainer checkpoint without a model description")
        meta, state = found
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    else:
        meta, state = read_weights(p)
    found_family = format_family(meta)
    if found_family not in TTS_FAMILIES:
        raise ModelLoadError(f"{p}: not a seqspeech TTS model (format {meta.get('format')!r})")
    accepted = (family,) if isinstance(family, str) else family
    if accepted is not None and found_family not in accepted:
        raise ModelLoadError(f"{p}: a {found_family!r} model, expected {' or '.join(accepted)}")
    config_cls, model_cls = tts_family_parts(found_family)
    where = str(p)
    try:
        config = config_cls.from_dict(json_field(meta, "config", where))
        mel = MelConfig(**json_field(meta, "mel", where))
    except (TypeError, ValueError, ConfigError) as e:
        raise ModelLoadError(f"{p}: corrupt {found_family} metadata: {e}") from None
    frontend = None
    if "frontend" in meta:
        from ..text.frontend import TTSFrontend

        frontend = TTSFrontend.from_dict(json_field(meta, "frontend", where))
    extra = json_field(meta, "extra", where) if "extra" in meta else {}
    model = model_cls(config)
    try:
        if hasattr(model, "load_inference_state_dict"):
            model.load_inference_state_dict(state)
        else:
            model.load_state_dict(state)
    except RuntimeError as e:
        raise ModelLoadError(f"{p}: weights do not match the model config: {e}") from None
    model.eval().to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return TTSPackage(found_family, model, config, mel, frontend, p, extra)
