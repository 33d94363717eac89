"""seqspeech.data.samplers.BucketBatchSampler: coverage, budget, order, determinism, resume, sharding."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from seqspeech.data.samplers import BucketBatchSampler
from seqspeech.errors import ConfigError


@pytest.fixture(scope="module")
def durations() -> list[float]:
    return np.random.default_rng(0).uniform(0.5, 12.0, 500).round(2).tolist()


def _flat(batches) -> list[int]:
    return [i for batch in batches for i in batch]


@pytest.mark.parametrize("epoch", [0, 3])
def test_every_index_once_per_epoch(durations, epoch):
    sampler = BucketBatchSampler(durations, max_seconds=60.0, seed=1)
    sampler.set_epoch(epoch)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(_flat(batches)) == list(range(len(durations)))


def test_padded_seconds_budget_and_batch_cap(durations):
    sampler = BucketBatchSampler(durations, max_seconds=40.0, max_batch_size=6, num_buckets=5)
    sizes = []
    for batch in sampler:
        assert len(batch) <= 6
        assert len(batch) * max(durations[i] for i in batch) <= 40.0 + 1e-9
        sizes.append(len(batch))
    assert max(sizes) == 6 and min(sizes) >= 1


def test_item_longer_than_budget_gets_its_own_batch():
    sampler = BucketBatchSampler([1.0, 50.0, 1.0, 2.0], max_seconds=10.0, shuffle=False, num_buckets=1)
    batches = list(sampler)
    assert [1] in batches
    assert sorted(_flat(batches)) == [0, 1, 2, 3]


def test_batches_stay_within_buckets_and_are_homogeneous(durations):
    sampler = BucketBatchSampler(durations, max_seconds=100.0, num_buckets=10)
    edges = np.quantile(durations, np.linspace(0, 1, 11))
    for batch in sampler:
        spread = max(durations[i] for i in batch) - min(durations[i] for i in batch)
        assert spread <= max(np.diff(edges)) + 1e-9


def test_curriculum_epoch_zero_ascending_then_shuffled(durations):
    sampler = BucketBatchSampler(durations, max_seconds=60.0, curriculum=True, seed=2)
    longest = [max(durations[i] for i in batch) for batch in sampler]
    assert longest == sorted(longest)
    sampler.set_epoch(1)
    longest = [max(durations[i] for i in batch) for batch in sampler]
    assert longest != sorted(longest)
    assert sorted(_flat(BucketBatchSampler(durations, max_seconds=60.0, curriculum=True))) == list(range(500))


def test_deterministic_and_epoch_dependent(durations):
    a = BucketBatchSampler(durations, max_seconds=60.0, seed=5)
    b = BucketBatchSampler(durations, max_seconds=60.0, seed=5)
    assert list(a) == list(b)
    a.set_epoch(1)
    b.set_epoch(1)
    epoch1 = list(a)
    assert epoch1 == list(b)
    a.set_epoch(0)
    assert epoch1 != list(a)
    assert list(BucketBatchSampler(durations, max_seconds=60.0, seed=6)) != list(b)


def test_no_shuffle_is_sorted_by_duration(durations):
    sampler = BucketBatchSampler(durations, max_seconds=60.0, shuffle=False)
    flat = _flat(sampler)
    assert [durations[i] for i in flat] == sorted(durations)


@pytest.mark.parametrize("position", [0, 1, 7, 30])
def test_resume_mid_epoch_equals_skipping(durations, position):
    reference = BucketBatchSampler(durations, max_seconds=60.0, seed=4)
    reference.set_epoch(2)
    full = list(reference)
    resumed = BucketBatchSampler(durations, max_seconds=60.0, seed=4)
    resumed.load_state_dict({"epoch": 2, "position": position})
    resumed.set_epoch(2)  # a trainer's epoch loop re-selecting the same epoch keeps the position
    assert resumed.state_dict() == {"epoch": 2, "position": position}
    assert list(resumed) == full[position:]
    assert resumed.state_dict() == {"epoch": 2, "position": len(full)}
    assert list(resumed) == full  # the next pass over the same epoch starts over
    resumed.set_epoch(3)
    assert resumed.state_dict() == {"epoch": 3, "position": 0}


def test_state_dict_tracks_position_during_iteration(durations):
    sampler = BucketBatchSampler(durations, max_seconds=60.0)
    iterator = iter(sampler)
    first = [next(iterator) for _ in range(3)]
    state = sampler.state_dict()
    assert state == {"epoch": 0, "position": 3}
    rest = list(iterator)
    other = BucketBatchSampler(durations, max_seconds=60.0)
    other.load_state_dict(state)
    assert list(other) == rest and len(first) == 3


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_ddp_sharding_equal_counts_and_disjoint(durations, world_size):
    shards = []
    for rank in range(world_size):
        sampler = BucketBatchSampler(durations, max_seconds=60.0, rank=rank, world_size=world_size, seed=9)
        sampler.set_epoch(1)
        shards.append(list(sampler))
    assert len({len(shard) for shard in shards}) == 1
    everything = BucketBatchSampler(durations, max_seconds=60.0, seed=9).epoch_batches(1)
    padding = -len(everything) % world_size
    counts = Counter(_flat(batch for shard in shards for batch in shard))
    assert set(counts) == set(range(len(durations)))
    duplicated = {i for i, n in counts.items() if n > 1}
    padded = set(_flat(everything[:padding]))
    assert duplicated <= padded  # only the padding repeats indices
    assert sum(len(shard) for shard in shards) == len(everything) + padding


def test_ddp_drop_last_drops_tail_instead(durations):
    full = BucketBatchSampler(durations, max_seconds=60.0).epoch_batches(0)
    world = 3
    shards = [
        list(BucketBatchSampler(durations, max_seconds=60.0, rank=r, world_size=world, drop_last=True))
        for r in range(world)
    ]
    assert all(len(s) == len(full) // world for s in shards)
    counts = Counter(_flat(b for s in shards for b in s))
    assert max(counts.values()) == 1


def test_works_as_dataloader_batch_sampler():
    durations = [1.0, 2.0, 3.0, 1.5, 2.5]
    sampler = BucketBatchSampler(durations, max_seconds=5.0, num_buckets=2)
    loader = torch.utils.data.DataLoader(list(range(5)), batch_sampler=sampler)
    seen = sorted(int(i) for batch in loader for i in batch)
    assert seen == [0, 1, 2, 3, 4]


def test_validation():
    with pytest.raises(ConfigError, match="max_seconds"):
        BucketBatchSampler([1.0], max_seconds=0)
    with pytest.raises(ConfigError, match="rank"):
        BucketBatchSampler([1.0], max_seconds=5, rank=2, world_size=2)
    with pytest.raises(ConfigError, match="durations"):
        BucketBatchSampler([1.0, -2.0], max_seconds=5)
    with pytest.raises(ConfigError, match="position"):
        BucketBatchSampler([1.0], max_seconds=5).load_state_dict({"epoch": 0})
    assert list(BucketBatchSampler([], max_seconds=5)) == []
