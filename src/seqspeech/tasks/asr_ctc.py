"""Task ``asr_ctc``: a recipe (YAML) -> tokenizer, data pipeline, CTC model, trainer; and evaluation on manifests.

A recipe (``recipes/synth_en/asr_ctc.yaml``)::

    task: asr_ctc
    data: {train: data/synth_en/train.jsonl, dev: data/synth_en/dev.jsonl, max_batch_seconds: 240, augment: {...}}
    tokenizer: {type: char}
    features: {num_mel_bins: 80}
    model: {encoder: {d_model: 144, num_layers: 8}, specaugment: {...}}
    train: {max_minutes: 40, lr: 2e-3, warmup_steps: 800, ...}
    decode: {beam_size: 8, lm_order: 3, lm_weight: 0.5, word_bonus: 1.0}
    eval: {test: data/synth_en/test.jsonl, test_voices: data/synth_en/test_voices.jsonl}

Relative paths are read from the current directory. ``train_ctc`` writes into its output folder the trainer's
checkpoints and logs, ``model.safetensors`` (the final, optionally averaged, weights with everything needed to
run them), ``lm.arpa`` (an n-gram LM on the training transcripts) and ``recipe.yaml`` (the resolved recipe).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..asr.ctc import CTCConfig, ctc_model_from_config
from ..asr.ctc_asr import package_metadata
from ..audio.augment import SpecAugmentConfig
from ..config import from_mapping, to_mapping
from ..data.dataset import FeatureConfig
from ..errors import ConfigError
from ..nn.conformer import ConformerConfig
from ..training.trainer import TrainerConfig
from .speech import (
    DataConfig,
    InitConfig,
    TokenizerConfig,
    finish_speech_run,
    fit_speech_model,
    prepare_speech_training,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelConfig:
    encoder: ConformerConfig = ConformerConfig()
    specaugment: SpecAugmentConfig | None = SpecAugmentConfig()


@dataclass(frozen=True)
class DecodeConfig:
    beam_size: int = 8
    lm_order: int = 3
    lm_weight: float = 0.5
    word_bonus: float = 1.0


@dataclass(frozen=True)
class CTCRecipe:
    data: DataConfig
    task: str = "asr_ctc"
    tokenizer: TokenizerConfig = TokenizerConfig()
    features: FeatureConfig = FeatureConfig()
    model: ModelConfig = ModelConfig()
    train: TrainerConfig = TrainerConfig(max_minutes=40.0)
    decode: DecodeConfig = DecodeConfig()
    eval: dict[str, str] = field(default_factory=dict)
    init: InitConfig | None = None

    def __post_init__(self) -> None:
        if self.task != "asr_ctc":
            raise ConfigError(f"task must be 'asr_ctc' for this recipe class, got {self.task!r}")


def load_recipe(data: dict[str, Any], where: str) -> CTCRecipe:
    return from_mapping(CTCRecipe, data, where)


def train_ctc(recipe: CTCRecipe, out_dir: str | os.PathLike, *, resume: bool = False) -> dict[str, Any]:
    """Train a CTC model from ``recipe`` into ``out_dir``; returns a summary (paths, steps, dev metrics)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    setup = prepare_speech_training(recipe.data, recipe.tokenizer, recipe.features, recipe.train, out, resume=resume,
                                    init=recipe.init)
    config = CTCConfig(
        input_dim=recipe.features.num_mel_bins,
        vocab_size=setup.tokenizer.vocab_size,
        encoder=recipe.model.encoder,
        specaugment=recipe.model.specaugment,
    )
    torch.manual_seed(recipe.train.seed)
    model = ctc_model_from_config(config, feature_mean=setup.feature_mean, feature_std=setup.feature_std)
    n_params = sum(p.numel() for p in model.parameters())
    setup.say(f"model: CTC Conformer, {n_params / 1e6:.2f} M parameters, vocabulary {setup.tokenizer.vocab_size}")
    extra = {
        "package": package_metadata(config, recipe.features, setup.tokenizer), "recipe": to_mapping(recipe),
    }
    result, summary = fit_speech_model(setup, model, recipe.train, out, resume=resume, extra=extra, init=recipe.init,
                                       decode=_ctc_greedy_batch)
    if setup.rank != 0:
        return summary

    return finish_speech_run(setup, result, summary, out, family="ctc", recipe=recipe,
                             decode=to_mapping(recipe.decode), lm_order=recipe.decode.lm_order)


def _ctc_greedy_batch(model: torch.nn.Module, features: torch.Tensor, feature_lens: torch.Tensor) -> list[list[int]]:
    from ..decoding.ctc import ctc_greedy

    log_probs, lens = model.encode(features, feature_lens)
    return ctc_greedy(log_probs.float(), lens)
