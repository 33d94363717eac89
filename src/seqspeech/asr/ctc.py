"""CTC speech recogniser: feature normalisation -> SpecAugment (training only) -> encoder -> Linear -> CTC.

The model receives built parts (any ``(x (B, T, F), lens (B,)) -> (y (B, T', D), lens' (B,))`` encoder, any
SpecAugment-like ``(x, lens) -> x`` module); :func:`ctc_model_from_config` builds the Conformer version from a
:class:`CTCConfig`. Shapes: B batch, T feature frames, F mel bins, T' encoder frames, D encoder width,
U target tokens, V vocabulary (id ``blank`` is the CTC blank).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqspeech.asr.base import FeatureNormalization, speech_batch
from seqspeech.audio.augment import SpecAugment, SpecAugmentConfig
from seqspeech.config import from_mapping, to_mapping
from seqspeech.errors import ConfigError
from seqspeech.nn.conformer import ConformerConfig

__all__ = ["CTCConfig", "CTCModel", "ctc_model_from_config"]

DEFAULT_INPUT_DIM = ConformerConfig().input_dim


@dataclass(frozen=True)
class CTCConfig:
    """A CTC model: vocabulary, feature width, encoder and SpecAugment settings.

    ``encoder.input_dim`` follows ``input_dim``: left at its default it is set to ``input_dim``; set to
    anything else it must equal ``input_dim``. ``specaugment=None`` disables SpecAugment.
    """

    vocab_size: int
    input_dim: int = DEFAULT_INPUT_DIM
    encoder: ConformerConfig = ConformerConfig()
    blank: int = 0
    specaugment: SpecAugmentConfig | None = SpecAugmentConfig()

    def __post_init__(self) -> None:
        if isinstance(self.vocab_size, bool) or not isinstance(self.vocab_size, int) or self.vocab_size < 2:
            raise ConfigError(f"CTCConfig.vocab_size must be an int >= 2, got {self.vocab_size!r}")
        if isinstance(self.input_dim, bool) or not isinstance(self.input_dim, int) or self.input_dim <= 0:
            raise ConfigError(f"CTCConfig.input_dim must be a positive int, got {self.input_dim!r}")
        if not 0 <= self.blank < self.vocab_size:
            raise ConfigError(f"CTCConfig.blank must be in [0, {self.vocab_size}), got {self.blank}")
        if self.encoder.input_dim != self.input_dim:
            if self.encoder.input_dim != DEFAULT_INPUT_DIM:
                raise ConfigError(
                    f"CTCConfig.encoder.input_dim={self.encoder.input_dim} differs from "
                    f"input_dim={self.input_dim}"
                )
            object.__setattr__(self, "encoder", dataclasses.replace(self.encoder, input_dim=self.input_dim))

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts (JSON/YAML-able); :meth:`from_dict` inverts it."""
        return to_mapping(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "CTCConfig") -> CTCConfig:
        """Strict: an unknown key anywhere (``encoder.d_modle``) is a :class:`ConfigError` naming it."""
        return from_mapping(cls, data, where)


class CTCModel(FeatureNormalization):
    """Global feature normalisation, SpecAugment in training, an encoder, dropout, a Linear to the vocabulary.

    Args:
        encoder: ``(x (B, T, F), lens (B,)) -> (y (B, T', encoder_dim), lens' (B,))``.
        encoder_dim: D, the width of the encoder's output.
        vocab_size: V, including the blank.
        blank: the blank id.
        feature_mean, feature_std: ``(F,)`` per-bin statistics; features become ``(x - mean) / std``.
            Stored as buffers (saved in the state dict); None for no normalisation (then no buffers exist).
        specaugment: ``(x (B, T, F), lens (B,)) -> x``, applied to normalised features in training mode only.
        dropout: dropout on the encoder output before the output Linear.
    """

    def __init__(
        self,
        encoder: nn.Module,
        encoder_dim: int,
        vocab_size: int,
        *,
        blank: int = 0,
        feature_mean: Tensor | None = None,
        feature_std: Tensor | None = None,
        specaugment: nn.Module | None = None,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if not 0 <= blank < vocab_size:
            raise ConfigError(f"blank={blank} must be in [0, vocab_size={vocab_size})")
        self.register_feature_stats(feature_mean, feature_std)
        self.encoder = encoder
        self.specaugment = specaugment
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(encoder_dim, vocab_size)
        self.vocab_size = vocab_size
        self.blank = blank

    def _log_probs(self, features: Tensor, feature_lens: Tensor) -> tuple[Tensor, Tensor]:
        x = self.normalize(features)
        if self.training and self.specaugment is not None:
            x = self.specaugment(x, feature_lens)
        y, out_lens = self.encoder(x, feature_lens)
        logits = self.output(self.dropout(y))
        return logits.float().log_softmax(dim=-1), out_lens

    def encode(self, features: Tensor, feature_lens: Tensor) -> tuple[Tensor, Tensor]:
        """``features (B, T, F)``, ``feature_lens (B,)`` -> ``log_probs (B, T', V)`` float32, ``lens (B,)``.

        For decoding: never applies SpecAugment (call ``eval()`` first to disable dropout too).
        """
        x = self.normalize(features)
        y, out_lens = self.encoder(x, feature_lens)
        return self.output(self.dropout(y)).float().log_softmax(dim=-1), out_lens

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """CTC loss of a padded batch.

        ``batch``: ``features (B, T, F)`` float, ``feature_lens (B,)`` long, ``tokens (B, U)`` long padded
        with -1, ``token_lens (B,)`` long; other keys are ignored.

        Returns ``{"loss", "log_probs" (B, T', V), "out_lens" (B,)}``. ``loss`` is the CTC negative
        log-likelihood summed over the batch and divided by B (the mean per utterance, *not* normalised by
        target length; ``zero_infinity=True`` zeroes utterances whose targets cannot fit their frames).
        Log-probs and the loss are computed in float32 even under autocast.
        """
        features, feature_lens, tokens, token_lens = speech_batch(batch)
        log_probs, out_lens = self._log_probs(features, feature_lens)
        targets = tokens.masked_fill(tokens < 0, 0)
        with torch.autocast(device_type=log_probs.device.type, enabled=False):
            loss = F.ctc_loss(
                log_probs.transpose(0, 1),  # (T', B, V)
                targets,
                out_lens,
                token_lens,
                blank=self.blank,
                reduction="sum",
                zero_infinity=True,
            ) / max(features.size(0), 1)
        return {"loss": loss, "log_probs": log_probs, "out_lens": out_lens}


def ctc_model_from_config(
    config: CTCConfig, feature_mean: Tensor | None = None, feature_std: Tensor | None = None
) -> CTCModel:
    """Build the Conformer CTC model of ``config``.

    Without statistics the normalisation buffers start as mean 0, std 1 (identity), so every model built
    here has the same state-dict keys and a checkpoint's statistics load into it.
    """
    if feature_mean is None and feature_std is None:
        feature_mean = torch.zeros(config.input_dim)
        feature_std = torch.ones(config.input_dim)
    if feature_mean is not None and feature_mean.shape != (config.input_dim,):
        raise ConfigError(f"feature_mean must be ({config.input_dim},), got {tuple(feature_mean.shape)}")
    specaugment = None
    if config.specaugment is not None:
        specaugment = SpecAugment.from_config(config.specaugment)
    return CTCModel(
        config.encoder.build(),
        config.encoder.d_model,
        config.vocab_size,
        blank=config.blank,
        feature_mean=feature_mean,
        feature_std=feature_std,
        specaugment=specaugment,
        dropout=config.encoder.dropout,
    )
