"""Text machine translation: a Transformer encoder-decoder over one shared SentencePiece vocabulary, trained by the
one trainer (task ``mt``, :mod:`seqspeech.tasks.mt`) and decoded by the one beam search
(:func:`~seqspeech.decoding.attention.attention_decode`).

Simultaneous translation by a **wait-k** policy (Ma et al. 2019): the decoder writes target token ``i`` (from 1)
after reading ``g(i) = min(k + i - 1, |x|)`` source tokens, so it trails the speaker by k tokens. The encoder is
unidirectional (each source token attends itself and the tokens before it): the encoding of a source prefix is the
prefix of the whole source's encoding, so decoding under the wait-k mask with the whole source at hand gives what
reading the source token by token gives (:class:`SimultaneousSession`), and the offline evaluation of a policy is
exact. Training draws k per batch from ``train_wait_k`` (multi-path wait-k, Elbayad et al. 2020; 0 = the whole
source), so one model serves every k at test time. ``k = None`` (or k >= the source length) is full attention.

    mt = Translator.from_path("models/mt-synth-es-en")
    mt.translate("dónde está la llave")                         # 'where is the key'
    mt.translate("dónde está la llave", wait_k=3)               # the same policy a live session follows
    session = mt.session(wait_k=3)
    session.push("dónde está")  -> ['where']; session.finish() -> ['is', 'the', 'key']

Input text is brought to the spoken form the recognisers write (:func:`~seqspeech.text.verbalize.verbalize_es`:
lower case, digits and symbols in words, no punctuation), and so is the output.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..asr.aed import AEDScorer
from ..config import from_mapping, to_mapping
from ..decoding.attention import BLANK, SOS_EOS, AttentionDecodeOptions, attention_decode
from ..decoding.search import MinNewTokensPerInput, new_token_caps
from ..errors import ConfigError, DataError, ModelLoadError
from ..nn.attention import MultiHeadAttention
from ..nn.masks import make_pad_mask, wait_k_visible
from ..nn.positional import sinusoidal_positions
from ..nn.transformer import TransformerDecoder
from ..packaging import FORMAT_PREFIX, format_family, json_field, read_metadata, read_weights, write_weights

__all__ = [
    "MTConfig", "MTModel", "SimultaneousSession", "Translator", "average_lagging", "is_mt_model", "wait_k_delays",
]

FORMAT = FORMAT_PREFIX + "mt"
MODEL_FILE = "model.safetensors"
MAX_LENGTH_RATIO = 3.0  # target tokens per source token, at most


@dataclass(frozen=True)
class MTConfig:
    """``vocab_size`` from the tokenizer; ``train_wait_k``: the k drawn per training batch (0 = the whole source;
    ``(0,)`` trains an offline model, ``(0, 1, 3, 5, 7)`` one that serves those policies);
    ``unidirectional``: the encoder's self-attention is causal (needed for simultaneous decoding)."""

    vocab_size: int
    dim: int = 256
    encoder_layers: int = 4
    decoder_layers: int = 3
    heads: int = 4
    ff_dim: int = 1024
    dropout: float = 0.1
    label_smoothing: float = 0.1
    unidirectional: bool = True
    train_wait_k: tuple[int, ...] = (0,)

    def __post_init__(self) -> None:
        object.__setattr__(self, "train_wait_k", tuple(self.train_wait_k))
        for name in ("vocab_size", "dim", "encoder_layers", "decoder_layers", "heads", "ff_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
        if self.dim % self.heads or self.dim % 2:
            raise ConfigError(f"dim={self.dim} must be even and divisible by heads={self.heads}")
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"dropout and label_smoothing must lie in [0, 1), got {self.dropout}, "
                              f"{self.label_smoothing}")
        if not self.train_wait_k or any(isinstance(k, bool) or not isinstance(k, int) or k < 0
                                        for k in self.train_wait_k):
            raise ConfigError(f"train_wait_k must be a non-empty list of ints >= 0 (0: the whole source), got "
                              f"{list(self.train_wait_k)}")
        if any(self.train_wait_k) and not self.unidirectional:
            raise ConfigError("wait-k training needs unidirectional: true (a source prefix must encode the same "
                              "as the start of the whole source)")

    def to_dict(self) -> dict[str, Any]:
        return to_mapping(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "MTConfig") -> MTConfig:
        return from_mapping(cls, data, where)


class _EncoderLayer(nn.Module):
    """Pre-LN self-attention + feed-forward: ``x (B, S, D)`` -> ``(B, S, D)``."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ff_dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, lens: Tensor, causal: bool) -> Tensor:
        h = self.attn_norm(x)
        x = x + self.dropout(self.attn(h, h, lens, causal=causal)[0])
        return x + self.dropout(self.ff(self.ff_norm(x)))


class MTModel(nn.Module):
    """Source tokens ``(B, S)`` -> encoder ``(B, S, D)`` -> Transformer decoder (tied output) over target tokens.

    ``forward(batch)`` (``src``, ``src_lens``, ``tgt_in`` = ``<sos/eos>`` + target, ``tgt_out`` = target +
    ``<sos/eos>`` padded with -100) returns ``{"loss", "token_acc", "wait_k"}``; the decoder's source attention
    follows a wait-k mask with k drawn from ``config.train_wait_k`` in training (the whole source in eval mode).
    """

    sos_eos = SOS_EOS
    blank = BLANK

    def __init__(self, config: MTConfig) -> None:
        super().__init__()
        self.config = config
        self.vocab_size = config.vocab_size
        c = config
        self.src_embed = nn.Embedding(c.vocab_size, c.dim)
        nn.init.normal_(self.src_embed.weight, std=c.dim**-0.5)  # times sqrt(D) in encode(): unit scale
        self.enc_dropout = nn.Dropout(c.dropout)
        self.encoder_layers = nn.ModuleList(_EncoderLayer(c.dim, c.heads, c.ff_dim, c.dropout)
                                            for _ in range(c.encoder_layers))
        self.enc_norm = nn.LayerNorm(c.dim)
        self.decoder = TransformerDecoder(c.vocab_size, c.dim, c.decoder_layers, c.heads, c.ff_dim, c.dropout,
                                          tie_output=True)

    def encode(self, src: Tensor, src_lens: Tensor) -> tuple[Tensor, Tensor]:
        """``src (B, S)`` ids, ``src_lens (B,)`` (>= 1) -> ``(memory (B, S, D), src_lens)``."""
        if src.dim() != 2 or src_lens.shape != (src.size(0),):
            raise ValueError(f"src must be (B, S) with src_lens (B,), got {tuple(src.shape)}, "
                             f"{tuple(src_lens.shape)}")
        x = self.src_embed(src) * math.sqrt(self.config.dim)
        x = self.enc_dropout(x + sinusoidal_positions(0, src.size(1), self.config.dim, src.device).to(x.dtype))
        for layer in self.encoder_layers:
            x = layer(x, src_lens, self.config.unidirectional)
        x = self.enc_norm(x)
        return x.masked_fill(make_pad_mask(src_lens, src.size(1)).unsqueeze(-1), 0.0), src_lens

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        memory, lens = self.encode(batch["src"], batch["src_lens"])
        k = 0
        if self.training and len(self.config.train_wait_k) > 1:
            k = self.config.train_wait_k[int(torch.randint(len(self.config.train_wait_k), ()))]
        elif self.training:
            k = self.config.train_wait_k[0]
        tgt_in, tgt_out = batch["tgt_in"], batch["tgt_out"]
        hide = None
        if k:
            hide = ~wait_k_visible(0, tgt_in.size(1), memory.size(1), k, memory.device)[None, None]
        logits, _ = self.decoder(tgt_in, memory, lens, src_hide=hide)
        logits = logits.float()
        loss = F.cross_entropy(logits.transpose(1, 2), tgt_out, ignore_index=-100,
                               label_smoothing=self.config.label_smoothing)
        valid = tgt_out != -100
        acc = ((logits.argmax(-1) == tgt_out) & valid).sum() / valid.sum().clamp(min=1)
        return {"loss": loss, "token_acc": acc.detach(), "wait_k": torch.tensor(float(k))}

    @torch.no_grad()
    def translate_ids(self, sources: Sequence[Sequence[int]], *, beam_size: int = 5,
                      wait_k: int | None = None) -> list[list[int]]:
        """Target ids of each source (ids without specials); ``wait_k``: decode under that policy (greedy or
        beam); None: the whole source."""
        if wait_k is not None and not self.config.unidirectional:
            raise ConfigError("this model's encoder is bidirectional: it cannot follow a wait-k policy")
        if not sources:
            return []
        device = next(self.parameters()).device
        lens = torch.tensor([len(s) for s in sources], device=device)
        if int(lens.min()) < 1:
            raise DataError("a source sentence has no tokens")
        src = torch.zeros(len(sources), int(lens.max()), dtype=torch.long, device=device)
        for i, s in enumerate(sources):
            src[i, : len(s)] = torch.tensor(list(s), dtype=torch.long)
        was_training = self.training
        self.eval()
        try:
            memory, memory_lens = self.encode(src, lens)
            options = AttentionDecodeOptions(beam_size=beam_size, max_length_ratio=MAX_LENGTH_RATIO,
                                             nbest=1)
            filters = []
            if wait_k is not None:  # no end before the policy has read the whole source: g(i) = |x|
                filters.append(MinNewTokensPerInput((lens - wait_k).clamp(min=0), 1, SOS_EOS))
            hyps = attention_decode(_Policy(self, wait_k), memory, memory_lens, options, filters=filters)
        finally:
            self.train(was_training)
        return [h[0].tokens for h in hyps]


@dataclass
class _Policy:
    """The :class:`~seqspeech.decoding.attention.AttentionModel` protocol for an MT model under a wait-k policy."""

    model: MTModel
    wait_k: int | None
    sos_eos: int = SOS_EOS
    blank: int = BLANK

    def scorer(self, memory: Tensor, memory_lens: Tensor) -> tuple[AEDScorer, Any]:
        scorer = AEDScorer(self.model.decoder, memory, memory_lens, wait_k=self.wait_k)
        return scorer, scorer.init_state()

    def ctc_log_probs(self, memory: Tensor, memory_lens: Tensor) -> None:
        return None


# -- latency --------------------------------------------------------------------------------------------------


def wait_k_delays(k: int | None, source_len: int, target_len: int) -> list[int]:
    """``g(i)``, source tokens read before target token ``i = 1 .. target_len`` is written, under wait-k
    (``min(k + i - 1, |x|)``; None: the whole source for every token)."""
    if k is None:
        return [source_len] * target_len
    return [min(k + i - 1, source_len) for i in range(1, target_len + 1)]


def average_lagging(delays: Sequence[float], source_len: float, target_len: int | None = None) -> float:
    """Average Lagging (Ma et al. 2019): ``AL = 1/tau * sum_{i=1..tau} (g(i) - (i - 1) / r)`` with ``r = |y| / |x|``
    and ``tau`` the first target index whose ``g(i)`` reaches the whole source. ``delays`` are the ``g(i)`` (in
    source tokens, words or seconds, with ``source_len`` in the same unit); ``target_len`` defaults to
    ``len(delays)``. Wait-k on equal lengths gives k."""
    if not delays:
        raise ValueError("average_lagging needs at least one delay (an empty translation has no lag)")
    if source_len <= 0:
        raise ValueError(f"source_len must be > 0, got {source_len}")
    target_len = len(delays) if target_len is None else target_len
    rate = target_len / source_len
    tau = next((i for i, g in enumerate(delays, 1) if g >= source_len), len(delays))
    return sum(delays[i - 1] - (i - 1) / rate for i in range(1, tau + 1)) / tau


# -- the translator ---------------------------------------------------------------------------------------------


class Translator:
    """A trained MT model with its tokenizer and defaults: text in, text out (see the module docstring)."""

    def __init__(self, model: MTModel, tokenizer: Any, *, name: str = "mt", source_language: str = "es",
                 target_language: str = "en", beam_size: int = 5, path: Path | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.source_language, self.target_language = source_language, target_language
        self.beam_size = beam_size
        self.path = path

    # ------------------------------------------------------------------ text
    def normalize_source(self, text: str) -> str:
        """The spoken form the model reads (what a recogniser writes)."""
        from ..text.verbalize import verbalize_en, verbalize_es

        if not isinstance(text, str):
            raise DataError(f"text to translate must be a string, got {type(text).__name__}")
        spoken = (verbalize_es if self.source_language == "es" else verbalize_en)(text).strip()
        if not spoken:
            raise DataError(f"nothing to translate in {text[:80]!r}")
        return spoken

    def encode_source(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(self.normalize_source(text))
        if not ids:
            raise DataError(f"nothing to translate in {text[:80]!r}")
        return ids

    def translate(self, text: str | Sequence[str], *, beam_size: int | None = None,
                  wait_k: int | None = None) -> str | list[str]:
        """Translate one text (a str back) or many (a list back, decoded as one batch)."""
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        ids = [self.encode_source(t) for t in texts]
        beam = self.beam_size if beam_size is None else beam_size
        out = [self.tokenizer.decode(t) for t in self.model.translate_ids(ids, beam_size=beam, wait_k=wait_k)]
        return out[0] if single else out

    def session(self, wait_k: int) -> SimultaneousSession:
        """A live translation under wait-k: push source words as they are recognised, get target words back."""
        return SimultaneousSession(self, wait_k)

    # ------------------------------------------------------------------ files
    def save(self, folder: str | os.PathLike, card: dict[str, Any] | None = None) -> Path:
        """``folder/model.safetensors`` (fp16 weights + metadata) and, given one, ``folder/model_card.json``."""
        from ..text.tokenizers import tokenizer_to_dict

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        meta = {"format": FORMAT, "config": json.dumps(self.model.config.to_dict()),
                "tokenizer": json.dumps(tokenizer_to_dict(self.tokenizer)),
                "languages": json.dumps([self.source_language, self.target_language]),
                "decode": json.dumps({"beam_size": self.beam_size})}
        path = write_weights(out / MODEL_FILE, self.model.state_dict(), meta)
        if card is not None:
            (out / "model_card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
        return path

    @classmethod
    def from_path(cls, path: str | os.PathLike, *, name: str | None = None,
                  device: str | torch.device | None = None) -> Translator:
        """A folder with ``model.safetensors`` (or the file itself) written by :meth:`save`."""
        from ..text.tokenizers import tokenizer_from_dict

        p = Path(path)
        file = _model_file(p)
        if not file.is_file():
            raise ModelLoadError(f"{p}: no MT model here (expected {MODEL_FILE})")
        meta = read_metadata(file)
        if format_family(meta) != "mt":
            raise ModelLoadError(f"{file}: not a seqspeech MT model (format {meta.get('format')!r})")
        _, state = read_weights(file)
        config = MTConfig.from_dict(json_field(meta, "config", str(file)), f"{file}: config")
        model = MTModel(config)
        model.load_state_dict(state)
        model.to(device or "cpu")
        tokenizer = tokenizer_from_dict(json_field(meta, "tokenizer", str(file)), str(file))
        source, target = json_field(meta, "languages", str(file))
        decode = json_field(meta, "decode", str(file))
        return cls(model, tokenizer, name=name or p.name, source_language=source, target_language=target,
                   beam_size=int(decode.get("beam_size", 5)), path=file)


def _model_file(path: Path) -> Path:
    """The package file of a folder (or the file given)."""
    return path / MODEL_FILE if path.is_dir() else path


def is_mt_model(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an MT package (a folder with one, or the file)."""
    file = _model_file(Path(path))
    if not file.is_file() or file.suffix != ".safetensors":
        return False
    try:
        return format_family(read_metadata(file)) == "mt"
    except ModelLoadError:
        return False


class SimultaneousSession:
    """Wait-k translation of a source that arrives word by word.

    ``push(words)`` takes recognised source text (committed words); ``finish()`` ends the source. Each returns the
    target words written since the last call: target token ``i`` is written once ``k + i - 1`` source tokens are
    read (greedy, as in Ma et al. 2019), so the words trail the source by about k tokens. ``read`` and ``written``
    count source and target tokens; ``delays`` holds each target token's ``g(i)``.
    """

    def __init__(self, translator: Translator, wait_k: int) -> None:
        if isinstance(wait_k, bool) or not isinstance(wait_k, int) or wait_k < 1:
            raise ConfigError(f"wait_k must be an int >= 1, got {wait_k!r}")
        if not translator.model.config.unidirectional:
            raise ConfigError(f"{translator.name}: a bidirectional encoder cannot translate simultaneously")
        self.translator, self.wait_k = translator, wait_k
        self.source: list[int] = []
        self.target: list[int] = []
        self.delays: list[int] = []
        self.finished = False
        self._text: list[str] = []
        self._emitted_words = 0

    @property
    def read(self) -> int:
        return len(self.source)

    @property
    def written(self) -> int:
        return len(self.target)

    def push(self, words: str) -> list[str]:
        if self.finished:
            raise DataError("the session is finished; start a new one")
        if words.strip():
            self._text.append(words)
            # tokenise the whole source so far: a word's pieces do not depend on what follows it
            self.source = self.translator.tokenizer.encode(self.translator.normalize_source(" ".join(self._text)))
        return self._write(final=False)

    def finish(self) -> list[str]:
        self.finished = True
        if not self.source:
            return []
        return self._write(final=True)

    def _write(self, final: bool) -> list[str]:
        """Write target tokens while the policy allows: position ``p`` once ``p + k`` source tokens are read.
        The end may only come once the policy sees the whole source; a non-final source whose policy would end
        here waits for more (or for :meth:`finish`). The same decisions as decoding the whole source under the
        wait-k mask (:meth:`MTModel.translate_ids` with ``beam_size=1``)."""
        cap = int(new_token_caps([self.read], MAX_LENGTH_RATIO)[0])  # as the offline search caps it
        while self.source and len(self.target) < cap and (final or len(self.target) + self.wait_k <= self.read):
            p = len(self.target)
            logits = self._next_logits()
            if p + self.wait_k < self.read:  # the source goes on beyond what this position sees
                logits[SOS_EOS] = -math.inf
            token = int(logits.argmax())
            if token == SOS_EOS:
                if final:
                    break
                return self._new_words(final=False)  # this may be the end: wait for more source, or finish()
            self.target.append(token)
            self.delays.append(min(p + self.wait_k, self.read))
        return self._new_words(final)

    @torch.no_grad()
    def _next_logits(self) -> Tensor:
        """The next target token's logits ``(V,)`` under the wait-k mask, the source read so far encoded."""
        model = self.translator.model
        device = next(model.parameters()).device
        memory, lens = model.encode(torch.tensor([self.source], device=device),
                                    torch.tensor([self.read], device=device))
        tokens = torch.tensor([[SOS_EOS, *self.target]], device=device)
        hide = ~wait_k_visible(0, tokens.size(1), memory.size(1), self.wait_k, device)[None, None]
        logits, _ = model.decoder(tokens, memory, lens, src_hide=hide)
        return logits[0, -1].float()

    def _new_words(self, final: bool) -> list[str]:
        words = self.translator.tokenizer.decode(self.target).split()
        # the last word may still grow by more pieces unless the source is finished
        ready = words if final else words[:-1]
        new = ready[self._emitted_words:]
        self._emitted_words = max(self._emitted_words, len(ready))
        return new
