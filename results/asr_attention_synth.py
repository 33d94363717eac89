"""Regenerate results/asr_attention_synth.json and the README table for the synth_en attention recipes.

    python results/asr_attention_synth.py [--runs-dir runs] [--max-utterances N] [--only NAME ...]
                                          [--ship RECIPE=DIR]

``--only`` re-scores just the named runs / studies (recipes, ablation variants, ``long_inputs``, ``streaming``) and
keeps every other entry of the existing JSON, so a new run does not re-score the old ones.

For every recipe run found (``runs/synth_en-<recipe>`` for las_content, las_location, las_monotonic, las_mocha,
aed_conformer), the final averaged model is scored on each evaluation manifest, greedy vs beam (the recipe's
stored decoding options: remedies and, for AED, the joint CTC weight), with attention diagnostics; the CTC model's
numbers come from results/asr_ctc_synth.json for comparison. Then, where the runs exist:

* alignment speed: the first dev evaluation at which >= 90 % of dev alignments are diagonal (from the run's log),
  for every run; and the guided-attention ablation: the las_location run (guided loss on) against the same recipe,
  seed and steps without it (``runs/synth_en-las_location-noguide``), each checkpoint up to COMPARE_STEP scored on
  its teacher-forced dev alignments, so the curves show which turns diagonal first;
* long inputs: three test utterances concatenated (0.3 s pauses), decoded whole by content and location-aware LAS
  at the same step (COMPARE_STEP): CER and the share of utterances whose alignment skips, repeats or sticks;
* streaming: the MoChA (and monotonic) model decoded chunk by chunk with :class:`LASStreamer`, CER and token delay
  (audio time between a token's attended frame and its emission) vs the same model offline and the full-attention
  location model, whose every token waits for the end of the utterance;
* head to head (``head_to_head``): the CTC and AED recipes trained side by side on this machine (HEAD_TO_HEAD),
  each with its LM weights tuned on dev, on every evaluation set: the issue's "AED <= CTC at the same training
  time" measured on one clock.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DATA_CARD, LIMITATIONS, ROOT, SET_TITLES, relative, ship, training_summary, update_readme,
)

OUT = ROOT / "results" / "asr_attention_synth.json"
MODES = ("greedy", "beam", "beam_lm")
RECIPES = ("las_content", "las_location", "las_monotonic", "las_mocha", "aed_conformer")
# las_location-80min: an earlier las_location run resumed to 80 minutes (`train --resume --set
# train.max_minutes=80`), kept in the JSON; las_mocha-40min: the las_mocha run's model at 40 minutes, before it was
# resumed to 65 minutes (its model.safetensors, recipe, LM and tokenizer copied to runs/synth_en-las_mocha-40min)
EXTENDED = ("las_location-80min", "las_mocha-40min")
# the guided-attention ablation: variant -> run (las_location as recipe'd, and the same recipe and seed with
# `--set model.guided_attention=null --set train.max_steps=1600`)
ABLATION = {"guided": "las_location", "noguide": "las_location-noguide"}
ABLATION_SHARES = (0.25, 0.5)  # report the first checkpoint step at which this share of dev alignments is diagonal
# the ablation arms and the long-input pair (las_content vs las_location) are compared at the same optimizer step:
# every checkpoint_every=200 steps; las_location keeps all of them (`--set train.keep_checkpoints=30`), the
# no-guide arm and las_content stop at COMPARE_STEP (`--set train.max_steps=1600`)
COMPARE_STEP = 1600
DIAGONAL_SHARE = 0.9
PAUSE_S = 0.3
CHUNK_FRAMES = 16  # 160 ms feature chunks for streaming
# AED vs CTC on one machine and one clock: both recipes trained side by side, one thread each
# (`OMP_NUM_THREADS=1 seqspeech train recipes/synth_en/asr_ctc.yaml --out runs/cmp-ctc` and the AED recipe with
# `--out runs/cmp-aed --set model.ctc_weight=0.5 --set model.decoder_dropout=0.0 --set decode.ctc_weight=0.5`),
# 40 minutes (the run folders then copied to runs/cmp-*-40min), then both resumed to 70
# (`--resume --set train.max_minutes=70`; copied to runs/cmp-*-70min) and to 120, each pinned to its own core
# (`taskset -c 0` / `-c 1`); earlier numbers came from a machine with native bf16, this one has none (AVX2 only,
# float32)
HEAD_TO_HEAD = {"40 min": {"ctc": "cmp-ctc-40min", "aed": "cmp-aed-40min"},
                "70 min": {"ctc": "cmp-ctc-70min", "aed": "cmp-aed-70min"},
                "120 min": {"ctc": "cmp-ctc", "aed": "cmp-aed"}}
CTC_WEIGHTS = (0.3, 0.5, 0.7)  # joint-decoding CTC weights tried on dev for the head-to-head AED
LM_WEIGHTS = (0.0, 0.2, 0.3)  # tuned on dev for beam+LM (0.5 and above made the AED end hypotheses early)
LM_TUNING_UTTERANCES = 100  # dev utterances per LM weight (beam search is the slow part of this script)


def _run_dir(runs_dir: Path, recipe: str) -> Path:
    return runs_dir / f"synth_en-{recipe}"


def evaluate_run(run: Path, max_utterances: int | None, beam_size: int, tune_ctc: bool = False) -> dict:
    """Score the run's model on its recipe's evaluation sets; the LM weight (and with ``tune_ctc`` the joint CTC
    weight first) tuned on dev."""
    import yaml

    from seqspeech.asr.attention_asr import AttentionASR
    from seqspeech.tasks.evaluation import evaluate_manifest

    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    ctc_tuning = tune_ctc_weight(run, recipe["data"]["dev"], beam_size) if tune_ctc else None
    fixed = {"ctc_weight": ctc_tuning["ctc_weight"]} if ctc_tuning else {}
    lm_tuning = tune_lm_weight(run, recipe["data"]["dev"], beam_size, **fixed)
    asr = AttentionASR.from_path(run / "model.safetensors", lm=True, lm_weight=lm_tuning["lm_weight"], **fixed)
    modes = ("greedy", "beam", "beam_lm")
    out = {"run": relative(run), "family": asr.family, "decode": asr.options.to_dict(), "lm_tuning": lm_tuning,
           "sets": {}, "training": training_summary(run), "alignment_speed": alignment_speed(run)}
    if ctc_tuning:
        out["ctc_tuning"] = ctc_tuning
    for name, manifest in recipe.get("eval", {}).items():
        r = evaluate_manifest(asr, manifest, modes=modes, beam_size=beam_size, max_utterances=max_utterances)
        out["sets"][name] = r
        print(f"{run.name:>28}  {name:<18} " + "  ".join(
            f"{m}: CER {r[m]['cer']:.2f} WER {r[m]['wer']:.2f}" for m in modes)
            + f"  diagonal {r['attention']['diagonal_rate']:.2f}", flush=True)
    return out


def _tune(run: Path, dev: str, beam_size: int, key: str, grid: tuple[float, ...], mode: str, **fixed) -> dict:
    """The value of decoding option ``key`` in ``grid`` with the lowest dev CER in ``mode`` (other options: the
    stored ones, or ``fixed``)."""
    from seqspeech.asr.attention_asr import AttentionASR
    from seqspeech.tasks.evaluation import evaluate_manifest

    scores = {}
    for value in grid:
        asr = AttentionASR.from_path(run / "model.safetensors", lm=True, **fixed, **{key: value})
        scores[value] = evaluate_manifest(asr, dev, modes=(mode,), beam_size=beam_size,
                                          max_utterances=LM_TUNING_UTTERANCES)[mode]["cer"]
    best = min(scores, key=lambda w: (scores[w], w))
    print(f"{run.name}: dev CER ({mode}) by {key} " + ", ".join(f"{w}: {c:.2f}" for w, c in scores.items()),
          flush=True)
    return {key: best, "dev_cer": scores[best], "grid": {str(w): c for w, c in scores.items()}}


def tune_lm_weight(run: Path, dev: str, beam_size: int, **fixed) -> dict:
    """The LM weight (shallow fusion, with the stored CTC weight and remedies) with the lowest dev CER."""
    return _tune(run, dev, beam_size, "lm_weight", LM_WEIGHTS, "beam_lm", **fixed)


def tune_ctc_weight(run: Path, dev: str, beam_size: int) -> dict:
    """The joint CTC/attention weight (beam, no LM) with the lowest dev CER."""
    return _tune(run, dev, beam_size, "ctc_weight", CTC_WEIGHTS, "beam")


def alignment_speed(run: Path) -> dict:
    """Steps and minutes until the dev alignments turned diagonal (share >= DIAGONAL_SHARE), from log.jsonl."""
    log = run / "log.jsonl"
    if not log.exists():
        return {}
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    start = next((r["time"] for r in records if r.get("event") == "start"), None)
    history = [(r["step"], r.get("diagonal")) for r in records if r.get("event") == "dev"]
    for r in records:
        if r.get("event") == "dev" and r.get("diagonal", 0.0) >= DIAGONAL_SHARE:
            minutes = round((r["time"] - start) / 60, 1) if start else None
            return {"step": r["step"], "minutes": minutes, "history": history}
    return {"step": None, "minutes": None, "history": history}


def checkpoints_by_step(run: Path) -> dict[int, Path]:
    """The run's kept trainer checkpoints (``step-*.pt``, ``snapshot-*.pt``) by optimizer step."""
    from seqspeech.training.checkpoint import load_checkpoint

    found: dict[int, Path] = {}
    for path in sorted(run.glob("*.pt")):
        if path.name.startswith("step-"):
            found.setdefault(int(path.stem.removeprefix("step-")), path)
        elif path.name.startswith("snapshot-"):
            found.setdefault(int(load_checkpoint(path)["step"]), path)
    return dict(sorted(found.items()))


def alignment_curve(run: Path, manifest: str, max_utterances: int) -> list[dict]:
    """Per kept checkpoint: the teacher-forced attention of the reference transcripts on ``manifest`` (as the
    trainer's dev log): share of diagonal alignments, mean diagonality and focus rate."""
    from seqspeech.asr.attention_asr import AttentionASR
    from seqspeech.data.dataset import load_utterance_audio
    from seqspeech.data.manifest import read_manifest
    from seqspeech.metrics.attention import alignment_metrics

    utts = read_manifest(manifest)[:max_utterances]
    waves = [load_utterance_audio(u) for u in utts]
    curve = []
    for step, path in checkpoints_by_step(run).items():
        if step > COMPARE_STEP:
            continue
        asr = AttentionASR.from_path(path, lm=False)
        metrics = [alignment_metrics(asr.alignments(asr.features([w]), [asr.tokenizer.encode(u.normalized_text)])[0])
                   for u, w in zip(utts, waves)]
        n = max(len(metrics), 1)
        curve.append({"step": step, "diagonal": round(sum(m.is_diagonal for m in metrics) / n, 3),
                      "diagonality": round(sum(m.diagonality for m in metrics) / n, 4),
                      "focus_rate": round(sum(m.focus_rate for m in metrics) / n, 4)})
        print(f"{run.name:>28}  step {step:>5}  diagonal {curve[-1]['diagonal']:.3f}  "
              f"diagonality {curve[-1]['diagonality']:.3f}", flush=True)
    return curve


def ablation_entry(run: Path, max_utterances: int | None) -> dict:
    """A guided-attention ablation arm: its dev alignment curve over checkpoints, the first step at which each of
    ABLATION_SHARES of the dev alignments is diagonal, and the greedy test CER of its last checkpoint."""
    import yaml

    from seqspeech.asr.attention_asr import AttentionASR
    from seqspeech.tasks.evaluation import evaluate_manifest

    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    curve = alignment_curve(run, recipe["data"]["dev"], recipe["data"].get("dev_max_utterances") or 200)
    out = {"run": relative(run), "guided_attention": recipe["model"].get("guided_attention"),
           "training": training_summary(run), "curve": curve,
           "first_step_diagonal": {f"{share:.0%}": next((c["step"] for c in curve if c["diagonal"] >= share), None)
                                   for share in ABLATION_SHARES}}
    if curve:
        last = checkpoints_by_step(run)[curve[-1]["step"]]
        asr = AttentionASR.from_path(last, lm=False)
        r = evaluate_manifest(asr, recipe["eval"]["test"], modes=("greedy",), max_utterances=max_utterances or 100)
        out["test_greedy"] = r["greedy"] | {"step": curve[-1]["step"], "utterances": r["utterances"],
                                            "diagonal_rate": r["attention"]["diagonal_rate"]}
    return out


def long_inputs(model: Path, manifest: str, count: int) -> dict:
    """Decode ``count`` concatenations of three test utterances whole (no windows), and the same utterances one by
    one (``cer_single``: how well the model reads at all); ``length_ratio``: hypothesis / reference characters."""
    import numpy as np

    from seqspeech.asr.attention_asr import AttentionASR
    from seqspeech.data.dataset import load_utterance_audio
    from seqspeech.data.manifest import read_manifest
    from seqspeech.metrics.attention import alignment_metrics, summarize_alignments
    from seqspeech.metrics.wer import error_rate
    from seqspeech.tasks.evaluation import light_normalize

    asr = AttentionASR.from_path(model, lm=False)
    utts = read_manifest(manifest)[: 3 * count]
    pause = np.zeros(int(PAUSE_S * 16000), np.float32)
    refs, hyps, metrics, singles = [], [], [], []
    for i in range(0, len(utts) - 2, 3):
        parts = utts[i : i + 3]
        waves = [load_utterance_audio(u) for u in parts]
        for w in waves:
            memory, lens = asr.encode([w])
            singles.append(asr.tokenizer.decode(asr.decode(memory, lens, beam_size=1, ctc_weight=0.0)[0]))
        wave = np.concatenate([x for w in waves for x in (w, pause)][:-1])
        memory, lens = asr.encode([wave])
        tokens = asr.decode(memory, lens, beam_size=1, ctc_weight=0.0)[0]
        weights = asr.alignments(asr.features([wave]), [tokens])[0]
        metrics.append(alignment_metrics(weights))
        refs.append(" ".join(u.normalized_text for u in parts))
        hyps.append(asr.tokenizer.decode(tokens))
    summary = summarize_alignments(metrics)
    cer = error_rate(refs, hyps, unit="char", normalizer=light_normalize).rate
    wer = error_rate(refs, hyps, unit="word", normalizer=light_normalize).rate
    single = error_rate([u.normalized_text for u in utts[: len(singles)]], singles, unit="char",
                        normalizer=light_normalize).rate
    return {"model": relative(model), "utterances": len(refs), "cer": round(cer * 100, 2), "wer": round(wer * 100, 2),
            "cer_single": round(single * 100, 2),
            # < 1: the model stopped early (deletions), > 1: it looped (insertions)
            "length_ratio": round(sum(map(len, hyps)) / max(sum(map(len, refs)), 1), 3),
            **{k: summary[k] for k in ("skip_rate", "repeat_rate", "stuck_rate", "diagonal_rate")}}


def streaming(run: Path, manifest: str, max_utterances: int, lookahead: int) -> dict:
    """Chunked decoding with LASStreamer: CER, token delay and compute, vs the same model offline."""
    import torch

    from seqspeech.asr.attention_asr import AttentionASR
    from seqspeech.asr.las_streaming import LASStreamer
    from seqspeech.data.dataset import load_utterance_audio
    from seqspeech.data.manifest import read_manifest
    from seqspeech.metrics.wer import error_rate
    from seqspeech.tasks.evaluation import light_normalize

    asr = AttentionASR.from_path(run / "model.safetensors", lm=False)
    ratio = asr.options.max_length_ratio
    streamer = LASStreamer(asr.model, lookahead=lookahead, max_len_ratio=ratio)
    frame_ms = 10.0
    reduction = round(asr.frame_seconds * 1000 / frame_ms)
    refs, streamed, offline, delays = [], [], [], []
    audio_s = compute_s = 0.0
    for u in read_manifest(manifest)[:max_utterances]:
        wave = load_utterance_audio(u)
        feats, lens = asr.features([wave])
        feats = feats[0, : int(lens[0])]
        streamer.reset()
        t0 = time.perf_counter()
        with torch.inference_mode():
            for s in range(0, feats.shape[0], CHUNK_FRAMES):
                streamer.push(feats[s : s + CHUNK_FRAMES])
            streamer.finish()
        compute_s += time.perf_counter() - t0
        audio_s += len(wave) / 16000
        for e in streamer.emissions:
            if e.frame >= 0:  # audio available at emission minus the end of the attended frame
                delays.append((e.input_frames - (e.frame + 1) * reduction) * frame_ms)
        refs.append(u.normalized_text)
        streamed.append(asr.tokenizer.decode(streamer.tokens))
        memory, mlens = asr.encode([wave])
        offline.append(asr.tokenizer.decode(asr.decode(memory, mlens, beam_size=1, ctc_weight=0.0)[0]))
    delays.sort()
    return {
        "utterances": len(refs), "chunk_ms": CHUNK_FRAMES * frame_ms, "lookahead_frames": lookahead,
        "cer_streaming": round(error_rate(refs, streamed, unit="char", normalizer=light_normalize).rate * 100, 2),
        "cer_offline_greedy": round(error_rate(refs, offline, unit="char", normalizer=light_normalize).rate * 100, 2),
        "token_delay_ms_mean": round(sum(delays) / max(len(delays), 1), 1),
        "token_delay_ms_p90": round(delays[int(0.9 * (len(delays) - 1))], 1) if delays else None,
        "rtf_streaming": round(compute_s / max(audio_s, 1e-9), 4),
    }


def full_attention_delay(run: Path, manifest: str, max_utterances: int) -> dict:
    """A full-attention model emits after the utterance ends: per token, utterance end minus its attended frame."""
    from seqspeech.asr.attention_asr import AttentionASR
    from seqspeech.data.dataset import load_utterance_audio
    from seqspeech.data.manifest import read_manifest

    asr = AttentionASR.from_path(run / "model.safetensors", lm=False)
    delays = []
    for u in read_manifest(manifest)[:max_utterances]:
        alignment = asr.alignment(load_utterance_audio(u), beam_size=1)
        frames = alignment.weights.shape[1]
        delays += [(frames - (int(p) + 1)) * asr.frame_seconds * 1000 for p in alignment.metrics.path[:-1]]
    delays.sort()
    return {"token_delay_ms_mean": round(sum(delays) / max(len(delays), 1), 1),
            "token_delay_ms_p90": round(delays[int(0.9 * (len(delays) - 1))], 1) if delays else None}


def head_to_head(runs_dir: Path, max_utterances: int | None, beam_size: int, wanted=lambda budget: True) -> dict:
    """Per wanted training budget, the CTC and AED runs trained side by side (:data:`HEAD_TO_HEAD`)."""
    return {budget: scored for budget, pair in HEAD_TO_HEAD.items()
            if wanted(budget) and (scored := _head_to_head_pair(runs_dir / pair["ctc"], runs_dir / pair["aed"],
                                                                max_utterances, beam_size))}


def _head_to_head_pair(ctc_run: Path, aed_run: Path, max_utterances: int | None, beam_size: int) -> dict:
    """The two runs, each scored on every evaluation set (LM weights tuned on dev: word bonus too for CTC, as in
    results/asr_ctc_synth.py)."""
    import yaml
    from asr_ctc_synth import tune

    from seqspeech.asr.ctc_asr import CTCASR
    from seqspeech.tasks.evaluation import evaluate_manifest

    out = {}
    if (ctc_run / "model.safetensors").exists():
        recipe = yaml.safe_load((ctc_run / "recipe.yaml").read_text())
        probe = CTCASR.from_path(ctc_run / "model.safetensors", lm=ctc_run / "lm.arpa")
        decode = tune(probe, recipe["data"]["dev"], beam_size)
        asr = CTCASR.from_path(ctc_run / "model.safetensors", lm=ctc_run / "lm.arpa",
                               lm_weight=decode["lm_weight"], word_bonus=decode["word_bonus"])
        out["ctc"] = {"run": relative(ctc_run), "decode": decode, "training": training_summary(ctc_run),
                      "sets": {name: evaluate_manifest(asr, manifest, modes=MODES, beam_size=beam_size,
                                                       max_utterances=max_utterances)
                               for name, manifest in recipe.get("eval", {}).items()}}
    if (aed_run / "model.safetensors").exists():
        out["aed"] = evaluate_run(aed_run, max_utterances, beam_size, tune_ctc=True)
    return out


def table(results: dict) -> str:
    ctc = results.get("ctc") or {}
    lines = [
        "| model | evaluation set | CER greedy | CER beam | CER beam+LM | WER greedy | WER beam | WER beam+LM "
        "| diagonal alignments |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, run in results["runs"].items():
        for set_name, r in run["sets"].items():
            lines.append(
                f"| {name} | {SET_TITLES.get(set_name, set_name)} ({r['utterances']} utt) | "
                + " | ".join(f"{r[m]['cer']:.2f} %" for m in MODES) + " | "
                + " | ".join(f"{r[m]['wer']:.2f} %" for m in MODES) + " | "
                + f"{r['attention']['diagonal_rate'] * 100:.0f} % |"
            )
    for set_name, r in ctc.items():
        lines.append(f"| CTC (reference, 40 min averaged) | {SET_TITLES.get(set_name, set_name)} | "
                     + " | ".join(f"{r[m]['cer']:.2f} %" for m in MODES) + " | "
                     + " | ".join(f"{r[m]['wer']:.2f} %" for m in MODES) + " | |")
    lines.append("")
    lines.append("Greedy: attention only. Beam 8 with each recipe's stored options (AED: joint CTC/attention, CTC "
                 "weight 0.3; LAS: EOS threshold 1.5, length penalty 0.6); beam+LM adds the 3-gram word LM with the "
                 "weight tuned on dev (per run, in the JSON). Diagonal: share of utterances whose greedy alignment has "
                 "no skip, repeat or stuck run and most attention near the diagonal (metrics/attention.py). "
                 "Training on 2 CPU cores: aed_conformer and las_location 40 minutes alone; las_content stopped at "
                 f"step {COMPARE_STEP:,} (for the long-input comparison, one thread next to another run); las_mocha "
                 "40 minutes on one thread next to another run (las_mocha-40min), then resumed to 65 minutes "
                 "(las_mocha); las_monotonic 25 minutes alone; las_location-80min: an earlier las_location run, "
                 "before the listener ran padded instead of packed and 3.3x slower, resumed to 80 minutes.")
    for name, run in results["runs"].items():
        training = run.get("training") or {}
        if training.get("steps"):
            lines.append(f"- {name}: {training['steps']:,} steps ({training['utterances_per_second']:.1f} "
                         f"utterances/s), {training['parameters'] / 1e6:.2f} M parameters.")
        speed = run.get("alignment_speed") or {}
        if speed.get("step") is not None:
            lines.append(f"- {name}: dev alignments {DIAGONAL_SHARE:.0%} diagonal at step {speed['step']} "
                         f"({speed['minutes']} min).")
    for name, r in (results.get("guided_attention_ablation") or {}).items():
        test = r.get("test_greedy") or {}
        curve = ", ".join(f"{c['step']}: {c['diagonal']:.0%}" for c in r.get("curve") or [])
        firsts = ", ".join(f"{share} at step {step}" for share, step in (r.get("first_step_diagonal") or {}).items())
        lines.append(f"- Guided-attention ablation, {name} ({r['run']}): diagonal teacher-forced dev alignments by "
                     f"step {curve}; first reached {firsts}; greedy test CER at step {test.get('step')} "
                     f"{test.get('cer')} % ({test.get('utterances')} utt).")
    for budget, pair in (results.get("head_to_head") or {}).items():
        if len(pair) < 2:
            continue
        lines.append(f"- AED vs CTC, same machine and clock (trained side by side, one thread each, {budget}; "
                     "CER greedy / beam / beam+LM): " + "; ".join(
                         f"{SET_TITLES.get(s, s)}: " + ", ".join(
                             f"{k.upper()} " + " / ".join(f"{pair[k]['sets'][s][m]['cer']:.2f}" for m in MODES)
                             for k in ("ctc", "aed"))
                         for s in pair["ctc"]["sets"]) + "; steps " + ", ".join(
                         f"{k.upper()} {pair[k]['training']['steps']:,}" for k in ("ctc", "aed"))
                     + f" (AED: CTC weight 0.5 in training, no decoder dropout; joint CTC weight "
                     f"{pair['aed']['decode']['ctc_weight']} and LM weight {pair['aed']['decode']['lm_weight']} "
                     f"tuned on dev; CTC: LM weight {pair['ctc']['decode']['lm_weight']}, word bonus "
                     f"{pair['ctc']['decode']['word_bonus']}; 2-core AMD EPYC without native bf16, float32).")
    for key, title in (("long_inputs", "Long inputs (3 utterances concatenated)"), ("streaming", "Streaming")):
        for name, r in (results.get(key) or {}).items():
            lines.append(f"- {title}, {name}: " + ", ".join(f"{k} {v}" for k, v in r.items()))
    return "\n".join(lines)


ARCHITECTURES = {
    "las": "LAS: pyramidal BiLSTM listener (x4 time reduction), {attention} attention, LSTM speller; auxiliary CTC "
           "head on the listener",
    "aed": "hybrid CTC/attention: Conformer encoder (as ctc-conformer-synth-en) + Transformer decoder",
}


def ship_attention(recipe: str, run_results: dict, run: Path, dest: Path) -> None:
    """The run's final model (fp16), its LM and a model card into ``dest``."""
    import yaml

    resolved = yaml.safe_load((run / "recipe.yaml").read_text())
    model = resolved["model"]
    card = {
        "architecture": ARCHITECTURES[model["family"]].format(attention=model.get("attention")),
        "parameters": (run_results.get("training") or {}).get("parameters"),
        "tokenizer": "characters; lower-case spoken-form output",
        "recipe": f"recipes/synth_en/{recipe.split('-')[0]}.yaml"
                  + (f" (resumed to {resolved['train']['max_minutes']:g} min of training)" if "-" in recipe else ""),
        "data": DATA_CARD,
        "training": run_results.get("training"),
        "checkpoint": f"{resolved['train']['max_minutes']:g} min, averaged",
        "metrics": {name: {m: r[m] for m in MODES} | {"utterances": r["utterances"],
                                                                 "attention": r.get("attention")}
                    for name, r in run_results["sets"].items()},
        "alignment_speed": run_results.get("alignment_speed"),
        "decoding": f"stored defaults (AttentionDecodeOptions): {run_results['decode']}",
        "files": {"model.safetensors": "weights fp16 + config, features and tokenizer in the metadata",
                  "lm.arpa": "3-gram LM on the training transcripts, for --lm-weight shallow fusion"},
        "limitations": LIMITATIONS,
    }
    ship(run, dest, card, run_results["decode"])


def ctc_reference() -> dict:
    path = ROOT / "results" / "asr_ctc_synth.json"
    if not path.exists():
        return {}
    snaps = json.loads(path.read_text()).get("snapshots") or []
    return snaps[-1]["sets"] if snaps else {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs")
    ap.add_argument("--max-utterances", type=int, default=None)
    ap.add_argument("--beam-size", type=int, default=8)
    ap.add_argument("--long-count", type=int, default=30, help="concatenated triples for the long-input test")
    ap.add_argument("--stream-utterances", type=int, default=100)
    ap.add_argument("--only", nargs="+", default=None, metavar="NAME",
                    help="re-score only these (recipes, ablation variants, long_inputs, streaming, head_to_head or one "
                         "of its budgets, e.g. '120 min'); keep the rest")
    ap.add_argument("--report-only", action="store_true", help="rewrite the README table from the JSON")
    ap.add_argument("--ship", action="append", default=[], metavar="RECIPE=DIR",
                    help="copy a run's model, LM and card, e.g. aed_conformer=models/aed-conformer-synth-en")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from seqspeech.fileio import write_atomic

    if args.report_only:
        results = json.loads(OUT.read_text())
    else:
        runs_dir = args.runs_dir.resolve()
        fresh = {"runs": {}, "ctc": ctc_reference(), "long_inputs": {}, "streaming": {},
                 "guided_attention_ablation": {}, "head_to_head": {}}
        results = json.loads(OUT.read_text()) if args.only and OUT.exists() else fresh
        results = {**fresh, **results, "ctc": fresh["ctc"]}
        wanted = (lambda name: True) if not args.only else (lambda name: name in args.only)
        for recipe in RECIPES + EXTENDED:
            run = _run_dir(runs_dir, recipe)
            if wanted(recipe) and (run / "model.safetensors").exists():
                results["runs"][recipe] = evaluate_run(run, args.max_utterances, args.beam_size)
        for variant, recipe in ABLATION.items():
            run = _run_dir(runs_dir, recipe)
            if wanted(variant) and (run / "log.jsonl").exists():
                results["guided_attention_ablation"][variant] = ablation_entry(run, args.max_utterances)
        test = str(ROOT / "data" / "synth_en" / "test.jsonl")
        if wanted("long_inputs"):
            for recipe in ("las_content", "las_location"):
                model = checkpoints_by_step(_run_dir(runs_dir, recipe)).get(COMPARE_STEP)
                if model is not None:
                    results["long_inputs"][f"{recipe} (step {COMPARE_STEP})"] = long_inputs(model, test,
                                                                                          args.long_count)
            final = _run_dir(runs_dir, "las_location") / "model.safetensors"  # how the fully trained model fares
            if final.exists():
                results["long_inputs"]["las_location (final, averaged)"] = long_inputs(final, test, args.long_count)
        if wanted("streaming"):
            for recipe in ("las_mocha", "las_mocha-40min", "las_monotonic"):
                if (_run_dir(runs_dir, recipe) / "model.safetensors").exists():
                    results["streaming"][recipe] = streaming(_run_dir(runs_dir, recipe), test,
                                                             args.stream_utterances, lookahead=0)
            if (_run_dir(runs_dir, "las_location") / "model.safetensors").exists():
                results["streaming"]["las_location (full attention)"] = full_attention_delay(
                    _run_dir(runs_dir, "las_location"), test, args.stream_utterances)
        budgets = (lambda budget: True) if wanted("head_to_head") else wanted
        results["head_to_head"].update(head_to_head(runs_dir, args.max_utterances, args.beam_size, budgets))
        write_atomic(OUT, json.dumps(results, indent=2) + "\n")
    update_readme("asr_attention_synth", table(results))
    print(table(results))
    for item in args.ship:
        recipe, _, dest = item.partition("=")
        if recipe not in results["runs"] or not dest:
            raise SystemExit(f"--ship {item}: expected RECIPE=DIR with RECIPE one of {sorted(results['runs'])}")
        ship_attention(recipe, results["runs"][recipe], _run_dir(args.runs_dir.resolve(), recipe), Path(dest))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
