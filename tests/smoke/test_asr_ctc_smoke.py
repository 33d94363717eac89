"""End to end for the CTC family: synthetic corpus -> recipe -> `seqspeech train` -> evaluate, transcribe, align.

A tiny Conformer-CTC trains for a few dozen steps on a dozen synthetic utterances; the test checks the loss
falls, the run folder holds everything needed to run the model, and every CLI entry point works on it.
"""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from seqspeech.cli import main
from seqspeech.data.manifest import read_manifest

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")

TINY_RECIPE = {
    "task": "asr_ctc",
    "data": {"max_duration": 12.0, "max_batch_seconds": 120.0, "num_buckets": 1, "augment": {"noise_prob": 0.5}},
    "tokenizer": {"type": "char"},
    "model": {
        "encoder": {"d_model": 32, "num_layers": 2, "num_heads": 2, "conv_kernel": 7, "subsampling_channels": 16,
                    "dropout": 0.0},
        "specaugment": {"freq_width": 5, "max_time_width": 5},
    },
    "train": {"max_steps": 40, "lr": 1.0e-2, "warmup_steps": 5, "scheduler": "constant", "checkpoint_every": 20, "average_last": 2,
              "log_every": 1, "progress": False, "tensorboard": False, "eval_every": 20},
    "decode": {"lm_order": 2},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth_corpus):
    root = tmp_path_factory.mktemp("ctc_smoke")
    corpus = synth_corpus
    recipe = dict(TINY_RECIPE)
    recipe["data"] = {**TINY_RECIPE["data"], "train": str(corpus["train"]), "dev": str(corpus["dev"])}
    recipe["eval"] = {"test": str(corpus["test"])}
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    run = root / "run"
    assert main(["train", str(path), "--out", str(run), "--set", "train.seed=3"]) == 0
    return run, corpus


def test_training_lowers_the_loss_and_writes_a_complete_run(trained):
    run, _ = trained
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r.get("event") == "train"]  # every step: the same one batch
    assert len(losses) == 40
    assert sum(losses[-3:]) / 3 < 0.75 * sum(losses[:3]) / 3, losses
    for name in ("model.safetensors", "lm.arpa", "tokenizer.json", "recipe.yaml", "train_summary.json"):
        assert (run / name).exists(), name
    assert yaml.safe_load((run / "recipe.yaml").read_text())["train"]["seed"] == 3  # --set applied


def test_evaluate_transcribe_and_align_from_the_run(trained, tmp_path, capsys):
    run, corpus = trained
    capsys.readouterr()
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run / "model.safetensors"), str(corpus["test"]), "--beam-size", "4",
                 "--output", str(out), "--hypotheses-out", str(tmp_path / "hyps.jsonl")]) == 0
    result = json.loads(out.read_text())
    assert result["utterances"] == 3 and result["skipped"] == 0
    for mode in ("greedy", "beam", "beam_lm"):
        assert 0.0 <= result[mode]["cer"] and result[mode]["rtf"] > 0
    assert len((tmp_path / "hyps.jsonl").read_text().splitlines()) == 3

    wav = read_manifest(corpus["test"])[0].audio
    capsys.readouterr()
    assert main(["transcribe", wav, "--model", str(run), "--format", "json", "--beam-size", "2"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["path"] == wav and record["duration"] > 0

    text = read_manifest(corpus["test"])[0].normalized_text
    assert main(["align", wav, text, "--model", str(run / "model.safetensors")]) == 0
    words = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [w["word"] for w in words] == text.split()
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and all(w["end"] > w["start"] for w in words)


def test_resume_continues_a_finished_run_without_retraining(trained, capsys):
    run, _ = trained
    recipe = run / "recipe.yaml"
    assert main(["train", str(recipe), "--out", str(run), "--resume"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["result"]["step"] == 40


def test_bad_recipe_names_the_key(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"task": "asr_ctc", "data": {"train": "x.jsonl", "max_batch_secs": 10}}))
    assert main(["train", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'max_batch_secs'" in err and "bad.yaml" in err
