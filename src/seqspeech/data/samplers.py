"""Duration-bucketed dynamic batching with exact mid-epoch resume and DDP sharding.

:class:`BucketBatchSampler` sorts utterances by duration into ``num_buckets`` quantile buckets and packs
batches inside each bucket so that ``len(batch) * max(duration in batch) <= max_seconds`` (the padded seconds
a batch costs). Each epoch, items are shuffled inside their bucket and the batch order is shuffled, both from
an RNG seeded by ``(seed, epoch)``: every rank and every resumed run computes the same batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from seqspeech.errors import ConfigError

__all__ = ["BucketBatchSampler"]


class BucketBatchSampler:
    """Yields lists of dataset indices (use as a DataLoader ``batch_sampler``).

    Args:
        durations: seconds per dataset item.
        max_seconds: padded-seconds budget per batch: ``len(batch) * max(durations in batch) <= max_seconds``.
            An item longer than the budget forms a batch of its own.
        max_batch_size: optional cap on items per batch.
        shuffle: shuffle items within buckets and the batch order each epoch; otherwise batches come in
            ascending duration order.
        seed: base seed; epoch ``e`` uses ``(seed, e)``.
        num_buckets: duration quantile buckets (batches never mix buckets).
        curriculum: epoch 0 yields batches in ascending duration order (short first), later epochs shuffle.
        rank, world_size: DDP sharding. Batches of the epoch are dealt round-robin; every rank gets the same
            number (``ceil(n / world_size)``, the first batches repeated as padding) — or ``floor`` when
            ``drop_last``, the tail batches dropped instead.
        drop_last: see above; has no effect when ``world_size == 1``.

    Resume: ``state_dict()`` is ``{"epoch", "position"}``, where ``position`` counts batches this sampler has
    yielded in the epoch. With DataLoader prefetching that runs ahead of training, so a trainer should store
    the number of batches it has *consumed* as ``position``; after ``load_state_dict({"epoch": e,
    "position": p})`` iteration yields exactly the batches of epoch ``e`` after the first ``p``.
    ``set_epoch`` with a different epoch starts that epoch from its beginning.
    """

    def __init__(
        self,
        durations: Sequence[float],
        *,
        max_seconds: float,
        max_batch_size: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        num_buckets: int = 20,
        curriculum: bool = False,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        durations = np.asarray(durations, dtype=np.float64)
        if durations.ndim != 1:
            raise ConfigError(f"durations must be a flat sequence of seconds, got shape {durations.shape}")
        if durations.size and (not np.all(np.isfinite(durations)) or durations.min() < 0):
            raise ConfigError("durations must be finite and >= 0")
        if not (math.isfinite(max_seconds) and max_seconds > 0):
            raise ConfigError(f"max_seconds must be a positive number, got {max_seconds!r}")
        if max_batch_size is not None and max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be >= 1 or None, got {max_batch_size!r}")
        if num_buckets < 1:
            raise ConfigError(f"num_buckets must be >= 1, got {num_buckets!r}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if seed < 0:
            raise ConfigError(f"seed must be >= 0, got {seed}")
        self.durations = durations
        self.max_seconds = float(max_seconds)
        self.max_batch_size = max_batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.curriculum = curriculum
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        order = np.argsort(durations, kind="stable")
        self._buckets = [b for b in np.array_split(order, min(num_buckets, max(1, order.size))) if b.size]
        self.epoch = 0
        self._start = 0  # batches of the current epoch to skip (resume)
        self._position = 0  # batches yielded in the current epoch
        self._cache: tuple[int, list[list[int]]] | None = None

    # -- epochs and state ------------------------------------------------------------------------------------

    def set_epoch(self, epoch: int) -> None:
        """Select epoch ``epoch``; a different epoch than the current one starts from its first batch."""
        epoch = int(epoch)
        if epoch != self.epoch:
            self.epoch = epoch
            self._start = 0
            self._position = 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self._position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue epoch ``state["epoch"]`` after its first ``state["position"]`` batches (of this rank)."""
        try:
            epoch, position = int(state["epoch"]), int(state["position"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(
                f"sampler state must hold integer 'epoch' and 'position', got {state!r}"
            ) from None
        if epoch < 0 or position < 0:
            raise ConfigError(f"sampler state must be non-negative, got {state!r}")
        self.epoch = epoch
        self._start = position
        self._position = position

    # -- batches ---------------------------------------------------------------------------------------------

    def _pack(self, indices: np.ndarray) -> list[list[int]]:
        """Greedy packing of ``indices`` in order under the padded-seconds budget and the size cap."""
        batches: list[list[int]] = []
        batch: list[int] = []
        longest = 0.0
        cap = self.max_batch_size or math.inf
        durations = self.durations
        for index in indices.tolist():
            seconds = durations[index]
            longer = max(longest, seconds)
            if batch and (len(batch) >= cap or (len(batch) + 1) * longer > self.max_seconds):
                batches.append(batch)
                batch, longer = [], seconds
            batch.append(index)
            longest = longer
        if batch:
            batches.append(batch)
        return batches

    def epoch_batches(self, epoch: int | None = None) -> list[list[int]]:
        """All batches of ``epoch`` (default: the current one) across ranks, before sharding."""
        epoch = self.epoch if epoch is None else epoch
        if (self.curriculum and epoch == 0) or not self.shuffle:
            return [batch for bucket in self._buckets for batch in self._pack(bucket)]
        rng = np.random.default_rng([self.seed, epoch])
        batches = [batch for bucket in self._buckets for batch in self._pack(rng.permutation(bucket))]
        return [batches[i] for i in rng.permutation(len(batches))]

    def rank_batches(self, epoch: int | None = None) -> list[list[int]]:
        """This rank's batches of ``epoch`` (default: the current one)."""
        epoch = self.epoch if epoch is None else epoch
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        batches = self.epoch_batches(epoch)
        world = self.world_size
        if world > 1 and batches:
            if self.drop_last:
                batches = batches[: len(batches) // world * world]
            else:
                padding = -len(batches) % world
                batches = batches + [batches[i % len(batches)] for i in range(padding)]
            batches = batches[self.rank :: world]
        self._cache = (epoch, batches)
        return batches

    def __len__(self) -> int:
        """Batches this rank yields in the current epoch (not counting a resume offset)."""
        return len(self.rank_batches())

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.rank_batches()
        start, self._start = self._start, 0
        self._position = start
        for batch in batches[start:]:
            self._position += 1
            yield list(batch)
