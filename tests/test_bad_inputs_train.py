"""Bad input to `seqspeech train RECIPE --out DIR [--set k=v] [--resume]`: recipe files, overrides, manifests,
unreadable audio, the run folder. Each gets one error line on stderr naming the file (or --set) and the problem, no
traceback, no hang, and a run that fails before it starts leaves no half-made run folder behind.

The corpus is six one-second noise clips with short transcripts, made on the fly; the model is a one-layer
Conformer-CTC with a few thousand weights, trained for two steps (a few seconds on 2 cores).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from seqspeech.cli import main

TEXTS = ["hello world", "good morning", "the cat sat", "a big dog", "red and blue", "one two three"]
HANG_GUARD_S = 120  # a case that loops forever fails here instead of stalling the suite


def tiny_recipe(manifest: Path, **sections) -> dict:
    recipe = {
        "task": "asr_ctc",
        "data": {"train": str(manifest), "max_duration": 12.0, "max_batch_seconds": 120.0, "num_buckets": 1},
        "model": {"encoder": {"d_model": 16, "num_layers": 1, "num_heads": 2, "conv_kernel": 3,
                              "subsampling_channels": 8}, "specaugment": None},
        "train": {"max_steps": 2, "warmup_steps": 1, "scheduler": "constant", "checkpoint_every": 1,
                  "log_every": 1, "progress": False, "tensorboard": False},
        "decode": {"lm_order": 2},
    }
    for name, values in sections.items():
        recipe[name] = {**recipe.get(name, {}), **values}
    return recipe


def write_manifest(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """Manifests over six noise clips: all good, some unreadable, all unreadable (with and without durations)."""
    root = tmp_path_factory.mktemp("tiny corpus")
    rng = np.random.default_rng(0)
    rows = []
    for i, text in enumerate(TEXTS):
        sf.write(root / f"u{i}.wav", rng.normal(0, 0.1, 16000).astype(np.float32), 16000)
        rows.append({"id": f"u{i}", "audio": f"u{i}.wav", "duration": 1.0, "text": text, "normalized_text": text})
    (root / "corrupt.wav").write_bytes(b"RIFF" + bytes(60))
    unreadable = [{**row, "audio": "missing.wav" if i % 2 else "corrupt.wav"} for i, row in enumerate(rows)]
    return {
        "root": root,
        "good": write_manifest(root / "good.jsonl", rows),
        "some_bad": write_manifest(root / "some bad.jsonl", rows[:4] + unreadable[4:]),
        "all_bad": write_manifest(root / "all bad.jsonl", unreadable),
        "all_bad_unmeasured": write_manifest(root / "all bad unmeasured.jsonl",
                                             [{**row, "duration": 0.0} for row in unreadable]),
    }


@pytest.fixture(scope="module")
def finished_run(corpus, tmp_path_factory) -> tuple[Path, Path]:
    """(recipe, run folder) of a tiny run that trained its two steps."""
    root = tmp_path_factory.mktemp("finished run")
    recipe = root / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(corpus["good"])))
    assert main(["train", str(recipe), "--out", str(root / "run")]) == 0
    return recipe, root / "run"


@contextlib.contextmanager
def hang_guard(seconds: int = HANG_GUARD_S):
    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def train(capsys, *argv: str) -> tuple[int, str, str]:
    """``seqspeech train ARGV`` in-process: (exit code, stdout, stderr), with the checks every case shares."""
    capsys.readouterr()
    with hang_guard():
        code = main(["train", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "unexpected" not in err, err  # "unexpected ...": a bug caught by main()
    return code, out, err


def the_error(err: str, *fragments: str) -> str:
    """The one error line of a failed run (progress lines such as "train: 6 utterances" may come before it)."""
    errors = [line for line in err.splitlines() if line.startswith("seqspeech: error")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def write_recipe(folder: Path, name: str, content: dict | str | bytes) -> Path:
    path = folder / name
    if isinstance(content, dict):
        path.write_text(yaml.safe_dump(content))
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


# --------------------------------------------------------------------------------------------------- the recipe


@pytest.mark.parametrize(
    "name, content, fragments",
    [
        ("missing.yaml", None, ["recipe file (YAML) not found"]),
        ("a folder.yaml", "DIR", ["is a folder"]),
        ("empty.yaml", "", ["empty recipe"]),
        ("comments.yaml", "# nothing but a comment\n\n", ["empty recipe"]),
        ("broken.yaml", "task: [asr_ctc\ndata: {train: x\n", ["invalid YAML at line 2"]),
        ("list.yaml", "- task\n- data\n", ["must be a mapping", "list"]),
        ("scalar.yaml", "just some words\n", ["must be a mapping", "str"]),
        ("binary.yaml", b"\x89PNG\r\n\x1a\n\xff\xfe" + bytes(50), ["a binary file"]),
        ("no task.yaml", "data: {train: x.jsonl}\n", ["'task' must be one of", "None"]),
        ("bad task.yaml", "task: asr_ctcc\ndata: {train: x.jsonl}\n", ["'task' must be one of", "asr_ctcc"]),
    ],
)
def test_unreadable_recipe_is_one_error_and_no_run_folder(tmp_path, capsys, name, content, fragments):
    path = tmp_path / name
    if content == "DIR":
        path.mkdir()
    elif content is not None:
        write_recipe(tmp_path, name, content)
    run = tmp_path / "run"
    code, out, err = train(capsys, str(path), "--out", str(run))
    assert code == 2 and out == ""
    the_error(err, str(path), *fragments)
    assert not run.exists()


@pytest.mark.parametrize(
    "section, change, fragments",
    [
        ("train", {"max_stepz": 3}, ["train: unknown key 'max_stepz'", "max_steps"]),
        ("data", {"max_batch_secs": 3}, ["data: unknown key 'max_batch_secs'"]),
        (None, {"trian": {}}, ["unknown key 'trian'"]),
        ("train", {"max_steps": "many"}, ["train.max_steps: expected an integer", "'many'"]),
        ("train", {"lr": [1, 2]}, ["train.lr: expected a number"]),
        ("train", {"progress": "yes"}, ["train.progress: expected true or false"]),
        ("train", {"lr": -1.0}, ["lr must be > 0"]),
        ("data", {"train": None}, ["data.train: must not be null"]),
        ("model", {"encoder": {"d_model": 15, "num_heads": 2}}, ["d_model"]),
    ],
)
def test_invalid_recipe_names_the_key(corpus, tmp_path, capsys, section, change, fragments):
    recipe = tiny_recipe(corpus["good"])
    if section is None:
        recipe.update(change)
    else:
        recipe[section] = {**recipe[section], **change}
    path = write_recipe(tmp_path, "recipe.yaml", recipe)
    run = tmp_path / "run"
    code, out, err = train(capsys, str(path), "--out", str(run))
    assert code == 2 and out == ""
    the_error(err, str(path), *fragments)
    assert not run.exists()  # also when the problem shows only once the model is built


# -------------------------------------------------------------------------------------------------------- --set


@pytest.mark.parametrize(
    "override, fragments",
    [
        ("train.lr", ["--set", "expected key=value", "'train.lr'"]),
        ("=3", ["--set", "expected key=value"]),
        ("train.lrr=1e-3", ["--set train.lrr=1e-3", "unknown key 'lrr' in 'train'", "lr"]),
        ("trian.lr=1e-3", ["--set trian.lr=1e-3", "unknown key 'trian'"]),
        ("train.lr.value=1", ["--set train.lr.value=1", "'train.lr' is a float"]),
        ("train..lr=1", ["--set train..lr=1", "unknown key ''"]),
        ("train.lr=[1", ["--set", "'train.lr=[1'", "cannot parse the value"]),
        ("train.max_steps=many", ["--set train.max_steps=many", "expected an integer"]),
    ],
)
def test_bad_override_names_the_set(corpus, tmp_path, capsys, override, fragments):
    path = write_recipe(tmp_path, "recipe.yaml", tiny_recipe(corpus["good"]))
    run = tmp_path / "run"
    code, out, err = train(capsys, str(path), "--out", str(run), "--set", "train.seed=1", "--set", override)
    assert code == 2 and out == ""
    line = the_error(err, *fragments)
    assert len(line.splitlines()) == 1
    assert not run.exists()


# ---------------------------------------------------------------------------------------------------- manifests


def test_bad_manifests_are_one_error(corpus, tmp_path, capsys):
    good = json.loads(corpus["good"].read_text().splitlines()[0])
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(good) + "\n{not json\n")
    fieldless = write_manifest(tmp_path / "fieldless.jsonl", [{"id": "x", "audio": "u0.wav"}])
    wrong_type = write_manifest(tmp_path / "wrong type.jsonl", [{**good, "duration": "long"}])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    cases = [
        ({"train": str(tmp_path / "missing.jsonl")}, ["missing.jsonl", "manifest not found"]),
        ({"train": str(folder)}, ["folder.jsonl", "manifest not found"]),
        ({"train": str(broken)}, [f"{broken}:2", "invalid JSON"]),
        ({"train": str(fieldless)}, [f"{fieldless}:1", "missing required field", "normalized_text"]),
        ({"train": str(wrong_type)}, [f"{wrong_type}:1", "'duration' must be a number"]),
        ({"train": str(empty)}, [str(empty), "manifest is empty"]),
        ({"dev": str(tmp_path / "no dev.jsonl")}, ["no dev.jsonl", "manifest not found"]),
        ({"dev": str(broken)}, [f"{broken}:2", "invalid JSON"]),
    ]
    for data, fragments in cases:
        path = write_recipe(tmp_path, "recipe.yaml", tiny_recipe(corpus["good"], data=data))
        run = tmp_path / "run"
        code, out, err = train(capsys, str(path), "--out", str(run))
        assert code == 2 and out == "", data
        the_error(err, *fragments)
        assert not run.exists(), data


@pytest.mark.parametrize("manifest", ["all_bad", "all_bad_unmeasured"])
def test_all_audio_unreadable_is_one_clear_error(corpus, tmp_path, capsys, manifest):
    path = write_recipe(tmp_path, "recipe.yaml", tiny_recipe(corpus[manifest]))
    run = tmp_path / "run"
    code, out, err = train(capsys, str(path), "--out", str(run))
    assert code == 2 and out == ""
    line = the_error(err, str(corpus[manifest]))
    assert "unreadable" in line or "usable audio" in line
    assert not run.exists()  # the tokenizer it had written went with the folder


def test_all_audio_unreadable_during_training_stops_instead_of_looping(corpus, finished_run, tmp_path, capsys):
    """Feature statistics already in the run folder (a resumed or reused folder), so every batch is empty: the
    trainer skips empty batches, and a whole epoch of them is an error, not an endless loop or a crash."""
    _, done = finished_run
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(done / "feature_stats.pt", run / "feature_stats.pt")
    path = write_recipe(tmp_path, "recipe.yaml", tiny_recipe(corpus["all_bad"], train={"max_steps": 1000}))
    code, out, err = train(capsys, str(path), "--out", str(run))
    assert code == 2 and out == ""
    the_error(err, "none of its 1 batches had a usable item", "6 unreadable")
    assert run.is_dir()  # the user's own folder is never removed


def test_some_audio_unreadable_trains_on_the_rest(corpus, tmp_path, capsys):
    path = write_recipe(tmp_path, "recipe.yaml", tiny_recipe(corpus["some_bad"]))
    run = tmp_path / "run"
    code, out, err = train(capsys, str(path), "--out", str(run))
    assert code == 0, err
    summary = json.loads(out)
    assert summary["result"]["step"] == 2 and summary["result"]["skipped_items"] == 4  # 2 bad items x 2 steps
    assert (run / "model.safetensors").is_file()


# ---------------------------------------------------------------------------------------------------- run folder


def test_resume_without_a_checkpoint_is_one_error(finished_run, tmp_path, capsys):
    recipe, _ = finished_run
    missing = tmp_path / "never ran"
    code, _, err = train(capsys, str(recipe), "--out", str(missing), "--resume")
    assert code == 2
    the_error(err, str(missing), "nothing to resume", "does not exist")
    assert not missing.exists()
    started = tmp_path / "killed before its first checkpoint"
    started.mkdir()
    (started / "tokenizer.json").write_text("{}")
    code, _, err = train(capsys, str(recipe), "--out", str(started), "--resume")
    assert code == 2
    the_error(err, str(started), "no checkpoint")
    assert sorted(p.name for p in started.iterdir()) == ["tokenizer.json"]


def test_resume_with_a_checkpoint_continues(finished_run, tmp_path, capsys):
    recipe, done = finished_run
    run = tmp_path / "run"
    shutil.copytree(done, run)
    code, out, err = train(capsys, str(recipe), "--out", str(run), "--resume", "--set", "train.max_steps=3")
    assert code == 0, err
    assert json.loads(out)["result"]["step"] == 3


def test_out_that_is_a_file_is_one_error(finished_run, tmp_path, capsys):
    recipe, _ = finished_run
    blocker = tmp_path / "run"
    blocker.write_text("my notes")
    for extra in ([], ["--resume"]):
        code, out, err = train(capsys, str(recipe), "--out", str(blocker), *extra)
        assert code == 2 and out == ""
        the_error(err, str(blocker), "not a folder")
    assert blocker.read_text() == "my notes"


def test_a_new_run_into_a_finished_one_is_one_error(finished_run, capsys):
    recipe, done = finished_run
    before = sorted(p.name for p in done.iterdir())
    code, out, err = train(capsys, str(recipe), "--out", str(done))
    assert code == 2 and out == ""
    the_error(err, str(done), "already holds a run", "--resume")
    assert sorted(p.name for p in done.iterdir()) == before
