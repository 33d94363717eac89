"""Whisper encoder-decoder (Radford et al., 2022), read top to bottom like openai-whisper's `model.py`.

Parameter names are identical to openai-whisper's state dict, so an OpenAI checkpoint loads with
`load_state_dict(strict=True)`. Two differences from the reference:

* The decoder keeps no cache on `self`. Its KV cache is an explicit `DecoderState` that callers pass in and get
  back: `logits, state = model.decoder(tokens, state)`. `DecoderState.index_select` and
  `DecoderState.repeat_interleave` reorder and expand rows for beam search.
* The encoder accepts mel inputs SHORTER than the 30 s window (`2 * n_audio_ctx` frames): the positional
  embedding is sliced to the input length. This skips the padded work for short clips, but it is an
  approximation, not an exact shortcut: Whisper was trained on full padded windows, so features (and sometimes
  transcripts) differ from those of the padded input. Pass full windows for reference-exact results.

Attention uses `torch.nn.functional.scaled_dot_product_attention`. Shapes: B batch rows, A audio rows
(B = A * rows_per_audio when beams share one audio), T mel frames, S audio positions (T / 2), L tokens,
D model width, H heads, Dh = D / H head width, V vocabulary.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqspeech.errors import ConfigError

# The English-only vocabulary has 51864 entries; multilingual vocabularies add one token per language after
# <|startoftranscript|>, plus one (openai-whisper's `num_languages` formula).
N_VOCAB_ENGLISH_BASE = 51765
N_VOCAB_MULTILINGUAL_MIN = 51865


@dataclass(frozen=True)
class WhisperDims:
    """The ten numbers that define a Whisper model (openai-whisper's `ModelDimensions`)."""

    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"WhisperDims.{f.name} must be a positive int, got {value!r}")
        if self.n_audio_state % self.n_audio_head or self.n_text_state % self.n_text_head:
            raise ConfigError(f"model width must be divisible by the number of heads: {self}")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> WhisperDims:
        """Strict: unknown or missing keys are a `ConfigError`."""
        if not isinstance(data, dict):
            raise ConfigError(f"WhisperDims expects a dict, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        missing = sorted(names - set(data))
        if unknown:
            raise ConfigError(f"unknown WhisperDims keys: {unknown} (expected {sorted(names)})")
        if missing:
            raise ConfigError(f"missing WhisperDims keys: {missing}")
        return cls(**data)


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> Tensor:
    """Sinusoidal positional embedding (length, channels): sin in the first half of channels, cos in the second."""
    if channels % 2:
        raise ConfigError(f"sinusoids need an even number of channels, got {channels}")
    if torch.get_default_device().type == "meta":
        # A shape-only build (the loaders fill every weight in): on meta these ops would import torch._dynamo,
        # costing ~1 s and ~140 MB of resident memory for values nobody reads.
        return torch.empty(length, channels)
    log_timescale_increment = math.log(max_timescale) / (channels // 2 - 1)
    inv_timescales = torch.exp(-log_timescale_increment * torch.arange(channels // 2))
    scaled_time = torch.arange(length)[:, None] * inv_timescales[None, :]
    return torch.cat([torch.sin(scaled_time), torch.cos(scaled_time)], dim=1)


@dataclass
class DecoderState:
    """Explicit decoder state: the KV caches for one batch of B hypotheses, never stored on the model.

    self_k / self_v: per decoder layer, (B, H, offset, Dh) keys and values of the tokens consumed so far.
    cross_k / cross_v: per decoder layer, (A, H, S, Dh) projected audio features, computed once by
        `TextDecoder.init_state`. Row b of the batch reads audio row b // rows_per_audio, so beams of one audio
        share one copy (B = A * rows_per_audio).
    offset: number of tokens already consumed (the position of the next token).

    The caches grow by concatenation: each step returns new tensors and never writes into old ones, so a state
    can be reused or branched freely (measured as fast as a preallocated in-place buffer on CPU for 1-token steps).
    """

    self_k: list[Tensor]
    self_v: list[Tensor]
    cross_k: list[Tensor]
    cross_v: list[Tensor]
    offset: int = 0
    rows_per_audio: int = 1

    @property
    def batch_size(self) -> int:
        return self.cross_k[0].shape[0] * self.rows_per_audio

    def index_select(self, batch_indices: Tensor | Sequence[int]) -> DecoderState:
        """Rows `batch_indices` (N,) of this state: reorder, drop or repeat hypotheses (beam search).

        The shared cross-attention cache stays shared when the selected rows come in equal, contiguous groups per
        audio (what beam search produces); otherwise it is gathered per row.
        """
        idx = torch.as_tensor(batch_indices, dtype=torch.long, device=self.cross_k[0].device)
        if idx.ndim != 1:
            raise ValueError(f"batch_indices must be 1-D, got shape {tuple(idx.shape)}")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.batch_size):
            raise IndexError(f"batch_indices out of range for a state of {self.batch_size} rows")
        self_k = [k.index_select(0, idx) for k in self.self_k]
        self_v = [v.index_select(0, idx) for v in self.self_v]
        n_audio = self.cross_k[0].shape[0]
        audio_of_row = idx // self.rows_per_audio
        group = idx.numel() // n_audio if n_audio else 0
        grouped = group > 0 and group * n_audio == idx.numel()
        if grouped and torch.equal(
            audio_of_row, torch.arange(n_audio, device=idx.device).repeat_interleave(group)
        ):
            return DecoderState(self_k, self_v, self.cross_k, self.cross_v, self.offset, group)
        cross_k = [k.index_select(0, audio_of_row) for k in self.cross_k]
        cross_v = [v.index_select(0, audio_of_row) for v in self.cross_v]
        return DecoderState(self_k, self_v, cross_k, cross_v, self.offset, 1)

    def repeat_interleave(self, n: int) -> DecoderState:
        """Each row repeated n times in place (row b -> rows b*n .. b*n+n-1): one audio expanded to n beams."""
        if n < 1:
            raise ValueError(f"repeat_interleave needs n >= 1, got {n}")
        return self.index_select(torch.arange(self.batch_size).repeat_interleave(n))


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention with openai-whisper's parameter names (the key projection has no bias).

    Dropping a key bias is exact: it adds q.b_k to every score of a query, which softmax ignores.
    """

    def __init__(self, n_state: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.query = nn.Linear(n_state, n_state)
        self.key = nn.Linear(n_state, n_state, bias=False)
        self.value = nn.Linear(n_state, n_state)
        self.out = nn.Linear(n_state, n_state)

    def split_heads(self, x: Tensor) -> Tensor:
        """(B, T, D) -> (B, H, T, Dh)."""
        b, t, _ = x.shape
        return x.view(b, t, self.n_head, -1).transpose(1, 2)

    def project_kv(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values of x (B, T, D), each (B, H, T, Dh)."""
        return self.split_heads(self.key(x)), self.split_heads(self.value(x))

    def forward(
        self,
        x: Tensor,
        k: Tensor,
        v: Tensor,
        mask: Tensor | None = None,
        is_causal: bool = False,
        rows_per_kv: int = 1,
    ) -> Tensor:
        """x (B, L, D) attends to k, v (B / rows_per_kv, H, S, Dh) -> (B, L, D).

        mask: bool (L, S), True where attention is allowed. rows_per_kv > 1 lets consecutive groups of query rows
        share one key/value row (beams of one audio): their queries are stacked along L, which is exact because
        cross-attention has no mask.
        """
        b, n_q, d = x.shape
        q = self.split_heads(self.query(x))  # (B, H, L, Dh)
        if rows_per_kv > 1:
            a = b // rows_per_kv
            q = q.reshape(a, rows_per_kv, self.n_head, n_q, -1).transpose(1, 2)
            q = q.reshape(a, self.n_head, rows_per_kv * n_q, -1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
        if rows_per_kv > 1:
            out = out.reshape(b // rows_per_kv, self.n_head, rows_per_kv, n_q, -1).transpose(1, 2)
        out = out.reshape(b, self.n_head, n_q, -1).transpose(1, 2).reshape(b, n_q, d)
        return self.out(out)


class ResidualAttentionBlock(nn.Module):
    """Pre-norm transformer block: self-attention, optional cross-attention, 4x GELU MLP."""

    def __init__(self, n_state: int, n_head: int, cross_attention: bool = False) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(n_state, n_head)
        self.attn_ln = nn.LayerNorm(n_state)
        self.cross_attn = MultiHeadAttention(n_state, n_head) if cross_attention else None
        self.cross_attn_ln = nn.LayerNorm(n_state) if cross_attention else None
        n_mlp = n_state * 4
        self.mlp = nn.Sequential(nn.Linear(n_state, n_mlp), nn.GELU(), nn.Linear(n_mlp, n_state))
        self.mlp_ln = nn.LayerNorm(n_state)

    def forward(
        self,
        x: Tensor,
        past_kv: tuple[Tensor, Tensor] | None = None,
        cross_kv: tuple[Tensor, Tensor] | None = None,
        rows_per_audio: int = 1,
        mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """x (B, L, D) -> (x (B, L, D), (k, v) each (B, H, P + L, Dh)).

        past_kv: cached self-attention keys/values (B, H, P, Dh) of earlier tokens, or None.
        cross_kv: projected audio keys/values (B / rows_per_audio, H, S, Dh) for decoder blocks.
        """
        h = self.attn_ln(x)
        k, v = self.attn.project_kv(h)
        if past_kv is not None:
            k = torch.cat([past_kv[0], k], dim=2)
            v = torch.cat([past_kv[1], v], dim=2)
        x = x + self.attn(h, k, v, mask=mask, is_causal=is_causal)
        if self.cross_attn is not None:
            if cross_kv is None or self.cross_attn_ln is None:
                raise ValueError("a cross-attention block needs cross_kv")
            x = x + self.cross_attn(self.cross_attn_ln(x), *cross_kv, rows_per_kv=rows_per_audio)
        x = x + self.mlp(self.mlp_ln(x))
        return x, (k, v)


class AudioEncoder(nn.Module):
    """Two convolutions (the second with stride 2), sinusoidal positions, transformer blocks, final LayerNorm."""

    def __init__(self, n_mels: int, n_ctx: int, n_state: int, n_head: int, n_layer: int) -> None:
        super().__init__()
        self.n_mels = n_mels
        self.n_ctx = n_ctx
        self.conv1 = nn.Conv1d(n_mels, n_state, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(n_state, n_state, kernel_size=3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(n_ctx, n_state))
        self.blocks = nn.ModuleList([ResidualAttentionBlock(n_state, n_head) for _ in range(n_layer)])
        self.ln_post = nn.LayerNorm(n_state)

    def forward(self, mel: Tensor) -> Tensor:
        """mel (B, n_mels, T) with 0 < T <= 2 * n_ctx -> (B, ceil(T / 2), D).

        T = 2 * n_ctx (3000 frames, 30 s) is the reference input; shorter T skips the padded work (see the module
        docstring: an approximation of the padded result).
        """
        if mel.ndim != 3 or mel.shape[1] != self.n_mels:
            raise ValueError(
                f"expected a mel spectrogram (B, {self.n_mels}, T), got shape {tuple(mel.shape)}"
            )
        n_frames = mel.shape[2]
        if not 0 < n_frames <= 2 * self.n_ctx:
            raise ValueError(
                f"mel has {n_frames} frames; the encoder takes 1 to {2 * self.n_ctx} frames "
                f"({2 * self.n_ctx} = one 30 s window): split longer audio into windows"
            )
        x = mel.to(self.conv1.weight.dtype)
        x = F.gelu(self.conv1(x))
        x = F.gelu(self.conv2(x))
        x = x.transpose(1, 2)  # (B, S, D)
        x = x + self.positional_embedding[: x.shape[1]].to(x.dtype)
        for block in self.blocks:
            x, _ = block(x)
        return self.ln_post(x)


class TextDecoder(nn.Module):
    """Token + learned positional embeddings, causal blocks with cross-attention, logits tied to the embedding."""

    def __init__(self, n_vocab: int, n_ctx: int, n_state: int, n_head: int, n_layer: int) -> None:
        super().__init__()
        self.n_ctx = n_ctx
        self.token_embedding = nn.Embedding(n_vocab, n_state)
        self.positional_embedding = nn.Parameter(torch.empty(n_ctx, n_state))
        self.blocks = nn.ModuleList(
            [ResidualAttentionBlock(n_state, n_head, cross_attention=True) for _ in range(n_layer)]
        )
        self.ln = nn.LayerNorm(n_state)
        # None: logits use the tied token embedding (the checkpoint layout). `quantize_dynamic_int8` puts an int8
        # copy of the embedding here, because this (V x D) product dominates 1-token decoding steps on CPU.
        self.output_projection: nn.Module | None = None

    def init_state(self, audio_features: Tensor) -> DecoderState:
        """Project the audio features (A, S, D) once into per-layer cross-attention keys/values; no tokens yet."""
        if audio_features.ndim != 3:
            raise ValueError(f"audio_features must be (A, S, D), got shape {tuple(audio_features.shape)}")
        x = audio_features.to(self.positional_embedding.dtype)
        cross_k, cross_v, self_k, self_v = [], [], [], []
        for block in self.blocks:
            k, v = block.cross_attn.project_kv(x)
            cross_k.append(k)
            cross_v.append(v)
            empty = k.new_empty(k.shape[0], k.shape[1], 0, k.shape[3])
            self_k.append(empty)
            self_v.append(empty)
        return DecoderState(self_k, self_v, cross_k, cross_v, offset=0, rows_per_audio=1)

    def forward(self, tokens: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """tokens (B, L) following the state's `offset` consumed tokens -> (logits (B, L, V) float32, new state).

        The input state is not modified.
        """
        if tokens.ndim != 2:
            raise ValueError(f"tokens must be (B, L), got shape {tuple(tokens.shape)}")
        n_batch, n_new = tokens.shape
        if n_batch != state.batch_size:
            raise ValueError(f"tokens have {n_batch} rows but the decoder state has {state.batch_size}")
        offset = state.offset
        if offset + n_new > self.n_ctx:
            raise ValueError(f"{offset + n_new} tokens exceed the decoder context of {self.n_ctx}")

        mask, is_causal = None, False
        if n_new > 1 and offset == 0:
            is_causal = True
        elif n_new > 1:  # a chunk after a cached prefix: token i sees positions <= offset + i
            mask = torch.ones(n_new, offset + n_new, dtype=torch.bool, device=tokens.device).tril(offset)

        x = self.token_embedding(tokens) + self.positional_embedding[offset : offset + n_new]
        self_k, self_v = [], []
        for i, block in enumerate(self.blocks):
            x, (k, v) = block(
                x,
                past_kv=(state.self_k[i], state.self_v[i]),
                cross_kv=(state.cross_k[i], state.cross_v[i]),
                rows_per_audio=state.rows_per_audio,
                mask=mask,
                is_causal=is_causal,
            )
            self_k.append(k)
            self_v.append(v)
        x = self.ln(x)
        if self.output_projection is not None:
            logits = self.output_projection(x).float()
        else:
            logits = (x @ self.token_embedding.weight.to(x.dtype).T).float()
        new_state = DecoderState(
            self_k, self_v, state.cross_k, state.cross_v, offset + n_new, state.rows_per_audio
        )
        return logits, new_state


class Whisper(nn.Module):
    """Whisper = AudioEncoder + TextDecoder, with the alignment-head mask used for word timestamps."""

    def __init__(self, dims: WhisperDims) -> None:
        super().__init__()
        self.dims = dims
        self.encoder = AudioEncoder(
            dims.n_mels, dims.n_audio_ctx, dims.n_audio_state, dims.n_audio_head, dims.n_audio_layer
        )
        self.decoder = TextDecoder(
            dims.n_vocab, dims.n_text_ctx, dims.n_text_state, dims.n_text_head, dims.n_text_layer
        )
        self.set_alignment_heads(None)

    def set_alignment_heads(self, pairs: Iterable[tuple[int, int]] | None) -> None:
        """Use exactly the given (layer, head) pairs as alignment heads; None: every head of the last half of the
        decoder layers (openai-whisper's default). Stored as a bool (n_text_layer, n_text_head) buffer that is
        not part of the state dict."""
        n_layer, n_head = self.dims.n_text_layer, self.dims.n_text_head
        heads = torch.zeros(n_layer, n_head, dtype=torch.bool)
        if pairs is None:
            heads[n_layer // 2 :] = True
        else:
            for layer, head in pairs:
                if not (0 <= layer < n_layer and 0 <= head < n_head):
                    raise ConfigError(
                        f"alignment head ({layer}, {head}) out of range for {n_layer} layers x {n_head} heads"
                    )
                heads[layer, head] = True
        device = self.decoder.positional_embedding.device
        self.register_buffer("alignment_heads", heads.to(device), persistent=False)

    def embed_audio(self, mel: Tensor) -> Tensor:
        """mel (B, n_mels, T <= 2 * n_audio_ctx) -> audio features (B, ceil(T / 2), D)."""
        return self.encoder(mel)

    def logits(self, tokens: Tensor, audio_features: Tensor) -> Tensor:
        """Full-sequence logits without a cache (parity tests): tokens (B, L), features (B, S, D) -> (B, L, V)."""
        return self.decoder(tokens, self.decoder.init_state(audio_features))[0]

    def forward(self, mel: Tensor, tokens: Tensor) -> Tensor:
        """mel (B, n_mels, T), tokens (B, L) -> logits (B, L, V) float32."""
        return self.logits(tokens, self.embed_audio(mel))

    @property
    def device(self) -> torch.device:
        return self.decoder.positional_embedding.device

    @property
    def is_multilingual(self) -> bool:
        return self.dims.n_vocab >= N_VOCAB_MULTILINGUAL_MIN

    @property
    def num_languages(self) -> int:
        return self.dims.n_vocab - N_VOCAB_ENGLISH_BASE - int(self.is_multilingual)


def quantize_dynamic_int8(
    model: Whisper, *, inplace: bool = False, parts: tuple[str, ...] = ("encoder", "decoder")
) -> Whisper:
    """`model` for CPU inference with the nn.Linear layers of `parts` dynamically quantized to int8 (per-channel).

    parts: ("decoder",) keeps the encoder in float32. Measured on tiny.en (bench/asr_whisper.py, 48 clips): the
    int8 decoder cost no accuracy on the clips (WER 23.2 % vs 25.1 % in float32; on the 5-min long-form file
    22.9 % vs 20.5 %), an int8 encoder did (28.5 %); the decoder is where int8 saves most time per token
    (memory-bound 1-token steps).

    The tied output projection also gets an int8 copy (`TextDecoder.output_projection`); convolutions, the
    embeddings themselves and LayerNorms stay float32. The result keeps the same API, explicit `DecoderState`
    included, but cannot be saved with `save_whisper`. Each layer is converted by torch's dynamic quantized
    `Linear.from_float`, exactly as `torch.ao.quantization.quantize_dynamic` would (which torch marks as
    deprecated in favour of torchao; its deprecation warnings are silenced here).

    inplace: False (default) quantizes a deep copy and leaves `model` untouched, so both are resident at once.
    True converts `model` itself and returns it; loaders use this. Layers are swapped one at a time and each
    float32 weight is freed as soon as its int8 version exists (quantize_dynamic leaves each replaced layer in
    a reference cycle until the next garbage collection), so memory stays near the float32 model's.
    """
    from torch.ao.nn.quantized.dynamic import Linear as DynamicQuantizedLinear

    unknown = set(parts) - {"encoder", "decoder"}
    if unknown or not parts:
        raise ConfigError(f"parts must name 'encoder' and/or 'decoder', got {parts!r}")
    quantized = (model if inplace else copy.deepcopy(model)).float().eval()
    if "decoder" in parts:
        embedding = quantized.decoder.token_embedding.weight
        with torch.device("meta"):  # no (V x D) random init: the weight is set just below
            projection = nn.Linear(embedding.shape[1], embedding.shape[0], bias=False)
        # The embedding itself, not a copy: quantizing reads it into a new int8 weight, then drops this Linear.
        projection.weight = nn.Parameter(embedding.detach(), requires_grad=False)
        quantized.decoder.output_projection = projection
    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
    names = [name for name, module in quantized.named_modules()
             if type(module) is nn.Linear and name.split(".")[0] in parts]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_(tensor|channel).*")
        for name in names:
            parent_name, _, child = name.rpartition(".")
            parent = quantized.get_submodule(parent_name)
            linear = getattr(parent, child)
            linear.qconfig = qconfig
            setattr(parent, child, DynamicQuantizedLinear.from_float(linear))
            del linear  # the last reference: its float32 weight goes now
    return quantized
