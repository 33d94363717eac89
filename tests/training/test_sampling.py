"""Scheduled-sampling and guided-attention schedules: values, monotonicity, floors, bad configs."""

from __future__ import annotations

import math

import pytest

from seqspeech.errors import ConfigError
from seqspeech.training.sampling import GuidedAttentionConfig, ScheduledSamplingConfig

STEPS = list(range(0, 5000, 7)) + [10**6, 10**9]


def test_linear_schedule_values():
    c = ScheduledSamplingConfig(kind="linear", start_step=100, decay_steps=1000, min_prob=0.2)
    assert c.teacher_forcing_prob(0) == 1.0
    assert c.teacher_forcing_prob(100) == 1.0
    assert c.teacher_forcing_prob(350) == pytest.approx(0.75)
    assert c.teacher_forcing_prob(600) == pytest.approx(0.5)
    assert c.teacher_forcing_prob(900) == pytest.approx(0.2)  # the floor
    assert c.teacher_forcing_prob(10**9) == 0.2


def test_exponential_schedule_halves_every_decay_steps():
    c = ScheduledSamplingConfig(kind="exponential", start_step=10, decay_steps=200, min_prob=0.0)
    assert c.teacher_forcing_prob(10) == 1.0
    assert c.teacher_forcing_prob(210) == pytest.approx(0.5)
    assert c.teacher_forcing_prob(410) == pytest.approx(0.25)
    assert c.teacher_forcing_prob(110) == pytest.approx(math.sqrt(0.5))
    floored = ScheduledSamplingConfig(kind="exponential", decay_steps=200, min_prob=0.3)
    assert floored.teacher_forcing_prob(400) == 0.3


def test_inverse_sigmoid_schedule_values():
    c = ScheduledSamplingConfig(kind="inverse_sigmoid", decay_steps=1000, min_prob=0.0)
    k = 100.0
    for step in (1, 50, 460, 1000):
        assert c.teacher_forcing_prob(step) == pytest.approx(k / (k + math.exp(step / k)))
    assert c.teacher_forcing_prob(10**9) == pytest.approx(0.0, abs=1e-12)  # no overflow
    assert ScheduledSamplingConfig(kind="inverse_sigmoid", decay_steps=3, min_prob=0.0).teacher_forcing_prob(
        2
    ) == pytest.approx(1 / (1 + math.exp(2)))  # k is at least 1


@pytest.mark.parametrize("kind", ["linear", "exponential", "inverse_sigmoid"])
@pytest.mark.parametrize("min_prob", [0.0, 0.5])
def test_schedules_are_non_increasing_and_floored(kind, min_prob):
    c = ScheduledSamplingConfig(kind=kind, start_step=30, decay_steps=500, min_prob=min_prob)
    values = [c.teacher_forcing_prob(s) for s in STEPS]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert all(min_prob <= v <= 1.0 for v in values)
    assert values[0] == 1.0 and values[-1] == pytest.approx(min_prob)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "cosine"}, "kind"),
        ({"start_step": -1}, "start_step"),
        ({"decay_steps": 0}, "decay_steps"),
        ({"decay_steps": float("nan")}, "decay_steps"),
        ({"min_prob": 1.5}, "min_prob"),
        ({"min_prob": -0.1}, "min_prob"),
        ({"min_prob": float("nan")}, "min_prob"),
    ],
)
def test_bad_scheduled_sampling_configs(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ScheduledSamplingConfig(**kwargs)


def test_guided_attention_weight_decays_and_stops():
    c = GuidedAttentionConfig(weight=2.0, half_life=100, stop_step=250)
    assert c.weight_at(0) == 2.0
    assert c.weight_at(-5) == 2.0
    assert c.weight_at(100) == pytest.approx(1.0)
    assert c.weight_at(200) == pytest.approx(0.5)
    assert c.weight_at(249) > 0 and c.weight_at(250) == 0.0 and c.weight_at(10**6) == 0.0
    values = [GuidedAttentionConfig(half_life=300).weight_at(s) for s in STEPS]
    assert all(a >= b for a, b in zip(values, values[1:]))
    assert GuidedAttentionConfig(weight=0.0).weight_at(10) == 0.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"weight": -1.0}, "weight"),
        ({"weight": float("nan")}, "weight"),
        ({"weight": float("inf")}, "weight"),
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": float("nan")}, "sigma"),
        ({"half_life": 0}, "half_life"),
        ({"stop_step": -1}, "stop_step"),
    ],
)
def test_bad_guided_attention_configs(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        GuidedAttentionConfig(**kwargs)
