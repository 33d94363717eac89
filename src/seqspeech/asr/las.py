"""Listen, Attend and Spell (Chan et al., 2016): a pyramidal LSTM listener and an attending LSTM speller.

Pipeline: feature normalisation -> SpecAugment (training only) -> listener (LSTM layers, the last
``pyramid_levels`` of them reading adjacent frame pairs concatenated, each halving time) -> memory ``(B, T', D)``.
The speller runs one step per output token::

    s_t, (h, c) = LSTMCell(s)([embed(y_{t-1}); c_{t-1}])      # input feeding of the previous context
    c_t, alpha_t, att = attention(s_t, memory, memory_lens, att)  # any step-wise attention of seqspeech.nn.attention
    logits_t = MLP([s_t; c_t])

The loss is label-smoothed cross-entropy (decoder input ``[sos] + y``, targets ``y + [eos]``; one id serves as both
start and end), optionally mixed with a CTC head on the memory (``λ·CTC + (1-λ)·attention``), plus a decaying
guided-attention loss, and scheduled sampling replaces ground-truth inputs by the model's own argmax.
Monotonic attentions (monotonic, MoChA) run their soft expected alignment in training and hard decisions in eval.

Decoding goes through the one search of :mod:`seqspeech.decoding.search`: :meth:`LASModel.scorer` adapts the speller
to the :class:`~seqspeech.decoding.interfaces.Scorer` protocol with an explicit :class:`LASState`.

Shapes: B batch, T feature frames, F feature bins, T' memory frames, D memory width, U target tokens, V vocabulary,
N hypotheses (rows of a search), L speller layers, H speller width.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqspeech.asr.base import FeatureNormalization, decoder_io
from seqspeech.audio.augment import SpecAugment, SpecAugmentConfig
from seqspeech.config import from_mapping, to_mapping
from seqspeech.decoding.search import Hypothesis, MaxNewTokensPerInput, Step, new_token_caps, sample_search
from seqspeech.errors import ConfigError
from seqspeech.nn.attention import (
    AdditiveAttention,
    AttentionState,
    DotProductAttention,
    LocationAwareAttention,
    MoChA,
    MonotonicAttention,
)
from seqspeech.nn.attention import select_state
from seqspeech.losses import IGNORE_ID, guided_attention_loss, label_smoothed_nll
from seqspeech.nn.masks import make_pad_mask
from seqspeech.nn.rnn import PyramidalLSTMListener
from seqspeech.training.sampling import GuidedAttentionConfig, ScheduledSamplingConfig

__all__ = [
    "ATTENTION_KINDS",
    "DEFAULT_MAX_LEN_RATIO",
    "LASConfig",
    "LASModel",
    "LASScorer",
    "LASState",
    "build_attention",
    "las_model_from_config",
]

ATTENTION_KINDS = ("dot", "additive", "location", "monotonic", "mocha")
MONOTONIC_KINDS = ("monotonic", "mocha")
MAX_DECODER_LAYERS = 2
SOS_EOS_ID = 2  # the char tokenizer's <sos/eos>
BLANK_ID = 0  # the char tokenizer's <blank>
DEFAULT_MAX_LEN_RATIO = 1.0  # at most this many output tokens per memory frame when decoding


# ----------------------------------------------------------------
# Config


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ConfigError(f"LASConfig.{name} must be an int {bound}, got {value!r}")


def _check_float(name: str, value: Any, low: float, high: float, high_open: bool = True) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = low <= value < high if high_open else low <= value <= high
    if not ok:
        bound = f"[{low}, {high})" if high_open else f"[{low}, {high}]"
        raise ConfigError(f"LASConfig.{name} must be a number in {bound}, got {value!r}")


@dataclass(frozen=True)
class LASConfig:
    """A LAS model. ``specaugment=None`` disables SpecAugment; ``scheduled_sampling`` / ``guided_attention`` None
    disable those remedies; ``ctc_weight`` 0 means no CTC head.

    Listener: ``listener_layers`` LSTM layers of ``listener_hidden`` units per direction; the last
    ``pyramid_levels`` layers read pairs of adjacent frames (``2 ** pyramid_levels`` time reduction; with
    ``pyramid_levels == listener_layers`` the first layer pairs the input features). ``bidirectional=False`` gives
    a causal listener that can stream. Attention: ``attention`` in :data:`ATTENTION_KINDS` with ``attention_dim``
    units; ``location_filters`` / ``location_kernel`` (odd) for "location"; ``chunk_size`` for "mocha";
    ``monotonic_init_r`` / ``monotonic_noise_std`` for "monotonic" and "mocha". Speller: ``decoder_layers``
    (1 or 2) LSTM cells of ``decoder_hidden`` units over ``embed_dim`` embeddings. ``sos_eos`` is the start and end
    id, ``blank`` the CTC blank.
    """

    vocab_size: int
    input_dim: int = 80
    listener_layers: int = 3
    listener_hidden: int = 256
    pyramid_levels: int = 2
    bidirectional: bool = True
    attention: str = "location"
    attention_dim: int = 128
    location_filters: int = 10
    location_kernel: int = 31
    chunk_size: int = 4
    monotonic_init_r: float = -4.0
    monotonic_noise_std: float = 1.0
    embed_dim: int = 128
    decoder_hidden: int = 256
    decoder_layers: int = 1
    dropout: float = 0.1
    label_smoothing: float = 0.1
    scheduled_sampling: ScheduledSamplingConfig | None = None
    guided_attention: GuidedAttentionConfig | None = None
    ctc_weight: float = 0.0
    sos_eos: int = SOS_EOS_ID
    blank: int = BLANK_ID
    specaugment: SpecAugmentConfig | None = SpecAugmentConfig()

    def __post_init__(self) -> None:
        _check_int("vocab_size", self.vocab_size, 2)
        for name in ("input_dim", "listener_layers", "listener_hidden", "attention_dim", "location_filters",
                     "chunk_size", "embed_dim", "decoder_hidden"):
            _check_int(name, getattr(self, name), 1)
        _check_int("pyramid_levels", self.pyramid_levels, 0, self.listener_layers)
        _check_int("decoder_layers", self.decoder_layers, 1, MAX_DECODER_LAYERS)
        _check_int("location_kernel", self.location_kernel, 1)
        if self.location_kernel % 2 == 0:
            raise ConfigError(f"LASConfig.location_kernel must be odd, got {self.location_kernel}")
        if not isinstance(self.bidirectional, bool):
            raise ConfigError(f"LASConfig.bidirectional must be true or false, got {self.bidirectional!r}")
        if self.attention not in ATTENTION_KINDS:
            raise ConfigError(f"LASConfig.attention must be one of {list(ATTENTION_KINDS)}, got {self.attention!r}")
        _check_float("monotonic_init_r", self.monotonic_init_r, -math.inf, math.inf)
        _check_float("monotonic_noise_std", self.monotonic_noise_std, 0.0, math.inf)
        _check_float("dropout", self.dropout, 0.0, 1.0)
        _check_float("label_smoothing", self.label_smoothing, 0.0, 1.0)
        _check_float("ctc_weight", self.ctc_weight, 0.0, 1.0)
        _check_int("sos_eos", self.sos_eos, 0, self.vocab_size - 1)
        _check_int("blank", self.blank, 0, self.vocab_size - 1)
        if self.ctc_weight > 0 and self.blank == self.sos_eos:
            raise ConfigError(f"LASConfig.blank={self.blank} must differ from sos_eos when ctc_weight > 0")

    @property
    def memory_dim(self) -> int:
        """D, the listener's output width."""
        return self.listener_hidden * (2 if self.bidirectional else 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts (JSON/YAML-able); :meth:`from_dict` inverts it."""
        return to_mapping(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "LASConfig") -> LASConfig:
        """Strict: an unknown key anywhere (also inside ``guided_attention``) is a :class:`ConfigError` naming it."""
        return from_mapping(cls, data, where)


# ----------------------------------------------------------------
# Listener


def _dot(c: LASConfig) -> nn.Module:
    return DotProductAttention(c.decoder_hidden, c.memory_dim, c.attention_dim)


def _additive(c: LASConfig) -> nn.Module:
    return AdditiveAttention(c.decoder_hidden, c.memory_dim, c.attention_dim)


def _location(c: LASConfig) -> nn.Module:
    return LocationAwareAttention(
        c.decoder_hidden, c.memory_dim, c.attention_dim, conv_channels=c.location_filters,
        kernel_size=c.location_kernel,
    )


def _monotonic(c: LASConfig) -> nn.Module:
    return MonotonicAttention(c.decoder_hidden, c.memory_dim, c.attention_dim, c.monotonic_init_r,
                              c.monotonic_noise_std)


def _mocha(c: LASConfig) -> nn.Module:
    return MoChA(c.decoder_hidden, c.memory_dim, c.attention_dim, c.chunk_size, c.monotonic_init_r,
                 c.monotonic_noise_std)


ATTENTION_BUILDERS: dict[str, Callable[[LASConfig], nn.Module]] = {
    "dot": _dot,
    "additive": _additive,
    "location": _location,
    "monotonic": _monotonic,
    "mocha": _mocha,
}


def build_attention(config: LASConfig) -> nn.Module:
    """The step-wise attention named by ``config.attention`` (query: the speller state, memory: the listener)."""
    return ATTENTION_BUILDERS[config.attention](config)


# ----------------------------------------------------------------
# Model


@dataclass
class LASState:
    """Speller state for N rows (every tensor's first dimension is N).

    ``h``, ``c``: LSTM states ``(N, L, H)``; ``context``: the previous context ``(N, D)``; ``attention``: the
    attention's own state; ``memory (N, T', D)`` and ``memory_lens (N,)``; ``coverage (N, T')`` float32, the sum of
    all attention weights so far; ``steps``: tokens consumed (the same for every row).
    """

    h: Tensor
    c: Tensor
    context: Tensor
    attention: AttentionState
    memory: Tensor
    memory_lens: Tensor
    coverage: Tensor
    steps: int = 0

    def select(self, indices: Tensor) -> LASState:
        """Rows ``indices`` (reorder, drop or repeat) of every tensor, the attention state included."""
        return select_state(self, indices)


class LASScorer:
    """The speller as a :class:`~seqspeech.decoding.interfaces.Scorer`: log-probs ``(N, V)`` of the next token.

    All per-utterance data lives in the :class:`LASState`; the scorer only refers to the (read-only) model.
    """

    def __init__(self, model: LASModel) -> None:
        self.model = model

    def score(self, tokens: Tensor, state: LASState) -> tuple[Tensor, LASState]:
        """Feed the tokens of ``tokens (N, L)`` the state has not consumed (the first call sees ``[[sos]]``)."""
        if tokens.dim() != 2 or tokens.size(0) != state.h.size(0):
            raise ValueError(f"tokens must be (N={state.h.size(0)}, L), got {tuple(tokens.shape)}")
        if tokens.size(1) <= state.steps:
            raise ValueError(f"state has consumed {state.steps} tokens, got a history of only {tokens.size(1)}")
        logits = tokens.new_empty(0)
        for i in range(state.steps, tokens.size(1)):
            logits, _, state = self.model.step(tokens[:, i], state)
        return logits.float().log_softmax(dim=-1), state

    def select_state(self, state: LASState, indices: Tensor) -> LASState:
        return state.select(indices)

    def coverage(self, state: LASState) -> Tensor:
        """``(N, T')`` cumulative attention weights (for a coverage penalty)."""
        return state.coverage


class LASModel(FeatureNormalization):
    """Listen, Attend and Spell with feature normalisation, SpecAugment and the training remedies of the module doc.

    Args:
        listener: ``(x (B, T, F), lens (B,)) -> (memory (B, T', D), lens' (B,))``.
        attention: a step-wise attention (:mod:`seqspeech.nn.attention`) with query width ``decoder_hidden`` and
            memory width ``memory_dim``; one with a ``mode`` attribute is switched soft (train) / hard (eval).
        vocab_size: V.
        memory_dim: D.
        embed_dim, decoder_hidden, decoder_layers: the speller.
        dropout: on the speller's embeddings, between its layers and before its output MLP.
        label_smoothing: of the attention cross-entropy.
        scheduled_sampling, guided_attention: remedies (None: off), read ``batch["train_step"]``.
        ctc_weight: λ of ``λ·CTC + (1-λ)·attention``; > 0 adds a CTC head on the memory.
        sos_eos, blank: the start/end id and the CTC blank.
        feature_mean, feature_std: ``(F,)`` statistics as in :class:`~seqspeech.asr.ctc.CTCModel` (None: none).
        specaugment: ``(x (B, T, F), lens (B,)) -> x``, in training mode only.
    """

    def __init__(
        self,
        listener: nn.Module,
        attention: nn.Module,
        vocab_size: int,
        *,
        memory_dim: int,
        embed_dim: int = 128,
        decoder_hidden: int = 256,
        decoder_layers: int = 1,
        dropout: float = 0.1,
        label_smoothing: float = 0.1,
        scheduled_sampling: ScheduledSamplingConfig | None = None,
        guided_attention: GuidedAttentionConfig | None = None,
        ctc_weight: float = 0.0,
        sos_eos: int = SOS_EOS_ID,
        blank: int = BLANK_ID,
        feature_mean: Tensor | None = None,
        feature_std: Tensor | None = None,
        specaugment: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if not 0 <= sos_eos < vocab_size or not 0 <= blank < vocab_size:
            raise ConfigError(f"sos_eos={sos_eos} and blank={blank} must be in [0, vocab_size={vocab_size})")
        if decoder_layers < 1:
            raise ConfigError(f"decoder_layers must be >= 1, got {decoder_layers}")
        if not 0.0 <= ctc_weight < 1.0:
            raise ConfigError(f"ctc_weight must be in [0, 1), got {ctc_weight}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.register_feature_stats(feature_mean, feature_std)
        self.specaugment = specaugment
        self.listener = listener
        self.attention = attention
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.cells = nn.ModuleList(
            nn.LSTMCell(embed_dim + memory_dim if i == 0 else decoder_hidden, decoder_hidden)
            for i in range(decoder_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Sequential(
            nn.Linear(decoder_hidden + memory_dim, decoder_hidden), nn.Tanh(), nn.Linear(decoder_hidden, vocab_size)
        )
        self.ctc_head = nn.Linear(memory_dim, vocab_size) if ctc_weight > 0 else None
        self.vocab_size = vocab_size
        self.memory_dim = memory_dim
        self.decoder_hidden = decoder_hidden
        self.label_smoothing = label_smoothing
        self.scheduled_sampling = scheduled_sampling
        self.guided_attention = guided_attention
        self.ctc_weight = ctc_weight
        self.sos_eos = sos_eos
        self.blank = blank
        self.train(self.training)  # puts a monotonic attention into the mode matching train/eval

    def train(self, mode: bool = True) -> LASModel:
        """Also switch a monotonic attention: soft expected alignments in training, hard decisions in eval."""
        super().train(mode)
        if hasattr(self.attention, "mode"):
            self.attention.mode = "soft" if mode else "hard"
        return self

    # -- listener ---------------------------------------------------------------------------------------------

    def encode(self, features: Tensor, feature_lens: Tensor) -> tuple[Tensor, Tensor]:
        """``features (B, T, F)``, ``feature_lens (B,)`` -> ``memory (B, T', D)``, ``memory_lens (B,)``.

        Never applies SpecAugment (call ``eval()`` first to disable dropout too).
        """
        return self.listener(self.normalize(features), feature_lens)

    def ctc_log_probs(self, memory: Tensor, memory_lens: Tensor) -> Tensor | None:
        """``(B, T', V)`` float32 CTC log-probs of the CTC head, or None without one."""
        if self.ctc_head is None:
            return None
        return self.ctc_head(memory).float().log_softmax(dim=-1)

    # -- speller ----------------------------------------------------------------------------------------------

    def initial_state(self, memory: Tensor, memory_lens: Tensor) -> LASState:
        """Zero LSTM states and context, the attention's initial state, zero coverage, for ``memory (N, T', D)``.

        A memory without frames (every utterance empty) gets one zero padding frame (with ``memory_lens`` 0), so
        every attention sees a non-empty time axis; the weights on it are 0 and the context is zero.
        """
        n = memory.size(0)
        if memory.size(1) == 0:
            memory = memory.new_zeros(n, 1, memory.size(2))
        zeros = memory.new_zeros(n, len(self.cells), self.decoder_hidden)
        return LASState(
            h=zeros,
            c=zeros.clone(),
            context=memory.new_zeros(n, memory.size(2)),
            attention=self.attention.init_state(memory, memory_lens),
            memory=memory,
            memory_lens=memory_lens,
            coverage=torch.zeros(n, memory.size(1), device=memory.device),
        )

    def decoder_query(
        self, prev_tokens: Tensor, h: Tensor, c: Tensor, context: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """LSTM cells on ``[embed(prev_tokens (N,)); context (N, D)]``: ``(query (N, H), h, c)``, ``h, c (N, L, H)``."""
        x = self.dropout(self.embedding(prev_tokens))
        x = torch.cat([x, context.to(x.dtype)], dim=-1)
        hs, cs = [], []
        for i, cell in enumerate(self.cells):
            h_i, c_i = cell(x, (h[:, i], c[:, i]))
            hs.append(h_i)
            cs.append(c_i)
            x = self.dropout(h_i)
        return hs[-1], torch.stack(hs, dim=1), torch.stack(cs, dim=1)

    def decoder_output(self, query: Tensor, context: Tensor) -> Tensor:
        """``query (N, H)``, ``context (N, D)`` -> next-token logits ``(N, V)``."""
        return self.output(self.dropout(torch.cat([query, context.to(query.dtype)], dim=-1)))

    def step(self, prev_tokens: Tensor, state: LASState) -> tuple[Tensor, Tensor, LASState]:
        """One speller step: ``prev_tokens (N,)`` -> ``(logits (N, V), weights (N, T'), new state)``."""
        query, h, c = self.decoder_query(prev_tokens, state.h, state.c, state.context)
        context, weights, attention = self.attention(query, state.memory, state.memory_lens, state.attention)
        logits = self.decoder_output(query, context)
        new_state = dataclasses.replace(
            state, h=h, c=c, context=context, attention=attention, coverage=state.coverage + weights.float(),
            steps=state.steps + 1,
        )
        return logits, weights, new_state

    def _spell(self, memory: Tensor, memory_lens: Tensor, inputs: Tensor, tf_prob: float) -> tuple[Tensor, Tensor]:
        """Run the speller over ``inputs (B, S)`` (``[sos] + y``): ``logits (B, S, V)``, ``weights (B, S, T')``.

        With ``tf_prob < 1`` each step after the first, each row independently feeds its own previous argmax with
        probability ``1 - tf_prob`` instead of the ground-truth input (scheduled sampling).
        """
        state = self.initial_state(memory, memory_lens)
        logits_steps: list[Tensor] = []
        weight_steps: list[Tensor] = []
        for i in range(inputs.size(1)):
            prev = inputs[:, i]
            if i and tf_prob < 1.0:
                own = torch.rand(prev.shape, device=prev.device) >= tf_prob
                prev = torch.where(own, logits_steps[-1].detach().argmax(dim=-1), prev)
            logits, weights, state = self.step(prev, state)
            logits_steps.append(logits)
            weight_steps.append(weights)
        return torch.stack(logits_steps, dim=1), torch.stack(weight_steps, dim=1)

    def _decoder_io(self, tokens: Tensor, token_lens: Tensor) -> tuple[Tensor, Tensor]:
        """Decoder inputs ``[sos] + y`` and targets ``y + [eos]``, ``(B, U+1)`` (see ``asr.base.decoder_io``)."""
        return decoder_io(tokens, token_lens, self.sos_eos, self.vocab_size)

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Training loss of a padded batch.

        ``batch``: ``features (B, T, F)``, ``feature_lens (B,)``, ``tokens (B, U)`` padded with -1 (no sos/eos),
        ``token_lens (B,)``, optionally ``train_step`` (int; drives scheduled sampling and the guided-loss decay).

        Returns 0-dim float32 tensors: ``loss`` (the only one with a graph), ``att_loss`` (label-smoothed NLL, sum
        over tokens / B), ``acc`` (argmax accuracy over the U_b + 1 targets incl. eos); ``ctc_loss`` with a CTC
        head; ``guided_loss`` (unweighted) and ``guided_weight`` with guided attention (added to ``loss`` in
        training only, when its weight is > 0); ``tf_prob`` with scheduled sampling (1 in eval or without
        ``train_step``).
        """
        features, feature_lens = batch["features"], batch["feature_lens"]
        inputs, targets = self._decoder_io(batch["tokens"], batch["token_lens"])
        if inputs.size(0) != features.size(0):
            raise ValueError(f"tokens have batch {inputs.size(0)}, features {features.size(0)}")
        train_step = batch.get("train_step")
        x = self.normalize(features)
        if self.training and self.specaugment is not None:
            x = self.specaugment(x, feature_lens)
        memory, memory_lens = self.listener(x, feature_lens)

        tf_prob = 1.0
        if self.scheduled_sampling is not None and self.training and train_step is not None:
            tf_prob = self.scheduled_sampling.teacher_forcing_prob(int(train_step))
        logits, weights = self._spell(memory, memory_lens, inputs.to(memory.device), tf_prob)
        targets = targets.to(logits.device)
        batch_size = max(features.size(0), 1)
        ctc_lp = self.ctc_log_probs(memory, memory_lens)  # under autocast like the rest; float32 out
        out: dict[str, Tensor] = {}
        with torch.autocast(device_type=logits.device.type, enabled=False):
            att_loss = label_smoothed_nll(logits.float(), targets, self.label_smoothing)
            loss = att_loss
            valid = targets != IGNORE_ID
            correct = (logits.detach().argmax(dim=-1) == targets) & valid
            out["acc"] = correct.sum().float() / valid.sum().clamp(min=1).float()
            out["att_loss"] = att_loss.detach()
            if ctc_lp is not None:
                tokens = batch["tokens"].to(ctc_lp.device)
                ctc_loss = F.ctc_loss(
                    ctc_lp.transpose(0, 1), tokens.masked_fill(tokens < 0, 0), memory_lens,
                    batch["token_lens"].to(ctc_lp.device), blank=self.blank, reduction="sum", zero_infinity=True,
                ) / batch_size
                loss = self.ctc_weight * ctc_loss + (1.0 - self.ctc_weight) * att_loss
                out["ctc_loss"] = ctc_loss.detach()
            if self.guided_attention is not None:
                cfg = self.guided_attention
                out_lens = batch["token_lens"].to(weights.device) + 1
                guided = guided_attention_loss(weights.float(), out_lens, memory_lens, cfg.sigma)
                weight = cfg.weight_at(int(train_step) if train_step is not None else 0) if self.training else 0.0
                if weight > 0:
                    loss = loss + weight * guided
                out["guided_loss"] = guided.detach()
                out["guided_weight"] = torch.tensor(float(weight), device=logits.device)
            if self.scheduled_sampling is not None:
                out["tf_prob"] = torch.tensor(float(tf_prob), device=logits.device)
        out["loss"] = loss
        return out

    @torch.no_grad()
    def attention_weights(
        self, features: Tensor, feature_lens: Tensor, tokens: Tensor, token_lens: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Teacher-forced alignments in eval mode: ``weights (B, U+1, T')`` (rows past ``U_b + 1`` zero),
        ``memory_lens (B,)``. The model's train/eval mode is restored afterwards."""
        was_training = self.training
        self.eval()
        try:
            inputs, _ = self._decoder_io(tokens, token_lens)
            memory, memory_lens = self.encode(features, feature_lens)
            _, weights = self._spell(memory, memory_lens, inputs.to(memory.device), 1.0)
        finally:
            self.train(was_training)
        rows = make_pad_mask(token_lens.to(weights.device) + 1, weights.size(1))
        return weights.float().masked_fill(rows.unsqueeze(-1), 0.0), memory_lens

    # -- decoding ---------------------------------------------------------------------------------------------

    def scorer(self, memory: Tensor, memory_lens: Tensor) -> tuple[LASScorer, LASState]:
        """A :class:`LASScorer` and its initial state for ``memory (B, T', D)``; prompt the search with ``[[sos]]``."""
        return LASScorer(self), self.initial_state(memory, memory_lens)

    @torch.no_grad()
    def greedy(
        self, features: Tensor, feature_lens: Tensor, max_len_ratio: float = DEFAULT_MAX_LEN_RATIO
    ) -> list[Hypothesis]:
        """Greedy decoding through :func:`~seqspeech.decoding.search.sample_search`: one Hypothesis per utterance
        (tokens without sos/eos), at most ``max(1, ceil(max_len_ratio * T'_b))`` tokens each
        (:func:`~seqspeech.decoding.search.new_token_caps`). Call ``eval()`` first."""
        memory, memory_lens = self.encode(features, feature_lens)
        if memory.size(0) == 0:
            return []
        scorer, state = self.scorer(memory, memory_lens)
        caps = new_token_caps(memory_lens, max_len_ratio)
        step = Step(scorer, filters=[MaxNewTokensPerInput(caps, prompt_len=1, eos=self.sos_eos)])
        prompt = torch.full((memory.size(0), 1), self.sos_eos, dtype=torch.long, device=memory.device)
        return sample_search(step, prompt, state, eot=self.sos_eos, max_new_tokens=int(caps.max()) + 1)


def las_model_from_config(
    config: LASConfig, feature_mean: Tensor | None = None, feature_std: Tensor | None = None
) -> LASModel:
    """Build the LAS model of ``config``.

    Without statistics the normalisation buffers start as mean 0, std 1 (identity), so every model built here has
    the same state-dict keys and a checkpoint's statistics load into it.
    """
    if feature_mean is None and feature_std is None:
        feature_mean = torch.zeros(config.input_dim)
        feature_std = torch.ones(config.input_dim)
    if feature_mean is not None and feature_mean.shape != (config.input_dim,):
        raise ConfigError(f"feature_mean must be ({config.input_dim},), got {tuple(feature_mean.shape)}")
    listener = PyramidalLSTMListener(
        config.input_dim, config.listener_hidden, config.listener_layers, config.pyramid_levels,
        config.bidirectional, config.dropout,
    )
    specaugment = SpecAugment.from_config(config.specaugment) if config.specaugment is not None else None
    return LASModel(
        listener,
        build_attention(config),
        config.vocab_size,
        memory_dim=config.memory_dim,
        embed_dim=config.embed_dim,
        decoder_hidden=config.decoder_hidden,
        decoder_layers=config.decoder_layers,
        dropout=config.dropout,
        label_smoothing=config.label_smoothing,
        scheduled_sampling=config.scheduled_sampling,
        guided_attention=config.guided_attention,
        ctc_weight=config.ctc_weight,
        sos_eos=config.sos_eos,
        blank=config.blank,
        feature_mean=feature_mean,
        feature_std=feature_std,
        specaugment=specaugment,
    )
