"""Decoding for attention encoder-decoders (LAS, hybrid CTC/attention AED): greedy or beam search, with fusion.

Any model with this protocol decodes here (see :class:`AttentionModel`)::

    scorer, state = model.scorer(memory, memory_lens)      # a Scorer over B rows (optionally with coverage())
    log_probs = model.ctc_log_probs(memory, memory_lens)   # (B, T, V) CTC log-probs, or None without a CTC head

The output starts from ``<sos/eos>`` and ends at the same id, the CTC head's blank is its own id: the model's
``sos_eos`` and ``blank`` attributes where it has them, else the tokenizers' ids 2 and 0.

The search is the one in :mod:`seqspeech.decoding.search`; this module only assembles it:

* joint CTC/attention (Watanabe et al. 2017): the step score is ``(1 - λ) log p_att + λ Δ log p_ctc`` with λ =
  ``ctc_weight``; the attention part through ``Step.primary_weight``, the CTC prefix score
  (:class:`seqspeech.decoding.ctc.CTCPrefixScorer`) through :class:`ScoredSum`. Summed along a finished
  hypothesis that is ``(1 - λ) log p_att(y|x) + λ log p_ctc(y|x)``.
* LM shallow fusion: any token-level Scorer with ``init_state(n)`` (e.g.
  :class:`seqspeech.decoding.lm.NGramTokenScorer`) added with ``lm_weight``.
* remedies: an end-of-sequence threshold, a minimum length, a length cap per input relative to its encoder
  length, and a coverage bonus (see :mod:`seqspeech.decoding.search`).

Beam size 1 is greedy decoding (:func:`sample_search` at temperature 0); otherwise :func:`beam_search`, whose
candidates are ranked by the length penalty (when given) or the raw score, and cut to the n-best.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import Tensor

from ..config import from_mapping, to_mapping
from ..errors import ConfigError
from .ctc import CTCPrefixScorer
from .interfaces import LengthNormalizedRanker, LogitFilter, ScoredSum, Scorer
from .search import (
    EOSThreshold,
    Hypothesis,
    MaxNewTokensPerInput,
    MinNewTokens,
    Step,
    beam_search,
    nbest,
    new_token_caps,
    sample_search,
)

__all__ = ["AttentionDecodeOptions", "AttentionModel", "BLANK", "SOS_EOS", "attention_decode"]

SOS_EOS = 2  # the tokenizers' shared start/end id (<sos/eos>)
BLANK = 0  # the CTC head's blank id


class AttentionModel(Protocol):
    """What :func:`attention_decode` needs from a model (the encoder has already run).

    Optional attributes: ``sos_eos`` (default 2), ``blank`` (default 0), ``vocab_size`` (checked against the CTC
    head's classes).
    """

    def scorer(self, memory: Tensor, memory_lens: Tensor) -> tuple[Scorer, Any]:
        """``memory (B, T, D)``, ``memory_lens (B,)`` -> (a decoder Scorer, its state for B rows)."""
        ...

    def ctc_log_probs(self, memory: Tensor, memory_lens: Tensor) -> Tensor | None:
        """``(B, T, V)`` CTC log-probs over the same frames, or None without a CTC head."""
        ...


def _number(value: Any, name: str, *, low: float | None = None, high: float | None = None,
            low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ConfigError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and value > high:
        raise ConfigError(f"{name} must be <= {high}, got {value!r}")


def _integer(value: Any, name: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an int >= {low}, got {value!r}")


@dataclass(frozen=True)
class AttentionDecodeOptions:
    """How to decode an attention model. Defaults: greedy, attention scores only, no remedies.

    beam_size: 1 is greedy; K > 1 beam search with K beams.
    ctc_weight: λ in [0, 1] of joint CTC/attention decoding (needs a CTC head when > 0).
    lm_weight: weight of the LM's log-probs in shallow fusion (needs ``lm`` when != 0).
    length_penalty: None ranks the beam's candidates by their raw score; alpha >= 0 by the score divided by
        Google NMT's ``((5 + length) / 6) ** alpha``.
    coverage_weight, coverage_threshold: the coverage bonus η per encoder frame whose cumulative attention
        exceeds τ (the model's scorer must offer ``coverage(state)``); 0 disables it.
    eos_threshold: γ of :class:`EOSThreshold` (e.g. 1.5), or None for no threshold; it judges the attention
        decoder's own distribution (before CTC and LM scores are added).
    max_length_ratio: the length cap in tokens per encoder frame, per input: ``max(1, min_new_tokens,
        ceil(ratio * memory_lens[b]))`` tokens; a hypothesis that reaches it must end there (its end token scores
        0 under the decoder; CTC and LM still score the end).
    min_new_tokens: end-of-sequence is forbidden before this many tokens.
    nbest: candidates returned per input (at most beam_size).
    patience: the beam search stops once an input has ``round(beam_size * patience)`` finished candidates
        (Kasai et al. 2022); > 1 waits for later, possibly better, endings. Ignored by greedy decoding.
    """

    beam_size: int = 1
    ctc_weight: float = 0.0
    lm_weight: float = 0.0
    length_penalty: float | None = None
    coverage_weight: float = 0.0
    coverage_threshold: float = 0.5
    eos_threshold: float | None = None
    max_length_ratio: float = 1.0
    min_new_tokens: int = 0
    nbest: int = 1
    patience: float = 1.0

    def __post_init__(self) -> None:
        _integer(self.beam_size, "beam_size", 1)
        _integer(self.min_new_tokens, "min_new_tokens", 0)
        _integer(self.nbest, "nbest", 1)
        if self.nbest > self.beam_size:
            raise ConfigError(f"nbest ({self.nbest}) cannot exceed beam_size ({self.beam_size})")
        _number(self.ctc_weight, "ctc_weight", low=0.0, high=1.0)
        _number(self.lm_weight, "lm_weight")
        if self.length_penalty is not None:
            _number(self.length_penalty, "length_penalty", low=0.0)
        _number(self.coverage_weight, "coverage_weight")
        _number(self.coverage_threshold, "coverage_threshold", low=0.0, low_open=True)
        if self.eos_threshold is not None:
            _number(self.eos_threshold, "eos_threshold", low=0.0, low_open=True)
        _number(self.max_length_ratio, "max_length_ratio", low=0.0, low_open=True)
        _number(self.patience, "patience", low=0.0, low_open=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/YAML-able); :meth:`from_dict` inverts it."""
        return to_mapping(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "AttentionDecodeOptions") -> AttentionDecodeOptions:
        """Strict: an unknown key or a bad value is a :class:`ConfigError` naming it."""
        return from_mapping(cls, data, where)


def _check_inputs(memory: Tensor, memory_lens: Tensor) -> None:
    if not isinstance(memory, Tensor) or memory.dim() != 3:
        raise ValueError(f"memory must be a (B, T, D) tensor, got {getattr(memory, 'shape', type(memory))}")
    if not isinstance(memory_lens, Tensor) or memory_lens.shape != (memory.shape[0],):
        raise ValueError(
            f"memory_lens must be a ({memory.shape[0]},) tensor, got {getattr(memory_lens, 'shape', memory_lens)}"
        )
    if memory.shape[0] == 0:
        raise ValueError("memory holds no inputs (B = 0)")
    lens = memory_lens.tolist()
    if min(lens) < 1 or max(lens) > memory.shape[1]:
        raise ValueError(f"memory_lens must lie in [1, {memory.shape[1]}], got {lens}")


@torch.no_grad()
def attention_decode(
    model: AttentionModel,
    memory: Tensor,
    memory_lens: Tensor,
    options: AttentionDecodeOptions | None = None,
    lm: Scorer | None = None,
    filters: Sequence[LogitFilter] = (),
) -> list[list[Hypothesis]]:
    """Decode B inputs from their encoder output; per input its n-best (best first).

    Args:
        model: see :class:`AttentionModel`.
        memory: ``(B, T, D)`` encoder output; memory_lens: ``(B,)`` valid frames (>= 1).
        options: :class:`AttentionDecodeOptions` (default: greedy).
        lm: a token-level Scorer over the same vocabulary with ``init_state(n)`` (n rows), used when
            ``options.lm_weight != 0``.
        filters: more :class:`~seqspeech.decoding.interfaces.LogitFilter` s (before the length cap, which stays
            last), e.g. a wait-k policy's :class:`~seqspeech.decoding.search.MinNewTokensPerInput`.

    Returns per input a list of at most ``options.nbest`` hypotheses: tokens without ``<sos/eos>``, and
    sum_logprob the search's score (fused log-probs plus any coverage bonus; see
    :func:`seqspeech.decoding.search.beam_search`). Greedy decoding returns one hypothesis per input.
    """
    options = options or AttentionDecodeOptions()
    _check_inputs(memory, memory_lens)
    batch = memory.shape[0]
    eos, blank = int(getattr(model, "sos_eos", SOS_EOS)), int(getattr(model, "blank", BLANK))
    scorer, state = model.scorer(memory, memory_lens)

    aux: list[tuple[float, Scorer]] = []
    aux_states: list[Any] = []
    if options.ctc_weight > 0:
        log_probs = model.ctc_log_probs(memory, memory_lens)
        if log_probs is None:
            raise ConfigError(f"ctc_weight = {options.ctc_weight} needs a model with a CTC head")
        if log_probs.dim() != 3 or tuple(log_probs.shape[:2]) != tuple(memory.shape[:2]):
            raise ValueError(
                f"ctc_log_probs must be (B, T, V) = ({batch}, {memory.shape[1]}, V), got {tuple(log_probs.shape)}"
            )
        vocab = getattr(scorer, "vocab_size", None) or getattr(model, "vocab_size", None)
        if vocab is not None and log_probs.shape[-1] != vocab:
            raise ValueError(f"the CTC head has {log_probs.shape[-1]} classes, the decoder {vocab}")
        ctc = CTCPrefixScorer(log_probs.float(), memory_lens, blank=blank, eos=eos)
        aux.append((options.ctc_weight, ctc))
        aux_states.append(ctc.init_state())
    if options.lm_weight != 0:
        if lm is None:
            raise ConfigError(f"lm_weight = {options.lm_weight} needs an lm")
        init = getattr(lm, "init_state", None)
        if not callable(init):
            raise TypeError(f"the lm needs init_state(n) (a token-level Scorer), got {type(lm).__name__}")
        aux.append((options.lm_weight, lm))
        aux_states.append(init(batch))

    filters = list(filters)
    if options.eos_threshold is not None:
        filters.append(EOSThreshold(eos, options.eos_threshold))
    if options.min_new_tokens > 0:
        filters.append(MinNewTokens(eos, 1, options.min_new_tokens))
    caps = new_token_caps(memory_lens, options.max_length_ratio, minimum=max(1, options.min_new_tokens))
    filters.append(MaxNewTokensPerInput(caps, 1, eos))  # last: it overrides the others
    step = Step(scorer, filters, ScoredSum(aux) if aux else None, primary_weight=1.0 - options.ctc_weight)
    tokens = torch.full((batch, 1), eos, dtype=torch.long, device=memory.device)
    max_new = int(caps.max()) + 1  # room for the end token after the longest cap
    aux_state = tuple(aux_states) if aux else None
    coverage = {"coverage_weight": options.coverage_weight, "coverage_threshold": options.coverage_threshold}

    if options.beam_size == 1:
        hyps = sample_search(step, tokens, state, eot=eos, max_new_tokens=max_new, aux_state=aux_state,
                             **coverage)
        return [[h] for h in hyps]
    groups = beam_search(step, tokens, state, beam_size=options.beam_size, eot=eos, max_new_tokens=max_new,
                         patience=options.patience, aux_state=aux_state, **coverage)
    ranker = LengthNormalizedRanker(options.length_penalty) if options.length_penalty is not None else None
    return [nbest(group, options.nbest, ranker) for group in groups]
