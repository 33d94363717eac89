"""Word n-gram language models: a Kneser-Ney estimator, an ARPA reader/writer, the scorer CTC search uses.

* :func:`train_ngram` estimates an interpolated modified Kneser-Ney model (Chen & Goodman 1998, the recipe
  KenLM's ``lmplz`` follows): continuation counts for the lower orders (raw counts for n-grams that start with
  ``<s>``), three discounts per order from the count-of-counts, interpolation down to a uniform distribution
  over the vocabulary. The interpolated model is stored exactly in backoff (ARPA) form: each listed n-gram
  holds its interpolated probability and each context its interpolation weight as the backoff.
* :class:`NGramLM` is a pure-Python backoff model: :func:`load_arpa` reads one, :meth:`NGramLM.write_arpa`
  writes one.
* :class:`WordLMScorer`: natural-log word scores from the ``kenlm`` package when it is importable, else from
  :class:`NGramLM` (same numbers).
* :class:`NGramTokenScorer` puts a :class:`WordLMScorer` behind the token-level
  :class:`~seqspeech.decoding.interfaces.Scorer` interface: a token that ends a word scores that word, every
  other token 0. Both :func:`seqspeech.decoding.ctc.ctc_prefix_beam_search` and
  :func:`seqspeech.decoding.search.beam_search` (through ``ScoredSum``) fuse it.

All probabilities in ARPA files and in :class:`NGramLM` are log10; :class:`WordLMScorer` returns natural logs.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
from torch import Tensor

from ..errors import ConfigError, ModelLoadError
from ..fileio import write_atomic

if TYPE_CHECKING:
    from .ctc import TokenWordMap

__all__ = [
    "BOS",
    "EOS",
    "UNK",
    "NGramLM",
    "NGramTokenScorer",
    "NGramTokenState",
    "WordLMScorer",
    "load_arpa",
    "train_arpa",
    "train_ngram",
]

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
LOG10_ZERO = -99.0  # what ARPA files (and KenLM) write for "never predicted", e.g. p(<s>)
LN10 = math.log(10.0)
DISCOUNT_METHODS = ("kneser-ney",)
_FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # when the count-of-counts are too sparse to estimate D1, D2, D3+

State = tuple[str, ...]


class NGramLM:
    """A backoff n-gram model over words, log10 probabilities.

    Args:
        order: the longest n-gram length.
        logprobs: n-gram (tuple of words, length 1..order) -> log10 p(last word | the others).
        backoffs: context n-gram -> log10 backoff weight (an unlisted context backs off with weight 1).

    ``<s>``, ``</s>`` and ``<unk>`` must be unigrams. States are tuples of at most ``order - 1`` words.
    """

    def __init__(
        self, order: int, logprobs: dict[tuple[str, ...], float], backoffs: dict[tuple[str, ...], float]
    ) -> None:
        if isinstance(order, bool) or not isinstance(order, int) or order < 1:
            raise ConfigError(f"n-gram order must be an int >= 1, got {order!r}")
        for special in (BOS, EOS, UNK):
            if (special,) not in logprobs:
                raise ConfigError(f"an n-gram LM needs the unigram {special!r}")
        self.order = order
        self.logprobs = logprobs
        self.backoffs = backoffs
        self.vocab = frozenset(g[0] for g in logprobs if len(g) == 1)

    def begin_state(self) -> State:
        """The context at the start of a sentence: ``(<s>,)`` (empty for a unigram model)."""
        return (BOS,) if self.order > 1 else ()

    def null_state(self) -> State:
        """No context at all."""
        return ()

    def score_word(self, state: State, word: str) -> tuple[float, State]:
        """(log10 p(word | state), new state), backing off to shorter contexts; unknown words are <unk>."""
        if word not in self.vocab:
            word = UNK
        logprobs, backoffs = self.logprobs, self.backoffs
        penalty = 0.0
        for start in range(len(state) + 1):
            context = state[start:]
            value = logprobs.get(context + (word,))
            if value is not None:
                break
            penalty += backoffs.get(context, 0.0)
        else:  # unreachable: every word in the vocabulary is a unigram
            raise AssertionError(word)
        keep = self.order - 1
        new_state = (state + (word,))[-keep:] if keep else ()
        return value + penalty, new_state

    def score_sentence(self, words: Sequence[str], bos: bool = True, eos: bool = True) -> float:
        """log10 probability of ``words`` (then ``</s>`` when ``eos``), after ``<s>`` when ``bos``."""
        state = self.begin_state() if bos else self.null_state()
        total = 0.0
        for word in list(words) + ([EOS] if eos else []):
            value, state = self.score_word(state, word)
            total += value
        return total

    def counts(self) -> list[int]:
        """Number of n-grams of each order, unigrams first."""
        out = [0] * self.order
        for gram in self.logprobs:
            out[len(gram) - 1] += 1
        return out

    def to_arpa(self) -> str:
        """The model as ARPA text (n-grams sorted, so the output is deterministic)."""
        lines = ["", "\\data\\"]
        lines += [f"ngram {n}={count}" for n, count in enumerate(self.counts(), start=1)]
        by_order: list[list[tuple[str, ...]]] = [[] for _ in range(self.order)]
        for gram in self.logprobs:
            by_order[len(gram) - 1].append(gram)
        for n, grams in enumerate(by_order, start=1):
            lines += ["", f"\\{n}-grams:"]
            for gram in sorted(grams):
                row = f"{self.logprobs[gram]:.7f}\t{' '.join(gram)}"
                if n < self.order and gram in self.backoffs:
                    row += f"\t{self.backoffs[gram]:.7f}"
                lines.append(row)
        lines += ["", "\\end\\", ""]
        return "\n".join(lines)

    def write_arpa(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_arpa` to ``path``, atomically."""
        return write_atomic(path, self.to_arpa())

    def __repr__(self) -> str:
        return f"NGramLM(order={self.order}, counts={self.counts()})"


# -- estimation ----------------------------------------------------------------------------------------------


def _discounts(counts: Iterable[int]) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts (D1, D2, D3+) from the count-of-counts; fallbacks for sparse data."""
    coc = Counter(c for c in counts if c <= 4)
    n1, n2, n3, n4 = (coc.get(k, 0) for k in (1, 2, 3, 4))
    out = list(_FALLBACK_DISCOUNTS)
    if n1 > 0 and n2 > 0:
        y = n1 / (n1 + 2 * n2)
        estimates = [1 - 2 * y * n2 / n1]
        estimates.append(2 - 3 * y * n3 / n2)
        estimates.append(3 - 4 * y * n4 / n3 if n3 > 0 else float("nan"))
        for k, d in enumerate(estimates):
            if 0.0 < d < k + 1:  # a discount must be positive and leave every count positive
                out[k] = d
    return out[0], out[1], out[2]


def train_ngram(
    texts: Iterable[str], order: int = 3, *, discount: str = "kneser-ney", min_count: int = 1
) -> NGramLM:
    """Estimate an interpolated modified Kneser-Ney word n-gram model from whitespace-tokenised ``texts``.

    Args:
        texts: one sentence per item; words are split on whitespace; empty items are skipped.
        order: the n-gram order (>= 1).
        discount: ``"kneser-ney"`` (interpolated, modified: three discounts per order).
        min_count: words seen fewer times become ``<unk>`` before counting (keeps the model normalised).

    Raises:
        ConfigError: a bad option or no words at all.
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ConfigError(f"n-gram order must be an int >= 1, got {order!r}")
    if discount not in DISCOUNT_METHODS:
        raise ConfigError(f"discount must be one of {list(DISCOUNT_METHODS)}, got {discount!r}")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ConfigError(f"min_count must be an int >= 1, got {min_count!r}")
    sentences = []
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {index} must be a str, got {type(text).__name__}")
        words = text.split()
        for word in words:
            if word in (BOS, EOS):
                raise ConfigError(f"text {index} contains the reserved word {word!r}")
        if words:
            sentences.append(words)
    if not sentences:
        raise ConfigError("cannot train an n-gram LM: the training text is empty")
    if min_count > 1:
        freq = Counter(w for s in sentences for w in s)
        sentences = [[w if freq[w] >= min_count else UNK for w in s] for s in sentences]

    # raw counts of every order
    raw: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order + 1)]  # raw[n]: n-grams
    for words in sentences:
        padded = [BOS, *words, EOS]
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                raw[n][tuple(padded[i : i + n])] += 1
    del raw[1][(BOS,)]  # <s> is never predicted

    # adjusted counts: raw at the top order and for n-grams starting with <s>; continuation counts otherwise
    adjusted: list[dict[tuple[str, ...], int]] = [{} for _ in range(order + 1)]
    adjusted[order] = dict(raw[order])
    for n in range(order - 1, 0, -1):
        left = Counter(gram[1:] for gram in raw[n + 1])
        adjusted[n] = {g: (c if g[0] == BOS else left[g]) for g, c in raw[n].items()}

    vocab = {g[0] for g in adjusted[1]} | {EOS, UNK}
    logprobs: dict[tuple[str, ...], float] = {(BOS,): LOG10_ZERO}
    backoffs: dict[tuple[str, ...], float] = {}
    probs: dict[tuple[str, ...], float] = {}  # interpolated probabilities of the orders done so far
    for n in range(1, order + 1):
        d1, d2, d3 = _discounts(adjusted[n].values())
        totals: dict[tuple[str, ...], float] = defaultdict(float)
        removed: dict[tuple[str, ...], float] = defaultdict(float)
        for gram, count in adjusted[n].items():
            totals[gram[:-1]] += count
            removed[gram[:-1]] += d1 if count == 1 else d2 if count == 2 else d3
        gamma = {h: removed[h] / totals[h] for h in totals}
        for gram, count in adjusted[n].items():
            d = d1 if count == 1 else d2 if count == 2 else d3
            h = gram[:-1]
            lower = 1.0 / len(vocab) if n == 1 else probs[gram[1:]]
            probs[gram] = (count - d) / totals[h] + gamma[h] * lower
        if n == 1:
            # <unk> (unless min_count made it a word) gets the uniform share only
            for word in vocab - {g[0] for g in adjusted[1]}:
                probs[(word,)] = gamma[()] / len(vocab)
        else:
            for h, g in gamma.items():
                backoffs[h] = math.log10(g)
    for gram, p in probs.items():
        logprobs[gram] = math.log10(p)
    return NGramLM(order, logprobs, backoffs)


# -- ARPA reading --------------------------------------------------------------------------------------------


def load_arpa(path: str | os.PathLike) -> NGramLM:
    """Read an ARPA file into a pure-Python :class:`NGramLM`.

    Raises:
        ModelLoadError: missing file, or text that is not ARPA (the message names the file and line).
    """
    path = Path(path)
    try:
        handle = path.open("r", encoding="utf-8")
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: ARPA file not found") from None
    declared: dict[int, int] = {}
    logprobs: dict[tuple[str, ...], float] = {}
    backoffs: dict[tuple[str, ...], float] = {}
    section: int | str | None = None
    ended = False
    with handle:
        try:
            for line_no, line in enumerate(handle, start=1):
                line = line.strip()
                if not line:
                    continue
                if line == "\\data\\":
                    section = "data"
                    continue
                if line == "\\end\\":
                    ended = True
                    break
                if line.startswith("\\") and line.endswith("-grams:"):
                    try:
                        section = int(line[1 : -len("-grams:")])
                    except ValueError:
                        raise ModelLoadError(f"{path}:{line_no}: bad section header {line!r}") from None
                    if section not in declared:
                        raise ModelLoadError(f"{path}:{line_no}: {section}-grams not declared in \\data\\")
                    continue
                if section == "data":
                    if not line.startswith("ngram ") or "=" not in line:
                        raise ModelLoadError(f"{path}:{line_no}: expected 'ngram N=count', got {line!r}")
                    n, count = line[len("ngram ") :].split("=", 1)
                    try:
                        declared[int(n)] = int(count)
                    except ValueError:
                        raise ModelLoadError(f"{path}:{line_no}: bad count line {line!r}") from None
                    continue
                if not isinstance(section, int):
                    raise ModelLoadError(f"{path}:{line_no}: text outside any section: {line[:40]!r}")
                fields = line.split()
                if len(fields) not in (section + 1, section + 2):
                    raise ModelLoadError(
                        f"{path}:{line_no}: a {section}-gram line needs a log-prob, {section} word(s) and an "
                        f"optional backoff; got {len(fields)} fields"
                    )
                try:
                    gram = tuple(fields[1 : section + 1])
                    logprobs[gram] = float(fields[0])
                    if len(fields) == section + 2:
                        backoffs[gram] = float(fields[-1])
                except ValueError:
                    raise ModelLoadError(f"{path}:{line_no}: bad number in {line[:60]!r}") from None
        except UnicodeDecodeError as err:
            raise ModelLoadError(f"{path}: not UTF-8 text ({err.reason})") from None
    if not declared:
        raise ModelLoadError(f"{path}: not an ARPA file (no \\data\\ section)")
    if not ended:
        raise ModelLoadError(f"{path}: truncated ARPA file (no \\end\\)")
    order = max(declared)
    found = Counter(len(g) for g in logprobs)
    for n, count in declared.items():
        if found.get(n, 0) != count:
            listed = found.get(n, 0)
            raise ModelLoadError(f"{path}: \\data\\ declares {count} {n}-grams but the file lists {listed}")
    logprobs.setdefault((UNK,), LOG10_ZERO)  # as KenLM does for a model trained without <unk>
    try:
        return NGramLM(order, logprobs, backoffs)
    except ConfigError as err:
        raise ModelLoadError(f"{path}: {err}") from None


def train_arpa(texts: Iterable[str], path: str | os.PathLike, order: int = 3) -> Path:
    """Write a Kneser-Ney model as ARPA: from KenLM's ``lmplz`` if on PATH, else from :func:`train_ngram`."""
    lmplz = shutil.which("lmplz")
    if lmplz is None:
        return train_ngram(texts, order).write_arpa(path)
    text = "".join(" ".join(t.split()) + "\n" for t in texts if t.strip())
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [lmplz, "-o", str(order), "--discount_fallback", "-T", tmp, "-S", "10%"],
            input=text.encode("utf-8"),
            capture_output=True,
            check=False,
        )
    if result.returncode != 0:
        raise ConfigError(f"lmplz failed: {result.stderr.decode('utf-8', 'replace')[-500:]}")
    return write_atomic(path, result.stdout)


# -- word scores ---------------------------------------------------------------------------------------------


def _kenlm() -> Any:
    try:
        import kenlm
    except ImportError:
        return None
    return kenlm


class WordLMScorer:
    """Natural-log word scores from an n-gram model, via KenLM or our :class:`NGramLM` (identical numbers).

    Stateless: the caller carries the LM state (a ``kenlm.State`` or a word tuple; both hashable).
    Build one with :meth:`from_arpa`, or wrap an already loaded model.

    Args:
        model: a ``kenlm.Model`` or an :class:`NGramLM`.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.uses_kenlm = not isinstance(model, NGramLM)
        if self.uses_kenlm:
            self._kenlm_state = _kenlm().State

    @classmethod
    def from_arpa(cls, path: str | os.PathLike, backend: str = "auto") -> WordLMScorer:
        """Load an ARPA (or KenLM binary) file; backend: "auto" (KenLM if importable), "kenlm" or "python"."""
        if backend not in ("auto", "kenlm", "python"):
            raise ConfigError(f"backend must be 'auto', 'kenlm' or 'python', got {backend!r}")
        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"{path}: language model file not found")
        kenlm = _kenlm() if backend != "python" else None
        if backend == "kenlm" and kenlm is None:
            raise ModelLoadError("backend='kenlm' needs the kenlm package (pip install kenlm)")
        if kenlm is None:
            return cls(load_arpa(path))
        config = kenlm.Config()
        config.show_progress = False  # KenLM otherwise draws a progress bar on stderr
        config.arpa_complain = kenlm.ARPALoadComplain.NONE
        try:
            return cls(kenlm.Model(str(path), config))
        except (OSError, RuntimeError) as err:
            if backend == "kenlm":
                raise ModelLoadError(f"{path}: KenLM could not load it ({err})") from None
            return cls(load_arpa(path))  # e.g. a unigram model, which KenLM does not support

    @property
    def order(self) -> int:
        return int(self.model.order)

    def begin_state(self) -> Any:
        """The state at the start of a sentence (after ``<s>``)."""
        if not self.uses_kenlm:
            return self.model.begin_state()
        state = self._kenlm_state()
        self.model.BeginSentenceWrite(state)
        return state

    def score(self, state: Any, word: str) -> tuple[float, Any]:
        """(ln p(word | state), new state); out-of-vocabulary words get the ``<unk>`` probability."""
        if not self.uses_kenlm:
            value, new_state = self.model.score_word(state, word)
            return value * LN10, new_state
        new_state = self._kenlm_state()
        value = self.model.BaseScore(state, word, new_state)
        return value * LN10, new_state

    def end_score(self, state: Any) -> float:
        """ln p(</s> | state)."""
        return self.score(state, EOS)[0]

    def __contains__(self, word: str) -> bool:
        return word in (self.model.vocab if not self.uses_kenlm else self.model)

    def __repr__(self) -> str:
        return f"WordLMScorer(order={self.order}, backend={'kenlm' if self.uses_kenlm else 'python'})"


# -- token-level scorer ------------------------------------------------------------------------------------


class _Row(NamedTuple):
    """One hypothesis of :class:`NGramTokenState`."""

    lm_state: Any  # the LM state after the completed words
    partial: str  # the word being spelled ("" between words)
    consumed: int  # history tokens fed so far (padding not counted)
    ended: bool  # eos was fed: every token scores 0 from then on
    word_score: float  # what a word-ending token scores: ln p(partial | lm_state), 0 without a partial word
    word_state: Any  # the LM state after the partial word (lm_state without one)
    end_score: float  # what eos scores: word_score + ln p(</s> | word_state)


@dataclass(frozen=True)
class NGramTokenState:
    """Per-hypothesis state of :class:`NGramTokenScorer` (N rows).

    rows: one record per hypothesis: the LM state, the partial word, how many history tokens it has fed,
        whether eos ended it, and the scores of its next token (rows with nothing new to feed cost no lookup).
    primed: False before the first ``score`` call, whose history is the prompt (context, not text).
    """

    rows: tuple[_Row, ...]
    primed: bool


class NGramTokenScorer:
    """A word n-gram LM as a token-level :class:`~seqspeech.decoding.interfaces.Scorer`.

    For each hypothesis and each candidate next token v: if v ends the word being spelled (v starts a word
    per ``word_map``: a char tokenizer's space, a sentencepiece piece starting with ``"▁"``), the score is the
    natural-log LM probability of that word (0 when no word is in progress); ``eos`` scores the word too, plus
    ``</s>``; every other token scores 0. Summed along a finished hypothesis this is the LM log-probability of
    its words and ``</s>``, exactly what :class:`WordLMScorer` gives word by word.

    Args:
        lm: a :class:`WordLMScorer` (or anything with ``begin_state()``, ``score(state, word) -> (ln p,
            state)`` and ``end_score(state)``).
        word_map: how tokens spell words (:meth:`seqspeech.decoding.ctc.TokenWordMap.from_tokenizer`).
        eos: the end-of-sentence id (None: no end token). ``eos == word_map.vocab_size`` adds one column past
            the token vocabulary, for a search whose tokens have no end token (CTC prefix search scores the
            end of the utterance there).

    Start with :meth:`init_state`; the search reorders rows with :meth:`select_state`. Each ``score`` call
    feeds, per row, the history tokens that row has not fed yet (any number, none included); the first call's
    history is the prompt and is not fed. Rows of unequal length come left-padded with negative ids (padding
    is never fed). Scores are float64 on the history's device. Each row that changed costs one LM lookup for
    the word in progress and one for ``</s>``, whatever the vocabulary size.
    """

    def __init__(self, lm: Any, word_map: TokenWordMap, eos: int | None = 2) -> None:
        for method in ("begin_state", "score", "end_score"):
            if not callable(getattr(lm, method, None)):
                raise TypeError(f"lm needs a {method}() method (a WordLMScorer), got {type(lm).__name__}")
        n_tokens = word_map.vocab_size
        bad_eos = isinstance(eos, bool) or not isinstance(eos, int) or not 0 <= eos <= n_tokens
        if eos is not None and bad_eos:
            raise ConfigError(f"eos must be None or an id in [0, {n_tokens}], got {eos!r}")
        self.lm = lm
        self.word_map = word_map
        self.eos = eos
        self.vocab_size = n_tokens + (1 if eos == n_tokens else 0)
        self._starts = word_map.starts_word
        self._texts = word_map.texts
        # per column, which of (0, word score, end score) it takes
        kind = [1 if starts else 0 for starts in word_map.starts_word] + [0] * (self.vocab_size - n_tokens)
        if eos is not None:
            kind[eos] = 2
        self._column_kind = torch.tensor(kind, dtype=torch.long)

    def init_state(self, n: int = 1) -> NGramTokenState:
        """State of ``n`` empty hypotheses (sentence start)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        begin = self.lm.begin_state()
        row = _Row(begin, "", 0, False, 0.0, begin, self.lm.end_score(begin))
        return NGramTokenState((row,) * n, primed=False)

    def select_state(self, state: NGramTokenState, indices: Tensor) -> NGramTokenState:
        rows = state.rows
        return NGramTokenState(tuple(rows[i] for i in indices.tolist()), state.primed)

    def score(self, tokens: Tensor, state: NGramTokenState) -> tuple[Tensor, NGramTokenState]:
        """tokens (N, L) -> (scores (N, vocab_size) float64, new state)."""
        n_rows = len(state.rows)
        if tokens.dim() != 2 or tokens.shape[0] != n_rows:
            raise ValueError(f"tokens must be (N, L) with N = {n_rows} state rows, got {tuple(tokens.shape)}")
        lengths = (tokens >= 0).sum(dim=1).tolist()  # per-row history length, left padding excluded
        rows = list(state.rows)
        if not state.primed:  # the prompt is context for the search, not text
            rows = [r._replace(consumed=n) for r, n in zip(rows, lengths)]
        new = [n - r.consumed for r, n in zip(rows, lengths)]
        for i, count in enumerate(new):
            if count < 0:
                raise ValueError(f"row {i} has fed {rows[i].consumed} tokens; its history has {lengths[i]}")
        width = max(new, default=0)
        tail = tokens[:, tokens.shape[1] - width :].tolist() if width else []
        words: dict[tuple[Any, str], tuple[float, Any]] = {}  # this call's lookups, shared across rows
        ends: dict[Any, float] = {}
        lm = self.lm
        for i, count in enumerate(new):
            r = rows[i]
            if count == 0 or r.ended:
                if count:
                    rows[i] = r._replace(consumed=r.consumed + count)
                continue
            lm_state, partial, ended = r.lm_state, r.partial, False
            word_state = r.word_state  # the LM state after `partial`, while that is still the row's own
            for tok in tail[i][width - count :]:
                if tok == self.eos:
                    ended = True
                    break
                if self._starts[tok] and partial:
                    if word_state is None:
                        key = (lm_state, partial)
                        hit = words.get(key)
                        if hit is None:
                            hit = words[key] = lm.score(lm_state, partial)
                        word_state = hit[1]
                    lm_state, partial = word_state, ""
                text = self._texts[tok]
                if text:
                    partial += text
                    word_state = None
            consumed = r.consumed + count
            if ended:
                rows[i] = _Row(lm_state, partial, consumed, True, 0.0, lm_state, 0.0)
                continue
            if partial:
                key = (lm_state, partial)
                hit = words.get(key)
                if hit is None:
                    hit = words[key] = lm.score(lm_state, partial)
                word_score, word_state = hit
            else:
                word_score, word_state = 0.0, lm_state
            end = ends.get(word_state)
            if end is None:
                end = ends[word_state] = lm.end_score(word_state)
            rows[i] = _Row(lm_state, partial, consumed, False, word_score, word_state, word_score + end)

        table = torch.tensor([(0.0, r.word_score, r.end_score) for r in rows], dtype=torch.float64)
        scores = table.reshape(n_rows, 3)[:, self._column_kind].to(tokens.device)
        return scores, NGramTokenState(tuple(rows), primed=True)
