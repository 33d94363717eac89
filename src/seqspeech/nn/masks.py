"""Length masks shared by encoders and losses."""

from __future__ import annotations

import torch
from torch import Tensor


def make_pad_mask(lens: Tensor, max_len: int | None = None) -> Tensor:
    """``lens (B,)`` -> ``(B, T)`` bool mask, True at padded positions (``t >= lens[b]``)."""
    max_len = int(lens.max().item()) if max_len is None else max_len
    return torch.arange(max_len, device=lens.device).unsqueeze(0) >= lens.unsqueeze(1)
