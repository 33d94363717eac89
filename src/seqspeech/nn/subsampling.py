"""Convolutional front-end that shortens a feature sequence before the encoder (ESPnet `Conv2dSubsampling`).

Every convolution is unpadded, so output frame ``i`` only sees input frames ``[s*i, s*i + k - 1]``: a valid
output frame never reads a padded input frame, and :meth:`Conv2dSubsampling.output_lengths` is exact.
Shapes: B batch, T input frames, F features per frame, T' output frames, D model width.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqspeech.errors import ConfigError

# (kernel, stride) of each Conv2d for each supported subsampling factor (ESPnet's Conv2dSubsampling{,6,8}).
SUBSAMPLING_LAYERS: dict[int, tuple[tuple[int, int], ...]] = {
    4: ((3, 2), (3, 2)),
    6: ((3, 2), (5, 3)),
    8: ((3, 2), (3, 2), (3, 2)),
}


def conv_output_length(length: int, kernel: int, stride: int) -> int:
    """Length after one unpadded convolution: ``(length - kernel) // stride + 1`` (0 when too short)."""
    return max((length - kernel) // stride + 1, 0)


class Conv2dSubsampling(nn.Module):
    """Conv2d(k, s) + ReLU layers over (time, frequency), then a Linear to ``d_model``.

    ``factor`` is 4 (two k=3, s=2 convolutions), 6 (k=3, s=2 then k=5, s=3) or 8 (three k=3, s=2). Every
    convolution has ``channels`` output channels (``d_model`` when None, as in ESPnet; fewer channels make the
    front-end much cheaper, since the second convolution dominates its cost).
    """

    def __init__(self, input_dim: int, d_model: int, factor: int = 4, channels: int | None = None) -> None:
        super().__init__()
        if factor not in SUBSAMPLING_LAYERS:
            raise ConfigError(f"subsampling factor must be one of {sorted(SUBSAMPLING_LAYERS)}, got {factor}")
        channels = d_model if channels is None else channels
        if channels < 1:
            raise ConfigError(f"subsampling channels must be positive, got {channels}")
        self.layers = SUBSAMPLING_LAYERS[factor]
        self.factor = factor
        freq = input_dim
        convs: list[nn.Module] = []
        in_channels = 1
        for kernel, stride in self.layers:
            convs += [nn.Conv2d(in_channels, channels, kernel, stride), nn.ReLU()]
            in_channels = channels
            freq = conv_output_length(freq, kernel, stride)
        if freq < 1:
            raise ConfigError(f"input_dim={input_dim} is too small for subsampling factor {factor}")
        self.conv = nn.Sequential(*convs)
        self.out = nn.Linear(channels * freq, d_model)

    @property
    def min_input_length(self) -> int:
        """The shortest input (in frames) that yields one output frame."""
        length = 1
        for kernel, stride in reversed(self.layers):
            length = (length - 1) * stride + kernel
        return length

    def output_lengths(self, lens: Tensor) -> Tensor:
        """``(B,)`` input lengths -> ``(B,)`` output lengths (exact; 0 below the receptive field)."""
        for kernel, stride in self.layers:
            lens = torch.div(lens - kernel, stride, rounding_mode="floor") + 1
        return lens.clamp(min=0)

    def forward(self, x: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        """``x (B, T, F)``, ``lens (B,)`` -> ``y (B, T', D)``, ``lens' (B,)``."""
        if x.size(1) < self.min_input_length:
            raise ValueError(
                f"input has {x.size(1)} frames; subsampling by {self.factor} needs at least "
                f"{self.min_input_length}"
            )
        y = self.conv(x.unsqueeze(1))  # (B, D, T', F')
        b, c, t, f = y.shape
        y = self.out(y.transpose(1, 2).reshape(b, t, c * f))
        return y, self.output_lengths(lens)
