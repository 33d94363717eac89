"""Logit filters: in-place edits of next-token logits (N, V) given the token history (N, L).

They are vectorised over the batch (no per-row Python loops), so beam search over many inputs stays cheap.
"""

from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

NEG_INF = float("-inf")


class SuppressTokens:
    """Never emit these token ids."""

    def __init__(self, token_ids: Iterable[int]) -> None:
        self.token_ids = sorted(set(int(t) for t in token_ids))
        self._index: Tensor | None = None

    def apply(self, logits: Tensor, tokens: Tensor) -> None:
        if self.token_ids:
            if self._index is None or self._index.device != logits.device:
                self._index = torch.tensor(self.token_ids, device=logits.device)
            logits.index_fill_(1, self._index, NEG_INF)


class SuppressBlank:
    """At the first sampled position, forbid blank starts (a lone space, or ending at once)."""

    def __init__(self, blank_ids: Iterable[int], sample_begin: int) -> None:
        self.suppress = SuppressTokens(blank_ids)
        self.sample_begin = sample_begin

    def apply(self, logits: Tensor, tokens: Tensor) -> None:
        if tokens.shape[1] == self.sample_begin:
            self.suppress.apply(logits, tokens)


class ApplyTimestampRules:
    """Whisper's timestamp grammar.

    Timestamps come in pairs (end of one segment, start of the next) except right before end-of-text; they never
    decrease and every segment has non-zero length; the first token is a timestamp no later than
    `max_initial_timestamp_index`; and when the total probability of timestamps beats every single text token, a
    timestamp is forced.
    """

    def __init__(
        self,
        *,
        sample_begin: int,
        timestamp_begin: int,
        eot: int,
        no_timestamps: int | None,
        max_initial_timestamp_index: int | None,
    ) -> None:
        self.sample_begin = sample_begin
        self.timestamp_begin = timestamp_begin
        self.eot = eot
        self.no_timestamps = no_timestamps
        self.max_initial_timestamp_index = max_initial_timestamp_index

    def apply(self, logits: Tensor, tokens: Tensor) -> None:
        tb = self.timestamp_begin
        if self.no_timestamps is not None:
            logits[:, self.no_timestamps] = NEG_INF

        sampled = tokens[:, self.sample_begin :]
        n_rows, n_sampled = sampled.shape
        vocab = torch.arange(logits.shape[-1], device=logits.device)
        if n_sampled > 0:
            is_ts = sampled >= tb
            last_ts = is_ts[:, -1]
            penult_ts = is_ts[:, -2] if n_sampled >= 2 else torch.ones_like(last_ts)
            # after a pair (or a lone leading timestamp) text must follow; after a single one, a timestamp or end
            logits.masked_fill_((last_ts & penult_ts)[:, None] & (vocab >= tb), NEG_INF)
            logits.masked_fill_((last_ts & ~penult_ts)[:, None] & (vocab < self.eot), NEG_INF)
            # timestamps never decrease; a segment that just closed may end the output at the same time,
            # otherwise the next timestamp must be strictly later (non-zero segment length)
            last_value = torch.where(is_ts, sampled, torch.full_like(sampled, -1)).amax(dim=1)
            has_ts = last_value >= 0
            limit = torch.where(last_ts & ~penult_ts, last_value, last_value + 1)
            forbid = has_ts[:, None] & (vocab >= tb) & (vocab < limit[:, None])
            logits.masked_fill_(forbid, NEG_INF)
        else:
            # the output starts with a timestamp, no later than the allowed initial one
            logits[:, :tb] = NEG_INF
            if self.max_initial_timestamp_index is not None:
                logits[:, tb + self.max_initial_timestamp_index + 1 :] = NEG_INF

        logprobs = F.log_softmax(logits.float(), dim=-1)
        timestamp_logprob = logprobs[:, tb:].logsumexp(dim=-1)
        max_text_logprob = logprobs[:, :tb].max(dim=-1).values
        logits.masked_fill_((timestamp_logprob > max_text_logprob)[:, None] & (vocab < tb), NEG_INF)
