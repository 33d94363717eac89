"""One streaming API for every recogniser: a shared, stateless :class:`StreamEngine` per model family and one
:class:`StreamingRecognizer` per audio stream (the stream owns its state; sherpa-onnx's OnlineRecognizer /
OnlineStream shape).

An engine knows how its model turns audio into tokens chunk by chunk (transducer, chunked CTC, monotonic LAS,
Whisper LocalAgreement / AlignAtt); the recogniser does everything else the same way for all of them: buffering
audio of any chunk size, int16 -> float, endpointing, events, utterance bookkeeping, batching many streams into one
engine call.

Times are seconds of audio from the stream's first sample ("stream seconds").

    stream = asr.stream(chunk_ms=320)             # a model's stream(): StreamingRecognizer(its engine)
    for block in blocks:                          # any size; float in [-1, 1] or int16; 16 kHz mono
        for event in stream.accept_audio(block):  # (accept_waveform(rate, block) resamples other rates)
            print(event.type, event.text)         # "partial" while an utterance goes on, "final" at its end
    stream.finish()                               # the last final

    streams = [asr.stream() for _ in range(8)]    # many streams, one batched engine call per round
    for s, block in zip(streams, blocks):
        s.feed(block)
    events = decode_streams(streams)

A model family plugs in by writing a :class:`StreamEngine` and a ``stream(chunk_ms=..., *, endpoint=None,
**options) -> StreamingRecognizer`` method on its inference class (``seqspeech stream`` calls
``load_model(name).stream(chunk_ms=...)``). Engines with a Kaldi-fbank front end can use
:class:`IncrementalFrontend` for frames equal to the whole utterance's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, Sequence

import numpy as np

from ..audio.constants import SAMPLE_RATE
from ..errors import AudioError, ConfigError, SeqSpeechError

__all__ = [
    "SAMPLE_RATE",
    "EndpointConfig",
    "FrontendState",
    "Hypothesis",
    "IncrementalFrontend",
    "StreamEngine",
    "StreamEvent",
    "StreamFinishedError",
    "StreamingRecognizer",
    "as_samples",
    "chunk_samples_from_ms",
    "decode_streams",
]


@dataclass(frozen=True)
class StreamEvent:
    """What a stream reports: ``partial`` (the open utterance's current text; may still change) or ``final`` (an
    utterance closed by an endpoint or the end of the stream; never changes).

    ``start`` / ``end``: stream seconds where the utterance's first and last token were heard; ``emitted_at``: the
    stream seconds of audio received when the event was made (algorithmic latency = ``emitted_at - end``);
    ``wall``: wall-clock seconds since the stream was created; ``utterance``: 0, 1, 2 ... within the stream.
    """

    type: str
    text: str
    tokens: tuple[int, ...]
    start: float
    end: float
    emitted_at: float
    utterance: int = 0
    wall: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "text": self.text, "tokens": list(self.tokens), "start": round(self.start, 3),
                "end": round(self.end, 3), "emitted_at": round(self.emitted_at, 3), "utterance": self.utterance,
                "wall": round(self.wall, 3)}


@dataclass
class Hypothesis:
    """An engine's report on one stream's open utterance after a decoding step.

    ``tokens``: the current best tokens of the open utterance; the first ``stable`` of them will not change any
    more (Whisper's committed prefix; frame-synchronous searches may report 0 or their settled prefix).
    ``times``: one stream-seconds time per token (when the model emitted it: its frame's end).
    ``last_speech``: stream seconds of the latest evidence of speech (the last non-blank frame, the last VAD
    speech frame); the recogniser's endpointing measures trailing silence from it. None: no speech yet.
    """

    tokens: list[int] = field(default_factory=list)
    stable: int = 0
    times: list[float] = field(default_factory=list)
    last_speech: float | None = None


class StreamEngine(Protocol):
    """A model family's streaming logic, shared by all streams of that model: it holds no per-stream state.

    ``chunk_samples``: samples per decoding step (the model's native chunk, e.g. 320 ms). ``decode`` receives, for
    each stream in the batch, its state (mutated in place), exactly ``chunk_samples`` new samples (fewer, possibly
    none, only with ``final=True``: the end of the stream's audio), and returns that stream's :class:`Hypothesis`.
    Engines batch the streams' model work into one forward pass where the family allows it.
    """

    sample_rate: int
    chunk_samples: int

    def new_state(self) -> Any:
        """A fresh stream's state."""
        ...

    def decode(self, states: Sequence[Any], chunks: Sequence[np.ndarray], final: Sequence[bool]) -> list[Hypothesis]:
        """Decode one chunk per stream (float32 16 kHz samples); mutate ``states``; one hypothesis per stream."""
        ...

    def end_utterance(self, state: Any) -> Hypothesis:
        """Close the open utterance: its final hypothesis (an engine may rescore here, e.g. CTC beam search + LM);
        then start a new utterance in ``state``, keeping whatever acoustic context the model carries."""
        ...

    def text(self, tokens: Sequence[int]) -> str:
        """Token ids -> text."""
        ...


# ----------------------------------------------------------------------------------------------------------------
# endpointing


TIME_EPSILON = 1e-6  # seconds: far below one sample (62.5 us), far above float rounding


@dataclass(frozen=True)
class EndpointConfig:
    """When an utterance ends: sherpa-onnx's three endpoint rules, in stream seconds.

    Trailing silence is the audio decoded since the open hypothesis' ``last_speech`` (since the utterance's start
    when there is none).

    * rule 1: ``rule1_min_trailing_silence`` of silence and no token in the utterance: it is dropped silently (no
      event; the engine starts a fresh utterance, so nothing builds up over a long silence);
    * rule 2: ``rule2_min_trailing_silence`` of silence after some token: the utterance ends (a ``final`` event);
    * rule 3: the utterance has lasted ``rule3_min_utterance_length``: it ends whatever the silence.

    ``enabled=False``: no automatic endpoints; the caller ends utterances with
    :meth:`StreamingRecognizer.reset` (push-to-talk) and :meth:`StreamingRecognizer.finish`.
    """

    enabled: bool = True
    rule1_min_trailing_silence: float = 2.4
    rule2_min_trailing_silence: float = 0.8
    rule3_min_utterance_length: float = 20.0

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigError(f"EndpointConfig.enabled must be true or false, got {self.enabled!r}")
        for name in ("rule1_min_trailing_silence", "rule2_min_trailing_silence", "rule3_min_utterance_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value <= 0:
                raise ConfigError(f"EndpointConfig.{name} must be a number of seconds > 0, got {value!r}")

    def rule(self, utterance_s: float, trailing_silence_s: float, has_tokens: bool) -> int:
        """The rule (1, 2 or 3) that ends an utterance of ``utterance_s`` seconds now, or 0 (none, or disabled)."""
        if not self.enabled:
            return 0
        # times are float seconds of whole samples: 1.7 - 0.9 must count as 0.8
        trailing, length = trailing_silence_s + TIME_EPSILON, utterance_s + TIME_EPSILON
        if not has_tokens and trailing >= self.rule1_min_trailing_silence:
            return 1
        if has_tokens and trailing >= self.rule2_min_trailing_silence:
            return 2
        if length >= self.rule3_min_utterance_length:
            return 3
        return 0


# ----------------------------------------------------------------------------------------------------------------
# audio chunks

MIN_CHUNK_MS = 10  # one fbank / Whisper mel hop
MAX_CHUNK_MS = 30_000  # one Whisper window: a longer "chunk" is not streaming any more
MAX_FLOAT_PEAK = 2.0  # float samples beyond this are int16-scale numbers, not [-1, 1] audio (lossy decoders
# overshoot 1.0 a little, which is fine)
INT16_SCALE = 32768.0


class StreamFinishedError(SeqSpeechError, RuntimeError):
    """Audio was given to a stream after :meth:`StreamingRecognizer.finish`."""


def chunk_samples_from_ms(chunk_ms: float, what: str = "chunk_ms") -> int:
    """Samples at 16 kHz in a decoding chunk of ``chunk_ms`` milliseconds (ConfigError outside 10 ms ... 30 s)."""
    if isinstance(chunk_ms, bool) or not isinstance(chunk_ms, (int, float)) or not math.isfinite(chunk_ms) \
            or not MIN_CHUNK_MS <= chunk_ms <= MAX_CHUNK_MS:
        raise ConfigError(f"{what} must be between {MIN_CHUNK_MS} and {MAX_CHUNK_MS} milliseconds, got {chunk_ms!r}")
    return round(chunk_ms * SAMPLE_RATE / 1000)


def as_samples(samples: Any, what: str = "audio chunk") -> np.ndarray:
    """One chunk of mono audio -> float32 samples in [-1, 1]: float32/float64 as they are, int16 scaled by 1/32768.

    Raises:
        AudioError: (one line) for 2-D input, another dtype, NaN/inf, or floats far outside [-1, 1].
    """
    array = np.asarray(samples)
    if array.ndim != 1:
        raise AudioError(f"{what}: expected 1-D mono samples, got an array of shape {array.shape} (mix the channels "
                         "down to mono first)")
    if array.dtype == np.int16:
        return array.astype(np.float32) / np.float32(INT16_SCALE)
    if array.dtype.kind != "f" or array.dtype.itemsize not in (4, 8):
        raise AudioError(f"{what}: samples must be float32/float64 in [-1, 1] or int16, got dtype {array.dtype}")
    array = array.astype(np.float32)  # a copy: the caller may reuse its buffer (a microphone ring buffer)
    if array.size:
        finite = np.isfinite(array)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            raise AudioError(f"{what}: sample {bad} of the chunk is {array[bad]} (NaN or inf samples are not audio)")
        peak = float(np.abs(array).max())
        if peak > MAX_FLOAT_PEAK:
            raise AudioError(f"{what}: float samples must lie in [-1, 1], got a peak of {peak:g} (int16 audio: pass "
                             "the int16 array itself, or divide by 32768)")
    return array


# ----------------------------------------------------------------------------------------------------------------
# one stream


class StreamingRecognizer:
    """One audio stream through a shared :class:`StreamEngine`: buffering, endpointing, events.

    ::

        stream = asr.stream(chunk_ms=320)        # or StreamingRecognizer(engine)
        for block in microphone:                 # any size, float in [-1, 1] or int16, 16 kHz mono
            for event in stream.accept_audio(block):
                print(event.type, event.text)
        stream.finish()                          # the last final event
        print(stream.text())                     # the finals, joined

    Audio is buffered and given to ``engine.decode`` in chunks of exactly ``engine.chunk_samples``, so the events
    (text, tokens, times) do not depend on how the caller cuts the audio. After each decoding step the open
    utterance's text is compared with the last one reported: a change makes a ``partial`` event; an endpoint
    (:class:`EndpointConfig`) closes the utterance with ``engine.end_utterance`` and a ``final`` event (none for an
    utterance that never had text). ``emitted_at`` of an event is the audio the engine had decoded when it was
    made (a chunk boundary; audio still in the buffer is not counted), so ``emitted_at - end`` is the algorithmic
    latency, whatever the caller's block size.

    The stream owns all its state (the engine's state, the buffer, endpoint counters, events); many streams of
    one engine decode in one batched engine call with :func:`decode_streams`. Not thread-safe: one stream, one
    thread at a time.
    """

    def __init__(self, engine: StreamEngine, *, endpoint: EndpointConfig = EndpointConfig()) -> None:
        if not isinstance(endpoint, EndpointConfig):
            raise ConfigError(f"endpoint must be an EndpointConfig, got {type(endpoint).__name__}")
        if getattr(engine, "sample_rate", None) != SAMPLE_RATE:
            raise ConfigError(f"{type(engine).__name__}: a stream engine decodes {SAMPLE_RATE} Hz audio, got "
                              f"sample_rate={getattr(engine, 'sample_rate', None)!r}")
        chunk = getattr(engine, "chunk_samples", None)
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ConfigError(f"{type(engine).__name__}: chunk_samples must be an int >= 1, got {chunk!r}")
        self.engine = engine
        self.endpoint = endpoint
        self._state = engine.new_state()
        self._pending: list[np.ndarray] = []  # received, not yet decoded (concatenated lazily)
        self._pending_samples = 0
        self._received = 0  # samples accepted
        self._decoded = 0  # samples given to the engine
        self._utterance_start = 0  # the open utterance's first sample (decoded position when it opened)
        self._hypothesis = Hypothesis()
        self._shown = ""  # the open utterance's text as last reported
        self._utterance = 0
        self._events: list[StreamEvent] = []
        self._finished = False
        self._created = time.monotonic()
        self._resampler: Any = None
        self._resampler_rate: int | None = None

    # -- audio in ----------------------------------------------------------------------------------------------

    def accept_audio(self, samples: Any, *, decode: bool = True) -> list[StreamEvent]:
        """Add mono 16 kHz samples (any count, 0 included; float in [-1, 1] or int16) and, unless ``decode=False``,
        decode every complete chunk buffered. Returns the events this call made.

        Raises:
            AudioError: a 2-D chunk, NaN/inf samples, another dtype (one line, nothing buffered).
            StreamFinishedError: after :meth:`finish`.
        """
        self._check_open()
        chunk = as_samples(samples)
        if chunk.size:
            self._pending.append(chunk)
            self._pending_samples += chunk.size
            self._received += chunk.size
        return self.decode() if decode else []

    def feed(self, samples: Any) -> None:
        """Buffer samples without decoding (:func:`decode_streams` decodes many streams together)."""
        self.accept_audio(samples, decode=False)

    def accept_waveform(self, sample_rate: int, samples: Any) -> list[StreamEvent]:
        """sherpa-onnx's spelling: ``sample_rate`` other than 16000 is resampled with a streaming soxr resampler
        (its output does not depend on the block sizes either). One stream keeps one input rate."""
        self._check_open()
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
            raise AudioError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
        sample_rate = int(sample_rate)
        if self._resampler_rate is None:
            self._resampler_rate = sample_rate
        elif sample_rate != self._resampler_rate:
            raise AudioError(f"this stream's audio is {self._resampler_rate} Hz; got a block at {sample_rate} Hz "
                             "(one stream keeps one rate)")
        if sample_rate == SAMPLE_RATE:
            return self.accept_audio(samples)
        chunk = as_samples(samples)
        if self._resampler is None:
            import soxr

            self._resampler = soxr.ResampleStream(sample_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        return self.accept_audio(self._resampler.resample_chunk(chunk))

    # -- decoding ----------------------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """A complete chunk is buffered (and the stream is not finished)."""
        return not self._finished and self._pending_samples >= self.engine.chunk_samples

    def decode(self) -> list[StreamEvent]:
        """Decode every complete chunk buffered; the events made."""
        events: list[StreamEvent] = []
        while self.ready:
            events += _decode_round([self])[0]
        return events

    def finish(self) -> list[StreamEvent]:
        """End of the audio: decode what is buffered (the last, shorter chunk with ``final=True``), close the open
        utterance (a ``final`` event when it has text). Later audio raises :class:`StreamFinishedError`; a second
        ``finish()`` returns no events."""
        if self._finished:
            return []
        events: list[StreamEvent] = []
        if self._resampler is not None:  # the resampler's tail
            tail = self._resampler.resample_chunk(np.zeros(0, np.float32), last=True)
            self._resampler = None
            events += self.accept_audio(tail)
        events += self.decode()
        rest = self._take(self._pending_samples)
        hypothesis = self.engine.decode([self._state], [rest], [True])
        events += self._after_decode(_one(hypothesis, self.engine), rest.size, final=True)
        events += self._close()
        self._finished = True
        return events

    def reset(self) -> list[StreamEvent]:
        """End the open utterance now (a manual endpoint: push-to-talk released): a ``final`` event when it has
        text, and a new utterance begins at the audio decoded so far. Buffered audio stays for the next one."""
        self._check_open()
        return self._close()

    # -- what the stream knows ---------------------------------------------------------------------------------

    def partial(self) -> str:
        """The open utterance's current text ("" between utterances)."""
        return self._shown

    def is_endpoint(self) -> bool:
        """Whether the endpoint rules hold for the open utterance now (with endpointing enabled the stream has
        already acted on them, so this is for ``EndpointConfig(enabled=False)`` callers, who then :meth:`reset`)."""
        rules = self.endpoint if self.endpoint.enabled else replace(self.endpoint, enabled=True)
        return rules.rule(*self._endpoint_inputs()) != 0

    @property
    def events(self) -> list[StreamEvent]:
        """Every event so far, in order."""
        return list(self._events)

    def results(self) -> list[StreamEvent]:
        """The ``final`` events so far."""
        return [e for e in self._events if e.type == "final"]

    def text(self) -> str:
        """The final utterances' texts, joined by spaces."""
        return " ".join(t for t in (e.text.strip() for e in self.results()) if t)

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def received_seconds(self) -> float:
        """Audio accepted so far (decoded or buffered)."""
        return self._received / SAMPLE_RATE

    @property
    def decoded_seconds(self) -> float:
        """Audio the engine has decoded so far."""
        return self._decoded / SAMPLE_RATE

    # -- internals ---------------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._finished:
            raise StreamFinishedError("the stream is finished: start a new stream for more audio")

    def _take(self, count: int) -> np.ndarray:
        """The first ``count`` buffered samples, removed from the buffer."""
        if not self._pending:
            return np.zeros(0, np.float32)
        buffered = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        chunk, rest = buffered[:count], buffered[count:]
        self._pending = [rest] if rest.size else []
        self._pending_samples = rest.size
        return chunk

    def _endpoint_inputs(self) -> tuple[float, float, bool]:
        now = self._decoded / SAMPLE_RATE
        start = self._utterance_start / SAMPLE_RATE
        speech = self._hypothesis.last_speech
        since = start if speech is None or speech < start else speech
        return now - start, now - since, bool(self._hypothesis.tokens)

    def _after_decode(self, hypothesis: Hypothesis, samples: int, final: bool) -> list[StreamEvent]:
        """Book a decoding step of ``samples`` samples: a partial event when the text changed, then endpointing."""
        self._decoded += samples
        self._hypothesis = hypothesis
        events: list[StreamEvent] = []
        text = self.engine.text(hypothesis.tokens)
        if text != self._shown:
            self._shown = text
            events.append(self._event("partial", hypothesis, text))
        if not final:
            rule = self.endpoint.rule(*self._endpoint_inputs())
            if rule:
                events += self._close()
        return events

    def _close(self) -> list[StreamEvent]:
        """End the open utterance: ``engine.end_utterance``, a final event unless it never had text."""
        hypothesis = self.engine.end_utterance(self._state)
        text = self.engine.text(hypothesis.tokens)
        events = []
        if text or self._shown:  # an utterance shown as a partial is always closed by a final, even an empty one
            events.append(self._event("final", hypothesis, text))
            self._utterance += 1
        self._utterance_start = self._decoded
        self._hypothesis = Hypothesis()
        self._shown = ""
        return events

    def _event(self, kind: str, hypothesis: Hypothesis, text: str) -> StreamEvent:
        start = self._utterance_start / SAMPLE_RATE
        times = hypothesis.times
        first, last = (times[0], times[-1]) if times else (start, start)
        event = StreamEvent(type=kind, text=text, tokens=tuple(int(t) for t in hypothesis.tokens), start=first,
                            end=last, emitted_at=self._decoded / SAMPLE_RATE, utterance=self._utterance,
                            wall=time.monotonic() - self._created)
        self._events.append(event)
        return event


def _one(hypotheses: Sequence[Hypothesis], engine: Any) -> Hypothesis:
    if len(hypotheses) != 1:
        raise RuntimeError(f"{type(engine).__name__}.decode returned {len(hypotheses)} hypotheses for 1 stream")
    return hypotheses[0]


def _decode_round(streams: Sequence[StreamingRecognizer]) -> list[list[StreamEvent]]:
    """One ``engine.decode`` call over ``streams`` (all ready, one engine): one chunk each."""
    engine = streams[0].engine
    chunks = [s._take(engine.chunk_samples) for s in streams]
    hypotheses = engine.decode([s._state for s in streams], chunks, [False] * len(streams))
    if len(hypotheses) != len(streams):
        raise RuntimeError(f"{type(engine).__name__}.decode returned {len(hypotheses)} hypotheses for "
                           f"{len(streams)} streams")
    return [s._after_decode(h, c.size, final=False) for s, h, c in zip(streams, hypotheses, chunks)]


def decode_streams(streams: Sequence[StreamingRecognizer]) -> list[list[StreamEvent]]:
    """Decode every complete chunk buffered in many independent streams, batching the engine calls: each round
    makes one ``engine.decode`` call over all streams of that engine with a chunk ready (streams of different
    engines are decoded in separate calls). Returns each stream's new events, in the order of ``streams``.

    Feed the streams with :meth:`StreamingRecognizer.feed` (buffer only) first; the result is the same as
    decoding each stream alone, event for event (``wall`` aside)."""
    if len({id(s) for s in streams}) != len(streams):
        raise ValueError("decode_streams: a stream is listed twice")
    out: dict[int, list[StreamEvent]] = {id(s): [] for s in streams}
    while True:
        groups: dict[int, list[StreamingRecognizer]] = {}
        for s in streams:
            if s.ready:
                groups.setdefault(id(s.engine), []).append(s)
        if not groups:
            break
        for group in groups.values():
            for s, events in zip(group, _decode_round(group)):
                out[id(s)] += events
    return [out[id(s)] for s in streams]


# ----------------------------------------------------------------------------------------------------------------
# incremental features, for engines with a frame-based front end


@dataclass
class FrontendState:
    """A stream's front-end position: ``tail`` holds the samples from the first frame not yet computed on,
    ``frames`` counts the frames made so far (frame k starts at sample ``k * shift``)."""

    tail: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    frames: int = 0


class IncrementalFrontend:
    """A whole-utterance front end (``(T,)`` samples -> ``(frames, F)``, Kaldi ``snip_edges``: frame k covers
    samples ``[k * shift, k * shift + length)``) computed chunk by chunk: each call makes exactly the frames whose
    samples have all arrived and keeps the rest of the samples for the next call, so the frames equal the
    whole-utterance front end's (every frame is computed from its own samples only).

    Stateless and shared by the streams of an engine; each stream keeps a :class:`FrontendState`.

    Args:
        frontend: e.g. :class:`~seqspeech.data.dataset.FbankFrontend`; its ``fbank.frame_length`` and
            ``fbank.frame_shift`` are used unless given.
    """

    def __init__(self, frontend: Any, frame_length: int | None = None, frame_shift: int | None = None) -> None:
        fbank = getattr(frontend, "fbank", None)
        self.frontend = frontend
        self.frame_length = int(frame_length if frame_length is not None else fbank.frame_length)
        self.frame_shift = int(frame_shift if frame_shift is not None else fbank.frame_shift)

    def new_state(self) -> FrontendState:
        return FrontendState()

    def __call__(self, state: FrontendState, samples: np.ndarray, device: Any = None) -> Any:
        """Add float32 samples; the new complete frames ``(n, F)`` (a tensor, n may be 0)."""
        import torch

        buffered = np.concatenate([state.tail, samples]) if state.tail.size else np.asarray(samples, np.float32)
        n = 0 if buffered.size < self.frame_length else (buffered.size - self.frame_length) // self.frame_shift + 1
        used = (n - 1) * self.frame_shift + self.frame_length if n else 0
        wave = torch.from_numpy(np.ascontiguousarray(buffered[:used], dtype=np.float32))
        if device is not None:
            wave = wave.to(device)
        with torch.inference_mode():
            features = self.frontend(wave)
        state.tail = buffered[n * self.frame_shift :]
        state.frames += n
        return features
