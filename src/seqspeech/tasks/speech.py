"""What every speech-to-text task shares: recipe sections for data and tokenizer, the training set-up (tokenizer,
datasets, feature statistics, bucketed sampler, dev evaluation) and the run summary.

A task module (``asr_ctc``, ``asr_attention``) builds its model from :class:`SpeechSetup` and hands it to
:func:`fit_speech_model`; nothing about data or training is repeated per family.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..audio.augment import WaveAugment, WaveAugmentConfig
from ..data.collate import collate_speech
from ..data.dataset import FeatureConfig, SpeechDataset, build_frontend, compute_feature_stats, prepare_utterances
from ..data.manifest import Utterance, read_manifest
from ..data.samplers import BucketBatchSampler
from ..errors import AudioError, ConfigError, DataError
from ..fileio import write_atomic
from ..metrics.wer import error_rate
from ..text.tokenizers import BPETokenizer, CharTokenizer, Tokenizer, tokenizer_from_dict, tokenizer_to_dict
from ..training.distributed import world_info
from ..training.trainer import Trainer, TrainerConfig, TrainResult, move_to_device

TEXT_FIELDS = ("normalized_text", "text")

# decode(model, features (B, T, F), feature_lens (B,)) -> token ids per row; used for the dev CER during training
BatchDecoder = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], Sequence[Sequence[int]]]
# diagnose(model, batch) -> one dict of numbers per utterance (averaged over the dev set)
BatchDiagnoser = Callable[[torch.nn.Module, dict[str, Any]], Sequence[dict[str, float]]]


@dataclass(frozen=True)
class DataConfig:
    """Manifests and batching. ``max_batch_seconds`` bounds padded audio seconds per batch."""

    train: str
    dev: str | None = None
    text_field: str = "normalized_text"
    min_duration: float = 0.1
    max_duration: float = 20.0
    max_batch_seconds: float = 200.0
    max_batch_size: int | None = None
    num_buckets: int = 20
    dev_max_utterances: int | None = 400
    augment: WaveAugmentConfig | None = None

    def __post_init__(self) -> None:
        if self.text_field not in TEXT_FIELDS:
            raise ConfigError(f"text_field must be one of {list(TEXT_FIELDS)}, got {self.text_field!r}")
        if self.max_batch_seconds < self.max_duration:
            raise ConfigError(
                f"max_batch_seconds ({self.max_batch_seconds}) must be at least max_duration ({self.max_duration})"
            )


@dataclass(frozen=True)
class TokenizerConfig:
    type: str = "char"
    vocab_size: int = 256  # BPE only

    def __post_init__(self) -> None:
        if self.type not in ("char", "bpe"):
            raise ConfigError(f"tokenizer type must be 'char' or 'bpe', got {self.type!r}")


@dataclass(frozen=True)
class InitConfig:
    """Start from another model's weights (``init:`` in a recipe): ``source`` is a model package (a directory with
    ``model.safetensors``, or the file) or a trainer checkpoint (``.pt``); ``rename`` maps source key prefixes to
    this model's (e.g. ``{"output.": "ctc_head."}``); ``modules`` lists the key prefixes to take (after renaming;
    empty = every key this model has). Taken tensors must match in shape, and any tensor sized by the vocabulary
    needs the same tokenizer: ``tokenizer: true`` (the default) takes the source's instead of building one from
    the training texts. Applied to a fresh run only: a resumed run continues from its checkpoint."""

    source: str
    rename: dict[str, str] = field(default_factory=dict)
    modules: list[str] = field(default_factory=list)
    tokenizer: bool = True


@dataclass
class SpeechSetup:
    """Everything a speech task needs before it builds its model."""

    rank: int
    world_size: int
    tokenizer: Tokenizer
    features: FeatureConfig
    train_utts: list[Utterance]
    train_set: SpeechDataset
    sampler: BucketBatchSampler
    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    dev_utts: list[Utterance]
    dev_set: SpeechDataset | None
    dev_sampler: BucketBatchSampler | None
    text_field: str

    def say(self, message: str) -> None:
        if self.rank == 0:
            print(message, file=sys.stderr, flush=True)

    def texts(self) -> list[str]:
        return texts_of(self.train_utts, self.text_field)


def read_nonempty(path: str, what: str) -> list[Utterance]:
    utts = read_manifest(path)
    if not utts:
        raise ConfigError(f"{path}: the {what} manifest is empty")
    return utts


def _unreadable(utts: list[Utterance]) -> str:
    """Why no feature statistics came out of ``utts``: none of those tried has readable audio (the first's error)."""
    from ..data.dataset import load_utterance_audio

    tried = min(len(utts), 400)
    reason = ""
    try:
        load_utterance_audio(utts[0])
    except (AudioError, OSError) as err:
        reason = f"; e.g. utterance {utts[0].id!r}: {err}"
    return f"none of the {tried} utterances read for the feature statistics has usable audio{reason}"


def texts_of(utts: list[Utterance], text_field: str) -> list[str]:
    return [getattr(u, text_field) for u in utts if getattr(u, text_field).strip()]


def build_tokenizer(cfg: TokenizerConfig, texts: list[str]) -> Tokenizer:
    if cfg.type == "char":
        return CharTokenizer.train(texts)
    return BPETokenizer.train(texts, vocab_size=cfg.vocab_size)


def prepare_speech_training(
    data: DataConfig, tokenizer_cfg: TokenizerConfig, features: FeatureConfig, train: TrainerConfig,
    out: Path, *, resume: bool, init: InitConfig | None = None,
) -> SpeechSetup:
    """Tokenizer (reloaded on resume; ``init``'s source's when it asks), filtered utterances, datasets, feature
    statistics, samplers."""
    rank, world_size, _ = world_info()
    train_utts = read_nonempty(data.train, "train")
    dev_manifest = read_nonempty(data.dev, "dev") if data.dev else []  # a bad dev manifest fails before any work
    tok_path = out / "tokenizer.json"
    if resume and tok_path.exists():
        tokenizer = tokenizer_from_dict(json.loads(tok_path.read_text()), str(tok_path))
    else:
        if init is not None and init.tokenizer:
            tokenizer = init_tokenizer(init)
        else:
            tokenizer = build_tokenizer(tokenizer_cfg, texts_of(train_utts, data.text_field))
        if rank == 0:
            write_atomic(tok_path, json.dumps(tokenizer_to_dict(tokenizer)))

    kept, report = prepare_utterances(
        train_utts, tokenizer, min_duration=data.min_duration, max_duration=data.max_duration,
        text_field=data.text_field,
    )
    if not kept:
        raise DataError(f"{data.train}: no usable training utterances ({report})")
    frontend = build_frontend(features)
    augment = WaveAugment(data.augment) if data.augment else None
    train_set = SpeechDataset(kept, tokenizer, frontend, augment=augment, seed=train.seed, text_field=data.text_field)
    stats_path = out / "feature_stats.pt"
    if stats_path.exists():
        stats = torch.load(stats_path, weights_only=True)
        mean, std = stats["mean"], stats["std"]
    else:
        try:
            mean, std = compute_feature_stats(
                SpeechDataset(kept, tokenizer, frontend, text_field=data.text_field), max_items=400
            )
        except DataError:
            raise DataError(f"{data.train}: {_unreadable(kept)}") from None
        if rank == 0:
            tmp = stats_path.with_suffix(".tmp")
            torch.save({"mean": mean, "std": std}, tmp)
            os.replace(tmp, stats_path)
    sampler = BucketBatchSampler(
        [u.duration for u in kept], max_seconds=data.max_batch_seconds, max_batch_size=data.max_batch_size,
        shuffle=True, seed=train.seed, num_buckets=data.num_buckets, curriculum=train.curriculum,
        rank=rank, world_size=world_size,
    )
    setup = SpeechSetup(
        rank=rank, world_size=world_size, tokenizer=tokenizer, features=features, train_utts=kept,
        train_set=train_set, sampler=sampler, feature_mean=mean, feature_std=std, dev_utts=[], dev_set=None,
        dev_sampler=None, text_field=data.text_field,
    )
    setup.say(f"train: {len(kept)} utterances, {sum(u.duration for u in kept) / 3600:.2f} h; {report}")
    if data.dev:
        dev_utts, dev_report = prepare_utterances(
            dev_manifest, tokenizer, min_duration=data.min_duration,
            max_duration=data.max_duration, text_field=data.text_field,
        )
        if not dev_utts:
            raise DataError(f"{data.dev}: no usable dev utterances ({dev_report})")
        setup.dev_utts = dev_utts[: data.dev_max_utterances] if data.dev_max_utterances else dev_utts
        setup.say(f"dev: {len(setup.dev_utts)} utterances; {dev_report}")
        setup.dev_set = SpeechDataset(setup.dev_utts, tokenizer, frontend, text_field=data.text_field)
        setup.dev_sampler = BucketBatchSampler(
            [u.duration for u in setup.dev_utts], max_seconds=data.max_batch_seconds, shuffle=False, seed=0,
            num_buckets=data.num_buckets,
        )
    return setup


def dev_error_rates(
    setup: SpeechSetup, decode: BatchDecoder, diagnose: BatchDiagnoser | None = None
) -> Callable[[torch.nn.Module], dict[str, float]]:
    """An ``evaluate_fn`` for the trainer: CER and WER of ``decode`` on the dev set, plus the dev means of
    ``diagnose``'s per-utterance numbers (e.g. attention diagonality)."""
    refs = {u.id: getattr(u, setup.text_field) for u in setup.dev_utts}
    dataset, sampler, tokenizer = setup.dev_set, setup.dev_sampler, setup.tokenizer
    assert dataset is not None and sampler is not None

    @torch.no_grad()
    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        inner = getattr(model, "module", model)
        device = next(inner.parameters()).device
        hyps, references = [], []
        sums: dict[str, float] = {}
        count = 0
        for indices in sampler:
            batch = collate_speech([dataset[i] for i in indices])
            if batch.get("empty"):
                continue
            tokens = decode(inner, batch["features"].to(device), batch["feature_lens"].to(device))
            for uid, toks in zip(batch["ids"], tokens):
                hyps.append(tokenizer.decode(list(toks)))
                references.append(refs[uid])
            if diagnose is not None:
                for row in diagnose(inner, move_to_device(batch, device)):
                    for key, value in row.items():
                        sums[key] = sums.get(key, 0.0) + float(value)
                    count += 1
        return {
            "cer": error_rate(references, hyps, unit="char", normalizer=None).rate,
            "wer": error_rate(references, hyps, unit="word", normalizer=None).rate,
            **{key: value / max(count, 1) for key, value in sums.items()},
        }

    return evaluate


def _init_source(source: str, *, weights: bool = True) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """(package metadata, float state dict -- empty unless ``weights``) of a model package directory, safetensors
    file or trainer checkpoint."""
    from ..packaging import checkpoint_package, read_metadata, read_weights

    path = Path(source)
    path = path / "model.safetensors" if path.is_dir() else path
    if not path.is_file():
        raise ConfigError(f"init.source {source}: no such model (a package directory, .safetensors or .pt file)")
    if path.suffix == ".safetensors":
        return read_weights(path) if weights else (read_metadata(path), {})
    package = checkpoint_package(path)
    if package is None:
        raise ConfigError(f"init.source {source}: a checkpoint without a model description")
    meta, state = package
    return meta, {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def init_tokenizer(init: InitConfig) -> Tokenizer:
    """The tokenizer stored with ``init``'s source model."""
    meta, _ = _init_source(init.source, weights=False)
    if "tokenizer" not in meta:
        raise ConfigError(f"init.source {init.source}: stores no tokenizer; set init.tokenizer: false")
    return tokenizer_from_dict(json.loads(meta["tokenizer"]), f"init.source {init.source}")


def initialize_from(model: torch.nn.Module, init: InitConfig, tokenizer: Tokenizer) -> str:
    """Copy ``init``'s tensors into ``model`` (see :class:`InitConfig`); returns a one-line report."""
    meta, state = _init_source(init.source)
    own = model.state_dict()
    taken: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for old, new in init.rename.items():
            if key.startswith(old):
                key = new + key[len(old):]
                break
        if key not in own or (init.modules and not any(key.startswith(m) for m in init.modules)):
            continue
        if own[key].shape != value.shape:
            raise ConfigError(f"init.source {init.source}: {key} has shape {tuple(value.shape)}, this model "
                              f"{tuple(own[key].shape)}")
        taken[key] = value
    if not taken:
        raise ConfigError(f"init.source {init.source}: no tensor matches this model (check init.rename/modules)")
    vocab = tokenizer.vocab_size
    if any(vocab in v.shape for v in taken.values()) and "tokenizer" in meta:
        if json.loads(meta["tokenizer"]) != tokenizer_to_dict(tokenizer):
            raise ConfigError(f"init.source {init.source}: its tokenizer differs from this run's; take only "
                              "modules not sized by the vocabulary (init.modules)")
    with torch.no_grad():
        for key, value in taken.items():
            own[key].copy_(value)
    return f"init: {len(taken)} of {len(own)} tensors from {init.source}"


def fit_speech_model(
    setup: SpeechSetup, model: torch.nn.Module, train: TrainerConfig, out: Path, *, resume: bool,
    extra: dict[str, Any], decode: BatchDecoder | None, diagnose: BatchDiagnoser | None = None,
    init: InitConfig | None = None,
) -> tuple[TrainResult, dict[str, Any]]:
    """Train ``model`` with the one trainer (after ``init``, on a fresh run); returns the result and a summary
    (speed, memory, sizes)."""
    from ..training.checkpoint import latest_checkpoint

    if init is not None and not (resume and latest_checkpoint(out) is not None):
        setup.say(initialize_from(model, init, setup.tokenizer))
    evaluate_fn = None
    if decode is not None and setup.dev_set is not None:
        evaluate_fn = dev_error_rates(setup, decode, diagnose)
    trainer = Trainer(
        model, setup.train_set, setup.sampler, collate_speech, train, out,
        dev_dataset=setup.dev_set, dev_sampler=setup.dev_sampler, evaluate_fn=evaluate_fn, extra_state=extra,
    )
    t0 = time.time()
    result = trainer.fit(resume=resume)
    summary: dict[str, Any] = {
        "out_dir": str(out),
        "train_seconds": round(time.time() - t0, 1),
        "utterances_per_second": round(result.items_per_second, 2),
        "peak_rss_mb": peak_rss_mb(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_utterances": len(setup.train_utts),
        "train_hours": round(sum(u.duration for u in setup.train_utts) / 3600, 2),
        "result": plain(result),
    }
    return result, summary


def plain(obj: Any) -> Any:
    """Dataclasses, paths and containers -> JSON-ready values."""
    if hasattr(obj, "__dataclass_fields__"):
        return {k: plain(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def peak_rss_mb() -> float:
    """Peak resident memory of this process and of its finished children (data-loader workers), in MB."""
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(kb / 1024, 1)


def final_checkpoint(result: TrainResult) -> Path | None:
    """The averaged checkpoint when there is one, else the last."""
    return getattr(result, "averaged_checkpoint", None) or getattr(result, "last_checkpoint", None)


def finish_speech_run(setup: SpeechSetup, result: TrainResult, summary: dict[str, Any], out: Path, *, family: str,
                      recipe: Any, decode: dict[str, Any], lm_order: int) -> dict[str, Any]:
    """After training (rank 0): the resolved ``recipe.yaml``, ``model.safetensors`` (the final or averaged weights
    in float32 with the recipe's decoding defaults), ``lm.arpa`` on the training texts and ``train_summary.json``."""
    import yaml

    from ..asr.package import WEIGHTS_FILENAME, load_package, save_package
    from ..asr.windowed import LM_FILENAME
    from ..config import to_mapping
    from ..decoding.lm import train_arpa

    write_atomic(out / "recipe.yaml", yaml.safe_dump(to_mapping(recipe), sort_keys=False))
    final = final_checkpoint(result)
    if final is not None:
        pkg = load_package(final, device="cpu", family=family)
        save_package(out / WEIGHTS_FILENAME, family, pkg.model, pkg.config, pkg.features, pkg.tokenizer,
                     dtype=torch.float32, extra={"decode": decode})
        summary["model"] = str(out / WEIGHTS_FILENAME)
    summary["lm"] = str(train_arpa(setup.texts(), out / LM_FILENAME, order=lm_order))
    write_atomic(out / "train_summary.json", json.dumps(summary, indent=2))
    return summary
