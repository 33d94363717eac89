"""Convolution stacks the TTS models share: masked conv + batch norm stacks (Tacotron 2's encoder) and the
Tacotron 2 post-net (also FastSpeech 2's)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqspeech.errors import ConfigError
from seqspeech.nn.masks import make_pad_mask

__all__ = ["MaskedConvStack", "Postnet"]


def _batch_norm(bn: nn.BatchNorm1d, x: Tensor, train: bool) -> Tensor:
    """``bn(x)`` with the module's own semantics when ``train``, else its running statistics (nothing written)."""
    if train:
        return bn(x)
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


class MaskedConvStack(nn.Module):
    """Convolutions ``channels[i] -> channels[i+1]`` of width ``kernel_size``, each followed by batch norm, the
    activation (all but the last layer when ``last_activation=False``) and dropout.

    ``forward(x (B, C_0, T), lens (B,) | None, train=None) -> (B, C_n, T)``: every layer's input is zeroed at frames
    ``t >= lens[b]``, so a padded utterance gives exactly what it gives alone (the convolution zero-pads too).
    ``train=None`` follows the module's mode; ``train=False`` uses running statistics and no dropout.
    """

    def __init__(
        self,
        channels: list[int],
        kernel_size: int,
        activation: str = "relu",
        dropout: float = 0.5,
        last_activation: bool = True,
    ) -> None:
        super().__init__()
        if len(channels) < 2 or kernel_size % 2 == 0:
            raise ConfigError(f"need >= 2 channel sizes and an odd kernel, got {channels}, {kernel_size}")
        if activation not in ("relu", "tanh"):
            raise ConfigError(f"activation must be 'relu' or 'tanh', got {activation!r}")
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2) for c_in, c_out in zip(channels, channels[1:])
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(c) for c in channels[1:])
        self.activation = torch.relu if activation == "relu" else torch.tanh
        self.dropout = dropout
        self.last_activation = last_activation

    @property
    def context(self) -> int:
        """Frames read on each side of an output frame."""
        return len(self.convs) * (self.convs[0].kernel_size[0] // 2)

    def forward(self, x: Tensor, lens: Tensor | None = None, train: bool | None = None) -> Tensor:
        train = self.training if train is None else train
        pad = None if lens is None else make_pad_mask(lens.to(x.device), x.size(-1)).unsqueeze(1)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            if pad is not None:
                x = x.masked_fill(pad, 0.0)
            x = _batch_norm(norm, conv(x), train)
            if self.last_activation or i < len(self.convs) - 1:
                x = self.activation(x)
            x = F.dropout(x, self.dropout, train)
        return x


class Postnet(nn.Module):
    """Residual mel refinement: ``(mel (B, M, T), lens (B,) | None) -> residual (B, M, T)``; ``layers`` convolutions
    (``dim`` channels, tanh on all but the last, batch norm, dropout). :attr:`context` frames of receptive field on
    each side of a frame."""

    def __init__(self, n_mels: int, dim: int, layers: int, kernel_size: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.stack = MaskedConvStack([n_mels] + [dim] * (layers - 1) + [n_mels], kernel_size, "tanh", dropout,
                                     last_activation=False)

    @property
    def context(self) -> int:
        return self.stack.context

    def forward(self, mel: Tensor, lens: Tensor | None = None, train: bool | None = None) -> Tensor:
        return self.stack(mel, lens, train)
