"""Length masks shared by encoders and losses."""

from __future__ import annotations

import torch
from torch import Tensor


def make_pad_mask(lens: Tensor, max_len: int | None = None) -> Tensor:
    """``lens (B,)`` -> ``(B, T)`` bool mask, True at padded positions (``t >= lens[b]``)."""
    max_len = int(lens.max().item()) if max_len is None else max_len
    return torch.arange(max_len, device=lens.device).unsqueeze(0) >= lens.unsqueeze(1)


def wait_k_visible(first: int, length: int, frames: int, k: int, device: torch.device | str | None = None) -> Tensor:
    """``(length, frames)`` bool, True where decoder position ``first + i`` may see source frame ``j`` under a
    wait-k policy: ``j < first + i + k`` (the token after position ``p`` is written having read ``p + k`` frames;
    position 0 is the start token)."""
    reach = torch.arange(first, first + length, device=device) + k
    return torch.arange(frames, device=device)[None, :] < reach[:, None]
