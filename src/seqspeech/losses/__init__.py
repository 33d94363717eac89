"""Training losses shared across model families (CTC comes from torch)."""

from seqspeech.losses.guided_attention import diagonal_prior, guided_attention_loss
from seqspeech.losses.label_smoothing import IGNORE_ID, label_smoothed_nll
from seqspeech.losses.rnnt import prune_band, pruned_rnnt_loss, rnnt_loss, simple_rnnt_loss

__all__ = [
    "IGNORE_ID",
    "diagonal_prior",
    "guided_attention_loss",
    "label_smoothed_nll",
    "prune_band",
    "pruned_rnnt_loss",
    "rnnt_loss",
    "simple_rnnt_loss",
]
