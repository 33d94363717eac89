"""ONNX export: per model family, graphs traced from the models' own forward / infer code, plus a manifest.

``export_onnx("ctc-conformer-synth-en", "out/")`` writes one ``.onnx`` file per graph and ``manifest.json`` (the
family, the files, each graph's inputs and outputs, the opset, the int8 flag and everything a runtime needs
besides the weights: model config, front-end settings, tokenizer, decoding defaults, the LM beside the model).
:func:`seqspeech.export.runtime.load_onnx_model` runs such a folder without PyTorch weights.

Graphs per family (dynamic axes: ``batch`` on every batch dimension, so Triton can batch them, and the time axes):

* **whisper**: ``encoder`` (mel ``(batch, n_mels, frames)`` -> audio features ``(batch, positions, D)``),
  ``cross_kv`` (audio features -> ``cross_k_i`` / ``cross_v_i`` per decoder layer, ``(batch, H, positions, Dh)``,
  computed once per window) and ``decoder`` (``tokens (batch, L)``, the self-attention cache ``self_k_i`` /
  ``self_v_i (batch, H, past, Dh)`` and the cross-attention cache -> ``logits (batch, L, V)`` and the grown cache
  ``new_self_k_i`` / ``new_self_v_i (batch, H, past + L, Dh)``). ``tokenizer.json`` is copied when the model has one.
* **ctc**: ``ctc`` (raw fbank ``features (batch, frames, F)``, ``feature_lens (batch,)`` -> ``log_probs (batch,
  frames', V)``, ``out_lens``); the fbank front end stays in Python, normalisation is inside the graph.
* **transducer** (causal encoder): ``subsampling`` (raw fbank -> subsampled frames; normalisation inside),
  ``encoder_chunk`` (one chunk of subsampled frames with every layer's streaming cache stacked,
  ``cache_keys / cache_values (layers, batch, H, left, Dh)``, ``cache_hidden (layers, batch, left)`` bool,
  ``cache_conv (layers, batch, D, kernel - 1)`` -> encoder frames and the new caches), ``encoder_proj``,
  ``predictor`` (one step: ``tokens (N,)`` and the LSTM state ``h``, ``c (layers, N, hidden)`` in and out, or a
  stateless predictor's ``context (N, k)``), ``predictor_proj``, ``joiner`` (projected frames and predictor outputs
  ``(N, J)`` -> ``logits (N, V)``) and ``ctc_head`` when the model has one. A non-causal transducer gets one
  whole-utterance ``encoder`` graph instead of ``subsampling`` + ``encoder_chunk``.
* **tts** (FastSpeech 2 + HiFi-GAN voices): ``acoustic`` (``tokens (batch, U)``, ``token_lens`` and the controls
  ``speed``, ``pitch_shift``, ``energy_scale``, each ``(batch,)`` -> ``mels (batch, n_mels, frames)``, ``mel_lens``,
  ``durations``, ``pitch``, ``energy``) and ``vocoder`` (``mels`` -> ``wave (batch, samples)``).

Where the PyTorch inference code decides with Python numbers what a graph must decide from tensors, a small
export wrapper states the same computation in traceable ops, and the parity tests (``tests/export``) hold it to the
PyTorch output: Whisper's decoder mask for a cached prefix, FastSpeech 2's duration scaling, bucketing and length
regulator (``expm1`` is ``exp - 1``; ``torch.bucketize`` a comparison count; ``searchsorted`` a cumulative-sum
comparison), and HiFi-GAN's iSTFT head (``torch.polar`` / ``torch.istft``, which ONNX cannot express, become a
16-point inverse real DFT as a matrix product and an overlap-add transposed convolution).

``int8=True`` quantises the weights of every ``MatMul`` / ``Gemm`` with a constant weight to int8 after export
(:func:`onnxruntime.quantization.quantize_dynamic`: int8 weights, activations quantised on the fly; convolutions,
embeddings, LayerNorms and the LSTM stay float32). Whisper's encoder stays float32 too, as in our PyTorch int8
default (an int8 encoder cost accuracy there, see :func:`seqspeech.asr.whisper.quantize_dynamic_int8`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..config import to_mapping
from ..errors import ConfigError, ModelLoadError
from ..fileio import atomic_path, check_output_dir, read_text_file, write_atomic
from . import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET

__all__ = [
    "DEFAULT_OPSET", "FORMAT", "MANIFEST_FILE", "Graph", "check_opset", "export_model", "export_onnx", "read_manifest",
]

FORMAT = "seqspeech.onnx"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
BATCH = "batch"  # the name of every batch axis (Triton's batching reads it)
FAMILIES = ("whisper", "ctc", "transducer", "tts")
LM_FILE = "lm.arpa"
TOKENIZER_JSON = "tokenizer.json"
INT8_KEEP_FLOAT = {"whisper": ("encoder",)}  # graphs whose weights stay float32 under int8
INT8_OPS = ["MatMul", "Gemm"]
TRACE_BATCH = 2  # dummy inputs have two rows, so no batch dimension is traced as a constant 1


@dataclass
class Graph:
    """One graph to trace: ``module(*args)`` with named inputs and outputs and their dynamic axes
    ``{name: {axis: label}}``."""

    name: str
    module: nn.Module
    args: tuple[Tensor, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]] = field(default_factory=dict)


@dataclass
class ExportPlan:
    """What one family exports: graphs, manifest fields, files copied beside the graphs ``{name: source}``."""

    family: str
    graphs: list[Graph]
    metadata: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


class _Method(nn.Module):
    """``owner.method(*args)`` as a module's forward (a model's inference entry point other than ``forward``)."""

    def __init__(self, owner: nn.Module, method: str) -> None:
        super().__init__()
        self.owner = owner
        self.method = method

    def forward(self, *args: Tensor) -> Any:
        return getattr(self.owner, self.method)(*args)


def _generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _batch_axes(names: tuple[str, ...], **extra: dict[int, str]) -> dict[str, dict[int, str]]:
    """``{name: {0: "batch"}}`` for each name, merged with ``extra`` axes per name."""
    return {name: {0: BATCH, **extra.get(name, {})} for name in names}


# ----------------------------------------------------------------------------------------------------------------
# Whisper


class _WhisperCrossKV(nn.Module):
    """Audio features ``(A, S, D)`` -> every decoder layer's cross-attention keys, then values ``(A, H, S, Dh)``
    (what :meth:`~seqspeech.asr.whisper.TextDecoder.init_state` computes)."""

    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, features: Tensor) -> tuple[Tensor, ...]:
        pairs = [block.cross_attn.project_kv(features) for block in self.decoder.blocks]
        return tuple(k for k, _ in pairs) + tuple(v for _, v in pairs)


class _WhisperDecoderStep(nn.Module):
    """:meth:`~seqspeech.asr.whisper.TextDecoder.forward` with its cache as tensors: ``tokens (B, L)`` after the
    cached ``past = self_k_0.shape[2]`` tokens -> logits ``(B, L, V)`` and the grown self-attention caches.

    The decoder's own forward picks the causal mask with Python numbers; here token i sees positions
    ``<= past + i``, the same mask for a prompt (past 0), a 1-token step or a chunk."""

    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder
        self.n_layer = len(decoder.blocks)
        # the tied embedding stored once, transposed (D, V): the lookup gathers its columns and the output
        # projection multiplies by it, so the graph holds one copy and int8 can quantise the product's weight
        self.embedding_t = nn.Parameter(decoder.token_embedding.weight.detach().T.contiguous(), requires_grad=False)

    def forward(self, tokens: Tensor, *caches: Tensor) -> tuple[Tensor, ...]:
        n = self.n_layer
        self_k, self_v, cross_k, cross_v = caches[:n], caches[n : 2 * n], caches[2 * n : 3 * n], caches[3 * n :]
        dec = self.decoder
        past, length = self_k[0].size(2), tokens.size(1)
        positions = torch.arange(past + length, device=tokens.device)
        mask = positions[None, :] <= torch.arange(length, device=tokens.device)[:, None] + past  # (L, past + L)
        embedded = self.embedding_t.index_select(1, tokens.reshape(-1)).T.reshape(tokens.size(0), length, -1)
        x = embedded + dec.positional_embedding[past : past + length]
        new_k, new_v = [], []
        for i, block in enumerate(dec.blocks):
            x, (k, v) = block(x, past_kv=(self_k[i], self_v[i]), cross_kv=(cross_k[i], cross_v[i]), mask=mask)
            new_k.append(k)
            new_v.append(v)
        logits = (dec.ln(x) @ self.embedding_t).float()
        return (logits, *new_k, *new_v)


def _whisper_plan(model: Any, tokenizer_json: Path | None) -> ExportPlan:
    """Graphs of a float32 :class:`~seqspeech.asr.whisper.Whisper`."""
    dims = model.dims
    n = dims.n_text_layer
    gen = _generator()
    mel = torch.randn(TRACE_BATCH, dims.n_mels, 2 * dims.n_audio_ctx, generator=gen)
    with torch.no_grad():
        features = model.encoder(mel)
        state = model.decoder.init_state(features)
    head_dim = dims.n_text_state // dims.n_text_head
    past = [torch.randn(TRACE_BATCH, dims.n_text_head, 2, head_dim, generator=gen) for _ in range(2 * n)]
    tokens = torch.randint(0, dims.n_vocab, (TRACE_BATCH, 3), generator=gen)
    cross_k = tuple(f"cross_k_{i}" for i in range(n))
    cross_v = tuple(f"cross_v_{i}" for i in range(n))
    self_kv = tuple(f"self_k_{i}" for i in range(n)) + tuple(f"self_v_{i}" for i in range(n))
    new_kv = tuple(f"new_self_k_{i}" for i in range(n)) + tuple(f"new_self_v_{i}" for i in range(n))
    graphs = [
        Graph("encoder", model.encoder, (mel,), ("mel",), ("features",),
              _batch_axes(("mel", "features"), mel={2: "frames"}, features={1: "positions"})),
        Graph("cross_kv", _WhisperCrossKV(model.decoder), (features,), ("features",), cross_k + cross_v,
              _batch_axes(("features",) + cross_k + cross_v, features={1: "positions"},
                          **{name: {2: "positions"} for name in cross_k + cross_v})),
        Graph("decoder", _WhisperDecoderStep(model.decoder), (tokens, *past, *state.cross_k, *state.cross_v),
              ("tokens",) + self_kv + cross_k + cross_v, ("logits",) + new_kv,
              _batch_axes(("tokens", "logits") + self_kv + cross_k + cross_v + new_kv,
                          tokens={1: "tokens"}, logits={1: "tokens"},
                          **{name: {2: "past"} for name in self_kv},
                          **{name: {2: "positions"} for name in cross_k + cross_v},
                          **{name: {2: "total"} for name in new_kv})),
    ]
    metadata = {"dims": dims.to_dict(), "tokenizer_json": TOKENIZER_JSON if tokenizer_json else None}
    return ExportPlan("whisper", graphs, metadata, {TOKENIZER_JSON: tokenizer_json} if tokenizer_json else {})


# ----------------------------------------------------------------------------------------------------------------
# CTC and transducer (our trained models)


def _fbank_batch(input_dim: int, frames: int = 64) -> tuple[Tensor, Tensor]:
    """Dummy raw fbank features ``(2, frames, F)`` around typical log-energies, and their lengths."""
    features = torch.randn(TRACE_BATCH, frames, input_dim, generator=_generator()) * 3 + 10
    return features, torch.tensor([frames, frames - 16])


FEATURE_AXES = {"features": {1: "frames"}}


def _package_metadata(asr: Any, decode_keys: tuple[str, ...]) -> dict[str, Any]:
    from ..text.tokenizers import tokenizer_to_dict

    package = asr.package
    return {
        "config": package.config.to_dict(),
        "features": to_mapping(package.features),
        "tokenizer": tokenizer_to_dict(package.tokenizer),
        "decode": {key: getattr(asr, key) for key in decode_keys},
        "lm": LM_FILE if asr.lm_path else None,
    }


def _lm_files(asr: Any) -> dict[str, Path]:
    return {LM_FILE: Path(asr.lm_path)} if asr.lm_path else {}


def _ctc_plan(asr: Any) -> ExportPlan:
    features, lens = _fbank_batch(asr.package.config.input_dim)
    graph = Graph("ctc", _Method(asr.model, "encode"), (features, lens), ("features", "feature_lens"),
                  ("log_probs", "out_lens"),
                  _batch_axes(("features", "feature_lens", "log_probs", "out_lens"), **FEATURE_AXES,
                              log_probs={1: "out_frames"}))
    return ExportPlan("ctc", [graph], _package_metadata(asr, ("beam_size", "lm_weight", "word_bonus")),
                      _lm_files(asr))


class _Subsampling(nn.Module):
    """Raw fbank ``(B, T, F)`` -> normalised, subsampled frames ``(B, T', D)`` (a stream's first encoder step)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: Tensor) -> Tensor:
        lens = torch.zeros(features.size(0), dtype=torch.long, device=features.device) + features.size(1)
        return self.model.encoder.subsampling(self.model.normalize(features), lens)[0]


STREAM_CACHES = ("keys", "values", "hidden", "conv")  # the LayerCache fields, stacked over layers


class _ConformerChunk(nn.Module):
    """One streamed chunk through every Conformer block's :meth:`~seqspeech.nn.conformer.ConformerBlock.infer`:
    ``x (B, C, D)`` with ``valid (B,)`` frames each and the stacked caches -> ``(y (B, C, D), new caches)``."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: Tensor, valid: Tensor, keys: Tensor, values: Tensor, hidden: Tensor,
                conv: Tensor) -> tuple[Tensor, ...]:
        from ..nn.conformer import LayerCache
        from ..nn.masks import make_pad_mask
        from ..nn.positional import relative_sinusoids

        chunk = x.size(1)
        pad_mask = make_pad_mask(valid, chunk)
        pos_emb = relative_sinusoids(keys.size(3) + chunk, self.encoder.d_model, x.device, x.dtype, queries=chunk)
        caches = []
        for i, block in enumerate(self.encoder.blocks):
            x, cache = block.infer(x, pos_emb[None], pad_mask, LayerCache(keys[i], values[i], hidden[i], conv[i]))
            caches.append(cache)
        return (x, *(torch.stack([getattr(c, name) for c in caches]) for name in STREAM_CACHES))


class _PredictorStep(nn.Module):
    """``predictor.step`` with its state as tensors: ``tokens (N,)``, state tensors -> ``g (N, Dp)``, new state."""

    def __init__(self, predictor: nn.Module, lstm: bool) -> None:
        super().__init__()
        self.predictor = predictor
        self.lstm = lstm

    def forward(self, tokens: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        g, new = self.predictor.step(tokens, tuple(state) if self.lstm else state[0])
        return (g, *new) if self.lstm else (g, new)


def _transducer_plan(asr: Any) -> ExportPlan:
    from ..asr.transducer import LSTMPredictor

    model, config = asr.model, asr.package.config
    encoder = model.encoder
    gen = _generator()
    features, lens = _fbank_batch(config.input_dim)
    graphs: list[Graph] = []
    if encoder.causal:
        graphs.append(Graph("subsampling", _Subsampling(model), (features,), ("features",), ("frames",),
                            _batch_axes(("features", "frames"), **FEATURE_AXES, frames={1: "out_frames"})))
        chunk, layers = encoder.decode_chunk or 8, len(encoder.blocks)
        attn = encoder.blocks[0].attn
        caches = (
            torch.randn(layers, TRACE_BATCH, attn.num_heads, encoder.left_context, attn.head_dim, generator=gen),
            torch.randn(layers, TRACE_BATCH, attn.num_heads, encoder.left_context, attn.head_dim, generator=gen),
            torch.arange(encoder.left_context).repeat(layers, TRACE_BATCH, 1) < encoder.left_context // 2,
            torch.randn(layers, TRACE_BATCH, encoder.d_model, encoder.blocks[0].conv.kernel_size - 1, generator=gen),
        )
        x = torch.randn(TRACE_BATCH, chunk, encoder.d_model, generator=gen)
        cache_in = tuple(f"cache_{name}" for name in STREAM_CACHES)
        cache_out = tuple(f"new_{name}" for name in STREAM_CACHES)
        axes = {"x": {0: BATCH, 1: "chunk"}, "valid": {0: BATCH}, "encoder_out": {0: BATCH, 1: "chunk"},
                **{name: {1: BATCH} for name in cache_in + cache_out}}
        graphs.append(Graph("encoder_chunk", _ConformerChunk(encoder), (x, torch.tensor([chunk, chunk - 3]), *caches),
                            ("x", "valid") + cache_in, ("encoder_out",) + cache_out, axes))
    else:
        graphs.append(Graph("encoder", _Method(model, "encode"), (features, lens), ("features", "feature_lens"),
                            ("encoder_out", "out_lens"),
                            _batch_axes(("features", "feature_lens", "encoder_out", "out_lens"), **FEATURE_AXES,
                                        encoder_out={1: "out_frames"})))
    enc = torch.randn(TRACE_BATCH, 5, encoder.d_model, generator=gen)
    frame_axes = {1: "frames"}
    graphs.append(Graph("encoder_proj", _Method(model.joiner, "project_encoder"), (enc,), ("encoder_out",),
                        ("encoder_proj",), _batch_axes(("encoder_out", "encoder_proj"), encoder_out=frame_axes,
                                                       encoder_proj=frame_axes)))
    if model.ctc_head is not None:
        graphs.append(Graph("ctc_head", _Method(model, "ctc_log_probs"), (enc,), ("encoder_out",), ("log_probs",),
                            _batch_axes(("encoder_out", "log_probs"), encoder_out=frame_axes,
                                        log_probs=frame_axes)))
    predictor = model.predictor
    lstm = isinstance(predictor, LSTMPredictor)
    with torch.no_grad():
        g, state = predictor.init_state(TRACE_BATCH)
    state = tuple(state) if lstm else (state,)
    state_names = ("h", "c") if lstm else ("context",)
    state_axis = 1 if lstm else 0
    tokens = torch.randint(0, config.vocab_size, (TRACE_BATCH,), generator=gen)
    graphs.append(Graph("predictor", _PredictorStep(predictor, lstm), (tokens, *state),
                        ("tokens",) + state_names, ("g",) + tuple(f"new_{name}" for name in state_names),
                        {"tokens": {0: BATCH}, "g": {0: BATCH},
                         **{name: {state_axis: BATCH} for name in state_names},
                         **{f"new_{name}": {state_axis: BATCH} for name in state_names}}))
    graphs.append(Graph("predictor_proj", _Method(model.joiner, "project_predictor"), (g.detach(),), ("g",),
                        ("predictor_proj",), _batch_axes(("g", "predictor_proj"))))
    joint = torch.randn(TRACE_BATCH, config.joiner_dim, generator=gen)
    graphs.append(Graph("joiner", model.joiner, (joint, joint.flip(0)), ("encoder_proj", "predictor_proj"),
                        ("logits",), _batch_axes(("encoder_proj", "predictor_proj", "logits"))))
    metadata = _package_metadata(asr, ("method", "beam_size", "lm_weight", "word_bonus", "chunk"))
    metadata["predictor_state"] = [
        {"name": name, "batch_axis": state_axis,
         "shape": [None if axis == state_axis else size for axis, size in enumerate(tensor.shape)],
         "fill": 0 if lstm else predictor.blank, "dtype": str(tensor.dtype).removeprefix("torch.")}
        for name, tensor in zip(state_names, state)
    ]
    return ExportPlan("transducer", graphs, metadata, _lm_files(asr))


# ----------------------------------------------------------------------------------------------------------------
# Text to speech: FastSpeech 2 + HiFi-GAN


class _FastSpeech2Graph(nn.Module):
    """:meth:`~seqspeech.tts.fastspeech2.FastSpeech2.infer` with the controls as tensors; see the module docstring
    for the ops restated in traceable form. Returns mels ``(B, M, T)`` (``TTS_LOG_SILENCE`` past ``mel_lens``),
    ``mel_lens``, ``durations``, normalised ``pitch`` and ``energy (B, U)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    @staticmethod
    def _bucket(values: Tensor, boundaries: Tensor) -> Tensor:
        return (values[..., None] > boundaries).sum(-1)  # == torch.bucketize(values, boundaries)

    def forward(self, tokens: Tensor, token_lens: Tensor, speed: Tensor, pitch_shift: Tensor,
                energy_scale: Tensor) -> tuple[Tensor, ...]:
        from ..nn.masks import make_pad_mask
        from ..tts.fastspeech2 import SEMITONE
        from ..tts.mel import TTS_LOG_SILENCE

        m = self.model
        c = m.config
        token_pad = make_pad_mask(token_lens, tokens.size(1))
        x = m.encoder(m.embed(tokens), token_lens)
        # scale_durations(..., log_domain=True): round half up, a token predicted present keeps >= 1 frame
        frames = (torch.exp(m.duration_predictor(x, token_pad)) - 1).clamp(min=0.0)
        scaled = torch.floor(frames / speed[:, None] + 0.5)
        durations = torch.where(torch.floor(frames + 0.5) >= 1, scaled.clamp(min=1.0), torch.zeros_like(scaled))
        durations = durations.long().masked_fill(token_pad, 0)
        shift = pitch_shift[:, None] * SEMITONE / c.pitch_std
        pitch = (m.pitch_predictor(x, token_pad) + shift).masked_fill(token_pad, 0.0)
        x = x + m.pitch_embedding(self._bucket(pitch, m.pitch_boundaries))
        energy = m.energy_predictor(x, token_pad)
        energy = ((energy * c.energy_std + c.energy_mean) * energy_scale[:, None] - c.energy_mean) / c.energy_std
        energy = energy.masked_fill(token_pad, 0.0)
        x = x + m.energy_embedding(self._bucket(energy, m.energy_boundaries))
        # length_regulate: frame t belongs to the first token whose cumulative end is > t
        ends = durations.cumsum(dim=1)
        mel_lens = ends[:, -1]
        t = torch.arange(mel_lens.max(), device=x.device)
        index = (ends[:, None, :] <= t[None, :, None]).sum(-1).clamp(max=x.size(1) - 1)
        frame_pad = make_pad_mask(mel_lens, t.size(0)).unsqueeze(-1)
        y = torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.size(2))).masked_fill(frame_pad, 0.0)
        _, after = m.decode(y, mel_lens)
        mels = after.masked_fill(frame_pad, TTS_LOG_SILENCE).transpose(1, 2)
        return mels, mel_lens, durations, pitch, energy


def _polar(magnitude: Tensor, angle: Tensor) -> Tensor:
    """``torch.polar`` as a real ``(..., 2)`` tensor (real, imaginary) for :func:`_istft`."""
    return torch.stack([magnitude * torch.cos(angle), magnitude * torch.sin(angle)], dim=-1)


def _istft(spec: Tensor, n_fft: int, hop_length: int, window: Tensor | None = None, center: bool = True,
           length: int | None = None, **_: Any) -> Tensor:
    """``torch.istft`` of a :func:`_polar` spectrum ``(B, n_fft // 2 + 1, T, 2)`` in ONNX-expressible ops: the
    inverse real DFT as a matrix product, windowing, overlap-add and the window-square envelope as transposed
    convolutions with an identity kernel, then the centre padding cut."""
    bins = n_fft // 2 + 1
    k = torch.arange(bins, dtype=torch.float64)[None, :]
    n = torch.arange(n_fft, dtype=torch.float64)[:, None]
    weight = torch.full((bins,), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if n_fft % 2 == 0:
        weight[-1] = 1.0  # the Nyquist bin appears once
    angle = 2 * math.pi * k * n / n_fft
    cos = (weight * torch.cos(angle) / n_fft).to(spec.dtype)
    sin = (-weight * torch.sin(angle) / n_fft).to(spec.dtype)
    window = torch.ones(n_fft, dtype=spec.dtype) if window is None else window
    frames = (cos @ spec[..., 0] + sin @ spec[..., 1]) * window[:, None]  # (B, n_fft, T)
    eye = torch.eye(n_fft, dtype=spec.dtype).unsqueeze(1)
    signal = nn.functional.conv_transpose1d(frames, eye, stride=hop_length)
    squares = (window**2)[None, :, None].expand(1, n_fft, frames.size(-1))
    envelope = nn.functional.conv_transpose1d(squares, eye, stride=hop_length)
    start = n_fft // 2 if center else 0
    end = start + length if length is not None else signal.size(-1) - start
    return (signal / envelope)[:, 0, start:end]


@contextlib.contextmanager
def _exportable_istft() -> Iterator[None]:
    """While tracing, ``torch.polar`` / ``torch.istft`` are :func:`_polar` / :func:`_istft` (module-global: export
    one model at a time)."""
    saved = torch.polar, torch.istft
    torch.polar, torch.istft = _polar, _istft
    try:
        yield
    finally:
        torch.polar, torch.istft = saved


class _Vocode(nn.Module):
    """``Generator`` without weight norm: ``mels (B, n_mels, T)`` -> ``wave (B, T * hop)``."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, mels: Tensor) -> Tensor:
        return self.generator(mels).squeeze(1)


def _tts_plan(synth: Any) -> ExportPlan:
    from ..tts.vocoders.hifigan import HiFiGAN, build_generator

    acoustic = synth.acoustic
    if acoustic.family != "fastspeech2":
        raise ConfigError(f"{acoustic.path}: ONNX export supports FastSpeech 2 voices, not {acoustic.family!r} "
                          "(Tacotron 2 decodes autoregressively with attention)")
    if not isinstance(synth.vocoder, HiFiGAN):
        raise ConfigError(f"{acoustic.path}: ONNX export needs a HiFi-GAN vocoder, this voice uses "
                          f"{synth.vocoder_name}")
    vocoder = synth.vocoder
    generator = build_generator(vocoder.config)
    generator.load_state_dict(vocoder.generator.state_dict())
    generator.remove_weight_norm()
    gen = _generator()
    config = acoustic.model.config
    tokens = torch.randint(1, config.vocab_size, (TRACE_BATCH, 12), generator=gen)
    controls = (torch.tensor([1.0, 1.25]), torch.tensor([0.0, -2.0]), torch.tensor([1.0, 0.5]))
    mels = torch.randn(TRACE_BATCH, config.n_mels, 20, generator=gen) - 5
    graphs = [
        Graph("acoustic", _FastSpeech2Graph(acoustic.model), (tokens, torch.tensor([12, 9]), *controls),
              ("tokens", "token_lens", "speed", "pitch_shift", "energy_scale"),
              ("mels", "mel_lens", "durations", "pitch", "energy"),
              _batch_axes(("tokens", "token_lens", "speed", "pitch_shift", "energy_scale", "mels", "mel_lens",
                           "durations", "pitch", "energy"),
                          tokens={1: "tokens"}, mels={2: "frames"}, durations={1: "tokens"}, pitch={1: "tokens"},
                          energy={1: "tokens"})),
        Graph("vocoder", _Vocode(generator), (mels,), ("mels",), ("wave",),
              _batch_axes(("mels", "wave"), mels={2: "frames"}, wave={1: "samples"})),
    ]
    metadata = {
        "acoustic": {"family": acoustic.family, "config": config.to_dict(), "mel": acoustic.mel.to_dict(),
                     "frontend": acoustic.frontend.to_dict()},
        "vocoder": {"family": "hifigan", "config": to_mapping(vocoder.config)},
    }
    return ExportPlan("tts", graphs, metadata)


# ----------------------------------------------------------------------------------------------------------------
# writing


def check_opset(opset: int) -> int:
    """``opset`` when this exporter supports it; ConfigError otherwise."""
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ConfigError(f"opset must be an int from {MIN_OPSET} to {MAX_OPSET}, got {opset!r}")
    return opset


def _trace(graph: Graph, path: Path, opset: int) -> None:
    """Export ``graph`` to ``path`` (atomically) with the TorchScript exporter."""
    graph.module.eval()  # the exporter restores the wrapper's mode afterwards, which reaches the model's modules
    context = _exportable_istft() if graph.name == "vocoder" else contextlib.nullcontext()
    with atomic_path(path) as tmp, context, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings: Python checks of shapes run once, at trace time
        torch.onnx.export(graph.module, graph.args, str(tmp), dynamo=False, opset_version=opset,
                          input_names=list(graph.inputs), output_names=list(graph.outputs),
                          dynamic_axes=graph.dynamic_axes, do_constant_folding=True)


def _quantize(path: Path) -> None:
    """int8 weights for ``path``'s MatMul / Gemm nodes with a constant weight (in place, atomically)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as e:  # pragma: no cover - onnxruntime ships the quantizer; it needs the onnx package
        raise ConfigError(f"--int8 needs onnxruntime's quantizer and the onnx package "
                          f"(pip install 'seqspeech[export]'): {e}") from None
    root = logging.getLogger()
    level = root.level
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root.setLevel(logging.ERROR)  # the quantizer logs advice ("consider pre-processing") on the root logger
        try:
            quantize_dynamic(path, tmp, weight_type=QuantType.QInt8, op_types_to_quantize=INT8_OPS,
                             extra_options={"MatMulConstBOnly": True})
        finally:
            root.setLevel(level)


def _write(plan: ExportPlan, out_dir: Path, *, name: str, int8: bool, opset: int) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    graphs, quantized = {}, []
    for graph in plan.graphs:
        path = out_dir / f"{graph.name}.onnx"
        _trace(graph, path, opset)
        if int8 and graph.name not in INT8_KEEP_FLOAT.get(plan.family, ()):
            _quantize(path)
            quantized.append(graph.name)
        graphs[graph.name] = {"file": path.name, "inputs": list(graph.inputs), "outputs": list(graph.outputs)}
    for target, source in plan.files.items():
        with atomic_path(out_dir / target) as tmp:
            shutil.copyfile(source, tmp)
    manifest = {
        "format": FORMAT, "version": FORMAT_VERSION, "family": plan.family, "name": name, "opset": opset,
        "int8": int8, "int8_graphs": quantized, "torch": torch.__version__, "graphs": graphs,
        "files": sorted([g["file"] for g in graphs.values()] + list(plan.files)), **plan.metadata,
    }
    write_atomic(out_dir / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    return out_dir


def export_model(model: Any, out_dir: str | os.PathLike, *, name: str | None = None, int8: bool = False,
                 opset: int = DEFAULT_OPSET, tokenizer_json: str | os.PathLike | None = None) -> Path:
    """Export a loaded model: a :class:`~seqspeech.asr.whisper_asr.WhisperASR` (float32), a
    :class:`~seqspeech.asr.ctc_asr.CTCASR`, a :class:`~seqspeech.asr.transducer_asr.TransducerASR` or a
    :class:`~seqspeech.tts.synthesizer.Synthesizer` (FastSpeech 2 + HiFi-GAN), on the CPU. Returns ``out_dir``.

    ``tokenizer_json``: a Whisper model's ``tokenizer.json`` to ship (default: the tiktoken vocabulary).

    Raises:
        ConfigError: an unsupported model or option; OutputError: ``out_dir`` cannot be written.
    """
    from ..asr.ctc_asr import CTCASR
    from ..asr.transducer_asr import TransducerASR
    from ..asr.whisper_asr import WhisperASR
    from ..tts.synthesizer import Synthesizer

    opset = check_opset(opset)
    out = check_output_dir(out_dir)
    label = name or getattr(model, "name", None) or _default_name(model)
    if getattr(model, "runtime", None) == "onnxruntime":
        raise ConfigError(f"{label}: already an ONNX export (runs on ONNX Runtime); export the PyTorch model")
    if isinstance(model, WhisperASR):
        if model.compute_type != "float32" or model.device.type != "cpu":
            raise ConfigError(f"{label}: export a float32 CPU Whisper model (load it with compute_type='float32', "
                              f"device='cpu'), not {model.compute_type} on {model.device}")
        plan = _whisper_plan(model.model, Path(tokenizer_json) if tokenizer_json else None)
    elif isinstance(model, (CTCASR, TransducerASR)):
        if model.device.type != "cpu" or model.compute_type != "float32":
            raise ConfigError(f"{label}: export a float32 model on the CPU (load it with device='cpu')")
        plan = _ctc_plan(model) if isinstance(model, CTCASR) else _transducer_plan(model)
    elif isinstance(model, Synthesizer):
        if model.device.type != "cpu":
            raise ConfigError(f"{label}: export a voice loaded on the CPU (device='cpu')")
        plan = _tts_plan(model)
    else:
        raise ConfigError(f"{label}: ONNX export supports Whisper, CTC and transducer recognisers and FastSpeech 2 "
                          f"voices, not {type(model).__name__}")
    return _write(plan, out, name=label, int8=bool(int8), opset=opset)


def _default_name(model: Any) -> str:
    """A name for a model that has none: a voice's folder, else the class."""
    acoustic = getattr(model, "acoustic", None)
    return acoustic.path.parent.name if acoustic is not None and acoustic.path.parent.name else type(model).__name__


def _display_name(name_or_path: str | os.PathLike) -> str:
    from ..zoo import MODELS

    key = str(name_or_path)
    if key in MODELS:
        return key
    path = Path(key)
    return path.stem if path.is_file() else path.name or key


def export_onnx(model_name_or_path: str | os.PathLike, out_dir: str | os.PathLike, *, int8: bool = False,
                opset: int = DEFAULT_OPSET) -> Path:
    """Export a model (zoo name or path, as :func:`seqspeech.load_model` / :func:`seqspeech.load_voice` take) to
    ONNX graphs and ``manifest.json`` in ``out_dir`` (made if missing; files of an earlier export are replaced).

    ``int8``: quantise the weights of the graphs' matrix products to int8 (see the module docstring).

    Raises:
        ModelLoadError: the model cannot be loaded; ConfigError: an unsupported model or option; OutputError:
            ``out_dir`` cannot be written.
    """
    from ..zoo import resolve

    check_opset(opset)
    check_output_dir(out_dir)
    path, family = resolve(model_name_or_path)
    name = _display_name(model_name_or_path)
    if family == "whisper":
        from ..asr.whisper_asr import WhisperASR
        from ..asr.whisper_loaders import load_whisper
        from ..text.tokenizers.whisper import WhisperTokenizer

        loaded = load_whisper(path)
        whisper = loaded.model.float().eval()
        tokenizer = WhisperTokenizer.for_vocab(whisper.dims.n_vocab, tokenizer_json=loaded.tokenizer_json)
        model: Any = WhisperASR(whisper, tokenizer, name=name, compute_type="float32")
        return export_model(model, out_dir, name=name, int8=int8, opset=opset, tokenizer_json=loaded.tokenizer_json)
    if family == "tts":
        from .. import load_voice

        model = load_voice(path, device="cpu")
    elif family in ("ctc", "transducer"):
        from .. import load_model

        model = load_model(path, device="cpu", lm=True)
    else:
        raise ConfigError(f"{name}: a {family!r} model; ONNX export supports whisper, ctc, transducer and "
                          "FastSpeech 2 voices")
    return export_model(model, out_dir, name=name, int8=int8, opset=opset)


# ----------------------------------------------------------------------------------------------------------------
# reading


def read_manifest(export_dir: str | os.PathLike) -> dict[str, Any]:
    """The manifest of an export folder, checked: format, family, and that every file it lists is there.

    Raises:
        ModelLoadError: naming the folder (or manifest) and the problem.
    """
    folder = Path(export_dir)
    path = folder / MANIFEST_FILE
    if not folder.is_dir():
        raise ModelLoadError(f"{folder}: not an ONNX export folder (no such folder)")
    if not path.is_file():
        raise ModelLoadError(f"{folder}: not an ONNX export folder (no {MANIFEST_FILE}; make one with "
                             "`seqspeech export MODEL --format onnx -o DIR`)")
    try:
        manifest = json.loads(read_text_file(path, what="ONNX export manifest", error=ModelLoadError))
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"{path}: invalid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelLoadError(f"{path}: not a seqspeech ONNX manifest (format {manifest.get('format')!r})"
                             if isinstance(manifest, dict) else f"{path}: not a seqspeech ONNX manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise ModelLoadError(f"{path}: manifest version {manifest.get('version')!r}; this seqspeech reads "
                             f"version {FORMAT_VERSION} (export the model again)")
    if manifest.get("family") not in FAMILIES:
        raise ModelLoadError(f"{path}: unknown family {manifest.get('family')!r} (known: {', '.join(FAMILIES)})")
    graphs = manifest.get("graphs")
    if not isinstance(graphs, dict) or not graphs:
        raise ModelLoadError(f"{path}: the manifest lists no graphs")
    missing = [name for name in manifest.get("files", []) if not (folder / name).is_file()]
    if missing:
        raise ModelLoadError(f"{folder}: files listed in {MANIFEST_FILE} are missing: {', '.join(missing)}")
    return manifest
