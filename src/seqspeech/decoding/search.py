"""Greedy/sampling and batched beam search over any `Scorer`.

One implementation serves every autoregressive model (Whisper, LAS, AED, MT): the model is adapted to the Scorer
interface, auxiliary scorers (LM, CTC prefix, length bonus) are fused through `ScoredSum`, and model-specific
rules arrive as LogitFilters.

The caller may pass `first_logits`: the primary scorer's logits for the last prompt position, computed while
priming its state (e.g. Whisper reads its no-speech probability from the same forward pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .interfaces import LengthNormalizedRanker, LogitFilter, Ranker, ScoredSum, Scorer


@dataclass
class Hypothesis:
    """A finished (or length-capped) output: sampled tokens without the prompt or end token."""

    tokens: list[int]
    sum_logprob: float


@dataclass
class Step:
    """Everything a search needs to score one step."""

    primary: Scorer
    filters: Sequence[LogitFilter] = ()
    aux: ScoredSum | None = None

    def __call__(
        self, tokens: Tensor, state: Any, aux_state: Any, first_logits: Tensor | None
    ) -> tuple[Tensor, Tensor, Any, Any]:
        """Returns (filtered logits (N, V), log-probs (N, V), state, aux_state)."""
        if first_logits is not None:
            logits = first_logits.float().clone()
        else:
            logits, state = self.primary.score(tokens, state)
            logits = logits.float()
        for f in self.filters:
            f.apply(logits, tokens)
        logprobs = F.log_softmax(logits, dim=-1)
        if self.aux is not None:
            extra, aux_state = self.aux.score(tokens, aux_state)
            logprobs = logprobs + extra
        return logits, logprobs, state, aux_state

    def select(self, state: Any, aux_state: Any, indices: Tensor) -> tuple[Any, Any]:
        state = self.primary.select_state(state, indices)
        if self.aux is not None:
            aux_state = self.aux.select_state(aux_state, indices)
        return state, aux_state


def sample_search(
    step: Step,
    tokens: Tensor,
    state: Any,
    *,
    eot: int,
    max_new_tokens: int,
    temperature: float = 0.0,
    aux_state: Any = None,
    first_logits: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> list[Hypothesis]:
    """Greedy (temperature 0) or ancestral sampling for N independent rows.

    tokens: (N, L0) prompts of equal length. Returns one Hypothesis per row.
    """
    n_rows = tokens.shape[0]
    sum_logprobs = torch.zeros(n_rows, device=tokens.device)
    finished = torch.zeros(n_rows, dtype=torch.bool, device=tokens.device)
    prompt_len = tokens.shape[1]
    for i in range(max_new_tokens):
        logits, logprobs, state, aux_state = step(tokens, state, aux_state, first_logits if i == 0 else None)
        if step.aux is not None:
            logits = logprobs  # fused scores decide
        if temperature == 0:
            next_tokens = logits.argmax(dim=-1)
        else:
            probs = F.softmax(logits / temperature, dim=-1)
            next_tokens = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        current = logprobs.gather(1, next_tokens[:, None]).squeeze(1)
        sum_logprobs += current * ~finished
        next_tokens = torch.where(finished, torch.full_like(next_tokens, eot), next_tokens)
        tokens = torch.cat([tokens, next_tokens[:, None]], dim=-1)
        finished |= next_tokens == eot
        if bool(finished.all()):
            break
    out = []
    for row, lp in zip(tokens[:, prompt_len:].tolist(), sum_logprobs.tolist()):
        out.append(Hypothesis(row[: row.index(eot)] if eot in row else row, lp))
    return out


def beam_search(
    step: Step,
    tokens: Tensor,
    state: Any,
    *,
    beam_size: int,
    eot: int,
    max_new_tokens: int,
    patience: float = 1.0,
    aux_state: Any = None,
    first_logits: Tensor | None = None,
) -> list[list[Hypothesis]]:
    """Batched beam search: B inputs × K beams advance together in one (B·K)-row batch.

    tokens: (B, L0) prompts; state/aux_state: for B rows (expanded to B·K here). first_logits: (B, V) or None.
    Each input collects finished candidates until it has round(K·patience) of them; then it is done (its rows keep
    running, masked, until all inputs are done). Returns, per input, candidates in the order they finished;
    inputs that never finished get their live beams as candidates.
    """
    n_inputs, prompt_len = tokens.shape
    k = beam_size
    max_candidates = max(1, round(k * patience))
    device = tokens.device
    expand = torch.arange(n_inputs, device=device).repeat_interleave(k)
    state, aux_state = step.select(state, aux_state, expand)
    tokens = tokens[expand]
    if first_logits is not None:
        first_logits = first_logits[expand]
    # all K beams start identical: let only the first one propose, so candidates are distinct
    sum_logprobs = torch.full((n_inputs, k), float("-inf"), device=device)
    sum_logprobs[:, 0] = 0.0
    finished: list[list[Hypothesis]] = [[] for _ in range(n_inputs)]
    done = [False] * n_inputs

    for i in range(max_new_tokens):
        _, logprobs, state, aux_state = step(tokens, state, aux_state, first_logits if i == 0 else None)
        vocab = logprobs.shape[-1]
        candidates = (sum_logprobs.reshape(-1, 1) + logprobs).reshape(n_inputs, k * vocab)
        # at most one end-of-text per beam, so 2K candidates always hold K that continue
        top_scores, top_index = candidates.topk(2 * k, dim=-1)
        top_scores_l, top_index_l = top_scores.tolist(), top_index.tolist()
        source = torch.empty(n_inputs, k, dtype=torch.long)
        next_tok = torch.empty(n_inputs, k, dtype=torch.long)
        new_sum = torch.full((n_inputs, k), float("-inf"))
        for b in range(n_inputs):
            kept = 0
            for score, flat in zip(top_scores_l[b], top_index_l[b]):
                beam, token = divmod(flat, vocab)
                if score == float("-inf"):
                    break
                if token == eot:
                    if not done[b] and len(finished[b]) < max_candidates:
                        seq = tokens[b * k + beam, prompt_len:].tolist()
                        finished[b].append(Hypothesis(seq, score))
                    continue
                source[b, kept], next_tok[b, kept], new_sum[b, kept] = b * k + beam, token, score
                kept += 1
                if kept == k:
                    break
            while kept < k:  # a degenerate distribution gave too few continuations: pad with dead beams
                source[b, kept], next_tok[b, kept] = b * k, eot
                kept += 1
            if len(finished[b]) >= max_candidates:
                done[b] = True
        if all(done):
            break
        source_flat = source.reshape(-1).to(device)
        tokens = torch.cat([tokens[source_flat], next_tok.reshape(-1, 1).to(device)], dim=-1)
        sum_logprobs = new_sum.to(device)
        state, aux_state = step.select(state, aux_state, source_flat)

    for b in range(n_inputs):
        if len(finished[b]) < k:  # length cap reached: keep the best live beams as candidates
            order = sorted(range(k), key=lambda j: -float(sum_logprobs[b, j]))
            for j in order:
                if float(sum_logprobs[b, j]) == float("-inf"):
                    continue
                finished[b].append(
                    Hypothesis(tokens[b * k + j, prompt_len:].tolist(), float(sum_logprobs[b, j]))
                )
                if len(finished[b]) >= k:
                    break
    return finished


def pick_best(candidates: Sequence[Hypothesis], ranker: Ranker | None = None) -> Hypothesis:
    """The best candidate by `ranker` (default: average log-prob)."""
    ranker = ranker or LengthNormalizedRanker()
    index = ranker.rank([c.tokens for c in candidates], [c.sum_logprob for c in candidates])
    return candidates[index]
