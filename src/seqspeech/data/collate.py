"""Batching of :class:`seqspeech.data.dataset.SpeechDataset` items into padded tensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.nn.utils.rnn import pad_sequence

__all__ = ["FEATURE_PAD", "TOKEN_PAD", "collate_speech"]

FEATURE_PAD = 0.0
TOKEN_PAD = -1  # never a valid id; CTC/cross-entropy losses read token_lens or ignore_index=-1


def collate_speech(items: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Pad a list of dataset items (``None`` = unreadable, dropped and counted) into a batch.

    Returns:
        ``features`` ``(B, T, F)`` float32 padded with 0, ``feature_lens`` ``(B,)`` long, ``tokens``
        ``(B, U)`` long padded with -1, ``token_lens`` ``(B,)`` long, ``durations`` ``(B,)`` float32,
        ``ids`` list of B str, ``num_skipped`` (the Nones dropped) and ``empty`` (True when B = 0: every item
        was None; the trainer must skip such a batch).
    """
    kept = [item for item in items if item is not None]
    num_skipped = len(items) - len(kept)
    if not kept:
        return {
            "features": torch.zeros(0, 0, 0),
            "feature_lens": torch.zeros(0, dtype=torch.long),
            "tokens": torch.zeros(0, 0, dtype=torch.long),
            "token_lens": torch.zeros(0, dtype=torch.long),
            "durations": torch.zeros(0),
            "ids": [],
            "num_skipped": num_skipped,
            "empty": True,
        }
    features = [item["features"] for item in kept]
    tokens = [item["tokens"] for item in kept]
    return {
        "features": pad_sequence(features, batch_first=True, padding_value=FEATURE_PAD),
        "feature_lens": torch.tensor([f.shape[0] for f in features], dtype=torch.long),
        "tokens": pad_sequence(tokens, batch_first=True, padding_value=TOKEN_PAD),
        "token_lens": torch.tensor([t.shape[0] for t in tokens], dtype=torch.long),
        "durations": torch.tensor([float(item["duration"]) for item in kept], dtype=torch.float32),
        "ids": [item["id"] for item in kept],
        "num_skipped": num_skipped,
        "empty": False,
    }
