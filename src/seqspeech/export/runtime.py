"""Run an ONNX export (:mod:`seqspeech.export.onnx`) with ONNX Runtime behind the PyTorch classes' public API.

``load_onnx_model(folder)`` returns, per family, a subclass of the PyTorch inference class whose model is a thin
adapter over ONNX Runtime sessions, so everything around the network is the same code that serves PyTorch:

* whisper: :class:`OnnxWhisperASR` (a :class:`~seqspeech.asr.whisper_asr.WhisperASR`): the long-form loop,
  temperature fallback, greedy / beam search / sampling through :mod:`seqspeech.decoding.search`, the tokenizer,
  the log-mel front end. The decoder's KV cache is an :class:`OnnxDecoderState` of numpy arrays (the same
  ``index_select`` contract as :class:`~seqspeech.asr.whisper.DecoderState`).
* ctc: :class:`OnnxCTCASR` (a :class:`~seqspeech.asr.ctc_asr.CTCASR`): windows, fbank front end, greedy or prefix
  beam search with the n-gram LM copied beside the graphs, forced-alignment word times.
* transducer: :class:`OnnxTransducerASR` (a :class:`~seqspeech.asr.transducer_asr.TransducerASR`): the
  Conformer's streaming loop (:meth:`~seqspeech.nn.conformer.ConformerEncoder.infer`, run here over the
  ``encoder_chunk`` graph), every transducer search with LM fusion, and ``stream()``.
* tts: :class:`OnnxSynthesizer` (a :class:`~seqspeech.tts.synthesizer.Synthesizer`): text front end, sentence
  splitting, pauses, watermark; ``synthesize_stream`` yields one chunk per sentence.

Inputs and outputs are what the PyTorch classes take and give (``Transcript`` lists, float32 waveforms). The
numerics are ONNX Runtime's (float32, or int8 matrix products for an ``--int8`` export).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..asr.ctc_asr import CTCASR
from ..asr.transducer_asr import TransducerASR
from ..asr.whisper_asr import WhisperASR
from ..errors import ConfigError, ModelLoadError
from ..nn.conformer import LAYER_FIELDS, ConformerEncoder, ConformerStream, LayerCache
from ..tts.synthesizer import Synthesizer
from .onnx import read_manifest

__all__ = [
    "OnnxCTCASR", "OnnxDecoderState", "OnnxGraph", "OnnxSynthesizer", "OnnxTransducerASR", "OnnxWhisperASR",
    "load_onnx_model",
]

CPU = torch.device("cpu")
ORT_DTYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(bool)": np.bool_,
              "tensor(int32)": np.int32}


def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _torch(x: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


class OnnxGraph:
    """One ONNX Runtime session: ``graph(*inputs)`` (tensors or arrays, in the graph's input order) -> its outputs
    as numpy arrays. Integer inputs are cast to the graph's integer type."""

    def __init__(self, path: Path, options: Any, providers: Sequence[str]) -> None:
        import onnxruntime as ort

        try:
            self.session = ort.InferenceSession(str(path), options, providers=list(providers))
        except Exception as e:  # noqa: BLE001 - onnxruntime's errors (InvalidProtobuf, Fail) derive from Exception
            raise ModelLoadError(f"{path}: ONNX Runtime cannot load this graph: {e}") from None
        self.path = path
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_types = [ORT_DTYPES.get(i.type, np.float32) for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, *inputs: Any) -> list[np.ndarray]:
        if len(inputs) != len(self.input_names):
            raise ValueError(f"{self.path.name}: expects {len(self.input_names)} inputs ({', '.join(self.input_names)}), "
                             f"got {len(inputs)}")
        feed = {name: np.ascontiguousarray(_numpy(x), dtype=dtype)
                for name, dtype, x in zip(self.input_names, self.input_types, inputs)}
        return self.session.run(None, feed)


class _Graphs:
    """The sessions of one export folder, made on first use."""

    def __init__(self, folder: Path, manifest: dict[str, Any], threads: int | None,
                 providers: Sequence[str] | None) -> None:
        import onnxruntime as ort

        self.folder = folder
        self.manifest = manifest
        self.options = ort.SessionOptions()
        if threads is not None:
            if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
                raise ConfigError(f"threads must be an int >= 1, got {threads!r}")
            self.options.intra_op_num_threads = threads
            self.options.inter_op_num_threads = 1
        # no busy-waiting between runs: decoding loops interleave many small runs with torch and Python work, which
        # spinning ONNX Runtime threads would starve (measured: the transducer search ran 3x slower)
        self.options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.providers = list(providers or ["CPUExecutionProvider"])
        self._sessions: dict[str, OnnxGraph] = {}

    def has(self, name: str) -> bool:
        return name in self.manifest["graphs"]

    def __getitem__(self, name: str) -> OnnxGraph:
        if name not in self._sessions:
            if not self.has(name):
                raise ModelLoadError(f"{self.folder}: the export has no {name!r} graph (it has "
                                     f"{', '.join(self.manifest['graphs'])})")
            self._sessions[name] = OnnxGraph(self.folder / self.manifest["graphs"][name]["file"], self.options,
                                             self.providers)
        return self._sessions[name]


def _compute_type(manifest: dict[str, Any]) -> str:
    return "int8" if manifest.get("int8") else "float32"


# ----------------------------------------------------------------------------------------------------------------
# CTC and transducer: ModelPackage-shaped inputs of the PyTorch classes


def _package(folder: Path, manifest: dict[str, Any], config_cls: type, model_of: Any) -> Any:
    """The :class:`~seqspeech.asr.package.ModelPackage` the PyTorch class is built from, its model
    ``model_of(config)``; ModelLoadError naming the manifest for corrupt metadata."""
    from ..asr.package import ModelPackage
    from ..config import from_mapping
    from ..data.dataset import FeatureConfig
    from ..text.tokenizers import tokenizer_from_dict

    where = folder / "manifest.json"
    try:
        config = config_cls.from_dict(manifest["config"])
        features = from_mapping(FeatureConfig, manifest["features"], "features")
        tokenizer = tokenizer_from_dict(manifest["tokenizer"], str(where))
    except (KeyError, TypeError, ConfigError) as e:
        raise ModelLoadError(f"{where}: corrupt {manifest['family']} metadata: {e}") from None
    return ModelPackage(family=manifest["family"], model=model_of(config), config=config, features=features,
                        tokenizer=tokenizer, path=where, decode=dict(manifest.get("decode") or {}))


class _OnnxRecognizer:
    """What the ONNX subclasses of our windowed recognisers share: CPU, the export's compute type."""

    runtime = "onnxruntime"
    _compute: str = "float32"

    @property
    def device(self) -> torch.device:
        return CPU

    @property
    def compute_type(self) -> str:
        return self._compute


class OnnxCTCModel:
    """:meth:`~seqspeech.asr.ctc.CTCModel.encode` over the ``ctc`` graph (normalisation inside the graph)."""

    def __init__(self, graph: OnnxGraph, blank: int) -> None:
        self.graph = graph
        self.blank = blank

    def encode(self, features: Tensor, feature_lens: Tensor) -> tuple[Tensor, Tensor]:
        """Raw fbank ``features (B, T, F)``, ``feature_lens (B,)`` -> ``log_probs (B, T', V)``, ``lens (B,)``."""
        log_probs, lens = self.graph(features, feature_lens)
        return _torch(log_probs), _torch(lens)


class OnnxCTCASR(_OnnxRecognizer, CTCASR):
    """:class:`~seqspeech.asr.ctc_asr.CTCASR` over an ONNX export."""


class _OnnxSubsampling:
    """:class:`~seqspeech.nn.subsampling.Conv2dSubsampling`'s interface over the ``subsampling`` graph (which also
    normalises the features)."""

    def __init__(self, graph: OnnxGraph, factor: int) -> None:
        from ..nn.subsampling import SUBSAMPLING_LAYERS

        self.graph = graph
        self.factor = factor
        self.layers = SUBSAMPLING_LAYERS[factor]

    def output_lengths(self, lens: Tensor) -> Tensor:
        from ..nn.subsampling import Conv2dSubsampling

        return Conv2dSubsampling.output_lengths(self, lens)  # type: ignore[arg-type]  # reads .layers only

    def __call__(self, x: Tensor, lens: Tensor) -> tuple[Tensor, Tensor]:
        return _torch(self.graph(x)[0]), self.output_lengths(lens)


class OnnxStreamingConformer:
    """The streaming half of :class:`~seqspeech.nn.conformer.ConformerEncoder` (``init_stream``, ``infer``) over
    the ``subsampling`` and ``encoder_chunk`` graphs. ``infer`` is the encoder's own method (subsampling per
    stream, whole chunks, the final partial chunk); only a chunk's trip through the blocks runs in ONNX Runtime.

    A stream's per-layer caches are kept stacked: ``ConformerStream.layers`` holds one
    :class:`~seqspeech.nn.conformer.LayerCache` whose tensors carry a leading layer axis.
    """

    training = False
    causal = True
    chunk_sizes: tuple[int, ...] = ()

    def __init__(self, chunk_graph: OnnxGraph, subsampling: _OnnxSubsampling, config: Any) -> None:
        self.graph = chunk_graph
        self.subsampling = subsampling
        self.input_dim = config.input_dim
        self.d_model = config.d_model
        self.num_layers = config.num_layers
        self.heads = config.num_heads
        self.left_context = config.left_context
        self.decode_chunk = config.decode_chunk
        self.conv_context = config.conv_kernel - 1

    def pick_chunk(self, chunk: int | None) -> int:
        """:meth:`~seqspeech.nn.conformer.ConformerEncoder.pick_chunk`."""
        return ConformerEncoder.pick_chunk(self, chunk)  # type: ignore[arg-type]  # duck-typed encoder

    def infer(self, x: Tensor, lens: Tensor, states: list[Any], chunk: int | None = None,
              final: bool = False) -> tuple[Tensor, Tensor, list[Any]]:
        """:meth:`~seqspeech.nn.conformer.ConformerEncoder.infer`."""
        return ConformerEncoder.infer(self, x, lens, states, chunk, final)  # type: ignore[arg-type]

    def init_stream(self) -> ConformerStream:
        """A new stream's state (its caches stacked over layers)."""
        layers, heads, left = self.num_layers, self.heads, self.left_context
        head_dim = self.d_model // heads
        cache = LayerCache(torch.zeros(layers, 1, heads, left, head_dim), torch.zeros(layers, 1, heads, left, head_dim),
                           torch.ones(layers, 1, left, dtype=torch.bool),
                           torch.zeros(layers, 1, self.d_model, self.conv_context))
        return ConformerStream(torch.zeros(0, self.input_dim), torch.zeros(0, self.d_model), [cache])

    def _encode_chunk(self, group: list[Any], chunk: int, outputs: list[list[Tensor]], index: list[int],
                      states: list[Any]) -> None:
        """One chunk of each stream in ``group`` through the ``encoder_chunk`` graph (the encoder's hook)."""
        sizes = [min(s.pending.size(0), chunk) for s in group]
        x = torch.stack([torch.nn.functional.pad(s.pending[:n], (0, 0, 0, chunk - n)) for s, n in zip(group, sizes)])
        caches = [torch.cat([getattr(s.layers[0], name) for s in group], dim=1) for name in LAYER_FIELDS]
        y, *new = (_torch(a) for a in self.graph(x, torch.tensor(sizes), *caches))
        for j, (s, n) in enumerate(zip(group, sizes)):
            cache = LayerCache(*(c[:, j : j + 1] for c in new))
            outputs[index[j]].append(y[j, :n])
            states[index[j]] = ConformerStream(s.features, s.pending[n:], [cache], s.frames + n)


@dataclass
class _FullContextEncoder:
    """A non-causal transducer encoder: it cannot stream (``TransducerASR`` reads these two fields)."""

    causal: bool = False
    decode_chunk: int = 0


class OnnxPredictor:
    """A transducer predictor's search interface (``blank``, ``init_state``, ``step``, ``select_state``) over the
    ``predictor`` graph; the state is a tuple of tensors (LSTM ``(h, c)`` or a stateless predictor's context)."""

    def __init__(self, graph: OnnxGraph, blank: int, state: list[dict[str, Any]]) -> None:
        self.graph = graph
        self.blank = blank
        self.state_spec = state
        self.batch_axes = [int(s["batch_axis"]) for s in state]

    def _initial(self, n: int) -> tuple[Tensor, ...]:
        """The state before any token: zeros (LSTM), or a context of start symbols (stateless)."""
        return tuple(torch.full([n if size is None else size for size in s["shape"]], s["fill"],
                                dtype=getattr(torch, s["dtype"])) for s in self.state_spec)

    def init_state(self, n: int) -> tuple[Tensor, Any]:
        """``g (n, Dp)`` after the start symbol and the state of ``n`` hypotheses (as the PyTorch predictors)."""
        return self.step(torch.full((n,), self.blank, dtype=torch.long), self._initial(n))

    def step(self, tokens: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        g, *new = self.graph(tokens, *state)
        return _torch(g), tuple(_torch(s) for s in new)

    def select_state(self, state: tuple[Tensor, ...], indices: Tensor) -> tuple[Tensor, ...]:
        indices = torch.as_tensor(indices, dtype=torch.long)
        return tuple(s.index_select(axis, indices) for s, axis in zip(state, self.batch_axes))


class OnnxJoiner:
    """:class:`~seqspeech.asr.transducer.Joiner` over the ``encoder_proj``, ``predictor_proj`` and ``joiner``
    graphs."""

    def __init__(self, graphs: _Graphs) -> None:
        self.encoder_graph = graphs["encoder_proj"]
        self.predictor_graph = graphs["predictor_proj"]
        self.graph = graphs["joiner"]

    def project_encoder(self, enc: Tensor) -> Tensor:
        """``(B, T, De)`` -> ``(B, T, J)`` (T may be 0: a stream step that completed no chunk)."""
        if enc.size(1) == 0:
            return enc.new_zeros(enc.size(0), 0, self._joiner_dim())
        return _torch(self.encoder_graph(enc)[0])

    def _joiner_dim(self) -> int:
        return int(self.encoder_graph.session.get_outputs()[0].shape[-1])

    def project_predictor(self, g: Tensor) -> Tensor:
        return _torch(self.predictor_graph(g)[0])

    def __call__(self, enc_proj: Tensor, pred_proj: Tensor) -> Tensor:
        """``(N, J)``, ``(N, J)`` -> logits ``(N, V)``."""
        return _torch(self.graph(enc_proj, pred_proj)[0])


class OnnxTransducerModel:
    """The parts of :class:`~seqspeech.asr.transducer.Transducer` that decoding and streaming use."""

    def __init__(self, graphs: _Graphs, config: Any) -> None:
        self.blank = config.blank
        self.graphs = graphs
        if graphs.has("encoder_chunk"):
            subsampling = _OnnxSubsampling(graphs["subsampling"], config.encoder.subsampling_factor)
            self.encoder: Any = OnnxStreamingConformer(graphs["encoder_chunk"], subsampling, config.encoder)
        else:
            self.encoder = _FullContextEncoder()
        self.predictor = OnnxPredictor(graphs["predictor"], config.blank, graphs.manifest["predictor_state"])
        self.joiner = OnnxJoiner(graphs)
        self.ctc_head = graphs["ctc_head"] if graphs.has("ctc_head") else None

    def normalize(self, features: Tensor) -> Tensor:
        """Identity: the ``subsampling`` / ``encoder`` graphs normalise raw fbank features themselves."""
        return features

    def encode(self, features: Tensor, feature_lens: Tensor, chunk: int | None = None) -> tuple[Tensor, Tensor]:
        """Raw fbank ``(B, T, F)`` -> encoder frames ``(B, T', De)`` and lengths. A streaming encoder runs the
        utterances through :meth:`OnnxStreamingConformer.infer` in ``chunk``-frame chunks (equal to the PyTorch
        model's ``encode`` at that chunk size)."""
        if isinstance(self.encoder, _FullContextEncoder):
            enc, lens = self.graphs["encoder"](features, feature_lens)
            return _torch(enc), _torch(lens)
        chunk = self.encoder.decode_chunk if chunk is None else chunk
        if chunk == 0:
            raise ConfigError("chunk 0 (full context): the ONNX export of a streaming transducer encodes in chunks "
                              "of encoder frames; pass a chunk > 0 (or use the PyTorch model)")
        streams = [self.encoder.init_stream() for _ in range(features.size(0))]
        enc, lens, _ = self.encoder.infer(features, feature_lens, streams, chunk=chunk, final=True)
        return enc, lens

    def ctc_log_probs(self, enc: Tensor) -> Tensor:
        if self.ctc_head is None:
            raise ValueError("this transducer has no CTC head (trained with ctc_weight: 0)")
        if enc.size(1) == 0:
            return enc.new_zeros(enc.size(0), 0, self.ctc_head.session.get_outputs()[0].shape[-1])
        return _torch(self.ctc_head(enc)[0])


class OnnxTransducerASR(_OnnxRecognizer, TransducerASR):
    """:class:`~seqspeech.asr.transducer_asr.TransducerASR` over an ONNX export (offline and ``stream()``)."""


# ----------------------------------------------------------------------------------------------------------------
# Whisper


@dataclass
class OnnxDecoderState:
    """The Whisper decoder's KV cache for B hypotheses as numpy arrays (the contract of
    :class:`~seqspeech.asr.whisper.DecoderState`: ``offset``, ``batch_size``, ``index_select``).

    self_k / self_v: per layer ``(B, H, offset, Dh)``. cross_k / cross_v: per layer ``(A, H, S, Dh)``, one row per
    audio; ``rows (B,)``: the audio row each hypothesis reads. The per-hypothesis copy of the cross-attention cache
    that the graph takes is made once and kept while the hypotheses' audio rows stay the same (beam search reorders
    hypotheses within an audio's group).
    """

    self_k: list[np.ndarray]
    self_v: list[np.ndarray]
    cross_k: list[np.ndarray]
    cross_v: list[np.ndarray]
    rows: np.ndarray
    offset: int = 0
    _expanded: tuple[list[np.ndarray], list[np.ndarray]] | None = None

    @property
    def batch_size(self) -> int:
        return int(self.rows.shape[0])

    def index_select(self, batch_indices: Tensor | Sequence[int]) -> OnnxDecoderState:
        """Rows ``batch_indices`` (N,) of this state: reorder, drop or repeat hypotheses."""
        idx = _numpy(torch.as_tensor(batch_indices, dtype=torch.long)).astype(np.int64)
        if idx.ndim != 1:
            raise ValueError(f"batch_indices must be 1-D, got shape {tuple(idx.shape)}")
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= self.batch_size):
            raise IndexError(f"batch_indices out of range for a state of {self.batch_size} rows")
        rows = self.rows[idx]
        expanded = self._expanded if np.array_equal(rows, self.rows) else None
        return OnnxDecoderState([k[idx] for k in self.self_k], [v[idx] for v in self.self_v], self.cross_k,
                                self.cross_v, rows, self.offset, expanded)

    def repeat_interleave(self, n: int) -> OnnxDecoderState:
        """Each row repeated n times in place (one audio expanded to n beams)."""
        if n < 1:
            raise ValueError(f"repeat_interleave needs n >= 1, got {n}")
        return self.index_select(torch.arange(self.batch_size).repeat_interleave(n))

    def cross(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The cross-attention cache with one row per hypothesis."""
        if self._expanded is None:
            if np.array_equal(self.rows, np.arange(self.cross_k[0].shape[0])):
                self._expanded = (self.cross_k, self.cross_v)
            else:
                self._expanded = ([k[self.rows] for k in self.cross_k], [v[self.rows] for v in self.cross_v])
        return self._expanded


class OnnxTextDecoder:
    """:class:`~seqspeech.asr.whisper.TextDecoder`'s interface (``init_state``, ``decoder(tokens, state)``) over
    the ``cross_kv`` and ``decoder`` graphs."""

    def __init__(self, cross_graph: OnnxGraph, step_graph: OnnxGraph, dims: Any) -> None:
        self.cross_graph = cross_graph
        self.step_graph = step_graph
        self.n_ctx = dims.n_text_ctx
        self.n_layer = dims.n_text_layer
        self.n_head = dims.n_text_head
        self.head_dim = dims.n_text_state // dims.n_text_head

    def init_state(self, audio_features: Tensor) -> OnnxDecoderState:
        """Audio features ``(A, S, D)`` -> a state with the cross-attention cache and no tokens."""
        if audio_features.ndim != 3:
            raise ValueError(f"audio_features must be (A, S, D), got shape {tuple(audio_features.shape)}")
        caches = self.cross_graph(audio_features.float())
        n, rows = self.n_layer, audio_features.shape[0]
        empty = np.zeros((rows, self.n_head, 0, self.head_dim), np.float32)
        return OnnxDecoderState([empty] * n, [empty] * n, caches[:n], caches[n:], np.arange(rows))

    def __call__(self, tokens: Tensor, state: OnnxDecoderState) -> tuple[Tensor, OnnxDecoderState]:
        """``tokens (B, L)`` after the state's ``offset`` tokens -> logits ``(B, L, V)`` float32, a new state."""
        if tokens.ndim != 2:
            raise ValueError(f"tokens must be (B, L), got shape {tuple(tokens.shape)}")
        n_batch, n_new = tokens.shape
        if n_batch != state.batch_size:
            raise ValueError(f"tokens have {n_batch} rows but the decoder state has {state.batch_size}")
        if state.offset + n_new > self.n_ctx:
            raise ValueError(f"{state.offset + n_new} tokens exceed the decoder context of {self.n_ctx}")
        cross_k, cross_v = state.cross()
        logits, *caches = self.step_graph(tokens, *state.self_k, *state.self_v, *cross_k, *cross_v)
        n = self.n_layer
        new = OnnxDecoderState(caches[:n], caches[n:], state.cross_k, state.cross_v, state.rows,
                               state.offset + n_new, state._expanded)
        return _torch(logits), new


class OnnxWhisper:
    """What Whisper's decoding and transcription loops use of :class:`~seqspeech.asr.whisper.Whisper` (``dims``,
    ``device``, ``embed_audio``, ``decoder``) over the ``encoder``, ``cross_kv`` and ``decoder`` graphs."""

    def __init__(self, dims: Any, graphs: _Graphs) -> None:
        self.dims = dims
        self.device = CPU
        self.encoder_graph = graphs["encoder"]
        self.decoder = OnnxTextDecoder(graphs["cross_kv"], graphs["decoder"], dims)

    def parameters(self) -> Iterator[Tensor]:
        """One float32 tensor: the loops read the model's dtype from its first parameter."""
        yield torch.zeros(0)

    def embed_audio(self, mel: Tensor) -> Tensor:
        """mel ``(B, n_mels, T)``, ``0 < T <= 2 * n_audio_ctx`` -> audio features ``(B, ceil(T / 2), D)``."""
        n_mels, n_ctx = self.dims.n_mels, self.dims.n_audio_ctx
        if mel.ndim != 3 or mel.shape[1] != n_mels:
            raise ValueError(f"expected a mel spectrogram (B, {n_mels}, T), got shape {tuple(mel.shape)}")
        if not 0 < mel.shape[2] <= 2 * n_ctx:
            raise ValueError(f"mel has {mel.shape[2]} frames; the encoder takes 1 to {2 * n_ctx} frames")
        return _torch(self.encoder_graph(mel.float())[0])

    @property
    def is_multilingual(self) -> bool:
        from ..asr.whisper import N_VOCAB_MULTILINGUAL_MIN

        return self.dims.n_vocab >= N_VOCAB_MULTILINGUAL_MIN


class OnnxWhisperASR(WhisperASR):
    """:class:`~seqspeech.asr.whisper_asr.WhisperASR` over an ONNX export: ``transcribe`` / ``transcribe_batch``
    with every decoding option. Not word timestamps nor ``stream()``: they read the alignment heads'
    cross-attention weights, which the graphs do not output."""

    family = "whisper"
    runtime = "onnxruntime"

    def _no_attention(self, what: str) -> ConfigError:
        return ConfigError(f"{self.name}: {what} reads cross-attention weights that the ONNX graphs do not output; "
                           "use the PyTorch model (seqspeech.load_model)")

    def transcribe_batch(self, audios: Sequence[Any], **options: Any) -> list[Any]:
        if options.get("word_timestamps"):
            raise self._no_attention("word_timestamps")
        return super().transcribe_batch(audios, **options)

    def stream_engine(self, *args: Any, **options: Any) -> Any:
        raise self._no_attention("Whisper streaming")


# ----------------------------------------------------------------------------------------------------------------
# text to speech


class OnnxFastSpeech2:
    """:meth:`~seqspeech.tts.fastspeech2.FastSpeech2.infer` over the ``acoustic`` graph."""

    def __init__(self, graph: OnnxGraph, config: Any) -> None:
        self.graph = graph
        self.config = config

    def infer(self, tokens: Tensor, token_lens: Tensor | None = None, speed: float = 1.0, pitch_shift: float = 0.0,
              energy_scale: float = 1.0, max_frames: int | None = None) -> Any:
        from ..tts.fastspeech2 import FastSpeech2Output

        if tokens.dim() == 1:
            tokens = tokens.unsqueeze(0)
        if token_lens is None:
            token_lens = torch.full((tokens.size(0),), tokens.size(1), dtype=torch.long)
        for label, value, ok in (("speed", speed, lambda v: v > 0), ("pitch_shift", pitch_shift, lambda v: True),
                                 ("energy_scale", energy_scale, lambda v: v >= 0)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) \
                    or not ok(value):
                raise ConfigError(f"{label}: {value!r} is out of range (speed > 0, energy_scale >= 0, all finite)")
        controls = [np.full(tokens.size(0), value, np.float32) for value in (speed, pitch_shift, energy_scale)]
        mels, mel_lens, durations, pitch, energy = (_torch(a) for a in self.graph(tokens, token_lens, *controls))
        if max_frames is not None:
            mels, mel_lens = mels[..., :max_frames], mel_lens.clamp(max=max_frames)
        return FastSpeech2Output(mels=mels, mel_lens=mel_lens, durations=durations, pitch=pitch, energy=energy)


class OnnxVocoder:
    """The :class:`~seqspeech.tts.vocoders.Vocoder` protocol over the ``vocoder`` graph."""

    def __init__(self, graph: OnnxGraph, hop_length: int, n_mels: int) -> None:
        self.graph = graph
        self.hop_length = hop_length
        self.n_mels = n_mels

    def infer(self, mel: Tensor) -> Tensor:
        """Log-mel ``(B, n_mels, T)`` -> waveform ``(B, T * hop)``."""
        if mel.dim() != 3 or mel.shape[1] != self.n_mels:
            raise ConfigError(f"the vocoder expects a log-mel (B, {self.n_mels}, T), got {tuple(mel.shape)}")
        if mel.shape[-1] == 0:
            return mel.new_zeros(mel.shape[0], 0)
        return _torch(self.graph(mel.float())[0])


class OnnxSynthesizer(Synthesizer):
    """:class:`~seqspeech.tts.synthesizer.Synthesizer` over an ONNX export. ``synthesize_stream`` yields the audio a
    sentence at a time (the acoustic graph renders whole sentences)."""

    runtime = "onnxruntime"

    def __init__(self, acoustic: Any, vocoder: OnnxVocoder, *, name: str) -> None:
        # not Synthesizer.__init__: it moves torch modules to a device, and here there are none
        self.acoustic = acoustic
        self.device = CPU
        self.vocoder = vocoder
        self.vocoder_name = "hifigan"
        self.mel_config = acoustic.mel
        self.frontend = acoustic.frontend
        self.name = name

    def _mel_source(self, sentence: str, opts: Any) -> Any:
        """A whole sentence's mel as one chunk (the acoustic graph renders whole sentences): each step of a stream
        (:meth:`Synthesizer.step_streams`) vocodes one sentence."""
        from ..tts.synthesizer import MelChunks

        return MelChunks(iter([self.mel(sentence, opts)]))


# ----------------------------------------------------------------------------------------------------------------
# loading


def _load_recognizer(cls: type, folder: Path, manifest: dict[str, Any], graphs: _Graphs, name: str, lm: Any,
                     defaults: dict[str, Any]) -> Any:
    from ..asr.ctc import CTCConfig
    from ..asr.transducer import TransducerConfig
    from ..asr.windowed import lm_beside

    if manifest["family"] == "ctc":
        package = _package(folder, manifest, CTCConfig, lambda config: OnnxCTCModel(graphs["ctc"], config.blank))
    else:
        package = _package(folder, manifest, TransducerConfig, lambda config: OnnxTransducerModel(graphs, config))
    asr = cls(package, name=name, lm_path=lm_beside(package.path, lm), **{**package.decode, **defaults})
    asr._compute = _compute_type(manifest)
    return asr


def load_onnx_model(path: str | os.PathLike, *, name: str | None = None, threads: int | None = None,
                    providers: Sequence[str] | None = None, lm: str | os.PathLike | bool | None = True,
                    **defaults: Any) -> Any:
    """An export folder -> its recogniser or voice, with the PyTorch class's public API (see the module docstring).

    ``threads``: ONNX Runtime intra-op threads (default: its own, one per core); ``providers``: ONNX Runtime
    execution providers (default CPU); ``lm``: CTC / transducer LM (``True``: ``lm.arpa`` in the folder, a path, or
    False); ``defaults``: decoding defaults of CTC / transducer models (``beam_size``, ``lm_weight``, ...).

    Raises:
        ModelLoadError: not an export folder, a missing or corrupt file (one line naming it).
    """
    folder = Path(path)
    manifest = read_manifest(folder)
    graphs = _Graphs(folder, manifest, threads, providers)
    family = manifest["family"]
    label = name or manifest.get("name") or str(folder)
    if family in ("ctc", "transducer"):
        cls = OnnxCTCASR if family == "ctc" else OnnxTransducerASR
        return _load_recognizer(cls, folder, manifest, graphs, label, lm, defaults)
    if defaults:
        raise ConfigError(f"{folder}: decoding defaults ({', '.join(sorted(defaults))}) are for CTC and transducer "
                          "exports; pass Whisper options to transcribe()")
    if family == "whisper":
        from ..asr.whisper import WhisperDims
        from ..text.tokenizers.whisper import WhisperTokenizer

        dims = WhisperDims.from_dict(manifest["dims"])
        tokenizer_json = manifest.get("tokenizer_json")
        tokenizer = WhisperTokenizer.for_vocab(dims.n_vocab,
                                               tokenizer_json=folder / tokenizer_json if tokenizer_json else None)
        for graph in ("encoder", "cross_kv", "decoder"):
            graphs[graph]  # load now: a broken file fails here, not in the first transcription
        return OnnxWhisperASR(OnnxWhisper(dims, graphs), tokenizer, name=label, compute_type=_compute_type(manifest))
    return _load_synthesizer(folder, manifest, graphs, label)


def _load_synthesizer(folder: Path, manifest: dict[str, Any], graphs: _Graphs, name: str) -> OnnxSynthesizer:
    from ..text.frontend import TTSFrontend
    from ..tts.fastspeech2 import FastSpeech2Config
    from ..tts.mel import MelConfig
    from ..tts.package import TTSPackage
    from ..tts.vocoders.hifigan import HiFiGANConfig

    where = folder / "manifest.json"
    try:
        acoustic, vocoder = manifest["acoustic"], manifest["vocoder"]
        config = FastSpeech2Config.from_dict(acoustic["config"])
        mel = MelConfig(**acoustic["mel"])
        frontend = TTSFrontend.from_dict(acoustic["frontend"])
        vocoder_config = HiFiGANConfig.from_dict(vocoder["config"])
    except (KeyError, TypeError, ConfigError) as e:
        raise ModelLoadError(f"{where}: corrupt tts metadata: {e}") from None
    package = TTSPackage("fastspeech2", OnnxFastSpeech2(graphs["acoustic"], config), config, mel, frontend, where)
    return OnnxSynthesizer(package, OnnxVocoder(graphs["vocoder"], vocoder_config.hop_length, vocoder_config.n_mels),
                           name=name)
