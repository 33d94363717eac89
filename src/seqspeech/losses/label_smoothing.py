"""Label-smoothed cross-entropy for attention decoders (Szegedy et al. 2016).

Returns a loss *summed over tokens and divided by the batch size* (the mean per utterance), the same scale as the CTC
loss of :class:`seqspeech.asr.ctc.CTCModel`, so hybrid losses ``λ·CTC + (1-λ)·attention`` mix like terms.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

IGNORE_ID = -1


def label_smoothed_nll(logits: Tensor, targets: Tensor, smoothing: float = 0.0) -> Tensor:
    """Cross-entropy with label smoothing; ``logits (B, U, V)``, ``targets (B, U)`` padded with -1.

    With smoothing ``ε`` the target distribution is ``(1-ε)`` on the label plus ``ε/V`` everywhere (Szegedy et al.
    2016). Computed in float32; returns the sum over valid tokens divided by ``B``.
    """
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"expected logits (B, U, V) and targets (B, U), got {tuple(logits.shape)} and "
                         f"{tuple(targets.shape)}")
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    loss = F.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE_ID,
        label_smoothing=smoothing, reduction="sum",
    )
    return loss / max(logits.size(0), 1)
