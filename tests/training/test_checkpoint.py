"""Checkpoint save/load (weights_only), rotation, averaging, RNG capture and clear errors on bad files."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
import torch

from seqspeech.errors import ModelLoadError
from seqspeech.training.checkpoint import (
    average_checkpoints,
    capture_rng_state,
    latest_checkpoint,
    load_checkpoint,
    restore_rng_state,
    rotate_checkpoints,
    save_checkpoint,
    step_checkpoint_name,
)


def test_save_load_roundtrip_leaves_no_temp_files(tmp_path):
    state = {
        "model": {"w": torch.arange(6.0).reshape(2, 3)},
        "step": 7,
        "config": {"betas": (0.9, 0.98)},
        "extra": {"vocab": ["a", "b"]},
    }
    path = save_checkpoint(tmp_path / "ckpt" / "a.pt", state)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert loaded["step"] == 7 and loaded["extra"] == {"vocab": ["a", "b"]}
    assert [p.name for p in path.parent.iterdir()] == ["a.pt"]


def test_rng_state_roundtrips_through_weights_only_load(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.normal()  # leaves a cached gaussian in numpy's state
    save_checkpoint(tmp_path / "rng.pt", {"rng": capture_rng_state()})
    expected = (random.random(), np.random.normal(), torch.rand(3))
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    restore_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    got = (random.random(), np.random.normal(), torch.rand(3))
    assert got[0] == expected[0] and got[1] == expected[1] and torch.equal(got[2], expected[2])


def test_bad_or_truncated_checkpoint_raises_model_load_error_naming_file(tmp_path):
    good = save_checkpoint(tmp_path / "good.pt", {"model": {"w": torch.randn(64, 64)}, "step": 1})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    for path in (truncated, garbage, tmp_path / "missing.pt"):
        with pytest.raises(ModelLoadError, match=path.name):
            load_checkpoint(path)
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ModelLoadError, match="expected a checkpoint dict"):
        load_checkpoint(tmp_path / "list.pt")


def test_pickled_objects_are_refused(tmp_path):
    torch.save(
        {"obj": Fraction(1, 3)}, tmp_path / "evil.pt"
    )  # any non-allowlisted class must not be unpickled
    with pytest.raises(ModelLoadError, match="evil.pt"):
        load_checkpoint(tmp_path / "evil.pt")


def test_rotation_keeps_newest_step_checkpoints_only(tmp_path):
    for step in (5, 10, 15, 20):
        save_checkpoint(tmp_path / step_checkpoint_name(step), {"step": step})
    for name in ("best.pt", "averaged.pt", "snapshot-10min.pt"):
        save_checkpoint(tmp_path / name, {"step": 0})
    removed = rotate_checkpoints(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == [step_checkpoint_name(5), step_checkpoint_name(10)]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        ["averaged.pt", "best.pt", "snapshot-10min.pt", step_checkpoint_name(15), step_checkpoint_name(20)]
    )
    assert latest_checkpoint(tmp_path).name == step_checkpoint_name(20)
    assert latest_checkpoint(tmp_path / "nope") is None


def test_average_checkpoints_means_floats_and_keeps_last_integers(tmp_path):
    paths = []
    for i, value in enumerate((1.0, 2.0, 6.0)):
        model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(value)
        model[1].num_batches_tracked.fill_(10 * (i + 1))
        paths.append(save_checkpoint(tmp_path / f"{i}.pt", {"model": model.state_dict()}))
    averaged = average_checkpoints(paths)
    assert torch.allclose(averaged["0.weight"], torch.full((2, 2), 3.0))
    assert averaged["1.num_batches_tracked"].item() == 30
    assert averaged["1.num_batches_tracked"].dtype == torch.long
    save_checkpoint(tmp_path / "other.pt", {"model": {"x": torch.zeros(1)}})
    with pytest.raises(ModelLoadError, match="other.pt"):
        average_checkpoints([paths[0], tmp_path / "other.pt"])
