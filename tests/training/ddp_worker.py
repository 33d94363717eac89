"""Toy model, dataset and batch samplers for the trainer tests; run as a script it is the DDP test's worker.

python -m torch.distributed.run --nproc_per_node 2 tests/training/ddp_worker.py OUT_DIR STEPS
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

DIM = 4


class ToyDataset:
    """``n`` fixed (x, y) pairs, y a noisy linear function of x; optional per-(epoch, index) augmentation
    noise.

    Items listed in ``bad`` come back as None (the collate drops and counts them).
    """

    def __init__(self, n: int = 16, augment: bool = False, bad: tuple[int, ...] = ()) -> None:
        g = torch.Generator().manual_seed(1234)
        self.x = torch.randn(n, DIM, generator=g)
        weight = torch.randn(DIM, 2, generator=g)
        self.y = self.x @ weight + 0.05 * torch.randn(n, 2, generator=g)
        self.augment = augment
        self.bad = set(bad)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        if index in self.bad:
            return None
        x = self.x[index]
        if self.augment:
            g = torch.Generator().manual_seed(100_003 * self.epoch + index)
            x = x + 0.1 * torch.randn(DIM, generator=g)
        return {"id": f"utt{index}", "x": x, "y": self.y[index]}


def collate(items: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Stack good items: ``{"ids", "x": (B, DIM), "y": (B, 2), "num_skipped"}``."""
    good = [item for item in items if item is not None]
    return {
        "ids": [item["id"] for item in good],
        "x": torch.stack([item["x"] for item in good]),
        "y": torch.stack([item["y"] for item in good]),
        "num_skipped": len(items) - len(good),
    }


class PlainBatchSampler:
    """Shuffled (per-epoch seed) batches; a global batch of ``batch_size * world_size`` split across ranks."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
    ) -> None:
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.epoch = 0
        self.epochs_seen: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.epochs_seen.append(epoch)

    def _batches(self) -> list[list[int]]:
        return self._batches_for(self.epoch)

    def _batches_for(self, epoch: int) -> list[list[int]]:
        if self.shuffle:
            order = torch.randperm(
                self.n, generator=torch.Generator().manual_seed(self.seed + epoch)
            ).tolist()
        else:
            order = list(range(self.n))
        span = self.batch_size * self.world_size
        out = []
        for start in range(0, self.n - span + 1, span):
            chunk = order[start : start + span]
            out.append(chunk[self.rank * self.batch_size : (self.rank + 1) * self.batch_size])
        return out

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._batches()

    def __len__(self) -> int:
        return self.n // (self.batch_size * self.world_size)


class StatefulBatchSampler(PlainBatchSampler):
    """The same, with ``state_dict``/``load_state_dict`` (skips ``position`` batches on the next pass)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.position = 0

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.position = 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._batches()[self.position :]
        self.position = 0
        yield from batches


class ToyModel(nn.Module):
    """MLP regressor: ``forward(batch) -> {"loss": MSE, "mae": ...}``; optional dropout and BatchNorm."""

    def __init__(self, hidden: int = 16, dropout: float = 0.0, batchnorm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Linear(DIM, hidden)]
        if batchnorm:
            layers.append(nn.BatchNorm1d(hidden))
        layers += [nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 2)]
        self.net = nn.Sequential(*layers)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        pred = self.net(batch["x"])
        error = pred.float() - batch["y"]
        return {"loss": (error**2).mean(), "mae": error.abs().mean()}


def toy_model(seed: int = 0, **kwargs: Any) -> ToyModel:
    torch.manual_seed(seed)
    return ToyModel(**kwargs)


def ddp_config(steps: int):
    """The trainer settings of the DDP comparison (the 2-process run and its 1-process reference)."""
    from seqspeech.training import TrainerConfig

    return TrainerConfig(
        max_steps=steps, scheduler="constant", warmup_steps=0, lr=1e-2, log_every=1, tensorboard=False,
        progress=False, device="cpu",
    )


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
    from seqspeech.training import Trainer, world_info

    out_dir, steps = Path(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(1)
    rank, world_size, _ = world_info()
    config = ddp_config(steps)
    sampler = PlainBatchSampler(16, 2, rank=rank, world_size=world_size)
    trainer = Trainer(toy_model(), ToyDataset(16), sampler, collate, config, out_dir)
    result = trainer.fit()
    print(f"rank {rank}: step {result.step}")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
