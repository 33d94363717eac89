"""Vocoders: Griffin-Lim quality, HiFi-GAN shapes, presets, config validation, weight norm, the one-optimizer GAN
step (gradient separation, checked against the textbook two-network computation), warm-up, overfitting, trainer."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest
import torch
from torch.nn.utils import parametrize

from seqspeech.errors import AudioError, ConfigError, DataError
from seqspeech.training import Trainer, TrainerConfig
from seqspeech.tts.mel import TTS_HOP_LENGTH, TTS_SAMPLE_RATE, MelSpectrogram
from seqspeech.tts.vocoders import (
    Generator,
    GriffinLim,
    HiFiGAN,
    HiFiGANConfig,
    Vocoder,
    build_generator,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    hifigan_v1,
    hifigan_v2,
    hifigan_v3,
    istft,
    istftnet_v2,
    spectral_convergence,
    stft,
)
from seqspeech.tts.vocoders.griffin_lim import mel_to_magnitude

HOP = TTS_HOP_LENGTH
PRESETS = {"v1": hifigan_v1, "v2": hifigan_v2, "v3": hifigan_v3, "istft": istftnet_v2}


def speech_like(seconds: float, seed: int = 0) -> torch.Tensor:
    """``(1, S)`` a voiced, formant-shaped harmonic signal with a gliding pitch, syllable-rate envelope and a little
    noise; ``S`` a multiple of the hop."""
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


def tiny(preset: str = "v1", **overrides: Any) -> HiFiGANConfig:
    """A preset's generator shape at 32 channels, with 32-channel discriminators."""
    return PRESETS[preset](upsample_initial_channel=32, discriminator_channels=32, **overrides)


# ----------------------------------------------------------------
# Griffin-Lim


def test_stft_frames_like_the_mel_spectrogram_and_istft_inverts_it():
    mel_fn = MelSpectrogram()
    wave = speech_like(0.4)
    spec = stft(wave, mel_fn.config, mel_fn.window)
    torch.testing.assert_close(spec.abs(), mel_fn.magnitude(wave))
    torch.testing.assert_close(istft(spec, mel_fn.config, mel_fn.window), wave, atol=1e-5, rtol=0)


def test_griffin_lim_reconstructs_a_known_signal():
    mel_fn = MelSpectrogram()
    wave = speech_like(1.0)
    mel = mel_fn(wave)
    out = GriffinLim().infer(mel)
    assert out.shape == wave.shape
    target = mel_fn.magnitude(wave)
    converged = spectral_convergence(mel_fn.magnitude(out), target)
    unconverged = spectral_convergence(mel_fn.magnitude(GriffinLim(n_iter=0).infer(mel)), target)
    assert converged < -10.0, converged  # measured -11.9 dB (pinv inversion: -9.9 dB)
    assert converged < unconverged - 5.0  # -3.7 dB without iterations: they, not the magnitude, make the phase
    loud = mel > mel.amax() - 6.0  # bins within 6 nats (52 dB) of the peak
    assert (mel_fn(out) - mel).abs()[loud].mean() < 0.2  # measured 0.10


def test_nnls_mel_inversion_beats_the_clamped_pseudo_inverse():
    mel_fn = MelSpectrogram()
    wave = speech_like(0.6)
    gl = GriffinLim()
    truth = mel_fn.magnitude(wave)
    by_pinv = mel_to_magnitude(mel_fn(wave), gl.mel.filters, gl.pinv, "pinv")
    by_nnls = mel_to_magnitude(mel_fn(wave), gl.mel.filters, gl.pinv, "nnls")
    assert (by_nnls >= 0).all() and (by_pinv >= 0).all()
    mel_residual = (gl.mel.filters @ by_nnls - mel_fn(wave).exp()).norm()
    assert mel_residual < (gl.mel.filters @ by_pinv - mel_fn(wave).exp()).norm()
    assert spectral_convergence(by_nnls, truth) < spectral_convergence(by_pinv, truth)


def test_griffin_lim_is_deterministic_and_validates():
    mel = MelSpectrogram()(speech_like(0.3))
    torch.testing.assert_close(GriffinLim(n_iter=4).infer(mel), GriffinLim(n_iter=4).infer(mel), atol=0, rtol=0)
    with pytest.raises(AudioError, match="log-mel"):
        GriffinLim().infer(mel[:, :40])
    with pytest.raises(AudioError, match="NaN"):
        GriffinLim().infer(mel * float("nan"))
    with pytest.raises(ConfigError, match="momentum"):
        GriffinLim(momentum=1.0)
    with pytest.raises(ConfigError, match="mel_inversion"):
        GriffinLim(mel_inversion="lstsq")


# ----------------------------------------------------------------
# HiFi-GAN: shapes, presets, config


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_generator_output_is_frames_times_hop(preset):
    config = tiny(preset)
    generator = build_generator(config)
    assert generator.hop_length == HOP
    mel = torch.randn(2, config.n_mels, 7)
    wave = generator(mel)
    assert wave.shape == (2, 1, 7 * HOP)
    assert generator.infer(mel).shape == (2, 7 * HOP)
    assert wave.abs().max() <= 1.0 or config.head == "istft"


def test_preset_parameter_counts_match_the_paper():
    # Kong et al. 2020, Table 1: V1 13.92 M, V2 0.92 M, V3 1.46 M generator parameters (with weight norm's g, v).
    for preset, millions in ((hifigan_v1, 13.92), (hifigan_v2, 0.92), (hifigan_v3, 1.46)):
        count = sum(p.numel() for p in build_generator(preset()).parameters()) / 1e6
        assert abs(count - millions) < 0.01 * millions, (preset.__name__, count)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (dict(upsample_rates=(8, 8, 2)), "upsample_rates .* equally long"),
        (dict(upsample_rates=(8, 8, 2, 4), upsample_kernel_sizes=(16, 16, 4, 8)), "must equal hop_length 256"),
        (dict(upsample_kernel_sizes=(16, 16, 4, 1)), "kernel 1 must be >= its rate 2"),
        (dict(upsample_kernel_sizes=(16, 15, 4, 4)), "even difference"),
        (dict(resblock_kernel_sizes=(3, 6, 11)), "odd"),
        (dict(resblock_dilation_sizes=((1, 3, 5), (1, 3, 5))), "one non-empty tuple of ints"),
        (dict(resblock=3), "resblock must be 1 or 2"),
        (dict(head="wavenet"), "head must be one of"),
        (dict(upsample_initial_channel=100), "divisible by 2 \\*\\* 4"),
        (dict(discriminator_channels=48), "multiple of 32"),
        (dict(mel_loss_weight=-1.0), "mel_loss_weight"),
        (dict(adversarial_start_step=-1), "adversarial_start_step"),
        (dict(mel_loss_windows=(8,)), "mel_loss_windows must be a sequence of ints >= 16"),
        (dict(mel_loss_windows=(130,)), "multiples of 4"),
        (dict(upsample_rates=(8, 8), upsample_kernel_sizes=(16, 16), head="istft", istft_hop_length=2),
         "istft_hop_length 2 = 128 must equal hop_length 256"),
    ],
)
def test_config_validation(overrides, match):
    with pytest.raises(ConfigError, match=match):
        HiFiGANConfig(**overrides)


def test_config_from_yaml_lists_is_frozen_and_hashable():
    config = HiFiGANConfig(upsample_rates=[8, 8, 4], upsample_kernel_sizes=[16, 16, 8],
                           resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5], [1, 3, 5]])
    assert config.resblock_dilation_sizes == ((1, 3, 5),) * 3 and hash(config)
    assert HiFiGANConfig(**config.to_dict()) == config
    assert hifigan_v3() == replace(hifigan_v1(), upsample_rates=(8, 8, 4), upsample_kernel_sizes=(16, 16, 8),
                                   upsample_initial_channel=256, resblock=2, resblock_kernel_sizes=(3, 5, 7),
                                   resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)))


@pytest.mark.parametrize("preset", ["v1", "istft"])
def test_remove_weight_norm_keeps_outputs(preset):
    generator = build_generator(tiny(preset))
    mel = torch.randn(1, 80, 9)
    before = generator.infer(mel)
    generator.remove_weight_norm()
    assert not any(parametrize.is_parametrized(m) for m in generator.modules())
    torch.testing.assert_close(generator.infer(mel), before, atol=1e-6, rtol=1e-5)


def test_vocoders_follow_the_protocol():
    mel = MelSpectrogram()(speech_like(0.3))
    for vocoder in (GriffinLim(n_iter=2), HiFiGAN(tiny()), build_generator(tiny("v3"))):
        assert isinstance(vocoder, Vocoder)
        assert vocoder.infer(mel).shape == (1, mel.shape[-1] * vocoder.hop_length)
        with pytest.raises(AudioError, match="log-mel"):
            vocoder.infer(mel[0])


# ----------------------------------------------------------------
# HiFi-GAN: the one-optimizer GAN step


def segment_batch(frames: int = 8, batch: int = 2, step: int = 10**6) -> dict[str, Any]:
    waves = torch.cat([speech_like(frames * HOP / TTS_SAMPLE_RATE + 0.001, seed=i) for i in range(batch)])
    return {"wave": waves, "mels": MelSpectrogram()(waves), "train_step": step, "ids": [str(i) for i in range(batch)]}


def grads(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    found = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, found, strict=True)]


def test_gan_gradients_are_separated_and_match_the_two_network_reference():
    torch.manual_seed(0)
    model = HiFiGAN(tiny()).eval()  # eval: spectral norm's power iteration is frozen, so forwards repeat exactly
    batch = segment_batch()
    out = model(batch)
    assert {"loss", "d_loss", "g_loss", "g_adv", "fm_loss", "mel_loss"} <= set(out)
    assert all(v.dim() == 0 for v in out.values())
    gen = list(model.generator.parameters())
    disc = [*model.mpd.parameters(), *model.msd.parameters()]
    assert len(gen) + len(disc) == len(list(model.parameters()))
    d_gen, d_disc = grads(out["d_loss"], gen), grads(out["d_loss"], disc)
    g_gen, g_disc = grads(out["g_loss"], gen), grads(out["g_loss"], disc)
    t_gen, t_disc = grads(out["loss"], gen), grads(out["loss"], disc)
    assert all(g.abs().max() == 0 for g in d_gen), "the discriminator loss must not reach the generator"
    assert all(g.abs().max() == 0 for g in g_disc), "the generator losses must not push the discriminators"
    assert sum(g.abs().sum() > 0 for g in d_disc) == len(disc)  # every discriminator parameter learns
    assert sum(g.abs().sum() > 0 for g in g_gen) == len(gen)
    for total, part in zip(t_gen + t_disc, g_gen + d_disc, strict=True):  # one backward = the sum of the two
        torch.testing.assert_close(total, part)

    # Reference: the textbook alternating computation, each loss differentiated w.r.t. its own network only.
    real = batch["wave"][:, None]
    fake = model.generator(batch["mels"])
    d_ref = sum(discriminator_loss(d(real)[0], d(fake.detach())[0]) for d in (model.mpd, model.msd))
    g_adv = sum(generator_adversarial_loss(d(fake)[0]) for d in (model.mpd, model.msd))
    fm = sum(feature_matching_loss(d(real)[1], d(fake)[1]) for d in (model.mpd, model.msd))
    mel_fn = MelSpectrogram()
    mel_l1 = (mel_fn(fake[:, 0]) - mel_fn(batch["wave"])).abs().mean()
    g_ref = 45 * mel_l1 + 2 * fm + g_adv
    torch.testing.assert_close(out["d_loss"], d_ref, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(out["g_loss"], g_ref, rtol=1e-4, atol=1e-6)
    for ours, ref in zip(d_disc, grads(d_ref, disc), strict=True):
        torch.testing.assert_close(ours, ref, rtol=1e-3, atol=1e-6)
    for ours, ref in zip(g_gen, grads(g_ref, gen), strict=True):
        torch.testing.assert_close(ours, ref, rtol=1e-3, atol=1e-6)


def test_warm_up_trains_the_generator_on_the_mel_loss_only():
    model = HiFiGAN(tiny(adversarial_start_step=5))
    early = model(segment_batch(step=4))
    assert early["d_loss"] == 0 and early["g_adv"] == 0 and early["fm_loss"] == 0
    torch.testing.assert_close(early["loss"], 45 * early["mel_loss"])
    early["loss"].backward()
    assert all(p.grad is None for p in model.mpd.parameters()) and all(p.grad is None for p in model.msd.parameters())
    late = model(segment_batch(step=5))
    assert late["d_loss"] > 0 and late["g_adv"] > 0 and late["fm_loss"] > 0
    assert model(segment_batch(step=5) | {"train_step": None})["d_loss"] > 0  # evaluation batches: all losses


def test_multi_resolution_mel_loss_is_the_mean_over_resolutions():
    """``mel_loss_windows``: the mel L1 of the input mel and of one mel per extra window, averaged."""
    torch.manual_seed(0)
    model = HiFiGAN(tiny(mel_loss_windows=(128, 512), adversarial_start_step=10**9))
    configs = model.config.loss_mel_configs
    assert [(c.n_fft, c.win_length, c.hop_length, c.n_mels) for c in configs[1:]] == [(128, 128, 32, 32),
                                                                                      (512, 512, 128, 80)]
    assert configs[0] == model.config.mel_config
    batch = segment_batch(step=0)
    out = model(batch)
    with torch.no_grad():
        fake = model.generator(batch["mels"]).squeeze(1)
    expected = torch.stack([torch.nn.functional.l1_loss(MelSpectrogram(c)(fake), MelSpectrogram(c)(batch["wave"]))
                            for c in configs]).mean()
    torch.testing.assert_close(out["mel_loss"].detach(), expected, rtol=1e-4, atol=1e-5)
    single = HiFiGAN(tiny(adversarial_start_step=10**9))
    single.generator.load_state_dict(model.generator.state_dict())
    torch.testing.assert_close(single(batch)["mel_loss"].detach(), torch.nn.functional.l1_loss(
        MelSpectrogram(configs[0])(fake), MelSpectrogram(configs[0])(batch["wave"])), rtol=1e-4, atol=1e-5)


def test_batch_validation_names_the_problem():
    model = HiFiGAN(tiny())
    batch = segment_batch()
    with pytest.raises(DataError, match="wave"):
        model({"mels": batch["mels"]})
    with pytest.raises(DataError, match=r"mels \(B, 80, S // 256\)"):
        model(batch | {"wave": batch["wave"][:, :-1]})  # 8 * 256 - 1 samples make 7 frames, not 8
    model.eval()  # same spectral-norm state for both calls
    ragged = model(batch | {"wave": torch.nn.functional.pad(batch["wave"], (0, 100))})  # S = 8 * 256 + 100: fine
    torch.testing.assert_close(ragged["loss"], model(batch)["loss"])


def test_tiny_hifigan_overfits_one_segment():
    torch.manual_seed(0)
    model = HiFiGAN(tiny("v3", adversarial_start_step=10**9))
    batch = segment_batch(frames=16, batch=1, step=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(50):
        out = model(batch)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(out["mel_loss"].item())
    assert min(losses[-5:]) < 0.2 * losses[0], losses  # measured 7.1 -> 0.62


class _Segments(torch.utils.data.Dataset):
    def __init__(self, count: int, frames: int) -> None:
        self.items = [speech_like(frames * HOP / TTS_SAMPLE_RATE + 0.001, seed=i)[0] for i in range(count)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"id": str(index), "wave": self.items[index]}


class _Batches:
    def __init__(self, count: int, size: int) -> None:
        self.count, self.size = count, size

    def __iter__(self):
        return iter([list(range(i, i + self.size)) for i in range(0, self.count, self.size)])

    def __len__(self) -> int:
        return self.count // self.size

    def set_epoch(self, epoch: int) -> None:
        pass


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    waves = torch.stack([item["wave"] for item in items])
    return {"wave": waves, "mels": MelSpectrogram()(waves), "ids": [item["id"] for item in items]}


def test_the_one_trainer_drives_the_gan_with_one_optimizer(tmp_path):
    torch.manual_seed(0)
    model = HiFiGAN(tiny("v3", adversarial_start_step=2))
    disc_before = [p.detach().clone() for p in model.msd.parameters()]
    gen_before = [p.detach().clone() for p in model.generator.parameters()]
    config = TrainerConfig(max_steps=4, lr=2e-4, betas=(0.8, 0.99), scheduler="constant", warmup_steps=0,
                           grad_clip=None, weight_decay=0.0, log_every=1, tensorboard=False, progress=False,
                           device="cpu", checkpoint_every=1000)
    Trainer(model, _Segments(4, 8), _Batches(4, 2), _collate, config, tmp_path).fit()
    train = [r for r in map(json.loads, (tmp_path / "log.jsonl").read_text().splitlines()) if r["event"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3, 4]
    assert [r["d_loss"] > 0 for r in train] == [False, False, True, True]  # train_step 0, 1 are warm-up
    assert all(math.isfinite(r["loss"]) and r["mel_loss"] > 0 for r in train)
    assert any(not torch.equal(a, b) for a, b in zip(gen_before, model.generator.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(disc_before, model.msd.parameters(), strict=True))


def test_generator_is_a_plain_module_for_export():
    generator = build_generator(tiny("v2"))
    assert isinstance(generator, Generator) and generator.n_mels == 80
