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


def snapshots(run: Path) -> list[tuple[float, Path]]:
    found = []
    for p in sorted(run.rglob("snapshot-*min.pt")):
        m = re.match(r"snapshot-([\d.]+)min\.pt", p.name)
        if m:
            found.append((float(m.group(1)), p))
    return sorted(found)


def evaluate(run: Path, max_utterances: int | None, beam_size: int) -> dict:
    import yaml

    from seqspeech.asr.ctc_asr import CTCASR
    from seqspeech.tasks.asr_ctc import evaluate_manifest

    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    decode = recipe.get("decode", {})
    lm = run / "lm.arpa"
    results = {"run": str(run.relative_to(ROOT) if run.is_relative_to(ROOT) else run), "snapshots": []}
    for minutes, path in snapshots(run):
        asr = CTCASR.from_path(path, lm=lm, lm_weight=decode.get("lm_weight", 0.5),
                               word_bonus=decode.get("word_bonus", 1.0))
        entry = {"minutes": minutes, "checkpoint": path.name, "sets": {}}
        for name, manifest in recipe.get("eval", {}).items():
            r = evaluate_manifest(asr, manifest, modes=("greedy", "beam", "beam_lm"), beam_size=beam_size,
                                  max_utterances=max_utterances)
            entry["sets"][name] = r
            print(f"{minutes:>5.0f} min  {name:<18} " + "  ".join(
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
                f"| {snap['minutes']:.0f} min | {SET_TITLES.get(name, name)} ({r['utterances']} utt) | "
                + " | ".join(f"{r[m]['cer']:.2f} %" for m in ("greedy", "beam", "beam_lm")) + " | "
                + " | ".join(f"{r[m]['wer']:.2f} %" for m in ("greedy", "beam", "beam_lm")) + " |"
            )
    t = results.get("training") or {}
    if t:
        lines.append("")
        lines.append(
            f"Training: {t.get('utterances_per_second')} utterances/s on 2 CPU cores, peak memory "
            f"{t.get('peak_rss_mb')} MB, {t.get('steps')} steps, {t.get('parameters')} parameters, "
            f"{t.get('train_utterances')} training utterances ({t.get('train_hours')} h)."
        )
    return "\n".join(lines)


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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
