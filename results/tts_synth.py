"""Regenerate results/tts_synth.json, the README table and docs/samples/ for the synth_slt TTS recipes.

    python results/tts_synth.py [--runs-dir runs] [--sentences 60] [--acoustic fastspeech2] [--ship [slt]]

For each acoustic model run found (``runs/synth_slt-fastspeech2``, ``runs/synth_slt-tacotron2``) with each vocoder
(Griffin-Lim, and each HiFi-GAN run with the same mel settings), on the held-out test sentences of the
slt corpus (never trained on):

* intelligibility: ASR-WER of our default recogniser (Whisper tiny.en) on the synthesised speech, next to its WER
  on the teacher's own audio (flite slt speaking the same sentences);
* MCD (DTW-aligned mel cepstra, dB) and F0 RMSE (Hz) against the teacher's audio;
* speed on this machine's CPU threads: real-time factor of whole-utterance synthesis and the first-chunk latency of
  ``synthesize_stream``;
* the vocoders alone: ASR-WER of copy synthesis (Griffin-Lim and each HiFi-GAN rebuilding the teacher's audio
  from its own mels);
* Tacotron 2 alignment health: share of sentences whose attention is diagonal without skips, repeats or stuck
  decoding (:mod:`seqspeech.metrics.attention`) and share that stopped by the stop token.

``--ship`` copies FastSpeech 2 and Tacotron 2, each with its most intelligible HiFi-GAN, to ``models/slt`` and
``models/tacotron2-slt`` with model cards (fp16); ``--ship slt`` ships only the named voice(s).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, cpu_name, relative, training_summary, update_readme  # noqa: E402

OUT = ROOT / "results" / "tts_synth.json"
SAMPLES = ROOT / "docs" / "samples"
ACOUSTIC = ("fastspeech2", "tacotron2")
DATA = ROOT / "data" / "synth_slt"
SAMPLE_SENTENCES = 2
VOICES = {"fastspeech2": "slt", "tacotron2": "tacotron2-slt"}
EARLIER_CPU = "the earlier 2-core machine (with native bf16: AVX512-BF16)"  # rows measured before we recorded the CPU
# the HiFi-GAN runs and the acoustic models each is tried with: trained on the recordings' mels; continued with a
# multi-resolution mel loss (hifigan_multires.yaml); fine-tuned on FastSpeech 2's ground-truth-aligned mels (with
# GAN losses: hifigan_finetune.yaml; mel-only, multi-resolution: hifigan_multires_gta.yaml)
VOCODERS = {"hifigan": ACOUSTIC, "hifigan_mr": ACOUSTIC, "hifigan_ft": ("fastspeech2",),
            "hifigan_mr_gta": ("fastspeech2",)}
# the runs each vocoder's training goes through, in order (run names); the recipe file of a run where it differs
VOCODER_CHAIN = {"hifigan": ("hifigan",), "hifigan_mr": ("hifigan", "hifigan_mr"), "hifigan_ft": ("hifigan", "hifigan_ft"),
                 "hifigan_mr_gta": ("hifigan", "hifigan_mr", "hifigan_mr_gta")}
RECIPE_FILES = {"hifigan_mr": "hifigan_multires", "hifigan_ft": "hifigan_finetune",
                "hifigan_mr_gta": "hifigan_multires_gta"}
RUNS = (*ACOUSTIC, "aligner", *VOCODERS)
# the recipes an acoustic model's shipped run went through (fastspeech2_continue.yaml continues fastspeech2.yaml) and
# the runs it needed first (FastSpeech 2's durations come from the aligner)
ACOUSTIC_RECIPES = {"fastspeech2": ("fastspeech2", "fastspeech2_continue"), "tacotron2": ("tacotron2",)}
ACOUSTIC_NEEDS = {"fastspeech2": ("aligner",), "tacotron2": ()}
NAMES = {"fastspeech2": "FastSpeech 2", "tacotron2": "Tacotron 2", "griffin-lim": "Griffin-Lim", "hifigan": "HiFi-GAN",
         "hifigan_mr": "HiFi-GAN + multi-resolution mel loss", "hifigan_ft": "HiFi-GAN fine-tuned (FastSpeech 2 GTA mels)",
         "hifigan_mr_gta": "HiFi-GAN + multi-resolution, then fine-tuned mel-only on FastSpeech 2 GTA mels"}
DATA_CARD = ("seqspeech corpus synth data/synth_slt --voice flite:slt --sentences 4000 --dev 100 --test 100 --seed 1: "
             "one speaker (flite's cmu_us_slt), 16 kHz; the test sentences are never trained on")


USE: dict[str, Path] = {}  # run name -> a package measured in place of its run's model (--use)


def _run(runs: Path, name: str) -> Path:
    return runs / f"synth_slt-{name}"


def _model(runs: Path, name: str) -> Path:
    """The model measured for run ``name``: its run's final package, or the file given with ``--use``."""
    return USE.get(name) or _run(runs, name) / "model.safetensors"


def same_mel(acoustic: Path, vocoder: Path) -> bool:
    """Whether two package files were trained on the same mel settings (from their metadata, no weights read)."""
    from seqspeech.packaging import json_field, read_metadata

    return json_field(read_metadata(acoustic), "mel", str(acoustic)) == json_field(read_metadata(vocoder), "mel",
                                                                                   str(vocoder))


def wer_percent(utts: list, hyps: list[str]) -> float:
    """Word error rate (%) of ``hyps`` against the utterances' normalised texts."""
    from seqspeech.metrics.wer import error_rate

    return round(error_rate([u.normalized_text for u in utts], hyps, unit="word").rate * 100, 2)


def evaluate_system(acoustic: Path, vocoder: Path | None, utts: list, asr, threads: int) -> dict:
    import numpy as np
    import torch

    from seqspeech.data.dataset import load_utterance_audio
    from seqspeech.metrics.tts import tts_metrics
    from seqspeech.tts.synthesizer import Synthesizer

    torch.set_num_threads(threads)
    voice = Synthesizer.from_path(acoustic, vocoder=vocoder if vocoder is not None else "griffin-lim", device="cpu")
    sr = voice.sample_rate
    hyps, mcds, f0s, firsts, waves = [], [], [], [], []
    audio_s = compute_s = 0.0
    for u in utts:
        t0 = time.perf_counter()
        wave = voice.synthesize(u.normalized_text)
        compute_s += time.perf_counter() - t0
        audio_s += len(wave) / sr
        t0 = time.perf_counter()
        for _ in voice.synthesize_stream(u.normalized_text):
            firsts.append(time.perf_counter() - t0)
            break
        teacher = load_utterance_audio(u, sr)
        metrics = tts_metrics(teacher, wave, sr)  # MCD and F0 RMSE on one DTW path
        mcds.append(metrics.mcd_db)
        f0s.append(metrics.f0_rmse_hz)
        waves.append(wave)
    for wave in waves:
        import soxr

        hyps.append(asr.transcribe(soxr.resample(wave, sr, 16000).astype(np.float32)).text)
    out = {
        "sentences": len(utts),
        "asr_wer": wer_percent(utts, hyps),
        "mcd_db": round(float(np.mean(mcds)), 3),
        "f0_rmse_hz": round(float(np.nanmean(f0s)), 2),
        "rtf": round(compute_s / max(audio_s, 1e-9), 4),
        "first_chunk_ms_mean": round(1000 * float(np.mean(firsts)), 1),
        "first_chunk_ms_p90": round(1000 * float(np.quantile(firsts, 0.9)), 1),
        "threads": threads,
    }
    out["samples"] = waves[:SAMPLE_SENTENCES]
    return out


def teacher_wer(utts: list, asr) -> float:
    from seqspeech.data.dataset import load_utterance_audio

    hyps = [asr.transcribe(load_utterance_audio(u, 16000)).text for u in utts]
    return wer_percent(utts, hyps)


def copy_synthesis(vocoder, mel_config, utts: list, asr) -> dict:
    """ASR-WER of ``vocoder`` rebuilding the teacher's audio from the recordings' own mels: what the vocoder alone
    loses, whatever the acoustic model predicts."""
    import torch

    from seqspeech.data.dataset import load_utterance_audio
    from seqspeech.tts.mel import MelSpectrogram

    mel = MelSpectrogram(mel_config)
    hyps = []
    for u in utts:
        wave = torch.from_numpy(load_utterance_audio(u, mel_config.sample_rate)).float().unsqueeze(0)
        with torch.inference_mode():
            out = vocoder.infer(mel(wave)).reshape(-1).float().numpy()
        hyps.append(asr.transcribe(out).text)  # the TTS mels are at 16 kHz, Whisper's rate
    return {"sentences": len(utts), "window_ms": round(1000 * mel_config.win_length / mel_config.sample_rate),
            "asr_wer": wer_percent(utts, hyps)}


def vocoder_copy_synthesis(runs: Path, utts: list, asr) -> dict:
    """:func:`copy_synthesis` of Griffin-Lim at each acoustic model's mel settings and of each HiFi-GAN run."""
    from seqspeech.tts.package import load_tts_package
    from seqspeech.tts.vocoders.griffin_lim import GriffinLim

    out = {}
    for name in (*ACOUSTIC, *VOCODERS):
        model = _model(runs, name)
        if not model.exists():
            continue
        pkg = load_tts_package(model, device="cpu")
        vocoder = GriffinLim(pkg.mel) if name in ACOUSTIC else pkg.model
        key = f"griffin-lim@{pkg.mel.win_length}" if name in ACOUSTIC else name
        if key not in out:
            out[key] = copy_synthesis(vocoder, pkg.mel, utts, asr)
            print("copy synthesis", key, out[key], flush=True)
    return out


def tacotron_alignment_health(acoustic: Path, utts: list) -> dict:
    import torch

    from seqspeech.metrics.attention import synthesis_alignment_metrics
    from seqspeech.tts.package import load_tts_package

    pkg = load_tts_package(acoustic, family="tacotron2", device="cpu")
    step_seconds = pkg.config.reduction * pkg.mel.frame_seconds
    diagonal = stopped = skipped = repeated = stuck = 0
    diagonality = []
    for u in utts:
        tokens = torch.tensor([pkg.frontend.encode(u.normalized_text)])
        with torch.inference_mode():
            out = pkg.model.infer(tokens, torch.tensor([tokens.shape[1]]), generator=torch.Generator().manual_seed(0))
        m = synthesis_alignment_metrics(out.alignments[0].float(), step_seconds)
        diagonal += int(m.is_diagonal)
        skipped, repeated, stuck = skipped + bool(m.skips), repeated + bool(m.repeats), stuck + bool(m.stuck)
        diagonality.append(m.diagonality)
        stopped += int(not bool(out.hit_max_steps[0]))
    n = len(utts)
    return {"sentences": n, "diagonal_rate": round(diagonal / n, 3), "stop_token_rate": round(stopped / n, 3),
            "with_skips": skipped, "with_repeats": repeated, "with_stuck": stuck,
            "mean_diagonality": round(sum(diagonality) / n, 3)}


def kept_sentences(kept: dict) -> int | None:
    """How many test sentences the kept results were measured on (older files record it per system only)."""
    return kept.get("sentences") or next(iter(kept.get("systems", {}).values()), {}).get("sentences")


def run_summary(run: Path) -> dict | None:
    """:func:`training_summary` plus where the run started from when its recipe continued a package or checkpoint
    (``finetune.init``)."""
    import yaml

    summary = training_summary(run)
    recipe = run / "recipe.yaml"
    if summary is not None and recipe.exists():
        init = (yaml.safe_load(recipe.read_text()).get("finetune") or {}).get("init")
        if init:
            summary["init"] = str(init)
    return summary


def table(results: dict) -> str:
    lines = ["| acoustic model | vocoder | sentences | ASR-WER | teacher's ASR-WER | MCD (dB) | F0 RMSE (Hz) | RTF "
             "| first chunk |", "|---|---|---|---|---|---|---|---|---|"]
    for key, r in results["systems"].items():
        acoustic, vocoder = key.split("+")
        acoustic, vocoder = NAMES.get(acoustic, acoustic), NAMES.get(vocoder, vocoder)
        teacher = r.get("teacher_asr_wer", results.get("teacher_asr_wer"))
        lines.append(f"| {acoustic} | {vocoder} | {r['sentences']} | {r['asr_wer']:.2f} % | {teacher:.2f} % | "
                     f"{r['mcd_db']:.2f} | {r['f0_rmse_hz']:.1f} | {r['rtf']:.3f} | "
                     f"{r['first_chunk_ms_mean']:.0f} ms |")
    lines.append("")
    lines.append("Held-out sentences of the slt corpus (the first N of its test set); ASR: Whisper tiny.en (our "
                 "default recogniser) on the synthesised audio vs on flite slt's own audio (the teacher, same "
                 "sentences); MCD: DTW-aligned mel cepstra against "
                 f"the teacher's audio; RTF and first-chunk latency (streaming) with {results.get('threads')} CPU "
                 "threads, watermark on.")
    cpus = sorted({r.get("cpu", EARLIER_CPU) for r in results["systems"].values()})
    if len(cpus) > 1:
        counts = {c: sorted({r["sentences"] for r in results["systems"].values() if r.get("cpu", EARLIER_CPU) == c})
                  for c in cpus}
        lines.append("- Speeds (RTF, first chunk) come from different machines: " + "; ".join(
            f"{' and '.join(map(str, n))}-sentence rows on {c}" for c, n in counts.items()) + ".")
    copies = results.get("copy_synthesis")
    if copies:
        lines.append("- Vocoders alone (ASR-WER rebuilding the teacher's audio from its own mels): " + ", ".join(
            (f"{NAMES['griffin-lim']} ({r['window_ms']} ms windows)" if key.startswith("griffin-lim")
             else NAMES.get(key, key)) + f" {r['asr_wer']:.2f} % ({r['sentences']} sentences)"
            for key, r in copies.items()) + ".")
    health = results.get("tacotron2_alignment")
    if health:
        lines.append(f"- Tacotron 2 alignment: {health['diagonal_rate']:.0%} of test sentences diagonal "
                     f"(mean diagonality {health['mean_diagonality']:.2f}; sentences with skips "
                     f"{health['with_skips']}, repeats {health['with_repeats']}, a token held > 1 s "
                     f"{health['with_stuck']}), {health['stop_token_rate']:.0%} stopped by the stop token.")
    for name, run in (results.get("training") or {}).items():
        if run:
            lines.append(f"- {name}: {run.get('parameters', 0) / 1e6:.2f} M parameters, {run.get('steps')} steps in "
                         f"{(run.get('train_seconds') or 0) / 60:.0f} min"
                         + (f", continuing {run['init']}." if run.get("init") else "."))
    return "\n".join(lines)


def continued(summary: dict | None, shipped: dict | None) -> dict | None:
    """A run's training summary; when it continued a shipped voice's file (``init`` under models/), with that
    file's own training (from the card being replaced) as ``continued_from``."""
    if not (summary and shipped and str(summary.get("init", "")).startswith("models/")):
        return summary
    if {k: v for k, v in shipped.items() if k != "continued_from"} == summary:  # the same run shipped again
        return shipped
    return {**summary, "continued_from": shipped}


def best_vocoder(results: dict, acoustic: str) -> str | None:
    """The HiFi-GAN run that makes ``acoustic`` most intelligible (ASR-WER, then MCD), or None if none ran."""
    scored = [(r["asr_wer"], r["mcd_db"], key.split("+")[1]) for key, r in results["systems"].items()
              if key.split("+")[0] == acoustic and key.split("+")[1] != "griffin-lim"]
    return min(scored)[2] if scored else None


def ship_voice(acoustic: str, vocoder: str, runs: Path, results: dict) -> None:
    from seqspeech.fileio import write_atomic
    from seqspeech.tts.package import ACOUSTIC_FILE, VOCODER_FILE, load_tts_package, save_tts_package

    dest = ROOT / "models" / VOICES[acoustic]
    dest.mkdir(parents=True, exist_ok=True)
    parts = {ACOUSTIC_FILE: _model(runs, acoustic),
             VOCODER_FILE: _model(runs, vocoder)}
    heads = {}
    for filename, src in parts.items():
        pkg = load_tts_package(src, device="cpu")
        save_tts_package(dest / filename, pkg.family, pkg.model, pkg.config, mel=pkg.mel, frontend=pkg.frontend,
                         extra=None)
        heads[filename] = getattr(pkg.config, "head", None)
    key, chain = f"{acoustic}+{vocoder}", VOCODER_CHAIN[vocoder]
    card_path = dest / "model_card.json"  # the voice shipped before: a run may have continued its files
    previous = (json.loads(card_path.read_text()).get("training") or {}) if card_path.exists() else {}
    vocoder_kind = "HiFi-GAN with an iSTFT head (iSTFTNet)" if heads[VOCODER_FILE] == "istft" else "HiFi-GAN"
    card = {
        "name": dest.name, "family": "tts",
        "architecture": f"{acoustic} (acoustic model) + {vocoder_kind} (vocoder), 16 kHz, phoneme input "
                        "(CMUdict G2P, espeak-ng for unknown words)",
        "recipes": [f"recipes/synth_slt/{RECIPE_FILES.get(name, name)}.yaml"
                    for name in (*ACOUSTIC_RECIPES[acoustic], *ACOUSTIC_NEEDS[acoustic], *chain)],
        "vocoder_run": vocoder,
        "data": DATA_CARD,
        "training": {name: continued(results["training"].get(name), previous.get(name))
                     for name in (acoustic, *chain, *ACOUSTIC_NEEDS[acoustic])},
        "metrics": results["systems"].get(key),
        "teacher_asr_wer": results.get("teacher_asr_wer"),
        "limitations": "Trained on one synthetic voice (flite slt) on 2 CPU cores: it sounds like a vocoded flite voice. "
                       "Every output carries the seqspeech watermark unless turned off.",
    }
    write_atomic(dest / "model_card.json", json.dumps(card, indent=2) + "\n")
    print(f"shipped {dest} ({sum(f.stat().st_size for f in dest.iterdir()) / 1e6:.1f} MB)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs")
    ap.add_argument("--sentences", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--acoustic", nargs="+", choices=ACOUSTIC, default=None,
                    help="re-measure only these acoustic models (and refresh the training summaries); every other "
                         "entry of the JSON is kept")
    ap.add_argument("--use", action="append", default=[], metavar="RUN=FILE",
                    help="measure this package in place of runs/synth_slt-RUN/model.safetensors, e.g. "
                         "fastspeech2=models/slt/acoustic.safetensors (a shipped model no run of this session made)")
    ap.add_argument("--ship", nargs="*", metavar="VOICE", choices=sorted(VOICES.values()),
                    help="copy the voices (default: all) into models/")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from seqspeech import load_model
    from seqspeech.data.manifest import read_manifest
    from seqspeech.fileio import write_atomic

    runs = args.runs_dir.resolve()
    for item in args.use:
        name, _, path = item.partition("=")
        if name not in RUNS or not Path(path).is_file():
            raise SystemExit(f"--use {item}: expected RUN=FILE with RUN one of {', '.join(RUNS)} and FILE a package")
        USE[name] = Path(path).resolve()
    if args.report_only:
        results = json.loads(OUT.read_text())
    else:
        from seqspeech.audio.io import write_wav
        from seqspeech.data.dataset import load_utterance_audio

        utts = read_manifest(DATA / "test.jsonl")[: args.sentences]
        asr = load_model("whisper-tiny.en")
        kept = json.loads(OUT.read_text()) if args.acoustic and OUT.exists() else {}
        same_sentences = kept_sentences(kept) == len(utts)  # the teacher and the vocoders alone are reused only then
        measure = args.acoustic or ACOUSTIC
        teacher = kept.get("teacher_asr_wer") if same_sentences else None
        results = {"sentences": len(utts), "teacher_asr_wer": teacher or teacher_wer(utts, asr),
                   # kept: every system not measured again now (its row shows the sentences it was measured on)
                   "systems": {k: {"teacher_asr_wer": kept.get("teacher_asr_wer")} | r
                               for k, r in kept.get("systems", {}).items()},
                   "threads": args.threads,
                   # a run not here now (e.g. an earlier stage of a vocoder's chain) keeps its recorded summary
                   "training": {name: (None if name in USE else run_summary(_run(runs, name)))
                                or (kept.get("training") or {}).get(name) for name in RUNS}}
        SAMPLES.mkdir(parents=True, exist_ok=True)
        for i, u in enumerate(utts[:SAMPLE_SENTENCES]):
            write_wav(SAMPLES / f"teacher-{i + 1}.wav", load_utterance_audio(u, 16000), 16000)
        for acoustic in measure:
            model = _model(runs, acoustic)
            if not model.exists():
                continue
            for name in ("griffin-lim", *(v for v, partners in VOCODERS.items() if acoustic in partners)):
                vocoder = None if name == "griffin-lim" else _model(runs, name)
                if vocoder is not None and (not vocoder.exists() or not same_mel(model, vocoder)):
                    continue
                key = f"{acoustic}+{name}"
                r = {"teacher_asr_wer": results["teacher_asr_wer"]} | evaluate_system(model, vocoder, utts, asr,
                                                                                      args.threads)
                r["cpu"] = cpu_name()
                for i, wave in enumerate(r.pop("samples")):
                    write_wav(SAMPLES / f"{key.replace('+', '-')}-{i + 1}.wav", wave, 16000)
                results["systems"][key] = r
                print(key, r, flush=True)
            if acoustic == "tacotron2":
                results["tacotron2_alignment"] = tacotron_alignment_health(model, utts)
        results["systems"] = dict(sorted(results["systems"].items(),  # table order: ACOUSTIC, stable within
                                         key=lambda item: ACOUSTIC.index(item[0].split("+")[0])))
        if "tacotron2" not in measure and "tacotron2_alignment" in kept:
            results["tacotron2_alignment"] = kept["tacotron2_alignment"]
        # the vocoders alone do not depend on the acoustic models
        copies = kept.get("copy_synthesis") or {}
        results["copy_synthesis"] = copies if same_sentences and copies else {
            **copies, **vocoder_copy_synthesis(runs, utts, asr)}
        results["sample_texts"] = [u.normalized_text for u in utts[:SAMPLE_SENTENCES]]
        results["runs"] = {name: relative(USE.get(name) or _run(runs, name)) for name in RUNS}
        write_atomic(OUT, json.dumps(results, indent=2) + "\n")
    update_readme("tts_synth", table(results))
    print(table(results))
    if args.ship is not None:
        for acoustic in ACOUSTIC:
            if args.ship and VOICES[acoustic] not in args.ship:
                continue
            vocoder = best_vocoder(results, acoustic)
            if vocoder is not None:
                ship_voice(acoustic, vocoder, runs, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
