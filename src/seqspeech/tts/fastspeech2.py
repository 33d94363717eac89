"""FastSpeech 2 (Ren et al., 2021): non-autoregressive text -> mel with explicit duration, pitch and energy.

::

    tokens (B, U) -> Embedding + sinusoids -> encoder: N feed-forward Transformer (FFT) blocks -> (B, U, D)
        -> variance adaptor, all at TOKEN level (FastPitch-style):
             duration predictor -> log(d + 1)                      (trained on the aligner's durations)
             pitch predictor    -> p;  x += Embedding(bucketize(p))  (ground truth in training, prediction at inference)
             energy predictor   -> e;  x += Embedding(bucketize(e))  (reads x after the pitch embedding)
        -> length regulator (repeat each token d frames)            -> (B, T, D)
        -> decoder: N FFT blocks (optionally local attention, ``decoder_window``) -> Linear -> mel (B, T, n_mels)
        -> optional Tacotron 2 post-net, added residually

An FFT block is post-LN as in the paper: ``x = LN(x + Dropout(SelfAttn(x)))``, then
``x = LN(x + Dropout(Conv1d(k=1)(ReLU(Conv1d(k=ff_kernel)(x)))))`` (the 1-D convolution feed-forward; kernel 9 in
the paper). Padded positions are zeroed before every convolution and masked as attention keys, so in eval mode an
utterance gives the same output alone or inside a padded batch (BatchNorm in the post-net uses batch statistics in
training, which include padded frames).

Targets (the TTS batch layout, see :mod:`seqspeech.tts`): ``durations (B, U)`` mel frames per token, summing to
``mel_lens``; ``pitch (B, U)`` token averages of natural-log F0, normalised as ``(ln f0 - pitch_mean) / pitch_std``
(0 for a token with no voiced frame; :meth:`FastSpeech2Config.normalize_pitch`); ``energy (B, U)`` token averages of
the linear frame energy (L2 norm of the STFT magnitude frame), normalised as ``(e - energy_mean) / energy_std``.
The statistics are config fields: the model never reads a statistics file.

Loss: L1 (``mel_loss="l1"``, as the paper; or ``"mse"``) between predicted and target log-mels over valid frames,
before and after the post-net, plus MSE of the log-duration (``log(d + 1)``), pitch and energy predictions over valid
tokens; all terms weigh 1.

Inference (:meth:`FastSpeech2.infer`, eval mode, deterministic): ``speed`` divides the predicted durations
(:func:`~seqspeech.tts.alignment.scale_durations`), ``pitch_shift`` is in semitones (``+12`` doubles F0: the
normalised pitch moves by ``shift * ln 2 / 12 / pitch_std``), ``energy_scale`` multiplies the predicted energy in
linear terms (``e' = scale * e`` before normalisation).

Streaming (:meth:`FastSpeech2.infer_stream`): the encoder and variance adaptor run once; the decoder runs over the
regulated frames in chunks. With ``decoder_window = w`` the decoder's self-attention sees only frames within ``w``
of the query, so an output frame depends on ``decoder_layers * (w + ff_kernel // 2) + postnet_layers *
(postnet_kernel // 2)`` frames each side (:attr:`FastSpeech2.stream_context`); each chunk is decoded with that much
context and equals :meth:`~FastSpeech2.infer`'s frames up to float rounding. Without a window (the paper's global
attention) the decoder needs the whole utterance: it runs once and the result is cut into chunks.

Shapes: B batch, U tokens, T mel frames, D = d_model, H heads, M = n_mels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import from_mapping, to_mapping
from ..errors import ConfigError, DataError
from ..nn.attention import MultiHeadAttention
from ..nn.masks import make_pad_mask
from ..nn.positional import sinusoidal_positions
from .alignment import durations_to_log, length_regulate, scale_durations
from .layers import Postnet
from .mel import TTS_LOG_SILENCE, TTS_N_MELS

__all__ = [
    "ConvReLUNorm",
    "FFTBlock",
    "FFTStack",
    "FastSpeech2",
    "FastSpeech2Config",
    "FastSpeech2Output",
    "VariancePredictor",
    "fastspeech2_base",
    "fastspeech2_small",
]

SEMITONE = math.log(2.0) / 12.0  # one semitone in natural-log F0


@dataclass(frozen=True)
class FastSpeech2Config:
    """FastSpeech 2 hyper-parameters; the defaults are the paper's model (plus ming024's 5-layer post-net).

    ``pitch_min/max`` and ``energy_min/max`` bound the quantisation bins in NORMALISED units (``*_bins - 1``
    evenly spaced boundaries, values beyond fall in the end bins). ``pitch_mean/std`` are the corpus statistics of
    natural-log F0 (Hz) and ``energy_mean/std`` of linear frame energy, used to normalise the targets and to turn
    ``pitch_shift`` / ``energy_scale`` into normalised units. ``postnet_layers=0`` disables the post-net;
    ``decoder_window=None`` is global decoder attention, an int ``w`` lets each frame attend frames ``t-w .. t+w``.
    """

    vocab_size: int
    n_mels: int = TTS_N_MELS
    d_model: int = 256
    encoder_layers: int = 4
    decoder_layers: int = 4
    heads: int = 2
    ff_dim: int = 1024
    ff_kernel: int = 9
    dropout: float = 0.2
    variance_channels: int = 256
    variance_kernel: int = 3
    variance_dropout: float = 0.5
    pitch_bins: int = 256
    pitch_min: float = -4.0
    pitch_max: float = 4.0
    energy_bins: int = 256
    energy_min: float = -4.0
    energy_max: float = 4.0
    pitch_mean: float = 5.2  # ln(181 Hz)
    pitch_std: float = 0.2
    energy_mean: float = 0.0
    energy_std: float = 1.0
    postnet_layers: int = 5
    postnet_channels: int = 512
    postnet_kernel: int = 5
    decoder_window: int | None = None
    mel_loss: Literal["l1", "mse"] = "l1"

    def __post_init__(self) -> None:
        positive = (
            "vocab_size", "n_mels", "d_model", "encoder_layers", "decoder_layers", "heads", "ff_dim", "ff_kernel",
            "variance_channels", "variance_kernel", "pitch_bins", "energy_bins", "postnet_channels",
            "postnet_kernel",
        )
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"FastSpeech2Config.{name} must be a positive int, got {value!r}")
        if self.vocab_size < 2:
            raise ConfigError(
                f"FastSpeech2Config.vocab_size must be >= 2 (padding 0 and a token), got {self.vocab_size}"
            )
        if self.d_model % self.heads or self.d_model % 2:
            raise ConfigError(
                f"FastSpeech2Config.d_model={self.d_model} must be even and divisible by heads={self.heads}"
            )
        for name in ("ff_kernel", "variance_kernel", "postnet_kernel"):
            if getattr(self, name) % 2 != 1:
                raise ConfigError(f"FastSpeech2Config.{name} must be odd ('same' padding), got {getattr(self, name)}")
        for name in ("pitch_bins", "energy_bins"):
            if getattr(self, name) < 2:
                raise ConfigError(f"FastSpeech2Config.{name} must be >= 2, got {getattr(self, name)}")
        for name in ("dropout", "variance_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"FastSpeech2Config.{name} must be in [0, 1), got {getattr(self, name)}")
        for low, high in (("pitch_min", "pitch_max"), ("energy_min", "energy_max")):
            lo, hi = getattr(self, low), getattr(self, high)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ConfigError(f"FastSpeech2Config: need finite {low} < {high}, got {lo} and {hi}")
        for name in ("pitch_std", "energy_std"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ConfigError(f"FastSpeech2Config.{name} must be a positive number, got {getattr(self, name)}")
        for name in ("pitch_mean", "energy_mean"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"FastSpeech2Config.{name} must be finite, got {getattr(self, name)}")
        if isinstance(self.postnet_layers, bool) or not isinstance(self.postnet_layers, int) or self.postnet_layers < 0:
            raise ConfigError(f"FastSpeech2Config.postnet_layers must be an int >= 0, got {self.postnet_layers!r}")
        window = self.decoder_window
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
            raise ConfigError(f"FastSpeech2Config.decoder_window must be None or an int >= 1, got {window!r}")
        if self.mel_loss not in ("l1", "mse"):
            raise ConfigError(f"FastSpeech2Config.mel_loss must be 'l1' or 'mse', got {self.mel_loss!r}")

    def normalize_pitch(self, f0_hz: Tensor) -> Tensor:
        """F0 in Hz (any shape; <= 0 = unvoiced) -> normalised log-F0, 0 where unvoiced (the training target)."""
        voiced = f0_hz > 0
        log_f0 = torch.log(torch.where(voiced, f0_hz.float(), torch.ones_like(f0_hz, dtype=torch.float32)))
        return torch.where(voiced, (log_f0 - self.pitch_mean) / self.pitch_std, torch.zeros_like(log_f0))

    def normalize_energy(self, energy: Tensor) -> Tensor:
        """Linear frame (or token) energy -> the normalised training target."""
        return (energy.float() - self.energy_mean) / self.energy_std

    def to_dict(self) -> dict[str, Any]:
        return to_mapping(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "FastSpeech2Config") -> FastSpeech2Config:
        """Strict: an unknown key is a :class:`ConfigError` naming it."""
        return from_mapping(cls, data, where)


def fastspeech2_small(vocab_size: int, decoder_window: int | None = None) -> FastSpeech2Config:
    """A laptop-sized FastSpeech 2 (~4 M parameters): D 128, 4 + 4 FFT blocks, a 128-channel post-net."""
    return FastSpeech2Config(
        vocab_size=vocab_size, d_model=128, heads=2, ff_dim=256, ff_kernel=9, dropout=0.1, variance_channels=128,
        postnet_channels=128, decoder_window=decoder_window,
    )


def fastspeech2_base(vocab_size: int, decoder_window: int | None = None) -> FastSpeech2Config:
    """The paper's FastSpeech 2 (D 256, 4 + 4 FFT blocks, FFN 1024 with kernel 9) with a 512-channel post-net."""
    return FastSpeech2Config(vocab_size=vocab_size, decoder_window=decoder_window)


@dataclass(frozen=True)
class FastSpeech2Output:
    """``mels (B, M, T)`` (frames past ``mel_lens`` hold ``TTS_LOG_SILENCE``), ``mel_lens (B,)``, ``durations
    (B, U)`` long, and the normalised ``pitch`` and ``energy (B, U)`` the decoder was given (after the shift and
    scale; 0 at padded tokens)."""

    mels: Tensor
    mel_lens: Tensor
    durations: Tensor
    pitch: Tensor
    energy: Tensor


# -- blocks --------------------------------------------------------------------------------------------------


class ConvReLUNorm(nn.Module):
    """Conv1d ('same' padding; padded positions zeroed first) -> ReLU -> LayerNorm -> Dropout; ``(B, L, Cin)``,
    ``pad_mask (B, L)`` -> ``(B, L, Cout)``. FastSpeech's variance-predictor layer (also the CTC aligner's)."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_dim, out_dim, kernel, padding=kernel // 2)
        self.norm = nn.LayerNorm(out_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, pad_mask: Tensor) -> Tensor:
        x = x.masked_fill(pad_mask.unsqueeze(-1), 0.0)
        return self.dropout(self.norm(F.relu(self.conv(x.transpose(1, 2)).transpose(1, 2))))


class VariancePredictor(nn.Module):
    """2 x :class:`ConvReLUNorm` -> Linear(1): ``x (B, U, D)``, ``pad_mask (B, U)`` -> ``(B, U)``, 0 at padding."""

    def __init__(self, d_model: int, channels: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [ConvReLUNorm(d_model, channels, kernel, dropout), ConvReLUNorm(channels, channels, kernel, dropout)]
        )
        self.proj = nn.Linear(channels, 1)

    def forward(self, x: Tensor, pad_mask: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, pad_mask)
        return self.proj(x).squeeze(-1).masked_fill(pad_mask, 0.0)


def attention_mask(lens: Tensor, length: int, window: int | None = None) -> Tensor:
    """``(B, 1, L, L)`` bool, True where query i may attend key j: j valid (``j < lens``) and, with a window,
    ``|i - j| <= window``. Every position also sees itself, so padded queries have a key (their output is unused)."""
    visible = ~make_pad_mask(lens, length)[:, None, None, :]  # (B, 1, 1, L)
    idx = torch.arange(length, device=lens.device)
    if window is not None:
        visible = visible & ((idx[:, None] - idx[None, :]).abs() <= window)
    return visible | (idx[:, None] == idx[None, :])


def _self_attention(attn: MultiHeadAttention, x: Tensor, visible: Tensor) -> Tensor:
    """``x (B, L, D)`` self-attention with ``attn``'s projections under an arbitrary ``visible (B, 1, L, L)`` mask
    (:class:`MultiHeadAttention` itself only takes key lengths and causality)."""
    b, length, d = x.shape
    q, k, v = (proj(x).view(b, length, attn.heads, -1).transpose(1, 2) for proj in (attn.query, attn.key, attn.value))
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=visible, dropout_p=attn.dropout if attn.training else 0.0)
    return attn.out(y.transpose(1, 2).reshape(b, length, d))


class FFTBlock(nn.Module):
    """Feed-forward Transformer block (post-LN): self-attention, then a Conv1d(kernel) -> ReLU -> Conv1d(1)
    feed-forward; ``x (B, L, D)``, ``pad_mask (B, L)``, ``visible (B, 1, L, L)`` -> ``(B, L, D)``, 0 at padding."""

    def __init__(self, d_model: int, heads: int, ff_dim: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(d_model, heads)
        self.attn_norm = nn.LayerNorm(d_model)
        self.conv1 = nn.Conv1d(d_model, ff_dim, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(ff_dim, d_model, 1)
        self.ff_norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, pad_mask: Tensor, visible: Tensor) -> Tensor:
        x = self.attn_norm(x + self.dropout(_self_attention(self.attn, x, visible)))
        x = x.masked_fill(pad_mask.unsqueeze(-1), 0.0)
        h = self.conv2(F.relu(self.conv1(x.transpose(1, 2)))).transpose(1, 2)
        return self.ff_norm(x + self.dropout(h)).masked_fill(pad_mask.unsqueeze(-1), 0.0)


class FFTStack(nn.Module):
    """Sinusoidal positions + ``layers`` :class:`FFTBlock` s: ``x (B, L, D)``, ``lens (B,)`` -> ``(B, L, D)``.

    ``start`` is the absolute position of ``x[:, 0]`` (a chunk of a longer sequence); ``window`` bounds the
    attention span (None: global).
    """

    def __init__(
        self, d_model: int, layers: int, heads: int, ff_dim: int, kernel: int, dropout: float,
        window: int | None = None,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.window = window
        self.kernel = kernel
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(FFTBlock(d_model, heads, ff_dim, kernel, dropout) for _ in range(layers))

    @property
    def context(self) -> int | None:
        """Frames each side one output depends on (None: the whole sequence)."""
        return None if self.window is None else len(self.blocks) * (self.window + self.kernel // 2)

    def forward(self, x: Tensor, lens: Tensor, start: int | Tensor = 0) -> Tensor:
        length = x.size(1)
        pad_mask = make_pad_mask(lens, length)
        visible = attention_mask(lens, length, self.window)
        if isinstance(start, Tensor):  # one start per row (chunks of different utterances in one batch)
            table = sinusoidal_positions(0, int(start.max()) + length, self.d_model, x.device)
            positions = table[start.to(x.device)[:, None] + torch.arange(length, device=x.device)]
        else:
            positions = sinusoidal_positions(start, length, self.d_model, x.device)
        x = self.dropout(x + positions.to(x.dtype))
        for block in self.blocks:
            x = block(x, pad_mask, visible)
        return x


# -- model ---------------------------------------------------------------------------------------------------


def _masked_mean(err: Tensor, valid: Tensor) -> Tensor:
    """Mean of ``err (B, L, ...)`` over the positions where ``valid (B, L)`` is True (0 when none are)."""
    weight = valid.to(err.dtype).reshape(valid.shape + (1,) * (err.dim() - valid.dim())).expand_as(err)
    return (err * weight).sum() / weight.sum().clamp(min=1.0)


class FastSpeech2(nn.Module):
    """FastSpeech 2 acoustic model (see the module docstring); built from a :class:`FastSpeech2Config`."""

    pitch_boundaries: Tensor
    energy_boundaries: Tensor

    def __init__(self, config: FastSpeech2Config) -> None:
        super().__init__()
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.d_model, padding_idx=0)
        self.encoder = FFTStack(c.d_model, c.encoder_layers, c.heads, c.ff_dim, c.ff_kernel, c.dropout)
        self.duration_predictor = VariancePredictor(c.d_model, c.variance_channels, c.variance_kernel,
                                                    c.variance_dropout)
        self.pitch_predictor = VariancePredictor(c.d_model, c.variance_channels, c.variance_kernel, c.variance_dropout)
        self.energy_predictor = VariancePredictor(c.d_model, c.variance_channels, c.variance_kernel,
                                                  c.variance_dropout)
        self.pitch_embedding = nn.Embedding(c.pitch_bins, c.d_model)
        self.energy_embedding = nn.Embedding(c.energy_bins, c.d_model)
        self.register_buffer(
            "pitch_boundaries", torch.linspace(c.pitch_min, c.pitch_max, c.pitch_bins - 1), persistent=False
        )
        self.register_buffer(
            "energy_boundaries", torch.linspace(c.energy_min, c.energy_max, c.energy_bins - 1), persistent=False
        )
        self.decoder = FFTStack(c.d_model, c.decoder_layers, c.heads, c.ff_dim, c.ff_kernel, c.dropout,
                                window=c.decoder_window)
        self.mel_linear = nn.Linear(c.d_model, c.n_mels)
        self.postnet = (
            Postnet(c.n_mels, c.postnet_channels, c.postnet_layers, c.postnet_kernel, c.dropout)  # Tacotron 2's
            if c.postnet_layers else None
        )

    # -- parts ------------------------------------------------------------------------------------------------

    @property
    def stream_context(self) -> int | None:
        """Regulated frames each side one output frame depends on (None: global decoder attention)."""
        if self.decoder.context is None:
            return None
        return self.decoder.context + (self.postnet.context if self.postnet is not None else 0)

    def _check_tokens(self, tokens: Tensor, token_lens: Tensor) -> None:
        if tokens.dim() != 2 or tokens.dtype.is_floating_point:
            raise ValueError(f"tokens must be an integer (B, U) tensor, got {tokens.dtype} {tuple(tokens.shape)}")
        if token_lens.shape != (tokens.size(0),):
            raise ValueError(f"token_lens must be ({tokens.size(0)},), got shape {tuple(token_lens.shape)}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.config.vocab_size):
            raise DataError(
                f"token ids must lie in [0, {self.config.vocab_size}), got [{int(tokens.min())}, {int(tokens.max())}]"
            )
        if token_lens.numel() and (int(token_lens.min()) < 1 or int(token_lens.max()) > tokens.size(1)):
            raise DataError(f"token_lens must lie in [1, U={tokens.size(1)}], got {token_lens.tolist()}")

    def encode(self, tokens: Tensor, token_lens: Tensor) -> Tensor:
        """``tokens (B, U)``, ``token_lens (B,)`` -> encoder output ``(B, U, D)`` (0 at padding)."""
        self._check_tokens(tokens, token_lens)
        return self.encoder(self.embed(tokens.long()), token_lens)

    def pitch_embed(self, pitch: Tensor) -> Tensor:
        """Normalised pitch ``(B, U)`` -> ``(B, U, D)``: the embedding of its quantisation bin."""
        return self.pitch_embedding(torch.bucketize(pitch.float().contiguous(), self.pitch_boundaries))

    def energy_embed(self, energy: Tensor) -> Tensor:
        """Normalised energy ``(B, U)`` -> ``(B, U, D)``: the embedding of its quantisation bin."""
        return self.energy_embedding(torch.bucketize(energy.float().contiguous(), self.energy_boundaries))

    def decode(self, x: Tensor, lens: Tensor, start: int | Tensor = 0) -> tuple[Tensor, Tensor]:
        """Regulated frames ``x (B, T, D)``, ``lens (B,)`` (``start``: absolute frame of ``x[:, 0]``, or ``(B,)``) ->
        ``(mel before the post-net, mel after it)``, each ``(B, T, M)``; equal when there is no post-net."""
        y = self.decoder(x, lens, start)
        before = self.mel_linear(y)
        if self.postnet is None:
            return before, before
        return before, before + self.postnet(before.transpose(1, 2), lens).transpose(1, 2)

    # -- training ---------------------------------------------------------------------------------------------

    def _teacher_forced(self, batch: dict[str, Any]) -> tuple[Tensor, ...]:
        """The batch's checks and the teacher-forced pass (target durations, pitch and energy) -> ``(before,
        after (B, T, M), log_duration, pitch, energy (B, U) predictions, durations (B, U), token_pad (B, U))``."""
        missing = [k for k in ("tokens", "token_lens", "mels", "mel_lens", "durations", "pitch", "energy")
                   if k not in batch]
        if missing:
            raise DataError(f"FastSpeech 2 batch lacks {missing} (durations, pitch and energy come from the aligner)")
        tokens, token_lens = batch["tokens"], batch["token_lens"]
        mels, mel_lens = batch["mels"], batch["mel_lens"]
        if mels.dim() != 3 or mels.size(1) != self.config.n_mels or mel_lens.shape != (mels.size(0),):
            raise ValueError(f"mels must be (B, {self.config.n_mels}, T) with mel_lens (B,), got "
                             f"{tuple(mels.shape)} and {tuple(mel_lens.shape)}")
        for key in ("durations", "pitch", "energy"):
            if batch[key].shape != tokens.shape:
                raise ValueError(f"{key} must be (B, U) = {tuple(tokens.shape)}, got {tuple(batch[key].shape)}")
        token_pad = make_pad_mask(token_lens, tokens.size(1))
        durations = batch["durations"].long().masked_fill(token_pad, 0)
        bad = (durations.sum(dim=1) != mel_lens).nonzero().flatten().tolist()
        if bad:
            ids = batch.get("ids")
            names = [ids[i] for i in bad] if ids is not None else bad
            raise DataError(f"durations do not sum to mel_lens for utterances {names}")

        x = self.encode(tokens, token_lens)
        log_duration = self.duration_predictor(x, token_pad)
        pitch = self.pitch_predictor(x, token_pad)
        x = x + self.pitch_embed(batch["pitch"])
        energy = self.energy_predictor(x, token_pad)
        x = x + self.energy_embed(batch["energy"])
        frames = mels.size(2)
        y, _ = length_regulate(x, durations, max_len=frames)
        before, after = self.decode(y, mel_lens)
        return before, after, log_duration, pitch, energy, durations, token_pad

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Teacher-forced losses on a TTS batch (``tokens``, ``token_lens``, ``mels (B, M, T)``, ``mel_lens``,
        ``durations``, ``pitch``, ``energy``).

        Returns 0-dim ``{"loss", "mel_loss", "postnet_loss", "duration_loss", "pitch_loss", "energy_loss"}``
        (``postnet_loss`` is 0 without a post-net).
        """
        before, after, log_duration, pitch, energy, durations, token_pad = self._teacher_forced(batch)
        mels, mel_lens = batch["mels"], batch["mel_lens"]
        frames = mels.size(2)
        target = mels.transpose(1, 2).float()  # (B, T, M)
        frame_valid = ~make_pad_mask(mel_lens, frames)
        token_valid = ~token_pad
        mel_err = F.l1_loss if self.config.mel_loss == "l1" else F.mse_loss
        mel_loss = _masked_mean(mel_err(before.float(), target, reduction="none"), frame_valid)
        postnet_loss = (
            _masked_mean(mel_err(after.float(), target, reduction="none"), frame_valid)
            if self.postnet is not None else mel_loss.new_zeros(())
        )
        duration_loss = _masked_mean((log_duration.float() - durations_to_log(durations)) ** 2, token_valid)
        pitch_loss = _masked_mean((pitch.float() - batch["pitch"].float()) ** 2, token_valid)
        energy_loss = _masked_mean((energy.float() - batch["energy"].float()) ** 2, token_valid)
        loss = mel_loss + postnet_loss + duration_loss + pitch_loss + energy_loss
        return {
            "loss": loss, "mel_loss": mel_loss.detach(), "postnet_loss": postnet_loss.detach(),
            "duration_loss": duration_loss.detach(), "pitch_loss": pitch_loss.detach(),
            "energy_loss": energy_loss.detach(),
        }

    @torch.no_grad()
    def ground_truth_aligned(self, batch: dict[str, Any]) -> Tensor:
        """Teacher-forced post-net mels ``(B, M, T)`` of a training batch (target durations, pitch and energy;
        ``TTS_LOG_SILENCE`` past each length): frame-aligned with the recordings, the mels a vocoder is fine-tuned
        on. Call ``eval()`` first (dropout)."""
        _, after, *_ = self._teacher_forced(batch)
        pad = make_pad_mask(batch["mel_lens"].to(after.device), after.size(1)).unsqueeze(-1)
        return after.float().masked_fill(pad, TTS_LOG_SILENCE).transpose(1, 2)

    # -- inference --------------------------------------------------------------------------------------------

    def _adapt(
        self, tokens: Tensor, token_lens: Tensor | None, speed: float, pitch_shift: float, energy_scale: float,
        max_frames: int | None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Encoder + variance adaptor with predicted values -> ``(regulated (B, T, D), mel_lens, durations,
        pitch, energy)``."""
        if tokens.dim() == 1:
            tokens = tokens.unsqueeze(0)
        if token_lens is None:
            token_lens = torch.full((tokens.size(0),), tokens.size(1), dtype=torch.long, device=tokens.device)
        if not (isinstance(pitch_shift, (int, float)) and math.isfinite(pitch_shift)):
            raise ConfigError(f"pitch_shift must be a finite number of semitones, got {pitch_shift!r}")
        if not (isinstance(energy_scale, (int, float)) and math.isfinite(energy_scale) and energy_scale >= 0):
            raise ConfigError(f"energy_scale must be a finite number >= 0, got {energy_scale!r}")
        if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int)
                                       or max_frames < 1):
            raise ConfigError(f"max_frames must be None or an int >= 1, got {max_frames!r}")
        c = self.config
        token_pad = make_pad_mask(token_lens, tokens.size(1))
        x = self.encode(tokens, token_lens)
        durations = scale_durations(self.duration_predictor(x, token_pad), speed, log_domain=True)
        durations = durations.masked_fill(token_pad, 0)
        pitch = self.pitch_predictor(x, token_pad) + pitch_shift * SEMITONE / c.pitch_std
        pitch = pitch.masked_fill(token_pad, 0.0)
        x = x + self.pitch_embed(pitch)
        energy = self.energy_predictor(x, token_pad)
        if energy_scale != 1.0:
            linear = energy * c.energy_std + c.energy_mean
            energy = (linear * energy_scale - c.energy_mean) / c.energy_std
        energy = energy.masked_fill(token_pad, 0.0)
        x = x + self.energy_embed(energy)
        total = int(durations.sum(dim=1).max()) if durations.numel() else 0
        y, mel_lens = length_regulate(x, durations, max_len=total if max_frames is None else min(total, max_frames))
        return y, mel_lens, durations, pitch, energy

    @torch.no_grad()
    def infer(
        self,
        tokens: Tensor,
        token_lens: Tensor | None = None,
        speed: float = 1.0,
        pitch_shift: float = 0.0,
        energy_scale: float = 1.0,
        max_frames: int | None = None,
    ) -> FastSpeech2Output:
        """Synthesise mels from ``tokens (B, U)`` (or ``(U,)``), ``token_lens (B,)`` (None: all U).

        Call ``eval()`` first: in eval mode the output is deterministic. ``speed > 1`` is faster, ``pitch_shift``
        is in semitones, ``energy_scale`` multiplies the linear energy; ``max_frames`` caps the output length.
        """
        y, mel_lens, durations, pitch, energy = self._adapt(
            tokens, token_lens, speed, pitch_shift, energy_scale, max_frames
        )
        batch, frames = y.size(0), y.size(1)
        if frames == 0:
            mels = y.new_full((batch, self.config.n_mels, 0), TTS_LOG_SILENCE)
        else:
            _, after = self.decode(y, mel_lens)
            after = after.masked_fill(make_pad_mask(mel_lens, frames).unsqueeze(-1), TTS_LOG_SILENCE)
            mels = after.transpose(1, 2)
        return FastSpeech2Output(mels=mels, mel_lens=mel_lens, durations=durations, pitch=pitch, energy=energy)

    @torch.no_grad()
    def infer_stream(
        self,
        tokens: Tensor,
        chunk_frames: int = 32,
        speed: float = 1.0,
        pitch_shift: float = 0.0,
        energy_scale: float = 1.0,
        max_frames: int | None = None,
    ) -> Iterator[Tensor]:
        """Yield one utterance's mel (``tokens (U,)`` or ``(1, U)``) in chunks ``(M, t)`` of ``chunk_frames``
        frames (the last may be shorter); their concatenation equals :meth:`infer`'s mel up to float rounding.

        With a ``decoder_window`` each chunk is decoded with :attr:`stream_context` frames of context each side;
        without one the decoder runs once over the whole utterance. Eval mode, like :meth:`infer`.
        """
        if isinstance(chunk_frames, bool) or not isinstance(chunk_frames, int) or chunk_frames < 1:
            raise ConfigError(f"chunk_frames must be an int >= 1, got {chunk_frames!r}")
        frames = self.regulated(tokens, speed, pitch_shift, energy_scale, max_frames)
        total = frames.size(0)
        if self.stream_context is None:
            if total:
                _, full = self.decode(frames[None], frames.new_tensor([total], dtype=torch.long))
                for start in range(0, total, chunk_frames):
                    yield full[0, start : start + chunk_frames].transpose(0, 1)
            return
        for window in self.stream_windows(total, chunk_frames):
            yield self.decode_windows([(frames, window)])[0]

    @torch.no_grad()
    def regulated(self, tokens: Tensor, speed: float = 1.0, pitch_shift: float = 0.0, energy_scale: float = 1.0,
                  max_frames: int | None = None) -> Tensor:
        """One utterance's (``tokens (U,)`` or ``(1, U)``) frames after the variance adaptor and length regulator,
        ``(T, D)``: what the decoder reads, whole (:meth:`infer_stream`) or chunk by chunk (:meth:`decode_windows`)."""
        if tokens.dim() not in (1, 2) or (tokens.dim() == 2 and tokens.size(0) != 1):
            raise ValueError(f"one utterance at a time: (U,) or (1, U) tokens, got {tuple(tokens.shape)}")
        y, mel_lens, *_ = self._adapt(tokens, None, speed, pitch_shift, energy_scale, max_frames)
        return y[0, : int(mel_lens[0])]

    def stream_windows(self, total: int, chunk_frames: int) -> list[tuple[int, int]]:
        """``(start, end)`` of the chunks :meth:`infer_stream` decodes an utterance of ``total`` frames in."""
        return [(start, min(total, start + chunk_frames)) for start in range(0, total, chunk_frames)]

    @torch.no_grad()
    def decode_windows(self, jobs: Sequence[tuple[Tensor, tuple[int, int]]]) -> list[Tensor]:
        """Mel chunks of several utterances in one decoder pass (needs a ``decoder_window``): each job is an
        utterance's regulated frames ``y (T, D)`` (from the variance adaptor) and a chunk ``(start, end)`` of it;
        returns each chunk's mel ``(M, end - start)``, decoded with :attr:`stream_context` frames of context each side
        as :meth:`infer_stream` does (the same values up to float rounding: rows are padded and masked)."""
        context = self.stream_context
        if context is None:
            raise ConfigError("decode_windows needs a decoder_window (a decoder without one sees the whole utterance)")
        if not jobs:
            return []
        spans = [(max(0, start - context), min(y.size(0), end + context)) for y, (start, end) in jobs]
        width = max(right - left for left, right in spans)
        x = torch.stack([F.pad(y[left:right], (0, 0, 0, width - (right - left)))
                         for (y, _), (left, right) in zip(jobs, spans)])
        lens = torch.tensor([right - left for left, right in spans], device=x.device)
        starts = torch.tensor([left for left, _ in spans], device=x.device)
        _, mel = self.decode(x, lens, start=starts)
        return [mel[row, start - left : end - left].transpose(0, 1)
                for row, ((_, (start, end)), (left, _)) in enumerate(zip(jobs, spans))]
