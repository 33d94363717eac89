"""End to end for the attention families: recipe -> `seqspeech train` (LAS and AED) -> evaluate with alignment
diagnostics, transcribe, plot-attention.

Tiny models train for a few dozen steps on a dozen synthetic utterances; the tests check the loss falls, the run
folder holds a complete model, and every CLI entry point works on it.
"""

from __future__ import annotations

import json

import pytest
import yaml

from seqspeech.cli import main
from seqspeech.data.manifest import read_manifest

TRAIN = {"max_steps": 30, "lr": 1.0e-2, "warmup_steps": 5, "scheduler": "constant", "checkpoint_every": 15,
         "average_last": 2, "log_every": 1, "progress": False, "tensorboard": False, "eval_every": 15}
MODELS = {
    "las": {"family": "las", "attention": "location", "listener_layers": 2, "listener_hidden": 32,
            "pyramid_levels": 2, "attention_dim": 32, "embed_dim": 16, "decoder_hidden": 48, "dropout": 0.0,
            "ctc_weight": 0.2, "guided_attention": {"weight": 1.0, "half_life": 20},
            "scheduled_sampling": {"kind": "linear", "start_step": 10, "decay_steps": 100, "min_prob": 0.8},
            "specaugment": {"freq_width": 5, "max_time_width": 5}},
    "aed": {"family": "aed", "encoder": {"d_model": 32, "num_layers": 2, "num_heads": 2, "conv_kernel": 7,
                                         "subsampling_channels": 16, "dropout": 0.0},
            "decoder_layers": 1, "decoder_heads": 2, "decoder_ff": 64, "decoder_dropout": 0.0, "ctc_weight": 0.3,
            "specaugment": {"freq_width": 5, "max_time_width": 5}},
}


def _recipe(family: str, corpus) -> dict:
    return {
        "task": "asr_attention",
        "data": {"train": str(corpus["train"]), "dev": str(corpus["dev"]), "max_duration": 12.0,
                 "max_batch_seconds": 120.0, "num_buckets": 1},
        "tokenizer": {"type": "char"},
        "model": MODELS[family],
        "train": TRAIN,
        "decode": {"beam_size": 3, "ctc_weight": 0.3, "eos_threshold": 1.5, "max_length_ratio": 2.0},
        "lm_order": 2,
    }


@pytest.fixture(scope="module", params=["las", "aed"])
def trained(request, tmp_path_factory, synth_corpus):
    family = request.param
    root = tmp_path_factory.mktemp(f"{family}_smoke")
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(_recipe(family, synth_corpus)))
    run = root / "run"
    assert main(["train", str(path), "--out", str(run)]) == 0
    return family, run, synth_corpus


def test_training_lowers_the_loss_and_writes_a_complete_run(trained):
    family, run, _ = trained
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    losses = [r["att_loss"] for r in records if r.get("event") == "train"]  # every step: the same one batch
    assert len(losses) == 30
    assert sum(losses[-3:]) / 3 < 0.85 * sum(losses[:3]) / 3, losses
    assert any(r.get("event") == "dev" and "cer" in r for r in records)
    for name in ("model.safetensors", "lm.arpa", "tokenizer.json", "recipe.yaml", "train_summary.json"):
        assert (run / name).exists(), name


def test_evaluate_transcribe_and_plot_from_the_run(trained, tmp_path, capsys):
    family, run, corpus = trained
    capsys.readouterr()
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run / "model.safetensors"), str(corpus["test"]), "--beam-size", "2",
                 "--output", str(out), "--hypotheses-out", str(tmp_path / "hyps.jsonl")]) == 0
    result = json.loads(out.read_text())
    assert result["utterances"] == 3 and result["skipped"] == 0
    for mode in ("greedy", "beam", "beam_lm"):
        assert result[mode]["cer"] >= 0.0 and result[mode]["rtf"] > 0
    attention = result["attention"]
    assert attention["n"] == 3 and 0.0 <= attention["diagonal_rate"] <= 1.0
    rows = [json.loads(line) for line in (tmp_path / "hyps.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all("focus_rate" in r["attention"] for r in rows)

    wav = read_manifest(corpus["test"])[0].audio
    capsys.readouterr()
    assert main(["transcribe", wav, "--model", str(run), "--format", "json", "--beam-size", "2"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["path"] == wav and record["duration"] > 0

    png = tmp_path / "att.png"
    text = read_manifest(corpus["test"])[0].normalized_text
    assert main(["plot-attention", str(run), wav, "-o", str(png), "--text", text]) == 0
    report = json.loads(capsys.readouterr().out)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["text"] == text and 0.0 <= report["focus_rate"] <= 1.0


def test_bad_model_section_names_the_key(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"task": "asr_attention", "data": {"train": "x.jsonl"},
                                    "model": {"family": "las", "atention": "location"}}))
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "atention" in err
