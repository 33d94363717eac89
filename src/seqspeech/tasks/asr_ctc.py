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

import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..asr.ctc import CTCConfig, ctc_model_from_config
from ..asr.ctc_asr import CTCASR, LM_FILENAME, WEIGHTS_FILENAME, load_ctc, package_metadata, save_ctc
from ..audio.augment import SpecAugmentConfig, WaveAugment, WaveAugmentConfig
from ..config import from_mapping, to_mapping
from ..data.collate import collate_speech
from ..audio.constants import SAMPLE_RATE
from ..data.dataset import (
    FeatureConfig,
    SpeechDataset,
    build_frontend,
    compute_feature_stats,
    load_utterance_audio,
    prepare_utterances,
)
from ..data.manifest import Utterance, read_manifest
from ..data.samplers import BucketBatchSampler
from ..errors import ConfigError
from ..fileio import write_atomic
from ..metrics.wer import error_rate
from ..nn.conformer import ConformerConfig
from ..text.tokenizers import BPETokenizer, CharTokenizer, Tokenizer, tokenizer_from_dict, tokenizer_to_dict
from ..training.distributed import world_info
from ..training.trainer import Trainer, TrainerConfig

log = logging.getLogger(__name__)

TEXT_FIELDS = ("normalized_text", "text")


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

    def __post_init__(self) -> None:
        if self.task != "asr_ctc":
            raise ConfigError(f"task must be 'asr_ctc' for this recipe class, got {self.task!r}")


def load_recipe(data: dict[str, Any], where: str) -> CTCRecipe:
    return from_mapping(CTCRecipe, data, where)


def _read(path: str, what: str) -> list[Utterance]:
    utts = read_manifest(path)
    if not utts:
        raise ConfigError(f"{path}: the {what} manifest is empty")
    return utts


def _texts(utts: list[Utterance], text_field: str) -> list[str]:
    return [getattr(u, text_field) for u in utts if getattr(u, text_field).strip()]


def _build_tokenizer(cfg: TokenizerConfig, texts: list[str]) -> Tokenizer:
    if cfg.type == "char":
        return CharTokenizer.train(texts)
    return BPETokenizer.train(texts, vocab_size=cfg.vocab_size)


def train_ctc(recipe: CTCRecipe, out_dir: str | os.PathLike, *, resume: bool = False) -> dict[str, Any]:
    """Train a CTC model from ``recipe`` into ``out_dir``; returns a summary (paths, steps, dev metrics)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rank, world_size, _ = world_info()
    data = recipe.data
    train_utts = _read(data.train, "train")

    tok_path = out / "tokenizer.json"
    if resume and tok_path.exists():
        tokenizer = tokenizer_from_dict(json.loads(tok_path.read_text()), str(tok_path))
    else:
        tokenizer = _build_tokenizer(recipe.tokenizer, _texts(train_utts, data.text_field))
        if rank == 0:
            write_atomic(tok_path, json.dumps(tokenizer_to_dict(tokenizer)))

    kept, report = prepare_utterances(
        train_utts, tokenizer, min_duration=data.min_duration, max_duration=data.max_duration,
        text_field=data.text_field,
    )
    _say(rank, f"train: {len(kept)} utterances, {sum(u.duration for u in kept) / 3600:.2f} h; {report}")
    frontend = build_frontend(recipe.features)
    augment = WaveAugment(data.augment) if data.augment else None
    train_set = SpeechDataset(kept, tokenizer, frontend, augment=augment, seed=recipe.train.seed,
                              text_field=data.text_field)
    stats_path = out / "feature_stats.pt"
    if stats_path.exists():
        stats = torch.load(stats_path, weights_only=True)
        mean, std = stats["mean"], stats["std"]
    else:
        mean, std = compute_feature_stats(
            SpeechDataset(kept, tokenizer, frontend, text_field=data.text_field), max_items=400
        )
        if rank == 0:
            tmp = stats_path.with_suffix(".tmp")
            torch.save({"mean": mean, "std": std}, tmp)
            os.replace(tmp, stats_path)

    config = CTCConfig(
        input_dim=recipe.features.num_mel_bins,
        vocab_size=tokenizer.vocab_size,
        encoder=recipe.model.encoder,
        specaugment=recipe.model.specaugment,
    )
    torch.manual_seed(recipe.train.seed)
    model = ctc_model_from_config(config, feature_mean=mean, feature_std=std)
    n_params = sum(p.numel() for p in model.parameters())
    _say(rank, f"model: CTC Conformer, {n_params / 1e6:.2f} M parameters, vocabulary {tokenizer.vocab_size}")

    sampler = BucketBatchSampler(
        [u.duration for u in kept], max_seconds=data.max_batch_seconds, max_batch_size=data.max_batch_size,
        shuffle=True, seed=recipe.train.seed, num_buckets=data.num_buckets, curriculum=recipe.train.curriculum,
        rank=rank, world_size=world_size,
    )
    dev_set = dev_sampler = evaluate_fn = None
    if data.dev:
        dev_utts, dev_report = prepare_utterances(
            _read(data.dev, "dev"), tokenizer, min_duration=data.min_duration, max_duration=data.max_duration,
            text_field=data.text_field,
        )
        dev_utts = dev_utts[: data.dev_max_utterances] if data.dev_max_utterances else dev_utts
        _say(rank, f"dev: {len(dev_utts)} utterances; {dev_report}")
        dev_set = SpeechDataset(dev_utts, tokenizer, frontend, text_field=data.text_field)
        dev_sampler = BucketBatchSampler(
            [u.duration for u in dev_utts], max_seconds=data.max_batch_seconds, shuffle=False, seed=0,
            num_buckets=data.num_buckets,
        )
        evaluate_fn = _greedy_cer_fn(dev_set, dev_sampler, tokenizer, dev_utts, data.text_field)

    extra = {"ctc": package_metadata(config, recipe.features, tokenizer), "recipe": to_mapping(recipe)}
    trainer = Trainer(
        model, train_set, sampler, collate_speech, recipe.train, out,
        dev_dataset=dev_set, dev_sampler=dev_sampler, evaluate_fn=evaluate_fn, extra_state=extra,
    )
    t0 = time.time()
    result = trainer.fit(resume=resume)
    summary: dict[str, Any] = {
        "out_dir": str(out),
        "train_seconds": round(time.time() - t0, 1),
        "utterances_per_second": round(result.items_per_second, 2),
        "peak_rss_mb": _peak_rss_mb(),
        "parameters": n_params,
        "train_utterances": len(kept),
        "train_hours": round(sum(u.duration for u in kept) / 3600, 2),
        "result": _plain(result),
    }
    if rank != 0:
        return summary

    import yaml

    write_atomic(out / "recipe.yaml", yaml.safe_dump(to_mapping(recipe), sort_keys=False))
    final = getattr(result, "averaged_checkpoint", None) or getattr(result, "last_checkpoint", None)
    if final is not None:
        pkg = load_ctc(final, device="cpu")
        save_ctc(out / WEIGHTS_FILENAME, pkg.model, pkg.config, pkg.features, pkg.tokenizer, dtype=torch.float32,
                 extra={"decode": to_mapping(recipe.decode)})
        summary["model"] = str(out / WEIGHTS_FILENAME)
    lm_path = train_lm_for(_texts(kept, data.text_field), out / LM_FILENAME, recipe.decode.lm_order)
    summary["lm"] = str(lm_path)
    write_atomic(out / "train_summary.json", json.dumps(summary, indent=2))
    return summary


def train_lm_for(texts: list[str], path: Path, order: int) -> Path:
    """An ARPA n-gram LM on ``texts`` (KenLM's lmplz when installed, else our estimator)."""
    from ..decoding.lm import train_arpa

    return Path(train_arpa(texts, path, order=order))


def _greedy_cer_fn(dataset, sampler, tokenizer, utts, text_field):
    refs = {u.id: getattr(u, text_field) for u in utts}

    @torch.no_grad()
    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        from ..decoding.ctc import ctc_greedy

        inner = getattr(model, "module", model)
        device = next(inner.parameters()).device
        hyps, references = [], []
        for indices in sampler:
            batch = collate_speech([dataset[i] for i in indices])
            if batch.get("empty"):
                continue
            lp, lens = inner.encode(batch["features"].to(device), batch["feature_lens"].to(device))
            for uid, toks in zip(batch["ids"], ctc_greedy(lp.float(), lens)):
                hyps.append(tokenizer.decode(toks))
                references.append(refs[uid])
        return {
            "cer": error_rate(references, hyps, unit="char", normalizer=None).rate,
            "wer": error_rate(references, hyps, unit="word", normalizer=None).rate,
        }

    return evaluate


def _plain(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {k: _plain(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _peak_rss_mb() -> float:
    """Peak resident memory of this process and of its finished children (data-loader workers), in MB."""
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(kb / 1024, 1)


def _say(rank: int, message: str) -> None:
    if rank == 0:
        print(message, file=sys.stderr, flush=True)


# -- evaluation ---------------------------------------------------------------------------------------------


def evaluate_manifest(
    asr: CTCASR,
    manifest: str | os.PathLike,
    *,
    modes: tuple[str, ...] = ("greedy",),
    beam_size: int = 8,
    text_field: str = "normalized_text",
    batch_size: int = 16,
    max_utterances: int | None = None,
    hypotheses_out: str | os.PathLike | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """CER/WER of ``asr`` on a manifest for each decoding mode (``greedy``, ``beam``, ``beam_lm``).

    The acoustic model runs once per batch; every mode decodes the same log-probs. Unreadable audio is skipped
    and counted, never fatal.
    """
    from ..errors import AudioError

    utts = read_manifest(manifest)
    if max_utterances:
        utts = utts[:max_utterances]
    if "beam_lm" in modes and asr.lm() is None:
        raise ConfigError(f"{asr.name}: mode 'beam_lm' needs an LM (lm.arpa beside the model, or --lm)")
    settings = {
        "greedy": dict(beam_size=1, use_lm=False),
        "beam": dict(beam_size=beam_size, use_lm=False),
        "beam_lm": dict(beam_size=beam_size, use_lm=True),
    }
    unknown = [m for m in modes if m not in settings]
    if unknown:
        raise ConfigError(f"unknown decoding mode {unknown[0]!r}; choose from {list(settings)}")
    hyps: dict[str, list[str]] = {m: [] for m in modes}
    refs: list[str] = []
    ids: list[str] = []
    decode_s = {m: 0.0 for m in modes}
    skipped: list[str] = []
    audio_s = encode_s = 0.0
    bar = _progress_bar(len(utts), progress)
    for b in range(0, len(utts), batch_size):
        chunk, waves = [], []
        for u in utts[b : b + batch_size]:
            try:
                wave = load_utterance_audio(u)
            except (AudioError, OSError) as e:
                skipped.append(f"{u.id}: {e}")
                continue
            chunk.append(u)
            waves.append(wave)
        if bar is not None:
            bar.update(len(utts[b : b + batch_size]))
        if not chunk:
            continue
        t0 = time.perf_counter()
        lp, lens = asr.log_probs(waves)
        encode_s += time.perf_counter() - t0
        audio_s += sum(len(w) for w in waves) / SAMPLE_RATE
        for mode in modes:
            t0 = time.perf_counter()
            tokens = asr.decode(lp, lens, **settings[mode])
            decode_s[mode] += time.perf_counter() - t0
            hyps[mode].extend(asr.tokenizer.decode(t) for t in tokens)
        refs.extend(getattr(u, text_field) for u in chunk)
        ids.extend(u.id for u in chunk)
    if bar is not None:
        bar.close()
    results: dict[str, Any] = {
        "manifest": str(manifest), "model": asr.name, "utterances": len(refs), "audio_seconds": round(audio_s, 2),
        "skipped": len(skipped), "skipped_examples": skipped[:5],
    }
    for mode in modes:
        cer = error_rate(refs, hyps[mode], unit="char", normalizer=_light_normalize)
        wer = error_rate(refs, hyps[mode], unit="word", normalizer=_light_normalize)
        results[mode] = {
            "cer": round(cer.rate * 100, 2), "wer": round(wer.rate * 100, 2),
            "rtf": round((encode_s + decode_s[mode]) / max(audio_s, 1e-9), 4),
        }
    if hypotheses_out:
        lines = [
            json.dumps({"id": i, "reference": r, **{m: hyps[m][k] for m in modes}}, ensure_ascii=False) + "\n"
            for k, (i, r) in enumerate(zip(ids, refs))
        ]
        write_atomic(Path(hypotheses_out), "".join(lines))
    return results


def _light_normalize(text: str) -> str:
    return " ".join(text.lower().replace("\u2581", " ").split())


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="utt", desc="evaluate")
