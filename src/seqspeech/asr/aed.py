"""Hybrid CTC/attention encoder-decoder ASR (ESPnet style; Watanabe et al. 2017, "Hybrid CTC/Attention").

::

    features -> normalisation -> SpecAugment (training only) -> Conformer encoder -> memory (B, T', De)
        memory -> Dropout -> Linear -> CTC log-probs (B, T', V)                       (when ctc_weight > 0)
        memory -> Transformer decoder([sos] + tokens) -> logits (B, U+1, V) predicting tokens + [eos]

    loss = λ·CTC + (1-λ)·label-smoothed cross-entropy  (+ w(step)·guided attention, when configured)

Both losses are summed over tokens and divided by B (:mod:`seqspeech.losses`), so they mix like terms.
Decoding is joint CTC/attention beam search (:meth:`AEDModel.decode`): the model offers ``scorer(memory, lens)``
(the incremental :class:`AEDScorer`, with ``coverage(state)``) and ``ctc_log_probs(memory, lens)``, and
:func:`seqspeech.decoding.attention.attention_decode` runs the repo's one beam search with the decoder's
log-probs weighted ``1 - λ`` (``Step.primary_weight``) and the CTC prefix scorer weighted ``λ``.

The decoder is a pre-LN Transformer (causal self-attention, source attention, ReLU feed-forward) with sinusoidal
absolute positions and a tied or untied output projection. Source-attention weights of one layer
(``align_layer``, mean over heads) are computed explicitly when asked, for the guided-attention loss, attention
plots and the coverage that :class:`AEDScorer` accumulates; every other attention uses the fused
``F.scaled_dot_product_attention``.

Two-pass scheduled sampling for Transformers (Mihaylova & Martins 2019): pass 1 runs the decoder teacher-forced
without gradients, its argmax predictions replace each ground-truth input token with probability ``1 - ε``
(``ε`` = teacher-forcing probability of the schedule at ``batch["train_step"]``), pass 2 runs on the mixed inputs
with gradients. Training mode only.

Shapes: B batch, T feature frames, F mel bins, T' encoder frames, De encoder width, D decoder width, H heads,
Dh = D / H, U target tokens, V vocabulary, N hypotheses (beam rows), L history length.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqspeech.asr.base import FeatureNormalization, decoder_io, speech_batch
from seqspeech.audio.augment import SpecAugment, SpecAugmentConfig
from seqspeech.config import from_mapping, to_mapping
from seqspeech.decoding.attention import BLANK, SOS_EOS, AttentionDecodeOptions, attention_decode
from seqspeech.decoding.interfaces import Scorer
from seqspeech.decoding.search import Hypothesis
from seqspeech.errors import ConfigError
from seqspeech.nn.conformer import ConformerConfig
from seqspeech.losses import IGNORE_ID, guided_attention_loss, label_smoothed_nll
from seqspeech.nn.masks import make_pad_mask, wait_k_visible
from seqspeech.nn.transformer import TransformerDecoder
from seqspeech.training.sampling import GuidedAttentionConfig, ScheduledSamplingConfig

__all__ = [
    "AEDConfig",
    "AEDDecoderState",
    "AEDModel",
    "AEDScorer",
    "aed_model_from_config",
]

DEFAULT_INPUT_DIM = ConformerConfig().input_dim


def _positive_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value > 0


@dataclass(frozen=True)
class AEDConfig:
    """A hybrid CTC/attention model: vocabulary, feature width, encoder, decoder, loss mix and training remedies.

    ``encoder.input_dim`` follows ``input_dim`` as in :class:`seqspeech.asr.ctc.CTCConfig`. ``decoder_dim=None``
    means the encoder's ``d_model``; any other width adds a Linear from the encoder output to the decoder.
    ``ctc_weight`` λ in [0, 1]: 0 builds no CTC head, 1 trains (and decodes with) CTC only. ``align_layer``
    indexes the decoder layers (negative counts from the end, default the last): its source attention is the
    one that guided attention, :meth:`AEDModel.attention_weights` and the decoding coverage read.
    ``blank`` is the CTC blank, ``sos_eos`` the shared start/end id of the decoder (the char tokenizer's 0 and 2).
    """

    vocab_size: int
    input_dim: int = DEFAULT_INPUT_DIM
    encoder: ConformerConfig = ConformerConfig()
    decoder_layers: int = 4
    decoder_dim: int | None = None
    decoder_heads: int = 4
    decoder_ff: int = 1024
    decoder_dropout: float = 0.1
    tie_output: bool = False
    align_layer: int = -1
    ctc_weight: float = 0.3
    label_smoothing: float = 0.1
    blank: int = 0
    sos_eos: int = 2
    scheduled_sampling: ScheduledSamplingConfig | None = None
    guided_attention: GuidedAttentionConfig | None = None
    specaugment: SpecAugmentConfig | None = SpecAugmentConfig()

    def __post_init__(self) -> None:
        for name in ("vocab_size", "input_dim", "decoder_layers", "decoder_heads", "decoder_ff"):
            if not _positive_int(getattr(self, name)):
                raise ConfigError(f"AEDConfig.{name} must be a positive int, got {getattr(self, name)!r}")
        if self.decoder_dim is not None and not _positive_int(self.decoder_dim):
            raise ConfigError(f"AEDConfig.decoder_dim must be None or a positive int, got {self.decoder_dim!r}")
        if self.vocab_size < 3:
            raise ConfigError(f"AEDConfig.vocab_size must be >= 3 (blank, unk, sos/eos), got {self.vocab_size}")
        for name in ("blank", "sos_eos"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < self.vocab_size:
                raise ConfigError(f"AEDConfig.{name} must be an id in [0, {self.vocab_size}), got {value!r}")
        if self.blank == self.sos_eos:
            raise ConfigError(f"AEDConfig.blank and sos_eos must differ, both are {self.blank}")
        dim = self.decoder_width
        if dim % self.decoder_heads:
            raise ConfigError(f"AEDConfig.decoder_dim={dim} is not divisible by decoder_heads={self.decoder_heads}")
        if dim % 2:
            raise ConfigError(f"AEDConfig.decoder_dim={dim} must be even (sinusoidal positions)")
        if not -self.decoder_layers <= self.align_layer < self.decoder_layers:
            raise ConfigError(
                f"AEDConfig.align_layer={self.align_layer} is outside [-{self.decoder_layers}, "
                f"{self.decoder_layers}) for decoder_layers={self.decoder_layers}"
            )
        if not 0.0 <= self.ctc_weight <= 1.0:
            raise ConfigError(f"AEDConfig.ctc_weight must be in [0, 1], got {self.ctc_weight}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"AEDConfig.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0.0 <= self.decoder_dropout < 1.0:
            raise ConfigError(f"AEDConfig.decoder_dropout must be in [0, 1), got {self.decoder_dropout}")
        if self.encoder.input_dim != self.input_dim:
            if self.encoder.input_dim != DEFAULT_INPUT_DIM:
                raise ConfigError(
                    f"AEDConfig.encoder.input_dim={self.encoder.input_dim} differs from input_dim={self.input_dim}"
                )
            object.__setattr__(self, "encoder", dataclasses.replace(self.encoder, input_dim=self.input_dim))

    @property
    def decoder_width(self) -> int:
        """D: ``decoder_dim``, or the encoder's ``d_model`` when it is None."""
        return self.encoder.d_model if self.decoder_dim is None else self.decoder_dim

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts (JSON/YAML-able); :meth:`from_dict` inverts it."""
        return to_mapping(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "AEDConfig") -> AEDConfig:
        """Strict: an unknown key anywhere (``decoder_layer``, ``scheduled_sampling.kindd``) is a ConfigError."""
        return from_mapping(cls, data, where)


# -- decoder ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AEDDecoderState:
    """Per-hypothesis state of :class:`AEDScorer` (N rows); never modified in place.

    batch (N,): the utterance of each row (indexes the scorer's per-utterance source keys/values).
    self_k, self_v: per decoder layer, ``(N, H, consumed, Dh)`` self-attention keys/values of the consumed tokens.
    coverage (N, T'): float32, the source attention of ``align_layer`` (mean over heads) summed over consumed
        positions (each position's attention predicts the next token).
    consumed: tokens fed so far (all rows have the same history length).
    """

    batch: Tensor
    self_k: tuple[Tensor, ...]
    self_v: tuple[Tensor, ...]
    coverage: Tensor
    consumed: int


class AEDScorer:
    """Incremental Transformer decoding as a :class:`seqspeech.decoding.interfaces.Scorer`.

    Args:
        decoder: the model's :class:`TransformerDecoder` (put the model in eval mode first).
        memory: ``(B, T', De)`` encoder output; memory_lens ``(B,)`` with every length >= 1.

    ``wait_k``: a wait-k policy (simultaneous translation): the token after decoder position ``p`` (``p = 0`` is
    the start token) attends only the first ``p + k`` source frames.

    The source keys/values are projected once per utterance here; :meth:`init_state` gives B rows, the search
    reorders them with :meth:`select_state`. ``score(tokens (N, L), state)`` feeds ``tokens[:, consumed:]`` (the
    prompt on the first call, then one token per call) and returns the next token's log-probs ``(N, V)`` float32.
    """

    def __init__(self, decoder: TransformerDecoder, memory: Tensor, memory_lens: Tensor, *,
                 wait_k: int | None = None) -> None:
        if memory.dim() != 3 or memory_lens.shape != (memory.size(0),):
            raise ValueError(
                f"expected memory (B, T', D) and memory_lens (B,), got {tuple(memory.shape)} and "
                f"{tuple(memory_lens.shape)}"
            )
        if memory.size(0) and (int(memory_lens.min()) < 1 or int(memory_lens.max()) > memory.size(1)):
            raise ValueError(f"memory_lens must be in [1, {memory.size(1)}], got {memory_lens.tolist()}")
        self.decoder = decoder
        self.vocab_size = decoder.vocab_size
        self.memory_lens = memory_lens
        self.frames = memory.size(1)
        projected = decoder.memory_proj(memory)
        kv = [layer.source_kv(projected) for layer in decoder.layers]
        self.src_k = [k for k, _ in kv]
        self.src_v = [v for _, v in kv]
        self.src_visible = ~make_pad_mask(memory_lens, self.frames)[:, None, None, :]  # (B, 1, 1, T')
        if wait_k is not None and (isinstance(wait_k, bool) or not isinstance(wait_k, int) or wait_k < 1):
            raise ValueError(f"wait_k must be None or an int >= 1, got {wait_k!r}")
        self.wait_k = wait_k

    def init_state(self) -> AEDDecoderState:
        """The empty history for each of the B utterances."""
        k0 = self.src_k[0]
        batch, device = k0.size(0), k0.device
        empty = k0.new_zeros(batch, k0.size(1), 0, k0.size(3))
        layers = len(self.src_k)
        return AEDDecoderState(
            batch=torch.arange(batch, device=device),
            self_k=(empty,) * layers,
            self_v=(empty,) * layers,
            coverage=torch.zeros(batch, self.frames, device=device),
            consumed=0,
        )

    def score(self, tokens: Tensor, state: AEDDecoderState) -> tuple[Tensor, AEDDecoderState]:
        """``tokens (N, L)`` -> ``(log-probs (N, V) float32 of the token after position L-1, new state)``."""
        if tokens.dim() != 2 or tokens.size(0) != state.batch.numel():
            raise ValueError(f"tokens must be (N={state.batch.numel()}, L), got {tuple(tokens.shape)}")
        if tokens.size(1) <= state.consumed:
            raise ValueError(
                f"AEDScorer: the state has consumed {state.consumed} tokens, the history has only {tokens.size(1)}"
            )
        new = tokens[:, state.consumed :]
        if bool((new < 0).any()) or bool((new >= self.decoder.vocab_size).any()):
            raise ValueError(f"token ids must be in [0, {self.decoder.vocab_size}), got {new.tolist()}")
        x = self.decoder.embed_tokens(new, start=state.consumed)
        rows = state.batch
        visible = self.src_visible[rows]
        if self.wait_k is not None:  # (N, 1, L, T')
            visible = visible & wait_k_visible(state.consumed, new.size(1), self.frames, self.wait_k,
                                               visible.device)[None, None]
        self_k, self_v = [], []
        coverage = state.coverage
        for i, layer in enumerate(self.decoder.layers):
            want = i == self.decoder.align_layer
            x, k, v, w = layer.step(
                x, state.self_k[i], state.self_v[i], self.src_k[i][rows], self.src_v[i][rows], visible, want
            )
            self_k.append(k)
            self_v.append(v)
            if want:
                assert w is not None
                coverage = coverage + w.float().mean(dim=1).sum(dim=1)
        log_probs = self.decoder.logits(x[:, -1:]).float().log_softmax(dim=-1)[:, 0]
        return log_probs, AEDDecoderState(rows, tuple(self_k), tuple(self_v), coverage, tokens.size(1))

    def select_state(self, state: AEDDecoderState, indices: Tensor) -> AEDDecoderState:
        """Rows ``indices (N',)`` of the state (reorder, drop or repeat hypotheses)."""
        idx = indices.to(state.batch.device)
        return AEDDecoderState(
            batch=state.batch[idx],
            self_k=tuple(k[idx] for k in state.self_k),
            self_v=tuple(v[idx] for v in state.self_v),
            coverage=state.coverage[idx],
            consumed=state.consumed,
        )

    @staticmethod
    def coverage(state: AEDDecoderState) -> Tensor:
        """``(N, T')`` cumulative source attention of ``align_layer`` (head mean) over the consumed positions."""
        return state.coverage


# -- model -------------------------------------------------------------------------------------------------------


class AEDModel(FeatureNormalization):
    """Hybrid CTC/attention ASR: normalisation, SpecAugment in training, an encoder, a CTC head, a decoder.

    Args:
        encoder: ``(x (B, T, F), lens (B,)) -> (memory (B, T', De), lens' (B,))``.
        encoder_dim: De.
        decoder: a :class:`TransformerDecoder` whose ``memory_dim`` is De.
        vocab_size: V (shared by the CTC head and the decoder).
        ctc_weight: λ in [0, 1]; with λ = 0 there is no CTC head.
        blank, sos_eos: CTC blank id; the decoder's shared start/end id.
        label_smoothing: ε of the attention cross-entropy.
        feature_mean, feature_std: ``(F,)`` global statistics (buffers), or None for no normalisation.
        specaugment: ``(x, lens) -> x``, applied to normalised features in training mode only.
        ctc_dropout: dropout on the encoder output before the CTC Linear.
        scheduled_sampling: two-pass scheduled sampling schedule (training only), or None.
        guided_attention: guided-attention loss schedule on ``align_layer`` (training only), or None.
    """

    def __init__(
        self,
        encoder: nn.Module,
        encoder_dim: int,
        decoder: TransformerDecoder,
        vocab_size: int,
        *,
        ctc_weight: float = 0.3,
        blank: int = 0,
        sos_eos: int = 2,
        label_smoothing: float = 0.1,
        feature_mean: Tensor | None = None,
        feature_std: Tensor | None = None,
        specaugment: nn.Module | None = None,
        ctc_dropout: float = 0.1,
        scheduled_sampling: ScheduledSamplingConfig | None = None,
        guided_attention: GuidedAttentionConfig | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= ctc_weight <= 1.0:
            raise ConfigError(f"ctc_weight must be in [0, 1], got {ctc_weight}")
        for name, value in (("blank", blank), ("sos_eos", sos_eos)):
            if not 0 <= value < vocab_size:
                raise ConfigError(f"{name}={value} must be in [0, vocab_size={vocab_size})")
        if decoder.vocab_size != vocab_size:
            raise ConfigError(f"the decoder has {decoder.vocab_size} tokens, the model {vocab_size}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.register_feature_stats(feature_mean, feature_std)
        self.encoder = encoder
        self.specaugment = specaugment
        self.decoder = decoder
        self.ctc_dropout = nn.Dropout(ctc_dropout)
        self.ctc = nn.Linear(encoder_dim, vocab_size) if ctc_weight > 0 else None
        self.vocab_size = vocab_size
        self.ctc_weight = float(ctc_weight)
        self.blank = blank
        self.sos_eos = sos_eos
        self.label_smoothing = float(label_smoothing)
        self.scheduled_sampling = scheduled_sampling
        self.guided_attention = guided_attention

    # -- encoder side ----------------------------------------------------------------------------------------

    def _encode(self, features: Tensor, feature_lens: Tensor, augment: bool) -> tuple[Tensor, Tensor]:
        x = self.normalize(features)
        if augment and self.specaugment is not None:
            x = self.specaugment(x, feature_lens)
        return self.encoder(x, feature_lens)

    def encode(self, features: Tensor, feature_lens: Tensor) -> tuple[Tensor, Tensor]:
        """``features (B, T, F)``, ``feature_lens (B,)`` -> ``memory (B, T', De)``, ``memory_lens (B,)``.

        Never applies SpecAugment (call ``eval()`` first to disable dropout too).
        """
        return self._encode(features, feature_lens, augment=False)

    def ctc_log_probs(self, memory: Tensor, memory_lens: Tensor) -> Tensor | None:
        """``memory (B, T', De)`` -> CTC log-probs ``(B, T', V)`` float32 (None without a CTC head).

        ``memory_lens (B,)`` is checked against the memory; frames past it are not meaningful.
        """
        if memory_lens.shape != (memory.size(0),):
            raise ValueError(f"memory_lens must be ({memory.size(0)},), got {tuple(memory_lens.shape)}")
        if self.ctc is None:
            return None
        return self.ctc(self.ctc_dropout(memory)).float().log_softmax(dim=-1)

    # -- decoder side ----------------------------------------------------------------------------------------

    def decoder_io(self, tokens: Tensor, token_lens: Tensor) -> tuple[Tensor, Tensor]:
        """Decoder inputs ``[sos] + tokens`` and targets ``tokens + [eos]``, each ``(B, U+1)``
        (:func:`seqspeech.asr.base.decoder_io`)."""
        return decoder_io(tokens, token_lens, self.sos_eos, self.vocab_size)

    def sample_inputs(
        self,
        ys_in: Tensor,
        memory: Tensor,
        memory_lens: Tensor,
        tf_prob: float,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Pass 1 of two-pass scheduled sampling: ``ys_in (B, U+1)`` -> mixed inputs ``(B, U+1)``.

        The decoder runs teacher-forced on ``ys_in`` without gradients; input token ``u >= 1`` keeps its ground
        truth with probability ``tf_prob`` and otherwise becomes the pass-1 argmax prediction at position ``u-1``
        (what the model would have fed itself). Position 0 (sos) is never replaced.
        """
        if not 0.0 <= tf_prob <= 1.0:
            raise ValueError(f"tf_prob must be in [0, 1], got {tf_prob}")
        with torch.no_grad():
            logits, _ = self.decoder(ys_in, memory, memory_lens)
            predicted = logits.argmax(dim=-1)  # (B, U+1): the token after each position
        keep = torch.rand(ys_in[:, 1:].shape, generator=generator, device=ys_in.device) < tf_prob
        return torch.cat([ys_in[:, :1], torch.where(keep, ys_in[:, 1:], predicted[:, :-1])], dim=1)

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Hybrid loss of a padded batch.

        ``batch``: ``features (B, T, F)``, ``feature_lens (B,)``, ``tokens (B, U)`` padded with -1, ``token_lens
        (B,)``; optional ``train_step`` (int) for the schedules.

        Returns 0-dim tensors: ``loss = λ·ctc_loss + (1-λ)·att_loss (+ w·guided_loss)``, ``att_loss``
        (label-smoothed cross-entropy of tokens + eos), ``ctc_loss`` (when λ > 0), ``acc`` (teacher-forced argmax
        accuracy over tokens + eos), ``tf_prob`` (with scheduled sampling: 1 in eval) and ``guided_loss`` (training
        with a guided-attention weight > 0). Losses are float32, summed over tokens and divided by B.
        """
        features, feature_lens, tokens, token_lens = speech_batch(batch)
        step = int(batch.get("train_step", 0))
        batch_size = max(features.size(0), 1)
        memory, memory_lens = self._encode(features, feature_lens, augment=self.training)
        ys_in, ys_out = self.decoder_io(tokens, token_lens)
        out: dict[str, Tensor] = {}

        if self.scheduled_sampling is not None:
            tf_prob = self.scheduled_sampling.teacher_forcing_prob(step) if self.training else 1.0
            if tf_prob < 1.0:
                ys_in = self.sample_inputs(ys_in, memory, memory_lens, tf_prob)
            out["tf_prob"] = torch.tensor(tf_prob, device=features.device)
        guided_weight = 0.0
        if self.training and self.guided_attention is not None:
            guided_weight = self.guided_attention.weight_at(step)

        logits, weights = self.decoder(ys_in, memory, memory_lens, need_weights=guided_weight > 0)
        att_loss = label_smoothed_nll(logits, ys_out, self.label_smoothing)
        loss = (1.0 - self.ctc_weight) * att_loss
        out["att_loss"] = att_loss
        with torch.no_grad():
            mask = ys_out != IGNORE_ID
            hits = (logits.argmax(dim=-1) == ys_out) & mask
            out["acc"] = hits.sum().float() / mask.sum().clamp(min=1).float()

        log_probs = self.ctc_log_probs(memory, memory_lens)
        if log_probs is not None:
            targets = tokens.masked_fill(tokens < 0, 0)
            with torch.autocast(device_type=log_probs.device.type, enabled=False):
                ctc_loss = F.ctc_loss(
                    log_probs.transpose(0, 1), targets, memory_lens, token_lens, blank=self.blank,
                    reduction="sum", zero_infinity=True,
                ) / batch_size
            out["ctc_loss"] = ctc_loss
            loss = loss + self.ctc_weight * ctc_loss
        if weights is not None:
            assert self.guided_attention is not None
            guided = guided_attention_loss(weights, token_lens + 1, memory_lens, self.guided_attention.sigma)
            out["guided_loss"] = guided
            loss = loss + guided_weight * guided
        out["loss"] = loss
        return out

    def attention_weights(
        self, features: Tensor, feature_lens: Tensor, tokens: Tensor, token_lens: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Teacher-forced source attention of ``align_layer`` (mean over heads), in eval mode, no gradients.

        ``tokens (B, U)`` padded with -1 -> ``(weights (B, U+1, T'), memory_lens (B,))``: row u is the attention
        of decoder input u (sos, then the tokens), which predicts target u (the tokens, then eos); rows past
        ``token_lens + 1`` and frames past ``memory_lens`` are zero.
        """
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                memory, memory_lens = self.encode(features, feature_lens)
                ys_in, _ = self.decoder_io(tokens, token_lens)
                _, weights = self.decoder(ys_in, memory, memory_lens, need_weights=True)
        finally:
            self.train(was_training)
        assert weights is not None
        rows = make_pad_mask(token_lens.to(weights.device) + 1, weights.size(1))
        return weights.masked_fill(rows[:, :, None], 0.0), memory_lens

    def scorer(self, memory: Tensor, memory_lens: Tensor) -> tuple[AEDScorer, AEDDecoderState]:
        """An incremental :class:`AEDScorer` over ``memory (B, T', De)`` and its initial state (B rows)."""
        scorer = AEDScorer(self.decoder, memory, memory_lens)
        return scorer, scorer.init_state()

    def decode(
        self,
        features: Tensor,
        feature_lens: Tensor,
        options: AttentionDecodeOptions | None = None,
        lm: Scorer | None = None,
    ) -> list[list[Hypothesis]]:
        """Joint CTC/attention decoding of a feature batch (eval mode, no gradients): per utterance its n-best.

        Runs :func:`seqspeech.decoding.attention.attention_decode` (the repo's one beam search, with
        :class:`AEDScorer` as the primary scorer weighted ``1 - λ`` and the CTC prefix scorer weighted ``λ``).
        Default options: beam 10 with this model's ``ctc_weight``. ``lm``: a token-level Scorer for shallow
        fusion (``options.lm_weight``).
        """
        if (self.blank, self.sos_eos) != (BLANK, SOS_EOS):
            raise ConfigError(
                f"decoding expects blank={BLANK} and sos/eos={SOS_EOS}, this model has {self.blank} and "
                f"{self.sos_eos}"
            )
        if options is None:
            options = AttentionDecodeOptions(beam_size=10, ctc_weight=self.ctc_weight)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                memory, memory_lens = self.encode(features, feature_lens)
                return attention_decode(self, memory, memory_lens, options, lm)
        finally:
            self.train(was_training)


def aed_model_from_config(
    config: AEDConfig, feature_mean: Tensor | None = None, feature_std: Tensor | None = None
) -> AEDModel:
    """Build the Conformer AED model of ``config``.

    Without statistics the normalisation buffers start as mean 0, std 1 (identity), so every model built here
    has the same state-dict keys and a checkpoint's statistics load into it.
    """
    if feature_mean is None and feature_std is None:
        feature_mean = torch.zeros(config.input_dim)
        feature_std = torch.ones(config.input_dim)
    if feature_mean is not None and feature_mean.shape != (config.input_dim,):
        raise ConfigError(f"feature_mean must be ({config.input_dim},), got {tuple(feature_mean.shape)}")
    specaugment = SpecAugment.from_config(config.specaugment) if config.specaugment is not None else None
    decoder = TransformerDecoder(
        config.vocab_size,
        config.decoder_width,
        config.decoder_layers,
        config.decoder_heads,
        config.decoder_ff,
        config.decoder_dropout,
        memory_dim=config.encoder.d_model,
        tie_output=config.tie_output,
        align_layer=config.align_layer,
    )
    return AEDModel(
        config.encoder.build(),
        config.encoder.d_model,
        decoder,
        config.vocab_size,
        ctc_weight=config.ctc_weight,
        blank=config.blank,
        sos_eos=config.sos_eos,
        label_smoothing=config.label_smoothing,
        feature_mean=feature_mean,
        feature_std=feature_std,
        specaugment=specaugment,
        ctc_dropout=config.encoder.dropout,
        scheduled_sampling=config.scheduled_sampling,
        guided_attention=config.guided_attention,
    )
