"""A small CTC aligner that gives FastSpeech 2 its token durations.

A recogniser of the TTS corpus itself: it reads the TTS log-mel frames (:mod:`seqspeech.tts.mel`, 16 ms hop) and
is trained with CTC on the TTS input tokens (phonemes or characters from the TTS front end). There is no time
subsampling, so every mel frame gets a label and a forced alignment turns into per-token frame counts that sum to
the utterance's frames::

    mels (B, n_mels, T) -> (mels - mel_mean) / mel_std -> Conv1d x conv_layers (ReLU, LayerNorm, dropout) -> BiLSTM x lstm_layers
                        -> Linear -> log-probs (B, T, V)

The CTC blank is token id 0, the TTS front end's padding id ``<pad>``: padding is never a target, so it can double
as the blank and the aligner's vocabulary is exactly the acoustic model's (``vocab_size`` includes id 0).

Durations (:meth:`CTCAligner.align`). A CTC model is peaky: each token fires on one or two frames and blank fills
the rest, so assigning blank runs to a neighbour by rule (:func:`~seqspeech.tts.alignment.durations_from_frame_labels`)
places token boundaries arbitrarily inside pauses and long vowels. ``align`` therefore (by default,
``suppress_blank=True``) renormalises the posteriors over the non-blank tokens and gives the blank a large finite
penalty: the Viterbi path then labels every frame with the token whose relative posterior is highest, using a blank
only where CTC requires one (one frame between two equal neighbouring tokens, which goes to the token before it).
``suppress_blank=False`` is the plain CTC alignment with the blank-follows-token rule.

Shapes: B batch, T mel frames, F = n_mels, U tokens, V vocabulary (including the blank 0), H hidden width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import from_mapping, to_mapping
from ..decoding.ctc import ctc_forced_align
from ..errors import ConfigError, DataError
from ..nn.masks import make_pad_mask
from ..nn.rnn import PyramidalLSTMListener
from .alignment import durations_from_frame_labels
from .fastspeech2 import ConvReLUNorm
from .mel import TTS_N_MELS

__all__ = ["BLANK", "CTCAligner", "CTCAlignerConfig"]

BLANK = 0  # the CTC blank is the TTS padding id
_BLANK_PENALTY = -1.0e4  # log-prob given to the blank by suppress_blank: finite, so required blanks stay possible


@dataclass(frozen=True)
class CTCAlignerConfig:
    """The aligner's shape. ``vocab_size`` counts every token id including 0 (padding = CTC blank).

    ``hidden`` is the convolution width and the BiLSTM output width (``hidden // 2`` units per direction).
    """

    vocab_size: int
    n_mels: int = TTS_N_MELS
    hidden: int = 256
    conv_layers: int = 3
    conv_kernel: int = 5
    lstm_layers: int = 2
    dropout: float = 0.1
    mel_mean: float = -5.0  # the input standardisation (mels - mel_mean) / mel_std: the training set's statistics
    mel_std: float = 2.5    # (tasks.tts sets them); a CTC model on raw log-mels (about -11.5 ... 2) stays all-blank

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_mels", "hidden", "conv_kernel", "lstm_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"CTCAlignerConfig.{name} must be a positive int, got {value!r}")
        if self.vocab_size < 2:
            raise ConfigError(f"CTCAlignerConfig.vocab_size must be >= 2 (blank 0 and a token), got {self.vocab_size}")
        if isinstance(self.conv_layers, bool) or not isinstance(self.conv_layers, int) or self.conv_layers < 0:
            raise ConfigError(f"CTCAlignerConfig.conv_layers must be an int >= 0, got {self.conv_layers!r}")
        if self.hidden % 2:
            raise ConfigError(f"CTCAlignerConfig.hidden must be even (two LSTM directions), got {self.hidden}")
        if self.conv_kernel % 2 != 1:
            raise ConfigError(f"CTCAlignerConfig.conv_kernel must be odd ('same' padding), got {self.conv_kernel}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"CTCAlignerConfig.dropout must be in [0, 1), got {self.dropout}")
        if not self.mel_std > 0.0:
            raise ConfigError(f"CTCAlignerConfig.mel_std must be > 0, got {self.mel_std}")

    def to_dict(self) -> dict[str, Any]:
        return to_mapping(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "CTCAlignerConfig") -> CTCAlignerConfig:
        """Strict: an unknown key is a :class:`ConfigError` naming it."""
        return from_mapping(cls, data, where)


class CTCAligner(nn.Module):
    """Frame-synchronous CTC recogniser over TTS mels; :meth:`align` turns it into token durations."""

    def __init__(self, config: CTCAlignerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        widths = [c.n_mels] + [c.hidden] * c.conv_layers
        self.convs = nn.ModuleList(
            ConvReLUNorm(widths[i], widths[i + 1], c.conv_kernel, c.dropout) for i in range(c.conv_layers)
        )
        self.lstm = PyramidalLSTMListener(
            widths[-1], c.hidden // 2, num_layers=c.lstm_layers, pyramid_levels=0, bidirectional=True,
            dropout=c.dropout,
        )
        self.dropout = nn.Dropout(c.dropout)
        self.output = nn.Linear(c.hidden, c.vocab_size)

    def log_probs(self, mels: Tensor, mel_lens: Tensor) -> Tensor:
        """``mels (B, n_mels, T)``, ``mel_lens (B,)`` -> float32 CTC log-probs ``(B, T, V)`` (one row per frame)."""
        if mels.dim() != 3 or mels.size(1) != self.config.n_mels:
            raise ValueError(f"mels must be (B, {self.config.n_mels}, T), got shape {tuple(mels.shape)}")
        if mel_lens.shape != (mels.size(0),):
            raise ValueError(f"mel_lens must be ({mels.size(0)},), got shape {tuple(mel_lens.shape)}")
        x = (mels.transpose(1, 2) - self.config.mel_mean) / self.config.mel_std  # (B, T, F), standardised
        pad_mask = make_pad_mask(mel_lens, x.size(1))
        for conv in self.convs:
            x = conv(x, pad_mask)
        y, _ = self.lstm(x, mel_lens)
        return self.output(self.dropout(y)).float().log_softmax(dim=-1)

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """CTC loss on the TTS batch layout (``mels``, ``mel_lens``, ``tokens`` padded with 0, ``token_lens``).

        Returns ``{"loss", "blank_rate"}``: the CTC negative log-likelihood summed over the batch and divided by B
        (``zero_infinity``: an utterance whose tokens cannot fit its frames adds 0), and the fraction of valid frames
        whose best label is the blank (a peakiness gauge).
        """
        mels, mel_lens, tokens, token_lens = batch["mels"], batch["mel_lens"], batch["tokens"], batch["token_lens"]
        targets = tokens[~make_pad_mask(token_lens, tokens.size(1))]
        if targets.numel() and (int(targets.min()) < 1 or int(targets.max()) >= self.config.vocab_size):
            raise DataError(
                f"aligner targets must lie in [1, {self.config.vocab_size}) (0 is padding and the CTC blank), "
                f"got [{int(targets.min())}, {int(targets.max())}]"
            )
        log_probs = self.log_probs(mels, mel_lens)
        with torch.autocast(device_type=log_probs.device.type, enabled=False):
            loss = F.ctc_loss(
                log_probs.transpose(0, 1), tokens, mel_lens, token_lens, blank=BLANK, reduction="sum",
                zero_infinity=True,
            ) / max(mels.size(0), 1)
        with torch.no_grad():
            valid = ~make_pad_mask(mel_lens, log_probs.size(1))
            blank_rate = ((log_probs.argmax(-1) == BLANK) & valid).sum() / valid.sum().clamp(min=1)
        return {"loss": loss, "blank_rate": blank_rate.float()}

    @torch.no_grad()
    def align(self, mels: Tensor, tokens: Tensor, *, suppress_blank: bool = True) -> Tensor:
        """Durations of one utterance: ``mels (n_mels, T)``, ``tokens (U,)`` (ids >= 1) -> ``(U,)`` long, sum T.

        Call ``eval()`` first (dropout). ``suppress_blank`` picks the alignment rule (see the module docstring).

        Raises:
            DataError: no tokens, a token outside ``[1, vocab_size)``, or fewer frames than the tokens need
                (U, plus one blank frame between each pair of equal neighbouring tokens).
        """
        if mels.dim() != 2:
            raise ValueError(f"mels must be (n_mels, T) for one utterance, got shape {tuple(mels.shape)}")
        return self.align_batch(
            mels.unsqueeze(0), torch.tensor([mels.size(1)], device=mels.device),
            torch.as_tensor(tokens, device=mels.device).reshape(1, -1),
            torch.tensor([torch.as_tensor(tokens).numel()], device=mels.device), suppress_blank=suppress_blank,
        )[0]

    @torch.no_grad()
    def align_batch(
        self, mels: Tensor, mel_lens: Tensor, tokens: Tensor, token_lens: Tensor, *, suppress_blank: bool = True
    ) -> list[Tensor]:
        """A padded batch (TTS layout) -> per utterance ``(token_lens[b],)`` long durations summing to
        ``mel_lens[b]``; one network pass, then a forced alignment per utterance."""
        vocab = self.config.vocab_size
        tokens = tokens.long()
        for b in range(tokens.size(0)):
            row = tokens[b, : int(token_lens[b])]
            if row.numel() == 0:
                raise DataError(f"utterance {b}: no tokens to align")
            if bool((row < 1).any()) or bool((row >= vocab).any()):
                raise DataError(f"utterance {b}: token ids must lie in [1, {vocab}), got {row.tolist()}")
            repeats = int((row[1:] == row[:-1]).sum())
            if int(mel_lens[b]) < row.numel() + repeats:
                raise DataError(
                    f"utterance {b}: {int(mel_lens[b])} mel frames are too few for {row.numel()} tokens "
                    f"({repeats} pairs of equal neighbouring tokens need a blank frame between them): "
                    f"at least {row.numel() + repeats} frames are needed"
                )
        log_probs = self.log_probs(mels, mel_lens)
        if suppress_blank:
            log_probs = torch.cat(
                [log_probs.new_full(log_probs.shape[:-1] + (1,), _BLANK_PENALTY),
                 log_probs[..., 1:].log_softmax(dim=-1)], dim=-1,
            )
        out = []
        for b in range(tokens.size(0)):
            n = int(token_lens[b])
            labels, _ = ctc_forced_align(log_probs[b, : int(mel_lens[b])], tokens[b, :n], blank=BLANK)
            out.append(durations_from_frame_labels(labels, n, blank=BLANK))
        return out
