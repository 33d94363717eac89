"""Recurrent encoder blocks: the pyramidal (Bi)LSTM listener of LAS (Chan et al., 2016), offline and streaming.

Shapes: B batch, T input frames, F input width, T' output frames, H hidden units per direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqspeech.errors import ConfigError
from seqspeech.nn.masks import make_pad_mask

__all__ = ["ListenerStreamState", "PyramidalLSTMListener", "pair_frames", "run_packed"]


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
                y, (h, c) = lstm(y, hidden[i])
                hidden[i] = (h, c)
            else:
                y = y.new_zeros(y.size(0), 0, lstm.hidden_size)
        return y, ListenerStreamState(hidden=hidden, pending=pending, seen=seen)


def run_packed(lstm: nn.LSTM, x: Tensor, lens: Tensor) -> Tensor:
    """Run ``lstm`` over the valid frames only; ``(B, T, D_in)`` -> ``(B, T, D_out)`` with zeros on padding."""
    batch, frames, _ = x.shape
    out_dim = lstm.hidden_size * (2 if lstm.bidirectional else 1)
    if batch == 0 or frames == 0:
        return x.new_zeros(batch, frames, out_dim)
    packed = pack_padded_sequence(x, lens.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
    y, _ = lstm(packed)
    y, _ = pad_packed_sequence(y, batch_first=True, total_length=frames)
    return y.masked_fill((lens == 0).view(batch, 1, 1), 0.0)


# ----------------------------------------------------------------
# Attention registry
