"""RTFMeter: accumulation, timing, and validation."""

from __future__ import annotations

import math

import pytest

from seqspeech.metrics import RTFMeter
from seqspeech.metrics import rtf as rtf_module


def test_accumulate():
    meter = RTFMeter()
    assert math.isnan(meter.rtf) and math.isnan(meter.throughput)
    meter.accumulate(10.0, 2.0)
    meter.accumulate(30.0, 3.0)
    assert meter.rtf == pytest.approx(5 / 40)
    assert meter.throughput == pytest.approx(8.0)
    assert meter.as_dict() == {
        "audio_seconds": 40.0,
        "wall_seconds": 5.0,
        "n_calls": 2,
        "rtf": pytest.approx(0.125),
        "throughput": pytest.approx(8.0),
    }


def test_measure_times_the_block(monkeypatch):
    clock = iter([100.0, 101.5])
    monkeypatch.setattr(rtf_module.time, "perf_counter", lambda: next(clock))
    meter = RTFMeter()
    with meter.measure(audio_seconds=3.0) as same:
        assert same is meter
    assert (meter.audio_seconds, meter.wall_seconds, meter.n_calls) == (3.0, 1.5, 1)
    assert meter.rtf == pytest.approx(0.5)


def test_failed_block_is_not_counted():
    meter = RTFMeter()
    with pytest.raises(RuntimeError), meter.measure(audio_seconds=3.0):
        raise RuntimeError("model crashed")
    assert meter.n_calls == 0 and meter.audio_seconds == 0.0


@pytest.mark.parametrize(("audio", "wall"), [(-1.0, 1.0), (1.0, -0.1), (math.nan, 1.0), (1.0, math.inf)])
def test_rejects_bad_durations(audio, wall):
    with pytest.raises(ValueError, match="finite"):
        RTFMeter().accumulate(audio, wall)


def test_measure_rejects_bad_audio_before_running():
    ran = False
    with pytest.raises(ValueError, match="audio_seconds"), RTFMeter().measure(-2.0):
        ran = True
    assert not ran
