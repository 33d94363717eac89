"""Regenerate results/asr_ctc_synth.json and the README table for the synth_en Conformer-CTC recipe.

    python results/asr_ctc_synth.py --run runs/synth_en-asr_ctc [--max-utterances N]

Evaluates the run's time snapshots (after 10, 20 and 40 minutes of training) on each evaluation manifest of
the recipe, with greedy, beam and beam+LM decoding, and reads training speed and peak memory from the run.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "asr_ctc_synth.json"
README = ROOT / "README.md"
START, END = "<!-- results:asr_ctc_synth:start -->", "<!-- results:asr_ctc_synth:end -->"
SET_TITLES = {
    "test": "held-out sentences",
    "test_voices": "held-out voices (espeak-ng)",
    "test_eval_voices": "eval-only voices (flite rms, awb)",
}


def snapshots(run: Path) -> list[tuple[float, str, Path]]:
    """(minutes, label, checkpoint): the time snapshots, then the final averaged model."""
    found = []
    for p in sorted(run.rglob("snapshot-*min.pt")):
        m = re.match(r"snapshot-([\d.]+)min\.pt", p.name)
        if m:
            found.append((float(m.group(1)), f"{float(m.group(1)):g} min", p))
    found.sort()
    if (run / "model.safetensors").exists() and found:
        found.append((found[-1][0], f"{found[-1][0]:g} min, averaged", run / "model.safetensors"))
    return found


LM_WEIGHTS = (0.2, 0.3, 0.5)
WORD_BONUSES = (1.0, 2.0, 3.0)


def tune(asr, manifest: str, beam_size: int) -> dict:
    """Grid-search the LM weight and word bonus on the dev manifest (one acoustic pass, every setting decoded)."""
    from seqspeech.data.dataset import load_utterance_audio
    from seqspeech.data.manifest import read_manifest
    from seqspeech.metrics.wer import error_rate

    utts = read_manifest(manifest)
    grid = [(w, b) for w in LM_WEIGHTS for b in WORD_BONUSES]
    hyps: dict = {g: [] for g in grid}
    for i in range(0, len(utts), 16):
        chunk = utts[i : i + 16]
        lp, lens = asr.log_probs([load_utterance_audio(u) for u in chunk])
        for w, b in grid:
            tokens = asr.decode(lp, lens, beam_size=beam_size, use_lm=True, lm_weight=w, word_bonus=b)
            hyps[(w, b)].extend(asr.tokenizer.decode(t) for t in tokens)
    refs = [u.normalized_text for u in utts]
    scores = {g: error_rate(refs, hyps[g], unit="word", normalizer=None).rate for g in grid}
    best = min(grid, key=lambda g: (scores[g], g))
    print("dev WER by (lm_weight, word_bonus): " + ", ".join(f"{g}: {scores[g] * 100:.2f}" for g in grid))
    return {"lm_weight": best[0], "word_bonus": best[1], "dev_wer": round(scores[best] * 100, 2),
            "grid": {f"{w},{b}": round(v * 100, 2) for (w, b), v in scores.items()}}


def evaluate(run: Path, max_utterances: int | None, beam_size: int) -> dict:
    import yaml

    from seqspeech.asr.ctc_asr import CTCASR
    from seqspeech.tasks.asr_ctc import evaluate_manifest

    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    lm = run / "lm.arpa"
    results = {"run": str(run.relative_to(ROOT) if run.is_relative_to(ROOT) else run), "snapshots": []}
    found = snapshots(run)
    final = CTCASR.from_path(found[-1][2], lm=lm)
    results["decode"] = tune(final, recipe["data"]["dev"], beam_size)
    weights = {k: results["decode"][k] for k in ("lm_weight", "word_bonus")}
    for minutes, label, path in found:
        asr = CTCASR.from_path(path, lm=lm, **weights)
        entry = {"minutes": minutes, "label": label, "checkpoint": path.name, "sets": {}}
        for name, manifest in recipe.get("eval", {}).items():
            r = evaluate_manifest(asr, manifest, modes=("greedy", "beam", "beam_lm"), beam_size=beam_size,
                                  max_utterances=max_utterances)
            entry["sets"][name] = r
            print(f"{label:>18}  {name:<18} " + "  ".join(
                f"{m}: CER {r[m]['cer']:.2f} WER {r[m]['wer']:.2f}" for m in ("greedy", "beam", "beam_lm")),
                flush=True)
        results["snapshots"].append(entry)
    summary = run / "train_summary.json"
    if summary.exists():
        s = json.loads(summary.read_text())
        results["training"] = {k: s.get(k) for k in ("utterances_per_second", "peak_rss_mb", "train_seconds",
                                                     "parameters", "train_utterances", "train_hours")}
        results["training"]["steps"] = (s.get("result") or {}).get("step")
    return results


def table(results: dict) -> str:
    lines = [
        "| training time | evaluation set | CER greedy | CER beam | CER beam+LM | WER greedy | WER beam | WER beam+LM |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for snap in results["snapshots"]:
        for name, r in snap["sets"].items():
            lines.append(
                f"| {snap['label']} | {SET_TITLES.get(name, name)} ({r['utterances']} utt) | "
                + " | ".join(f"{r[m]['cer']:.2f} %" for m in ("greedy", "beam", "beam_lm")) + " | "
                + " | ".join(f"{r[m]['wer']:.2f} %" for m in ("greedy", "beam", "beam_lm")) + " |"
            )
    t = results.get("training") or {}
    d = results.get("decode") or {}
    lines.append("")
    lines.append(
        f"Beam 8 everywhere; beam+LM adds a 3-gram word LM trained on the training transcripts, weight "
        f"{d.get('lm_weight')} and word bonus {d.get('word_bonus')} (tuned on dev, WER {d.get('dev_wer')} %). "
        "CER/WER on lower-case spoken-form text, no normaliser."
    )
    if t:
        lines.append(
            f"Training: {t.get('utterances_per_second')} utterances/s on 2 CPU cores, peak memory "
            f"{t.get('peak_rss_mb')} MB, {t.get('steps')} steps, {t.get('parameters')} parameters, "
            f"{t.get('train_utterances')} training utterances ({t.get('train_hours')} h)."
        )
    return "\n".join(lines)


def ship(run: Path, results: dict, dest: Path) -> None:
    """Copy the run's final model (fp16), its LM and a model card into ``dest`` (models/<name>)."""
    import yaml

    from seqspeech.asr.ctc_asr import load_ctc, save_ctc
    from seqspeech.fileio import write_atomic

    dest.mkdir(parents=True, exist_ok=True)
    pkg = load_ctc(run / "model.safetensors", device="cpu")
    decode = {"beam_size": 8, **{k: results["decode"][k] for k in ("lm_weight", "word_bonus")}}
    save_ctc(dest / "model.safetensors", pkg.model, pkg.config, pkg.features, pkg.tokenizer,
             extra={"decode": decode})
    write_atomic(dest / "lm.arpa", (run / "lm.arpa").read_bytes())
    final = results["snapshots"][-1]
    card = {
        "name": dest.name,
        "family": "ctc",
        "architecture": "Conformer encoder (macaron FFN, rel-pos MHSA, conv module, Conv2d x4 subsampling) + CTC",
        "parameters": (results.get("training") or {}).get("parameters"),
        "tokenizer": f"characters ({pkg.tokenizer.vocab_size} symbols, blank at 0); lower-case spoken-form output",
        "recipe": "recipes/synth_en/asr_ctc.yaml",
        "resolved_recipe": yaml.safe_load((run / "recipe.yaml").read_text()),
        "data": "seqspeech corpus synth data/synth_en --sentences 10000 --dev 200 --test 300 --seed 0: "
                "espeak-ng (8 English accents x voice variants, random rate/pitch) and flite slt/kal16; "
                "evaluation-only voices (flite rms/awb) and 8 held-out espeak-ng voices never seen in training",
        "training": results.get("training"),
        "checkpoint": final["label"],
        "metrics": {name: {m: r[m] for m in ("greedy", "beam", "beam_lm")} | {"utterances": r["utterances"]}
                    for name, r in final["sets"].items()},
        "decoding": f"beam 8 + 3-gram word LM (lm.arpa, shallow fusion) unless --no-lm; LM weight and word "
                    f"bonus tuned on dev: {decode}",
        "files": {"model.safetensors": "weights fp16 + config, features and tokenizer in the metadata",
                  "lm.arpa": "3-gram modified Kneser-Ney LM on the training transcripts (our estimator)"},
        "limitations": "Trained only on synthetic speech: expect high error rates on real recordings. Output is "
                       "lower-case spoken form (numbers as words), no punctuation.",
    }
    write_atomic(dest / "model_card.json", json.dumps(card, indent=2) + "\n")
    print(f"shipped {dest} ({sum(f.stat().st_size for f in dest.iterdir()) / 1e6:.1f} MB)")


def update_readme(text: str) -> None:
    readme = README.read_text()
    if START not in readme or END not in readme:
        print(f"README has no {START} ... {END} block; table not written", file=sys.stderr)
        return
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=ROOT / "runs" / "synth_en-asr_ctc")
    ap.add_argument("--max-utterances", type=int, default=None)
    ap.add_argument("--beam-size", type=int, default=8)
    ap.add_argument("--report-only", action="store_true", help="rewrite the README table from the JSON")
    ap.add_argument("--ship", type=Path, default=None, metavar="DIR",
                    help="also copy the final model, LM and a model card here (e.g. models/ctc-conformer-synth-en)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from seqspeech.fileio import write_atomic

    if args.report_only:
        results = json.loads(OUT.read_text())
    else:
        results = evaluate(args.run.resolve(), args.max_utterances, args.beam_size)
        write_atomic(OUT, json.dumps(results, indent=2) + "\n")
    update_readme(table(results))
    print(table(results))
    if args.ship:
        ship(args.run.resolve(), results, args.ship)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
