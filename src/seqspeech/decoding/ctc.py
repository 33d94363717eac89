"""CTC decoding: greedy, prefix beam search with word n-gram LM fusion, a prefix scorer, forced alignment.

All functions take log-probabilities as a CTC model emits them: ``log_probs (B, T, V)`` with ``lengths (B,)``
(or ``(T, V)`` for one utterance in alignment), blank id 0 unless told otherwise.

* :func:`ctc_greedy` — best label per frame, repeats collapsed, blanks dropped.
* :func:`ctc_prefix_beam_search` — prefix beam search (Hannun et al. 2014) in log space, with optional shallow
  fusion of an LM through the :class:`Scorer` interface: a word n-gram LM
  (:class:`seqspeech.decoding.lm.WordLMScorer`) is wrapped in :class:`seqspeech.decoding.lm.NGramTokenScorer`,
  which scores a word when the next word starts (char tokenizers: the space token; BPE: a piece starting with
  ``"▁"``) and at the end of the utterance, where ``</s>`` is scored too. The LM score is a property of the
  prefix, so the fused score is ``am + lm_weight * lm + word_bonus * words``.
* :class:`CTCPrefixScorer` — ESPnet's CTC prefix score (Watanabe et al. 2017) as a :class:`Scorer` for joint
  CTC/attention beam search: for every next token c, ``log psi(h + c) - log psi(h)``; eos gets the
  full-sequence ``log p(h | x) - log psi(h)``, so the sum along a finished path is ``log p(h | x)``.
* :func:`ctc_forced_align` — Viterbi alignment of a known token sequence, then :func:`token_spans` and
  :func:`word_spans` turn frame labels into timed tokens and words.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from ..errors import ConfigError, DataError
from .interfaces import Scorer
from .lm import NGramTokenScorer, WordLMScorer

__all__ = [
    "CTCHypothesis",
    "CTCPrefixScorer",
    "CTCPrefixState",
    "TokenSpan",
    "TokenWordMap",
    "WordSpan",
    "ctc_forced_align",
    "ctc_greedy",
    "ctc_greedy_frames",
    "ctc_prefix_beam_search",
    "token_spans",
    "word_spans",
]

NEG_INF = float("-inf")
WORD_START = "\u2581"  # "▁": a space (char tokenizer) or the start of a word (sentencepiece pieces)
_SILENT = ("<blank>", "<sos/eos>", "<s>", "</s>", "<pad>")  # special pieces that add no text to a word


def _check_batch(log_probs: Tensor, lengths: Tensor | Sequence[int]) -> list[int]:
    """Validate (B, T, V) log-probs and (B,) lengths; return the lengths as ints."""
    if log_probs.dim() != 3:
        raise ValueError(f"log_probs must be (B, T, V), got shape {tuple(log_probs.shape)}")
    lens = [int(n) for n in (lengths.tolist() if isinstance(lengths, Tensor) else lengths)]
    batch, frames, _ = log_probs.shape
    if len(lens) != batch:
        raise ValueError(f"lengths has {len(lens)} entries for a batch of {batch}")
    for i, n in enumerate(lens):
        if not 0 <= n <= frames:
            raise ValueError(f"lengths[{i}] = {n} is outside [0, {frames}]")
    return lens


def logaddexp(a: float, b: float) -> float:
    """ln(e^a + e^b) of two Python floats (-inf allowed), without tensors."""
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


# -- greedy --------------------------------------------------------------------------------------------------


def ctc_greedy_frames(
    log_probs: Tensor, lengths: Tensor | Sequence[int], blank: int = 0
) -> list[list[tuple[int, int]]]:
    """Greedy CTC decoding with the frame where each token starts: per utterance, a list of (token, frame)."""
    lens = _check_batch(log_probs, lengths)
    best = log_probs.argmax(dim=-1)  # (B, T)
    keep = best != blank
    keep[:, 1:] &= best[:, 1:] != best[:, :-1]
    frames = torch.arange(best.shape[1], device=best.device)
    keep &= frames[None, :] < torch.tensor(lens, device=best.device)[:, None]
    out = []
    for row, mask in zip(best.tolist(), keep.tolist()):
        out.append([(tok, t) for t, (tok, k) in enumerate(zip(row, mask)) if k])
    return out


def ctc_greedy(log_probs: Tensor, lengths: Tensor | Sequence[int], blank: int = 0) -> list[list[int]]:
    """Best label per frame (log_probs (B, T, V), lengths (B,)), repeats collapsed, blanks dropped."""
    return [[tok for tok, _ in row] for row in ctc_greedy_frames(log_probs, lengths, blank)]


# -- tokens to words -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenWordMap:
    """How tokens spell words: per id, the text it adds and whether it starts a new word.

    A char tokenizer's space ``"▁"`` starts a word and adds nothing; a sentencepiece piece ``"▁the"`` starts a
    word and adds ``"the"``; ``<blank>`` and ``<sos/eos>`` add nothing; ``<unk>`` adds ``"<unk>"`` (so the LM
    sees an unknown word).
    """

    texts: tuple[str, ...]
    starts_word: tuple[bool, ...]

    @classmethod
    def from_pieces(cls, pieces: Sequence[str]) -> TokenWordMap:
        texts, starts = [], []
        for piece in pieces:
            if piece in _SILENT:
                texts.append("")
                starts.append(False)
            elif piece.startswith(WORD_START):
                texts.append(piece[len(WORD_START) :])
                starts.append(True)
            else:
                texts.append(piece)
                starts.append(False)
        return cls(tuple(texts), tuple(starts))

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> TokenWordMap:
        """From a :class:`CharTokenizer` (``symbols``) or :class:`BPETokenizer` (``id_to_piece``)."""
        if isinstance(tokenizer, TokenWordMap):
            return tokenizer
        if hasattr(tokenizer, "symbols"):
            return cls.from_pieces(list(tokenizer.symbols))
        if hasattr(tokenizer, "id_to_piece") and hasattr(tokenizer, "vocab_size"):
            return cls.from_pieces([tokenizer.id_to_piece(i) for i in range(tokenizer.vocab_size)])
        raise TypeError(
            f"cannot map tokens to words for {type(tokenizer).__name__}: need symbols or id_to_piece"
        )

    @property
    def vocab_size(self) -> int:
        return len(self.texts)

    def words(self, tokens: Sequence[int]) -> list[str]:
        """The words that ``tokens`` spell."""
        words, partial = [], ""
        for tok in tokens:
            tok = int(tok)
            if self.starts_word[tok] and partial:
                words.append(partial)
                partial = ""
            partial += self.texts[tok]
        if partial:
            words.append(partial)
        return words


# -- prefix beam search --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CTCHypothesis:
    """One n-best entry: ``score = am_score + lm_weight * lm_score + word_bonus * n_words``.

    am_score is the CTC log-probability of the label sequence (summed over the paths the beam kept);
    lm_score is the LM scorer's scores summed along the labels plus its end-of-utterance score: for a word
    LM, the natural-log probability of the words plus ``</s>`` (0 without an LM).
    """

    tokens: list[int]
    score: float
    am_score: float
    lm_score: float
    n_words: int


def _frame_candidates(
    lp: Tensor, blank: int, prune_logp: float | None, top_k: int | None
) -> list[list[int]]:
    """Per frame of lp (T, V): the non-blank labels worth extending with (best first)."""
    vocab = lp.shape[-1]
    if top_k is not None and top_k < vocab:
        values, index = lp.topk(top_k, dim=-1)
    else:
        values, index = lp.sort(dim=-1, descending=True)
    keep = index != blank
    if prune_logp is not None:
        keep &= values >= prune_logp
    return [[i for i, k in zip(ix, kp) if k] for ix, kp in zip(index.tolist(), keep.tolist())]


def ctc_prefix_beam_search(
    log_probs: Tensor,
    lengths: Tensor | Sequence[int],
    *,
    beam_size: int = 8,
    blank: int = 0,
    lm: Scorer | WordLMScorer | None = None,
    word_map: TokenWordMap | None = None,
    lm_weight: float = 0.5,
    word_bonus: float = 0.0,
    prune_logp: float | None = -10.0,
    top_k: int | None = None,
    lm_eos: int | None = None,
) -> list[list[CTCHypothesis]]:
    """Prefix beam search over CTC log-probs (B, T, V), lengths (B,); the n-best (best first) per utterance.

    Args:
        beam_size: prefixes kept after each frame (and the n-best size).
        lm: a token-level :class:`Scorer` over the CTC labels with ``init_state(n)``, such as
            :class:`seqspeech.decoding.lm.NGramTokenScorer`; or a word LM
            (:class:`seqspeech.decoding.lm.WordLMScorer`, or anything with ``begin_state``, ``score(state,
            word) -> (ln p, state)``, ``end_score(state)``), which is wrapped in an ``NGramTokenScorer`` over
            ``word_map`` whose end-of-sentence column is V (past the CTC labels). Extending a prefix by label
            c adds the scorer's score for c given the prefix; the end of the utterance adds its score for
            ``lm_eos``. The scorer is called once per frame for all live prefixes, so it must accept
            histories of unequal length, left-padded with -1, and rows with nothing new to feed (as
            ``NGramTokenScorer`` does).
        word_map: how tokens spell words (:meth:`TokenWordMap.from_tokenizer`); needed for a word LM or a word
            bonus.
        lm_weight: weight of the LM's natural-log score.
        word_bonus: added per word (counters the LM's preference for few words).
        prune_logp: labels below this log-prob at a frame are not tried there (None: try all).
        top_k: at most this many labels are tried per frame (None: no cap).
        lm_eos: the id whose LM score ends the utterance (None: the scorer's ``eos`` attribute).

    With beam_size=1 and no LM this is greedy decoding whenever each frame's best label holds most of its mass
    (as trained CTC models' outputs do). On flat distributions the two can differ: the beam sums the paths of
    a prefix, greedy follows the single best path.
    """
    lens = _check_batch(log_probs, lengths)
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise ConfigError(f"beam_size must be an int >= 1, got {beam_size!r}")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top_k must be None or >= 1, got {top_k!r}")
    vocab = log_probs.shape[-1]
    word_lm = lm is not None and not isinstance(lm, Scorer)
    if (word_lm or word_bonus != 0.0) and word_map is None:
        raise ConfigError("a word LM or a word bonus needs word_map (TokenWordMap.from_tokenizer(tokenizer))")
    if word_map is not None and word_map.vocab_size != vocab:
        raise ConfigError(f"word_map covers {word_map.vocab_size} tokens but log_probs have {vocab} classes")
    scorer: Any = None
    if lm is not None:
        if word_lm:  # its end of sentence goes in a column past the CTC labels, which have no end token
            assert word_map is not None
            scorer = NGramTokenScorer(lm, word_map, eos=vocab)
        else:
            scorer = lm
        if lm_eos is None:
            lm_eos = getattr(scorer, "eos", None)
        if isinstance(lm_eos, bool) or not isinstance(lm_eos, int) or lm_eos < 0:
            raise ConfigError(
                f"an LM scorer needs lm_eos, the id that scores the end of the utterance; got {lm_eos!r}"
            )
        if not callable(getattr(scorer, "init_state", None)):
            raise ConfigError(f"an LM scorer needs init_state(n); {type(scorer).__name__} has none")
    lp_all = log_probs.detach().to(torch.float64).cpu()
    return [
        _prefix_beam_search_one(
            lp_all[b, :n], beam_size, blank, scorer, lm_eos, word_map, lm_weight, word_bonus, prune_logp,
            top_k,
        )
        for b, n in enumerate(lens)
    ]


def _prefix_beam_search_one(
    lp: Tensor,
    beam_size: int,
    blank: int,
    lm: Any,
    lm_eos: int | None,
    word_map: TokenWordMap | None,
    lm_weight: float,
    word_bonus: float,
    prune_logp: float | None,
    top_k: int | None,
) -> list[CTCHypothesis]:
    """One utterance, lp (T, V) on the CPU; lm is a Scorer (or None) whose end-of-utterance id is lm_eos."""
    candidates = _frame_candidates(lp, blank, prune_logp, top_k)
    rows = lp.tolist()
    fused = lm is not None or word_map is not None  # the pruning key has more than the acoustic score

    # per prefix: (lm log-prob of its tokens so far, completed words, whether a word is in progress)
    Context = tuple[float, int, bool]
    starts = word_map.starts_word if word_map is not None else (False,) * lp.shape[-1]
    spells = tuple(bool(t) for t in word_map.texts) if word_map is not None else starts

    def extend(ctx: Context, token: int, lm_value: float) -> Context:
        lm_score, n_words, partial = ctx
        if partial and starts[token]:
            return lm_score + lm_value, n_words + 1, spells[token]
        return lm_score + lm_value, n_words, partial or spells[token]

    def bonus(ctx: Context) -> float:
        return lm_weight * ctx[0] + word_bonus * ctx[1]

    empty: tuple[int, ...] = ()
    # prefix -> [log p(ending in blank), log p(ending in a label)]
    beams: dict[tuple[int, ...], list[float]] = {empty: [0.0, NEG_INF]}
    contexts: dict[tuple[int, ...], Context] = {empty: (0.0, 0, False)}
    # the LM scorer's rows: one per live prefix (its state has fed the whole prefix); scores (rows, V') of the
    # next label, per prefix
    lm_rows: dict[tuple[int, ...], int] = {}
    lm_state: Any = None
    lm_next: Tensor | None = None
    lm_history = torch.empty(1, 0, dtype=torch.long)  # the prefixes, right-aligned, left-padded with -1
    if lm is not None:
        lm_next, lm_state = lm.score(lm_history, lm.init_state(1))
        lm_rows = {empty: 0}
        assert lm_eos is not None
        if not 0 <= lm_eos < lm_next.shape[1]:
            raise ConfigError(f"lm_eos {lm_eos} is outside the LM scorer's {lm_next.shape[1]} columns")
    for row, cands in zip(rows, candidates):
        p_blank = row[blank]
        # per LM row, the LM score of each candidate label
        lm_cands = lm_next[:, cands].tolist() if lm_next is not None else [[0.0] * len(cands)]
        nxt: dict[tuple[int, ...], list[float]] = {}
        for prefix, (pb, pnb) in beams.items():
            total = logaddexp(pb, pnb)
            entry = nxt.get(prefix)
            if entry is None:
                entry = nxt[prefix] = [NEG_INF, NEG_INF]
            entry[0] = logaddexp(entry[0], total + p_blank)
            last = prefix[-1] if prefix else -1
            lm_row = lm_cands[lm_rows[prefix] if lm is not None else 0]
            for j, c in enumerate(cands):
                p = row[c]
                if c == last:  # a repeat collapses unless a blank separates it
                    entry[1] = logaddexp(entry[1], pnb + p)
                    into = pb + p
                else:
                    into = total + p
                if into == NEG_INF:
                    continue
                ext = prefix + (c,)
                target = nxt.get(ext)
                if target is None:
                    target = nxt[ext] = [NEG_INF, NEG_INF]
                    if fused and ext not in contexts:
                        contexts[ext] = extend(contexts[prefix], c, lm_row[j])
                target[1] = logaddexp(target[1], into)
        if fused:
            kept = heapq.nlargest(
                beam_size, nxt.items(), key=lambda kv: logaddexp(*kv[1]) + bonus(contexts[kv[0]])
            )
            beams = dict(kept)
            contexts = {p: contexts[p] for p in beams}
        else:
            beams = dict(heapq.nlargest(beam_size, nxt.items(), key=lambda kv: logaddexp(*kv[1])))
        if lm is not None and any(p not in lm_rows for p in beams):
            # one batched call: new prefixes feed their last label, the others feed nothing
            order = list(beams)
            is_new = [p not in lm_rows for p in order]
            source = torch.tensor([lm_rows[p[:-1] if n else p] for p, n in zip(order, is_new)])
            last = torch.tensor([[p[-1] if n else -1] for p, n in zip(order, is_new)])
            parent = lm_history.index_select(0, source)
            grown = torch.cat([parent, last], dim=1)  # a new prefix: its parent, then its last label
            shifted = torch.cat([torch.full_like(last, -1), parent], dim=1)  # a kept one: itself
            lm_history = torch.where(torch.tensor(is_new)[:, None], grown, shifted)
            lm_history = lm_history[:, -max(len(p) for p in order) :]
            lm_next, lm_state = lm.score(lm_history, lm.select_state(lm_state, source))
            lm_rows = {p: i for i, p in enumerate(order)}

    out = []
    for prefix, (pb, pnb) in beams.items():
        am = logaddexp(pb, pnb)
        lm_score, n_words = 0.0, 0
        if fused:
            lm_score, n_words, partial = contexts[prefix]
            n_words += int(partial)
        if lm_next is not None:
            lm_score += float(lm_next[lm_rows[prefix], lm_eos])
        score = am + lm_weight * lm_score + word_bonus * n_words
        out.append(CTCHypothesis(list(prefix), score, am, lm_score, n_words))
    out.sort(key=lambda h: -h.score)
    return out


# -- CTC prefix scorer for joint CTC/attention decoding ------------------------------------------------------


@dataclass(frozen=True)
class CTCPrefixState:
    """Per-hypothesis state of :class:`CTCPrefixScorer` (N rows).

    batch (N,): the utterance of each row.
    r (N, T, 2): log forward variables of the consumed prefix h, [..., 0] for paths ending in a label,
        [..., 1] ending in blank.
    prefix_score (N,): log psi(h) (0 for the empty prefix).
    last (N,): last label of h, -1 when empty.
    ended (N,): eos was consumed.
    next_scores (N, V): log psi(h + c) for every c, from the last call (None before the first).
    consumed: history length already consumed (None before the first call, whose history is the prompt).
    """

    batch: Tensor
    r: Tensor
    prefix_score: Tensor
    last: Tensor
    ended: Tensor
    next_scores: Tensor | None
    consumed: int | None


class CTCPrefixScorer:
    """ESPnet-style CTC prefix scores for N hypotheses over a batch of B utterances; a :class:`Scorer`.

    Args:
        log_probs: (B, T, V) CTC log-probs (detached; kept as given, on their device).
        lengths: (B,) valid frames per utterance (>= 1).
        blank: the blank id (its column always scores -inf).
        eos: the end-of-sequence id; it scores ``log p(h | x) - log psi(h)``.

    Start with :meth:`init_state` (B rows); the search expands rows with ``select_state``. Each ``score`` call
    consumes exactly one new token (the history's last one), except the first, whose history is the prompt.
    After eos a row scores 0 everywhere.
    """

    def __init__(
        self, log_probs: Tensor, lengths: Tensor | Sequence[int], blank: int = 0, eos: int = 2
    ) -> None:
        lens = _check_batch(log_probs, lengths)
        if min(lens, default=1) < 1:
            raise ValueError("CTCPrefixScorer needs every utterance to have at least one frame")
        self.log_probs = log_probs.detach()
        self.lengths = torch.tensor(lens, device=log_probs.device)
        self.blank = blank
        self.eos = eos
        self.vocab_size = log_probs.shape[-1]

    def init_state(self) -> CTCPrefixState:
        """State of the empty prefix for each of the B utterances."""
        x = self.log_probs
        batch, device = x.shape[0], x.device
        r_blank = x[:, :, self.blank].cumsum(dim=1)
        r = torch.stack([torch.full_like(r_blank, NEG_INF), r_blank], dim=-1)
        return CTCPrefixState(
            batch=torch.arange(batch, device=device),
            r=r,
            prefix_score=torch.zeros(batch, dtype=x.dtype, device=device),
            last=torch.full((batch,), -1, dtype=torch.long, device=device),
            ended=torch.zeros(batch, dtype=torch.bool, device=device),
            next_scores=None,
            consumed=None,
        )

    def select_state(self, state: CTCPrefixState, indices: Tensor) -> CTCPrefixState:
        indices = indices.to(state.batch.device)
        return CTCPrefixState(
            batch=state.batch[indices],
            r=state.r[indices],
            prefix_score=state.prefix_score[indices],
            last=state.last[indices],
            ended=state.ended[indices],
            next_scores=None if state.next_scores is None else state.next_scores[indices],
            consumed=state.consumed,
        )

    def score(self, tokens: Tensor, state: CTCPrefixState) -> tuple[Tensor, CTCPrefixState]:
        """tokens (N, L) -> (score differences (N, V), new state)."""
        length = tokens.shape[1]
        if state.consumed is not None:
            if length != state.consumed + 1 or state.next_scores is None:
                raise ValueError(
                    "CTCPrefixScorer consumes one token per call: the state has seen "
                    f"{state.consumed} tokens, the history has {length}"
                )
            state = self._consume(tokens[:, -1].to(state.batch.device), state)
        psi = self._prefix_scores(state)
        x_len = self.lengths[state.batch] - 1
        rows = torch.arange(psi.shape[0], device=psi.device)
        psi[:, self.eos] = torch.logsumexp(state.r[rows, x_len], dim=-1)
        psi[:, self.blank] = NEG_INF
        prev = state.prefix_score[:, None]
        scores = torch.where(prev == NEG_INF, torch.full_like(psi, NEG_INF), psi - prev)
        scores = torch.where(state.ended[:, None], torch.zeros_like(scores), scores)
        return scores, replace(state, next_scores=psi, consumed=length)

    def _consume(self, token: Tensor, state: CTCPrefixState) -> CTCPrefixState:
        """Extend each row's prefix by its token (rows that reach or passed eos keep their prefix)."""
        assert state.next_scores is not None
        stop = state.ended | (token == self.eos)
        safe = torch.where(stop, torch.full_like(token, self.blank), token)
        x = self.log_probs
        frames = x.shape[1]
        t_index = torch.arange(frames, device=x.device)
        x_c = x[state.batch[:, None], t_index[None, :], safe[:, None]]  # (N, T)
        x_b = x[state.batch, :, self.blank]  # (N, T)
        r_label, r_blank = state.r[..., 0], state.r[..., 1]
        same = (safe == state.last)[:, None]
        phi = torch.where(same, r_blank, torch.logaddexp(r_blank, r_label))  # (N, T)
        neg = torch.full_like(x_c[:, 0], NEG_INF)
        new_label = [torch.where(state.last == -1, x_c[:, 0], neg)]
        new_blank = [neg]
        for t in range(1, frames):
            new_label.append(torch.logaddexp(new_label[-1], phi[:, t - 1]) + x_c[:, t])
            new_blank.append(torch.logaddexp(new_blank[-1], new_label[-2]) + x_b[:, t])
        r = torch.stack([torch.stack(new_label, dim=1), torch.stack(new_blank, dim=1)], dim=-1)
        prefix_score = state.next_scores.gather(1, safe[:, None]).squeeze(1)
        return CTCPrefixState(
            batch=state.batch,
            r=torch.where(stop[:, None, None], state.r, r),
            prefix_score=torch.where(stop, state.prefix_score, prefix_score),
            last=torch.where(stop, state.last, safe),
            ended=stop,
            next_scores=state.next_scores,
            consumed=state.consumed,
        )

    def _prefix_scores(self, state: CTCPrefixState, max_elements: int = 1 << 23) -> Tensor:
        """log psi(h + c) for every row and label c: (N, V), vectorised over N x V (chunked over V)."""
        x = self.log_probs
        n_rows, frames, vocab = state.r.shape[0], x.shape[1], x.shape[2]
        r_label, r_blank = state.r[..., 0], state.r[..., 1]
        phi = torch.logaddexp(r_blank, r_label)  # (N, T): c differs from the last label
        t_index = torch.arange(1, frames, device=x.device)
        valid = t_index[None, :] < self.lengths[state.batch][:, None]  # (N, T-1)
        empty = (state.last == -1)[:, None]
        chunk = max(1, max_elements // max(1, n_rows * frames))
        out = []
        for v0 in range(0, vocab, chunk):
            xs = x[:, :, v0 : v0 + chunk].index_select(0, state.batch)  # (N, T, C)
            start = torch.where(empty, xs[:, 0], torch.full_like(xs[:, 0], NEG_INF))
            terms = phi[:, :-1, None] + xs[:, 1:]
            terms = terms.masked_fill(~valid[:, :, None], NEG_INF)
            out.append(torch.logaddexp(start, torch.logsumexp(terms, dim=1)))
        psi = torch.cat(out, dim=1)
        # c equal to the last label: only paths through a blank after h count
        has_last = state.last >= 0
        if bool(has_last.any()):
            last = state.last.clamp(min=0)
            x_last = x[state.batch[:, None], t_index[None, :], last[:, None]]  # (N, T-1)
            same = (r_blank[:, :-1] + x_last).masked_fill(~valid, NEG_INF).logsumexp(dim=1)
            rows = torch.arange(n_rows, device=x.device)
            psi[rows[has_last], last[has_last]] = same[has_last]
        return psi


# -- forced alignment ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSpan:
    """A token over frames [start_frame, end_frame); score: its mean per-frame probability (nan: unknown)."""

    token: int
    start_frame: int
    end_frame: int
    score: float


@dataclass(frozen=True)
class WordSpan:
    """A word over [start_s, end_s) seconds; score: the frame-weighted mean of its tokens' scores."""

    word: str
    start_s: float
    end_s: float
    score: float


def ctc_forced_align(
    log_probs: Tensor, tokens: Tensor | Sequence[int], blank: int = 0
) -> tuple[Tensor, float]:
    """Viterbi alignment of ``tokens`` (U,) to log_probs (T, V) over the blank-interleaved CTC trellis.

    Returns (frame_labels (T,) long: the token or blank each frame emits, log-prob of that best path).

    Raises:
        DataError: T is shorter than the tokens need (U plus one blank between each pair of equal neighbours),
            or no path has finite probability.
        ValueError: a token is the blank or out of range.
    """
    if log_probs.dim() != 2:
        raise ValueError(f"log_probs must be (T, V), got shape {tuple(log_probs.shape)}")
    frames, vocab = log_probs.shape
    device = log_probs.device
    tok = torch.as_tensor(tokens, dtype=torch.long).to(device).reshape(-1)
    n_tokens = tok.numel()
    if n_tokens and (bool((tok < 0).any()) or bool((tok >= vocab).any()) or bool((tok == blank).any())):
        raise ValueError(f"tokens must be non-blank ids in [0, {vocab}), got {tok.tolist()}")
    repeats = int((tok[1:] == tok[:-1]).sum()) if n_tokens > 1 else 0
    needed = n_tokens + repeats
    if frames < needed:
        raise DataError(
            f"cannot align {n_tokens} tokens ({repeats} repeated neighbours need a blank between) "
            f"to {frames} frames: at least {needed} frames are needed"
        )
    n_states = 2 * n_tokens + 1
    ext = torch.full((n_states,), blank, dtype=torch.long, device=device)
    ext[1::2] = tok
    skip = torch.zeros(n_states, dtype=torch.bool, device=device)
    if n_tokens > 1:
        skip[3::2] = tok[1:] != tok[:-1]
    emit = log_probs.detach().float()[:, ext]  # (T, S)
    alpha = torch.full((n_states,), NEG_INF, device=device)
    alpha[: min(2, n_states)] = emit[0, : min(2, n_states)]
    back = torch.zeros(frames, n_states, dtype=torch.int8, device=device)
    pad = torch.full((2,), NEG_INF, device=device)
    for t in range(1, frames):
        shifted = torch.cat([pad, alpha])
        one = shifted[1 : n_states + 1]
        two = shifted[:n_states].masked_fill(~skip, NEG_INF)
        best, arg = torch.stack([alpha, one, two]).max(dim=0)
        alpha = best + emit[t]
        back[t] = arg.to(torch.int8)
    if n_states == 1:
        state = 0
    else:
        state = n_states - 2 + int(alpha[n_states - 2 :].argmax())
    score = float(alpha[state])
    if score == NEG_INF:
        raise DataError(f"no CTC path of {frames} frames has finite probability for tokens {tok.tolist()}")
    back_list = back.tolist()
    path = [0] * frames
    for t in range(frames - 1, -1, -1):
        path[t] = state
        state -= back_list[t][state]
    return ext[torch.tensor(path, device=device)], score


def token_spans(
    frame_labels: Tensor | Sequence[int],
    tokens: Tensor | Sequence[int],
    blank: int = 0,
    log_probs: Tensor | None = None,
) -> list[TokenSpan]:
    """Timed tokens from a forced alignment's frame labels (T,); log_probs (T, V) gives each span's score."""
    labels = [int(x) for x in (frame_labels.tolist() if isinstance(frame_labels, Tensor) else frame_labels)]
    expected = [int(x) for x in (tokens.tolist() if isinstance(tokens, Tensor) else tokens)]
    runs: list[tuple[int, int, int]] = []
    for t, label in enumerate(labels):
        if label == blank:
            continue
        if runs and runs[-1][0] == label and runs[-1][2] == t:
            runs[-1] = (label, runs[-1][1], t + 1)
        else:
            runs.append((label, t, t + 1))
    if [r[0] for r in runs] != expected:
        raise ValueError(f"frame labels spell {[r[0] for r in runs]}, not the tokens {expected}")
    probs = log_probs.detach().float().exp() if log_probs is not None else None
    out = []
    for label, start, end in runs:
        score = float(probs[start:end, label].mean()) if probs is not None else float("nan")
        out.append(TokenSpan(label, start, end, score))
    return out


def word_spans(spans: Sequence[TokenSpan], word_map: Any, frame_seconds: float) -> list[WordSpan]:
    """Group token spans into timed words; word_map is a :class:`TokenWordMap` or a tokenizer."""
    word_map = TokenWordMap.from_tokenizer(word_map)
    out: list[WordSpan] = []
    group: list[TokenSpan] = []
    text = ""

    def flush() -> None:
        if not text:
            return
        frames = sum(s.end_frame - s.start_frame for s in group)
        score = sum(s.score * (s.end_frame - s.start_frame) for s in group) / frames
        start, end = group[0].start_frame, group[-1].end_frame
        out.append(WordSpan(text, start * frame_seconds, end * frame_seconds, score))

    for span in spans:
        if word_map.starts_word[span.token] and text:
            flush()
            group, text = [], ""
        piece = word_map.texts[span.token]
        if piece:
            group.append(span)
            text += piece
    flush()
    return out
