"""Streaming vocoding: turn mel chunks into audio as they arrive.

:class:`StreamingVocoder` receives mel chunks ``(n_mels, t)`` from an acoustic model and returns new waveform
samples::

    stream = StreamingVocoder(hifigan)            # context = the generator's receptive field: exact
    for chunk in mel_chunks:
        play(stream.push(chunk))                  # (samples,) each, possibly empty
    play(stream.finish())                         # the rest; in all exactly frames * hop samples

Each call vocodes the frames whose output is final, with ``context_frames`` frames of already-seen mel on the left
and as many held back on the right (look-ahead), and keeps only the output of the frames in between. A
**convolutional generator** is local: output frame ``t`` depends on mel frames ``t - R .. t + R`` only, ``R =``
:func:`receptive_field_frames` (computed exactly from the layer shapes). With ``context_frames >= R`` every kept
sample is computed from the same inputs by the same arithmetic as offline ``infer`` on the whole mel (the signal's
own edges are zero-padded in both), so the stream equals the offline output up to float rounding, with no overlap
needed: ``crossfade_frames`` defaults to 0. The added latency is ``context_frames`` frames: 13 (208 ms at hop 256 /
16 kHz) for V1, V2 and ``istftnet_v2``, 11 for V3. A smaller context trades exactness for latency.

**Griffin-Lim** is not local (its phase comes from iterations over the whole window), so streaming it is an
approximation: each window carries ``context_frames`` of mel context on both sides, the last ``crossfade_frames``
frames of every window's output are held back and cross-faded (raised-cosine, amplitude-complementary) with the next
window's output for the same frames, and the next window's Griffin-Lim starts from the phase of the audio already
produced (a warm start, :meth:`GriffinLim.forward` ``init_wave``), so neighbouring windows agree on the phase and the
joins have neither clicks nor cancellation. The result differs from offline Griffin-Lim (which is itself only one of
many phase solutions) but has a comparable spectral convergence; see the tests.

The stream's state lives in :attr:`StreamingVocoder.state` (one object per stream); the wrapped vocoder is shared
and never modified.

Shapes: n_mels bands, t frames per chunk, hop samples per frame.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ...errors import AudioError, ConfigError
from .griffin_lim import GriffinLim
from .hifigan import Generator, HiFiGAN

if TYPE_CHECKING:
    from . import Vocoder

__all__ = [
    "GL_CONTEXT_FRAMES", "GL_CROSSFADE_FRAMES", "StreamState", "StreamingVocoder", "push_streams",
    "receptive_field_frames",
]

GL_CONTEXT_FRAMES = 16  # Griffin-Lim windows: mel context on each side (256 ms at hop 256 / 16 kHz)
GL_CROSSFADE_FRAMES = 4  # Griffin-Lim windows: frames cross-faded at each join (64 ms)


def _generator_of(vocoder: Any) -> Generator | None:
    if isinstance(vocoder, Generator):
        return vocoder
    if isinstance(vocoder, HiFiGAN):
        return vocoder.generator
    return None


def receptive_field_frames(generator: Generator | HiFiGAN) -> int:
    """Mel frames on each side that a convolutional generator's output frame depends on.

    For every sample ``n`` of output frame 0 (``0 <= n < hop``) the span of mel frames it reads is traced back
    through every layer (:meth:`Generator.input_span`: same-padded convolutions, transposed convolutions, the iSTFT
    overlap-add); the result is the largest distance, left or right, from frame 0. Streaming with at least this much
    context reproduces offline vocoding exactly.
    """
    gen = _generator_of(generator)
    if gen is None:
        raise ConfigError(f"receptive_field_frames needs a HiFi-GAN Generator, got {type(generator).__name__}")
    if gen not in _RECEPTIVE_FIELDS:  # tracing takes ~30 ms: once per generator, not once per stream
        left = right = 0
        for n in range(gen.hop_length):
            lo, hi = gen.input_span(n, n)
            left, right = max(left, -lo), max(right, hi)
        _RECEPTIVE_FIELDS[gen] = max(left, right)
    return _RECEPTIVE_FIELDS[gen]


_RECEPTIVE_FIELDS: weakref.WeakKeyDictionary[Generator, int] = weakref.WeakKeyDictionary()


@dataclass
class StreamState:
    """One stream between chunks.

    ``mel (n_mels, k)``: the buffered mel frames, the first of which is absolute frame ``offset``; ``frames``: mel
    frames received; ``emitted``: frames whose samples were returned; ``tail``: samples of the frames after
    ``emitted`` already vocoded by the previous window and awaiting the cross-fade; ``history``: the last returned
    samples (the Griffin-Lim warm start); ``finished`` once :meth:`StreamingVocoder.finish` ran.
    """

    mel: Tensor
    offset: int = 0
    frames: int = 0
    emitted: int = 0
    tail: Tensor | None = None
    history: Tensor | None = None
    finished: bool = False


@dataclass
class _Window:
    """The mel frames one step vocodes (absolute frames ``start ..``), the frames ``[.., end)`` it completes, of
    which ``[.., keep)`` are returned now; ``final``: the stream's last window."""

    mel: Tensor
    start: int
    end: int
    keep: int
    final: bool


class StreamingVocoder:
    """Incremental vocoding of one utterance with any :class:`~seqspeech.tts.vocoders.Vocoder`; see the module docs.

    Args:
        vocoder: a :class:`HiFiGAN`, a :class:`Generator` or a :class:`GriffinLim` (anything with ``infer``,
            ``hop_length`` and ``n_mels``).
        context_frames: mel frames of left context and right look-ahead per window. None: the generator's
            :func:`receptive_field_frames` (exact), or :data:`GL_CONTEXT_FRAMES` for other vocoders.
        crossfade_frames: frames cross-faded at each join. None: 0 for a generator (nothing to hide), else
            :data:`GL_CROSSFADE_FRAMES`.
    """

    def __init__(
        self, vocoder: Vocoder, context_frames: int | None = None, crossfade_frames: int | None = None
    ) -> None:
        for name in ("infer", "hop_length", "n_mels"):
            if not hasattr(vocoder, name):
                raise ConfigError(f"StreamingVocoder: the vocoder ({type(vocoder).__name__}) has no {name}")
        generator = _generator_of(vocoder)
        field = receptive_field_frames(generator) if generator is not None else None
        if context_frames is None:
            context_frames = field if field is not None else GL_CONTEXT_FRAMES
        if crossfade_frames is None:
            crossfade_frames = 0 if generator is not None else GL_CROSSFADE_FRAMES
        for name, value in (("context_frames", context_frames), ("crossfade_frames", crossfade_frames)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"StreamingVocoder: {name} must be an int >= 0, got {value!r}")
        self.vocoder = vocoder
        self.context_frames = context_frames
        self.crossfade_frames = crossfade_frames
        self.hop_length = int(vocoder.hop_length)
        self.n_mels = int(vocoder.n_mels)
        self.warm_start = isinstance(vocoder, GriffinLim)
        # every returned sample is computed from mel inside the window, never from its right edge (padding there
        # changes nothing before the last window): what lets push_streams pad windows to one batch
        self.exact = field is not None and context_frames >= field
        fade = torch.linspace(0.0, math.pi, crossfade_frames * self.hop_length + 2)[1:-1]
        self.fade_in = 0.5 - 0.5 * torch.cos(fade)  # rises from ~0 to ~1; fade_in + fade_out == 1
        self.state = self._initial_state()

    def _initial_state(self) -> StreamState:
        return StreamState(mel=torch.zeros(self.n_mels, 0))

    def reset(self) -> None:
        """Start a new utterance."""
        self.state = self._initial_state()

    @property
    def latency_frames(self) -> int:
        """Mel frames that must arrive after a frame before its samples are returned."""
        return self.context_frames + self.crossfade_frames

    def push(self, mel_chunk: Tensor) -> Tensor:
        """Add mel frames ``(n_mels, t)``; returns the new samples ``(s,)`` (a multiple of hop, possibly 0)."""
        return self._feed(mel_chunk, final=False)

    def finish(self) -> Tensor:
        """End the stream; returns the remaining samples. All returned samples together are ``frames * hop``."""
        return self._feed(self.state.mel.new_zeros(self.n_mels, 0), final=True)

    def _feed(self, chunk: Tensor, final: bool) -> Tensor:
        plan = self._plan(chunk, final)
        if not isinstance(plan, _Window):
            return plan
        return self._take(plan, self._vocode(plan))

    def _plan(self, chunk: Tensor, final: bool) -> Tensor | _Window:
        """Buffer ``chunk``; the mel window to vocode next, or the samples to return when nothing needs vocoding."""
        state, context, crossfade = self.state, self.context_frames, self.crossfade_frames
        if state.finished:
            raise AudioError("StreamingVocoder: the stream is finished; call reset() to start a new one")
        if chunk.dim() != 2 or chunk.shape[0] != self.n_mels:
            raise AudioError(f"StreamingVocoder: expected a mel chunk ({self.n_mels}, t), got {tuple(chunk.shape)}")
        if not torch.isfinite(chunk).all():
            raise AudioError("StreamingVocoder: the mel chunk contains NaN or inf")
        state.mel = torch.cat([state.mel.to(chunk), chunk], dim=1)
        state.frames += chunk.shape[1]
        state.finished = final
        end = state.frames if final else state.frames - context  # frames [emitted, end) have all their look-ahead
        keep = end if final else end - crossfade  # ... of which [keep, end) wait for the next window's cross-fade
        if keep <= state.emitted and not final:
            return chunk.new_zeros(0)
        if end <= state.emitted:  # final, nothing left to vocode
            return state.tail if state.tail is not None else chunk.new_zeros(0)
        start = max(0, state.emitted - context)
        window = state.mel[:, start - state.offset : min(state.frames, end + context) - state.offset]
        return _Window(window, start, end, keep, final)

    def _vocode(self, plan: _Window) -> Tensor:
        if self.warm_start:
            known = self._known(self.state, plan.start)
            return self.vocoder.infer(plan.mel[None], init_wave=None if known is None else known[None])[0]
        return self.vocoder.infer(plan.mel[None])[0]

    def _take(self, plan: _Window, wave: Tensor) -> Tensor:
        """The new samples from the vocoded window ``wave``; advances the state."""
        state, hop, context = self.state, self.hop_length, self.context_frames
        wave = wave[(state.emitted - plan.start) * hop : (plan.end - plan.start) * hop]
        if state.tail is not None and state.tail.numel():
            overlap = state.tail.numel()  # always crossfade_frames * hop
            fade_in = self.fade_in.to(wave)
            wave = torch.cat([state.tail * (1 - fade_in) + wave[:overlap] * fade_in, wave[overlap:]])
        out, tail = wave[: (plan.keep - state.emitted) * hop], wave[(plan.keep - state.emitted) * hop :]
        state.tail = None if plan.final else tail
        state.emitted = plan.keep
        if self.warm_start:
            history = out if state.history is None else torch.cat([state.history, out])
            state.history = history[-context * hop :] if context else history[:0]
        drop = max(0, state.emitted - context) - state.offset  # the next window starts at emitted - context
        state.mel, state.offset = state.mel[:, drop:], state.offset + drop
        return out

    def _known(self, state: StreamState, start: int) -> Tensor | None:
        """The samples already produced for frames ``start ..`` (returned history, then the pending tail)."""
        parts = []
        if state.history is not None:
            parts.append(state.history[max(0, state.history.numel() - (state.emitted - start) * self.hop_length) :])
        if state.tail is not None:
            parts.append(state.tail)
        return torch.cat(parts) if parts else None


def push_streams(streams: Sequence[StreamingVocoder], chunks: Sequence[Tensor], finals: Sequence[bool]) -> list[Tensor]:
    """``streams[i].push(chunks[i])`` (or its last chunk and ``finish`` when ``finals[i]``) for many streams at once:
    the windows of streams that share a vocoder are vocoded as one batch. The samples equal each stream's own
    ``push``/``finish`` up to float rounding: an exact stream's window is padded on the right only when it is not
    its last (the padding lies outside every returned sample's receptive field); last windows and those of inexact
    streams are batched only with windows of the same width (nothing padded); Griffin-Lim windows run one by one
    (each warm-starts from its own stream's phase).

    Returns the new samples of each stream, ``(s,)`` each (possibly empty)."""
    if not len(streams) == len(chunks) == len(finals):
        raise ValueError(f"push_streams: {len(streams)} streams, {len(chunks)} chunks and {len(finals)} finals")
    plans = [s._plan(c, f) for s, c, f in zip(streams, chunks, finals)]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (stream, plan) in enumerate(zip(streams, plans)):
        if not isinstance(plan, _Window):
            continue
        if stream.warm_start:  # its phase warm start is per stream
            groups[(id(stream), -1)] = [i]
            continue
        width = -2 if stream.exact and not plan.final else plan.mel.shape[1]
        groups.setdefault((id(stream.vocoder), width), []).append(i)
    waves: dict[int, Tensor] = {}
    for members in groups.values():
        first = streams[members[0]]
        if len(members) == 1:
            waves[members[0]] = first._vocode(plans[members[0]])
            continue
        mels = [plans[i].mel for i in members]
        width = max(m.shape[1] for m in mels)
        batch = torch.stack([torch.nn.functional.pad(m, (0, width - m.shape[1])) for m in mels])
        out = first.vocoder.infer(batch)
        for row, i in enumerate(members):
            waves[i] = out[row, : plans[i].mel.shape[1] * first.hop_length]
    return [s._take(p, waves[i]) if isinstance(p, _Window) else p for i, (s, p) in enumerate(zip(streams, plans))]
