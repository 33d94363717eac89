"""Task ``tts``: train a speech-synthesis part — the CTC duration aligner, FastSpeech 2, Tacotron 2 or HiFi-GAN —
from a recipe, with the one trainer.

A recipe (``recipes/synth_en/tts_fastspeech2.yaml``)::

    task: tts
    data: {train: data/tts_slt/train.jsonl, dev: data/tts_slt/dev.jsonl, max_batch_seconds: 100, pitch: true}
    frontend: {mode: phoneme}
    model: {family: fastspeech2, preset: small, dropout: 0.1, ...}
    aligner: runs/tts_slt-aligner/model.safetensors     # FastSpeech 2: where the durations come from
    train: {max_minutes: 30, lr: 1e-3, ...}
    eval: {test: data/tts_slt/test.jsonl}

``model`` holds ``family``, an optional ``preset`` (a factory of the family: ``small`` / ``base`` for the acoustic
models, ``v1`` / ``v2`` / ``v3`` / ``istft_v2`` (iSTFTNet head) for HiFi-GAN) and fields of that family's config that
override it; ``vocab_size`` and ``n_mels`` come from the front end and the mel settings. Unknown keys are errors
naming them.

A HiFi-GAN recipe may fine-tune on an acoustic model's ground-truth-aligned mels (the mels it predicts with the
recordings' own durations, pitch and energy, or teacher-forced for Tacotron 2: frame-aligned with the audio, so the
vocoder learns to undo that model's smoothing)::

    finetune: {acoustic: runs/synth_slt-fastspeech2/model.safetensors,   # FastSpeech 2 needs 'aligner' too
               init: runs/synth_slt-hifigan/snapshot-25min.pt}           # a trainer checkpoint keeps the discriminators

Any recipe may start from given weights instead of from scratch — e.g. a shipped voice trained on for longer::

    finetune: {init: models/slt/acoustic.safetensors}

Durations for FastSpeech 2 come from our own CTC aligner (trained by this task with ``family: ctc_aligner`` on the
same corpus): forced alignment of each utterance's tokens to its mel frames. Pitch is the F0 tracker's frame F0
averaged per token (voiced frames only) and energy the frame magnitude norm averaged per token, both standardised
with the training set's statistics, which are stored in the model config.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import from_mapping, to_mapping
from ..data.manifest import read_manifest
from ..data.samplers import BucketBatchSampler
from ..errors import ConfigError
from ..fileio import write_atomic
from ..training.trainer import Trainer, TrainerConfig
from ..tts.data import (
    TTSDataConfig, TTSDataset, TTSItem, VocoderDataset, collate_tts, collate_vocoder, filter_utterances,
    load_or_compute_items,
)
from ..tts.mel import MelConfig
from ..tts.package import TTS_FAMILIES, load_tts_package, save_tts_package, tts_family_parts, tts_metadata
from .speech import final_checkpoint, peak_rss_mb, plain

WEIGHTS_FILENAME = "model.safetensors"
PRESETS: dict[str, dict[str, str]] = {  # family -> preset name -> factory in the family's module
    "tacotron2": {"small": "tacotron2_small", "base": "tacotron2_base"},
    "fastspeech2": {"small": "fastspeech2_small", "base": "fastspeech2_base"},
    "hifigan": {"v1": "hifigan_v1", "v2": "hifigan_v2", "v3": "hifigan_v3", "istft_v2": "istftnet_v2"},
    "ctc_aligner": {},
}
TEXT_FAMILIES = ("tacotron2", "fastspeech2", "ctc_aligner")


@dataclass(frozen=True)
class FrontendSection:
    mode: str = "phoneme"

    def __post_init__(self) -> None:
        if self.mode not in ("phoneme", "char"):
            raise ConfigError(f"frontend.mode must be 'phoneme' or 'char', got {self.mode!r}")

    def build(self) -> Any:
        from ..text.frontend import TTSFrontend

        return TTSFrontend(mode=self.mode)


@dataclass(frozen=True)
class FinetuneSection:
    """Fine-tuning. ``init``: the weights to start from, for any family — a package (a shipped voice's
    ``acoustic.safetensors`` or ``vocoder.safetensors``, a run's ``model.safetensors``; for HiFi-GAN the generator
    only, the discriminators start afresh) or a trainer checkpoint (``.pt``: every weight). ``acoustic`` (HiFi-GAN
    only): the FastSpeech 2 or Tacotron 2 model (package or checkpoint) whose ground-truth-aligned mels replace the
    recordings' mels (None: train on the recordings' mels). One of the two is needed."""

    acoustic: str | None = None
    init: str | None = None

    def __post_init__(self) -> None:
        if not self.acoustic and not self.init:
            raise ConfigError("finetune needs 'acoustic' (ground-truth-aligned mels), 'init' (a vocoder to start "
                              "from), or both")


@dataclass(frozen=True)
class TTSRecipe:
    data: TTSDataConfig
    model: dict[str, Any]
    task: str = "tts"
    frontend: FrontendSection = FrontendSection()
    mel: MelConfig = MelConfig()
    aligner: str | None = None
    finetune: FinetuneSection | None = None
    train: TrainerConfig = TrainerConfig(max_minutes=30.0)
    eval: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task != "tts":
            raise ConfigError(f"task must be 'tts' for this recipe class, got {self.task!r}")
        if self.family == "fastspeech2" and not self.aligner:
            raise ConfigError("a fastspeech2 recipe needs 'aligner': the CTC aligner model that gives durations")
        if self.family == "fastspeech2" and not self.data.pitch:
            raise ConfigError("a fastspeech2 recipe needs data.pitch: true (pitch and energy targets)")
        if self.finetune is not None and self.finetune.acoustic and self.family != "hifigan":
            raise ConfigError(f"finetune.acoustic is for HiFi-GAN recipes (ground-truth-aligned mels), not "
                              f"{self.family}; finetune.init starts any model from given weights")
        model_config(self, vocab_size=8)  # validate the model section now, not after feature extraction

    @property
    def family(self) -> str:
        return str(self.model.get("family"))


def model_config(recipe: TTSRecipe, vocab_size: int, **stats: Any) -> Any:
    """The family's config from the recipe's ``model`` section (preset, then overrides; strict)."""
    family = recipe.model.get("family")
    if family not in TTS_FAMILIES:
        raise ConfigError(f"model.family must be one of {sorted(TTS_FAMILIES)}, got {family!r}")
    fields = {k: v for k, v in recipe.model.items() if k not in ("family", "preset")}
    config_cls, _ = tts_family_parts(family)
    names = {f.name for f in dataclasses.fields(config_cls)}
    mel = recipe.mel
    fixed_fields = {k: v for k, v in (("n_mels", mel.n_mels), ("hop_length", mel.hop_length),
                                      ("sample_rate", mel.sample_rate)) if k in names}
    if family in TEXT_FAMILIES:
        fixed_fields["vocab_size"] = vocab_size
    for fixed in fixed_fields:
        if fixed in fields:
            raise ConfigError(f"model.{fixed} is set from the front end / mel settings; remove it from the recipe")
    preset = recipe.model.get("preset")
    base: dict[str, Any] = {}
    if preset is not None:
        factories = PRESETS.get(family, {})
        if preset not in factories:
            raise ConfigError(f"model.preset {preset!r} unknown for {family}; choose from {sorted(factories)}")
        import importlib

        module = importlib.import_module(TTS_FAMILIES[family].split(":")[0])
        factory = getattr(module, factories[preset])
        base = (factory(vocab_size) if family in TEXT_FAMILIES else factory()).to_dict()
    data = {**base, **fields, **fixed_fields, **stats}
    return config_cls.from_dict(data, "model")


def load_recipe(data: dict[str, Any], where: str) -> TTSRecipe:
    return from_mapping(TTSRecipe, data, where)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------- targets for FastSpeech 2


def fastspeech2_targets(items: list[TTSItem], aligner_path: str, cache: Path, name: str) -> dict[str, dict]:
    """Per utterance: durations (aligner), token pitch and energy (raw: Hz and magnitude norm), cached."""
    from ..tts.alignment import average_by_duration

    path = cache / f"{name}-fs2-targets-{Path(aligner_path).stat().st_mtime_ns}.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    from tqdm import tqdm

    aligner = load_tts_package(aligner_path, family="ctc_aligner", device="cpu").model
    out: dict[str, dict] = {}
    failures = 0
    for item in tqdm(items, desc=f"durations ({name})", unit="utt", file=sys.stderr):
        try:
            with torch.inference_mode():
                durations = aligner.align(item.mel.float(), item.tokens.long())
        except (ValueError, RuntimeError) as err:  # DataError is a ValueError: too few frames for the tokens
            failures += 1
            if failures <= 3:
                _say(f"skipping {item.id}: {err}")
            continue
        d = durations.long().unsqueeze(0)
        pitch = average_by_duration(item.f0.float().unsqueeze(0), d, ignore_zeros=True)[0]
        energy = average_by_duration(item.energy.float().unsqueeze(0), d)[0]
        out[item.id] = {"durations": durations.to(torch.int16), "pitch": pitch, "energy": energy}
    if failures:
        _say(f"{name}: {failures} utterances could not be aligned and are left out")
    tmp = path.with_suffix(".tmp")
    torch.save(out, tmp)
    os.replace(tmp, path)
    return out


def pitch_energy_stats(targets: dict[str, dict]) -> dict[str, float]:
    """Mean and std of the natural log of voiced token pitch (Hz) and of linear token energy over the training
    set: the normalisation FastSpeech 2's config stores (:meth:`FastSpeech2Config.normalize_pitch`)."""
    pitch = torch.cat([t["pitch"][t["pitch"] > 0] for t in targets.values()]).log()
    energy = torch.cat([t["energy"] for t in targets.values()])
    return {"pitch_mean": float(pitch.mean()), "pitch_std": float(pitch.std()),
            "energy_mean": float(energy.mean()), "energy_std": float(energy.std())}


def mel_stats(items: list[TTSItem]) -> dict[str, float]:
    """Mean and std of every log-mel value of the training set: the aligner's input standardisation."""
    total = count = square = 0.0
    for item in items:
        mel = item.mel.double()
        total += float(mel.sum())
        square += float((mel * mel).sum())
        count += mel.numel()
    mean = total / max(count, 1)
    return {"mel_mean": mean, "mel_std": max((square / max(count, 1) - mean * mean) ** 0.5, 1e-3)}


def _fs2_extras(targets: dict[str, dict], config: Any):
    def extras(item: TTSItem) -> dict[str, torch.Tensor]:
        t = targets[item.id]
        return {"durations": t["durations"].long(), "pitch": config.normalize_pitch(t["pitch"]).float(),
                "energy": config.normalize_energy(t["energy"]).float()}

    return extras


# ----------------------------------------------------------------- HiFi-GAN fine-tuning


def ground_truth_aligned_mels(items: list[TTSItem], recipe: TTSRecipe, cache: Path, name: str) -> dict[str, Any]:
    """Per utterance id: the fine-tuning acoustic model's ground-truth-aligned mel ``(n_mels, T)`` (float16, the
    recording's T frames), cached next to the features. FastSpeech 2 takes the aligner's durations and the
    recordings' token pitch and energy; Tacotron 2 is teacher-forced (prenet dropout seeded per utterance).
    Utterances the aligner cannot align are left out."""
    assert recipe.finetune is not None
    source = Path(recipe.finetune.acoustic)
    if not source.is_file():
        raise ConfigError(f"finetune.acoustic: {source}: no such file")
    path = cache / f"{name}-gta-{source.stem}-{source.stat().st_mtime_ns}.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    from tqdm import tqdm

    acoustic = load_tts_package(source, family=("fastspeech2", "tacotron2"), device="cpu")
    if acoustic.mel != recipe.mel:
        raise ConfigError(f"finetune.acoustic: {source}: its mel settings {acoustic.mel} differ from the recipe's")
    extras = None
    if acoustic.family == "fastspeech2":
        if not recipe.aligner:
            raise ConfigError("fine-tuning on FastSpeech 2 mels needs 'aligner' (the durations it was trained with)")
        if not recipe.data.pitch:
            raise ConfigError("fine-tuning on FastSpeech 2 mels needs data.pitch: true (its pitch and energy inputs)")
        targets = fastspeech2_targets(items, recipe.aligner, cache, name)
        items = [i for i in items if i.id in targets]
        extras = _fs2_extras(targets, acoustic.config)
    dataset = TTSDataset(items, extras)
    out: dict[str, Any] = {}
    model = acoustic.model.eval()
    for index in tqdm(range(len(dataset)), desc=f"ground-truth-aligned mels ({name})", unit="utt", file=sys.stderr):
        batch = collate_tts([dataset[index]])
        if acoustic.family == "fastspeech2":
            mel = model.ground_truth_aligned(batch)
        else:
            generator = torch.Generator().manual_seed(index)
            mel = model.ground_truth_aligned(batch["tokens"], batch["token_lens"], batch["mels"], batch["mel_lens"],
                                             generator=generator)
        out[dataset.items[index].id] = mel[0].half()
    tmp = path.with_suffix(".tmp")
    torch.save(out, tmp)
    os.replace(tmp, path)
    return out


def init_weights(model: torch.nn.Module, source: str) -> None:
    """Start ``model`` from ``source``: a trainer checkpoint (every weight, HiFi-GAN's discriminators included) or
    a package (HiFi-GAN: the generator)."""
    from ..errors import ModelLoadError
    from ..packaging import checkpoint_package, read_weights

    p = Path(source)
    if not p.is_file():
        raise ConfigError(f"finetune.init: {p}: no such file")
    try:
        if p.suffix == ".pt":
            found = checkpoint_package(p)
            if found is None:
                raise ModelLoadError(f"{p}: trainer checkpoint without a model description")
            model.load_state_dict(found[1])
        else:
            load = getattr(model, "load_inference_state_dict", model.load_state_dict)
            load(read_weights(p)[1])
    except RuntimeError as e:
        detail = " ".join(str(e).split())
        detail = detail if len(detail) <= 300 else detail[:300] + " ..."
        raise ConfigError(f"finetune.init: {p}: its weights do not fit the recipe's {type(model).__name__} "
                          f"(another family or size?): {detail}") from None


# ----------------------------------------------------------------- training


def train_tts(recipe: TTSRecipe, out_dir: str | os.PathLike, *, resume: bool = False) -> dict[str, Any]:
    """Train one TTS part from ``recipe`` into ``out_dir``; returns a summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    family = recipe.family
    frontend = recipe.frontend.build()
    data = recipe.data
    cache = data.cache_folder()
    sets: dict[str, tuple[list, list[TTSItem]]] = {}
    for name, manifest in (("train", data.train), ("dev", data.dev)):
        if manifest is None:
            continue
        utts, dropped = filter_utterances(read_manifest(manifest), data)
        if name == "dev" and data.dev_max_utterances:
            utts = utts[: data.dev_max_utterances]
        items, problems = load_or_compute_items(utts, frontend, recipe.mel, cache, text_field=data.text_field,
                                                pitch=data.pitch, name=Path(manifest).stem)
        _say(f"{name}: {len(items)} utterances, {sum(i.frames for i in items) * recipe.mel.frame_seconds / 3600:.2f}"
             f" h; dropped {dropped or 'none'}; unusable {len(problems)}"
             + (f" (e.g. {problems[0]})" if problems else ""))
        sets[name] = (utts, items)
    if not sets["train"][1]:
        raise ConfigError(f"{data.train}: no usable training utterances")

    stats: dict[str, float] = {}
    extras = {}
    if family == "fastspeech2":
        assert recipe.aligner is not None
        targets = {name: fastspeech2_targets(items, recipe.aligner, cache, Path(m).stem)
                   for name, m in (("train", data.train), ("dev", data.dev)) if m is not None
                   for items in [sets[name][1]]}
        stats = pitch_energy_stats(targets["train"])
    elif family == "ctc_aligner":
        stats = mel_stats(sets["train"][1])
    config = model_config(recipe, frontend.vocab_size, **stats)
    if family == "fastspeech2":
        for name in sets:
            utts, items = sets[name]
            sets[name] = (utts, [i for i in items if i.id in targets[name]])
            extras[name] = _fs2_extras(targets[name], config)
    gta: dict[str, dict[str, Any]] = {}
    if recipe.finetune is not None and recipe.finetune.acoustic:
        for name in sets:
            utts, items = sets[name]
            gta[name] = ground_truth_aligned_mels(items, recipe, cache, Path(getattr(data, name)).stem)
            sets[name] = (utts, [i for i in items if i.id in gta[name]])
    _, model_cls = tts_family_parts(family)
    torch.manual_seed(recipe.train.seed)
    model = model_cls(config)
    if recipe.finetune is not None and recipe.finetune.init and not resume:
        init_weights(model, recipe.finetune.init)
    n_params = sum(p.numel() for p in model.parameters())
    _say(f"model: {family}, {n_params / 1e6:.2f} M parameters" + (f", vocabulary {frontend.vocab_size}"
                                                                  if family in TEXT_FAMILIES else ""))
    hop_s = recipe.mel.frame_seconds

    def dataset(name: str) -> Any:
        utts, items = sets[name]
        if family == "hifigan":
            return VocoderDataset(utts, items, recipe.mel, config.segment_frames, seed=recipe.train.seed,
                                  random_segments=name == "train", mel_override=gta.get(name))
        return TTSDataset(items, extras.get(name))

    def sampler(name: str, ds: Any) -> BucketBatchSampler:
        if family == "hifigan":
            seconds = [config.segment_frames * hop_s] * len(ds)
        else:
            seconds = ds.durations(hop_s)
        return BucketBatchSampler(seconds, max_seconds=data.max_batch_seconds, max_batch_size=data.max_batch_size,
                                  shuffle=name == "train", seed=recipe.train.seed, num_buckets=data.num_buckets,
                                  curriculum=recipe.train.curriculum and name == "train")

    train_set = dataset("train")
    dev_set = dataset("dev") if "dev" in sets and sets["dev"][1] else None
    package = tts_metadata(family, config, recipe.mel, frontend if family in TEXT_FAMILIES else None)
    trainer = Trainer(
        model, train_set, sampler("train", train_set), collate_vocoder if family == "hifigan" else collate_tts,
        recipe.train, out, dev_dataset=dev_set, dev_sampler=sampler("dev", dev_set) if dev_set else None,
        extra_state={"package": package, "recipe": to_mapping(recipe)},
    )
    t0 = time.time()
    result = trainer.fit(resume=resume)
    summary: dict[str, Any] = {
        "out_dir": str(out), "family": family, "train_seconds": round(time.time() - t0, 1),
        "utterances_per_second": round(result.items_per_second, 2), "peak_rss_mb": peak_rss_mb(),
        "parameters": n_params, "train_utterances": len(sets["train"][1]),
        "train_hours": round(sum(i.frames for i in sets["train"][1]) * hop_s / 3600, 2),
        "result": plain(result), "stats": stats,
    }
    import yaml

    write_atomic(out / "recipe.yaml", yaml.safe_dump(to_mapping(recipe), sort_keys=False))
    final = final_checkpoint(result)
    if final is not None:
        pkg = load_tts_package(final, family=family, device="cpu")
        save_tts_package(out / WEIGHTS_FILENAME, family, pkg.model, pkg.config, mel=pkg.mel, frontend=pkg.frontend,
                         dtype=torch.float32, extra={"stats": stats} if stats else None)
        summary["model"] = str(out / WEIGHTS_FILENAME)
    write_atomic(out / "train_summary.json", json.dumps(summary, indent=2))
    return summary
