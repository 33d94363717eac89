"""Vocoders: log-mel ``(B, n_mels, T)`` -> waveform ``(B, T * hop)`` (the mel of :mod:`seqspeech.tts.mel`).

* :class:`GriffinLim` -- no training: mel inversion (NNLS) + fast Griffin-Lim.
* :class:`HiFiGAN` -- the GAN training wrapper (generator, multi-period and multi-scale discriminators, losses) that
  the one trainer drives with one optimizer; :class:`Generator` alone is what inference and export need. Presets
  :func:`hifigan_v1`, :func:`hifigan_v2`, :func:`hifigan_v3`, and the iSTFTNet variant :func:`istftnet_v2`.
* :class:`StreamingVocoder` -- chunked vocoding, exact for generators (:func:`receptive_field_frames`),
  cross-faded for Griffin-Lim.

Every vocoder follows the :class:`Vocoder` protocol.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

from .griffin_lim import GriffinLim, istft, mel_to_magnitude, spectral_convergence, stft
from .hifigan import (
    Generator,
    HiFiGAN,
    HiFiGANConfig,
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    build_generator,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    hifigan_v1,
    hifigan_v2,
    hifigan_v3,
    istftnet_v2,
)
from .streaming import StreamingVocoder, StreamState, receptive_field_frames


@runtime_checkable
class Vocoder(Protocol):
    """What synthesis and streaming need from a vocoder."""

    @property
    def hop_length(self) -> int:
        """Samples per mel frame."""
        ...

    @property
    def n_mels(self) -> int:
        """Mel bands of the input."""
        ...

    def infer(self, mel: Tensor) -> Tensor:
        """Log-mel ``(B, n_mels, T)`` -> waveform ``(B, T * hop)``, without autograd."""
        ...


__all__ = [
    "Generator", "GriffinLim", "HiFiGAN", "HiFiGANConfig", "MultiPeriodDiscriminator", "MultiScaleDiscriminator",
    "StreamState", "StreamingVocoder", "Vocoder", "build_generator", "discriminator_loss", "feature_matching_loss",
    "generator_adversarial_loss", "hifigan_v1", "hifigan_v2", "hifigan_v3", "istft", "istftnet_v2",
    "mel_to_magnitude", "receptive_field_frames", "spectral_convergence", "stft",
]
