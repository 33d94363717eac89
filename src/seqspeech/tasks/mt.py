"""Task ``mt``: text machine translation (:mod:`seqspeech.st.mt`) on sentence pairs, with the one trainer.

A recipe (``recipes/synth_es_en/mt.yaml``)::

    task: mt
    data: {pairs: 60000, dev: 300, test: 500, seed: 0, batch_tokens: 3000}
    tokenizer: {vocab_size: 1000}
    model: {dim: 256, encoder_layers: 4, decoder_layers: 3, train_wait_k: [0, 1, 3, 5, 7]}
    train: {max_minutes: 25, lr: 1e-3, warmup_steps: 800}

The pairs come from the Spanish-English generator (:func:`~seqspeech.data.corpora.synth_es_en.generate_parallel`)
in spoken form on both sides (what a recogniser writes and a voice speaks: :func:`verbalize_es`,
:func:`verbalize_en`); dev and test sentences never occur in training (distinct Spanish sides), and neither do
the sentences of any manifest in ``data.exclude`` (a speech corpus's dev and test splits). One shared unigram
SentencePiece vocabulary covers both languages. The dev metric is greedy BLEU (sacrebleu); after training the run
folder holds ``model/`` (a :class:`~seqspeech.st.mt.Translator` package) and ``train_summary.json`` with test BLEU,
greedy and beam, and BLEU with Average Lagging for each wait-k in ``eval_wait_k``.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import from_mapping, to_mapping
from ..errors import ConfigError, DataError
from ..fileio import write_atomic
from ..training.trainer import Trainer, TrainerConfig
from .speech import peak_rss_mb, plain

PAIR_SOURCES = ("synth_es_en",)


@dataclass(frozen=True)
class MTData:
    pairs: int = 60000
    dev: int = 300
    test: int = 500
    seed: int = 0
    source: str = "synth_es_en"
    exclude: tuple[str, ...] = ()
    batch_tokens: int = 3000
    dev_bleu_sentences: int = 200

    def __post_init__(self) -> None:
        object.__setattr__(self, "exclude", tuple(self.exclude))
        if self.source not in PAIR_SOURCES:
            raise ConfigError(f"data.source must be one of {list(PAIR_SOURCES)}, got {self.source!r}")
        for name in ("pairs", "dev", "test", "batch_tokens", "dev_bleu_sentences"):
            if getattr(self, name) < 1:
                raise ConfigError(f"data.{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class MTTokenizer:
    vocab_size: int = 1000
    model_type: str = "unigram"


@dataclass(frozen=True)
class MTRecipe:
    task: str = "mt"
    data: MTData = MTData()
    tokenizer: MTTokenizer = MTTokenizer()
    model: dict[str, Any] = field(default_factory=dict)
    train: TrainerConfig = TrainerConfig(max_minutes=25.0)
    beam_size: int = 5
    eval_wait_k: tuple[int, ...] = (1, 3, 5, 7)

    def __post_init__(self) -> None:
        if self.task != "mt":
            raise ConfigError(f"task must be 'mt' for this recipe class, got {self.task!r}")
        object.__setattr__(self, "eval_wait_k", tuple(self.eval_wait_k))
        model_config(self, vocab_size=8)  # validate the model section before any data is made


def model_config(recipe: MTRecipe, vocab_size: int) -> Any:
    from ..st.mt import MTConfig

    if "vocab_size" in recipe.model:
        raise ConfigError("model.vocab_size is set from the tokenizer; remove it from the recipe")
    return MTConfig.from_dict({**recipe.model, "vocab_size": vocab_size}, "model")


def load_recipe(data: dict[str, Any], where: str) -> MTRecipe:
    return from_mapping(MTRecipe, data, where)


def make_pairs(data: MTData) -> dict[str, list[tuple[str, str]]]:
    """Spoken-form (source, target) pairs split into train/dev/test by distinct source sentence."""
    from ..data.corpora.synth_es_en import generate_parallel
    from ..data.manifest import read_manifest
    from ..text.verbalize import verbalize_en, verbalize_es

    excluded: set[str] = set()
    for path in data.exclude:
        excluded.update(verbalize_es(utt.text) for utt in read_manifest(path) if utt.language == "es")
    seen: set[str] = set()
    pairs = []
    for es, en in generate_parallel(data.pairs + data.dev + data.test, seed=data.seed):
        src = verbalize_es(es)
        if src in seen or src in excluded:
            continue
        seen.add(src)
        pairs.append((src, verbalize_en(en)))
    random.Random(f"seqspeech-mt-{data.seed}").shuffle(pairs)
    if len(pairs) < data.dev + data.test + 1:
        raise DataError(f"only {len(pairs)} distinct pairs; need more than dev + test = {data.dev + data.test}")
    return {"dev": pairs[: data.dev], "test": pairs[data.dev : data.dev + data.test],
            "train": pairs[data.dev + data.test :]}


class PairDataset:
    """Token-id pairs; item ``i`` -> ``(source ids, target ids)``."""

    def __init__(self, pairs: list[tuple[str, str]], tokenizer: Any) -> None:
        self.items = [(tokenizer.encode(s), tokenizer.encode(t)) for s, t in pairs]
        self.items = [(s, t) for s, t in self.items if s and t]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[list[int], list[int]]:
        return self.items[index]

    def lengths(self) -> list[float]:
        return [float(max(len(s), len(t) + 1)) for s, t in self.items]


def collate_pairs(items: list[tuple[list[int], list[int]]]) -> dict[str, Any]:
    """``src (B, S)``, ``src_lens``, ``tgt_in`` (``<sos/eos>`` + target), ``tgt_out`` (target + ``<sos/eos>``,
    -100 at padding)."""
    from ..decoding.attention import SOS_EOS

    batch = len(items)
    src_lens = torch.tensor([len(s) for s, _ in items])
    tgt_lens = torch.tensor([len(t) + 1 for _, t in items])
    src = torch.zeros(batch, int(src_lens.max()), dtype=torch.long)
    tgt_in = torch.full((batch, int(tgt_lens.max())), SOS_EOS, dtype=torch.long)
    tgt_out = torch.full((batch, int(tgt_lens.max())), -100, dtype=torch.long)
    for i, (s, t) in enumerate(items):
        src[i, : len(s)] = torch.tensor(s)
        tgt_in[i, 1 : len(t) + 1] = torch.tensor(t)
        tgt_out[i, : len(t)] = torch.tensor(t)
        tgt_out[i, len(t)] = SOS_EOS
    return {"src": src, "src_lens": src_lens, "tgt_in": tgt_in, "tgt_out": tgt_out, "ids": list(range(batch))}


def corpus_bleu(hypotheses: list[str], references: list[str]) -> float:
    """sacrebleu corpus BLEU (13a tokenisation), one reference per sentence."""
    import sacrebleu

    return round(float(sacrebleu.corpus_bleu(hypotheses, [references]).score), 2)


def evaluate_translator(translator: Any, pairs: list[tuple[str, str]], *, beam_size: int,
                        wait_ks: tuple[int, ...] = (), batch: int = 64) -> dict[str, Any]:
    """Test BLEU (greedy and beam, the whole source) and, per wait-k, greedy BLEU with Average Lagging in source
    tokens (the policy's own unit)."""
    from ..st.mt import average_lagging, wait_k_delays

    sources, references = [s for s, _ in pairs], [t for _, t in pairs]

    def run(beam: int, k: int | None) -> list[str]:
        out: list[str] = []
        for i in range(0, len(sources), batch):
            out += translator.translate(sources[i : i + batch], beam_size=beam, wait_k=k)
        return out

    t0 = time.perf_counter()
    greedy = run(1, None)
    seconds = time.perf_counter() - t0
    result: dict[str, Any] = {"sentences": len(pairs), "bleu_greedy": corpus_bleu(greedy, references),
                              "bleu_beam": corpus_bleu(run(beam_size, None), references), "beam_size": beam_size,
                              "greedy_sentences_per_second": round(len(pairs) / seconds, 1), "wait_k": []}
    src_lens = [len(translator.encode_source(s)) for s in sources]
    for k in wait_ks:
        hyps = run(1, k)
        lags = []
        for hyp, n in zip(hyps, src_lens):
            m = max(1, len(translator.tokenizer.encode(hyp)))
            lags.append(average_lagging(wait_k_delays(k, n, m), n, m))
        result["wait_k"].append({"k": k, "bleu": corpus_bleu(hyps, references),
                                 "average_lagging_tokens": round(sum(lags) / len(lags), 2)})
    result["examples"] = [{"source": s, "reference": r, "greedy": h} for (s, r), h in zip(pairs[:5], greedy)]
    return result


def train_mt(recipe: MTRecipe, out_dir: str | os.PathLike, *, resume: bool = False) -> dict[str, Any]:
    """Train an MT model from ``recipe`` into ``out_dir``; returns the summary (also ``train_summary.json``)."""
    import yaml

    from ..st.mt import MTModel, Translator
    from ..text.tokenizers import BPETokenizer, tokenizer_from_dict, tokenizer_to_dict
    from ..training.checkpoint import latest_checkpoint, load_checkpoint
    from ..data.samplers import BucketBatchSampler

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = lambda message: print(f"[mt] {message}", flush=True)  # noqa: E731
    splits = make_pairs(recipe.data)
    say(f"pairs: {len(splits['train'])} train, {len(splits['dev'])} dev, {len(splits['test'])} test")
    newest = latest_checkpoint(out) if resume else None
    if newest is not None:  # the tokenizer the run started with
        tokenizer = tokenizer_from_dict(load_checkpoint(newest)["extra"]["tokenizer"], str(newest))
    else:
        texts = [s for s, _ in splits["train"]] + [t for _, t in splits["train"]]
        tokenizer = BPETokenizer.train(texts, vocab_size=recipe.tokenizer.vocab_size,
                                       model_type=recipe.tokenizer.model_type)
    config = model_config(recipe, tokenizer.vocab_size)
    torch.manual_seed(recipe.train.seed)
    model = MTModel(config)
    n_params = sum(p.numel() for p in model.parameters())
    say(f"model: {n_params / 1e6:.2f} M parameters, vocabulary {tokenizer.vocab_size}, "
        f"wait-k in training {list(config.train_wait_k)}")
    train_set = PairDataset(splits["train"], tokenizer)
    dev_set = PairDataset(splits["dev"], tokenizer)
    sampler = BucketBatchSampler(train_set.lengths(), max_seconds=recipe.data.batch_tokens, seed=recipe.train.seed,
                                 curriculum=recipe.train.curriculum)
    dev_sampler = BucketBatchSampler(dev_set.lengths(), max_seconds=recipe.data.batch_tokens, shuffle=False)
    dev_pairs = splits["dev"][: recipe.data.dev_bleu_sentences]

    def evaluate(m: torch.nn.Module) -> dict[str, float]:
        translator = Translator(m, tokenizer, beam_size=1)
        hyps = translator.translate([s for s, _ in dev_pairs], beam_size=1)
        return {"bleu": corpus_bleu(hyps, [t for _, t in dev_pairs])}

    extra = {"tokenizer": tokenizer_to_dict(tokenizer), "config": config.to_dict(), "recipe": plain(to_mapping(recipe))}
    trainer = Trainer(model, train_set, sampler, collate_pairs, recipe.train, out, dev_dataset=dev_set,
                      dev_sampler=dev_sampler, evaluate_fn=evaluate, extra_state=extra)
    t0 = time.time()
    result = trainer.fit(resume=resume)
    final = result.averaged_checkpoint or result.last_checkpoint
    if final is not None:
        model.load_state_dict(load_checkpoint(final)["model"])
    translator = Translator(model, tokenizer, name="mt", beam_size=recipe.beam_size)
    write_atomic(out / "recipe.yaml", yaml.safe_dump(plain(to_mapping(recipe)), sort_keys=False))
    say("evaluating on the test pairs")
    test = evaluate_translator(translator, splits["test"], beam_size=recipe.beam_size, wait_ks=recipe.eval_wait_k)
    summary = {
        "out_dir": str(out), "train_seconds": round(time.time() - t0, 1), "peak_rss_mb": peak_rss_mb(),
        "parameters": n_params, "train_pairs": len(train_set), "vocab_size": tokenizer.vocab_size,
        "result": plain(result), "test": test,
    }
    translator.save(out / "model")
    summary["model"] = str(out / "model")
    write_atomic(out / "train_summary.json", json.dumps(summary, indent=2, ensure_ascii=False))
    say(f"test BLEU greedy {test['bleu_greedy']}, beam {test['bleu_beam']}; "
        + ", ".join(f"wait-{w['k']} {w['bleu']} (AL {w['average_lagging_tokens']})" for w in test["wait_k"]))
    return summary
