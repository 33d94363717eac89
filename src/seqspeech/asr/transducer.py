"""RNN transducer (Graves 2012) by composition: ``Transducer(encoder, predictor, joiner)``.

* **encoder**: any ``(x (B, T, F), lens (B,)) -> (y (B, T', De), lens' (B,))``; the streaming recipe uses the
  chunked causal Conformer (:class:`~seqspeech.nn.conformer.ConformerEncoder` with ``causal=True``).
* **predictor** (prediction network): an LSTM over the previous tokens, or *stateless* (icefall): an embedding of
  the last ``context_size`` tokens mixed by a grouped Conv1d. The blank id doubles as the start symbol.
* **joiner**: ``z = tanh(W_enc h_t + W_pred g_u)``, a Linear to the vocabulary (blank included); log-softmax is the
  loss's or the search's.
* optional auxiliary **CTC head** on the encoder (``ctc_weight``), which also serves chunked CTC streaming.

Training loss: ``"full"`` (the whole T x (U+1) lattice) or ``"pruned"`` (k2: a cheap additive joiner picks a band
of ``prune_range`` labels per frame, the full joiner runs on the band only), with optional FastEmit.
Shapes: B batch, T feature frames, T' encoder frames, U target tokens, V vocabulary incl. blank, De / Dp encoder /
predictor widths, J joiner width.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..audio.augment import SpecAugment, SpecAugmentConfig
from ..config import from_mapping, to_mapping
from ..errors import ConfigError
from ..nn.conformer import ConformerConfig
from .base import FeatureNormalization, speech_batch

__all__ = ["Joiner", "LSTMPredictor", "StatelessPredictor", "Transducer", "TransducerConfig",
           "transducer_model_from_config"]

DEFAULT_INPUT_DIM = ConformerConfig().input_dim
LOSSES = ("full", "pruned")


class LSTMPredictor(nn.Module):
    """Embedding -> LSTM: ``g_u`` summarises all previous tokens. ``forward(tokens (B, U)) -> (B, U+1, Dp)``
    (outputs for the contexts ``[blank]``, ``[blank, y1]``, ...)."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden: int, num_layers: int = 1, blank: int = 0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.blank = blank
        self.output_dim = hidden
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: Tensor) -> Tensor:
        start = tokens.new_full((tokens.size(0), 1), self.blank)
        y, _ = self.lstm(self.dropout(self.embedding(torch.cat([start, tokens.clamp(min=0)], dim=1))))
        return y

    def init_state(self, n: int) -> tuple[Tensor, Any]:
        """``g (n, Dp)`` for the context ``[blank]`` and the state of ``n`` hypotheses."""
        return self.step(torch.full((n,), self.blank, dtype=torch.long, device=self.embedding.weight.device), None)

    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        """Feed one token per hypothesis: ``tokens (N,)`` -> ``g (N, Dp)`` and the new ``(h, c)`` state."""
        y, state = self.lstm(self.embedding(tokens)[:, None], state)
        return y[:, 0], state

    def select_state(self, state: Any, indices: Tensor) -> Any:
        h, c = state
        return h[:, indices], c[:, indices]


class StatelessPredictor(nn.Module):
    """icefall's stateless predictor: the embeddings of the last ``context_size`` tokens, mixed by a grouped
    Conv1d, then ReLU. ``forward(tokens (B, U)) -> (B, U+1, Dp)``; the state is the last tokens ``(N, k)``."""

    def __init__(self, vocab_size: int, embed_dim: int, context_size: int = 2, blank: int = 0) -> None:
        super().__init__()
        if context_size < 1:
            raise ConfigError(f"context_size must be >= 1, got {context_size}")
        self.blank = blank
        self.output_dim = embed_dim
        self.context_size = context_size
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.conv = nn.Conv1d(embed_dim, embed_dim, context_size, groups=embed_dim // 4 or 1, bias=False) \
            if context_size > 1 else None

    def _mix(self, emb: Tensor) -> Tensor:  # (B, L + k - 1, E) -> (B, L, E)
        if self.conv is not None:
            emb = self.conv(emb.transpose(1, 2)).transpose(1, 2)
        return F.relu(emb)

    def forward(self, tokens: Tensor) -> Tensor:
        start = tokens.new_full((tokens.size(0), self.context_size), self.blank)
        return self._mix(self.embedding(torch.cat([start, tokens.clamp(min=0)], dim=1)))

    def init_state(self, n: int) -> tuple[Tensor, Any]:
        context = torch.full((n, self.context_size), self.blank, dtype=torch.long,
                             device=self.embedding.weight.device)
        return self._mix(self.embedding(context))[:, -1], context

    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        context = torch.cat([state[:, 1:], tokens[:, None]], dim=1)
        return self._mix(self.embedding(context))[:, -1], context

    def select_state(self, state: Any, indices: Tensor) -> Any:
        return state[indices]


class Joiner(nn.Module):
    """``logits = out(tanh(enc_proj + pred_proj))``; project each side once, then broadcast."""

    def __init__(self, encoder_dim: int, predictor_dim: int, joiner_dim: int, vocab_size: int) -> None:
        super().__init__()
        self.encoder_proj = nn.Linear(encoder_dim, joiner_dim)
        self.predictor_proj = nn.Linear(predictor_dim, joiner_dim)
        self.output = nn.Linear(joiner_dim, vocab_size)

    def project_encoder(self, enc: Tensor) -> Tensor:
        return self.encoder_proj(enc)

    def project_predictor(self, g: Tensor) -> Tensor:
        return self.predictor_proj(g)

    def forward(self, enc_proj: Tensor, pred_proj: Tensor) -> Tensor:
        return self.output(torch.tanh(enc_proj + pred_proj))


@dataclass(frozen=True)
class PredictorConfig:
    """``kind``: ``"lstm"`` or ``"stateless"``; ``hidden`` is the LSTM width (unused when stateless)."""

    kind: str = "lstm"
    embed_dim: int = 256
    hidden: int = 320
    num_layers: int = 1
    context_size: int = 2
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("lstm", "stateless"):
            raise ConfigError(f"PredictorConfig.kind must be 'lstm' or 'stateless', got {self.kind!r}")
        for name in ("embed_dim", "hidden", "num_layers", "context_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"PredictorConfig.{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class TransducerConfig:
    """A transducer: vocabulary (blank included), features, encoder, predictor, joiner, loss settings.

    ``loss``: ``"full"`` or ``"pruned"`` (``prune_range`` labels per frame; ``simple_loss_scale`` weighs the cheap
    additive joiner's loss, which also trains the band's choice; over the first ``prune_warmup_steps`` training
    steps, as in icefall, the simple loss's weight falls from 1 to ``simple_loss_scale`` and the pruned loss's
    rises from 0.1 to 1, since the band is poor while the simple joiner knows nothing); ``fastemit_lambda``:
    FastEmit regularisation;
    ``ctc_weight``: the auxiliary CTC head's share of the loss (0 = no head).
    """

    vocab_size: int
    input_dim: int = DEFAULT_INPUT_DIM
    encoder: ConformerConfig = ConformerConfig()
    predictor: PredictorConfig = PredictorConfig()
    joiner_dim: int = 320
    blank: int = 0
    loss: str = "pruned"
    prune_range: int = 5
    simple_loss_scale: float = 0.5
    prune_warmup_steps: int = 1000
    fastemit_lambda: float = 0.0
    ctc_weight: float = 0.1
    specaugment: SpecAugmentConfig | None = SpecAugmentConfig()

    def __post_init__(self) -> None:
        if isinstance(self.vocab_size, bool) or not isinstance(self.vocab_size, int) or self.vocab_size < 2:
            raise ConfigError(f"TransducerConfig.vocab_size must be an int >= 2, got {self.vocab_size!r}")
        if not 0 <= self.blank < self.vocab_size:
            raise ConfigError(f"TransducerConfig.blank must be in [0, {self.vocab_size}), got {self.blank}")
        if self.loss not in LOSSES:
            raise ConfigError(f"TransducerConfig.loss must be one of {LOSSES}, got {self.loss!r}")
        if self.prune_warmup_steps < 0:
            raise ConfigError(f"TransducerConfig.prune_warmup_steps must be >= 0, got {self.prune_warmup_steps}")
        if self.prune_range < 1 or self.joiner_dim < 1:
            raise ConfigError("TransducerConfig.prune_range and joiner_dim must be >= 1")
        for name in ("simple_loss_scale", "fastemit_lambda", "ctc_weight"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"TransducerConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.ctc_weight >= 1:
            raise ConfigError(f"TransducerConfig.ctc_weight must be < 1, got {self.ctc_weight}")
        if self.encoder.input_dim != self.input_dim:
            if self.encoder.input_dim != DEFAULT_INPUT_DIM:
                raise ConfigError(f"TransducerConfig.encoder.input_dim={self.encoder.input_dim} differs from "
                                  f"input_dim={self.input_dim}")
            object.__setattr__(self, "encoder", dataclasses.replace(self.encoder, input_dim=self.input_dim))

    def to_dict(self) -> dict[str, Any]:
        return to_mapping(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "TransducerConfig") -> TransducerConfig:
        return from_mapping(cls, data, where)


class Transducer(FeatureNormalization):
    """Feature normalisation, SpecAugment in training, encoder, predictor, joiner (and an optional CTC head).

    ``forward(batch)`` returns the training loss; :meth:`encode` the encoder frames for decoding (projected by
    ``joiner.project_encoder`` in the search).
    """

    def __init__(
        self,
        encoder: nn.Module,
        encoder_dim: int,
        predictor: nn.Module,
        joiner: Joiner,
        vocab_size: int,
        *,
        blank: int = 0,
        loss: str = "pruned",
        prune_range: int = 5,
        simple_loss_scale: float = 0.5,
        prune_warmup_steps: int = 0,
        fastemit_lambda: float = 0.0,
        ctc_weight: float = 0.0,
        feature_mean: Tensor | None = None,
        feature_std: Tensor | None = None,
        specaugment: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.register_feature_stats(feature_mean, feature_std)
        self.encoder = encoder
        self.predictor = predictor
        self.joiner = joiner
        self.specaugment = specaugment
        self.vocab_size = vocab_size
        self.blank = blank
        self.loss_kind = loss
        self.prune_range = prune_range
        self.simple_loss_scale = simple_loss_scale
        self.prune_warmup_steps = prune_warmup_steps
        self.register_buffer("train_steps", torch.zeros((), dtype=torch.long))  # training forwards: the warm-up clock
        self.fastemit_lambda = fastemit_lambda
        self.ctc_weight = ctc_weight
        self.ctc_head = nn.Linear(encoder_dim, vocab_size) if ctc_weight > 0 else None
        if loss == "pruned":  # k2's "simple" joiner: am + lm, trained by the simple loss
            self.simple_am = nn.Linear(encoder_dim, vocab_size)
            self.simple_lm = nn.Linear(predictor.output_dim, vocab_size)

    def loss_scales(self) -> tuple[float, float]:
        """(simple, pruned) loss weights now: icefall's warm-up, then (``simple_loss_scale``, 1)."""
        done = 1.0 if self.prune_warmup_steps == 0 else min(float(self.train_steps) / self.prune_warmup_steps, 1.0)
        return 1.0 - (1.0 - self.simple_loss_scale) * done, 0.1 + 0.9 * done

    def encode(self, features: Tensor, feature_lens: Tensor, chunk: int | None = None) -> tuple[Tensor, Tensor]:
        """``features (B, T, F)`` -> encoder frames ``(B, T', De)`` and lengths (no SpecAugment)."""
        return self._encoder(self.normalize(features), feature_lens, chunk)

    def _encoder(self, x: Tensor, lens: Tensor, chunk: int | None) -> tuple[Tensor, Tensor]:
        if chunk is None:
            return self.encoder(x, lens)
        return self.encoder(x, lens, chunk=chunk)

    def ctc_log_probs(self, enc: Tensor) -> Tensor:
        """``(B, T', De)`` -> the CTC head's ``(B, T', V)`` float32 log-probs (needs ``ctc_weight > 0``)."""
        if self.ctc_head is None:
            raise ValueError("this transducer has no CTC head (trained with ctc_weight: 0)")
        return self.ctc_head(enc).float().log_softmax(dim=-1)

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Loss of a padded batch (``features``, ``feature_lens``, ``tokens`` padded with -1, ``token_lens``):
        ``{"loss", "rnnt", "simple"?, "ctc"?}``, each the sum over utterances / B."""
        from ..losses.rnnt import prune_band, pruned_rnnt_loss, rnnt_loss, simple_rnnt_loss

        features, feature_lens, tokens, token_lens = speech_batch(batch)
        x = self.normalize(features)
        if self.training:
            self.train_steps += 1
            if self.specaugment is not None:
                x = self.specaugment(x, feature_lens)
        enc, enc_lens = self._encoder(x, feature_lens, None)
        targets = tokens.masked_fill(tokens < 0, self.blank)
        g = self.predictor(targets)  # (B, U+1, Dp)
        out: dict[str, Tensor] = {}
        with torch.autocast(device_type=enc.device.type, enabled=False):
            enc32, g32 = enc.float(), g.float()
            if self.loss_kind == "full":
                logits = self.joiner(self.joiner.project_encoder(enc32)[:, :, None], self.joiner.project_predictor(g32)[:, None])
                rnnt = rnnt_loss(logits, targets, enc_lens, token_lens, blank=self.blank,
                                 fastemit_lambda=self.fastemit_lambda)
                loss = rnnt
            else:
                simple, ranges = simple_rnnt_loss(self.simple_am(enc32), self.simple_lm(g32), targets, enc_lens,
                                                  token_lens, blank=self.blank, prune_range=self.prune_range)
                am, lm = prune_band(self.joiner.project_encoder(enc32), self.joiner.project_predictor(g32), ranges)
                rnnt = pruned_rnnt_loss(self.joiner(am, lm), ranges, targets, enc_lens, token_lens, blank=self.blank,
                                        fastemit_lambda=self.fastemit_lambda)
                out["simple"] = simple
                simple_scale, pruned_scale = self.loss_scales()
                loss = pruned_scale * rnnt + simple_scale * simple
            out["rnnt"] = rnnt
            if self.ctc_head is not None:
                ctc = F.ctc_loss(self.ctc_log_probs(enc32).transpose(0, 1), targets, enc_lens, token_lens,
                                 blank=self.blank, reduction="sum", zero_infinity=True) / max(features.size(0), 1)
                out["ctc"] = ctc
                loss = (1 - self.ctc_weight) * loss + self.ctc_weight * ctc
        out["loss"] = loss
        return out


def transducer_model_from_config(
    config: TransducerConfig, feature_mean: Tensor | None = None, feature_std: Tensor | None = None
) -> Transducer:
    """Build the Conformer transducer of ``config`` (identity normalisation buffers without statistics)."""
    if feature_mean is None and feature_std is None:
        feature_mean, feature_std = torch.zeros(config.input_dim), torch.ones(config.input_dim)
    p = config.predictor
    if p.kind == "lstm":
        predictor: nn.Module = LSTMPredictor(config.vocab_size, p.embed_dim, p.hidden, p.num_layers, config.blank,
                                             p.dropout)
    else:
        predictor = StatelessPredictor(config.vocab_size, p.embed_dim, p.context_size, config.blank)
    joiner = Joiner(config.encoder.d_model, predictor.output_dim, config.joiner_dim, config.vocab_size)
    specaugment = SpecAugment.from_config(config.specaugment) if config.specaugment is not None else None
    return Transducer(
        config.encoder.build(), config.encoder.d_model, predictor, joiner, config.vocab_size,
        blank=config.blank, loss=config.loss, prune_range=config.prune_range,
        simple_loss_scale=config.simple_loss_scale, prune_warmup_steps=config.prune_warmup_steps,
        fastemit_lambda=config.fastemit_lambda,
        ctc_weight=config.ctc_weight, feature_mean=feature_mean, feature_std=feature_std, specaugment=specaugment,
    )
