"""Transducer (RNN-T) decoding: greedy, modified beam search, time-synchronous beam search; word n-gram LM fusion.

Every search is *frame-synchronous and resumable*: :class:`TransducerSearch` is a shared, stateless strategy
object; each utterance owns a :class:`TransducerSearchState` (hypotheses, scores, predictor and LM states, the
frame of every emitted token, the frames consumed). :meth:`TransducerSearch.advance` feeds new encoder frames
to a batch of streams, so decoding a stream chunk by chunk gives exactly what one call over all its frames gives.

Methods (:attr:`TransducerSearchOptions.method`):

* ``"greedy"`` — per frame, the best label until blank, at most ``max_symbols_per_frame`` labels (icefall's
  greedy_search). The score is the sum of the chosen labels' log-probs (a frame cut off by the cap adds no
  blank).
* ``"modified_beam"`` — icefall's modified_beam_search: at most one label per frame per hypothesis (a label
  consumes the frame, like a blank), so each frame is one batched joiner call and one top-k over the flattened
  (hypotheses x V) scores. Hypotheses with the same tokens merge (``merge``: log-add, summing their
  alignments, or max, keeping the best alignment) *before* pruning, so with a beam wider than the number of
  label sequences the scores are exact over all one-label-per-frame alignments.
* ``"beam"`` — time-synchronous decoding (Saon et al. 2020; ESPnet's ``tsd``, whose ``max_sym_exp`` is
  ``max_symbols_per_frame + 1``): the standard RNN-T lattice (each frame ends with a blank) truncated to at most
  ``max_symbols_per_frame`` labels per frame. Per frame, round v expands the ``beam_size`` best hypotheses
  with v labels by one more label; every round's hypotheses close the frame with a blank into one set, merged
  by token sequence; the best ``beam_size`` go on. An expansion that already scores at or below the frame's
  ``beam_size``-th best closed hypothesis is not pursued (a label and the closing blank only lower a score; a
  positive ``word_bonus`` can make this prune a little early), so a frame whose labels are hopeless costs one
  joiner call and no predictor call. With a beam wider than the number of label sequences nothing is pruned
  and the scores are the exact RNN-T probabilities of the sequences (within the per-frame cap).

Shallow fusion (any method): a word n-gram LM (:class:`~seqspeech.decoding.lm.WordLMScorer`) through
:class:`~seqspeech.decoding.lm.NGramTokenScorer` over a :class:`~seqspeech.decoding.ctc.TokenWordMap` (or any
token-level :class:`~seqspeech.decoding.interfaces.Scorer` with ``init_state(n)``), exactly as
:func:`~seqspeech.decoding.ctc.ctc_prefix_beam_search` fuses it: a token that ends a word adds
``lm_weight * ln p(word | history) + word_bonus``; :meth:`TransducerSearch.finish` adds the last word and
``</s>``. So ``score = am_score + lm_weight * lm_score + word_bonus * n_words``. Hypotheses with equal tokens
have equal LM scores, so merging stays exact under fusion.

Cost: the joiner runs once per frame (modified beam) or once per label round (greedy: until every stream's
blank, at most ``max_symbols_per_frame``; time-synchronous: at most ``max_symbols_per_frame + 1``), for all live
hypotheses of all streams at once; the predictor runs only for
hypotheses that emitted a label, batched likewise; scores are pruned with one top-k per frame over the
flattened (hypotheses x V) table. The LM scorer (pure Python per changed row) runs per stream.

Predictor interface (:mod:`seqspeech.asr.transducer`): ``blank``, ``init_state(n) -> (g (n, Dp), state)``,
``step(tokens (N,), state) -> (g (N, Dp), state)``, ``select_state(state, indices)``; optionally
``cat_states(states) -> state`` (join the rows of several states). Without ``cat_states`` the states are joined
leaf by leaf (tensors in tuples, lists, dicts or dataclasses) along each tensor's batch dimension, which is
found once, at construction, by asking ``select_state`` for one more row. Joiner: ``project_predictor(g)`` and
``joiner(enc_proj, pred_proj) -> logits``; the searches take encoder frames already projected by
``joiner.project_encoder``.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..errors import ConfigError
from .ctc import TokenWordMap, logaddexp
from .interfaces import Scorer
from .lm import NGramTokenScorer

__all__ = [
    "METHODS",
    "TransducerHyp",
    "TransducerSearch",
    "TransducerSearchOptions",
    "TransducerSearchState",
]

NEG_INF = float("-inf")
METHODS = ("greedy", "modified_beam", "beam")
MERGES = ("logadd", "max")


@dataclass(frozen=True)
class TransducerSearchOptions:
    """How to search.

    method: ``"greedy"``, ``"modified_beam"`` (one label per frame per hypothesis) or ``"beam"``
        (time-synchronous, up to ``max_symbols_per_frame`` labels per frame).
    beam_size: hypotheses kept per utterance (not used by greedy).
    max_symbols_per_frame: labels one frame may emit (greedy and ``"beam"``; modified beam emits at most one).
    merge: how hypotheses with the same tokens combine: ``"logadd"`` (their probabilities add) or ``"max"``.
    lm_weight: weight of the LM's natural-log score (0: the LM is not run).
    word_bonus: added per word (needs a word map).
    """

    method: str = "greedy"
    beam_size: int = 4
    max_symbols_per_frame: int = 3
    merge: str = "logadd"
    lm_weight: float = 0.0
    word_bonus: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"transducer search method must be one of {list(METHODS)}, got {self.method!r}")
        for name in ("beam_size", "max_symbols_per_frame"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"transducer search {name} must be an int >= 1, got {value!r}")
        if self.merge not in MERGES:
            raise ConfigError(f"transducer search merge must be one of {list(MERGES)}, got {self.merge!r}")
        for name in ("lm_weight", "word_bonus"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"transducer search {name} must be a finite number, got {value!r}")


@dataclass(frozen=True)
class TransducerHyp:
    """One hypothesis: ``score = am_score + lm_weight * lm_score + word_bonus * n_words``.

    frames: the encoder frame (counted from the stream's start, see ``start_frame``) at which each token was
    emitted. am_score: the transducer log-probability (summed or maxed over the alignments the search merged);
    lm_score: natural-log LM score of the completed words (plus the last word and ``</s>`` once finished).
    """

    tokens: list[int]
    frames: list[int]
    score: float
    am_score: float
    lm_score: float
    n_words: int

    @property
    def last_emission_frame(self) -> int | None:
        """The frame of the last emitted token (None: nothing emitted yet); endpointing counts silence from it."""
        return self.frames[-1] if self.frames else None


@dataclass
class _Beam:
    """N hypothesis rows (one stream's K slots, or several streams' slots, stream-major).

    A slot whose ``am`` is -inf is empty. ``lm`` / ``words`` / ``partial``: the LM score of the completed words,
    their number, whether a word is being spelled. ``pred_state`` / ``pred_proj``: the predictor after the tokens
    (its state and its projected output ``(N, J)``). ``lm_states``: the LM scorer's state per stream (K rows
    each); ``lm_next (N, V')``: its score for each next token (None without an LM).
    """

    tokens: list[tuple[int, ...]]
    frames: list[tuple[int, ...]]
    am: Tensor
    lm: Tensor
    words: Tensor
    partial: Tensor
    pred_state: Any
    pred_proj: Tensor
    lm_states: list[Any]
    lm_next: Tensor | None


@dataclass
class TransducerSearchState:
    """One utterance's search in progress; :meth:`TransducerSearch.advance` updates it in place.

    start_frame: the frame number of the utterance's first frame (token frames count from the stream's start).
    num_frames: encoder frames consumed so far.
    """

    start_frame: int
    num_frames: int
    beam: _Beam

    @property
    def next_frame(self) -> int:
        """The frame number the next encoder frame will get."""
        return self.start_frame + self.num_frames


# -- joining predictor states --------------------------------------------------------------------------------


def _tree_batch_dims(two: Any, three: Any) -> Any:
    """Per tensor leaf, the dim that grew from 2 to 3 rows (None for non-tensor leaves)."""
    if isinstance(two, Tensor):
        if not isinstance(three, Tensor) or two.dim() != three.dim():
            raise TypeError("predictor.select_state changed the structure of the state")
        grown = [d for d in range(two.dim()) if (two.shape[d], three.shape[d]) == (2, 3)]
        same = [d for d in range(two.dim()) if two.shape[d] == three.shape[d]]
        if len(grown) != 1 or len(same) != two.dim() - 1:
            raise TypeError(
                "cannot tell the batch dimension of a predictor state tensor of shape "
                f"{tuple(two.shape)}; give the predictor a cat_states(states) method"
            )
        return grown[0]
    if isinstance(two, (tuple, list)):
        return tuple(_tree_batch_dims(a, b) for a, b in zip(two, three))
    if isinstance(two, dict):
        return {k: _tree_batch_dims(v, three[k]) for k, v in two.items()}
    if dataclasses.is_dataclass(two) and not isinstance(two, type):
        return {f.name: _tree_batch_dims(getattr(two, f.name), getattr(three, f.name)) for f in dataclasses.fields(two)}
    return None


def _tree_cat(states: Sequence[Any], dims: Any) -> Any:
    """Join the rows of ``states`` leaf by leaf along the batch dims of :func:`_tree_batch_dims`."""
    first = states[0]
    if isinstance(first, Tensor):
        return torch.cat(list(states), dim=dims)
    if isinstance(first, (tuple, list)):
        items = [_tree_cat([s[i] for s in states], dims[i]) for i in range(len(first))]
        return type(first)(*items) if hasattr(first, "_fields") else type(first)(items)
    if isinstance(first, dict):
        return {k: _tree_cat([s[k] for s in states], dims[k]) for k in first}
    if dataclasses.is_dataclass(first) and not isinstance(first, type):
        return dataclasses.replace(
            first, **{name: _tree_cat([getattr(s, name) for s in states], d) for name, d in dims.items()}
        )
    return first


# -- shallow fusion ------------------------------------------------------------------------------------------


def _history(seqs: Sequence[tuple[int, ...]]) -> Tensor:
    """Token histories (k, L), left-padded with -1 (what the LM scorer reads)."""
    width = max((len(s) for s in seqs), default=0)
    return torch.tensor([[-1] * (width - len(s)) + list(s) for s in seqs], dtype=torch.long).reshape(len(seqs), width)


class _Fusion:
    """Word counting and LM scores of the next token for a table of hypotheses (no state of its own)."""

    def __init__(
        self, scorer: Any, eos: int | None, word_map: TokenWordMap | None, vocab: int, blank: int,
        lm_weight: float, word_bonus: float,
    ) -> None:
        self.scorer = scorer
        self.eos = eos
        self.vocab = vocab
        self.blank = blank
        self.lm_weight = float(lm_weight)
        self.word_bonus = float(word_bonus)
        starts = torch.zeros(vocab, dtype=torch.bool)
        spells = torch.zeros(vocab, dtype=torch.bool)
        if word_map is not None:
            starts = torch.tensor(word_map.starts_word, dtype=torch.bool)
            spells = torch.tensor([bool(t) for t in word_map.texts], dtype=torch.bool)
        starts[blank] = spells[blank] = False  # a blank emits nothing
        self.starts = starts
        self.spells = spells

    def init(self, n: int) -> tuple[Any, Tensor | None]:
        """(LM state, LM scores of the first token (n, V')) for n empty hypotheses."""
        if self.scorer is None:
            return None, None
        scores, state = self.scorer.score(_history([()] * n), self.scorer.init_state(n))
        return state, scores.detach().to("cpu", torch.float64)

    def advance(self, state: Any, ancestors: Sequence[int], seqs: Sequence[tuple[int, ...]]) -> tuple[Any, Tensor]:
        """Rows of ``state`` picked by ``ancestors``, each fed the tokens its ``seqs`` entry adds to it."""
        state = self.scorer.select_state(state, torch.tensor(list(ancestors), dtype=torch.long))
        scores, state = self.scorer.score(_history(seqs), state)
        return state, scores.detach().to("cpu", torch.float64)

    def extend(self, lm: Tensor, words: Tensor, partial: Tensor, lm_next: Tensor | None) -> tuple[Tensor, ...]:
        """For n rows and every next label: (lm (n, V), words (n, V), partial (n, V), fused extra (n, V))."""
        ends = partial[:, None] & self.starts[None, :]
        words_c = words[:, None] + ends.to(torch.float64)
        partial_c = torch.where(ends, self.spells[None, :], partial[:, None] | self.spells[None, :])
        if lm_next is None:
            lm_c = lm[:, None].expand(-1, self.vocab)
        else:
            lm_c = lm[:, None] + lm_next[:, : self.vocab]
            lm_c[:, self.blank] = lm
        extra = self.lm_weight * lm_c + self.word_bonus * words_c
        return lm_c, words_c, partial_c, extra

    def final(self, lm: Tensor, words: Tensor, partial: Tensor, lm_next: Tensor | None) -> tuple[Tensor, Tensor]:
        """(lm, words) at the end of the utterance: the last word and ``</s>`` scored, the last word counted."""
        if lm_next is not None:
            lm = lm + lm_next[:, self.eos]
        return lm, words + partial.to(torch.float64)


# -- the search ----------------------------------------------------------------------------------------------


class TransducerSearch:
    """Greedy, modified beam or time-synchronous beam search over a transducer's predictor and joiner.

    Args:
        predictor: ``blank``, ``init_state(n)``, ``step(tokens, state)``, ``select_state(state, indices)``
            (optionally ``cat_states(states)``), e.g. :class:`seqspeech.asr.transducer.LSTMPredictor`.
        joiner: ``project_predictor(g)`` and ``joiner(enc_proj, pred_proj) -> logits (..., V)``.
        options: a :class:`TransducerSearchOptions`.
        lm: a word LM (:class:`~seqspeech.decoding.lm.WordLMScorer`: ``begin_state``, ``score``,
            ``end_score``), wrapped in an :class:`~seqspeech.decoding.lm.NGramTokenScorer` whose end of
            sentence is column V; or a token-level Scorer with ``init_state(n)`` over the transducer's labels
            (its ``eos`` attribute, or ``lm_eos``, scores the end of the utterance). Not run when
            ``options.lm_weight`` is 0.
        word_map: how labels spell words (:meth:`TokenWordMap.from_tokenizer`); needed for a word LM or a word
            bonus; with it, hypotheses count their words.
        lm_eos: the LM scorer's end-of-utterance column (default: the scorer's ``eos``).

    The object holds no per-utterance state: one instance serves any number of streams and threads. The model
    should be in eval mode.
    """

    def __init__(
        self,
        predictor: Any,
        joiner: Any,
        options: TransducerSearchOptions | None = None,
        *,
        lm: Any = None,
        word_map: TokenWordMap | None = None,
        lm_eos: int | None = None,
    ) -> None:
        options = TransducerSearchOptions() if options is None else options
        if not isinstance(options, TransducerSearchOptions):
            raise TypeError(f"options must be a TransducerSearchOptions, got {type(options).__name__}")
        for method in ("init_state", "step", "select_state"):
            if not callable(getattr(predictor, method, None)):
                raise TypeError(f"predictor needs a {method}() method, got {type(predictor).__name__}")
        if not callable(getattr(joiner, "project_predictor", None)) or not callable(joiner):
            raise TypeError(f"joiner needs project_predictor() and a forward, got {type(joiner).__name__}")
        self.predictor = predictor
        self.joiner = joiner
        self.options = options
        self.blank = int(predictor.blank)
        self.slots = 1 if options.method == "greedy" else options.beam_size
        with torch.no_grad():
            g, two = predictor.init_state(2)
            proj = joiner.project_predictor(g)
            logits = joiner(torch.zeros_like(proj), proj)
            cat_states = getattr(predictor, "cat_states", None)
            if cat_states is None:
                index = torch.tensor([0, 1, 1], device=proj.device)
                dims = _tree_batch_dims(two, predictor.select_state(two, index))
                cat_states = functools.partial(_tree_cat, dims=dims)
        self._cat_states: Callable[[Sequence[Any]], Any] = cat_states
        self.vocab_size = int(logits.shape[-1])
        self.joiner_dim = int(proj.shape[-1])
        if not 0 <= self.blank < self.vocab_size:
            raise ConfigError(f"predictor.blank = {self.blank} is outside the joiner's {self.vocab_size} labels")
        self._fusion = self._build_fusion(lm, word_map, lm_eos)
        self._frame_step = _FRAME_STEPS[options.method]

    def _build_fusion(self, lm: Any, word_map: TokenWordMap | None, lm_eos: int | None) -> _Fusion | None:
        opts, vocab = self.options, self.vocab_size
        if lm is not None and opts.lm_weight == 0:
            lm = None  # weight 0: the LM could not change anything
        word_lm = lm is not None and not isinstance(lm, Scorer)
        if (word_lm or opts.word_bonus != 0) and word_map is None:
            raise ConfigError("a word LM or a word bonus needs word_map (TokenWordMap.from_tokenizer(tokenizer))")
        if word_map is not None and word_map.vocab_size != vocab:
            raise ConfigError(f"word_map covers {word_map.vocab_size} tokens but the joiner has {vocab} labels")
        if lm is None and word_map is None:
            return None
        scorer: Any = None
        if lm is not None:
            scorer = NGramTokenScorer(lm, word_map, eos=vocab) if word_lm else lm
            if lm_eos is None:
                lm_eos = getattr(scorer, "eos", None)
            if isinstance(lm_eos, bool) or not isinstance(lm_eos, int) or lm_eos < 0:
                raise ConfigError(f"an LM scorer needs lm_eos, the id that ends the utterance; got {lm_eos!r}")
            if not callable(getattr(scorer, "init_state", None)):
                raise ConfigError(f"an LM scorer needs init_state(n); {type(scorer).__name__} has none")
        fusion = _Fusion(scorer, lm_eos, word_map, vocab, self.blank, opts.lm_weight, opts.word_bonus)
        if scorer is not None:
            _, first = fusion.init(1)
            assert first is not None and lm_eos is not None
            if first.shape[1] < vocab or not 0 <= lm_eos < first.shape[1]:
                raise ConfigError(
                    f"the LM scorer gives {first.shape[1]} columns: it needs the {vocab} labels and lm_eos {lm_eos}"
                )
        return fusion

    # -- public API ------------------------------------------------------------------------------------------

    @torch.no_grad()
    def init_state(self, start_frame: int = 0) -> TransducerSearchState:
        """A fresh utterance whose first frame is numbered ``start_frame``."""
        if isinstance(start_frame, bool) or not isinstance(start_frame, int) or start_frame < 0:
            raise ValueError(f"start_frame must be an int >= 0, got {start_frame!r}")
        k = self.slots
        g, pred_state = self.predictor.init_state(k)
        am = torch.full((k,), NEG_INF, dtype=torch.float64)
        am[0] = 0.0
        lm_state, lm_next = self._fusion.init(k) if self._fusion is not None else (None, None)
        beam = _Beam(
            tokens=[()] * k,
            frames=[()] * k,
            am=am,
            lm=torch.zeros(k, dtype=torch.float64),
            words=torch.zeros(k, dtype=torch.float64),
            partial=torch.zeros(k, dtype=torch.bool),
            pred_state=pred_state,
            pred_proj=self.joiner.project_predictor(g),
            lm_states=[lm_state],
            lm_next=lm_next,
        )
        return TransducerSearchState(start_frame, 0, beam)

    @torch.no_grad()
    def advance(
        self, enc_proj: Tensor, lens: Tensor | Sequence[int], states: Sequence[TransducerSearchState]
    ) -> None:
        """Consume new encoder frames ``enc_proj (B, T, J)`` (``lens (B,)`` valid each) for B streams' states.

        All B streams advance together, frame by frame (their hypotheses share each joiner and predictor call);
        a stream with ``lens[b] == 0`` is left as it is.
        """
        lengths = self._check_batch(enc_proj, lens, states)
        order = sorted((b for b in range(len(states)) if lengths[b] > 0), key=lambda b: -lengths[b])
        if not order:
            return
        counts = [lengths[b] for b in order]
        start = [states[b].next_frame for b in order]
        beam = self._cat([states[b].beam for b in order])
        enc = enc_proj.detach().index_select(0, torch.tensor(order, device=enc_proj.device))
        active = len(order)
        for i in range(counts[0]):
            while counts[active - 1] <= i:
                active -= 1
            beam = self._frame_step(self, beam, enc[:active, i], [s + i for s in start[:active]])
        for j, b in enumerate(order):
            states[b].beam = self._take(beam, j, len(order))
            states[b].num_frames += counts[j]

    def best(self, state: TransducerSearchState) -> TransducerHyp:
        """The best hypothesis so far (no end-of-utterance LM score): a cheap partial result."""
        return self._ranked(state, final=False)[0]

    def nbest(self, state: TransducerSearchState) -> list[TransducerHyp]:
        """All hypotheses as finished utterances (the LM's last word and ``</s>`` scored), best first."""
        return self._ranked(state, final=True)

    def finish(self, state: TransducerSearchState) -> TransducerHyp:
        """The best hypothesis as a finished utterance. The state is not changed (it may even go on)."""
        return self._ranked(state, final=True)[0]

    def decode(self, enc_proj: Tensor, lens: Tensor | Sequence[int]) -> list[TransducerHyp]:
        """Offline decoding of a batch ``enc_proj (B, T, J)``, ``lens (B,)``: the best hypothesis per utterance."""
        states = [self.init_state() for _ in range(enc_proj.shape[0] if enc_proj.dim() == 3 else 0)]
        self.advance(enc_proj, lens, states)
        return [self.finish(s) for s in states]

    # -- bookkeeping -----------------------------------------------------------------------------------------

    def _check_batch(
        self, enc_proj: Tensor, lens: Tensor | Sequence[int], states: Sequence[TransducerSearchState]
    ) -> list[int]:
        if not isinstance(enc_proj, Tensor) or enc_proj.dim() != 3:
            raise ValueError(f"enc_proj must be a (B, T, J) tensor, got {getattr(enc_proj, 'shape', enc_proj)!r}")
        batch, frames, width = enc_proj.shape
        if width != self.joiner_dim:
            raise ValueError(f"enc_proj has width {width}; the joiner's projections have {self.joiner_dim}")
        lengths = [int(n) for n in (lens.tolist() if isinstance(lens, Tensor) else lens)]
        if len(lengths) != batch or len(states) != batch:
            raise ValueError(
                f"a batch of {batch} needs {batch} lengths and states, got {len(lengths)} and {len(states)}"
            )
        for b, (n, state) in enumerate(zip(lengths, states)):
            if not 0 <= n <= frames:
                raise ValueError(f"lens[{b}] = {n} is outside [0, {frames}]")
            if not isinstance(state, TransducerSearchState) or len(state.beam.tokens) != self.slots:
                raise ValueError(f"states[{b}] was not made by this search's init_state()")
        return lengths

    def _cat(self, beams: list[_Beam]) -> _Beam:
        if len(beams) == 1:
            return beams[0]
        lm_next = [b.lm_next for b in beams]
        return _Beam(
            tokens=[t for b in beams for t in b.tokens],
            frames=[f for b in beams for f in b.frames],
            am=torch.cat([b.am for b in beams]),
            lm=torch.cat([b.lm for b in beams]),
            words=torch.cat([b.words for b in beams]),
            partial=torch.cat([b.partial for b in beams]),
            pred_state=self._cat_states([b.pred_state for b in beams]),
            pred_proj=torch.cat([b.pred_proj for b in beams]),
            lm_states=[s for b in beams for s in b.lm_states],
            lm_next=None if lm_next[0] is None else torch.cat(lm_next),  # type: ignore[arg-type]
        )

    def _take(self, beam: _Beam, j: int, n_streams: int) -> _Beam:
        """Stream j's rows of a joined beam."""
        if n_streams == 1:
            return beam
        k = self.slots
        rows = slice(j * k, (j + 1) * k)
        index = torch.arange(j * k, (j + 1) * k, device=beam.pred_proj.device)
        return _Beam(
            tokens=beam.tokens[rows],
            frames=beam.frames[rows],
            am=beam.am[rows],
            lm=beam.lm[rows],
            words=beam.words[rows],
            partial=beam.partial[rows],
            pred_state=self.predictor.select_state(beam.pred_state, index),
            pred_proj=beam.pred_proj[rows],
            lm_states=beam.lm_states[j : j + 1],
            lm_next=None if beam.lm_next is None else beam.lm_next[rows],
        )

    def _ranked(self, state: TransducerSearchState, final: bool) -> list[TransducerHyp]:
        beam = state.beam
        lm, words = beam.lm, beam.words
        if final and self._fusion is not None:
            lm, words = self._fusion.final(beam.lm, beam.words, beam.partial, beam.lm_next)
        opts = self.options
        score = beam.am + opts.lm_weight * lm + opts.word_bonus * words
        am = beam.am.tolist()
        rows = [r for r in torch.argsort(score, descending=True, stable=True).tolist() if am[r] > NEG_INF]
        return [
            TransducerHyp(
                tokens=list(beam.tokens[r]),
                frames=list(beam.frames[r]),
                score=float(score[r]),
                am_score=float(beam.am[r]),
                lm_score=float(lm[r]),
                n_words=int(words[r]),
            )
            for r in rows
        ]

    def _log_probs(self, enc: Tensor, pred_proj: Tensor) -> Tensor:
        """Joiner log-probs (n, V), float64 on the CPU, for n rows of projected encoder and predictor outputs."""
        return self.joiner(enc, pred_proj).detach().to("cpu", torch.float64).log_softmax(dim=-1)

    def _predict(
        self, state: Any, proj: Tensor, index: Tensor, emit_rows: list[int], emit_tokens: list[int]
    ) -> tuple[Any, Tensor]:
        """Predictor state and output for new rows: row r copies old row ``index[r]``, then rows ``emit_rows``
        feed ``emit_tokens`` (the predictor runs for those rows only)."""
        device = proj.device
        index = index.to(device)
        if not emit_rows:
            return self.predictor.select_state(state, index), proj.index_select(0, index)
        rows = torch.tensor(emit_rows, device=device)
        parent = index.index_select(0, rows)
        g, fed = self.predictor.step(
            torch.tensor(emit_tokens, dtype=torch.long, device=device), self.predictor.select_state(state, parent)
        )
        index = index.clone()
        index[rows] = proj.shape[0] + torch.arange(len(emit_rows), device=device)
        both = self._cat_states([state, fed])
        new_proj = torch.cat([proj, self.joiner.project_predictor(g)]).index_select(0, index)
        return self.predictor.select_state(both, index), new_proj

    def _advance_lm(
        self, lm_states: list[Any], lm_next: Tensor | None, n_streams: int, ancestors: list[int],
        tokens: list[tuple[int, ...]], changed: list[bool],
    ) -> tuple[list[Any], Tensor | None]:
        """LM states and next-token scores of the first ``n_streams`` streams' new rows: row r descends from
        old row ``ancestors[r]`` of its stream and holds ``tokens[r]`` (a stream none of whose rows ``changed``
        only reorders)."""
        fusion = self._fusion
        if fusion is None or fusion.scorer is None or lm_next is None:
            return lm_states, lm_next
        k = self.slots
        states = list(lm_states)
        nexts = []
        for b in range(n_streams):
            rows = slice(b * k, (b + 1) * k)
            local = [a - b * k for a in ancestors[rows]]
            if any(changed[rows]):
                states[b], scores = fusion.advance(states[b], local, tokens[rows])
            else:
                states[b] = fusion.scorer.select_state(states[b], torch.tensor(local, dtype=torch.long))
                scores = lm_next[ancestors[rows]]
            nexts.append(scores)
        nexts.append(lm_next[n_streams * k :])
        return states, torch.cat(nexts)

    # -- one frame of each method ----------------------------------------------------------------------------
    # Each takes the joined beam of all streams, the new frame of the first n streams (n, J) (the others have
    # no frame left in this call and keep their rows) and the frame numbers, and returns the new beam.

    def _greedy_frame(self, beam: _Beam, enc: Tensor, frame_ids: list[int]) -> _Beam:
        n_total = len(beam.tokens)
        am, lm, words, partial = beam.am.clone(), beam.lm.clone(), beam.words.clone(), beam.partial.clone()
        tokens, frames = list(beam.tokens), list(beam.frames)
        pred_state, pred_proj, lm_states, lm_next = beam.pred_state, beam.pred_proj, beam.lm_states, beam.lm_next
        identity = list(range(n_total))
        open_rows = list(range(enc.shape[0]))
        for _ in range(self.options.max_symbols_per_frame):
            rows = torch.tensor(open_rows)
            rows_dev = rows.to(enc.device)
            logp = self._log_probs(enc.index_select(0, rows_dev), pred_proj.index_select(0, rows_dev))
            am_c = am[rows, None] + logp
            if self._fusion is None:
                best = am_c.argmax(dim=1)
            else:
                lm_c, words_c, partial_c, extra = self._fusion.extend(
                    lm[rows], words[rows], partial[rows], None if lm_next is None else lm_next[rows]
                )
                best = (am_c + extra).argmax(dim=1)
                pick = best[:, None]
                lm[rows] = lm_c.gather(1, pick)[:, 0]
                words[rows] = words_c.gather(1, pick)[:, 0]
                partial[rows] = partial_c.gather(1, pick)[:, 0]
            am[rows] = am_c.gather(1, best[:, None])[:, 0]
            emitted = [(r, v) for r, v in zip(open_rows, best.tolist()) if v != self.blank]
            if not emitted:
                break
            for r, v in emitted:
                tokens[r] = tokens[r] + (v,)
                frames[r] = frames[r] + (frame_ids[r],)
            open_rows = [r for r, _ in emitted]
            pred_state, pred_proj = self._predict(
                pred_state, pred_proj, torch.arange(n_total), open_rows, [v for _, v in emitted]
            )
            changed = [False] * n_total
            for r in open_rows:
                changed[r] = True
            lm_states, lm_next = self._advance_lm(lm_states, lm_next, enc.shape[0], identity, tokens, changed)
        return _Beam(tokens, frames, am, lm, words, partial, pred_state, pred_proj, lm_states, lm_next)

    def _modified_beam_frame(self, beam: _Beam, enc: Tensor, frame_ids: list[int]) -> _Beam:
        k, vocab, blank = self.slots, self.vocab_size, self.blank
        n_streams, n_total = enc.shape[0], len(beam.tokens)
        active = n_streams * k
        logp = self._log_probs(enc.repeat_interleave(k, dim=0), beam.pred_proj[:active])
        am_c = beam.am[:active, None] + logp  # (active, V)
        fused = None
        if self._fusion is not None:
            lm_next = None if beam.lm_next is None else beam.lm_next[:active]
            fused = self._fusion.extend(beam.lm[:active], beam.words[:active], beam.partial[:active], lm_next)
        better_parent = self._merge_into_blank(beam, am_c, n_streams)
        score = am_c if fused is None else am_c + fused[3]
        top_score, top = score.reshape(n_streams, k * vocab).topk(k, dim=1)
        flat = (torch.arange(n_streams)[:, None] * (k * vocab) + top).reshape(-1)
        src, tok = (flat // vocab).tolist(), (flat % vocab).tolist()
        valid = (top_score.reshape(-1) > NEG_INF).tolist()

        tokens, frames = list(beam.tokens), list(beam.frames)
        emit_rows, emit_tokens = [], []
        changed = [False] * n_total
        for r in range(active):
            s, v = src[r], tok[r]
            if valid[r] and v != blank:
                tokens[r] = beam.tokens[s] + (v,)
                frames[r] = beam.frames[s] + (frame_ids[r // k],)
                emit_rows.append(r)
                emit_tokens.append(v)
                changed[r] = True
            else:
                tokens[r] = beam.tokens[s]
                via = better_parent.get(s) if valid[r] else None
                frames[r] = beam.frames[s] if via is None else via + (frame_ids[r // k],)
        index = torch.arange(n_total)
        index[:active] = torch.tensor(src)
        pred_state, pred_proj = self._predict(beam.pred_state, beam.pred_proj, index, emit_rows, emit_tokens)
        ancestors = index.tolist()
        lm_states, lm_next = self._advance_lm(beam.lm_states, beam.lm_next, n_streams, ancestors, tokens, changed)

        def pick(values: Tensor, candidates: Tensor) -> Tensor:
            return torch.cat([candidates.reshape(-1)[flat], values[active:]])

        live = torch.tensor(valid + [True] * (n_total - active))
        am = pick(beam.am, am_c).masked_fill(~live, NEG_INF)
        if fused is None:
            lm, words, partial = beam.lm, beam.words, beam.partial
        else:
            lm, words, partial = pick(beam.lm, fused[0]), pick(beam.words, fused[1]), pick(beam.partial, fused[2])
        return _Beam(tokens, frames, am, lm, words, partial, pred_state, pred_proj, lm_states, lm_next)

    def _merge_into_blank(self, beam: _Beam, am_c: Tensor, n_streams: int) -> dict[int, tuple[int, ...]]:
        """Merge, in place, each candidate "row p + label v" into "row r + blank" when row r's tokens are row p's
        plus v (the only way two candidates of one frame can share tokens). Returns, for merged rows whose
        parent's path was the better one, the parent's frames (the caller adds this frame for label v)."""
        k, blank = self.slots, self.blank
        rows, parents, labels = [], [], []
        am = beam.am.tolist()
        for b in range(n_streams):
            live = [r for r in range(b * k, (b + 1) * k) if am[r] > NEG_INF]
            if len(live) < 2:
                continue
            where = {beam.tokens[r]: r for r in live}
            for r in live:
                seq = beam.tokens[r]
                p = where.get(seq[:-1]) if seq else None
                if p is not None:
                    rows.append(r)
                    parents.append(p)
                    labels.append(seq[-1])
        if not rows:
            return {}
        r_t, p_t, v_t = torch.tensor(rows), torch.tensor(parents), torch.tensor(labels)
        own, via_parent = am_c[r_t, blank], am_c[p_t, v_t]
        if self.options.merge == "logadd":
            am_c[r_t, blank] = torch.logaddexp(own, via_parent)
        else:
            am_c[r_t, blank] = torch.maximum(own, via_parent)
        am_c[p_t, v_t] = NEG_INF
        return {
            r: beam.frames[p]
            for r, p, better in zip(rows, parents, (via_parent > own).tolist())
            if better
        }

    def _time_sync_frame(self, beam: _Beam, enc: Tensor, frame_ids: list[int]) -> _Beam:
        opts, fusion, predictor = self.options, self._fusion, self.predictor
        k, vocab, blank = self.slots, self.vocab_size, self.blank
        n_streams, n_total = enc.shape[0], len(beam.tokens)
        active = n_streams * k
        device = beam.pred_proj.device
        logadd, lm_weight, word_bonus = opts.merge == "logadd", opts.lm_weight, opts.word_bonus

        # Round v's hypotheses C (v labels emitted in this frame), live ones only, each in a slot of its stream
        # (b * k + j). Round 0: the beam.
        am_now = beam.am[:active].tolist()
        live = [r for r in range(active) if am_now[r] > NEG_INF]
        live_t = torch.tensor(live)
        c_slot, c_anc, c_pool = live, live, live  # slot; the beam row it grew from; its predictor row in the pool
        c_tokens, c_frames = [beam.tokens[r] for r in live], [beam.frames[r] for r in live]
        c_am, c_lm, c_words, c_partial = (x[live_t] for x in (beam.am, beam.lm, beam.words, beam.partial))
        c_state, c_state_rows = beam.pred_state, live  # C row i's predictor state is row c_state_rows[i]
        c_proj = beam.pred_proj.index_select(0, live_t.to(device))
        c_lm_next = None if beam.lm_next is None else beam.lm_next[live_t]
        c_lm_states, c_lm_rows = beam.lm_states[:n_streams], [r % k for r in live]  # rows in the stream's state
        pool_states, pool_proj, pool_size = [beam.pred_state], [beam.pred_proj], n_total
        # per stream, the hypotheses that closed the frame with a blank: tokens -> [am, lm, words, partial,
        # frames, pool row, ancestor, best single contribution, fused extra]
        closed: list[dict[tuple[int, ...], list[Any]]] = [{} for _ in range(n_streams)]
        for v in range(opts.max_symbols_per_frame + 1):
            streams = [s // k for s in c_slot]
            logp = self._log_probs(enc.index_select(0, torch.tensor(streams, device=enc.device)), c_proj)
            am_c = c_am[:, None] + logp
            blank_am = am_c[:, blank].tolist()
            lm_l, words_l, partial_l = c_lm.tolist(), c_words.tolist(), c_partial.tolist()
            for i, x in enumerate(blank_am):
                if x == NEG_INF:
                    continue
                ends = closed[streams[i]]
                entry = ends.get(c_tokens[i])
                if entry is None:
                    extra = lm_weight * lm_l[i] + word_bonus * words_l[i]
                    where = [c_frames[i], c_pool[i], c_anc[i], x]
                    ends[c_tokens[i]] = [x, lm_l[i], words_l[i], partial_l[i], *where, extra]
                    continue
                entry[0] = logaddexp(entry[0], x) if logadd else max(entry[0], x)
                if x > entry[7]:
                    entry[4:8] = [c_frames[i], c_pool[i], c_anc[i], x]
            if v == opts.max_symbols_per_frame:
                break
            # expand by one label: per stream the best k (hypothesis, label) pairs that still score above the
            # frame's k-th best closed hypothesis (a label and the closing blank only lower a score)
            score = am_c.clone()
            fused = None
            if fusion is not None:
                fused = fusion.extend(c_lm, c_words, c_partial, c_lm_next)
                score += fused[3]
            score[:, blank] = NEG_INF
            floor = [self._kth_best(ends) for ends in closed]
            score = score.masked_fill(score <= torch.tensor([floor[b] for b in streams])[:, None], NEG_INF)
            table = torch.full((active, vocab), NEG_INF, dtype=score.dtype)
            table[torch.tensor(c_slot)] = score
            top_score, top = table.reshape(n_streams, k * vocab).topk(k, dim=1)
            keep = (top_score.reshape(-1) > NEG_INF).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            crow_of_slot = torch.full((active,), -1, dtype=torch.long)
            crow_of_slot[torch.tensor(c_slot)] = torch.arange(len(c_slot))
            slot_tok = top.reshape(-1)[keep]
            src_t = crow_of_slot[(keep // k) * k + slot_tok // vocab]
            src, tok = src_t.tolist(), (slot_tok % vocab).tolist()
            c_slot = keep.tolist()  # new slots: b * k + rank
            c_tokens = [c_tokens[s] + (t,) for s, t in zip(src, tok)]
            c_frames = [c_frames[s] + (frame_ids[slot // k],) for s, slot in zip(src, c_slot)]
            c_anc = [c_anc[s] for s in src]
            c_am = am_c[src_t, torch.tensor(tok)]
            if fused is not None:
                c_lm, c_words, c_partial = (x[src_t, torch.tensor(tok)] for x in fused[:3])
            else:
                c_lm, c_words, c_partial = c_lm[src_t], c_words[src_t], c_partial[src_t]
            parent = torch.tensor([c_state_rows[s] for s in src], device=device)
            g, c_state = predictor.step(
                torch.tensor(tok, dtype=torch.long, device=device), predictor.select_state(c_state, parent)
            )
            c_state_rows = list(range(len(src)))
            c_proj = self.joiner.project_predictor(g)
            c_pool = list(range(pool_size, pool_size + len(src)))
            pool_states.append(c_state)
            pool_proj.append(c_proj)
            pool_size += len(src)
            if fusion is not None and fusion.scorer is not None:
                c_lm_states, c_lm_next, c_lm_rows = self._expand_lm(c_lm_states, c_lm_rows, src, c_slot, c_tokens)

        # the best k closed hypotheses of each stream go on
        new: list[list[Any]] = []
        tokens: list[tuple[int, ...]] = []
        for b in range(n_streams):
            entries = sorted(closed[b].items(), key=lambda kv: -(kv[1][0] + kv[1][8]))[:k]
            for seq, entry in entries:
                tokens.append(seq)
                new.append(entry)
            for _ in range(k - len(entries)):  # empty slots: a copy of row 0, never live
                tokens.append(beam.tokens[b * k])
                new.append([NEG_INF, 0.0, 0.0, False, beam.frames[b * k], b * k, b * k, NEG_INF, 0.0])
        pool_index = torch.tensor([e[5] for e in new] + list(range(active, n_total)), device=device)
        pool_state = pool_states[0] if len(pool_states) == 1 else self._cat_states(pool_states)
        pred_state = predictor.select_state(pool_state, pool_index)
        pred_proj = torch.cat(pool_proj).index_select(0, pool_index)
        ancestors = [e[6] for e in new] + list(range(active, n_total))
        tokens += beam.tokens[active:]
        changed = [len(t) != len(beam.tokens[a]) for t, a in zip(tokens, ancestors)]
        lm_states, lm_next = self._advance_lm(beam.lm_states, beam.lm_next, n_streams, ancestors, tokens, changed)

        def column(i: int, dtype: torch.dtype, rest: Tensor) -> Tensor:
            return torch.cat([torch.tensor([e[i] for e in new], dtype=dtype), rest[active:]])

        return _Beam(
            tokens=tokens,
            frames=[e[4] for e in new] + beam.frames[active:],
            am=column(0, torch.float64, beam.am),
            lm=column(1, torch.float64, beam.lm),
            words=column(2, torch.float64, beam.words),
            partial=column(3, torch.bool, beam.partial),
            pred_state=pred_state,
            pred_proj=pred_proj,
            lm_states=lm_states,
            lm_next=lm_next,
        )

    def _kth_best(self, closed: dict[tuple[int, ...], list[Any]]) -> float:
        """The k-th best fused score among a stream's closed hypotheses (-inf while there are fewer)."""
        if len(closed) < self.slots:
            return NEG_INF
        return heapq.nlargest(self.slots, (e[0] + e[8] for e in closed.values()))[-1]

    def _expand_lm(
        self, states: list[Any], rows: list[int], src: list[int], slots: list[int], tokens: list[tuple[int, ...]]
    ) -> tuple[list[Any], Tensor, list[int]]:
        """LM states and next-token scores of an expansion round: new hypothesis i (in slot ``slots[i]``) grew
        from old hypothesis ``src[i]`` (row ``rows[src[i]]`` of its stream's state) and holds ``tokens[i]``.
        Returns the per-stream states (rows in the order of the new hypotheses), scores (n, V'), their rows."""
        fusion = self._fusion
        assert fusion is not None
        k = self.slots
        states = list(states)
        by_stream: dict[int, list[int]] = {}
        for i, slot in enumerate(slots):
            by_stream.setdefault(slot // k, []).append(i)
        scores: list[Tensor] = [torch.empty(0)] * len(slots)
        new_rows = [0] * len(slots)
        for b, members in by_stream.items():
            states[b], table = fusion.advance(states[b], [rows[src[i]] for i in members], [tokens[i] for i in members])
            for j, i in enumerate(members):
                scores[i] = table[j]
                new_rows[i] = j
        return states, torch.stack(scores), new_rows


_FRAME_STEPS: dict[str, Callable[[TransducerSearch, _Beam, Tensor, list[int]], _Beam]] = {
    "greedy": TransducerSearch._greedy_frame,
    "modified_beam": TransducerSearch._modified_beam_frame,
    "beam": TransducerSearch._time_sync_frame,
}
assert set(_FRAME_STEPS) == set(METHODS)
