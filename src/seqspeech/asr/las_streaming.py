"""Streaming LAS recognition with hard monotonic attention (monotonic or MoChA) over a causal pyramidal listener.

:class:`LASStreamer` receives feature chunks and emits tokens as soon as they are decided::

    streamer = LASStreamer(model.eval(), lookahead=2)
    for chunk in chunks:                 # (n, F) feature frames each
        new_tokens = streamer.push(chunk)
    new_tokens = streamer.finish()       # the rest; streamer.emissions records when each token came out

Why this is exact: the listener is unidirectional, so memory frame j depends on input frames ``< 2**levels * (j+1)``
only (:meth:`~seqspeech.asr.las.PyramidalLSTMListener.infer` carries the LSTM states and buffers a pyramid level's
odd frame). A hard monotonic step scans from the previously attended frame and stops at the first frame where the
probability of having stopped reaches 0.5: the decision to stop at frame j reads frames ``<= j`` only, and MoChA's chunk only looks back
from j. So a step is final once a stop frame j is found among the frames available, and the streamer additionally
waits until ``j + lookahead`` frames exist. The length cap ``max(1, ceil(max_len_ratio * T'))`` only grows with T', so a
token beyond the current cap waits for more frames. The result equals offline :meth:`LASModel.greedy` in eval (hard)
mode with the same ``max_len_ratio``, token for token (up to float rounding of the incremental LSTMs).

Shapes: n new feature frames, F bins, T' memory frames so far, D memory width.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from seqspeech.asr.las import DEFAULT_MAX_LEN_RATIO, MONOTONIC_KINDS, LASModel
from seqspeech.nn.rnn import ListenerStreamState, PyramidalLSTMListener
from seqspeech.decoding.search import new_token_caps
from seqspeech.nn.attention import AttentionState, MoChA, MonotonicAttention

__all__ = ["Emission", "LASStreamer", "StreamState"]


@dataclass(frozen=True)
class Emission:
    """When a token was decided: ``frame`` is the memory frame its hard attention selected (-1: none, only at the
    end of the stream), ``memory_frames`` / ``input_frames`` how many memory / feature frames had arrived."""

    token: int
    frame: int
    memory_frames: int
    input_frames: int


@dataclass
class StreamState:
    """Everything one stream carries between chunks (batch of one).

    ``listener``: the listener's incremental state; ``memory (1, T', D)`` so far; ``attention``: the attention state
    over that memory (None before the first memory frame); ``frames``: valid memory frames (``memory`` holds one
    zero padding frame when an utterance ends without any); ``h``, ``c (1, L, H)`` and ``context (1, D)``: the
    speller after the last emitted token; ``pending``: the next step's ``(query, h, c)``, computed once and kept
    while the step waits for frames; ``tokens`` emitted so far with their ``emissions``; ``input_frames`` pushed so
    far; ``done`` after eos or the length cap; ``finished`` once :meth:`LASStreamer.finish` ran.
    """

    listener: ListenerStreamState
    memory: Tensor
    attention: AttentionState | None
    h: Tensor
    c: Tensor
    context: Tensor
    pending: tuple[Tensor, Tensor, Tensor] | None = None
    tokens: list[int] = dataclasses.field(default_factory=list)
    emissions: list[Emission] = dataclasses.field(default_factory=list)
    frames: int = 0
    input_frames: int = 0
    done: bool = False
    finished: bool = False


def _extend_attention_state(state: AttentionState | None, fresh: AttentionState) -> AttentionState:
    """Append the frames of ``fresh`` (``init_state`` of the new memory frames) to ``state``.

    Every per-frame tensor (keys, padding mask, MoChA's chunk keys) is concatenated along time; the previous
    alignment keeps its values and gets zeros on the new frames (``fresh``'s own initial alignment is ignored).
    """
    if state is None:
        return fresh
    changes = {}
    for field in dataclasses.fields(state):
        old, new = getattr(state, field.name), getattr(fresh, field.name)
        if not isinstance(old, Tensor):
            continue
        if field.name == "alignment":
            changes[field.name] = torch.cat([old, torch.zeros_like(new, dtype=old.dtype)], dim=1)
        else:
            changes[field.name] = torch.cat([old, new], dim=1)
    return dataclasses.replace(state, **changes)


class LASStreamer:
    """Incremental greedy recognition of one utterance; see the module docstring.

    Args:
        model: a :class:`LASModel` in eval mode with a unidirectional :class:`PyramidalLSTMListener` and a
            monotonic or MoChA attention.
        lookahead: memory frames that must exist after the selected frame before a token is emitted (>= 0).
        max_len_ratio: the length cap of :meth:`LASModel.greedy`.
    """

    def __init__(self, model: LASModel, lookahead: int = 0, max_len_ratio: float = DEFAULT_MAX_LEN_RATIO) -> None:
        if not isinstance(model.listener, PyramidalLSTMListener) or model.listener.bidirectional:
            raise ValueError("streaming needs a unidirectional PyramidalLSTMListener (bidirectional=False)")
        if not isinstance(model.attention, (MonotonicAttention, MoChA)):
            raise ValueError(
                f"streaming needs a hard monotonic attention ({', '.join(MONOTONIC_KINDS)}), "
                f"got {type(model.attention).__name__}"
            )
        if model.training:
            raise ValueError("streaming decodes in eval mode (hard attention): call model.eval() first")
        if isinstance(lookahead, bool) or not isinstance(lookahead, int) or lookahead < 0:
            raise ValueError(f"lookahead must be an int >= 0, got {lookahead!r}")
        new_token_caps([0], max_len_ratio)  # validates the ratio
        self.model = model
        self.lookahead = lookahead
        self.max_len_ratio = max_len_ratio
        self.state = self._initial_state()

    def _initial_state(self) -> StreamState:
        p = next(self.model.parameters())
        layers, hidden = len(self.model.cells), self.model.decoder_hidden
        return StreamState(
            listener=self.model.listener.init_stream(),
            memory=p.new_zeros(1, 0, self.model.memory_dim),
            attention=None,
            h=p.new_zeros(1, layers, hidden),
            c=p.new_zeros(1, layers, hidden),
            context=p.new_zeros(1, self.model.memory_dim),
        )

    @property
    def tokens(self) -> list[int]:
        """All tokens emitted so far (without sos/eos)."""
        return list(self.state.tokens)

    @property
    def emissions(self) -> list[Emission]:
        """One :class:`Emission` per emitted token, in order."""
        return list(self.state.emissions)

    def reset(self) -> None:
        """Start a new utterance."""
        self.state = self._initial_state()

    @torch.no_grad()
    def push(self, features: Tensor) -> list[int]:
        """Add feature frames ``(n, F)`` or ``(1, n, F)`` (raw, the model normalises them); returns new tokens."""
        return self._feed(features, final=False)

    @torch.no_grad()
    def finish(self) -> list[int]:
        """End the stream: flush the listener and decode to eos or the length cap; returns the remaining tokens."""
        p = next(self.model.parameters())
        return self._feed(p.new_zeros(1, 0, self.model.listener.input_dim), final=True)

    def _feed(self, features: Tensor, final: bool) -> list[int]:
        state = self.state
        if state.finished:
            raise ValueError("the stream is finished: call reset() to start a new utterance")
        if features.dim() == 2:
            features = features.unsqueeze(0)
        if features.dim() != 3 or features.size(0) != 1 or features.size(-1) != self.model.listener.input_dim:
            raise ValueError(
                f"expected a chunk (n, {self.model.listener.input_dim}) or (1, n, "
                f"{self.model.listener.input_dim}), got {tuple(features.shape)}"
            )
        if not torch.isfinite(features).all():
            raise ValueError("feature chunk contains NaN or inf")
        state.input_frames += features.size(1)
        new_frames, state.listener = self.model.listener.infer(
            self.model.normalize(features), state.listener, final=final
        )
        if new_frames.size(1):
            fresh = self.model.attention.init_state(
                new_frames, torch.tensor([new_frames.size(1)], device=new_frames.device)
            )
            state.attention = _extend_attention_state(state.attention, fresh)
            state.memory = torch.cat([state.memory, new_frames], dim=1)
            state.frames = state.memory.size(1)
        state.finished = final
        return self._advance(final)

    def _advance(self, final: bool) -> list[int]:
        """Decide as many steps as the available frames allow."""
        state, model = self.state, self.model
        eos = model.sos_eos
        emitted: list[int] = []
        while not state.done:
            frames = state.frames
            if frames == 0 and not final:
                break
            cap = int(new_token_caps([frames], self.max_len_ratio)[0])
            if len(state.tokens) >= cap:
                state.done = final  # the cap may still grow while frames keep coming
                break
            if state.attention is None:  # an empty utterance: one padding frame, as LASModel.initial_state does
                state.memory = state.memory.new_zeros(1, 1, state.memory.size(2))
                state.attention = model.attention.init_state(
                    state.memory, torch.zeros(1, dtype=torch.long, device=state.memory.device)
                )
            if state.pending is None:
                prev = state.tokens[-1] if state.tokens else eos
                prev_tokens = torch.tensor([prev], device=state.memory.device)
                state.pending = model.decoder_query(prev_tokens, state.h, state.c, state.context)
            query, h, c = state.pending
            lens = torch.tensor([frames], device=state.memory.device)
            context, _, attention = model.attention(query, state.memory, lens, state.attention)
            alignment = attention.alignment
            assert alignment is not None
            selected = bool(alignment.sum() > 0)
            frame = int(alignment.argmax(-1)) if selected else -1
            if not final and (not selected or frame + self.lookahead >= frames):
                break  # the stop frame (or its lookahead) has not arrived yet
            logits = model.decoder_output(query, context).float().log_softmax(dim=-1)
            token = int(logits.argmax(-1))
            state.h, state.c, state.context, state.attention, state.pending = h, c, context, attention, None
            if token == eos:
                state.done = True
                break
            state.tokens.append(token)
            state.emissions.append(Emission(token, frame, frames, state.input_frames))
            emitted.append(token)
        return emitted
