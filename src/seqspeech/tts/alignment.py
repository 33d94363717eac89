"""Token durations for non-autoregressive TTS: the length regulator, duration scaling, token-level averages, and
per-token frame counts from a CTC forced alignment.

Everything is vectorised over frames (``torch.searchsorted`` on cumulative durations, ``scatter_add``); nothing loops
in Python over frames. Shapes: B batch, U tokens, T mel frames, D channels. Durations are mel frames per token
(LongTensor, >= 0); a token with duration 0 is skipped by the length regulator.

Durations are predicted in the log domain as ``log(d + 1)`` (:func:`durations_to_log`; FastSpeech 2's target,
defined for d = 0), inverted by ``scale_durations(..., log_domain=True)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import ConfigError, DataError
from ..nn.masks import make_pad_mask

__all__ = [
    "average_by_duration",
    "durations_from_frame_labels",
    "durations_to_log",
    "length_regulate",
    "scale_durations",
]


def _check_durations(durations: Tensor, batch: int | None = None, tokens: int | None = None) -> None:
    if durations.dim() != 2:
        raise ValueError(f"durations must be (B, U), got shape {tuple(durations.shape)}")
    if (batch is not None and durations.size(0) != batch) or (tokens is not None and durations.size(1) != tokens):
        raise ValueError(f"durations {tuple(durations.shape)} do not match ({batch}, {tokens}) tokens")
    if durations.dtype.is_floating_point or durations.dtype == torch.bool:
        raise ValueError(f"durations must be integer frame counts, got dtype {durations.dtype}")
    if durations.numel() and int(durations.min()) < 0:
        raise DataError(f"durations must be >= 0 frames, got a minimum of {int(durations.min())}")


def _frame_token_index(durations: Tensor, frames: int) -> Tensor:
    """``durations (B, U)`` -> ``(B, frames)`` long: the token each frame belongs to, ``U`` past the last token."""
    ends = durations.long().cumsum(dim=1)  # (B, U): token u covers frames [ends[u-1], ends[u])
    t = torch.arange(frames, device=durations.device).expand(durations.size(0), frames).contiguous()
    return torch.searchsorted(ends, t, right=True)  # first token whose end is > t


def length_regulate(x: Tensor, durations: Tensor, max_len: int | None = None) -> tuple[Tensor, Tensor]:
    """Repeat each token's vector by its duration (FastSpeech's length regulator).

    Args:
        x: ``(B, U, D)`` token vectors.
        durations: ``(B, U)`` long frames per token (>= 0; padded tokens must have 0).
        max_len: the output length T; None: the longest ``durations.sum(1)``. Shorter outputs are zero-padded;
            an utterance longer than ``max_len`` is cut to it (and its length clamped).

    Returns ``(y (B, T, D), y_lens (B,) long)`` with frames past ``y_lens`` exactly zero.
    """
    if x.dim() != 3:
        raise ValueError(f"x must be (B, U, D), got shape {tuple(x.shape)}")
    _check_durations(durations, x.size(0), x.size(1))
    lens = durations.long().sum(dim=1)
    frames = (int(lens.max()) if lens.numel() else 0) if max_len is None else int(max_len)
    if frames < 0:
        raise ConfigError(f"max_len must be >= 0, got {max_len}")
    lens = lens.clamp(max=frames)
    if x.size(1) == 0 or frames == 0:
        return x.new_zeros(x.size(0), frames, x.size(2)), lens
    index = _frame_token_index(durations, frames).clamp(max=x.size(1) - 1)  # (B, T)
    y = torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.size(2)))
    return y.masked_fill(make_pad_mask(lens, frames).unsqueeze(-1), 0.0), lens


def durations_to_log(durations: Tensor) -> Tensor:
    """Frame counts -> the duration predictor's float target ``log(d + 1)``; same shape."""
    return torch.log1p(durations.float())


def scale_durations(durations: Tensor, speed: float = 1.0, *, log_domain: bool = False) -> Tensor:
    """Predicted durations -> integer frame counts for a speaking rate (``speed > 1`` is faster).

    ``durations`` are float frames, or ``log(d + 1)`` with ``log_domain=True``; any shape. Each token's frames
    are ``round(d / speed)`` (half up), except that a token whose *unscaled* prediction rounds to at least one
    frame keeps at least one frame at any speed: speeding up never deletes a sound, while a token the model
    predicts as 0 frames (d < 0.5, e.g. a silent word boundary) stays 0. Negative predictions count as 0.
    Returns a long tensor of the same shape.
    """
    if not isinstance(speed, (int, float)) or isinstance(speed, bool) or not speed > 0 or speed == float("inf"):
        raise ConfigError(f"speed must be a positive finite number, got {speed!r}")
    frames = torch.expm1(durations.float()) if log_domain else durations.float()
    frames = frames.clamp(min=0.0)
    if not bool(torch.isfinite(frames).all()):
        raise DataError("predicted durations contain NaN or inf")
    present = torch.floor(frames + 0.5) >= 1
    scaled = torch.floor(frames / speed + 0.5)
    return torch.where(present, scaled.clamp(min=1.0), torch.zeros_like(scaled)).long()


def average_by_duration(frame_values: Tensor, durations: Tensor, ignore_zeros: bool = False) -> Tensor:
    """Token-level averages of a frame-level signal (FastPitch's pitch/energy targets).

    Args:
        frame_values: ``(B, T)`` float (e.g. F0 in Hz with 0 at unvoiced frames, or frame energy).
        durations: ``(B, U)`` long, summing to at most T per utterance (frames past the sum are ignored).
        ignore_zeros: average only the non-zero frames of each token (unvoiced F0 frames are 0).

    Returns ``(B, U)`` float: the mean over each token's frames; 0 for a token with no (non-zero) frame.
    """
    if frame_values.dim() != 2:
        raise ValueError(f"frame_values must be (B, T), got shape {tuple(frame_values.shape)}")
    _check_durations(durations, frame_values.size(0))
    batch, frames = frame_values.shape
    n_tokens = durations.size(1)
    totals = durations.sum(dim=1)
    if totals.numel() and int(totals.max()) > frames:
        raise DataError(f"durations sum to {totals.tolist()} frames but only {frames} frames are given")
    values = frame_values.float()
    if n_tokens == 0:
        return values.new_zeros(batch, 0)
    index = _frame_token_index(durations, frames)  # (B, T) in [0, U]; U collects frames past the last token
    weight = (values != 0).float() if ignore_zeros else torch.ones_like(values)
    sums = values.new_zeros(batch, n_tokens + 1).scatter_add_(1, index, values * weight)
    counts = values.new_zeros(batch, n_tokens + 1).scatter_add_(1, index, weight)
    return (sums / counts.clamp(min=1.0))[:, :n_tokens]


def durations_from_frame_labels(frame_labels: Tensor, n_tokens: int, blank: int = 0) -> Tensor:
    """Per-token frame counts from a CTC forced alignment (:func:`seqspeech.decoding.ctc.ctc_forced_align`).

    ``frame_labels (T,)``: the token or ``blank`` each frame emits. A token starts at a non-blank frame whose label
    differs from the previous frame's (so a repeated token needs a blank between its two occurrences, exactly as
    CTC spells it). Blank frames go to the token they follow; leading blanks go to the first token. The result
    ``(n_tokens,)`` long sums to T, and every token gets at least one frame.

    Raises:
        DataError: the labels spell a different number of tokens than ``n_tokens``.
    """
    labels = torch.as_tensor(frame_labels).reshape(-1).long()
    frames = labels.numel()
    if n_tokens < 0:
        raise ValueError(f"n_tokens must be >= 0, got {n_tokens}")
    starts = labels != blank
    if frames > 1:
        starts[1:] &= labels[1:] != labels[:-1]
    found = int(starts.sum())
    if found != n_tokens:
        raise DataError(f"the {frames} frame labels spell {found} tokens, expected {n_tokens}")
    if n_tokens == 0 and frames:
        raise DataError(f"{frames} frames cannot be shared among 0 tokens")
    token = (starts.long().cumsum(0) - 1).clamp(min=0)  # leading blanks (-1) join the first token
    return torch.bincount(token, minlength=n_tokens)[:n_tokens] if frames else labels.new_zeros(n_tokens)
