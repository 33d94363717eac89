"""Task ``asr_transducer``: a recipe (YAML) -> tokenizer, data pipeline, RNN-T model, the one trainer.

A recipe (``recipes/synth_en/asr_rnnt_streaming.yaml``)::

    task: asr_transducer
    data: {train: data/synth_en/train.jsonl, dev: data/synth_en/dev.jsonl, ...}
    tokenizer: {type: char}
    model: {encoder: {causal: true, chunk_sizes: [4, 8, 16, 0], left_context: 64}, predictor: {kind: lstm},
            loss: pruned, ctc_weight: 0.1}
    train: {max_minutes: 40, ...}
    decode: {method: modified_beam, beam_size: 4, lm_weight: 0.3, word_bonus: 0.5}

The ``model`` section is a :class:`~seqspeech.asr.transducer.TransducerConfig` without ``vocab_size`` and
``input_dim`` (set from the tokenizer and the features). The run folder gets what every speech task writes
(:func:`~seqspeech.tasks.speech.finish_speech_run`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..asr.package import package_metadata
from ..asr.transducer import TransducerConfig, transducer_model_from_config
from ..config import from_mapping, to_mapping
from ..data.dataset import FeatureConfig
from ..errors import ConfigError
from ..training.trainer import TrainerConfig
from .speech import (
    DataConfig,
    InitConfig,
    TokenizerConfig,
    finish_speech_run,
    fit_speech_model,
    prepare_speech_training,
)

FAMILY = "transducer"


@dataclass(frozen=True)
class TransducerDecodeConfig:
    """Decoding defaults stored with the model: search ``method`` (greedy | modified_beam | beam), beam size,
    LM shallow fusion weight and word bonus (used when an LM is present), and the streaming ``chunk`` in encoder
    frames (0 = full context)."""

    method: str = "modified_beam"
    beam_size: int = 4
    lm_order: int = 3
    lm_weight: float = 0.3
    word_bonus: float = 0.5
    chunk: int = 8


@dataclass(frozen=True)
class TransducerRecipe:
    data: DataConfig
    model: dict[str, Any] = field(default_factory=dict)
    task: str = "asr_transducer"
    tokenizer: TokenizerConfig = TokenizerConfig()
    features: FeatureConfig = FeatureConfig()
    train: TrainerConfig = TrainerConfig(max_minutes=40.0)
    decode: TransducerDecodeConfig = TransducerDecodeConfig()
    eval: dict[str, str] = field(default_factory=dict)
    init: InitConfig | None = None

    def __post_init__(self) -> None:
        if self.task != "asr_transducer":
            raise ConfigError(f"task must be 'asr_transducer' for this recipe class, got {self.task!r}")
        model_config(self, vocab_size=8)  # validate the model section now, not after data preparation


def model_config(recipe: TransducerRecipe, vocab_size: int) -> TransducerConfig:
    """The model's config from the recipe's ``model`` section (strict: unknown keys are errors)."""
    for fixed, source in (("input_dim", "features"), ("vocab_size", "tokenizer")):
        if fixed in recipe.model:
            raise ConfigError(f"model.{fixed} is set from the {source}; remove it from the recipe")
    data = {**recipe.model, "input_dim": recipe.features.num_mel_bins, "vocab_size": vocab_size}
    return TransducerConfig.from_dict(data, "model")


def load_recipe(data: dict[str, Any], where: str) -> TransducerRecipe:
    return from_mapping(TransducerRecipe, data, where)


def greedy_batch(model: torch.nn.Module, features: torch.Tensor, feature_lens: torch.Tensor) -> list[list[int]]:
    """Greedy transducer decoding of a batch (the dev CER during training), at the model's decoding chunk."""
    from ..decoding.transducer import TransducerSearch, TransducerSearchOptions

    enc, lens = model.encode(features, feature_lens)
    search = TransducerSearch(model.predictor, model.joiner, TransducerSearchOptions(method="greedy"))
    return [list(h.tokens) for h in search.decode(model.joiner.project_encoder(enc), lens)]


def train_transducer(recipe: TransducerRecipe, out_dir: str | os.PathLike, *, resume: bool = False) -> dict[str, Any]:
    """Train a transducer from ``recipe`` into ``out_dir``; returns a summary (paths, steps, dev metrics)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    setup = prepare_speech_training(recipe.data, recipe.tokenizer, recipe.features, recipe.train, out, resume=resume,
                                    init=recipe.init)
    config = model_config(recipe, setup.tokenizer.vocab_size)
    torch.manual_seed(recipe.train.seed)
    model = transducer_model_from_config(config, feature_mean=setup.feature_mean, feature_std=setup.feature_std)
    n_params = sum(p.numel() for p in model.parameters())
    setup.say(f"model: transducer ({config.loss} loss, {config.predictor.kind} predictor), {n_params / 1e6:.2f} M "
              f"parameters, vocabulary {setup.tokenizer.vocab_size}")
    extra = {"package": package_metadata(FAMILY, config, recipe.features, setup.tokenizer),
             "recipe": to_mapping(recipe)}
    result, summary = fit_speech_model(setup, model, recipe.train, out, resume=resume, extra=extra, init=recipe.init,
                                       decode=greedy_batch)
    if setup.rank != 0:
        return summary
    return finish_speech_run(setup, result, summary, out, family=FAMILY, recipe=recipe,
                             decode=to_mapping(recipe.decode), lm_order=recipe.decode.lm_order)
