"""HiFi-GAN (Kong et al. 2020): a convolutional generator trained against multi-period and multi-scale discriminators.

* :class:`Generator` upsamples a log-mel ``(B, n_mels, T)`` by transposed convolutions whose strides multiply to the
  hop (256 at 16 kHz: 8 x 8 x 2 x 2 for V1/V2, 8 x 8 x 4 for V3 -- the paper's 22.05 kHz configurations already use
  hop 256, so they carry over unchanged), each followed by a multi-receptive-field fusion (the mean of residual blocks
  with different kernels and dilations), into a waveform ``(B, 1, T * hop)``. Weight norm everywhere;
  :meth:`Generator.remove_weight_norm` folds it away for inference and export. ``head="istft"`` is the iSTFTNet
  variant (Kaneko et al. 2022): fewer upsampling stages and a convolution predicting a log-magnitude and a phase of a
  small STFT, inverted with ``torch.istft`` (``prod(upsample_rates) * istft_hop_length == hop_length``).
* :class:`MultiPeriodDiscriminator` (periods 2, 3, 5, 7, 11) and :class:`MultiScaleDiscriminator` (raw, x2 and x4
  average-pooled; the first with spectral norm) return per-sub-discriminator scores and feature maps.
* Losses: LSGAN discriminator and generator losses, feature matching (L1 between real and fake feature maps) and the
  L1 distance between log-mels (:class:`~seqspeech.tts.mel.MelSpectrogram`) of the real and generated waveforms,
  weighted 45 : 2 : 1 (mel : feature matching : adversarial). ``mel_loss_windows`` adds mel resolutions to that L1
  (the mean over the input mel and one mel per window, hop a quarter of the window, ``min(n_mels, window // 4)``
  bands), as in BigVGAN's / DAC's multi-scale mel loss: the input mel's 64 ms windows say nothing about timing
  inside them, which only the discriminators would otherwise teach.
* :class:`HiFiGAN` is the training wrapper the one trainer drives with ONE optimizer over generator and
  discriminators. Its forward computes the discriminator loss on ``(real, fake.detach())`` and the generator's
  adversarial and feature-matching losses through the discriminators with their parameters *detached*
  (``torch.func.functional_call``). So ``d_loss`` has gradients only in the discriminators and ``g_loss`` only in the
  generator, and one backward of ``loss = d_loss + g_loss`` gives each network exactly its own GAN gradient: a
  simultaneous-gradient GAN step (the paper alternates D then G steps; with one optimizer both see the same batch's
  fake). Before ``adversarial_start_step`` (read from ``batch["train_step"]``) only the mel loss trains the
  generator and the discriminators are not run. Both networks share the trainer's learning rate (the paper uses one
  lr, 2e-4, for both; AdamW betas (0.8, 0.99)). The trainer clips the global gradient norm over both networks
  together, which couples their step sizes: vocoder recipes should set ``grad_clip: null`` (the paper does not clip).

Training batches carry ``wave (B, S)`` and ``mels (B, n_mels, S // hop)`` (``segment_frames`` frames per segment).
The mel-loss target is always computed from ``wave``, so **fine-tuning on an acoustic model's output** needs
nothing special here: feed batches whose ``mels`` are the acoustic model's ground-truth-aligned (teacher-forced)
predictions for the recorded ``wave``, and the generator learns to map the acoustic model's mels to the real audio.

Shapes: B batch, T mel frames, S = T * hop samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from ...config import from_mapping, to_mapping
from ...errors import AudioError, ConfigError, DataError
from ..mel import TTS_HOP_LENGTH, TTS_N_MELS, TTS_SAMPLE_RATE, MelConfig, MelSpectrogram

__all__ = [
    "HEADS", "RESBLOCK_KINDS", "Generator", "HiFiGAN", "HiFiGANConfig", "MultiPeriodDiscriminator",
    "MultiScaleDiscriminator", "PeriodDiscriminator", "ResBlock1", "ResBlock2", "ScaleDiscriminator",
    "build_generator", "discriminator_loss", "feature_matching_loss", "generator_adversarial_loss", "hifigan_v1",
    "hifigan_v2", "hifigan_v3", "istftnet_v2",
]

RESBLOCK_KINDS = (1, 2)
HEADS = ("waveform", "istft")
LRELU_SLOPE = 0.1  # inside the generator and discriminators
POST_LRELU_SLOPE = 0.01  # before the generator's last convolution (torch's default, as in the official code)
INIT_STD = 0.01  # generator convolutions start as N(0, 0.01) (official init_weights)
PRE_KERNEL = 7  # generator input and output convolutions
MAX_LOG_MAGNITUDE = 10.0  # iSTFT head: exp() of larger log-magnitudes is clamped (avoids inf early in training)

# Discriminator widths at discriminator_channels = 1024 (the paper); narrower variants scale them.
PAPER_DISCRIMINATOR_CHANNELS = 1024
MPD_CHANNELS = (32, 128, 512, 1024, 1024)
MPD_KERNEL, MPD_STRIDE = 5, 3
MSD_CHANNELS = (128, 128, 256, 512, 1024, 1024, 1024)
MSD_KERNELS = (15, 41, 41, 41, 41, 41, 5)
MSD_STRIDES = (1, 2, 2, 4, 4, 1, 1)
MSD_GROUPS = (1, 4, 16, 16, 16, 16, 1)
MSD_POOL = (4, 2, 2)  # AvgPool1d(kernel, stride, padding) between scales
POST_KERNEL = 3  # discriminators' output convolutions

MEL_LOSS_WEIGHT = 45.0
FEATURE_MATCHING_WEIGHT = 2.0
ADVERSARIAL_WEIGHT = 1.0
SEGMENT_FRAMES = 32  # 8192 samples at hop 256, the paper's segment size


# ----------------------------------------------------------------
# config and presets


def _tuple(value: Any) -> Any:
    """YAML lists -> tuples (nested one level), so the frozen config stays hashable."""
    if isinstance(value, list | tuple):
        return tuple(_tuple(v) if isinstance(v, list | tuple) else v for v in value)
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class HiFiGANConfig:
    """Everything that defines a HiFi-GAN: generator shape, discriminators, loss weights, warm-up.

    The defaults are V1 (:func:`hifigan_v1`). ``discriminator_channels`` is the widest discriminator layer (1024 in
    the paper; every other width scales with it, a multiple of 32 -- small values make tiny test models).
    ``adversarial_start_step``: optimizer steps of mel-only warm-up before the GAN losses switch on.
    """

    n_mels: int = TTS_N_MELS
    hop_length: int = TTS_HOP_LENGTH
    sample_rate: int = TTS_SAMPLE_RATE
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    upsample_initial_channel: int = 512
    resblock: int = 1
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    head: str = "waveform"
    istft_n_fft: int = 16
    istft_hop_length: int = 4
    segment_frames: int = SEGMENT_FRAMES
    mel_loss_weight: float = MEL_LOSS_WEIGHT
    feature_matching_weight: float = FEATURE_MATCHING_WEIGHT
    adversarial_weight: float = ADVERSARIAL_WEIGHT
    mpd_periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    msd_scales: int = 3
    discriminator_channels: int = PAPER_DISCRIMINATOR_CHANNELS
    adversarial_start_step: int = 0
    mel_loss_windows: tuple[int, ...] = ()  # extra mel-loss resolutions (STFT window sizes), see the module docs

    def __post_init__(self) -> None:
        for name in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes", "resblock_dilation_sizes",
                     "mpd_periods", "mel_loss_windows"):
            object.__setattr__(self, name, _tuple(getattr(self, name)))

        def fail(message: str) -> None:
            raise ConfigError(f"HiFiGANConfig: {message}")

        def ints(name: str, minimum: int) -> tuple[int, ...]:
            value = getattr(self, name)
            if not isinstance(value, tuple) or not all(_is_int(v) and v >= minimum for v in value):
                fail(f"{name} must be a sequence of ints >= {minimum}, got {value!r}")
            return value

        for name, minimum in (("n_mels", 1), ("hop_length", 1), ("sample_rate", 1), ("upsample_initial_channel", 1),
                              ("segment_frames", 1), ("msd_scales", 0), ("adversarial_start_step", 0),
                              ("istft_n_fft", 2), ("istft_hop_length", 1)):
            value = getattr(self, name)
            if not _is_int(value) or value < minimum:
                fail(f"{name} must be an int >= {minimum}, got {value!r}")
        rates, kernels = ints("upsample_rates", 1), ints("upsample_kernel_sizes", 1)
        if not rates or len(rates) != len(kernels):
            fail(f"upsample_rates {rates} and upsample_kernel_sizes {kernels} must be non-empty and equally long")
        for rate, kernel in zip(rates, kernels, strict=True):
            if kernel < rate or (kernel - rate) % 2:
                fail(f"upsample kernel {kernel} must be >= its rate {rate} with an even difference (so a "
                     f"transposed convolution maps T frames to exactly T * rate)")
        if self.upsample_initial_channel % 2 ** len(rates):
            fail(f"upsample_initial_channel {self.upsample_initial_channel} must be divisible by "
                 f"2 ** {len(rates)} (each upsampling stage halves the channels)")
        if self.head not in HEADS:
            fail(f"head must be one of {HEADS}, got {self.head!r}")
        total = math.prod(rates) * (self.istft_hop_length if self.head == "istft" else 1)
        if total != self.hop_length:
            detail = f" * istft_hop_length {self.istft_hop_length}" if self.head == "istft" else ""
            fail(f"prod(upsample_rates) {math.prod(rates)}{detail} = {total} must equal hop_length {self.hop_length}")
        if self.head == "istft" and (self.istft_n_fft % 2 or self.istft_n_fft < self.istft_hop_length):
            fail(f"istft_n_fft {self.istft_n_fft} must be even and >= istft_hop_length {self.istft_hop_length}")
        if self.resblock not in RESBLOCK_KINDS:
            fail(f"resblock must be 1 or 2, got {self.resblock!r}")
        sizes = ints("resblock_kernel_sizes", 1)
        if not sizes or any(k % 2 == 0 for k in sizes):
            fail(f"resblock_kernel_sizes must be non-empty and odd (symmetric padding), got {sizes}")
        dilations = self.resblock_dilation_sizes
        if (not isinstance(dilations, tuple) or len(dilations) != len(sizes)
                or not all(isinstance(d, tuple) and d and all(_is_int(x) and x >= 1 for x in d) for d in dilations)):
            fail(f"resblock_dilation_sizes must hold one non-empty tuple of ints >= 1 per kernel size "
                 f"({len(sizes)}), got {dilations!r}")
        for name in ("mel_loss_weight", "feature_matching_weight", "adversarial_weight"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
                    and value >= 0):
                fail(f"{name} must be a finite number >= 0, got {value!r}")
        ints("mpd_periods", 1)
        for window in ints("mel_loss_windows", 16):
            if window % 4:
                fail(f"mel_loss_windows must be multiples of 4 (the hop is a quarter), got {window}")
        channels = self.discriminator_channels
        if not _is_int(channels) or channels < 32 or channels % 32:
            fail(f"discriminator_channels must be a positive multiple of 32, got {channels!r}")
        try:
            MelConfig(sample_rate=self.sample_rate, hop_length=self.hop_length, n_mels=self.n_mels)
        except ValueError as err:
            fail(f"no mel loss for these settings: {err}")

    @property
    def mel_config(self) -> MelConfig:
        """The mel definition of the inputs and of the mel loss."""
        return MelConfig(sample_rate=self.sample_rate, hop_length=self.hop_length, n_mels=self.n_mels)

    @property
    def loss_mel_configs(self) -> list[MelConfig]:
        """Every resolution of the mel loss: the input mel's, then one per ``mel_loss_windows`` entry."""
        return [self.mel_config] + [
            MelConfig(sample_rate=self.sample_rate, n_fft=w, win_length=w, hop_length=w // 4,
                      n_mels=min(self.n_mels, w // 4)) for w in self.mel_loss_windows]

    def to_dict(self) -> dict:
        return to_mapping(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "HiFiGANConfig") -> HiFiGANConfig:
        """Strict: an unknown key is a :class:`ConfigError` naming it."""
        return from_mapping(cls, data, where)


def hifigan_v1(**overrides: Any) -> HiFiGANConfig:
    """V1 (13.9 M generator parameters): 512 channels, ResBlock1 kernels 3/7/11, dilations 1/3/5."""
    return replace(HiFiGANConfig(), **overrides)


def hifigan_v2(**overrides: Any) -> HiFiGANConfig:
    """V2 (0.9 M): V1 with 128 channels."""
    return replace(HiFiGANConfig(upsample_initial_channel=128), **overrides)


def hifigan_v3(**overrides: Any) -> HiFiGANConfig:
    """V3 (1.5 M): upsampling 8 x 8 x 4 (kernels 16/16/8), 256 channels, ResBlock2 kernels 3/5/7 with dilations
    (1, 2), (2, 6), (3, 12)."""
    base = HiFiGANConfig(
        upsample_rates=(8, 8, 4), upsample_kernel_sizes=(16, 16, 8), upsample_initial_channel=256, resblock=2,
        resblock_kernel_sizes=(3, 5, 7), resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)),
    )
    return replace(base, **overrides)


def istftnet_v2(**overrides: Any) -> HiFiGANConfig:
    """iSTFTNet C8C8I at V2 width: two upsampling stages (8 x 8) then a 16-point iSTFT with hop 4."""
    base = HiFiGANConfig(
        upsample_rates=(8, 8), upsample_kernel_sizes=(16, 16), upsample_initial_channel=128, head="istft",
        istft_n_fft=16, istft_hop_length=4,
    )
    return replace(base, **overrides)


# ----------------------------------------------------------------
# generator


def _same_padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size - 1) * dilation // 2


def _conv_span(conv: nn.Conv1d, lo: int, hi: int) -> tuple[int, int]:
    """The input indices a stride-1 convolution's outputs ``lo..hi`` read (inclusive)."""
    kernel, dilation, padding = conv.kernel_size[0], conv.dilation[0], conv.padding[0]
    return lo - padding, hi + (kernel - 1) * dilation - padding


def _transposed_span(lo: int, hi: int, stride: int, kernel: int, padding: int) -> tuple[int, int]:
    """The input indices a transposed convolution's (or overlap-add's) outputs ``lo..hi`` read (inclusive):
    output ``j`` sums inputs ``i`` with ``0 <= j + padding - i * stride < kernel``."""
    return -((-(lo + padding - kernel + 1)) // stride), (hi + padding) // stride


def _generator_conv(in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1) -> nn.Conv1d:
    """A weight-normed "same" convolution whose weight starts as N(0, INIT_STD) (set before the weight norm, so the
    norm's magnitude ``g`` starts at that weight's norm)."""
    conv = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation,
                     padding=_same_padding(kernel_size, dilation))
    nn.init.normal_(conv.weight, 0.0, INIT_STD)
    return weight_norm(conv)


class ResBlock1(nn.Module):
    """``x += conv(lrelu(conv_d(lrelu(x))))`` for each dilation ``d``: ``(B, C, L) -> (B, C, L)``."""

    def __init__(self, channels: int, kernel_size: int, dilations: Sequence[int]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(_generator_conv(channels, channels, kernel_size, d) for d in dilations)
        self.convs2 = nn.ModuleList(_generator_conv(channels, channels, kernel_size) for _ in dilations)

    def forward(self, x: Tensor) -> Tensor:
        for conv1, conv2 in zip(self.convs1, self.convs2, strict=True):
            x = x + conv2(F.leaky_relu(conv1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x

    def input_span(self, lo: int, hi: int) -> tuple[int, int]:
        for conv1, conv2 in zip(reversed(self.convs1), reversed(self.convs2), strict=True):
            lo, hi = _conv_span(conv1, *_conv_span(conv2, lo, hi))
        return lo, hi


class ResBlock2(nn.Module):
    """``x += conv_d(lrelu(x))`` for each dilation ``d``: ``(B, C, L) -> (B, C, L)``."""

    def __init__(self, channels: int, kernel_size: int, dilations: Sequence[int]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(_generator_conv(channels, channels, kernel_size, d) for d in dilations)

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
        return x

    def input_span(self, lo: int, hi: int) -> tuple[int, int]:
        for conv in reversed(self.convs):
            lo, hi = _conv_span(conv, lo, hi)
        return lo, hi


class Generator(nn.Module):
    """Log-mel ``(B, n_mels, T)`` -> waveform ``(B, 1, T * hop)`` in ``[-1, 1]``.

    Args:
        n_mels: input mel bands.
        upsample_rates / upsample_kernel_sizes: one transposed convolution per stage (``kernel - rate`` even).
        upsample_initial_channel: width after the input convolution; halved by every stage.
        resblock: 1 or 2 (:class:`ResBlock1` / :class:`ResBlock2`).
        resblock_kernel_sizes / resblock_dilation_sizes: the residual blocks each stage averages (MRF).
        head: ``"waveform"`` (a convolution to one channel and tanh) or ``"istft"`` (log-magnitude and phase of an
            ``istft_n_fft``-point STFT with hop ``istft_hop_length``, inverted by ``torch.istft``).
    """

    def __init__(
        self,
        n_mels: int,
        upsample_rates: Sequence[int],
        upsample_kernel_sizes: Sequence[int],
        upsample_initial_channel: int,
        resblock: int,
        resblock_kernel_sizes: Sequence[int],
        resblock_dilation_sizes: Sequence[Sequence[int]],
        head: str = "waveform",
        istft_n_fft: int = 16,
        istft_hop_length: int = 4,
    ) -> None:
        super().__init__()
        self.n_mels = n_mels
        self.upsample_rates = tuple(upsample_rates)
        self.head = head
        self.istft_n_fft = istft_n_fft
        self.istft_hop_length = istft_hop_length
        block = ResBlock1 if resblock == 1 else ResBlock2
        self.conv_pre = weight_norm(nn.Conv1d(n_mels, upsample_initial_channel, PRE_KERNEL,
                                              padding=_same_padding(PRE_KERNEL)))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        channels = upsample_initial_channel
        for rate, kernel in zip(upsample_rates, upsample_kernel_sizes, strict=True):
            up = nn.ConvTranspose1d(channels, channels // 2, kernel, rate, padding=(kernel - rate) // 2)
            nn.init.normal_(up.weight, 0.0, INIT_STD)
            self.ups.append(weight_norm(up))
            channels //= 2
            self.resblocks.append(nn.ModuleList(
                block(channels, k, d) for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes, strict=True)
            ))
        self.conv_post = _generator_conv(channels, 1 if head == "waveform" else istft_n_fft + 2, PRE_KERNEL)
        if head == "istft":
            self.register_buffer("istft_window", torch.hann_window(istft_n_fft), persistent=False)

    @property
    def hop_length(self) -> int:
        return math.prod(self.upsample_rates) * (self.istft_hop_length if self.head == "istft" else 1)

    def forward(self, mel: Tensor) -> Tensor:
        x = self.conv_pre(mel)
        for up, stage in zip(self.ups, self.resblocks, strict=True):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            x = sum(block(x) for block in stage) / len(stage)
        x = self.conv_post(F.leaky_relu(x, POST_LRELU_SLOPE))
        if self.head == "waveform":
            return torch.tanh(x)
        bins = self.istft_n_fft // 2 + 1
        x = x.float()
        spec = torch.polar(torch.exp(x[:, :bins].clamp(max=MAX_LOG_MAGNITUDE)), math.pi * torch.sin(x[:, bins:]))
        wave = torch.istft(spec, self.istft_n_fft, self.istft_hop_length, window=self.istft_window, center=True,
                           length=x.shape[-1] * self.istft_hop_length)
        return wave.unsqueeze(1)

    def input_span(self, lo: int, hi: int) -> tuple[int, int]:
        """The mel frames (inclusive range) that output samples ``lo..hi`` depend on, away from the signal's edges
        (used by :func:`~seqspeech.tts.vocoders.streaming.receptive_field_frames`)."""
        if self.head == "istft":
            n_fft = self.istft_n_fft
            lo, hi = _transposed_span(lo, hi, self.istft_hop_length, n_fft, n_fft // 2)
        lo, hi = _conv_span(self.conv_post, lo, hi)
        for up, stage in zip(reversed(self.ups), reversed(self.resblocks), strict=True):
            spans = [block.input_span(lo, hi) for block in stage]
            lo, hi = min(s[0] for s in spans), max(s[1] for s in spans)
            lo, hi = _transposed_span(lo, hi, up.stride[0], up.kernel_size[0], up.padding[0])
        return _conv_span(self.conv_pre, lo, hi)

    def remove_weight_norm(self) -> Generator:
        """Fold every weight norm into a plain weight (same outputs, faster, exportable); returns ``self``."""
        for module in list(self.modules()):
            if parametrize.is_parametrized(module, "weight"):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        return self

    @torch.no_grad()
    def infer(self, mel: Tensor) -> Tensor:
        """The :class:`~seqspeech.tts.vocoders.Vocoder` entry point: ``(B, n_mels, T)`` -> ``(B, T * hop)``
        without autograd. The generator has no dropout or normalisation statistics, so train and eval mode give
        the same output and the module's mode is left alone."""
        _check_mel(mel, self.n_mels, "Generator")
        if mel.shape[-1] == 0:
            return mel.new_zeros(mel.shape[0], 0)
        return self.forward(mel.to(next(self.parameters()).dtype)).squeeze(1)


def build_generator(config: HiFiGANConfig) -> Generator:
    """The generator ``config`` describes."""
    return Generator(
        config.n_mels, config.upsample_rates, config.upsample_kernel_sizes, config.upsample_initial_channel,
        config.resblock, config.resblock_kernel_sizes, config.resblock_dilation_sizes, config.head,
        config.istft_n_fft, config.istft_hop_length,
    )


def _check_mel(mel: Tensor, n_mels: int, who: str) -> None:
    if mel.dim() != 3 or mel.shape[1] != n_mels:
        raise AudioError(f"{who}: expected a log-mel (B, {n_mels}, T), got {tuple(mel.shape)}")
    if not torch.isfinite(mel).all():
        raise AudioError(f"{who}: the log-mel contains NaN or inf")


# ----------------------------------------------------------------
# discriminators

Scores = list[Tensor]  # one (B, N_k) score map per sub-discriminator
FeatureMaps = list[list[Tensor]]  # per sub-discriminator, every layer's activation


def _scaled(widths: Sequence[int], channels: int) -> list[int]:
    return [w * channels // PAPER_DISCRIMINATOR_CHANNELS for w in widths]


def _discriminate(convs: nn.ModuleList, conv_post: nn.Module, x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """Leaky-ReLU conv stack then the score conv: ``(flattened scores, every layer's feature map)``."""
    fmaps = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        fmaps.append(x)
    x = conv_post(x)
    fmaps.append(x)
    return x.flatten(1), fmaps


class PeriodDiscriminator(nn.Module):
    """Waveform ``(B, 1, S)`` folded into ``(B, 1, S / p, p)`` (reflect-padded to a multiple of ``p``) and scored by
    2-D convolutions along time only: ``-> (B, N), [feature maps]``."""

    def __init__(self, period: int, channels: Sequence[int] = MPD_CHANNELS) -> None:
        super().__init__()
        self.period = period
        widths = [1, *channels]
        pad = (_same_padding(MPD_KERNEL), 0)
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(cin, cout, (MPD_KERNEL, 1), (MPD_STRIDE if i < len(channels) - 1 else 1, 1), pad))
            for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:], strict=True))
        )
        self.conv_post = weight_norm(nn.Conv2d(channels[-1], 1, (POST_KERNEL, 1), 1, (_same_padding(POST_KERNEL), 0)))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        batch, _, length = x.shape
        if length % self.period:
            x = F.pad(x, (0, self.period - length % self.period), mode="reflect")
        return _discriminate(self.convs, self.conv_post, x.view(batch, 1, -1, self.period))


class MultiPeriodDiscriminator(nn.Module):
    """One :class:`PeriodDiscriminator` per period: ``(B, 1, S) -> (scores, feature maps)``."""

    def __init__(self, periods: Sequence[int] = (2, 3, 5, 7, 11), channels: Sequence[int] = MPD_CHANNELS) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels) for p in periods)

    def forward(self, x: Tensor) -> tuple[Scores, FeatureMaps]:
        outputs = [d(x) for d in self.discriminators]
        return [o[0] for o in outputs], [o[1] for o in outputs]


class ScaleDiscriminator(nn.Module):
    """MelGAN's strided, grouped 1-D convolutions on a waveform ``(B, 1, S) -> (B, N), [feature maps]``."""

    def __init__(self, channels: Sequence[int] = MSD_CHANNELS, use_spectral_norm: bool = False) -> None:
        super().__init__()
        norm = spectral_norm if use_spectral_norm else weight_norm
        widths = [1, *channels]
        self.convs = nn.ModuleList()
        for cin, cout, kernel, stride, groups in zip(widths[:-1], widths[1:], MSD_KERNELS, MSD_STRIDES, MSD_GROUPS,
                                                     strict=True):
            groups = math.gcd(groups, cin, cout)
            self.convs.append(norm(nn.Conv1d(cin, cout, kernel, stride, groups=groups,
                                             padding=_same_padding(kernel))))
        self.conv_post = norm(nn.Conv1d(channels[-1], 1, POST_KERNEL, 1, padding=_same_padding(POST_KERNEL)))

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        return _discriminate(self.convs, self.conv_post, x)


class MultiScaleDiscriminator(nn.Module):
    """``scales`` :class:`ScaleDiscriminator` s on the raw, x2, x4, ... average-pooled waveform (the first with
    spectral norm): ``(B, 1, S) -> (scores, feature maps)``."""

    def __init__(self, scales: int = 3, channels: Sequence[int] = MSD_CHANNELS) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(ScaleDiscriminator(channels, use_spectral_norm=i == 0)
                                            for i in range(scales))
        self.pool = nn.AvgPool1d(*MSD_POOL)

    def forward(self, x: Tensor) -> tuple[Scores, FeatureMaps]:
        scores, fmaps = [], []
        for i, disc in enumerate(self.discriminators):
            if i:
                x = self.pool(x)
            score, fmap = disc(x)
            scores.append(score)
            fmaps.append(fmap)
        return scores, fmaps


# ----------------------------------------------------------------
# losses


def discriminator_loss(real_scores: Scores, fake_scores: Scores) -> Tensor:
    """LSGAN: ``sum_k mean((1 - D_k(real))^2) + mean(D_k(fake)^2)``."""
    return sum(((1 - r.float()) ** 2).mean() + (f.float() ** 2).mean()
               for r, f in zip(real_scores, fake_scores, strict=True))


def generator_adversarial_loss(fake_scores: Scores) -> Tensor:
    """LSGAN: ``sum_k mean((1 - D_k(G(mel)))^2)``."""
    return sum(((1 - f.float()) ** 2).mean() for f in fake_scores)


def feature_matching_loss(real_fmaps: FeatureMaps, fake_fmaps: FeatureMaps) -> Tensor:
    """``sum_k sum_layers mean|D_k^l(real) - D_k^l(fake)|`` (the paper's ``L_FM`` before its weight 2)."""
    return sum(F.l1_loss(f.float(), r.float())
               for real, fake in zip(real_fmaps, fake_fmaps, strict=True)
               for r, f in zip(real, fake, strict=True))


# ----------------------------------------------------------------
# training wrapper


class HiFiGAN(nn.Module):
    """Generator + discriminators + losses, trainable by the one trainer with one optimizer (see the module docs).

    ``forward(batch) -> {"loss", "d_loss", "g_loss", "g_adv", "fm_loss", "mel_loss"}``: ``loss = d_loss + g_loss``,
    ``g_loss = 45 * mel_loss + 2 * fm_loss + 1 * g_adv`` (the config's weights); ``mel_loss`` is the unweighted
    mel L1. Batches without ``train_step`` (evaluation) count as past the warm-up.
    """

    def __init__(self, config: HiFiGANConfig | None = None) -> None:
        super().__init__()
        self.config = config or HiFiGANConfig()
        c = self.config
        self.generator = build_generator(c)
        self.mpd = MultiPeriodDiscriminator(c.mpd_periods, _scaled(MPD_CHANNELS, c.discriminator_channels))
        self.msd = MultiScaleDiscriminator(c.msd_scales, _scaled(MSD_CHANNELS, c.discriminator_channels))
        self.loss_mels = nn.ModuleList(MelSpectrogram(m) for m in c.loss_mel_configs)

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def n_mels(self) -> int:
        return self.config.n_mels

    @property
    def discriminators(self) -> list[nn.Module]:
        return [d for d in (self.mpd, self.msd) if len(d.discriminators)]

    def adversarial(self, batch: dict[str, Any]) -> bool:
        """Whether the GAN losses are on for ``batch`` (after the mel-only warm-up)."""
        step = batch.get("train_step")
        return step is None or step >= self.config.adversarial_start_step

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        wave, mels = batch.get("wave"), batch.get("mels")
        if not isinstance(wave, Tensor) or not isinstance(mels, Tensor):
            raise DataError(f"HiFiGAN: the batch needs tensors 'wave' (B, S) and 'mels' (B, n_mels, T); "
                            f"it has {sorted(batch)}")
        if wave.dim() != 2 or mels.dim() != 3 or mels.shape[1] != self.n_mels or wave.shape[0] != mels.shape[0] \
                or wave.shape[1] // self.hop_length != mels.shape[2]:
            raise DataError(f"HiFiGAN: expected wave (B, S) and mels (B, {self.n_mels}, S // {self.hop_length}), "
                            f"got wave {tuple(wave.shape)} and mels {tuple(mels.shape)}")
        wave = wave[:, : mels.shape[2] * self.hop_length]  # a ragged end past the last frame is not generated
        fake = self.generator(mels)  # (B, 1, T * hop)
        real = wave.unsqueeze(1).to(fake.dtype)
        with torch.autocast(device_type=fake.device.type, enabled=False):  # the mel loss in float32 under AMP
            generated, recorded = fake.squeeze(1).float(), wave.float()
            losses = []
            for mel in self.loss_mels:
                with torch.no_grad():
                    target = mel(recorded)
                losses.append(F.l1_loss(mel(generated), target))
            mel_loss = torch.stack(losses).mean()
        zero = mel_loss.new_zeros(())
        d_loss = g_adv = fm_loss = zero
        if self.adversarial(batch) and self.discriminators:
            d_loss, g_adv, fm_loss = self._adversarial_losses(real, fake)
        c = self.config
        g_loss = c.mel_loss_weight * mel_loss + c.feature_matching_weight * fm_loss + c.adversarial_weight * g_adv
        return {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss, "g_adv": g_adv, "fm_loss": fm_loss,
                "mel_loss": mel_loss}

    def _adversarial_losses(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(d_loss, g_adv, fm_loss)``: the discriminator loss reaches only the discriminators (``fake`` detached),
        the generator losses only the generator (the discriminators run with detached parameters)."""
        batch = real.shape[0]
        d_loss = g_adv = fm_loss = real.new_zeros((), dtype=torch.float32)
        for disc in self.discriminators:
            scores, fmaps = disc(torch.cat([real, fake.detach()]))
            d_loss = d_loss + discriminator_loss([s[:batch] for s in scores], [s[batch:] for s in scores])
            real_fmaps = [[f[:batch].detach() for f in layers] for layers in fmaps]
            frozen = {name: p.detach() for name, p in disc.named_parameters()}
            fake_scores, fake_fmaps = functional_call(disc, frozen, (fake,))
            g_adv = g_adv + generator_adversarial_loss(fake_scores)
            fm_loss = fm_loss + feature_matching_loss(real_fmaps, fake_fmaps)
        return d_loss, g_adv, fm_loss

    @torch.no_grad()
    def infer(self, mel: Tensor) -> Tensor:
        """``(B, n_mels, T)`` -> ``(B, T * hop)`` with the generator alone, without autograd."""
        return self.generator.infer(mel)

    # -- packaging: a shipped vocoder carries the generator only (the discriminators only matter in training)
    def inference_state_dict(self) -> dict[str, Tensor]:
        """The generator's weights under their ``generator.`` names: what a vocoder package stores."""
        return {f"generator.{k}": v for k, v in self.generator.state_dict().items()}

    def load_inference_state_dict(self, state: dict[str, Tensor]) -> None:
        """Load generator weights (from :meth:`inference_state_dict` or a full training state); the
        discriminators keep their initial weights. Raises RuntimeError on missing or mismatched generator keys."""
        prefix = "generator."
        self.generator.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
