"""Guided attention loss (Tachibana et al. 2017): a diagonal prior that pulls attention alignments onto the diagonal
early in training; usable by every attention model (LAS, AED, Tacotron 2). Summed per utterance, averaged over the
batch, like the other sequence losses.
"""

from __future__ import annotations

import torch
from torch import Tensor

from seqspeech.nn.masks import make_pad_mask


def diagonal_prior(out_lens: Tensor, in_lens: Tensor, out_max: int, in_max: int, sigma: float) -> Tensor:
    """Guided-attention penalty ``W (B, U, T)``: ``1 - exp(-(u/U_b - t/T_b)^2 / (2 sigma^2))``, 0 on padding.

    Positions are frame centres, ``(u + 0.5) / U_b`` and ``(t + 0.5) / T_b``, so a square identity alignment sits
    exactly on the zero of the penalty.
    """
    device = out_lens.device
    u = (torch.arange(out_max, device=device, dtype=torch.float32)[None, :] + 0.5) / out_lens.clamp(min=1)[:, None]
    t = (torch.arange(in_max, device=device, dtype=torch.float32)[None, :] + 0.5) / in_lens.clamp(min=1)[:, None]
    w = 1.0 - torch.exp(-((u[:, :, None] - t[:, None, :]) ** 2) / (2.0 * sigma * sigma))
    valid = ~make_pad_mask(out_lens, out_max)[:, :, None] & ~make_pad_mask(in_lens, in_max)[:, None, :]
    return w * valid


def guided_attention_loss(weights: Tensor, out_lens: Tensor, in_lens: Tensor, sigma: float = 0.2) -> Tensor:
    """Guided attention loss (Tachibana et al. 2017) for alignments ``weights (B, U, T)`` (rows are output steps).

    The sum over valid cells of ``weights * W`` (see :func:`diagonal_prior`) divided by the batch size: each
    output step contributes its attention-weighted penalty ``sum_t weights[u, t] * W[u, t]`` (in [0, 1) for a
    row that sums to 1), so the loss scales like the token-summed losses. It is 0 for an alignment on the diagonal
    and grows as the attention strays from it; padded rows and frames are ignored. Computed in float32.

    A row whose weights sum to less than 1 (a monotonic or MoChA attention that has not stopped anywhere) counts
    its missing mass as fully off the diagonal (penalty 1). Without that the loss is lowest when the attention
    attends nothing, and a monotonic attention learns exactly that: a MoChA LAS trained 700 steps with the plain
    loss had stop probabilities below 0.23 everywhere, so hard decoding attended no frame at all.
    """
    if weights.dim() != 3:
        raise ValueError(f"expected weights (B, U, T), got {tuple(weights.shape)}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    batch, out_max, in_max = weights.shape
    out_lens, in_lens = out_lens.to(weights.device), in_lens.to(weights.device)
    w = diagonal_prior(out_lens, in_lens, out_max, in_max, sigma)
    weights = weights.float()
    valid_rows = ~make_pad_mask(out_lens, out_max)
    missing = (1.0 - weights.sum(dim=2)).clamp(min=0.0) * valid_rows  # (B, U): mass the row did not place
    per_row = (weights * w).sum(dim=2) + missing  # (B, U): penalty mass of each output step
    per_utt = per_row.sum(dim=1)  # summed over the U_b valid steps (padding rows are 0)
    return per_utt.sum() / max(batch, 1)
