"""Griffin-Lim vocoder: log-mel -> linear magnitude -> phase by fast Griffin-Lim (Perraudin et al. 2013).

No training, no weights: the baseline every neural vocoder is compared against, and the fallback when none is
available. Two steps:

1. **Mel -> linear magnitude.** ``exp(mel)`` is ``filters @ |S|`` (floored at 1e-5), an under-determined system (80
   bands, 513 bins). ``mel_inversion="pinv"`` takes the minimum-norm solution ``pinv(filters) @ exp(mel)`` clamped at
   0; ``"nnls"`` (default) starts there and runs accelerated projected gradient (FISTA) on
   ``min ||filters @ M - exp(mel)||^2, M >= 0``, the non-negative least-squares fit librosa's ``mel_to_stft`` makes.
   On a speech-like test signal (1 s, 16 kHz) the NNLS fit brings the magnitude to -12.5 dB spectral convergence
   against the true ``|S|`` (pinv: -11.0 dB) and the 32-iteration output to about -12 dB (pinv: -9.9 dB); on white
   noise both are equal. 32 NNLS steps are within 0.05 dB of the converged fit.
2. **Phase.** Fast Griffin-Lim with momentum ``alpha`` alternates between the consistent set (``stft(istft(X))``)
   and the target magnitude, extrapolating ``t_n - alpha / (1 + alpha) * t_{n-1}`` like librosa and torchaudio.

The STFT pair here frames exactly like :class:`~seqspeech.tts.mel.MelSpectrogram` (reflect-padded by
``(n_fft - hop) / 2`` per side, not centred, ``frames = samples // hop``): ``stft(x).abs()`` equals
``MelSpectrogram.magnitude(x)``, and :func:`istft` is its least-squares inverse (windowed overlap-add divided by the
squared-window envelope, cropped to ``frames * hop`` samples). The initial phase is drawn from a fixed-seed generator,
so the output is deterministic and independent of the global RNG.

Shapes: B batch, F = n_fft // 2 + 1 bins, T frames, S = T * hop samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import AudioError, ConfigError
from ..mel import MelConfig, MelSpectrogram

__all__ = ["MEL_INVERSIONS", "GriffinLim", "istft", "mel_to_magnitude", "spectral_convergence", "stft"]

MEL_INVERSIONS = ("nnls", "pinv")
PHASE_INITS = ("random", "zeros")
DEFAULT_N_ITER = 32
DEFAULT_MOMENTUM = 0.99
DEFAULT_NNLS_ITER = 32  # magnitude within 0.05 dB of the converged fit (measured), half the cost of 64
ENVELOPE_FLOOR = 1e-8  # squared-window envelope below this is treated as "no frame covers this sample"
PHASE_EPS = 1e-16  # keeps x / |x| finite where a bin is exactly zero


def _frame_padding(config: MelConfig) -> tuple[int, int]:
    """Samples added before and after the signal by :class:`MelSpectrogram`'s framing."""
    left = (config.n_fft - config.hop_length) // 2
    return left, config.n_fft - config.hop_length - left


def _full_window(window: Tensor, n_fft: int) -> Tensor:
    """``window`` centred in ``n_fft`` samples, as ``torch.stft`` pads a shorter window."""
    left = (n_fft - window.numel()) // 2
    return F.pad(window, (left, n_fft - window.numel() - left))


def stft(wave: Tensor, config: MelConfig, window: Tensor) -> Tensor:
    """``(B, S)`` waveform -> complex STFT ``(B, F, S // hop)`` framed exactly like :class:`MelSpectrogram`.

    Signals too short to reflect-pad (fewer than ``(n_fft - hop) / 2 + 1`` samples, which no
    :class:`MelSpectrogram` input can be) are zero-padded instead.
    """
    left, right = _frame_padding(config)
    mode = "reflect" if wave.shape[-1] > max(left, right) else "constant"
    x = F.pad(wave.unsqueeze(1), (left, right), mode=mode).squeeze(1)
    spec = torch.stft(x, config.n_fft, config.hop_length, config.win_length, window=window, center=False,
                      return_complex=True)
    return spec[..., : wave.shape[-1] // config.hop_length]


def istft(spec: Tensor, config: MelConfig, window: Tensor) -> Tensor:
    """Complex ``(B, F, T)`` -> ``(B, T * hop)``: the least-squares inverse of :func:`stft`.

    Frames are inverse-FFT'd, windowed, overlap-added and divided by the overlap-added squared window (Griffin & Lim
    1984), then the framing padding is cropped. Written out with ``F.fold`` because ``torch.istft(center=False)``
    rejects a Hann window (its envelope is 0 at the padded signal's first sample, which we crop anyway).
    """
    n_fft, hop = config.n_fft, config.hop_length
    frames_count = spec.shape[-1]
    win = _full_window(window, n_fft).to(dtype=torch.float32)
    frames = torch.fft.irfft(spec, n=n_fft, dim=-2) * win[:, None]  # (B, n_fft, T)
    total = (frames_count - 1) * hop + n_fft
    fold = dict(output_size=(1, total), kernel_size=(1, n_fft), stride=(1, hop))
    signal = F.fold(frames, **fold).flatten(1)
    envelope = F.fold((win**2)[None, :, None].expand(1, n_fft, frames_count), **fold).flatten(1)
    signal = signal / torch.where(envelope > ENVELOPE_FLOOR, envelope, torch.ones_like(envelope))
    left, _ = _frame_padding(config)
    return signal[:, left : left + frames_count * hop]


def mel_to_magnitude(
    mel: Tensor, filters: Tensor, pinv: Tensor, method: str = "nnls", n_iter: int = DEFAULT_NNLS_ITER
) -> Tensor:
    """Log-mel ``(B, n_mels, T)`` -> non-negative linear magnitude ``(B, F, T)``.

    ``filters (n_mels, F)`` is the mel filter bank and ``pinv (F, n_mels)`` its pseudo-inverse. ``"pinv"``: the
    minimum-norm least-squares solution clamped at 0. ``"nnls"``: ``n_iter`` FISTA steps of projected gradient on
    ``||filters @ M - exp(mel)||^2`` over ``M >= 0``, started from the clamped pseudo-inverse, with step
    ``1 / ||filters||_2^2``.
    """
    target = mel.float().exp()
    magnitude = torch.clamp(pinv @ target, min=0.0)
    if method == "pinv" or n_iter == 0:
        return magnitude
    step = 1.0 / torch.linalg.matrix_norm(filters, ord=2) ** 2
    momentum_point, t = magnitude, 1.0
    for _ in range(n_iter):
        updated = torch.clamp(momentum_point - step * (filters.T @ (filters @ momentum_point - target)), min=0.0)
        t_next = (1.0 + (1.0 + 4.0 * t * t) ** 0.5) / 2.0
        momentum_point = updated + ((t - 1.0) / t_next) * (updated - magnitude)
        magnitude, t = updated, t_next
    return magnitude


def spectral_convergence(estimate: Tensor, reference: Tensor) -> Tensor:
    """``20 log10(||reference - estimate||_F / ||reference||_F)`` in dB over magnitudes of any equal shape
    (lower is better; -inf for a perfect match)."""
    return 20.0 * torch.log10(torch.linalg.vector_norm(reference - estimate) / torch.linalg.vector_norm(reference))


class GriffinLim(nn.Module):
    """Log-mel ``(B, n_mels, T)`` -> waveform ``(B, T * hop)`` by mel inversion and fast Griffin-Lim.

    Args:
        config: the mel definition the input follows (default: the shared TTS mel).
        n_iter: Griffin-Lim iterations (each one STFT and one inverse STFT).
        momentum: fast Griffin-Lim's ``alpha`` in ``[0, 1)``; 0 is the classic algorithm.
        mel_inversion: ``"nnls"`` or ``"pinv"`` (see :func:`mel_to_magnitude`).
        nnls_iter: projected-gradient steps of the NNLS fit.
        init: initial phase, ``"random"`` (uniform, from a generator seeded with ``seed`` on every call) or
            ``"zeros"``.
        seed: the random initial phase's seed.
    """

    def __init__(
        self,
        config: MelConfig | None = None,
        n_iter: int = DEFAULT_N_ITER,
        momentum: float = DEFAULT_MOMENTUM,
        *,
        mel_inversion: str = "nnls",
        nnls_iter: int = DEFAULT_NNLS_ITER,
        init: str = "random",
        seed: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 0:
            raise ConfigError(f"GriffinLim: n_iter must be an int >= 0, got {n_iter!r}")
        if not 0.0 <= momentum < 1.0:
            raise ConfigError(f"GriffinLim: momentum must be in [0, 1), got {momentum!r}")
        if mel_inversion not in MEL_INVERSIONS:
            raise ConfigError(f"GriffinLim: mel_inversion must be one of {MEL_INVERSIONS}, got {mel_inversion!r}")
        if isinstance(nnls_iter, bool) or not isinstance(nnls_iter, int) or nnls_iter < 0:
            raise ConfigError(f"GriffinLim: nnls_iter must be an int >= 0, got {nnls_iter!r}")
        if init not in PHASE_INITS:
            raise ConfigError(f"GriffinLim: init must be one of {PHASE_INITS}, got {init!r}")
        self.mel = MelSpectrogram(config)
        self.config = self.mel.config
        self.n_iter = n_iter
        self.momentum = float(momentum)
        self.mel_inversion = mel_inversion
        self.nnls_iter = nnls_iter
        self.init = init
        self.seed = seed
        self.register_buffer("pinv", torch.linalg.pinv(self.mel.filters.double()).float(), persistent=False)

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def n_mels(self) -> int:
        return self.config.n_mels

    def magnitude(self, mel: Tensor) -> Tensor:
        """Log-mel ``(B, n_mels, T)`` -> the linear magnitude ``(B, F, T)`` Griffin-Lim gives a phase to."""
        return mel_to_magnitude(mel, self.mel.filters, self.pinv, self.mel_inversion, self.nnls_iter)

    def _initial_phase(self, magnitude: Tensor, init_wave: Tensor | None) -> Tensor:
        """Unit-modulus ``(B, F, T)``: seeded random or zero phase; with ``init_wave (B, S0)`` the first ``S0 // hop``
        frames take the phase of its STFT (zero-padded past its end): a warm start for overlapping windows, see
        :mod:`.streaming`."""
        if self.init == "zeros":
            phase = torch.ones_like(magnitude, dtype=torch.complex64)
        else:
            generator = torch.Generator(device="cpu").manual_seed(self.seed)
            angles = torch.rand(magnitude.shape, generator=generator).to(magnitude.device) * (2 * torch.pi)
            phase = torch.polar(torch.ones_like(angles), angles)
        if init_wave is not None and init_wave.shape[-1] >= self.hop_length:
            known = init_wave.shape[-1] // self.hop_length
            padded = F.pad(init_wave.float(), (0, magnitude.shape[-1] * self.hop_length - init_wave.shape[-1]))
            spec = stft(padded, self.config, self.mel.window)[..., :known]
            phase = torch.cat([spec / (spec.abs() + PHASE_EPS), phase[..., known:]], dim=-1)
        return phase

    def forward(self, mel: Tensor, init_wave: Tensor | None = None) -> Tensor:
        """Log-mel ``(B, n_mels, T)`` -> waveform ``(B, T * hop)``.

        ``init_wave (B, S0)``, optional: an already known beginning of the output (``S0 <= T * hop``) whose phase
        initialises the first ``S0 // hop`` frames.
        """
        if mel.dim() != 3 or mel.shape[1] != self.n_mels:
            raise AudioError(f"GriffinLim: expected a log-mel (B, {self.n_mels}, T), got {tuple(mel.shape)}")
        if not torch.isfinite(mel).all():
            raise AudioError("GriffinLim: the log-mel contains NaN or inf")
        if init_wave is not None and (init_wave.dim() != 2 or init_wave.shape[0] != mel.shape[0]
                                      or init_wave.shape[-1] > mel.shape[-1] * self.hop_length):
            raise AudioError(f"GriffinLim: init_wave must be (B, S0) with S0 <= T * hop = "
                             f"{mel.shape[-1] * self.hop_length}, got {tuple(init_wave.shape)}")
        if mel.shape[-1] == 0:
            return mel.new_zeros(mel.shape[0], 0)
        magnitude = self.magnitude(mel)
        phase = self._initial_phase(magnitude, init_wave)
        window = self.mel.window
        previous = torch.zeros_like(phase)
        extrapolation = self.momentum / (1.0 + self.momentum)
        for _ in range(self.n_iter):
            rebuilt = stft(istft(magnitude * phase, self.config, window), self.config, window)
            phase = rebuilt - extrapolation * previous
            phase = phase / (phase.abs() + PHASE_EPS)
            previous = rebuilt
        return istft(magnitude * phase, self.config, window)

    @torch.no_grad()
    def infer(self, mel: Tensor, init_wave: Tensor | None = None) -> Tensor:
        """The :class:`~seqspeech.tts.vocoders.Vocoder` entry point: ``forward`` without autograd."""
        return self.forward(mel, init_wave)
