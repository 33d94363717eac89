"""Regenerate results/asr_ctc_synth.json and the README table for the synth_en Conformer-CTC recipe.

    python results/asr_ctc_synth.py --run runs/synth_en-asr_ctc [--max-utterances N]

Evaluates the run's time snapshots (after 10, 20 and 40 minutes of training) on each evaluation manifest of
the recipe, with greedy, beam and beam+LM decoding, and reads training speed and peak memory from the run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    DATA_CARD, LIMITATIONS, ROOT, SET_TITLES, relative, ship, snapshots, training_summary, update_readme,
)

OUT = ROOT / "results" / "asr_ctc_synth.json"


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
    from seqspeech.tasks.evaluation import evaluate_manifest

    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    lm = run / "lm.arpa"
    results = {"run": relative(run), "snapshots": []}
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
    results["training"] = training_summary(run)
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


def ship_ctc(run: Path, results: dict, dest: Path) -> None:
    """The final model (fp16), its LM and a model card into ``dest`` (models/ctc-conformer-synth-en)."""
    final = results["snapshots"][-1]
    decode = {"beam_size": 8, **{k: results["decode"][k] for k in ("lm_weight", "word_bonus")}}
    card = {
        "architecture": "Conformer encoder (macaron FFN, rel-pos MHSA, conv module, Conv2d x4 subsampling) + CTC",
        "parameters": (results.get("training") or {}).get("parameters"),
        "tokenizer": "characters (blank at 0); lower-case spoken-form output",
        "recipe": "recipes/synth_en/asr_ctc.yaml",
        "data": DATA_CARD,
        "training": results.get("training"),
        "checkpoint": final["label"],
        "metrics": {name: {m: r[m] for m in ("greedy", "beam", "beam_lm")} | {"utterances": r["utterances"]}
                    for name, r in final["sets"].items()},
        "decoding": f"beam 8 + 3-gram word LM (lm.arpa, shallow fusion) unless --no-lm; LM weight and word "
                    f"bonus tuned on dev: {decode}",
        "files": {"model.safetensors": "weights fp16 + config, features and tokenizer in the metadata",
                  "lm.arpa": "3-gram modified Kneser-Ney LM on the training transcripts (our estimator)"},
        "limitations": LIMITATIONS,
    }
    ship(run, dest, card, decode)


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
    update_readme("asr_ctc_synth", table(results))
    print(table(results))
    if args.ship:
        ship_ctc(args.run.resolve(), results, args.ship)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
