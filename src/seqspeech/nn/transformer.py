"""Transformer decoder blocks (pre-LN; causal self-attention, source attention, FFN) with incremental decoding.

Shared by every attention encoder-decoder that decodes text (AED ASR, MT). Shapes: N rows, L target positions,
S source frames, D width, H heads, Dh = D / H.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqspeech.errors import ConfigError
from seqspeech.nn.attention import MultiHeadAttention
from seqspeech.nn.positional import sinusoidal_positions

__all__ = ["TransformerDecoder", "TransformerDecoderLayer"]


def _split_heads(x: Tensor, heads: int) -> Tensor:
    """``(N, L, D)`` -> ``(N, H, L, Dh)``."""
    return x.view(x.size(0), x.size(1), heads, -1).transpose(1, 2)


def _attend(
    q: Tensor, k: Tensor, v: Tensor, visible: Tensor | None, need_weights: bool
) -> tuple[Tensor, Tensor | None]:
    """``q (N, H, L, Dh)`` over ``k, v (N, H, S, Dh)``; ``visible`` bool broadcastable to ``(N, H, L, S)`` (True =
    may attend; every row must see at least one key) -> ``(attended (N, H, L, Dh), weights (N, H, L, S) | None)``.
    Explicit float32 softmax when weights are needed, the fused SDPA kernel otherwise."""
    if not need_weights:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=visible), None
    scores = (q @ k.transpose(-2, -1)).float() / math.sqrt(q.size(-1))
    if visible is not None:
        scores = scores.masked_fill(~visible, torch.finfo(torch.float32).min)
    weights = torch.softmax(scores, dim=-1)
    if visible is not None:
        weights = weights.masked_fill(~visible, 0.0)
    return weights.to(v.dtype) @ v, weights


class TransformerDecoderLayer(nn.Module):
    """Pre-LN decoder layer: ``x + SelfAttn(LN(x))`` (causal) -> ``x + SrcAttn(LN(x), memory)`` ->
    ``x + FFN(LN(x))``, dropout on every residual branch; ``(N, L, D)`` -> ``(N, L, D)``.

    :meth:`forward` runs a whole teacher-forced sequence; :meth:`step` continues a cached prefix (incremental
    decoding) and is numerically the same computation.
    """

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.self_norm = nn.LayerNorm(dim)
        self.self_attn = MultiHeadAttention(dim, heads)
        self.src_norm = nn.LayerNorm(dim)
        self.src_attn = MultiHeadAttention(dim, heads)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ff_dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: Tensor, memory: Tensor, memory_lens: Tensor, need_weights: bool = False,
        src_hide: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """``x (B, U, D)``, ``memory (B, T', D)``, ``memory_lens (B,)`` -> ``(x (B, U, D), source-attention weights
        (B, H, U, T') | None)``; ``src_hide`` bool ``(B | 1, 1, U, T')``: source frames each position may not see
        besides the padding (a wait-k policy)."""
        h = self.self_norm(x)
        x = x + self.dropout(self.self_attn(h, h, None, causal=True)[0])
        attended, weights = self.src_attn(self.src_norm(x), memory, memory_lens, need_weights=need_weights,
                                          hide=src_hide)
        x = x + self.dropout(attended)
        return x + self.dropout(self.ff(self.ff_norm(x))), weights

    def source_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Source-attention keys and values of ``memory (B, T', D)``, each ``(B, H, T', Dh)`` (cached per utterance)."""
        return (
            _split_heads(self.src_attn.key(memory), self.heads),
            _split_heads(self.src_attn.value(memory), self.heads),
        )

    def step(
        self,
        x: Tensor,
        past_k: Tensor,
        past_v: Tensor,
        src_k: Tensor,
        src_v: Tensor,
        src_visible: Tensor,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """Continue a cached prefix of P tokens with L new ones.

        Args: ``x (N, L, D)`` the new positions' inputs; ``past_k, past_v (N, H, P, Dh)`` self-attention cache;
        ``src_k, src_v (N, H, T', Dh)`` from :meth:`source_kv`; ``src_visible (N, 1, 1, T')`` True at valid frames.

        Returns ``(x (N, L, D), k, v (N, H, P+L, Dh), source-attention weights (N, H, L, T') | None)``.
        """
        n, length, _ = x.shape
        h = self.self_norm(x)
        attn = self.self_attn
        k = torch.cat([past_k, _split_heads(attn.key(h), self.heads)], dim=2)
        v = torch.cat([past_v, _split_heads(attn.value(h), self.heads)], dim=2)
        past = past_k.size(2)
        causal = None
        if length > 1:  # new token i sees the prefix and new tokens <= i
            causal = torch.ones(length, past + length, dtype=torch.bool, device=x.device).tril(past)
        attended, _ = _attend(_split_heads(attn.query(h), self.heads), k, v, causal, False)
        x = x + self.dropout(attn.out(attended.transpose(1, 2).reshape(n, length, -1)))
        src = self.src_attn
        q = _split_heads(src.query(self.src_norm(x)), self.heads)
        attended, weights = _attend(q, src_k, src_v, src_visible, need_weights)
        x = x + self.dropout(src.out(attended.transpose(1, 2).reshape(n, length, -1)))
        return x + self.dropout(self.ff(self.ff_norm(x))), k, v, weights


class TransformerDecoder(nn.Module):
    """Token embedding (times sqrt(D)) + sinusoidal positions -> dropout -> pre-LN layers -> LayerNorm -> Linear(V).

    Args:
        vocab_size: V.
        dim: D, the decoder width.
        layers, heads, ff_dim, dropout: layer count, attention heads, feed-forward width, residual dropout.
        memory_dim: width of the encoder output; a Linear maps it to D when it differs.
        tie_output: the output projection reuses the embedding matrix (no separate weight; no bias).
        align_layer: the layer (Python index) whose source attention is read for alignment.
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        layers: int,
        heads: int,
        ff_dim: int,
        dropout: float,
        *,
        memory_dim: int | None = None,
        tie_output: bool = False,
        align_layer: int = -1,
    ) -> None:
        super().__init__()
        if dim % heads or dim % 2:
            raise ConfigError(f"decoder dim={dim} must be even and divisible by heads={heads}")
        if not -layers <= align_layer < layers:
            raise ConfigError(f"align_layer={align_layer} is outside [-{layers}, {layers})")
        self.vocab_size, self.dim, self.heads = vocab_size, dim, heads
        self.embed = nn.Embedding(vocab_size, dim)
        memory_dim = dim if memory_dim is None else memory_dim
        self.memory_proj: nn.Module = nn.Linear(memory_dim, dim) if memory_dim != dim else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(TransformerDecoderLayer(dim, heads, ff_dim, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.output = None if tie_output else nn.Linear(dim, vocab_size)
        if tie_output:  # the embedding is the output layer: N(0, 1/D) keeps the first logits near unit scale
            nn.init.normal_(self.embed.weight, std=dim**-0.5)
        self.align_layer = align_layer % layers

    def embed_tokens(self, tokens: Tensor, start: int = 0) -> Tensor:
        """``tokens (N, L)`` at positions ``start ..`` -> ``(N, L, D)`` (embedding * sqrt(D) + positions, dropout)."""
        x = self.embed(tokens) * math.sqrt(self.dim)
        x = x + sinusoidal_positions(start, tokens.size(1), self.dim, tokens.device).to(x.dtype)
        return self.dropout(x)

    def logits(self, x: Tensor) -> Tensor:
        """Final LayerNorm and output projection: ``(N, L, D)`` -> ``(N, L, V)``."""
        x = self.norm(x)
        if self.output is None:
            return x @ self.embed.weight.to(x.dtype).T
        return self.output(x)

    def forward(
        self, tokens: Tensor, memory: Tensor, memory_lens: Tensor, need_weights: bool = False,
        src_hide: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher-forced pass: ``tokens (B, U)`` valid ids (pads any valid id), ``memory (B, T', De)``,
        ``memory_lens (B,)`` -> ``(logits (B, U, V), weights (B, U, T') | None)``: the mean over heads of layer
        ``align_layer``'s source attention when ``need_weights`` (zero at padded frames). ``src_hide``: see
        :meth:`TransformerDecoderLayer.forward`."""
        memory = self.memory_proj(memory)
        x = self.embed_tokens(tokens)
        weights = None
        for i, layer in enumerate(self.layers):
            want = need_weights and i == self.align_layer
            x, w = layer(x, memory, memory_lens, need_weights=want, src_hide=src_hide)
            if want:
                assert w is not None
                weights = w.mean(dim=1)
        return self.logits(x), weights
