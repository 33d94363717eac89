"""Every shipped ASR model on real human recordings: the Free Spoken Digit Dataset (FSDD).

    python results/asr_fsdd.py [--fsdd ../shared/data/fsdd] [--work data/fsdd] [--models NAME ...] [--limit N]
                               [--sets SET ...] [--out results/asr_fsdd.json] [--no-readme] [--no-cards]
                               [--report-only]

Two sets, both from the dataset's test takes (0-4) of its four speakers:

* isolated digits: the 200 clips as recorded (8 kHz, "seven"), read as ``seqspeech transcribe FILE`` reads them
  (resampled to 16 kHz on loading);
* connected digits: STRINGS strings of 2-6 clips of one speaker joined by 0.1-0.3 s of low noise (-60 dBFS), at
  16 kHz, deterministic by ``--seed`` (``data.corpora.fsdd.build_connected_digits``), written under ``--work``.

Each model decodes with the defaults ``seqspeech transcribe FILE --model NAME`` uses: Whisper beam 5 (and its
temperature fallback), our models their stored decoding options with the LM beside them. Scoring maps both sides
to digit tokens (``text.normalize.DigitNormalizer``: "Seven." -> 7, "472" -> 4 7 2; other words stay words and
count as errors): digit error rate (WER over those tokens) and string error rate (share of utterances not
exactly right), overall and per speaker. The control sets (``--sets synthetic_16k synthetic_8k``) are the first
CONTROL strings' texts spoken by synthetic voices (espeak-ng, flite: what our models learned from) at 16 kHz and
band-limited to 8 kHz, to tell what the real voices cost from what the narrow band and the task (bare digits)
cost; they need espeak-ng and flite.

Writes ``--out`` (atomically); a full run (no ``--limit``) also rewrites the README block ``asr_fsdd`` and adds the
numbers to each shipped model's ``models/<name>/model_card.json`` (metrics ``fsdd`` and a limitation sentence),
unless ``--no-readme`` / ``--no-cards``. ``--models`` re-scores some models and keeps the others' entries of an
existing JSON made with the same settings.

The recordings are never copied into the repository: the tarball is extracted under ``--work`` (git-ignored
``data/fsdd`` by default). FSDD: Zohar Jackson et al., DOI 10.5281/zenodo.1342401, CC BY-SA 4.0.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, relative, update_readme  # noqa: E402

OUT = ROOT / "results" / "asr_fsdd.json"
FSDD = ROOT.parent / "shared" / "data" / "fsdd"
WORK = ROOT / "data" / "fsdd"
MODELS = ("whisper-tiny.en", "ctc-conformer-synth-en", "aed-conformer-synth-en", "las-synth-en")
RECOMMENDED = "whisper-tiny.en"
WHISPER_OPTIONS = {"beam_size": 5}  # `seqspeech transcribe`'s defaults (its best_of=5 only matters when sampling)
STRINGS = 100
MIN_DIGITS, MAX_DIGITS = 2, 6
GAP_S = (0.1, 0.3)
NOISE_DBFS = -60.0
FSDD_RATE = 8_000
CONTROL_VOICES = (("espeak-ng", "en-us"), ("flite", "slt"), ("flite", "rms"), ("flite", "awb"))
CONTROL = 40  # strings in the synthetic control sets
CHUNK = 40  # utterances per transcribe_batch call, so progress can be printed
SETS = {"isolated": "isolated digits (test takes 0-4, 4 speakers)",
        "connected": f"connected digits ({MIN_DIGITS}-{MAX_DIGITS} per string)",
        "synthetic_16k": "control: the connected strings' texts, synthetic voices, 16 kHz",
        "synthetic_8k": "control: the connected strings' texts, synthetic voices, band-limited to 8 kHz"}
MAIN_SETS = ("isolated", "connected")
CREDIT = (
    "Data: Free Spoken Digit Dataset (FSDD), Zohar Jackson et al., DOI 10.5281/zenodo.1342401, licensed CC BY-SA "
    "4.0; its test takes (0-4) of the four speakers george, jackson, lucas and nicolas, 8 kHz recordings."
)
CARD_KEY = "fsdd"
LIMITATION_MARK = "(FSDD spoken digits)"
# the card's sentence about real speech: the shipped guess, or this script's measured sentence from an earlier run
LIMITATION = re.compile(r"Trained only on synthetic speech: expect high error rates on real recordings\.|"
                        r"Trained only on synthetic voices: on real human recordings \(FSDD spoken digits\).*?"
                        r"for real speech\.")


def prepare(fsdd: Path, work: Path, limit: int | None, strings: int, seed: int):
    """(isolated utterances, connected-string utterances): extract, read and build the two sets."""
    from seqspeech.data.corpora.fsdd import build_connected_digits, read_fsdd
    from seqspeech.data.manifest import read_manifest

    clips = read_fsdd(fsdd, split="test", extract_to=work)
    n_strings = strings if limit is None else min(strings, limit)
    manifest = build_connected_digits(
        clips, work / "connected", count=n_strings, min_digits=MIN_DIGITS, max_digits=MAX_DIGITS, gap_s=GAP_S,
        noise_dbfs=NOISE_DBFS, seed=seed, manifest_name=f"connected_seed{seed}.jsonl",
    )  # fmt: skip
    connected = read_manifest(manifest)
    speakers = sorted({u.speaker for u in clips})
    print(f"FSDD test takes: {len(clips)} clips of {len(speakers)} speakers ({', '.join(speakers)}); "
          f"{len(connected)} connected-digit strings -> {relative(manifest)}", flush=True)
    return clips[:limit] if limit is not None else clips, connected


def build_control(connected: list, work: Path, count: int) -> dict[str, list]:
    """The first ``count`` connected strings' texts spoken by synthetic voices (the kind our models learned
    from), as synthesised (16 kHz) and band-limited like the FSDD clips (8 kHz, read back at 16 kHz)."""
    from seqspeech.audio.constants import SAMPLE_RATE
    from seqspeech.audio.io import load_audio, write_wav
    from seqspeech.data.manifest import Utterance
    from seqspeech.data.synth import synthesize

    sets: dict[str, list] = {"synthetic_16k": [], "synthetic_8k": []}
    folder = work / "control"
    for i, utt in enumerate(connected[:count]):
        engine, voice = CONTROL_VOICES[i % len(CONTROL_VOICES)]
        raw = synthesize(utt.text, folder / "raw" / f"{utt.id}.wav", engine=engine, voice=voice)
        wide = load_audio(raw, SAMPLE_RATE)
        narrow = load_audio(load_audio(wide, FSDD_RATE, source_sr=SAMPLE_RATE), SAMPLE_RATE, source_sr=FSDD_RATE)
        for name, wave in (("synthetic_16k", wide), ("synthetic_8k", narrow)):
            path = folder / name / f"{utt.id}.wav"
            write_wav(path, wave, SAMPLE_RATE)
            sets[name].append(Utterance(id=utt.id, audio=str(path), duration=len(wave) / SAMPLE_RATE, text=utt.text,
                                        normalized_text=utt.normalized_text, speaker=f"{engine}:{voice}"))
    print(f"control: {count} strings spoken by {', '.join(f'{e}:{v}' for e, v in CONTROL_VOICES)}, at 16 and "
          f"8 kHz -> {relative(folder)}", flush=True)
    return sets


def load(name: str):
    """(recogniser, transcribe options, family) as ``seqspeech transcribe --model NAME`` would use them."""
    import seqspeech
    from seqspeech.zoo import resolve

    family = resolve(name)[1]
    asr = seqspeech.load_model(name)  # our models: lm=True -> lm.arpa beside the weights, stored decode options
    return asr, (WHISPER_OPTIONS if family == "whisper" else {}), family


def transcribe(asr, options: dict, utts: list, label: str) -> tuple[list[str], float]:
    import torch

    torch.manual_seed(0)  # Whisper's temperature fallback samples
    hyps: list[str] = []
    start = time.perf_counter()
    for i in range(0, len(utts), CHUNK):
        batch = utts[i : i + CHUNK]
        hyps += [t.text for t in asr.transcribe_batch([u.audio for u in batch], **options)]
        print(f"  {label}: {len(hyps)}/{len(utts)} ({time.perf_counter() - start:.0f} s)", flush=True)
    return hyps, time.perf_counter() - start


def score(utts: list, hyps: list[str], seconds: float) -> dict:
    from seqspeech.metrics.wer import error_rate, string_error_rate
    from seqspeech.text.normalize import DigitNormalizer

    digits = DigitNormalizer()

    def rates(pairs: list[tuple]) -> dict:
        refs, hs = [u.text for u, _ in pairs], [h for _, h in pairs]
        er = error_rate(refs, hs, unit="word", normalizer=digits)
        return {"digit_wer": round(er.rate * 100, 2), "string_error_rate": round(string_error_rate(refs, hs,
                normalizer=digits) * 100, 2), "utterances": len(pairs), "digits": er.n_ref_units,
                "substitutions": er.substitutions, "deletions": er.deletions, "insertions": er.insertions}

    pairs = list(zip(utts, hyps, strict=True))
    out = rates(pairs)
    out["per_speaker"] = {s: rates([p for p in pairs if p[0].speaker == s]) for s in sorted({u.speaker for u in utts})}
    audio_s = sum(u.duration for u in utts)
    out["seconds"] = round(seconds, 1)
    out["rtf"] = round(seconds / audio_s, 4) if audio_s else None
    wrong = Counter(f"{digits(u.text)} -> {digits(h) or '(nothing)'}" for u, h in pairs if digits(u.text) != digits(h))
    out["top_errors"] = dict(wrong.most_common(10))
    out["hypotheses"] = {u.id: h for u, h in pairs}
    return out


def evaluate(args: argparse.Namespace) -> dict:
    import torch

    from seqspeech.zoo import resolve

    t0 = time.perf_counter()
    for name in args.models:  # an unknown name fails before any work
        resolve(name)
    isolated, connected = prepare(args.fsdd, args.work, args.limit, args.strings, args.seed)
    sets = {"isolated": isolated, "connected": connected}
    if any(name.startswith("synthetic") for name in args.sets):
        sets |= build_control(connected, args.work, min(args.control_strings, len(connected)))
    sets = {name: sets[name] for name in args.sets}
    results = existing(args) or {"models": {}, "sets": {}}
    results["config"] = config(args)
    results["sets"] |= {name: {"title": SETS[name], "utterances": len(utts),
                               "audio_seconds": round(sum(u.duration for u in utts), 1)}
                        for name, utts in sets.items()}
    results["sets"] = {k: results["sets"][k] for k in sorted(results["sets"], key=list(SETS).index)}
    results["machine"] = f"{os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}"
    for name in args.models:
        print(f"{name}: loading", flush=True)
        asr, options, family = load(name)
        entry = {"family": family, "options": options or "stored defaults with the LM beside the model",
                 "sets": dict(results["models"].get(name, {}).get("sets", {}))}  # other sets kept
        for set_name, utts in sets.items():
            hyps, seconds = transcribe(asr, options, utts, f"{name} {set_name}")
            entry["sets"][set_name] = r = score(utts, hyps, seconds)
            print(f"{name:<24} {set_name:<10} digit WER {r['digit_wer']:6.2f} %  string errors "
                  f"{r['string_error_rate']:6.2f} %  ({r['utterances']} utt, {seconds:.0f} s)", flush=True)
        entry["sets"] = {k: entry["sets"][k] for k in sorted(entry["sets"], key=list(SETS).index)}
        results["models"][name] = entry
        del asr
    results["models"] = {m: results["models"][m] for m in MODELS if m in results["models"]} | {
        m: e for m, e in results["models"].items() if m not in MODELS}
    results.pop("wall_seconds", None)
    results["last_run"] = {"models": args.models, "sets": list(sets),
                           "wall_seconds": round(time.perf_counter() - t0, 1)}
    return results


def config(args: argparse.Namespace) -> dict:
    return {"split": "test (takes 0-4)", "limit": args.limit, "strings": args.strings, "seed": args.seed,
            "digits_per_string": [MIN_DIGITS, MAX_DIGITS], "gap_s": list(GAP_S), "gap_noise_dbfs": NOISE_DBFS}


def existing(args: argparse.Namespace) -> dict | None:
    """The JSON at ``--out`` when it was made with the same settings (so a ``--models`` or ``--sets`` run keeps the
    other models and sets)."""
    if not args.out.exists():
        return None
    old = json.loads(args.out.read_text())
    return old if old.get("config") == config(args) else None


def table(results: dict) -> str:
    lines = [
        "| model | trained on | isolated digits: digit error rate | isolated: string error rate "
        "| connected digits: digit error rate | connected: string error rate |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in results["models"].items():
        trained = "real speech (OpenAI's web-audio corpus)" if entry["family"] == "whisper" else "synthetic voices only"
        cells = []
        for set_name in ("isolated", "connected"):
            r = entry["sets"].get(set_name)
            cells += [f"{r['digit_wer']:.1f} %", f"{r['string_error_rate']:.1f} %"] if r else ["", ""]
        lines.append(f"| `{name}` | {trained} | " + " | ".join(cells) + " |")
    sets = {"isolated": {}, "connected": {}} | results["sets"]
    lines += [
        "",
        f"{sets['isolated'].get('utterances')} isolated clips ({sets['isolated'].get('audio_seconds')} s) and "
        f"{sets['connected'].get('utterances')} connected-digit strings ({sets['connected'].get('audio_seconds')} s: "
        f"{MIN_DIGITS}-{MAX_DIGITS} clips of one speaker joined by {GAP_S[0]}-{GAP_S[1]} s of noise at "
        f"{NOISE_DBFS:g} dBFS, 16 kHz, seed {results['config']['seed']}). Decoding as `seqspeech transcribe FILE "
        "--model NAME` does: Whisper beam 5, our models their stored beam search with the 3-gram LM beside them. "
        "Both sides are mapped to digit tokens before scoring (`DigitNormalizer`: \"Seven.\" -> 7, \"472\" -> "
        "4 7 2; any other word, such as \"to\" or \"for\", stays a word and counts as an error); string error rate: "
        "share of utterances not exactly right.",
    ]
    control = [(name, entry["sets"]["synthetic_16k"], entry["sets"]["synthetic_8k"])
               for name, entry in results["models"].items() if "synthetic_8k" in entry["sets"]]
    if control:
        n = control[0][1]["utterances"]
        lines.append(
            f"- Control: the first {n} strings' texts spoken by synthetic voices ("
            + ", ".join(f"{e} {v}" for e, v in CONTROL_VOICES) + "), digit / string error rate at 16 kHz, then "
            "band-limited to 8 kHz like the recordings: " + "; ".join(
                f"{name} {a['digit_wer']:.1f} / {a['string_error_rate']:.1f} % at 16 kHz, {b['digit_wer']:.1f} / "
                f"{b['string_error_rate']:.1f} % at 8 kHz" for name, a, b in control) + ".")
    rows = [(name, set_name, r["per_speaker"]) for name, entry in results["models"].items()
            for set_name, r in entry["sets"].items() if set_name in MAIN_SETS]
    speakers = sorted({s for *_, per in rows for s in per})
    if rows:
        lines += ["", "Digit error rate per speaker:", "",
                  "| model | set | " + " | ".join(speakers) + " |", "|---|---|" + "---|" * len(speakers)]
        lines += [f"| `{name}` | {set_name} | "
                  + " | ".join(f"{per[s]['digit_wer']:.1f} %" if s in per else "" for s in speakers) + " |"
                  for name, set_name, per in rows]
        lines.append("")
    for name, entry in results["models"].items():
        top = entry["sets"].get("isolated", {}).get("top_errors") or {}
        if top:
            lines.append(f"- {name}, commonest isolated-digit errors (reference -> output, count): "
                         + ", ".join(f"{k} ({v})" for k, v in list(top.items())[:5]) + ".")
    lines.append(f"- {CREDIT}")
    return "\n".join(lines)


def update_cards(results: dict) -> None:
    """Add the FSDD numbers and a limitation sentence to each shipped model's card (models/<name>)."""
    from seqspeech.fileio import write_atomic

    for name, entry in results["models"].items():
        card_path = ROOT / "models" / name / "model_card.json"
        if entry["family"] == "whisper" or not card_path.exists() or not set(MAIN_SETS) <= set(entry["sets"]):
            continue
        card = json.loads(card_path.read_text())
        iso, con = entry["sets"]["isolated"], entry["sets"]["connected"]
        card.setdefault("metrics", {})[CARD_KEY] = {
            "data": "real human recordings: " + CREDIT.removeprefix("Data: "),
            "decoding": "stored defaults with lm.arpa (as `seqspeech transcribe --model NAME`)",
            "scoring": "digit tokens (DigitNormalizer); digit_wer = WER over digits, string_error_rate = share of "
                       "utterances not exactly right",
            "script": "results/asr_fsdd.py",
            **{set_name: {k: r[k] for k in ("digit_wer", "string_error_rate", "utterances")}
               for set_name, r in (("isolated_digits", iso), ("connected_digits", con))},
        }  # fmt: skip
        for set_name in ("synthetic_16k", "synthetic_8k"):  # the controls, when measured
            if set_name in entry["sets"]:
                r = entry["sets"][set_name]
                card["metrics"][CARD_KEY][f"control_{set_name}"] = {
                    "what": SETS[set_name] + " (" + ", ".join(f"{e} {v}" for e, v in CONTROL_VOICES) + ")",
                    **{k: r[k] for k in ("digit_wer", "string_error_rate", "utterances")}}
        sentence = (
            f"Trained only on synthetic voices: on real human recordings {LIMITATION_MARK} it reads isolated "
            f"digits at {iso['digit_wer']:.1f} % and connected digit strings at {con['digit_wer']:.1f} % digit "
            f"error rate ({con['string_error_rate']:.0f} % of strings wrong) — use {RECOMMENDED} for real speech."
        )
        old = card.get("limitations") or ""
        if LIMITATION.search(old):  # the measured sentence replaces the guess (or an earlier measurement)
            card["limitations"] = LIMITATION.sub(lambda _: sentence, old, count=1)
        else:
            card["limitations"] = f"{sentence} {old}".strip()
        write_atomic(card_path, json.dumps(card, indent=2, ensure_ascii=False) + "\n")
        print(f"updated {relative(card_path)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fsdd", type=Path, default=FSDD,
                    help="FSDD: a folder holding recordings.tar.gz or recordings/, the wav folder, or the archive")
    ap.add_argument("--work", type=Path, default=WORK,
                    help="where the recordings are extracted and the connected strings written (git-ignored)")
    ap.add_argument("--models", nargs="+", default=list(MODELS), metavar="NAME")
    ap.add_argument("--limit", type=int, default=None, metavar="N", help="the first N clips and strings per set")
    ap.add_argument("--strings", type=int, default=STRINGS, help="connected-digit strings")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sets", nargs="+", default=list(MAIN_SETS), choices=list(SETS), metavar="SET",
                    help=f"the sets to score (default: {' '.join(MAIN_SETS)}; the controls: synthetic_16k "
                         "synthetic_8k); the JSON keeps the other sets of an earlier run with the same settings")
    ap.add_argument("--control-strings", type=int, default=CONTROL, metavar="N",
                    help="strings in the synthetic control sets (the first N connected strings' texts)")
    ap.add_argument("--out", type=Path, default=OUT, help="the results JSON")
    ap.add_argument("--no-readme", dest="readme", action="store_false", help="leave README.md alone")
    ap.add_argument("--no-cards", dest="cards", action="store_false", help="leave the model cards alone")
    ap.add_argument("--report-only", action="store_true", help="rewrite the README table and cards from the JSON")
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be >= 1")
    sys.path.insert(0, str(ROOT / "src"))
    from seqspeech.fileio import write_atomic

    if args.report_only:
        results = json.loads(args.out.read_text())
    else:
        args.models = [m.strip() for group in args.models for m in group.split(",") if m.strip()]
        results = evaluate(args)
        write_atomic(args.out, json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {relative(args.out.resolve())} ({results['last_run']['wall_seconds']:.0f} s)")
    print(table(results))
    if results["config"]["limit"] is not None:
        print("partial run (--limit): README and model cards left alone")
        return 0
    if args.readme:
        update_readme("asr_fsdd", table(results))
    if args.cards:
        update_cards(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
