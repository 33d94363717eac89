"""`AttentionASR`: a trained attention model (LAS or hybrid CTC/attention AED) behind one `transcribe()` call.

The model travels as one safetensors file (:mod:`seqspeech.asr.package`, family ``"las"`` or ``"aed"``) with the
decoding options its recipe tuned (:class:`~seqspeech.decoding.attention.AttentionDecodeOptions`); an ARPA LM
beside it (``lm.arpa``) is used for shallow fusion when ``lm_weight`` is not 0. Long audio is decoded in windows
of ``window_s`` seconds (attention decoders trained on short utterances fail on long ones).

Diagnostics: :meth:`AttentionASR.alignment` returns the teacher-forced attention of a transcript (the model's own
by default) with its :class:`~seqspeech.metrics.attention.AlignmentMetrics`; ``seqspeech plot-attention`` draws it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..audio.constants import SAMPLE_RATE
from ..audio.features import KALDI_FRAME_SHIFT_MS
from ..data.dataset import build_frontend
from ..decoding.attention import AttentionDecodeOptions, attention_decode
from ..errors import ConfigError, DataError, ModelLoadError
from ..metrics.attention import AlignmentMetrics, alignment_metrics
from .package import ModelPackage, load_package
from .transcribe import Segment
from .windowed import AudioInput, WindowedASR, lm_beside, load_wave_to_align

ATTENTION_FAMILIES = ("las", "aed")
OPTION_NAMES = frozenset(AttentionDecodeOptions.__dataclass_fields__)


@dataclass
class Alignment:
    """Teacher-forced attention of one utterance: ``weights (U+1, T')`` (rows: tokens then the end token)."""

    weights: np.ndarray
    tokens: list[int]
    labels: list[str]
    frame_seconds: float
    metrics: AlignmentMetrics
    text: str


class AttentionASR(WindowedASR):
    """Speech recognition with an attention model: greedy or beam search with the recipe's remedies.

    Args:
        package: the loaded model (:func:`seqspeech.asr.package.load_package`).
        name: shown in logs and results.
        lm_path: an ARPA file for shallow fusion (used when ``lm_weight != 0``).
        window_s: window length for long audio.
        options: decoding defaults (keys of :class:`AttentionDecodeOptions`); the model's stored defaults first.
    """

    decode_options = OPTION_NAMES | {"use_lm"}

    def __init__(
        self,
        package: ModelPackage,
        *,
        name: str = "attention",
        lm_path: str | os.PathLike | None = None,
        window_s: float = 12.0,
        **options: Any,
    ) -> None:
        if package.family not in ATTENTION_FAMILIES:
            raise ModelLoadError(f"{package.path}: a {package.family!r} model is not an attention model")
        self.package = package
        self.family = package.family
        self.model = package.model
        self.tokenizer = package.tokenizer
        self.name = name
        self.window_s = window_s
        self.frontend = build_frontend(package.features).to(self.device)
        self.frontend.eval()
        self.lm_path = Path(lm_path) if lm_path else None
        self._lm: Any = None
        stored = {k: v for k, v in package.decode.items() if k in OPTION_NAMES}
        self.options = AttentionDecodeOptions.from_dict({**stored, **options}, f"{name}: decoding options")
        self.frame_seconds = KALDI_FRAME_SHIFT_MS / 1000.0 * _time_reduction(package.config)
        self._stream_engines: dict[tuple, Any] = {}  # shared engines (stateless): streams of one engine batch

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike,
        *,
        name: str | None = None,
        device: str | None = None,
        lm: str | os.PathLike | bool | None = True,
        **options: Any,
    ) -> AttentionASR:
        """Load from a file or folder; ``lm=True`` uses ``lm.arpa`` beside the weights when there is one."""
        package = load_package(path, device)
        return cls(package, name=name or str(path), lm_path=lm_beside(package.path, lm), **options)

    def lm(self) -> Any:
        """The token-level LM scorer (loaded on first use), or None."""
        if self._lm is None and self.lm_path is not None:
            from ..decoding.ctc import TokenWordMap
            from ..decoding.lm import NGramTokenScorer, WordLMScorer

            word_lm = WordLMScorer.from_arpa(self.lm_path)
            self._lm = NGramTokenScorer(word_lm, TokenWordMap.from_tokenizer(self.tokenizer), eos=2)
        return self._lm

    # -- inference ----------------------------------------------------------------------------------------

    @torch.inference_mode()
    def encode(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """16 kHz waveforms -> encoder output (B, T', D) and its lengths (B,)."""
        return self.model.encode(*self.features(waves))

    def evaluation_modes(self, beam_size: int) -> dict[str, dict[str, Any]]:
        """Greedy (attention only), beam search with the stored remedies and CTC weight, and beam with the LM."""
        return {
            "greedy": dict(beam_size=1, ctc_weight=0.0, use_lm=False, coverage_weight=0.0, eos_threshold=None),
            "beam": dict(beam_size=beam_size, use_lm=False),
            "beam_lm": dict(beam_size=beam_size, use_lm=True),
        }

    def resolve_options(self, use_lm: bool = True, **overrides: Any) -> AttentionDecodeOptions:
        options = replace(self.options, **overrides) if overrides else self.options
        if not use_lm and options.lm_weight != 0:
            options = replace(options, lm_weight=0.0)
        if options.lm_weight != 0 and self.lm() is None:
            options = replace(options, lm_weight=0.0)  # no LM beside the model: decode without one
        return options

    @torch.inference_mode()
    def decode(self, memory: torch.Tensor, lens: torch.Tensor, *, use_lm: bool = True, **overrides: Any
               ) -> list[list[int]]:
        """Best token ids for each row of an encoded batch."""
        options = self.resolve_options(use_lm, **overrides)
        nbest = attention_decode(self.model, memory, lens, options, lm=self.lm() if options.lm_weight else None)
        return [hyps[0].tokens if hyps else [] for hyps in nbest]

    def decode_windows(self, pieces: list[np.ndarray], **options: Any) -> list[Segment]:
        memory, lens = self.encode(pieces)
        tokens = self.decode(memory, lens, **options)
        return [
            Segment(start=0.0, end=round(len(p) / SAMPLE_RATE, 3), text=self.tokenizer.decode(t), tokens=list(t),
                    avg_logprob=0.0, no_speech_prob=0.0, compression_ratio=0.0, temperature=0.0)
            for p, t in zip(pieces, tokens)
        ]

    @torch.inference_mode()
    def alignments(
        self, memory_inputs: tuple[torch.Tensor, torch.Tensor], tokens: Sequence[Sequence[int]]
    ) -> list[np.ndarray]:
        """Teacher-forced attention ``(U_b + 1, T'_b)`` per utterance for ``tokens`` (features, lens as input)."""
        feats, feat_lens = memory_inputs
        token_lens = torch.tensor([len(t) for t in tokens], device=self.device)
        padded = torch.full((len(tokens), max(int(token_lens.max()), 1)), -1, dtype=torch.long, device=self.device)
        for i, t in enumerate(tokens):
            if t:
                padded[i, : len(t)] = torch.tensor(list(t), device=self.device)
        weights, memory_lens = self.model.attention_weights(feats, feat_lens, padded, token_lens)
        return [
            weights[i, : len(t) + 1, : int(memory_lens[i])].float().cpu().numpy() for i, t in enumerate(tokens)
        ]

    # -- streaming ----------------------------------------------------------------------------------------

    def stream_engine(self, chunk_ms: float = 320, *, lookahead: int = 0, max_len_ratio: float | None = None
                      ) -> Any:
        """The shared :class:`~seqspeech.asr.las_stream_engine.LASStreamEngine` for these options (made once).

        Raises:
            ConfigError: (one line) the model cannot stream — an AED, or a LAS whose listener is bidirectional or
                whose attention is not monotonic — or an option is out of range.
        """
        from .las_stream_engine import LASStreamEngine
        from .streaming import chunk_samples_from_ms

        chunk_samples = chunk_samples_from_ms(chunk_ms)
        self._check_can_stream()
        ratio = self.options.max_length_ratio if max_len_ratio is None else max_len_ratio
        if isinstance(lookahead, bool) or not isinstance(lookahead, int) or lookahead < 0:
            raise ConfigError(f"{self.name}: lookahead must be an int >= 0 (memory frames), got {lookahead!r}")
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
            raise ConfigError(f"{self.name}: max_len_ratio must be a number > 0, got {ratio!r}")
        key = (chunk_samples, lookahead, ratio)
        if key not in self._stream_engines:
            try:
                engine = LASStreamEngine(self.model.eval(), self.frontend, self.tokenizer,
                                         chunk_samples=chunk_samples, lookahead=lookahead, max_len_ratio=ratio)
            except (ValueError, TypeError) as e:  # lookahead or max_len_ratio out of range
                raise ConfigError(f"{self.name}: {e}") from None
            self._stream_engines[key] = engine
        return self._stream_engines[key]

    def stream(self, chunk_ms: float = 320, *, endpoint: Any = None, lookahead: int = 0,
               max_len_ratio: float | None = None) -> Any:
        """A new :class:`~seqspeech.asr.streaming.StreamingRecognizer` decoding ``chunk_ms`` of audio per step
        (streams made with the same options share one engine, so :func:`~seqspeech.asr.streaming.decode_streams`
        batches them).

        Args:
            chunk_ms: milliseconds of audio per decoding step (10 ... 30000).
            endpoint: an :class:`~seqspeech.asr.streaming.EndpointConfig` (default: sherpa-onnx's rules).
            lookahead: memory frames after the attended one to wait for before emitting a token (>= 0).
            max_len_ratio: greedy decoding's length cap (default: the model's ``max_length_ratio``).

        Raises:
            ConfigError: the model cannot stream (only LAS with a unidirectional listener and monotonic or MoChA
                attention can), or a bad option.
        """
        from .streaming import EndpointConfig, StreamingRecognizer

        engine = self.stream_engine(chunk_ms, lookahead=lookahead, max_len_ratio=max_len_ratio)
        return StreamingRecognizer(engine, endpoint=EndpointConfig() if endpoint is None else endpoint)

    def _check_can_stream(self) -> None:
        from ..nn.attention import MoChA, MonotonicAttention

        how = ("streaming models: LAS with a unidirectional listener and monotonic or MoChA attention "
               "(recipes/synth_en/las_mocha.yaml, las_monotonic.yaml)")
        if self.family != "las":
            raise ConfigError(f"{self.name}: an {self.family.upper()} model cannot stream: its decoder attends to the "
                              f"whole utterance's encoding at every step; {how}")
        if getattr(self.model.listener, "bidirectional", False):
            raise ConfigError(f"{self.name}: this LAS model cannot stream: its listener is bidirectional (it reads "
                              f"each utterance backwards from its end); {how}")
        if not isinstance(self.model.attention, (MonotonicAttention, MoChA)):
            kind = getattr(self.package.config, "attention", type(self.model.attention).__name__)
            raise ConfigError(f"{self.name}: this LAS model cannot stream: its {kind} attention looks at the whole "
                              f"utterance at every step; {how}")

    def alignment(self, audio: AudioInput, text: str | None = None, **options: Any) -> Alignment:
        """The attention of ``text`` (default: the model's own transcript) over ``audio``, with its metrics."""
        if text is not None and not text.strip():
            raise DataError("the transcript to align is empty: give the words spoken, or none for the model's own")
        wave = load_wave_to_align(audio)
        feats, lens = self.features([wave])
        if text is None:
            memory, memory_lens = self.encode([wave])
            tokens = self.decode(memory, memory_lens, **options)[0]
        else:
            tokens = self.tokenizer.encode(text)
        weights = self.alignments((feats, lens), [tokens])[0]
        labels = [self.tokenizer.decode([t]) or "\u2423" for t in tokens] + ["</s>"]
        labels = [lab if lab.strip() else "\u2423" for lab in labels]
        return Alignment(weights=weights, tokens=list(tokens), labels=labels, frame_seconds=self.frame_seconds,
                         metrics=alignment_metrics(weights), text=self.tokenizer.decode(tokens))


def _time_reduction(config: Any) -> int:
    """Encoder frames per output frame: the Conformer's subsampling (AED) or 2 ** pyramid levels (LAS)."""
    encoder = getattr(config, "encoder", None)
    if encoder is not None and hasattr(encoder, "subsampling_factor"):
        return int(encoder.subsampling_factor)
    return 2 ** int(config.pyramid_levels)
