"""Learning-rate schedule shapes: warmup, peak, monotone decay, floor."""

from __future__ import annotations

import math

import pytest
import torch

from seqspeech.errors import ConfigError
from seqspeech.training.schedulers import build_scheduler


def lrs(name: str, steps: int, **kwargs) -> list[float]:
    """The learning rate used by each of the first ``steps`` optimizer updates (base lr 1.0)."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = build_scheduler(optimizer, name, **kwargs)
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_noam_peaks_at_warmup_then_decays_as_inverse_sqrt():
    values = lrs("noam", 100, warmup_steps=10)
    assert values[0] == pytest.approx(0.1)
    assert max(values) == pytest.approx(1.0)
    assert values.index(max(values)) == 9  # the 10th update
    assert all(a < b for a, b in zip(values[:9], values[1:10], strict=True))
    assert all(a > b for a, b in zip(values[9:], values[10:], strict=False))
    assert values[39] == pytest.approx(math.sqrt(10 / 40))


def test_cosine_warmup_decay_and_floor():
    values = lrs("cosine", 60, warmup_steps=5, total_steps=50, min_lr_ratio=0.1)
    assert values[0] == pytest.approx(0.2)
    assert max(values) == pytest.approx(1.0)
    assert values.index(max(values)) == 4
    tail = values[4:50]
    assert all(a >= b for a, b in zip(tail, tail[1:], strict=False))
    assert values[49] == pytest.approx(0.1)
    assert values[55] == pytest.approx(0.1)  # flat at the floor after total_steps
    mid = values[4 + 45 // 2]
    assert 0.45 < mid < 0.65


def test_constant_with_and_without_warmup():
    assert lrs("constant", 10, warmup_steps=0) == [1.0] * 10
    values = lrs("constant", 10, warmup_steps=4)
    assert values[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert values[4:] == [1.0] * 6


def test_scheduler_state_dict_roundtrips_with_weights_only(tmp_path):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = build_scheduler(optimizer, "cosine", warmup_steps=2, total_steps=10)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    torch.save(scheduler.state_dict(), tmp_path / "s.pt")
    state = torch.load(tmp_path / "s.pt", weights_only=True)
    other = build_scheduler(torch.optim.SGD([param], lr=1.0), "cosine", warmup_steps=2, total_steps=10)
    other.load_state_dict(state)
    assert other.last_epoch == 3
    assert other.get_last_lr() == pytest.approx(scheduler.get_last_lr())


def test_bad_scheduler_settings_raise():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ConfigError, match="unknown scheduler"):
        build_scheduler(optimizer, "linear", warmup_steps=1)
    with pytest.raises(ConfigError, match="warmup_steps >= 1"):
        build_scheduler(optimizer, "noam", warmup_steps=0)
    with pytest.raises(ConfigError, match="total_steps"):
        build_scheduler(optimizer, "cosine", warmup_steps=1)
