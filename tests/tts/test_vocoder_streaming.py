"""Streaming vocoding: the receptive field against autograd, streamed HiFi-GAN == offline for random chunkings,
too little context is not exact, Griffin-Lim streams with continuous joins and offline-like quality."""

from __future__ import annotations

import math

import pytest
import torch

from seqspeech.errors import AudioError, ConfigError
from seqspeech.tts.mel import TTS_HOP_LENGTH, TTS_SAMPLE_RATE, MelSpectrogram
from seqspeech.tts.vocoders import (
    GriffinLim,
    HiFiGAN,
    StreamingVocoder,
    build_generator,
    hifigan_v1,
    hifigan_v3,
    istftnet_v2,
    receptive_field_frames,
    spectral_convergence,
)

HOP = TTS_HOP_LENGTH
TINY = {
    "v1": hifigan_v1(upsample_initial_channel=32),
    "v3": hifigan_v3(upsample_initial_channel=32),
    "istft": istftnet_v2(upsample_initial_channel=32),
}


def speech_like(seconds: float, seed: int = 0) -> torch.Tensor:
    """``(1, S)`` a voiced, formant-shaped harmonic signal with a gliding pitch (as in test_vocoders.py)."""
    n = int(seconds * TTS_SAMPLE_RATE) // HOP * HOP
    t = torch.arange(n, dtype=torch.float64) / TTS_SAMPLE_RATE
    f0 = 120.0 + 30.0 * torch.sin(2 * math.pi * 1.3 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / TTS_SAMPLE_RATE
    k = torch.arange(1, 41, dtype=torch.float64)[:, None]
    freq = k * f0[None, :]
    formants = sum(torch.exp(-((freq - fc) / bw) ** 2) for fc, bw in ((500, 200), (1500, 300), (2500, 400)))
    amp = (0.05 + formants) / k * (freq < 7500)
    x = (amp * torch.sin(k * phase[None, :])).sum(0) * (0.6 + 0.4 * torch.sin(2 * math.pi * 3.0 * t))
    x = x + 0.005 * torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (0.5 * x / x.abs().max()).float()[None]


def generator(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_generator(TINY[name])


def chunked(total: int, seed: int, low: int = 1, high: int = 12) -> list[int]:
    rng = torch.Generator().manual_seed(seed)
    sizes = []
    while sum(sizes) < total:
        sizes.append(min(int(torch.randint(low, high + 1, (1,), generator=rng)), total - sum(sizes)))
    return sizes


def stream(vocoder, mel: torch.Tensor, sizes: list[int], **kwargs) -> list[torch.Tensor]:
    """Push ``mel (n_mels, T)`` in chunks of ``sizes``; returns every returned piece, the finish() one last."""
    streamer = StreamingVocoder(vocoder, **kwargs)
    pieces, at = [], 0
    for size in sizes:
        pieces.append(streamer.push(mel[:, at : at + size]))
        at += size
    pieces.append(streamer.finish())
    return pieces


def measured_receptive_field(gen: torch.nn.Module, frames: int) -> int:
    """Largest distance from the middle frame to a mel frame with a non-zero gradient on its output (float64)."""
    gen = gen.double()
    mel = torch.randn(1, 80, frames, dtype=torch.float64, requires_grad=True)
    middle = frames // 2
    gen(mel)[0, 0, middle * HOP : (middle + 1) * HOP].sum().backward()
    reached = (mel.grad[0].abs().sum(0) > 0).nonzero()[:, 0]
    return int(max(middle - reached.min(), reached.max() - middle))


@pytest.mark.parametrize("name", sorted(TINY))
def test_receptive_field_matches_autograd(name):
    gen = generator(name)
    field = receptive_field_frames(gen)
    assert field == receptive_field_frames(HiFiGAN(TINY[name]))
    measured = measured_receptive_field(gen, 2 * field + 9)
    if name == "istft":  # the Hann window's zero first tap makes the outermost frame's weight exactly 0
        assert field - 1 <= measured <= field
    else:
        assert measured == field


def test_receptive_field_depends_on_kernels_not_widths():
    assert receptive_field_frames(build_generator(hifigan_v1())) == receptive_field_frames(generator("v1"))
    assert 1 <= receptive_field_frames(generator("v1")) <= 16


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("seed", [0, 1])
def test_streamed_generator_equals_offline(name, seed):
    gen = generator(name, seed)
    mel = MelSpectrogram()(speech_like(0.8, seed=seed))[0]  # (80, 50)
    offline = gen.infer(mel[None])[0]
    pieces = stream(gen, mel, chunked(mel.shape[1], seed))
    assert all(p.numel() % HOP == 0 for p in pieces)
    streamed = torch.cat(pieces)
    assert streamed.shape == offline.shape == (mel.shape[1] * HOP,)
    torch.testing.assert_close(streamed, offline, atol=1e-5, rtol=0)


def test_too_little_context_is_not_exact():
    gen = generator("v3")
    for conv in gen.modules():  # larger weights (output std 0.009, unsaturated): far frames matter above rounding
        if isinstance(conv, torch.nn.Conv1d | torch.nn.ConvTranspose1d):
            with torch.no_grad():
                conv.parametrizations.weight.original0.mul_(5.0)
    mel = MelSpectrogram()(speech_like(0.8))[0]
    offline = gen.infer(mel[None])[0]
    field = receptive_field_frames(gen)
    exact = torch.cat(stream(gen, mel, [5] * 10, context_frames=field))
    short = torch.cat(stream(gen, mel, [5] * 10, context_frames=field - 2))
    assert offline.abs().max() < 0.5  # not saturated by the tanh
    assert (exact - offline).abs().max() < 1e-6  # measured 2e-8
    assert (short - offline).abs().max() > max(1e-5, 100 * (exact - offline).abs().max())  # measured 5e-5


def test_streaming_validates_and_resets():
    gen = generator("v3")
    streamer = StreamingVocoder(gen)
    with pytest.raises(AudioError, match=r"mel chunk \(80, t\)"):
        streamer.push(torch.zeros(1, 80, 3))
    with pytest.raises(AudioError, match="NaN"):
        streamer.push(torch.full((80, 3), float("nan")))
    assert streamer.push(torch.zeros(80, 3)).numel() + streamer.finish().numel() == 3 * HOP
    with pytest.raises(AudioError, match="finished"):
        streamer.push(torch.zeros(80, 3))
    streamer.reset()
    assert torch.cat([streamer.push(torch.zeros(80, 30)), streamer.finish()]).numel() == 30 * HOP
    with pytest.raises(ConfigError, match="context_frames"):
        StreamingVocoder(gen, context_frames=-1)
    with pytest.raises(ConfigError, match="Generator"):
        receptive_field_frames(GriffinLim())


def test_streaming_latency_is_the_context():
    gen = generator("v3")
    streamer = StreamingVocoder(gen)
    field = receptive_field_frames(gen)
    assert streamer.latency_frames == field
    assert streamer.push(torch.zeros(80, field)).numel() == 0
    assert streamer.push(torch.zeros(80, 1)).numel() == HOP  # frame 0 now has its full look-ahead


def _frame_errors(wave: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
    """Per-frame mean |log-mel difference| over the loud bins (within 6 nats of the peak)."""
    loud = mel > mel.amax() - 6.0
    diff = (MelSpectrogram()(wave[None])[0] - mel).abs() * loud
    return diff.sum(0) / loud.sum(0).clamp(min=1)


def _join_steps(pieces: list[torch.Tensor]) -> torch.Tensor:
    """The sample-to-sample step across each join between returned pieces, over the signal's 99th-percentile step."""
    wave = torch.cat(pieces)
    steps = wave.diff().abs()
    joins = torch.tensor([p.numel() for p in pieces[:-1]]).cumsum(0)
    joins = joins[(joins > 0) & (joins < wave.numel())].unique()
    return steps[joins - 1] / steps.quantile(0.99)


@pytest.fixture(scope="module")
def gl_case() -> dict:
    mel_fn = MelSpectrogram()
    wave = speech_like(1.5)
    mel = mel_fn(wave)[0]
    gl = GriffinLim()
    return {"mel": mel, "gl": gl, "target": mel_fn.magnitude(wave)[0], "offline": gl.infer(mel[None])[0],
            "sizes": chunked(mel.shape[1], seed=3, low=3, high=15)}


def _sc(wave: torch.Tensor, target: torch.Tensor) -> float:
    return float(spectral_convergence(MelSpectrogram().magnitude(wave), target))


def test_streamed_griffin_lim_has_offline_quality_and_continuous_joins(gl_case):
    mel, offline, target = gl_case["mel"], gl_case["offline"], gl_case["target"]
    pieces = stream(gl_case["gl"], mel, gl_case["sizes"])
    streamed = torch.cat(pieces)
    assert streamed.shape == offline.shape == (mel.shape[1] * HOP,)
    assert _sc(streamed, target) < _sc(offline, target) + 1.5  # measured -11.4 vs -11.8 dB
    # No frame (joins included) is much worse than offline's worst: no clicks, no cancellation dips.
    assert _frame_errors(streamed, mel).max() < 1.5 * _frame_errors(offline, mel).max() + 0.1  # 0.27 vs 0.16
    assert _join_steps(pieces).max() < 2.0  # measured 0.8


def test_griffin_lim_windows_without_context_and_crossfade_click(gl_case):
    """The control for the test above: the same chunks vocoded without context or cross-fade fail its checks."""
    mel, offline, target = gl_case["mel"], gl_case["offline"], gl_case["target"]
    pieces = stream(gl_case["gl"], mel, gl_case["sizes"], context_frames=0, crossfade_frames=0)
    streamed = torch.cat(pieces)
    assert streamed.shape == offline.shape
    assert _sc(streamed, target) > _sc(offline, target) + 1.5  # measured -9.1 dB
    assert _frame_errors(streamed, mel).max() > 1.5 * _frame_errors(offline, mel).max() + 0.1  # 0.93
    assert _join_steps(pieces).max() > 2.0  # measured 7.3
