"""What every recogniser we train (CTC, LAS, AED) shares: global feature normalisation, the batch contract and
the decoder's teacher-forcing inputs and targets.

Feature statistics live in the model as buffers ``feature_mean`` / ``feature_std`` (None when absent), so they
travel with the weights; :class:`FeatureNormalization` registers, validates and applies them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..losses import IGNORE_ID
from ..nn.masks import make_pad_mask


def checked_feature_stats(mean: Tensor | None, std: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
    """Validate ``(F,)`` statistics (both or neither; finite; std > 0); float32 copies."""
    if (mean is None) != (std is None):
        raise ConfigError("feature_mean and feature_std must be given together")
    if mean is None or std is None:
        return None, None
    if mean.dim() != 1 or mean.shape != std.shape:
        raise ConfigError(
            f"feature_mean and feature_std must both be (F,), got {tuple(mean.shape)} and {tuple(std.shape)}"
        )
    if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
        raise ConfigError("feature statistics contain NaN or inf")
    if (std <= 0).any():
        raise ConfigError("feature_std must be positive in every bin")
    return mean.detach().float().clone(), std.detach().float().clone()


class FeatureNormalization(nn.Module):
    """Mixin for models: ``register_feature_stats(mean, std)`` in ``__init__``, then ``normalize(features)``."""

    feature_mean: Tensor | None
    feature_std: Tensor | None

    def register_feature_stats(self, mean: Tensor | None, std: Tensor | None) -> None:
        mean, std = checked_feature_stats(mean, std)
        self.register_buffer("feature_mean", mean)
        self.register_buffer("feature_std", std)

    def normalize(self, features: Tensor) -> Tensor:
        """``(B, T, F)`` -> ``(B, T, F)`` with the global statistics applied (identity without them)."""
        if self.feature_mean is None:
            return features
        if features.size(-1) != self.feature_mean.numel():
            raise ValueError(
                f"features have {features.size(-1)} bins, the model's statistics {self.feature_mean.numel()}"
            )
        return (features - self.feature_mean) / self.feature_std


def speech_batch(batch: dict) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``features (B, T, F)``, ``feature_lens (B,)``, ``tokens (B, U)`` (padded with -1), ``token_lens (B,)`` of a
    collated batch, with their shapes checked."""
    features, feature_lens = batch["features"], batch["feature_lens"]
    tokens, token_lens = batch["tokens"], batch["token_lens"]
    if tokens.dim() != 2 or tokens.size(0) != features.size(0) or token_lens.shape != (tokens.size(0),):
        raise ValueError(
            f"expected tokens (B, U) and token_lens (B,) for B={features.size(0)}, got "
            f"{tuple(tokens.shape)} and {tuple(token_lens.shape)}"
        )
    return features, feature_lens, tokens, token_lens


def decoder_io(tokens: Tensor, token_lens: Tensor, sos_eos: int, vocab_size: int) -> tuple[Tensor, Tensor]:
    """Teacher forcing for attention decoders: ``tokens (B, U)`` padded with -1, ``token_lens (B,)`` -> decoder
    inputs ``[sos] + y`` (padded with ``sos_eos``, a harmless id: causal masks and the targets' -1 keep pads out)
    and targets ``y + [eos]`` (padded with -1), each ``(B, U+1)``. One id serves as start and end."""
    if tokens.dim() != 2 or token_lens.shape != (tokens.size(0),):
        raise ValueError(
            f"expected tokens (B, U) and token_lens (B,), got {tuple(tokens.shape)} and {tuple(token_lens.shape)}"
        )
    batch, width = tokens.shape
    token_lens = token_lens.to(device=tokens.device, dtype=torch.long)
    if batch and (int(token_lens.min()) < 0 or int(token_lens.max()) > width):
        raise ValueError(f"token_lens must lie in [0, U={width}], got {token_lens.tolist()}")
    valid = ~make_pad_mask(token_lens, width)
    bad = valid & ((tokens < 0) | (tokens >= vocab_size))
    if bad.any():
        raise ValueError(f"token ids must lie in [0, {vocab_size}), got {tokens[bad].unique().tolist()}")
    body = tokens.masked_fill(~valid, sos_eos)
    inputs = torch.cat([body.new_full((batch, 1), sos_eos), body], dim=1)
    targets = torch.cat([tokens.masked_fill(~valid, IGNORE_ID), tokens.new_full((batch, 1), IGNORE_ID)], dim=1)
    targets.scatter_(1, token_lens.unsqueeze(1), sos_eos)
    return inputs, targets
