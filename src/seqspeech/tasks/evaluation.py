"""Score a trained recogniser (CTC, LAS, AED) on a manifest: CER/WER and RTF per decoding mode, plus attention
diagnostics for attention models.

A recogniser offers ``encode(waves) -> (encoded, lens)``, ``decode(encoded, lens, **settings) -> token ids`` and
``evaluation_modes(beam_size) -> {mode: settings}``; the acoustic model runs once per batch and every mode decodes
the same encoder output. Models with ``alignments`` (attention models) also get per-utterance alignment metrics of
their greedy hypotheses (diagonality, focus rate, skips, repeats, stuck decoding) summarised in the report.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ..audio.constants import SAMPLE_RATE
from ..data.dataset import load_utterance_audio
from ..data.manifest import read_manifest
from ..errors import AudioError, ConfigError
from ..fileio import write_atomic
from ..metrics.wer import error_rate
from ..progress import progress_bar


def evaluate_manifest(
    asr: Any,
    manifest: str | os.PathLike,
    *,
    modes: tuple[str, ...] = ("greedy",),
    beam_size: int = 8,
    text_field: str = "normalized_text",
    batch_size: int = 16,
    max_utterances: int | None = None,
    hypotheses_out: str | os.PathLike | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """CER/WER of ``asr`` on a manifest for each decoding mode (see ``asr.evaluation_modes``).

    Unreadable audio is skipped and counted, never fatal.
    """
    utts = read_manifest(manifest)
    if max_utterances:
        utts = utts[:max_utterances]
    settings = asr.evaluation_modes(beam_size)
    unknown = [m for m in modes if m not in settings]
    if unknown:
        raise ConfigError(f"unknown decoding mode {unknown[0]!r} for {asr.name}; choose from {list(settings)}")
    if "beam_lm" in modes and asr.lm() is None:
        raise ConfigError(f"{asr.name}: mode 'beam_lm' needs an LM (lm.arpa beside the model, or --lm)")
    diagnose = hasattr(asr, "alignments")
    hyps: dict[str, list[str]] = {m: [] for m in modes}
    refs: list[str] = []
    ids: list[str] = []
    decode_s = {m: 0.0 for m in modes}
    skipped: list[str] = []
    alignment_metrics: list[Any] = []
    audio_s = encode_s = 0.0
    bar = progress_bar(len(utts), desc="evaluate", unit="utt", enabled=progress)
    for b in range(0, len(utts), batch_size):
        chunk, waves = [], []
        for u in utts[b : b + batch_size]:
            try:
                wave = load_utterance_audio(u)
            except (AudioError, OSError) as e:
                skipped.append(f"{u.id}: {e}")
                continue
            chunk.append(u)
            waves.append(wave)
        bar.update(len(utts[b : b + batch_size]))
        if not chunk:
            continue
        t0 = time.perf_counter()
        encoded, lens = asr.encode(waves)
        encode_s += time.perf_counter() - t0
        audio_s += sum(len(w) for w in waves) / SAMPLE_RATE
        greedy_tokens = None
        for mode in modes:
            t0 = time.perf_counter()
            tokens = asr.decode(encoded, lens, **settings[mode])
            decode_s[mode] += time.perf_counter() - t0
            hyps[mode].extend(asr.tokenizer.decode(t) for t in tokens)
            if mode == modes[0]:
                greedy_tokens = tokens
        if diagnose and greedy_tokens is not None:
            from ..metrics.attention import alignment_metrics as metrics_of

            weights = asr.alignments(asr.features(waves), greedy_tokens)
            alignment_metrics.extend(metrics_of(w) for w in weights)
        refs.extend(getattr(u, text_field) for u in chunk)
        ids.extend(u.id for u in chunk)
    bar.close()
    results: dict[str, Any] = {
        "manifest": str(manifest), "model": asr.name, "utterances": len(refs), "audio_seconds": round(audio_s, 2),
        "skipped": len(skipped), "skipped_examples": skipped[:5],
    }
    for mode in modes:
        cer = error_rate(refs, hyps[mode], unit="char", normalizer=light_normalize)
        wer = error_rate(refs, hyps[mode], unit="word", normalizer=light_normalize)
        results[mode] = {
            "cer": round(cer.rate * 100, 2), "wer": round(wer.rate * 100, 2),
            "rtf": round((encode_s + decode_s[mode]) / max(audio_s, 1e-9), 4),
        }
    if alignment_metrics:
        from ..metrics.attention import summarize_alignments

        results["attention"] = {"mode": modes[0], **summarize_alignments(alignment_metrics)}
    if hypotheses_out:
        lines = []
        for k, (i, r) in enumerate(zip(ids, refs)):
            row = {"id": i, "reference": r, **{m: hyps[m][k] for m in modes}}
            if alignment_metrics:
                row["attention"] = _compact(alignment_metrics[k].to_dict())
            lines.append(json.dumps(row, ensure_ascii=False) + "\n")
        write_atomic(Path(hypotheses_out), "".join(lines))
    return results


def _compact(metrics: dict[str, Any]) -> dict[str, Any]:
    """Per-utterance metrics without the long per-row path."""
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items() if k != "path"}


def light_normalize(text: str) -> str:
    return " ".join(text.lower().replace("\u2581", " ").split())

