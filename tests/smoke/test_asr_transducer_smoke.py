"""End to end for the transducer: synthetic corpus -> streaming recipe -> `seqspeech train` -> evaluate,
transcribe, and `seqspeech stream` on the run folder (a tiny chunked causal Conformer, a few dozen steps)."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from seqspeech.cli import main
from seqspeech.data.manifest import read_manifest

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")

TINY_RECIPE = {
    "task": "asr_transducer",
    "data": {"max_duration": 12.0, "max_batch_seconds": 120.0, "num_buckets": 1},
    "tokenizer": {"type": "char"},
    "model": {
        "encoder": {"d_model": 32, "num_layers": 2, "num_heads": 2, "conv_kernel": 7, "subsampling_channels": 16,
                    "dropout": 0.0, "causal": True, "chunk_sizes": [4, 8, 0], "left_context": 16},
        "predictor": {"embed_dim": 16, "hidden": 32},
        "joiner_dim": 32,
        "specaugment": None,
    },
    "train": {"max_steps": 30, "lr": 1.0e-2, "warmup_steps": 5, "scheduler": "constant", "checkpoint_every": 15,
              "average_last": 2, "log_every": 1, "progress": False, "tensorboard": False, "eval_every": 15},
    "decode": {"lm_order": 2, "beam_size": 2},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synth_corpus):
    root = tmp_path_factory.mktemp("rnnt_smoke")
    recipe = dict(TINY_RECIPE)
    recipe["data"] = {**TINY_RECIPE["data"], "train": str(synth_corpus["train"]), "dev": str(synth_corpus["dev"])}
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    run = root / "run"
    assert main(["train", str(path), "--out", str(run)]) == 0
    return run, synth_corpus


def test_training_lowers_the_loss_and_writes_a_complete_run(trained):
    run, _ = trained
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if r.get("event") == "train"]
    assert len(losses) == 30
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses
    assert any("simple" in r and "ctc" in r for r in records if r.get("event") == "train")
    for name in ("model.safetensors", "lm.arpa", "recipe.yaml", "train_summary.json"):
        assert (run / name).exists(), name


def test_evaluate_transcribe_and_stream_the_run(trained, tmp_path, capsys):
    run, corpus = trained
    capsys.readouterr()
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(run), str(corpus["test"]), "--output", str(out), "--modes", "greedy,beam"]) == 0
    result = json.loads(out.read_text())
    assert result["utterances"] == 3 and result["greedy"]["cer"] >= 0 and result["beam"]["rtf"] > 0

    wav = read_manifest(corpus["test"])[0].audio
    capsys.readouterr()
    assert main(["transcribe", wav, "--model", str(run), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == wav

    capsys.readouterr()
    assert main(["transcribe", wav, "--model", str(run)]) == 0
    offline = capsys.readouterr().out.strip()
    # the stream at the model's own chunk says what offline decoding says (a 30-step model may say nothing)
    assert main(["stream", wav, "--model", str(run), "--format", "jsonl", "--no-endpoint"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert " ".join(e["text"] for e in events if e["type"] == "final").strip() == offline
    times = [e["emitted_at"] for e in events]
    assert times == sorted(times)
