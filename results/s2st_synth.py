"""Regenerate results/s2st_synth.json and its README table: Spanish-to-English translation on held-out sentences.

    python results/s2st_synth.py [--run runs/mt-es-en] [--asr-run runs/synth_es_en-asr_ctc_es] [--ship]
                                 [--pairs 200] [--skip-cascade]

Measured (the direct model comes later):

* MT BLEU (sacrebleu, spoken-form English references) with greedy and beam search on the whole source;
* BLEU against Average Lagging (in source tokens) for wait-k, k = 1, 3, 5, 7 and infinity (the whole source first),
  one model trained with multi-path wait-k (``recipes/synth_es_en/mt.yaml``);
* translation speed on this machine;
* the Spanish recogniser (``asr-synth-es``): CER on held-out sentences and held-out voices;
* the cascade (ASR -> MT -> the slt voice): ASR-BLEU, the BLEU of Whisper tiny.en's transcript of the English
  speech (both sides through Whisper's English normaliser), on ``--pairs`` held-out sentence pairs and as many pairs
  spoken by held-out voices, with the text BLEU of each stage and the seconds each stage takes. Test pairs whose
  Spanish sentence the MT model was trained on (the generator repeats short sentences) are left out and counted.

The test pairs are the run's own held-out sentences (regenerated from its recipe: distinct Spanish sides never seen
in training). ``--ship`` copies the MT run's model to ``models/mt-synth-es-en`` (fp16) with a model card, and the ASR run's to
``models/asr-synth-es`` (with its 3-gram LM).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, cpu_name, relative, update_readme  # noqa: E402

OUT = ROOT / "results" / "s2st_synth.json"
MT_NAME = "mt-synth-es-en"
ASR_NAME = "asr-synth-es"
WAIT_KS = (1, 3, 5, 7)
DATA = ROOT / "data" / "synth_es_en"
SETS = {"test": "held-out sentences", "test_voices": "held-out voices"}


def mt_results(run: Path, model: Path) -> dict:
    from seqspeech.st.mt import Translator, average_lagging, wait_k_delays
    from seqspeech.tasks.mt import evaluate_translator, load_recipe, make_pairs

    recipe = load_recipe(yaml.safe_load((run / "recipe.yaml").read_text()), str(run / "recipe.yaml"))
    test = make_pairs(recipe.data)["test"]
    translator = Translator.from_path(model)
    t0 = time.perf_counter()
    res = evaluate_translator(translator, test, beam_size=recipe.beam_size, wait_ks=WAIT_KS)
    src_lens = [len(translator.encode_source(s)) for s, _ in test]
    greedy = translator.translate([s for s, _ in test], beam_size=1)
    full_al = [average_lagging(wait_k_delays(None, n, max(1, len(translator.tokenizer.encode(h)))), n)
               for h, n in zip(greedy, src_lens)]
    res["wait_k"].append({"k": "inf", "bleu": res["bleu_greedy"],
                          "average_lagging_tokens": round(sum(full_al) / len(full_al), 2)})
    res["mean_source_tokens"] = round(sum(src_lens) / len(src_lens), 2)
    res["eval_seconds"] = round(time.perf_counter() - t0, 1)
    summary = json.loads((run / "train_summary.json").read_text())
    res["training"] = {k: summary.get(k) for k in ("train_seconds", "parameters", "train_pairs", "vocab_size",
                                                   "peak_rss_mb")}
    res["training"]["steps"] = summary["result"]["step"]
    res["model"] = relative(model)
    return res


def ship(run: Path, dest: Path, mt: dict) -> None:
    from seqspeech.st.mt import Translator

    translator = Translator.from_path(run / "model")
    card = {
        "name": dest.name, "family": "mt",
        "architecture": "Transformer encoder-decoder (unidirectional encoder, tied decoder embeddings), one shared "
                        "unigram SentencePiece vocabulary; multi-path wait-k training (k in {1, 3, 5, 7, whole "
                        "source}): one model for offline and simultaneous translation",
        "recipe": "recipes/synth_es_en/mt.yaml",
        "data": "Spanish-English sentence pairs from seqspeech's template generator (synth_es_en), spoken form on "
                "both sides (verbalize_es / verbalize_en); test sentences never seen in training",
        "training": mt["training"],
        "metrics": {"test_sentences": mt["sentences"], "bleu_greedy": mt["bleu_greedy"], "bleu_beam": mt["bleu_beam"],
                    "beam_size": mt["beam_size"], "wait_k": mt["wait_k"]},
        "limitations": "Knows only the generator's vocabulary and sentence patterns (a few hundred nouns, verbs and "
                       "adjectives; statements, questions, commands, numbers, dates, times, prices): real Spanish "
                       "outside them is not translated. Input and output are lower-case spoken form (numbers in "
                       "words, no punctuation).",
        "resolved_recipe": yaml.safe_load((run / "recipe.yaml").read_text()),
    }
    translator.save(dest, card=card)
    print(f"shipped {dest} ({sum(f.stat().st_size for f in dest.iterdir()) / 1e6:.1f} MB)")


def _pairs(split: str, limit: int, mt_train: set[str]) -> tuple[list[tuple], int]:
    """(Spanish utterance, English utterance) of a corpus split, the first ``limit`` whose Spanish sentence the MT
    model never saw; and how many were left out for that."""
    from seqspeech.data.manifest import read_manifest

    english = {u.pair_id: u for u in read_manifest(DATA / f"{split}.en.jsonl")}
    pairs, seen = [], 0
    for es in read_manifest(DATA / f"{split}.es.jsonl"):
        if es.pair_id not in english:
            continue
        if es.normalized_text in mt_train:
            seen += 1
            continue
        pairs.append((es, english[es.pair_id]))
        if len(pairs) == limit:
            break
    return pairs, seen


def cascade_results(run: Path, asr_model: Path, mt_model: Path, limit: int) -> dict:
    """Per test set: ASR CER, the text BLEU of MT on the transcripts and on the reference Spanish, ASR-BLEU of the
    spoken translation (and of the voice speaking the reference English: the metric's ceiling), seconds per stage."""
    import seqspeech
    from seqspeech.metrics.wer import error_rate
    from seqspeech.st.cascade import Cascade
    from seqspeech.tasks.mt import corpus_bleu, load_recipe, make_pairs
    from seqspeech.text.normalize import EnglishTextNormalizer

    recipe = load_recipe(yaml.safe_load((run / "recipe.yaml").read_text()), str(run / "recipe.yaml"))
    mt_train = {s for s, _ in make_pairs(recipe.data)["train"]}
    cascade = Cascade.load(str(asr_model), str(mt_model), "slt")
    whisper = seqspeech.load_model("whisper-tiny.en")
    norm = EnglishTextNormalizer()
    out = {}
    for split, title in SETS.items():
        pairs, seen = _pairs(split, limit, mt_train)
        if not pairs:
            continue
        refs = [en.normalized_text for _, en in pairs]
        results = cascade.translate_batch([es.audio for es, _ in pairs])
        spoken_refs = [cascade.voice.synthesize(r) for r in refs]
        heard = [t.text for t in whisper.transcribe_batch([r.audio for r in results])]
        heard_refs = [t.text for t in whisper.transcribe_batch(spoken_refs)]
        audio_s = sum(len(r.audio) for r in results) / cascade.voice.sample_rate
        source_s = sum(es.duration for es, _ in pairs)
        out[split] = {
            "title": title, "pairs": len(pairs), "left_out_seen_by_mt": seen,
            "asr_cer": round(error_rate([es.normalized_text for es, _ in pairs], [r.source_text for r in results],
                                        unit="char").rate * 100, 2),
            "mt_bleu_on_reference_spanish": corpus_bleu(cascade.mt.translate([es.normalized_text for es, _ in pairs]),
                                                        refs),
            "cascade_text_bleu": corpus_bleu([r.text for r in results], refs),
            "asr_bleu": corpus_bleu([norm(h) for h in heard], [norm(r) for r in refs]),
            "asr_bleu_of_reference_speech": corpus_bleu([norm(h) for h in heard_refs], [norm(r) for r in refs]),
            "seconds_per_pair": {k: round(sum(r.seconds[k] for r in results) / len(results), 3)
                                 for k in ("asr", "mt", "tts")},
            "rtf": round(sum(sum(r.seconds.values()) for r in results) / source_s, 3),
            "source_seconds": round(source_s, 1), "target_seconds": round(audio_s, 1),
            "examples": [{"source": r.source_text, "translation": r.text, "heard": h, "reference": ref}
                         for r, h, ref in list(zip(results, heard, refs))[:3]],
        }
        print(f"cascade {split}: {out[split]['asr_bleu']} ASR-BLEU ({len(pairs)} pairs)", flush=True)
    return out


def asr_results(asr_model: Path) -> dict:
    """CER (%) of the Spanish recogniser on each test set, with its own decoding defaults."""
    import seqspeech
    from seqspeech.data.manifest import read_manifest
    from seqspeech.metrics.wer import error_rate

    asr = seqspeech.load_model(str(asr_model))
    out = {}
    for split in SETS:
        utts = read_manifest(DATA / f"{split}.es.jsonl")
        hyps = [t.text for t in asr.transcribe_batch([u.audio for u in utts])]
        out[split] = {"utterances": len(utts),
                      "cer": round(error_rate([u.normalized_text for u in utts], hyps, unit="char").rate * 100, 2),
                      "wer": round(error_rate([u.normalized_text for u in utts], hyps, unit="word").rate * 100, 2)}
    return out


def table(results: dict) -> str:
    mt = results["mt"]
    rows = [f"MT on {mt['sentences']} held-out sentence pairs (`{mt['model']}`; mean source length "
            f"{mt['mean_source_tokens']} tokens):", "",
            "| decoding | BLEU | Average Lagging (source tokens) |", "|---|---|---|",
            f"| whole source, greedy | {mt['bleu_greedy']:.1f} | {mt['wait_k'][-1]['average_lagging_tokens']:.2f} |",
            f"| whole source, beam {mt['beam_size']} | {mt['bleu_beam']:.1f} | "
            f"{mt['wait_k'][-1]['average_lagging_tokens']:.2f} |"]
    rows += [f"| wait-{w['k']}, greedy | {w['bleu']:.1f} | {w['average_lagging_tokens']:.2f} |"
             for w in mt["wait_k"] if w["k"] != "inf"]
    if results.get("asr"):
        a = results["asr"]
        rows += ["", f"Spanish recogniser `{ASR_NAME}` (CTC, beam + 3-gram LM): " + "; ".join(
            f"{a[k]['cer']:.1f} % CER ({a[k]['wer']:.1f} % WER) on {a[k]['utterances']} {SETS[k]}" for k in a) + "."]
    if results.get("cascade"):
        c = results["cascade"]
        rows += ["", "| cascade ASR → MT → slt | " + " | ".join(c[k]["title"] + f" ({c[k]['pairs']} pairs)" for k in c)
                 + " |", "|---|" + "---|" * len(c)]
        for key, label in (("asr_cer", "Spanish ASR CER %"), ("mt_bleu_on_reference_spanish",
                                                              "MT BLEU on the reference Spanish"),
                           ("cascade_text_bleu", "MT BLEU on the ASR transcript"), ("asr_bleu", "**ASR-BLEU**"),
                           ("asr_bleu_of_reference_speech", "ASR-BLEU of slt speaking the reference"),
                           ("rtf", "RTF (ASR + MT + TTS)")):
            rows.append(f"| {label} | " + " | ".join(f"{c[k][key]:.3g}" if key == "rtf" else f"{c[k][key]:.1f}"
                                                    for k in c) + " |")
    t = mt["training"]
    rows += ["", (f"One MT model for every row: {t['parameters'] / 1e6:.1f} M parameters, {t['train_pairs']} training "
                  f"pairs, {t['steps']} steps in {t['train_seconds'] / 60:.0f} minutes on {results['machine']}; "
                  f"greedy translation {mt['greedy_sentences_per_second']} sentences/s. `python results/"
                  f"s2st_synth.py`, {results['date']}.")]
    return "\n".join(rows)


def ship_asr(run: Path, dest: Path) -> None:
    from common import ship as ship_package
    from common import training_summary

    summary = json.loads((run / "train_summary.json").read_text())
    card = {
        "architecture": "Conformer-CTC, characters; the encoder initialised from ctc-conformer-synth-en (English), "
                        "the character head new",
        "recipes": ["recipes/synth_es_en/asr_ctc_es.yaml"],
        "data": "the Spanish side of seqspeech corpus synth data/synth_es_en --language es-en --sentences 10000 --dev "
                "200 --test 300 --seed 1: espeak-ng Spanish voices (es, es-419 variants), random rate and pitch; "
                "held-out voices es+f4 and es-419+m3 never trained on",
        "training": training_summary(run),
        "evaluation": summary.get("eval"),
        "limitations": "Synthetic Spanish speech only (espeak-ng): expect very high error rates on real people. "
                       "Knows the sentence generator's vocabulary. Lower-case spoken form, no punctuation.",
    }
    ship_package(run, dest, card, decode=(yaml.safe_load((run / "recipe.yaml").read_text()) or {}).get("decode", {}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=ROOT / "runs" / "mt-es-en")
    ap.add_argument("--asr-run", type=Path, default=ROOT / "runs" / "synth_es_en-asr_ctc_es")
    ap.add_argument("--ship", action="store_true", help=f"copy the runs' models to models/{MT_NAME} and "
                                                        f"models/{ASR_NAME} first")
    ap.add_argument("--pairs", type=int, default=200, help="pairs per test set for the cascade")
    ap.add_argument("--skip-cascade", action="store_true")
    ap.add_argument("--only", choices=["mt", "asr", "cascade"], default=None,
                    help="measure one part, keeping the others' stored results")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    dest = ROOT / "models" / MT_NAME
    asr_dest = ROOT / "models" / ASR_NAME
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    if args.only in (None, "mt"):
        mt = mt_results(args.run, args.run / "model")
        if args.ship:
            ship(args.run, dest, mt)
            mt = mt_results(args.run, dest)  # the shipped fp16 weights
        results["mt"] = mt
    if args.ship and (args.asr_run / "model.safetensors").exists():
        ship_asr(args.asr_run, asr_dest)
    if args.only in (None, "asr") and asr_dest.exists():
        results["asr"] = asr_results(asr_dest)
    if args.only in (None, "cascade") and not args.skip_cascade and asr_dest.exists():
        results["cascade"] = cascade_results(args.run, asr_dest, dest, args.pairs)
    results.update({"machine": f"{cpu_name()}, 2 threads", "date": time.strftime("%Y-%m-%d")})
    OUT.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    update_readme("s2st_synth", table(results))
    print(table(results))


if __name__ == "__main__":
    main()
