"""`TransducerASR`: a trained transducer, its tokenizer and front end behind `transcribe()` and `stream()`.

Offline, long audio is decoded in windows (:class:`~seqspeech.asr.windowed.WindowedASR`) by the transducer
searches of :mod:`seqspeech.decoding.transducer`, optionally fused with the n-gram LM beside the weights.

Streaming (:meth:`TransducerASR.stream`) runs :class:`ChunkedStreamEngine`: incremental fbank -> the causal
Conformer's :meth:`~seqspeech.nn.conformer.ConformerEncoder.infer` (key/value and convolution caches) -> a
frame-synchronous head, either the transducer search (``head="transducer"``) or the auxiliary CTC head
(``head="ctc"``: chunked CTC; greedy partials, prefix beam search + LM for each final). Both give, token for token,
what the same model gives offline at the same chunk size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..audio.features import KALDI_FRAME_SHIFT_MS
from ..data.dataset import build_frontend
from ..decoding.ctc import TokenWordMap, ctc_prefix_beam_search
from ..decoding.transducer import TransducerSearch, TransducerSearchOptions
from ..errors import ConfigError
from .package import ModelPackage, load_package
from .streaming import SAMPLE_RATE, FrontendState, Hypothesis, IncrementalFrontend, StreamingRecognizer
from .transcribe import Segment
from .windowed import WindowedASR, lm_beside

DECODE_KEYS = ("method", "beam_size", "lm_weight", "word_bonus", "chunk")
WINDOW_S = 20.0
HEADS = ("transducer", "ctc")


def load_transducer(path: str | os.PathLike, device: str | torch.device | None = None) -> ModelPackage:
    """A transducer from our safetensors file, a folder holding one, or a trainer checkpoint."""
    package = load_package(path, device, family="transducer")
    return replace(package, decode={k: package.decode[k] for k in DECODE_KEYS if k in package.decode})


class TransducerASR(WindowedASR):
    """Speech recognition with a transducer: greedy, modified beam or time-synchronous beam search, optionally
    with n-gram LM shallow fusion; ``chunk`` (encoder frames, 0 = full context) is the attention chunk of a
    streaming (causal) encoder.
    """

    family = "transducer"
    window_s = WINDOW_S
    decode_options = frozenset({"method", "beam_size", "use_lm", "lm_weight", "word_bonus", "chunk"})

    def __init__(self, package: ModelPackage, *, name: str = "transducer", lm_path: str | os.PathLike | None = None,
                 method: str = "modified_beam", beam_size: int = 4, lm_weight: float = 0.3,
                 word_bonus: float = 0.5, chunk: int | None = None) -> None:
        self.package = package
        self.model = package.model
        self.tokenizer = package.tokenizer
        self.name = name
        self.frontend = build_frontend(package.features).to(self.device)
        self.frontend.eval()
        self.lm_path = Path(lm_path) if lm_path else None
        self._lm = None
        self.method, self.beam_size, self.lm_weight, self.word_bonus = method, beam_size, lm_weight, word_bonus
        encoder = self.model.encoder
        self.chunk = getattr(encoder, "decode_chunk", 0) if chunk is None else chunk
        self.word_map = TokenWordMap.from_tokenizer(self.tokenizer)
        self.frame_seconds = KALDI_FRAME_SHIFT_MS / 1000.0 * package.config.encoder.subsampling_factor
        self._stream_engines: dict[tuple, ChunkedStreamEngine] = {}  # shared: streams of one engine batch

    @classmethod
    def from_path(cls, path: str | os.PathLike, *, name: str | None = None, device: str | None = None,
                  lm: str | os.PathLike | bool | None = True, **defaults: Any) -> TransducerASR:
        package = load_transducer(path, device)
        defaults = {**package.decode, **defaults}
        return cls(package, name=name or str(path), lm_path=lm_beside(package.path, lm), **defaults)

    def search(self, *, method: str | None = None, beam_size: int | None = None, use_lm: bool = True,
               lm_weight: float | None = None, word_bonus: float | None = None) -> TransducerSearch:
        """The search strategy for these settings (defaults: the model's stored ones)."""
        lm = self.lm() if use_lm else None
        method = self.method if method is None else method
        options = TransducerSearchOptions(
            method=method, beam_size=self.beam_size if beam_size is None else beam_size,
            lm_weight=(self.lm_weight if lm_weight is None else lm_weight) if lm is not None else 0.0,
            word_bonus=(self.word_bonus if word_bonus is None else word_bonus) if lm is not None else 0.0,
        )
        return TransducerSearch(self.model.predictor, self.model.joiner, options, lm=lm if method != "greedy" else None,
                                word_map=self.word_map)

    # -- offline ----------------------------------------------------------------------------------------------

    @torch.inference_mode()
    def encode(self, waves: Sequence[np.ndarray], chunk: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """16 kHz waveforms -> encoder frames ``(B, T', De)`` and lengths, at ``chunk`` (default: the model's)."""
        return self.model.encode(*self.features(waves), chunk=self.chunk if chunk is None else chunk)

    def evaluation_modes(self, beam_size: int) -> dict[str, dict[str, Any]]:
        """Transducer searches (``beam``: the model's beam method, time-synchronous ``beam`` when its default is
        greedy), and (``ctc_*``) the auxiliary CTC head of the same encoder."""
        method = self.method if self.method != "greedy" else "beam"
        return {
            "greedy": dict(method="greedy", use_lm=False),
            "beam": dict(method=method, beam_size=beam_size, use_lm=False),
            "beam_lm": dict(method=method, beam_size=beam_size, use_lm=True),
            "ctc_greedy": dict(head="ctc", beam_size=1, use_lm=False),
            "ctc_beam_lm": dict(head="ctc", beam_size=beam_size, use_lm=True),
        }

    @torch.inference_mode()
    def decode(self, enc: torch.Tensor, lens: torch.Tensor, *, head: str = "transducer",
               **options: Any) -> list[list[int]]:
        """Token ids for each row of a batch of encoder frames (``head="ctc"``: the CTC head's prefix beam
        search, with the LM unless ``use_lm=False``)."""
        options.pop("chunk", None)
        if head == "ctc":
            return self._ctc_decode(self.model.ctc_log_probs(enc), lens, **options)
        hyps = self.search(**options).decode(self.model.joiner.project_encoder(enc), lens)
        return [list(h.tokens) for h in hyps]

    def _ctc_decode(self, log_probs: torch.Tensor, lens: torch.Tensor, *, beam_size: int = 1,
                    use_lm: bool = True) -> list[list[int]]:
        lm = self.lm() if use_lm else None
        if beam_size <= 1 and lm is None:
            return [ctc_tokens_and_frames([log_probs[b, : int(lens[b])]], self.model.blank)[0]
                    for b in range(log_probs.size(0))]
        nbest = ctc_prefix_beam_search(log_probs.cpu(), lens.cpu(), beam_size=max(beam_size, 1), lm=lm,
                                       word_map=self.word_map, lm_weight=self.lm_weight,
                                       word_bonus=self.word_bonus if lm is not None else 0.0)
        return [hyps[0].tokens if hyps else [] for hyps in nbest]

    def decode_windows(self, pieces: list[np.ndarray], **options: Any) -> list[Segment]:
        enc, lens = self.encode(pieces, chunk=options.pop("chunk", None))
        with torch.inference_mode():
            hyps = self.search(**options).decode(self.model.joiner.project_encoder(enc), lens)
        segments = []
        for hyp, n in zip(hyps, lens.tolist()):
            frames = list(hyp.frames)
            start = frames[0] * self.frame_seconds if frames else 0.0
            end = (frames[-1] + 1) * self.frame_seconds if frames else n * self.frame_seconds
            segments.append(Segment(start=round(start, 3), end=round(end, 3), text=self.tokenizer.decode(hyp.tokens),
                                    tokens=list(hyp.tokens), avg_logprob=float(hyp.score) / max(len(hyp.tokens), 1),
                                    no_speech_prob=0.0, compression_ratio=0.0, temperature=0.0))
        return segments

    # -- streaming --------------------------------------------------------------------------------------------

    def stream(self, chunk_ms: float | None = None, *, head: str = "transducer", endpoint: Any = None,
               **options: Any) -> StreamingRecognizer:
        """A new stream (:class:`~seqspeech.asr.streaming.StreamingRecognizer`); ``chunk_ms`` (a multiple of the
        encoder frame, 40 ms) defaults to the model's decoding chunk; ``head``: ``"transducer"`` or ``"ctc"``;
        ``options``: search settings (``method``, ``beam_size``, ``use_lm``, ...)."""
        engine = self.stream_engine(chunk_ms, head=head, **options)
        return StreamingRecognizer(engine) if endpoint is None else StreamingRecognizer(engine, endpoint=endpoint)

    def stream_engine(self, chunk_ms: float | None = None, *, head: str = "transducer",
                      **options: Any) -> ChunkedStreamEngine:
        """The shared engine many streams decode through (``decode_streams``), made once per setting."""
        key = (chunk_frames(self, chunk_ms), head, tuple(sorted(options.items())))
        if key not in self._stream_engines:
            self._stream_engines[key] = ChunkedStreamEngine(self, key[0], head=head, **options)
        return self._stream_engines[key]


def chunk_frames(asr: Any, chunk_ms: float | None) -> int:
    """``chunk_ms`` -> encoder frames (the model's decoding chunk when None); a one-line error when it is not a
    positive multiple of the encoder frame or the encoder cannot stream."""
    encoder = asr.model.encoder
    if not getattr(encoder, "causal", False):
        raise ConfigError(f"{asr.name}: its encoder sees whole utterances (not trained causal): it cannot stream; "
                          "streaming models: rnnt-synth-en, whisper-tiny.en")
    frame_ms = asr.frame_seconds * 1000.0
    if chunk_ms is None:
        return int(encoder.decode_chunk) or 8
    frames = chunk_ms / frame_ms
    if not np.isfinite(frames) or frames < 1 or abs(frames - round(frames)) > 1e-6:
        raise ConfigError(f"--chunk-ms {chunk_ms:g}: must be a positive multiple of this model's {frame_ms:g} ms "
                          f"encoder frame (e.g. 160, 320, 640)")
    return int(round(frames))


@dataclass
class ChunkedStreamState:
    """One stream: the front end's position, the encoder's stream state, the head's search state for the open
    utterance, where that utterance started (encoder frames), and (CTC head) its log-probs so far."""

    frontend: FrontendState
    encoder: Any
    search: Any
    frames: int = 0
    utterance_start: int = 0
    log_probs: list[torch.Tensor] = field(default_factory=list)


class ChunkedStreamEngine:
    """A :class:`~seqspeech.asr.streaming.StreamEngine` for a causal-Conformer model (transducer or CTC head).

    ``chunk_samples`` is the chunk of encoder frames in samples; all streams of one :meth:`decode` call share one
    batched encoder pass per chunk and, for the transducer, one batched search step.
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, asr: TransducerASR, chunk: int, *, head: str = "transducer", **options: Any) -> None:
        if head not in HEADS:
            raise ConfigError(f"head must be one of {HEADS}, got {head!r}")
        if head == "ctc" and getattr(asr.model, "ctc_head", None) is None:
            raise ConfigError(f"{asr.name}: has no CTC head (trained with ctc_weight: 0): stream with the transducer")
        self.asr = asr
        self.chunk = chunk
        self.head = head
        self.options = options
        subsampling = asr.model.encoder.subsampling.factor
        self.chunk_samples = chunk * subsampling * asr.frontend.fbank.frame_shift
        unknown = set(options) - (TransducerASR.decode_options - {"chunk"})
        if unknown:
            raise ConfigError(f"unknown streaming option(s) {', '.join(sorted(unknown))}")
        self._search = asr.search(**options) if head == "transducer" else None
        self.beam_size = options.get("beam_size", asr.beam_size)
        self.use_lm = options.get("use_lm", True)
        self.features = IncrementalFrontend(asr.frontend)

    def new_state(self) -> ChunkedStreamState:
        return ChunkedStreamState(frontend=self.features.new_state(), encoder=self.asr.model.encoder.init_stream(),
                                  search=self._search.init_state() if self._search else None)

    def text(self, tokens: Sequence[int]) -> str:
        return self.asr.tokenizer.decode(list(tokens))

    @torch.inference_mode()
    def decode(self, states: Sequence[ChunkedStreamState], chunks: Sequence[np.ndarray],
               final: Sequence[bool]) -> list[Hypothesis]:
        model, device = self.asr.model, self.asr.device
        feats = [self.features(state.frontend, np.asarray(chunk, np.float32), device)
                 for state, chunk in zip(states, chunks)]
        lens = torch.tensor([f.size(0) for f in feats], device=device)
        x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True) if feats else None
        x = model.normalize(x) if x is not None else x
        results: list[Hypothesis] = [Hypothesis() for _ in states]
        # final streams flush their last partial chunk; the others keep it for later
        for flag in (False, True):
            group = [i for i, f in enumerate(final) if bool(f) == flag]
            if not group:
                continue
            enc, enc_lens, enc_states = model.encoder.infer(
                x[group], lens[group], [states[i].encoder for i in group], chunk=self.chunk, final=flag)
            for j, i in enumerate(group):
                states[i].encoder = enc_states[j]
            self._advance([states[i] for i in group], enc, enc_lens)
        for i, state in enumerate(states):
            results[i] = self._hypothesis(state)
        return results

    def _advance(self, states: list[ChunkedStreamState], enc: torch.Tensor, lens: torch.Tensor) -> None:
        model = self.asr.model
        if self.head == "transducer":
            self._search.advance(model.joiner.project_encoder(enc), lens, [s.search for s in states])
        else:
            log_probs = model.ctc_log_probs(enc)
            for j, state in enumerate(states):
                state.log_probs.append(log_probs[j, : int(lens[j])].cpu())
        for j, state in enumerate(states):
            state.frames += int(lens[j])

    def _hypothesis(self, state: ChunkedStreamState, hyp: Any = None) -> Hypothesis:
        seconds = self.asr.frame_seconds
        if self.head == "transducer":
            hyp = self._search.best(state.search) if hyp is None else hyp
            tokens, frames = list(hyp.tokens), list(hyp.frames)
        else:
            tokens, frames = ctc_tokens_and_frames(state.log_probs, self.asr.model.blank) if hyp is None else hyp
            frames = [state.utterance_start + f for f in frames]
        return Hypothesis(tokens=tokens, stable=0, times=[(f + 1) * seconds for f in frames],
                          last_speech=(frames[-1] + 1) * seconds if frames else None)

    @torch.inference_mode()
    def end_utterance(self, state: ChunkedStreamState) -> Hypothesis:
        if self.head == "transducer":
            final = self._hypothesis(state, self._search.finish(state.search))
            state.search = self._search.init_state(start_frame=state.frames)
        else:
            final = self._hypothesis(state, self._ctc_final(state))
            state.log_probs = []
        state.utterance_start = state.frames
        return final

    def _ctc_final(self, state: ChunkedStreamState) -> tuple[list[int], list[int]]:
        """The utterance's CTC prefix beam search (+ LM) result, with greedy frames as times."""
        tokens, frames = ctc_tokens_and_frames(state.log_probs, self.asr.model.blank)
        if not state.log_probs:
            return tokens, frames
        lp = torch.cat(state.log_probs)[None]
        best = self.asr._ctc_decode(lp, torch.tensor([lp.size(1)]), beam_size=self.beam_size, use_lm=self.use_lm)[0]
        if best == tokens:
            return tokens, frames
        last = frames[-1] if frames else lp.size(1) - 1
        return best, [min(f, last) for f in (frames + [last] * len(best))[: len(best)]]


def ctc_tokens_and_frames(log_probs: list[torch.Tensor], blank: int = 0) -> tuple[list[int], list[int]]:
    """Greedy CTC over the utterance's log-prob pieces: tokens and the frame each was emitted at."""
    if not log_probs:
        return [], []
    best = torch.cat(log_probs).argmax(-1).tolist()
    tokens, frames, prev = [], [], blank
    for t, k in enumerate(best):
        if k != blank and k != prev:
            tokens.append(k)
            frames.append(t)
        prev = k
    return tokens, frames
