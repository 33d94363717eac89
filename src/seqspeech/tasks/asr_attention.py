"""Task ``asr_attention``: LAS or hybrid CTC/attention AED from a recipe, with the same data pipeline and trainer
as the CTC task.

A recipe (``recipes/synth_en/las_location.yaml``)::

    task: asr_attention
    data: {train: data/synth_en/train.jsonl, dev: data/synth_en/dev.jsonl, max_batch_seconds: 110, ...}
    tokenizer: {type: char}
    features: {num_mel_bins: 80}
    model: {family: las, attention: location, label_smoothing: 0.1, guided_attention: {weight: 1.0}, ...}
    train: {max_minutes: 40, lr: 1e-3, ...}
    decode: {beam_size: 8, ctc_weight: 0.0, eos_threshold: 1.5, max_length_ratio: 1.5, ...}
    eval: {test: data/synth_en/test.jsonl}

``model`` holds ``family`` (``las`` or ``aed``) and the fields of that family's config
(:class:`~seqspeech.asr.las.LASConfig` or :class:`~seqspeech.asr.aed.AEDConfig`) except ``input_dim`` and
``vocab_size``, which come from the features and the tokenizer. Unknown keys are errors naming them.
``decode`` is :class:`~seqspeech.decoding.attention.AttentionDecodeOptions`: stored with the model as its
defaults. The dev metric during training is greedy CER.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..asr.package import family_parts, package_metadata
from ..config import from_mapping, to_mapping
from ..data.dataset import FeatureConfig
from ..decoding.attention import AttentionDecodeOptions, attention_decode
from ..errors import ConfigError
from ..metrics.attention import alignment_metrics
from ..training.trainer import TrainerConfig
from .speech import (
    DataConfig,
    InitConfig,
    TokenizerConfig,
    finish_speech_run,
    fit_speech_model,
    prepare_speech_training,
)

FAMILIES = ("las", "aed")


@dataclass(frozen=True)
class AttentionRecipe:
    data: DataConfig
    model: dict[str, Any]
    task: str = "asr_attention"
    tokenizer: TokenizerConfig = TokenizerConfig()
    features: FeatureConfig = FeatureConfig()
    train: TrainerConfig = TrainerConfig(max_minutes=40.0)
    decode: AttentionDecodeOptions = AttentionDecodeOptions(beam_size=8, max_length_ratio=1.5)
    lm_order: int = 3
    eval: dict[str, str] = field(default_factory=dict)
    init: InitConfig | None = None

    def __post_init__(self) -> None:
        if self.task != "asr_attention":
            raise ConfigError(f"task must be 'asr_attention' for this recipe class, got {self.task!r}")
        model_config(self, vocab_size=8)  # validate the model section now, not after data preparation

    @property
    def family(self) -> str:
        return str(self.model.get("family"))


def model_config(recipe: AttentionRecipe, vocab_size: int) -> Any:
    """The family's config from the recipe's ``model`` section (strict)."""
    family = recipe.model.get("family")
    if family not in FAMILIES:
        raise ConfigError(f"model.family must be one of {list(FAMILIES)}, got {family!r}")
    fields = {k: v for k, v in recipe.model.items() if k != "family"}
    for fixed in ("input_dim", "vocab_size"):
        if fixed in fields:
            raise ConfigError(f"model.{fixed} is set from the {'features' if fixed == 'input_dim' else 'tokenizer'}"
                              f"; remove it from the recipe")
    config_cls, _ = family_parts(family)
    data = {**fields, "input_dim": recipe.features.num_mel_bins, "vocab_size": vocab_size}
    return config_cls.from_dict(data, "model")


def load_recipe(data: dict[str, Any], where: str) -> AttentionRecipe:
    return from_mapping(AttentionRecipe, data, where)


def _greedy_batch(model: torch.nn.Module, features: torch.Tensor, feature_lens: torch.Tensor,
                  max_length_ratio: float) -> list[list[int]]:
    memory, memory_lens = model.encode(features, feature_lens)
    options = AttentionDecodeOptions(max_length_ratio=max_length_ratio)
    return [hyps[0].tokens for hyps in attention_decode(model, memory, memory_lens, options)]


def reference_alignment_metrics(model: torch.nn.Module, batch: dict[str, Any]) -> list[dict[str, float]]:
    """Per dev utterance: how the attention aligns the *reference* transcript (teacher-forced), so the log shows
    when alignments turn diagonal (``diagonal`` is 1 for a diagonal alignment without skips, repeats or stuck
    rows, see :mod:`seqspeech.metrics.attention`)."""
    weights, memory_lens = model.attention_weights(batch["features"], batch["feature_lens"], batch["tokens"],
                                                   batch["token_lens"])
    rows = []
    for i in range(weights.shape[0]):
        u, t = int(batch["token_lens"][i]) + 1, int(memory_lens[i])
        m = alignment_metrics(weights[i, :u, :t].float().cpu())
        rows.append({"diagonal": float(m.is_diagonal), "diagonality": m.diagonality, "focus_rate": m.focus_rate})
    return rows


def train_attention(recipe: AttentionRecipe, out_dir: str | os.PathLike, *, resume: bool = False) -> dict[str, Any]:
    """Train a LAS or AED model from ``recipe`` into ``out_dir``; returns a summary (paths, steps, dev metrics)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    setup = prepare_speech_training(recipe.data, recipe.tokenizer, recipe.features, recipe.train, out, resume=resume,
                                    init=recipe.init)
    family = recipe.family
    config = model_config(recipe, setup.tokenizer.vocab_size)
    _, builder = family_parts(family)
    torch.manual_seed(recipe.train.seed)
    model = builder(config, feature_mean=setup.feature_mean, feature_std=setup.feature_std)
    n_params = sum(p.numel() for p in model.parameters())
    setup.say(f"model: {family.upper()}, {n_params / 1e6:.2f} M parameters, vocabulary {setup.tokenizer.vocab_size}")
    extra = {
        "package": package_metadata(family, config, recipe.features, setup.tokenizer), "recipe": to_mapping(recipe),
    }
    ratio = recipe.decode.max_length_ratio

    def decode(m: torch.nn.Module, feats: torch.Tensor, lens: torch.Tensor) -> list[list[int]]:
        return _greedy_batch(m, feats, lens, ratio)

    result, summary = fit_speech_model(setup, model, recipe.train, out, resume=resume, extra=extra, decode=decode,
                                       diagnose=reference_alignment_metrics, init=recipe.init)
    if setup.rank != 0:
        return summary

    return finish_speech_run(setup, result, summary, out, family=family, recipe=recipe,
                             decode=recipe.decode.to_dict(), lm_order=recipe.lm_order)
