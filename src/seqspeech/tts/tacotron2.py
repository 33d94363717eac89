"""Tacotron 2 (Shen et al., 2018): an attention-based acoustic model, text tokens -> log-mel frames.

Pipeline (as NVIDIA's tacotron2, but every decoder quantity lives in an explicit :class:`DecoderState`)::

    memory = BiLSTM(3 x [conv(k=5) -> batch norm -> ReLU -> dropout](embed(tokens)))          # (B, U, D)
    per decoder step (r frames each):
        p       = prenet(previous frame)           # 2 x [linear -> ReLU -> dropout 0.5], dropout ON at inference
        a, _    = attention LSTM([p; context])
        context, alpha = location-sensitive attention(a, memory)   # conv of previous AND cumulative alignment
        d       = decoder LSTM x decoder_layers([a; context])
        frames  = linear([d; context]) -> (n_mels, r);   stop logits = linear([d; context]) -> (r,)
    mel = frames + postnet(frames)                 # 5 x [conv(k=5) -> batch norm -> tanh (not the last) -> dropout]

Decoder steps: with reduction factor ``r`` each step emits ``r`` frames and the prenet reads the LAST frame of the
previous step (the first step reads a "go" frame of silence, ``TTS_LOG_SILENCE``). The targets are padded to a
multiple of ``r`` with silence inside the model.

Losses (:meth:`Tacotron2.forward`): ``mel_loss`` and ``postnet_loss`` are the MSE (``mel_loss="mse"``, the paper's
choice) or L1 + MSE (``"l1_mse"``) of the frames before and after the post-net, averaged over valid frames and mel
bins; ``stop_loss`` is a binary cross-entropy on every frame of the decoder steps an utterance runs
(``ceil(mel_len / r) * r`` frames), target 1 from the last valid frame on, with ``stop_pos_weight`` on the positive
class; ``guided_loss`` is the guided-attention loss (Tachibana et al. 2017, :mod:`seqspeech.losses.guided_attention`)
per decoder step, weighted by :meth:`GuidedAttentionConfig.weight_at` of ``batch["train_step"]`` (training only).

Inference: :meth:`Tacotron2.infer` decodes a batch; each utterance ends at the first frame whose stop probability
exceeds ``stop_threshold`` (that frame is its last), independently of the others, or at ``max_decoder_steps`` (the
``hit_max_steps`` flag says so). :meth:`Tacotron2.infer_stream` yields post-net mel chunks while decoding; their
concatenation equals :meth:`infer`'s mel for the same ``generator`` seed. Inference always uses batch norm's running
statistics and no dropout except the prenet's (pass a seeded ``torch.Generator`` for reproducible output), whatever
the module's train/eval mode, and never writes to the module.

Masking: every convolution's input is zeroed past each utterance's length, so an utterance padded inside a batch
gives the outputs it gives alone (in training, batch norm's batch statistics still include padded frames). The
prenet's dropout masks are drawn for the whole batch, so with dropout an utterance decoded inside a batch is a
different random draw than alone (identical with ``prenet_dropout=0``).

Differences from NVIDIA's tacotron2: no state on ``self``; the go frame is silence (``TTS_LOG_SILENCE``, the
value of a silent log-mel bin) rather than zeros; the LSTM-output dropout (``rnn_dropout``) is not fed back into
the recurrent state; the first step's "previous alignment" is uniform over the tokens (the shared
:class:`~seqspeech.nn.attention.LocationAwareAttention` convention), the cumulative one zero; an ``r``-wise stop
logit (one per frame) so lengths are exact to the frame for any ``r``; padding is masked everywhere. Mels are the
raw natural-log mels of :mod:`seqspeech.tts.mel` (no extra normalisation), as NVIDIA's.

Shapes: B batch, U tokens, D encoder width (``encoder_dim``), M mel bins, T frames, S decoder steps (T = S * r).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqspeech.config import from_mapping, to_mapping
from seqspeech.errors import ConfigError, DataError
from seqspeech.losses import guided_attention_loss
from seqspeech.nn.attention import AttentionState, LocationAwareAttention
from seqspeech.nn.attention import select_state
from seqspeech.nn.masks import make_pad_mask
from seqspeech.nn.rnn import run_packed
from seqspeech.training.sampling import GuidedAttentionConfig
from seqspeech.tts.layers import MaskedConvStack, Postnet
from seqspeech.tts.mel import TTS_LOG_SILENCE, TTS_N_MELS

__all__ = [
    "MEL_LOSSES",
    "PRENET_LAYERS",
    "DecoderState",
    "MaskedConvStack",
    "Prenet",
    "Tacotron2",
    "Tacotron2Config",
    "Tacotron2Encoder",
    "Tacotron2Output",
    "Postnet",
    "stop_targets",
    "tacotron2_base",
    "tacotron2_small",
]

PRENET_LAYERS = 2  # the paper's prenet: 2 fully connected ReLU layers
MEL_LOSSES = ("mse", "l1_mse")
PAD_ID = 0  # token id 0 is padding in the TTS batch layout


# ----------------------------------------------------------------
# Config


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"Tacotron2Config.{name} must be an int >= {low}, got {value!r}")


def _check_odd(name: str, value: Any) -> None:
    _check_int(name, value, 1)
    if value % 2 == 0:
        raise ConfigError(f"Tacotron2Config.{name} must be odd (a centred convolution), got {value}")


def _check_float(name: str, value: Any, low: float, high: float, *, low_open: bool = False,
                 high_open: bool = True) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (low < value if low_open else low <= value) and (value < high if high_open else value <= high)
    if not ok:
        bounds = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ConfigError(f"Tacotron2Config.{name} must be a number in {bounds}, got {value!r}")


@dataclass(frozen=True)
class Tacotron2Config:
    """A Tacotron 2 model; the defaults are the paper's sizes except ``decoder_layers`` (see below).

    Encoder: ``embed_dim`` embeddings (id 0 = padding) -> ``encoder_convs`` convolutions of width ``encoder_kernel``
    (odd) -> a BiLSTM of ``encoder_dim // 2`` units per direction (``encoder_dim`` even). Attention:
    ``attention_dim`` units, ``location_filters`` filters of width ``location_kernel`` (odd) over the previous and
    cumulative alignments. Decoder: prenet of :data:`PRENET_LAYERS` x ``prenet_dim`` units (dropout
    ``prenet_dropout``, always on), an attention LSTM of ``attention_rnn_dim`` units, ``decoder_layers`` LSTM cells
    of ``decoder_dim`` units (default 2, per issue 5: "attention LSTM + 2-layer decoder LSTM"; the paper's stack
    of two LSTMs is ``decoder_layers=1``), ``reduction`` frames per step. Post-net: ``postnet_layers`` convolutions
    of ``postnet_dim`` channels, width ``postnet_kernel`` (odd). ``dropout``: after every encoder and post-net
    convolution (training only); ``rnn_dropout``: on the attention and decoder LSTM outputs (training only).
    Loss: ``mel_loss`` in :data:`MEL_LOSSES`, ``stop_pos_weight`` on the positive stop frames, ``guided_attention``
    (None: weight 0, the loss is still reported). Inference: at most ``max_decoder_steps`` steps (``* reduction``
    frames), stop when the stop probability exceeds ``stop_threshold``.
    """

    vocab_size: int
    n_mels: int = TTS_N_MELS
    embed_dim: int = 512
    encoder_convs: int = 3
    encoder_kernel: int = 5
    encoder_dim: int = 512
    attention_dim: int = 128
    attention_rnn_dim: int = 1024
    decoder_dim: int = 1024
    decoder_layers: int = 2
    prenet_dim: int = 256
    prenet_dropout: float = 0.5
    location_filters: int = 32
    location_kernel: int = 31
    postnet_dim: int = 512
    postnet_layers: int = 5
    postnet_kernel: int = 5
    reduction: int = 1
    dropout: float = 0.5
    rnn_dropout: float = 0.1
    mel_loss: str = "mse"
    stop_pos_weight: float = 5.0
    guided_attention: GuidedAttentionConfig | None = GuidedAttentionConfig()
    max_decoder_steps: int = 1000
    stop_threshold: float = 0.5

    def __post_init__(self) -> None:
        _check_int("vocab_size", self.vocab_size, 2)
        for name in ("n_mels", "embed_dim", "encoder_convs", "attention_dim", "attention_rnn_dim", "decoder_dim",
                     "decoder_layers", "prenet_dim", "location_filters", "postnet_dim", "postnet_layers",
                     "reduction", "max_decoder_steps"):
            _check_int(name, getattr(self, name), 1)
        _check_int("encoder_dim", self.encoder_dim, 2)
        if self.encoder_dim % 2:
            raise ConfigError(f"Tacotron2Config.encoder_dim must be even (two LSTM directions), got {self.encoder_dim}")
        for name in ("encoder_kernel", "location_kernel", "postnet_kernel"):
            _check_odd(name, getattr(self, name))
        for name in ("prenet_dropout", "dropout", "rnn_dropout"):
            _check_float(name, getattr(self, name), 0.0, 1.0)
        _check_float("stop_pos_weight", self.stop_pos_weight, 0.0, math.inf, low_open=True)
        _check_float("stop_threshold", self.stop_threshold, 0.0, 1.0, low_open=True)
        if self.mel_loss not in MEL_LOSSES:
            raise ConfigError(f"Tacotron2Config.mel_loss must be one of {list(MEL_LOSSES)}, got {self.mel_loss!r}")
        if self.guided_attention is not None and not isinstance(self.guided_attention, GuidedAttentionConfig):
            raise ConfigError(
                "Tacotron2Config.guided_attention must be a GuidedAttentionConfig or None, "
                f"got {self.guided_attention!r}"
            )

    @property
    def postnet_context(self) -> int:
        """Frames of context the post-net reads on each side of a frame: ``layers * (kernel - 1) / 2``."""
        return self.postnet_layers * (self.postnet_kernel // 2)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts (JSON/YAML-able); :meth:`from_dict` inverts it."""
        return to_mapping(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "Tacotron2Config") -> Tacotron2Config:
        """Strict: an unknown key anywhere (also inside ``guided_attention``) is a :class:`ConfigError` naming it."""
        return from_mapping(cls, data, where)


def tacotron2_small(vocab_size: int, **overrides: Any) -> Tacotron2Config:
    """A laptop-sized Tacotron 2 (about 4.8 M parameters for 100 tokens): 256-wide encoder, 256-unit LSTMs,
    a 256-channel post-net, two frames per decoder step. ``overrides`` replace any field."""
    config = Tacotron2Config(
        vocab_size, embed_dim=256, encoder_dim=256, attention_dim=128, attention_rnn_dim=256, decoder_dim=256,
        decoder_layers=2, prenet_dim=128, location_filters=32, location_kernel=31, postnet_dim=256, reduction=2,
        max_decoder_steps=500,
    )
    return dataclasses.replace(config, **overrides)


def tacotron2_base(vocab_size: int, **overrides: Any) -> Tacotron2Config:
    """The paper's Tacotron 2 (about 28 M parameters): 512-wide encoder, attention LSTM + one 1024-unit decoder
    LSTM (the paper's two-layer stack), 512-channel post-net, one frame per step. ``overrides`` replace any field."""
    return dataclasses.replace(Tacotron2Config(vocab_size, decoder_layers=1, reduction=1), **overrides)


# ----------------------------------------------------------------
# Building blocks


class Tacotron2Encoder(nn.Module):
    """``(tokens (B, U), token_lens (B,)) -> (memory (B, U, dim), token_lens)``: embedding (id 0 = padding),
    ``convs`` x [conv -> batch norm -> ReLU -> dropout], BiLSTM of ``dim // 2`` units per direction (packed: padding
    never leaks; padded frames are zero)."""

    def __init__(self, vocab_size: int, embed_dim: int, convs: int, kernel_size: int, dim: int,
                 dropout: float = 0.5) -> None:
        super().__init__()
        if dim % 2:
            raise ConfigError(f"encoder dim must be even (two LSTM directions), got {dim}")
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        self.convs = MaskedConvStack([embed_dim] * (convs + 1), kernel_size, "relu", dropout)
        self.lstm = nn.LSTM(embed_dim, dim // 2, batch_first=True, bidirectional=True)
        self.dim = dim

    def forward(self, tokens: Tensor, token_lens: Tensor, train: bool | None = None) -> tuple[Tensor, Tensor]:
        x = self.embedding(tokens).transpose(1, 2)  # (B, E, U)
        x = self.convs(x, token_lens, train).transpose(1, 2)  # (B, U, E)
        lens = token_lens.to(torch.long)
        x = x.masked_fill(make_pad_mask(lens.to(x.device), x.size(1)).unsqueeze(-1), 0.0)
        return run_packed(self.lstm, x, lens), token_lens


class Prenet(nn.Module):
    """``x (..., in_dim) -> (..., dim)``: ``layers`` x [linear -> ReLU -> dropout ``p``], dropout ALWAYS on (also
    at inference, as the paper does: it is the decoder's only source of variation).

    Masks are drawn with ``torch.rand(..., generator=generator)`` (the generator must live on the input's device),
    so a seeded generator reproduces a run exactly.
    """

    def __init__(self, in_dim: int, dim: int, layers: int = PRENET_LAYERS, dropout: float = 0.5) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(in_dim if i == 0 else dim, dim) for i in range(layers))
        self.p = dropout

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        for layer in self.layers:
            x = torch.relu(layer(x))
            if self.p > 0:
                keep = torch.rand(x.shape, generator=generator, device=x.device) >= self.p
                x = x * keep.to(x.dtype) / (1.0 - self.p)
        return x


def stop_targets(mel_lens: Tensor, frames: int, reduction: int) -> tuple[Tensor, Tensor]:
    """Stop-token targets and loss mask, both ``(B, frames)``: target 1 from the last valid frame on
    (``t >= mel_len - 1``); the mask covers the frames of the decoder steps each utterance runs
    (``t < ceil(mel_len / r) * r``)."""
    t = torch.arange(frames, device=mel_lens.device)
    targets = (t[None, :] >= (mel_lens[:, None] - 1)).float()
    steps = (mel_lens + reduction - 1) // reduction
    return targets, t[None, :] < (steps * reduction)[:, None]


# ----------------------------------------------------------------
# Model


@dataclass
class DecoderState:
    """Decoder state of N rows (every tensor's first dimension is N; nothing is kept on the module).

    ``attention_h``, ``attention_c (N, A_rnn)``: the attention LSTM; ``decoder_h``, ``decoder_c (N, L, H)``: the
    decoder LSTM cells; ``context (N, D)``: the previous attention context; ``attention``: the location-sensitive
    attention's state (previous and cumulative alignment); ``steps``: decoder steps taken.
    """

    attention_h: Tensor
    attention_c: Tensor
    decoder_h: Tensor
    decoder_c: Tensor
    context: Tensor
    attention: AttentionState
    steps: int = 0

    def select(self, indices: Tensor) -> DecoderState:
        """Rows ``indices`` (reorder, drop or repeat) of every tensor, the attention state included."""
        return select_state(self, indices)


@dataclass
class Tacotron2Output:
    """:meth:`Tacotron2.infer`'s result. ``mels (B, M, T)``: post-net log-mels, ``TTS_LOG_SILENCE`` past each
    length; ``mel_lens (B,)``; ``alignments (B, S, U)``: attention weights per decoder step (zero past each
    utterance's ``ceil(mel_len / r)`` steps); ``stop_probs (B, T)``: stop probability per frame (0 past each
    length); ``hit_max_steps (B,)`` bool: the stop token never fired within the frame limit."""

    mels: Tensor
    mel_lens: Tensor
    alignments: Tensor
    stop_probs: Tensor
    hit_max_steps: Tensor


class Tacotron2(nn.Module):
    """Tacotron 2 acoustic model (see the module docstring), built from a :class:`Tacotron2Config`.

    ``Tacotron2(config)`` builds every part from the config; ``encoder``, ``attention`` and ``postnet`` may be
    passed in already built to swap a part (the config then still gives the decoder's sizes):

        encoder: ``(tokens (B, U), token_lens (B,), train) -> (memory (B, U, encoder_dim), lens)``
            (default :class:`Tacotron2Encoder`).
        attention: a step-wise attention (:mod:`seqspeech.nn.attention`) with query width ``attention_rnn_dim``
            and memory width ``encoder_dim`` (default: location-sensitive, ``cumulative=True``).
        postnet: ``(mel (B, M, T), lens, train) -> residual`` with a ``context`` property (default :class:`Postnet`).
    """

    def __init__(
        self,
        config: Tacotron2Config,
        *,
        encoder: nn.Module | None = None,
        attention: nn.Module | None = None,
        postnet: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(config, Tacotron2Config):
            raise ConfigError(f"Tacotron2 needs a Tacotron2Config, got {type(config).__name__}")
        c = self.config = config
        self.encoder = encoder if encoder is not None else Tacotron2Encoder(
            c.vocab_size, c.embed_dim, c.encoder_convs, c.encoder_kernel, c.encoder_dim, c.dropout
        )
        self.attention = attention if attention is not None else LocationAwareAttention(
            c.attention_rnn_dim, c.encoder_dim, c.attention_dim, conv_channels=c.location_filters,
            kernel_size=c.location_kernel, cumulative=True,
        )
        self.postnet = postnet if postnet is not None else Postnet(
            c.n_mels, c.postnet_dim, c.postnet_layers, c.postnet_kernel, c.dropout
        )
        self.prenet = Prenet(c.n_mels, c.prenet_dim, PRENET_LAYERS, c.prenet_dropout)
        self.attention_rnn = nn.LSTMCell(c.prenet_dim + c.encoder_dim, c.attention_rnn_dim)
        self.decoder_cells = nn.ModuleList(
            nn.LSTMCell(c.attention_rnn_dim + c.encoder_dim if i == 0 else c.decoder_dim, c.decoder_dim)
            for i in range(c.decoder_layers)
        )
        self.frame_proj = nn.Linear(c.decoder_dim + c.encoder_dim, c.n_mels * c.reduction)
        self.stop_proj = nn.Linear(c.decoder_dim + c.encoder_dim, c.reduction)
        # read-only shorthands of the config (constants, not state)
        self.n_mels = c.n_mels
        self.reduction = c.reduction
        self.stop_threshold = c.stop_threshold

    # -- input checks -----------------------------------------------------------------------------------------

    def _check_tokens(self, tokens: Tensor, token_lens: Tensor | None) -> tuple[Tensor, Tensor]:
        if tokens.dim() == 1:
            tokens = tokens.unsqueeze(0)
        if tokens.dim() != 2 or tokens.dtype not in (torch.long, torch.int32, torch.int64):
            raise DataError(f"tokens must be an integer tensor (B, U), got {tuple(tokens.shape)} {tokens.dtype}")
        if tokens.size(0) == 0 or tokens.size(1) == 0:
            raise DataError(f"tokens must be non-empty, got shape {tuple(tokens.shape)}")
        if token_lens is None:
            token_lens = torch.full((tokens.size(0),), tokens.size(1), dtype=torch.long, device=tokens.device)
        if token_lens.shape != (tokens.size(0),):
            raise DataError(f"token_lens must be (B,)=({tokens.size(0)},), got {tuple(token_lens.shape)}")
        if int(token_lens.min()) < 1 or int(token_lens.max()) > tokens.size(1):
            raise DataError(f"token_lens must lie in [1, U={tokens.size(1)}], got {token_lens.tolist()}")
        vocab = self.encoder.embedding.num_embeddings if hasattr(self.encoder, "embedding") else None
        if int(tokens.min()) < 0 or (vocab is not None and int(tokens.max()) >= vocab):
            raise DataError(f"token ids must lie in [0, {vocab}), got min {int(tokens.min())}, "
                            f"max {int(tokens.max())}")
        return tokens.long(), token_lens.to(device=tokens.device, dtype=torch.long)

    def _check_mels(self, mels: Tensor, mel_lens: Tensor, batch: int) -> None:
        if mels.dim() != 3 or mels.size(0) != batch or mels.size(1) != self.n_mels:
            raise DataError(f"mels must be (B={batch}, n_mels={self.n_mels}, T), got {tuple(mels.shape)}")
        if mel_lens.shape != (batch,) or int(mel_lens.min()) < 1 or int(mel_lens.max()) > mels.size(2):
            raise DataError(f"mel_lens must be (B={batch},) in [1, T={mels.size(2)}], got {mel_lens.tolist()}")

    def _frame_cap(self, max_frames: int | None) -> int:
        if max_frames is None:
            return self.config.max_decoder_steps * self.reduction
        if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
            raise ConfigError(f"max_frames must be None or an int >= 1, got {max_frames!r}")
        return max_frames

    # -- decoder ----------------------------------------------------------------------------------------------

    def initial_state(self, memory: Tensor, memory_lens: Tensor) -> DecoderState:
        """Zero LSTM states and context and the attention's initial state for ``memory (N, U, D)``."""
        n = memory.size(0)
        zeros = memory.new_zeros(n, self.config.attention_rnn_dim)
        dec = memory.new_zeros(n, len(self.decoder_cells), self.config.decoder_dim)
        return DecoderState(
            attention_h=zeros, attention_c=zeros.clone(), decoder_h=dec, decoder_c=dec.clone(),
            context=memory.new_zeros(n, memory.size(2)), attention=self.attention.init_state(memory, memory_lens),
        )

    def go_frame(self, batch: int, like: Tensor) -> Tensor:
        """The first step's input frame, ``(batch, M)`` of silence (``TTS_LOG_SILENCE``)."""
        return like.new_full((batch, self.n_mels), TTS_LOG_SILENCE)

    def _step(
        self, prenet_out: Tensor, state: DecoderState, memory: Tensor, memory_lens: Tensor, train: bool
    ) -> tuple[Tensor, Tensor, Tensor, DecoderState]:
        """One decoder step from the prenet output ``(N, P)``; see :meth:`decoder_step`."""
        x = torch.cat([prenet_out, state.context.to(prenet_out.dtype)], dim=-1)
        att_h, att_c = self.attention_rnn(x, (state.attention_h, state.attention_c))
        query = F.dropout(att_h, self.config.rnn_dropout, train)
        context, weights, attention = self.attention(query, memory, memory_lens, state.attention)
        x = torch.cat([query, context.to(query.dtype)], dim=-1)
        hs, cs = [], []
        for i, cell in enumerate(self.decoder_cells):
            h, c = cell(x, (state.decoder_h[:, i], state.decoder_c[:, i]))
            hs.append(h)
            cs.append(c)
            x = F.dropout(h, self.config.rnn_dropout, train)
        out = torch.cat([x, context.to(x.dtype)], dim=-1)
        frames = self.frame_proj(out).view(out.size(0), self.reduction, self.n_mels).transpose(1, 2)
        stop_logits = self.stop_proj(out)
        new_state = DecoderState(
            attention_h=att_h, attention_c=att_c, decoder_h=torch.stack(hs, dim=1), decoder_c=torch.stack(cs, dim=1),
            context=context, attention=attention, steps=state.steps + 1,
        )
        return frames, stop_logits, weights, new_state

    def decoder_step(
        self,
        frame: Tensor,
        state: DecoderState,
        memory: Tensor,
        memory_lens: Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, DecoderState]:
        """One decoder step: ``frame (N, M)`` (the previous step's last frame, or :meth:`go_frame`) ->
        ``(frames (N, M, r), stop_logits (N, r), weights (N, U), new state)``.

        The prenet's dropout is always on (masks from ``generator``); the LSTM-output dropout follows the module's
        train/eval mode (:meth:`infer` always runs without it).
        """
        return self._step(self.prenet(frame, generator), state, memory, memory_lens, self.training)

    def teacher_forced(
        self, memory: Tensor, memory_lens: Tensor, mels: Tensor, generator: torch.Generator | None = None,
        train: bool | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Decode with ground-truth inputs ``mels (B, M, T)``: ``frames (B, M, S*r)`` (before the post-net),
        ``stop_logits (B, S*r)``, ``alignments (B, S, U)`` with ``S = ceil(T / r)``."""
        train = self.training if train is None else train
        batch, r = mels.size(0), self.reduction
        steps = -(-mels.size(2) // r)
        mels = F.pad(mels, (0, steps * r - mels.size(2)), value=TTS_LOG_SILENCE)
        previous = torch.cat([self.go_frame(batch, mels).unsqueeze(2), mels[:, :, r - 1 :: r][:, :, : steps - 1]], 2)
        prenet_out = self.prenet(previous.transpose(1, 2), generator)  # (B, S, P): one batched call
        state = self.initial_state(memory, memory_lens)
        frames, stops, weights = [], [], []
        for s in range(steps):
            f, stop, w, state = self._step(prenet_out[:, s], state, memory, memory_lens, train)
            frames.append(f)
            stops.append(stop)
            weights.append(w)
        return torch.cat(frames, dim=2), torch.cat(stops, dim=1), torch.stack(weights, dim=1)

    # -- training ---------------------------------------------------------------------------------------------

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Training loss of a TTS batch (``tokens``, ``token_lens``, ``mels`` padded with ``TTS_LOG_SILENCE``,
        ``mel_lens``, optionally ``train_step``), teacher-forced.

        Returns 0-dim float32 tensors: ``loss`` (the only one with a graph) ``= mel_loss + postnet_loss + stop_loss
        + guided_weight * guided_loss``, ``mel_loss``, ``postnet_loss``, ``stop_loss``, ``guided_loss`` (per
        decoder step, unweighted) and ``guided_weight`` (0 in eval mode or without guided attention).
        """
        tokens, token_lens = self._check_tokens(batch["tokens"], batch["token_lens"])
        mels, mel_lens = batch["mels"], batch["mel_lens"].long()
        self._check_mels(mels, mel_lens, tokens.size(0))
        train_step = batch.get("train_step")
        memory, memory_lens = self.encoder(tokens, token_lens)
        mel_lens = mel_lens.to(memory.device)
        before, stop_logits, alignments = self.teacher_forced(memory, memory_lens, mels.to(memory.device))
        after = before + self.postnet(before, mel_lens)
        frames = before.size(2)
        target = F.pad(mels.to(before.device), (0, frames - mels.size(2)), value=TTS_LOG_SILENCE)
        out: dict[str, Tensor] = {}
        with torch.autocast(device_type=before.device.type, enabled=False):
            valid = (~make_pad_mask(mel_lens, frames)).unsqueeze(1).float()  # (B, 1, T)
            denom = valid.sum() * self.n_mels
            mel_loss = self._reconstruction(before.float(), target.float(), valid, denom)
            postnet_loss = self._reconstruction(after.float(), target.float(), valid, denom)
            stop_target, stop_mask = stop_targets(mel_lens, frames, self.reduction)
            bce = F.binary_cross_entropy_with_logits(
                stop_logits.float(), stop_target, reduction="none",
                pos_weight=torch.tensor(self.config.stop_pos_weight, device=stop_logits.device),
            )
            stop_loss = (bce * stop_mask).sum() / stop_mask.sum()
            steps = (mel_lens + self.reduction - 1) // self.reduction
            cfg = self.config.guided_attention
            sigma = cfg.sigma if cfg is not None else GuidedAttentionConfig().sigma
            # the shared loss sums over an utterance's steps and averages over the batch: rescale to per step
            guided = guided_attention_loss(alignments.float(), steps, memory_lens, sigma) * (
                tokens.size(0) / steps.sum().clamp(min=1)
            )
            weight = 0.0
            if cfg is not None and self.training:
                weight = cfg.weight_at(int(train_step) if train_step is not None else 0)
            loss = mel_loss + postnet_loss + stop_loss
            if weight > 0:
                loss = loss + weight * guided
            out["loss"] = loss
            out["mel_loss"] = mel_loss.detach()
            out["postnet_loss"] = postnet_loss.detach()
            out["stop_loss"] = stop_loss.detach()
            out["guided_loss"] = guided.detach()
            out["guided_weight"] = torch.tensor(float(weight), device=loss.device)
        return out

    def _reconstruction(self, pred: Tensor, target: Tensor, valid: Tensor, denom: Tensor) -> Tensor:
        diff = (pred - target) * valid
        loss = diff.pow(2).sum() / denom
        if self.config.mel_loss == "l1_mse":
            loss = loss + diff.abs().sum() / denom
        return loss

    # -- inference --------------------------------------------------------------------------------------------

    def _decode(
        self, memory: Tensor, memory_lens: Tensor, frame_cap: int, generator: torch.Generator | None
    ) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
        """Free-running decoding (no LSTM dropout), one yield per step: ``frames (B, M, r)``, ``stop_probs (B, r)``
        float32, ``weights (B, U)``, ``ends (B,)`` (each utterance's length once its stop fired, else -1). Stops
        after the step where every utterance has fired, or after ``ceil(frame_cap / r)`` steps."""
        batch, r = memory.size(0), self.reduction
        state = self.initial_state(memory, memory_lens)
        frame = self.go_frame(batch, memory)
        ends = torch.full((batch,), -1, dtype=torch.long, device=memory.device)
        for step in range(-(-frame_cap // r)):
            frames, stop_logits, weights, state = self._step(
                self.prenet(frame, generator), state, memory, memory_lens, False
            )
            probs = torch.sigmoid(stop_logits.float())
            fire = probs > self.stop_threshold
            first = fire.float().argmax(dim=1)  # the first firing frame of the step (argmax: first maximum)
            ends = torch.where(fire.any(dim=1) & (ends < 0), step * r + first + 1, ends)
            yield frames, probs, weights, ends
            if bool((ends >= 0).all()):
                return
            frame = frames[:, :, -1]

    @staticmethod
    def _final_lengths(ends: Tensor, frame_cap: int) -> tuple[Tensor, Tensor]:
        """``(mel_lens, hit_max_steps)`` from :meth:`_decode`'s last ``ends``."""
        reached = (ends < 0) | (ends > frame_cap)
        return torch.where(reached, torch.full_like(ends, frame_cap), ends), reached

    @torch.no_grad()
    def infer(
        self,
        tokens: Tensor,
        token_lens: Tensor | None = None,
        max_frames: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tacotron2Output:
        """Synthesise mels for ``tokens (B, U)`` (or ``(U,)``; id 0 = padding) with ``token_lens (B,)`` (None: all
        ``U``). At most ``max_frames`` frames per utterance (None: ``max_decoder_steps * r``). Uses running batch
        norm statistics and no dropout except the prenet's, whose masks come from ``generator``; writes nothing to
        the module."""
        tokens, token_lens = self._check_tokens(tokens, token_lens)
        frame_cap = self._frame_cap(max_frames)
        memory, memory_lens = self.encoder(tokens, token_lens, train=False)
        frames, probs, weights = [], [], []
        ends = torch.full((tokens.size(0),), -1, dtype=torch.long, device=memory.device)
        for f, p, w, ends in self._decode(memory, memory_lens, frame_cap, generator):
            frames.append(f)
            probs.append(p)
            weights.append(w)
        mel_lens, reached = self._final_lengths(ends, frame_cap)
        length = int(mel_lens.max())
        before = torch.cat(frames, dim=2)[:, :, :length]
        mels = before + self.postnet(before, mel_lens, train=False)
        pad = make_pad_mask(mel_lens, length)
        steps = -(-length // self.reduction)
        step_pad = make_pad_mask((mel_lens + self.reduction - 1) // self.reduction, steps)
        return Tacotron2Output(
            mels=mels.masked_fill(pad.unsqueeze(1), TTS_LOG_SILENCE),
            mel_lens=mel_lens,
            alignments=torch.stack(weights, dim=1)[:, :steps].float().masked_fill(step_pad.unsqueeze(-1), 0.0),
            stop_probs=torch.cat(probs, dim=1)[:, :length].masked_fill(pad, 0.0),
            hit_max_steps=reached,
        )

    @torch.no_grad()
    def ground_truth_aligned(
        self,
        tokens: Tensor,
        token_lens: Tensor,
        mels: Tensor,
        mel_lens: Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Teacher-forced post-net mels ``(B, M, T)`` for the targets ``mels (B, M, T)`` (``TTS_LOG_SILENCE`` past
        each length), with inference settings (running statistics, only the prenet's dropout): the
        "ground-truth-aligned" mels a vocoder is fine-tuned on, frame-aligned with the recordings."""
        tokens, token_lens = self._check_tokens(tokens, token_lens)
        mel_lens = mel_lens.long()
        self._check_mels(mels, mel_lens, tokens.size(0))
        memory, memory_lens = self.encoder(tokens, token_lens, train=False)
        mel_lens = mel_lens.to(memory.device)
        before, _, _ = self.teacher_forced(memory, memory_lens, mels.to(memory.device), generator, train=False)
        before = before[:, :, : mels.size(2)]
        after = before + self.postnet(before, mel_lens, train=False)
        return after.masked_fill(make_pad_mask(mel_lens, mels.size(2)).unsqueeze(1), TTS_LOG_SILENCE)

    def _postnet_chunk(self, before: Tensor, start: int, end: int, available: int) -> Tensor:
        """Post-net output frames ``[start, end)`` of one utterance ``before (M, >= available)`` from a window of
        :attr:`Postnet.context` frames each side (clipped to ``[0, available)``)."""
        ctx = self.postnet.context
        lo, hi = max(0, start - ctx), min(available, end + ctx)
        window = before[:, lo:hi].unsqueeze(0)
        refined = window + self.postnet(window, None, train=False)
        return refined[0, :, start - lo : end - lo]

    @torch.no_grad()
    def infer_stream(
        self,
        tokens: Tensor,
        chunk_frames: int = 32,
        max_frames: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Iterator[Tensor]:
        """Synthesise one utterance ``tokens (U,)`` or ``(1, U)`` while decoding: yields post-net mel chunks
        ``(M, t)`` of ``chunk_frames`` frames (the last one shorter) as soon as the decoder has run
        :attr:`Postnet.context` frames past a chunk. The concatenation equals :meth:`infer`'s ``mels[0]`` (same
        ``generator`` seed), up to float rounding."""
        if isinstance(chunk_frames, bool) or not isinstance(chunk_frames, int) or chunk_frames < 1:
            raise ConfigError(f"chunk_frames must be an int >= 1, got {chunk_frames!r}")
        tokens, token_lens = self._check_tokens(tokens, None)
        if tokens.size(0) != 1:
            raise DataError(f"infer_stream synthesises one utterance, got tokens {tuple(tokens.shape)}")
        frame_cap = self._frame_cap(max_frames)
        memory, memory_lens = self.encoder(tokens, token_lens, train=False)
        ctx = self.postnet.context
        decoded: list[Tensor] = []
        total = emitted = 0
        ends = torch.full((1,), -1, dtype=torch.long)
        for frames, _, _, ends in self._decode(memory, memory_lens, frame_cap, generator):
            decoded.append(frames[0])
            total += self.reduction
            if int(ends[0]) >= 0:
                break
            ready = min(total, frame_cap) - ctx  # frames whose right context is decoded (and kept)
            while ready - emitted >= chunk_frames:
                before = torch.cat(decoded, dim=1)
                yield self._postnet_chunk(before, emitted, emitted + chunk_frames, total)
                emitted += chunk_frames
        mel_lens, _ = self._final_lengths(ends.cpu(), frame_cap)
        length = int(mel_lens[0])
        before = torch.cat(decoded, dim=1)
        while emitted < length:
            end = min(emitted + chunk_frames, length)
            yield self._postnet_chunk(before, emitted, end, length)
            emitted = end
