"""Helpers shared by the results scripts: time snapshots of a run, its training summary, README blocks."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SET_TITLES = {
    "test": "held-out sentences",
    "test_voices": "held-out voices (espeak-ng)",
    "test_eval_voices": "eval-only voices (flite rms, awb)",
}

DATA_CARD = (
    "seqspeech corpus synth data/synth_en --sentences 10000 --dev 200 --test 300 --seed 0: espeak-ng (8 English "
    "accents x voice variants, random rate/pitch) and flite slt/kal16; evaluation-only voices (flite rms/awb) and 8 "
    "held-out espeak-ng voices never seen in training"
)
LIMITATIONS = (
    "Trained only on synthetic speech: expect high error rates on real recordings. Output is lower-case spoken form "
    "(numbers as words), no punctuation."
)


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


def training_summary(run: Path) -> dict | None:
    """Speed, memory and size of a run, from its train_summary.json."""
    summary = run / "train_summary.json"
    if not summary.exists():
        return None
    s = json.loads(summary.read_text())
    out = {k: s.get(k) for k in ("utterances_per_second", "peak_rss_mb", "train_seconds", "parameters",
                                 "train_utterances", "train_hours")}
    out["steps"] = (s.get("result") or {}).get("step")
    return out


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def update_readme(key: str, text: str) -> None:
    """Replace the README block between ``<!-- results:KEY:start -->`` and ``<!-- results:KEY:end -->``."""
    start, end = f"<!-- results:{key}:start -->", f"<!-- results:{key}:end -->"
    readme = README.read_text()
    if start not in readme or end not in readme:
        print(f"README has no {start} ... {end} block; table not written", file=sys.stderr)
        return
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    README.write_text(f"{head}{start}\n{text}\n{end}{tail}")


def ship(run: Path, dest: Path, card: dict, decode: dict) -> None:
    """Copy the run's final model (fp16, with ``decode`` as its stored decoding defaults), its LM and a model card
    (``card`` plus the resolved recipe) into ``dest`` (models/<name>)."""
    import yaml

    from seqspeech.asr.package import load_package, save_package
    from seqspeech.fileio import write_atomic

    dest.mkdir(parents=True, exist_ok=True)
    pkg = load_package(run / "model.safetensors", device="cpu")
    save_package(dest / "model.safetensors", pkg.family, pkg.model, pkg.config, pkg.features, pkg.tokenizer,
                 extra={"decode": decode})
    if (run / "lm.arpa").exists():
        write_atomic(dest / "lm.arpa", (run / "lm.arpa").read_bytes())
    card = {"name": dest.name, "family": pkg.family, **card,
            "resolved_recipe": yaml.safe_load((run / "recipe.yaml").read_text())}
    write_atomic(dest / "model_card.json", json.dumps(card, indent=2) + "\n")
    print(f"shipped {dest} ({sum(f.stat().st_size for f in dest.iterdir()) / 1e6:.1f} MB)")


def cpu_name() -> str:
    """This machine's CPU model and whether it has native bf16 (speeds differ ~2x between the ones we run on)."""
    import platform

    import torch

    from seqspeech.nn.precision import native_bf16

    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.processor() or platform.machine())
    return f"{name}, {'with' if native_bf16(torch.device('cpu')) else 'without'} native bf16"
