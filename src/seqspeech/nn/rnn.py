"""Recurrent encoder blocks: the pyramidal (Bi)LSTM listener of LAS (Chan et al., 2016), offline and streaming.

Shapes: B batch, T input frames, F input width, T' output frames, H hidden units per direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqspeech.errors import ConfigError
from seqspeech.nn.masks import make_pad_mask
from seqspeech.nn.precision import lstm_precision

__all__ = ["ListenerStreamState", "PyramidalLSTMListener", "pair_frames", "reverse_padded", "run_packed"]


def pair_frames(x: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
    """Concatenate adjacent frame pairs: ``x (B, T, D)`` -> ``(B, T2, 2D)``, ``lens`` -> ``lens // 2``.

    An odd last frame is dropped, except that a length-1 sequence keeps its frame paired with zeros (so non-empty
    input never becomes empty). ``T2 = max(lens')``; frames past each new length are zero.
    """
    batch, frames, dim = x.shape
    if frames % 2:
        x = F.pad(x, (0, 0, 0, 1))
    x = x.reshape(batch, (frames + 1) // 2, 2 * dim)
    new_lens = torch.where(lens == 1, lens, lens // 2)
    keep = int(new_lens.max()) if batch else 0
    x = x[:, :keep]
    return x.masked_fill(make_pad_mask(new_lens, keep).unsqueeze(-1), 0.0), new_lens


@dataclass
class ListenerStreamState:
    """Incremental state of a unidirectional listener (batch of B streams advancing together).

    ``hidden[i]``: layer i's LSTM ``(h, c)``, each ``(1, B, H)``, or None before its first frame;
    ``pending[i]``: a pyramidal layer's buffered odd frame ``(B, 1, D_in)`` or None; ``seen[i]``: frames received
    at layer i's input (before pairing).
    """

    hidden: list[tuple[Tensor, Tensor] | None]
    pending: list[Tensor | None]
    seen: list[int]


class PyramidalLSTMListener(nn.Module):
    """LSTM layers whose last ``pyramid_levels`` read concatenated frame pairs: ``(x, lens) -> (y, lens')``.

    Args:
        input_dim: F.
        hidden: units per direction; the output width is ``hidden * (2 if bidirectional else 1)``.
        num_layers: LSTM layers.
        pyramid_levels: how many of the last layers halve time (``0 <= pyramid_levels <= num_layers``).
        bidirectional: False for a causal listener (then :meth:`infer` streams it).
        dropout: between layers, in training only.

    Padding never leaks into valid frames (packed sequences), and padded output frames are exactly zero.
    """

    def __init__(
        self,
        input_dim: int,
        hidden: int,
        num_layers: int = 3,
        pyramid_levels: int = 2,
        bidirectional: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if num_layers < 1 or not 0 <= pyramid_levels <= num_layers:
            raise ConfigError(
                f"need num_layers >= 1 and 0 <= pyramid_levels <= num_layers, got {num_layers}, {pyramid_levels}"
            )
        self.pyramidal = [i >= num_layers - pyramid_levels for i in range(num_layers)]
        self.layers = nn.ModuleList()
        width = input_dim
        for is_pyramid in self.pyramidal:
            width = 2 * width if is_pyramid else width
            self.layers.append(nn.LSTM(width, hidden, batch_first=True, bidirectional=bidirectional))
            width = hidden * (2 if bidirectional else 1)
        self.dropout = nn.Dropout(dropout)
        self.input_dim = input_dim
        self.output_dim = width
        self.bidirectional = bidirectional
        self.reduction = 2**pyramid_levels

    def forward(self, x: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        """``x (B, T, F)``, ``lens (B,)`` -> ``y (B, T', D)``, ``lens' (B,)`` (floor halving per pyramid level,
        at least 1 for non-empty input; ``T' = max(lens')``)."""
        if x.dim() != 3 or x.size(-1) != self.input_dim:
            raise ValueError(f"listener expects (B, T, {self.input_dim}) features, got {tuple(x.shape)}")
        if lens.shape != (x.size(0),):
            raise ValueError(f"lens must be (B,)=({x.size(0)},), got {tuple(lens.shape)}")
        if x.size(0) and (int(lens.min()) < 0 or int(lens.max()) > x.size(1)):
            raise ValueError(f"lens must lie in [0, T={x.size(1)}], got {lens.tolist()}")
        lens = lens.to(torch.long)
        y = x.masked_fill(make_pad_mask(lens, x.size(1)).unsqueeze(-1), 0.0)
        for i, lstm in enumerate(self.layers):
            if i:
                y = self.dropout(y)
            if self.pyramidal[i]:
                y, lens = pair_frames(y, lens)
            y = run_packed(lstm, y, lens)
        return y, lens

    def init_stream(self) -> ListenerStreamState:
        """An empty :class:`ListenerStreamState` for :meth:`infer`."""
        n = len(self.layers)
        return ListenerStreamState(hidden=[None] * n, pending=[None] * n, seen=[0] * n)

    def infer(self, x: Tensor, state: ListenerStreamState, final: bool = False) -> tuple[Tensor, ListenerStreamState]:
        """Stream a causal listener: ``x (B, n, F)`` new frames -> ``y (B, m, D)`` the new output frames.

        The concatenation of all outputs equals :meth:`forward` on the whole input (up to float rounding).
        ``final=True`` ends the stream: a buffered odd frame is dropped, or paired with zeros when it is a layer's
        only frame, exactly as :func:`pair_frames` does. Eval mode only (no dropout).
        """
        if self.bidirectional:
            raise ValueError("only a unidirectional listener (bidirectional=False) can stream")
        if self.training:
            raise ValueError("stream in eval mode: call eval() first")
        if x.dim() != 3 or x.size(-1) != self.input_dim:
            raise ValueError(f"listener expects (B, n, {self.input_dim}) features, got {tuple(x.shape)}")
        hidden, pending, seen = list(state.hidden), list(state.pending), list(state.seen)
        y = x
        for i, lstm in enumerate(self.layers):
            seen[i] += y.size(1)
            if self.pyramidal[i]:
                if pending[i] is not None:
                    y = torch.cat([pending[i], y], dim=1)
                    pending[i] = None
                if final and seen[i] == 1 and y.size(1) == 1:
                    y = torch.cat([y, torch.zeros_like(y)], dim=1)
                even = y.size(1) // 2 * 2
                if even < y.size(1) and not final:
                    pending[i] = y[:, even:]
                y = y[:, :even].reshape(y.size(0), even // 2, 2 * y.size(2))
            if y.size(1):
                with lstm_precision(y) as y_in:
                    y, (h, c) = lstm(y_in, hidden[i])
                hidden[i] = (h, c)
            else:
                y = y.new_zeros(y.size(0), 0, lstm.hidden_size)
        return y, ListenerStreamState(hidden=hidden, pending=pending, seen=seen)


def reverse_padded(x: Tensor, lens: Tensor) -> Tensor:
    """Reverse each sequence of ``x (B, T, ...)`` within its length, padding left in place:
    ``y[b, t] = x[b, lens[b] - 1 - t]`` for ``t < lens[b]``, ``y[b, t] = x[b, t]`` after. Its own inverse."""
    frames = x.size(1)
    t = torch.arange(frames, device=x.device).unsqueeze(0)  # (1, T)
    lens = lens.to(x.device).unsqueeze(1)
    index = torch.where(t < lens, lens - 1 - t, t)  # (B, T)
    return x.gather(1, index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


def _lstm_direction(lstm: nn.LSTM, x: Tensor, direction: int) -> Tensor:
    """One direction of a one-layer ``lstm`` scanning ``x (B, T, D_in)`` left to right from a zero state."""
    per_direction = len(lstm._flat_weights) // (2 if lstm.bidirectional else 1)
    params = lstm._flat_weights[direction * per_direction:(direction + 1) * per_direction]
    with lstm_precision(x) as x:
        zeros = x.new_zeros(1, x.size(0), lstm.hidden_size)
        y, _, _ = torch.lstm(x, (zeros, zeros), params, lstm.bias, 1, 0.0, lstm.training, False, True)
    return y


def run_packed(lstm: nn.LSTM, x: Tensor, lens: Tensor) -> Tensor:
    """Run a one-layer ``lstm`` over the valid frames only; ``(B, T, D_in)`` -> ``(B, T, D_out)``, zeros on padding.

    Computes what a packed sequence computes, without packing: the forward direction scans the padded batch (its
    valid outputs never see the padding behind them), the backward direction scans each sequence reversed within
    its length (:func:`reverse_padded`) and is reversed back. Packed sequences take PyTorch's generic CPU path,
    whose backward slices one time step at a time (zero-filling a full-size gradient per slice: 1.4 s of a 1.65 s
    LAS training step on 2 cores, measured); the padded scans take the fused kernel (0.27 s fwd+bwd).
    """
    batch, frames, _ = x.shape
    out_dim = lstm.hidden_size * (2 if lstm.bidirectional else 1)
    if batch == 0 or frames == 0:
        return x.new_zeros(batch, frames, out_dim)
    if lstm.num_layers != 1 or lstm.proj_size or not lstm.batch_first:
        raise ValueError("run_packed needs a one-layer, batch_first LSTM without projections")
    lens = lens.to(torch.long)
    y = _lstm_direction(lstm, x, 0)
    if lstm.bidirectional:
        backward = reverse_padded(_lstm_direction(lstm, reverse_padded(x, lens), 1), lens)
        y = torch.cat([y, backward], dim=-1)
    return y.masked_fill(make_pad_mask(lens.to(y.device), frames).unsqueeze(-1), 0.0)


# ----------------------------------------------------------------
# Attention registry
