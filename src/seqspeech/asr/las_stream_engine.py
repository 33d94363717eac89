"""Monotonic / MoChA LAS as a :class:`~seqspeech.asr.streaming.StreamEngine`: audio chunks -> fbank frames
(computed incrementally, equal to the whole utterance's) -> :class:`~seqspeech.asr.las_streaming.LASStreamer`.

Each stream's state holds its own ``LASStreamer`` (a thin object over the shared model that keeps one utterance's
decoder state), so the engine itself holds none. LAS decodes one stream at a time (a batch of one per
``LASStreamer``); ``decode`` loops over the streams of a batch.

Token times: a token's hard attention selected memory frame j of the utterance; memory frame j reads the fbank
frames ``< 2**levels * (j + 1)``, and its time is the end of the last of them. ``last_speech`` is the newest
token's time (LAS has no blank frames to tell silence from speech), so the recogniser's endpointing ends an
utterance ``rule2`` seconds after its last token, which is also when LAS, after its end token, stops emitting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from .las import DEFAULT_MAX_LEN_RATIO, LASModel
from .las_streaming import LASStreamer
from .streaming import SAMPLE_RATE, FrontendState, Hypothesis, IncrementalFrontend

__all__ = ["LASStreamEngine", "LASStreamState"]


@dataclass
class LASStreamState:
    """One stream: its front-end position, the open utterance's ``streamer``, where the utterance began (fbank
    frame ``first_frame``), the samples decoded and the open utterance's token ``times``."""

    frontend: FrontendState
    streamer: LASStreamer
    first_frame: int = 0
    samples: int = 0
    times: list[float] = field(default_factory=list)


class LASStreamEngine:
    """Streaming recognition with a LAS model that has a unidirectional listener and monotonic or MoChA attention.

    Args:
        model: the :class:`LASModel` (eval mode).
        frontend: its fbank front end (``(T,)`` samples -> ``(frames, F)``).
        tokenizer: ``decode(ids) -> str``.
        chunk_samples: samples per decoding step.
        lookahead: memory frames after the attended one that must have arrived before a token is emitted.
        max_len_ratio: the length cap of greedy decoding (tokens per memory frame).

    Raises:
        ValueError: the model cannot stream (:class:`LASStreamer` says why).
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, model: LASModel, frontend: Any, tokenizer: Any, *, chunk_samples: int, lookahead: int = 0,
                 max_len_ratio: float = DEFAULT_MAX_LEN_RATIO) -> None:
        LASStreamer(model, lookahead=lookahead, max_len_ratio=max_len_ratio)  # validates model and options
        self.model = model
        self.features = IncrementalFrontend(frontend)
        self.tokenizer = tokenizer
        self.chunk_samples = int(chunk_samples)
        self.lookahead = lookahead
        self.max_len_ratio = max_len_ratio
        self.reduction = int(model.listener.reduction)  # fbank frames per memory frame: 2 ** pyramid levels

    def new_state(self) -> LASStreamState:
        return LASStreamState(frontend=self.features.new_state(), streamer=self._streamer())

    def _streamer(self) -> LASStreamer:
        return LASStreamer(self.model, lookahead=self.lookahead, max_len_ratio=self.max_len_ratio)

    @torch.inference_mode()
    def decode(self, states: Sequence[LASStreamState], chunks: Sequence[np.ndarray], final: Sequence[bool]
               ) -> list[Hypothesis]:
        device = next(self.model.parameters()).device
        out = []
        for state, chunk, last in zip(states, chunks, final):
            state.samples += len(chunk)
            features = self.features(state.frontend, np.asarray(chunk, np.float32), device)
            streamer = state.streamer
            if not streamer.state.finished:
                streamer.push(features)
                if last:
                    streamer.finish()
            out.append(self._hypothesis(state))
        return out

    @torch.inference_mode()
    def end_utterance(self, state: LASStreamState) -> Hypothesis:
        if not state.streamer.state.finished:
            state.streamer.finish()  # flush the listener, decode to the end token or the length cap
        hypothesis = self._hypothesis(state)
        state.streamer = self._streamer()
        state.first_frame = state.frontend.frames
        state.times = []
        return hypothesis

    def text(self, tokens: Sequence[int]) -> str:
        return self.tokenizer.decode(list(tokens))

    def _hypothesis(self, state: LASStreamState) -> Hypothesis:
        emissions = state.streamer.state.emissions
        shift, length = self.features.frame_shift, self.features.frame_length
        for e in emissions[len(state.times):]:
            if e.frame >= 0:  # the end of the last fbank frame the selected memory frame reads
                last = state.first_frame + self.reduction * (e.frame + 1) - 1
                state.times.append((last * shift + length) / SAMPLE_RATE)
            else:  # decided at the end of the stream without a selected frame
                state.times.append(state.samples / SAMPLE_RATE)
        tokens = [e.token for e in emissions]
        return Hypothesis(tokens=tokens, stable=len(tokens), times=list(state.times),
                          last_speech=state.times[-1] if state.times else None)

