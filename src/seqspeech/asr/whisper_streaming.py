"""Streaming Whisper behind :class:`~seqspeech.asr.streaming.StreamEngine`: two policies that decide, chunk by
chunk, which tokens of a growing audio buffer are final (committed: never changed again).

Whisper is an offline model over 30-second windows. Both policies keep, per stream, an audio *buffer* (at most one
window) that grows by one chunk per step and is cut at the front once it is longer than ``max_buffer_s``, so a
stream can run for hours. The committed tokens heard before the buffer are the ``<|startofprev|>`` prompt (the
last ``max_context_tokens``); in the default modes the committed tokens heard inside the buffer are forced as
the decoder prefix, so each step decodes only what follows them.

* :class:`LocalAgreementWhisper` -- LocalAgreement-2 (Machacek, Dabre and Bojar 2023, ``whisper_streaming``):
  each step decodes the buffer after the committed prefix; the words on which this continuation and the previous
  step's agree are committed, the rest is the tentative tail. ``mode="prompt"`` is whisper_streaming's own
  way instead: the whole buffer is decoded afresh with timestamps, the words that start before the last committed
  end (less 0.1 s; times by DTW over the alignment heads, as openai-whisper's word timestamps) and a repeat of the
  last 1-5 committed words are dropped, and the buffer is cut at Whisper segment ends.
* :class:`AlignAttWhisper` -- AlignAtt (Papi, Negri and Turchi 2023; SimulStreaming, Machacek et al. 2025):
  each step decodes once after the committed prefix; before each new token, the cross-attention of the model's
  *alignment heads* at the step that predicts it is read: when its most attended audio position is one of the
  last ``frame_threshold`` positions (20 ms each) of the audio received -- the model is reading the edge of what
  it has heard -- decoding stops and the token waits for more audio. Every token emitted is committed.

Cuts (prefix modes): at a boundary between two committed words, the latest sentence end when there is one, that
leaves ``keep_s`` seconds of committed audio in the buffer (whisper_streaming keeps none: tiny.en hallucinates on
the short buffers that leaves). A buffer that still outgrows ``hard_buffer_s`` (nowhere to cut) is decoded to
its end, committed whole and emptied.

Common to both (:class:`WhisperChunkDecoder`): the buffer's log-mel over one 30-s window (the rest of the window
silence, as in Whisper's training; ``padding="zeros"``: zeros in log-mel space, as ``transcribe`` does), one
encoder pass per step, greedy decoding through ``model.decoder`` with its explicit
:class:`~seqspeech.asr.whisper.DecoderState` and Whisper's own prompt layout and logit filters
(:mod:`seqspeech.asr.whisper_decoding`). The alignment heads (``model.alignment_heads``, set by the loaders from the
checkpoint: tiny.en has openai-whisper's 8 pairs) are read by forward hooks on the decoder's cross-attention
modules (:class:`AlignmentProbe`), live only during one decoding call of the calling thread, so the shared model is
not changed. A step's attended position is SimulStreaming's reading of them (:class:`AttendedPosition`); a
token's time is the end of its attended position. Guards for tiny.en: end-of-text is refused while the output has
reached only positions more than 1 s before the buffer's last speech (after a prefix that ends a sentence it tends
to stop although the next one has begun); a continuation is capped at 8 tokens per second of audio after the
prefix; LocalAgreement does not commit a continuation that compresses like a repetition loop.

``last_speech`` comes from a cheap energy detector over 20-ms frames (a frame is speech above
``max(vad_threshold_db, noise floor + 15 dB)``; ``vad_threshold_db=None`` counts every frame as speech). A
buffer without any speech frame is not decoded at all (its last 0.5 s are kept), which saves the encoder pass
on silence and keeps Whisper from hallucinating text in it.

Batching: the windows of the streams in one ``decode`` call are encoded in one encoder pass on CUDA (on CPU one
window at a time is as fast and holds less memory); greedy decoding runs per stream (their prefixes and stopping
points differ).

Times are stream seconds (from the stream's first sample).
"""

from __future__ import annotations

import contextvars
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..audio.constants import CHUNK_LENGTH, HOP_LENGTH, N_FRAMES, N_SAMPLES, N_SAMPLES_PER_TOKEN, SAMPLE_RATE
from ..audio.features import WhisperLogMel
from ..decoding.filters import SuppressTokens
from ..decoding.options import DecodingOptions
from ..errors import ConfigError
from .streaming import Hypothesis, as_samples
from .whisper_decoding import compression_ratio, detect_language, initial_tokens, logit_filters

if TYPE_CHECKING:
    from ..text.tokenizers.whisper import WhisperTokenizer
    from .whisper import Whisper

__all__ = [
    "POLICIES",
    "AlignAttWhisper",
    "LocalAgreementWhisper",
    "WhisperChunkDecoder",
    "WhisperStreamState",
    "Word",
    "whisper_stream_engine",
]

POSITION_SECONDS = N_SAMPLES_PER_TOKEN / SAMPLE_RATE  # 0.02 s: one encoder position (and one timestamp step)
WINDOW_SECONDS = float(CHUNK_LENGTH)  # the buffer never outgrows one 30-s window
MIN_DECODE_SAMPLES = SAMPLE_RATE // 10  # a buffer shorter than 0.1 s is not worth a decoding step
SILENCE_KEEP_SAMPLES = SAMPLE_RATE // 2  # a buffer without speech is cut to its last 0.5 s
SETTLE_S = 1.0  # silence a step has read after the last speech before further silence is not decoded
VAD_FRAME = N_SAMPLES_PER_TOKEN  # 20-ms energy frames
VAD_NOISE_MARGIN_DB = 15.0  # a speech frame is this far above the tracked noise floor
VAD_FLOOR_RISE_DB = 0.02  # per frame (1 dB/s): how fast the noise floor may rise
VAD_FLOOR_DB = -120.0  # the energy of digital silence, in dB re full scale
MEDIAN_FILTER_WIDTH = 7  # positions, openai-whisper's word-timestamp smoothing
MAX_TOKENS_PER_SECOND = 12  # of buffer audio: a cap on a whole-buffer decoding's tokens (repetition loops)
MAX_COMPRESSION_RATIO = 2.4  # above: a looping hypothesis, not committed (transcribe's fallback threshold)
DEDUP_MAX_WORDS = 5  # whisper_streaming: a repeat of the last 1-5 committed words at a hypothesis' head
DEDUP_WINDOW_S = 1.0  # ... is looked for only when the hypothesis starts within this of the last commit
TIME_SLACK_S = 0.1  # whisper_streaming: new words must start after the last committed end minus this
SENTENCE_ENDS = (".", "?", "!")
END_MARGIN = 50  # positions (1 s): end-of-text is refused while the output has not reached the last speech
NEW_TOKENS_PER_SECOND = 8  # of audio after the committed prefix: a cap on a continuation's tokens
PADDING_MODES = ("audio", "zeros")


# ----------------------------------------------------------------------------------------------------------------
# the alignment heads' cross-attention, read with forward hooks


_ACTIVE_SINK: contextvars.ContextVar[dict | None] = contextvars.ContextVar("whisper_alignment_sink", default=None)


class AlignmentProbe:
    """The cross-attention weights of a Whisper model's alignment heads, read with forward hooks on
    ``decoder.blocks[l].cross_attn`` (the query is recomputed from the hooked module's own input; the keys are its
    cached cross-attention keys).

    The hooks exist only inside :meth:`capture` and record only forward passes made by the capturing thread (the
    sink is found through a context variable), so concurrent decoding elsewhere with the same model is neither
    seen nor disturbed.
    """

    def __init__(self, model: "Whisper") -> None:
        heads = model.alignment_heads.nonzero().tolist()
        if not heads:
            raise ConfigError("the model has no alignment heads (model.set_alignment_heads)")
        self.model = model
        self.layers: dict[int, list[int]] = {}
        for layer, head in heads:
            self.layers.setdefault(int(layer), []).append(int(head))
        self.n_heads = len(heads)

    @contextmanager
    def capture(self) -> Iterator[dict[int, Tensor]]:
        """Within the block, ``sink[layer]`` is that layer's alignment heads' weights ``(B, h, L, S)`` in the last
        decoder forward (L: the tokens it consumed)."""
        sink: dict[int, Tensor] = {}
        handles = []
        for layer, heads in self.layers.items():
            module = self.model.decoder.blocks[layer].cross_attn
            handles.append(module.register_forward_hook(self._hook(sink, layer, heads), with_kwargs=True))
        token = _ACTIVE_SINK.set(sink)
        try:
            yield sink
        finally:
            _ACTIVE_SINK.reset(token)
            for handle in handles:
                handle.remove()

    @staticmethod
    def _hook(sink: dict, layer: int, heads: list[int]):
        index = torch.tensor(heads)

        def hook(module: Any, args: tuple, kwargs: dict, output: Any) -> None:
            if _ACTIVE_SINK.get() is not sink:
                return
            x, k = args[0], args[1]  # x (B, L, D) after cross_attn_ln; k (A, H, S, Dh), A = B (one row per audio)
            if kwargs.get("rows_per_kv", 1) != 1:
                raise RuntimeError("AlignmentProbe reads one decoder row per audio")
            q = module.split_heads(module.query(x))  # (B, H, L, Dh)
            idx = index.to(q.device)
            q, k = q.index_select(1, idx), k.index_select(1, idx)
            scores = (q @ k.transpose(-1, -2)).float() * (q.shape[-1] ** -0.5)
            sink[layer] = scores.softmax(dim=-1)  # (B, h, L, S)

        return hook

    def read(self, sink: dict[int, Tensor]) -> Tensor:
        """The alignment heads' weights in the last forward, ``(h, L, S)`` (batch row 0)."""
        return torch.cat([sink[layer][0] for layer in self.layers], dim=0)


class AttendedPosition:
    """SimulStreaming's reading of the alignment heads, one decoding step at a time: each head's weights are
    normalised per audio position over the steps so far (z-scores: a position every step attends to -- an
    attention sink -- stands out no more), median-filtered along positions (7), averaged over the heads; the
    step's most attended position is the argmax over the audio received. The per-position mean and variance are
    kept as running sums, so a step costs O(h S).
    """

    def __init__(self, n_positions: int) -> None:
        self.n_positions = max(1, n_positions)
        self.count = 0
        self.sum: Tensor | None = None
        self.sum_sq: Tensor | None = None

    def add(self, rows: Tensor) -> None:
        """rows ``(h, L, S)``: more steps' weights."""
        rows = rows[..., : self.n_positions].double()
        if self.sum is None:
            self.sum, self.sum_sq = rows.sum(dim=1), (rows * rows).sum(dim=1)
        else:
            self.sum, self.sum_sq = self.sum + rows.sum(dim=1), self.sum_sq + (rows * rows).sum(dim=1)
        self.count += rows.shape[1]

    def position(self, row: Tensor) -> int:
        """The most attended audio position of one step's weights ``(h, S)`` (added already)."""
        assert self.sum is not None and self.sum_sq is not None
        row = row[..., : self.n_positions].double()
        mean = self.sum / self.count
        std = (self.sum_sq / self.count - mean * mean).clamp_min(0).sqrt()
        z = (row - mean) / std.clamp_min(1e-8) if self.count > 1 else row
        return int(median_filter(z, MEDIAN_FILTER_WIDTH).mean(dim=0).argmax())


def median_filter(x: Tensor, width: int) -> Tensor:
    """Median over a sliding window of ``width`` (odd) along the last axis, edges reflected (openai-whisper's)."""
    pad = width // 2
    if x.shape[-1] <= pad:
        return x
    shape = x.shape
    padded = F.pad(x.reshape(-1, 1, shape[-1]), (pad, pad), mode="reflect")
    return padded.unfold(-1, width, 1).median(dim=-1).values.reshape(shape)


def token_start_positions(rows: Tensor, n_positions: int) -> np.ndarray:
    """openai-whisper's word-timestamp alignment of N decoding steps to audio positions.

    ``rows (N, h, S)``: the alignment heads' weights of each step; only the first ``n_positions`` (the audio) are
    used. Weights are normalised per head over the steps, median-filtered along positions, averaged over the
    heads, and aligned by DTW. Returns ``(N,)`` the first position DTW gives each step.
    """
    from ..metrics.tts import dtw

    n_positions = max(1, min(n_positions, rows.shape[-1]))
    weights = rows[..., :n_positions].float().transpose(0, 1)  # (h, N, M)
    if weights.shape[1] > 1:
        std, mean = torch.std_mean(weights, dim=1, keepdim=True, unbiased=False)
        weights = (weights - mean) / std.clamp_min(1e-8)
    matrix = median_filter(weights, MEDIAN_FILTER_WIDTH).mean(dim=0)  # (N, M)
    _, path = dtw((-matrix).cpu().double().numpy())
    starts = np.full(matrix.shape[0], -1, dtype=np.int64)
    for i, j in path:
        if starts[i] < 0:
            starts[i] = j
    return starts


# ----------------------------------------------------------------------------------------------------------------
# one window: encode, then decode greedily while watching the alignment heads


@dataclass
class Decoded:
    """One greedy decoding step's output (prompt and prefix excluded).

    ``tokens``: the new tokens (end-of-text excluded); ``positions``: for each, the most attended audio position
    (:class:`AttendedPosition`) at the step that predicted it; ``rows (n, h, S)``: those steps' alignment-head
    weights (with one more row, for the end-of-text step, when ``ended``); ``ended``: the model wrote
    end-of-text; ``stopped``: AlignAtt held the next token back.
    """

    tokens: list[int]
    positions: list[int]
    rows: Tensor | None
    ended: bool
    stopped: bool


class WhisperChunkDecoder:
    """The model work of a streaming step, shared by both policies (stateless).

    Args:
        model: a loaded :class:`Whisper` in eval mode (with its alignment heads set).
        tokenizer: its tokenizer.
        frontend: its :class:`WhisperLogMel` (made here when None).
        language, task: as in :class:`DecodingOptions`; None language: English on English-only models, detected
            once per utterance on multilingual ones.
        padding: "audio" (the window after the buffer is silence) or "zeros" (zeros in log-mel space).
        window_s: encode over ``max(buffer, window_s)`` seconds instead of the whole 30-s window (None). The
            encoder's cost grows faster than its length, so 10 s is about 3x cheaper on CPU; an approximation of
            the model (see ``TranscribeOptions.short_window_s``: tiny.en held its WER at 10 s, looped at 6 s).
    """

    def __init__(self, model: "Whisper", tokenizer: "WhisperTokenizer", frontend: WhisperLogMel | None = None, *,
                 language: str | None = None, task: str = "transcribe", padding: str = "audio",
                 window_s: float | None = None) -> None:
        tokenizer.sot_sequence(language=language, task=task)  # the model can do this language and task
        if padding not in PADDING_MODES:
            raise ConfigError(f"padding must be one of {PADDING_MODES}, got {padding!r}")
        if window_s is not None and (isinstance(window_s, bool) or not isinstance(window_s, (int, float))
                                     or not 1.0 <= window_s <= WINDOW_SECONDS):
            raise ConfigError(f"window_s must be None or a number of seconds in [1, {WINDOW_SECONDS:g}], "
                              f"got {window_s!r}")
        self.padding = padding
        self.window_frames = N_FRAMES if window_s is None else 2 * math.ceil(window_s * N_FRAMES / WINDOW_SECONDS / 2)
        self.model = model
        self.tokenizer = tokenizer
        self.frontend = frontend if frontend is not None else WhisperLogMel(n_mels=model.dims.n_mels).to(model.device)
        self.language = language
        self.task = task
        self.probe = AlignmentProbe(model)
        self.n_text_ctx = model.dims.n_text_ctx
        self.n_audio_ctx = model.dims.n_audio_ctx
        dtype = next(model.parameters()).dtype
        self.feature_dtype = dtype if dtype in (torch.float16, torch.bfloat16) else torch.float32
        self.suppress_timestamps = SuppressTokens(range(tokenizer.timestamp_begin, tokenizer.n_vocab))

    @torch.inference_mode()
    def encode(self, buffers: Sequence[np.ndarray]) -> list[Tensor]:
        """Each buffer (16 kHz float32, at most 30 s) -> its audio features ``(1, S, D)`` over one 30-s window
        (or ``window_s``)."""
        device = self.model.device
        if any(len(samples) > N_SAMPLES for samples in buffers):
            raise ValueError("a buffer longer than 30 s does not fit one Whisper window")
        longest = max((len(samples) // HOP_LENGTH for samples in buffers), default=0)
        frames = min(N_FRAMES, max(self.window_frames, longest + longest % 2))
        mels = []
        for samples in buffers:
            audio = torch.from_numpy(np.ascontiguousarray(samples))[None].to(device)
            if self.padding == "audio":  # the window's rest is silence, as in Whisper's training
                mel = self.frontend(audio, padding=frames * HOP_LENGTH - audio.shape[-1])[..., :frames]
            else:
                mel = self.frontend(audio)[..., :frames]
            mels.append(F.pad(mel, (0, frames - mel.shape[-1])).to(self.feature_dtype))
        batch = len(mels) if device.type == "cuda" else 1
        out: list[Tensor] = []
        for i in range(0, len(mels), batch):
            features = self.model.embed_audio(torch.cat(mels[i : i + batch]))
            out += [features[j : j + 1] for j in range(features.shape[0])]
        return out

    def detect(self, features: Tensor) -> str:
        """The language of one window (multilingual models), else the fixed or English language."""
        if self.language is not None or not self.tokenizer.is_multilingual:
            return self.language or "en"
        return detect_language(self.model, self.tokenizer, features)[0][0]

    def options(self, language: str, timestamps: bool, context: Sequence[int]) -> DecodingOptions:
        return DecodingOptions(task=self.task, language=language, without_timestamps=not timestamps,
                               prompt=tuple(context) if context else None)

    @torch.inference_mode()
    def greedy(self, features: Tensor, *, language: str, context: Sequence[int], prefix: Sequence[int] = (),
               timestamps: bool, max_new: int, audio_positions: int, stop_positions: int | None = None,
               end_after: int | None = None, reached: int = -1, keep_rows: bool = False) -> Decoded:
        """Greedy decoding of one window ``features (1, S, D)``.

        ``context``: committed text before the buffer (the ``<|startofprev|>`` prompt); ``prefix``: tokens forced
        after the start-of-transcript sequence; ``audio_positions``: encoder positions that hold received audio.
        ``stop_positions`` (AlignAtt): stop before a token (or end-of-text) whose step attends most to one of the
        last ``stop_positions`` audio positions (or beyond). ``end_after``: end-of-text is not allowed while the
        output has reached only earlier positions (the latest attended position of its tokens, ``reached`` for the
        prefix): there is speech it has not transcribed (after a forced prefix that ends a sentence, tiny.en tends
        to end although the next sentence has begun). ``keep_rows``: return
        each step's alignment-head weights (for word times).
        """
        tokenizer = self.tokenizer
        opts = self.options(language, timestamps, context)
        head = initial_tokens(tokenizer, opts, language, self.n_text_ctx)
        prompt = head + [int(t) for t in prefix]
        filters = logit_filters(tokenizer, opts, len(head), self.n_audio_ctx)
        if not timestamps:
            filters.append(self.suppress_timestamps)
        max_new = max(0, min(max_new, self.n_text_ctx - len(prompt)))
        device = features.device
        tokens = torch.tensor([prompt], dtype=torch.long, device=device)
        new: list[int] = []
        positions: list[int] = []
        rows: list[Tensor] = []
        ended = stopped = False
        limit = audio_positions - (stop_positions or 0)
        attended = AttendedPosition(audio_positions)
        first_row = head.index(tokenizer.sot)  # the prompt's context text attends to no audio: left out
        with self.probe.capture() as sink:
            logits, state = self.model.decoder(tokens, self.model.decoder.init_state(features))
            weights = self.probe.read(sink)[:, first_row:]
            for _ in range(max_new):
                attended.add(weights)
                row = weights[:, -1]  # (h, S): the step that predicts the next token
                position = attended.position(row)
                step_logits = logits[:, -1].float().clone()
                for f in filters:
                    f.apply(step_logits, tokens)
                if end_after is not None and reached < end_after:
                    step_logits[:, tokenizer.eot] = -math.inf
                token = int(step_logits.argmax(dim=-1))
                if stop_positions is not None and (token == tokenizer.eot or position >= limit):
                    stopped, ended = True, token == tokenizer.eot
                    break
                if keep_rows:
                    rows.append(row.float().cpu())
                if token == tokenizer.eot:
                    ended = True
                    break
                new.append(token)
                positions.append(position)
                reached = max(reached, position)
                tokens = torch.cat([tokens, tokens.new_tensor([[token]])], dim=1)
                logits, state = self.model.decoder(tokens[:, -1:], state)
                weights = self.probe.read(sink)
        return Decoded(new, positions, torch.stack(rows) if rows else None, ended, stopped)


# ----------------------------------------------------------------------------------------------------------------
# per-stream state


@dataclass
class Word:
    """A word of a hypothesis: its text, tokens, per-token times and start (stream seconds)."""

    text: str
    tokens: list[int]
    times: list[float]
    start: float

    @property
    def end(self) -> float:
        return self.times[-1]

    @property
    def key(self) -> str:
        """What LocalAgreement compares."""
        return self.text.strip()


@dataclass
class WhisperStreamState:
    """One stream (both policies).

    ``buffer``: the audio not yet cut away, from stream sample ``buffer_start``; ``received``: samples so far.
    ``tokens`` / ``times``: the open utterance's committed tokens and their times; the first ``context_upto`` of
    them were heard before the buffer (the prompt), the rest inside it. ``tentative``: LocalAgreement's latest
    uncommitted words. ``flushed``: the buffer is fully decoded and committed (nothing for ``end_utterance`` to
    do). ``language``: the utterance's language. The energy detector's ``noise_db`` floor, unfinished ``vad_tail``
    frame and ``last_speech`` time belong to the stream.
    """

    buffer: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    buffer_start: int = 0
    received: int = 0
    tokens: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    context_upto: int = 0
    tentative: list[Word] = field(default_factory=list)
    language: str | None = None
    flushed: bool = True
    last_speech: float | None = None
    noise_db: float | None = None
    vad_tail: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    decoded_to: int = 0  # ``received`` at the last decoding step
    withheld: bool = False  # AlignAtt: the last step held tokens back (its attention reached the audio's end)
    steps: int = 0  # decoding steps run (encoder passes)
    max_buffer_seen: int = 0  # samples: the longest buffer decoded

    @property
    def buffer_start_s(self) -> float:
        return self.buffer_start / SAMPLE_RATE

    @property
    def buffer_seconds(self) -> float:
        return len(self.buffer) / SAMPLE_RATE

    def cut(self, time_s: float) -> None:
        """Drop the buffer's audio before stream second ``time_s``."""
        drop = min(len(self.buffer), max(0, int(round(time_s * SAMPLE_RATE)) - self.buffer_start))
        self.buffer = self.buffer[drop:]
        self.buffer_start += drop

    def commit(self, words: Sequence[Word]) -> None:
        for word in words:
            self.tokens += word.tokens
            self.times += word.times


def frame_db(frames: np.ndarray) -> np.ndarray:
    """Energy (dB re full scale) of each row of ``frames (n, VAD_FRAME)``."""
    power = np.mean(frames.astype(np.float64) ** 2, axis=1)
    return 10.0 * np.log10(np.maximum(power, 10 ** (VAD_FLOOR_DB / 10)))


def _seconds(name: str, value: Any, *, zero: bool = False) -> float:
    """A checked number of seconds (> 0, or >= 0 with ``zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (value == 0 and not zero):
        raise ConfigError(f"{name} must be a number of seconds {'>=' if zero else '>'} 0, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------------------------------------------
# the engines


class _WhisperStreamEngine:
    """What both policies share: audio bookkeeping, the energy detector, batching, buffer cuts, utterance ends."""

    sample_rate = SAMPLE_RATE

    def __init__(self, decoder: WhisperChunkDecoder, *, chunk_s: float, max_buffer_s: float,
                 hard_buffer_s: float | None, keep_s: float, max_context_tokens: int,
                 vad_threshold_db: float | None) -> None:
        chunk_s, max_buffer_s = _seconds("chunk_s", chunk_s), _seconds("max_buffer_s", max_buffer_s)
        keep_s = _seconds("keep_s", keep_s, zero=True)
        if hard_buffer_s is None:
            hard_buffer_s = min(WINDOW_SECONDS - chunk_s, max(max_buffer_s + 10.0, 2 * max_buffer_s))
        if not (keep_s < max_buffer_s and chunk_s < max_buffer_s <= hard_buffer_s <= WINDOW_SECONDS - chunk_s):
            raise ConfigError(
                f"need keep_s < max_buffer_s, chunk_s < max_buffer_s <= hard_buffer_s <= {WINDOW_SECONDS:g} - chunk_s "
                f"(one Whisper window), got chunk_s={chunk_s:g}, keep_s={keep_s:g}, max_buffer_s={max_buffer_s:g}, "
                f"hard_buffer_s={hard_buffer_s:g}")
        if isinstance(max_context_tokens, bool) or not isinstance(max_context_tokens, int) \
                or not 0 <= max_context_tokens < decoder.n_text_ctx // 2:
            raise ConfigError(f"max_context_tokens must be an int in [0, {decoder.n_text_ctx // 2}), "
                              f"got {max_context_tokens!r}")
        if vad_threshold_db is not None and (isinstance(vad_threshold_db, bool)
                                             or not isinstance(vad_threshold_db, (int, float))
                                             or not VAD_FLOOR_DB < vad_threshold_db < 0):
            raise ConfigError(f"vad_threshold_db must be None or a level in ({VAD_FLOOR_DB:g}, 0) dB, "
                              f"got {vad_threshold_db!r}")
        self.decoder = decoder
        self.tokenizer = decoder.tokenizer
        self.chunk_s = chunk_s
        self.chunk_samples = int(round(chunk_s * SAMPLE_RATE))
        self.max_buffer_s = max_buffer_s
        self.hard_buffer_s = float(hard_buffer_s)
        self.keep_s = keep_s
        self.max_context_tokens = max_context_tokens
        self.vad_threshold_db = vad_threshold_db

    # -- StreamEngine --------------------------------------------------------------------------------------------

    def new_state(self) -> WhisperStreamState:
        return WhisperStreamState()

    def text(self, tokens: Sequence[int]) -> str:
        return self.tokenizer.decode([t for t in tokens if t < self.tokenizer.eot]).strip()

    def decode(self, states: Sequence[WhisperStreamState], chunks: Sequence[np.ndarray], final: Sequence[bool]
               ) -> list[Hypothesis]:
        if not len(states) == len(chunks) == len(final):
            raise ValueError(f"decode: {len(states)} states, {len(chunks)} chunks, {len(final)} final flags")
        work = []
        for i, (state, chunk, last) in enumerate(zip(states, chunks, final)):
            chunk = as_samples(chunk)
            if len(chunk) > self.chunk_samples or (len(chunk) < self.chunk_samples and not last):
                raise ValueError(f"decode: a chunk of {len(chunk)} samples; the engine takes {self.chunk_samples} "
                                 "(fewer only with final=True)")
            self._accept(state, chunk)
            if self._wants_step(state, last):
                work.append(i)
        for i, features in zip(work, self.decoder.encode([states[i].buffer for i in work])):
            self._run(states[i], features, final[i])
        return [self._hypothesis(s) for s in states]

    def end_utterance(self, state: WhisperStreamState) -> Hypothesis:
        if not state.flushed:
            if self._settled_without_decoding(state):
                self._flush_without_audio(state)
            elif self._wants_step(state, True):
                self._run(state, self.decoder.encode([state.buffer])[0], True)
        hypothesis = self._hypothesis(state)
        # a new utterance keeps nothing of this one: no audio, no text, no prompt
        state.buffer_start, state.buffer = state.received, np.zeros(0, np.float32)
        state.tokens, state.times, state.tentative = [], [], []
        state.context_upto, state.language, state.flushed, state.withheld = 0, None, True, False
        return hypothesis

    # -- audio -----------------------------------------------------------------------------------------------------

    def _accept(self, state: WhisperStreamState, chunk: np.ndarray) -> None:
        """Append ``chunk`` to the buffer; run the energy detector over its complete frames."""
        if len(chunk) == 0:
            return
        start = state.received
        state.buffer = np.concatenate([state.buffer, chunk]) if len(state.buffer) else chunk
        state.received += len(chunk)
        state.flushed = False
        tail = np.concatenate([state.vad_tail, chunk])
        n = len(tail) // VAD_FRAME
        state.vad_tail = tail[n * VAD_FRAME :]
        if not n:
            return
        first = start - (len(tail) - len(chunk))  # stream sample of tail[0]
        if self.vad_threshold_db is None:
            state.last_speech = (first + n * VAD_FRAME) / SAMPLE_RATE
            return
        levels = frame_db(tail[: n * VAD_FRAME].reshape(n, VAD_FRAME))
        floor = levels[0] if state.noise_db is None else state.noise_db
        for k, level in enumerate(levels):
            floor = min(level, floor + VAD_FLOOR_RISE_DB)
            if level > max(self.vad_threshold_db, floor + VAD_NOISE_MARGIN_DB):
                state.last_speech = (first + (k + 1) * VAD_FRAME) / SAMPLE_RATE
        state.noise_db = float(floor)

    def _wants_step(self, state: WhisperStreamState, final: bool) -> bool:
        """Whether the buffer needs a decoding step now. A buffer without speech, or whose speech a step has
        already read to its end with ``SETTLE_S`` of silence after it leaving nothing pending, is cut to its last
        0.5 s instead (everything committed becomes the prompt)."""
        if len(state.buffer) < MIN_DECODE_SAMPLES:
            if final:
                self._flush_without_audio(state)
            return False
        speech = state.last_speech is not None and state.last_speech > state.buffer_start_s
        settled = (speech and not state.withheld and state.last_speech is not None
                   and state.decoded_to / SAMPLE_RATE >= state.last_speech + SETTLE_S)
        if (not speech or settled) and not state.tentative:
            state.context_upto = len(state.tokens)
            state.cut((state.buffer_start + len(state.buffer) - SILENCE_KEEP_SAMPLES) / SAMPLE_RATE)
            state.flushed = True
            return False
        return True

    def _run(self, state: WhisperStreamState, features: Tensor, final: bool) -> None:
        if state.language is None:
            state.language = self.decoder.detect(features)
        state.steps += 1
        state.decoded_to = state.received
        state.max_buffer_seen = max(state.max_buffer_seen, len(state.buffer))
        self._step(state, features, final)
        if final:
            state.flushed = True
        elif state.buffer_seconds > self.hard_buffer_s:
            # no place to cut (nothing committed, one endless sentence): settle the whole buffer now
            self._step(state, features, True)
            state.context_upto = len(state.tokens)
            state.cut((state.buffer_start + len(state.buffer)) / SAMPLE_RATE)
            state.flushed = True

    # -- helpers for the policies ------------------------------------------------------------------------------

    def _hypothesis(self, state: WhisperStreamState) -> Hypothesis:
        tokens = state.tokens + [t for w in state.tentative for t in w.tokens]
        times = state.times + [t for w in state.tentative for t in w.times]
        return Hypothesis(tokens=tokens, stable=len(state.tokens), times=times, last_speech=state.last_speech)

    def _flush_without_audio(self, state: WhisperStreamState) -> None:
        state.commit(state.tentative)
        state.tentative = []
        state.flushed = True

    def _context(self, state: WhisperStreamState) -> list[int]:
        """Committed tokens heard before the buffer: the prompt."""
        if not self.max_context_tokens:
            return []
        return state.tokens[: state.context_upto][-self.max_context_tokens :]

    def _max_new(self, state: WhisperStreamState) -> int:
        return int(MAX_TOKENS_PER_SECOND * state.buffer_seconds) + 16

    def _audio_positions(self, state: WhisperStreamState) -> int:
        return -(-len(state.buffer) // N_SAMPLES_PER_TOKEN)

    def _greedy_continuation(self, state: WhisperStreamState, features: Tensor, stop_positions: int | None,
                             final: bool) -> tuple[Decoded, list[float]]:
        """Decode after the committed tokens inside the buffer (forced as the prefix); the new tokens' times:
        the end of each one's attended position, never decreasing, never past the audio received.
        End-of-text waits until the output has reached ``END_MARGIN`` positions before the buffer's last speech
        (energy detector), in final steps too."""
        end_after = None
        if self.vad_threshold_db is not None and state.last_speech is not None:
            end_after = int((state.last_speech - state.buffer_start_s) / POSITION_SECONDS) - END_MARGIN
        prefix = state.tokens[state.context_upto :]
        reached = int((state.times[-1] - state.buffer_start_s) / POSITION_SECONDS) - 1 if prefix else -1
        after = state.buffer_seconds - (reached + 1) * POSITION_SECONDS  # audio after the prefix
        out = self.decoder.greedy(features, language=state.language or "en", context=self._context(state),
                                  prefix=prefix, timestamps=False, max_new=int(NEW_TOKENS_PER_SECOND * after) + 10,
                                  audio_positions=self._audio_positions(state), stop_positions=stop_positions,
                                  end_after=end_after, reached=reached)
        offset, now = state.buffer_start_s, state.received / SAMPLE_RATE
        previous, times = (state.times[-1] if state.times else offset), []
        for position in out.positions:
            previous = min(now, max(previous, offset + (position + 1) * POSITION_SECONDS))
            times.append(previous)
        return out, times

    def _words(self, tokens: Sequence[int], times: Sequence[float]) -> list[Word]:
        words, k = [], 0
        for text, group in zip(*self.tokenizer.split_to_word_tokens(list(tokens))):
            words.append(Word(text, list(group), list(times[k : k + len(group)]), times[k]))
            k += len(group)
        return words

    def _cut_at_word(self, state: WhisperStreamState) -> None:
        """Once the buffer is longer than ``max_buffer_s``: cut it at a boundary between two committed words
        inside it that leaves at least ``keep_s`` of committed audio in the buffer (the latest sentence end among
        them, else the latest boundary), halfway between the times of the tokens on either side. The tokens before
        the cut become the prompt."""
        if state.buffer_seconds <= self.max_buffer_s or len(state.tokens) <= state.context_upto:
            return
        first = state.context_upto
        _, groups = self.tokenizer.split_to_word_tokens(state.tokens[first:])
        latest = state.times[-1] - self.keep_s
        candidates, sentence, b = [], [], first
        for group in groups[:-1]:
            b += len(group)
            cut = 0.5 * (state.times[b - 1] + state.times[b]) - POSITION_SECONDS
            if state.buffer_start_s < cut <= latest:
                candidates.append((b, cut))
                if self.tokenizer.decode(state.tokens[b - 1 : b]).strip().endswith(SENTENCE_ENDS):
                    sentence.append((b, cut))
        if candidates:
            b, cut = (sentence or candidates)[-1]
            state.cut(cut)
            state.context_upto = b

    # policy
    def _step(self, state: WhisperStreamState, features: Tensor, final: bool) -> None:
        raise NotImplementedError

    def _settled_without_decoding(self, state: WhisperStreamState) -> bool:
        """Whether the last step's output, committed whole, is what a final step would give."""
        raise NotImplementedError


class LocalAgreementWhisper(_WhisperStreamEngine):
    """LocalAgreement-2 streaming Whisper (see the module docstring).

    Args:
        decoder: the shared :class:`WhisperChunkDecoder`.
        chunk_s: seconds of audio per step (whisper_streaming's ``min_chunk_size``; 1.0).
        mode: "prefix" (default): the committed words inside the buffer are forced as the decoder prefix and only
            the rest is decoded and compared; "prompt": whisper_streaming's own way -- the whole buffer is decoded
            afresh with timestamps and the words before the last committed end are dropped by their times
            (DTW over the alignment heads), the buffer cut at segment ends.
        max_buffer_s: cut the buffer once it is longer (whisper_streaming's 15 s).
        keep_s: committed audio left in the buffer by a cut (0 in whisper_streaming; tiny.en hallucinates on the
            short buffers that leaves).
        hard_buffer_s: a buffer still longer after a step (nowhere to cut) is committed whole and emptied;
            default ``min(30 - chunk_s, max(max_buffer_s + 10, 2 * max_buffer_s))``.
        max_context_tokens: committed tokens before the buffer given as the prompt (whisper_streaming: 200
            characters, about 45 tokens).
        vad_threshold_db: the energy detector's minimum speech level (None: every frame is speech).
    """

    MODES = ("prefix", "prompt")

    def __init__(self, decoder: WhisperChunkDecoder, *, chunk_s: float = 1.0, mode: str = "prefix",
                 max_buffer_s: float = 15.0, keep_s: float = 4.0, hard_buffer_s: float | None = None,
                 max_context_tokens: int = 64, vad_threshold_db: float | None = -50.0) -> None:
        super().__init__(decoder, chunk_s=chunk_s, max_buffer_s=max_buffer_s, hard_buffer_s=hard_buffer_s,
                         keep_s=keep_s, max_context_tokens=max_context_tokens, vad_threshold_db=vad_threshold_db)
        if mode not in self.MODES:
            raise ConfigError(f"mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode

    def _settled_without_decoding(self, state: WhisperStreamState) -> bool:
        return state.decoded_to == state.received  # the last hypothesis read all the audio (whisper_streaming)

    def _step(self, state: WhisperStreamState, features: Tensor, final: bool) -> None:
        if self.mode == "prefix":
            out, times = self._greedy_continuation(state, features, None, final)
            new, segment_ends = self._words(out.tokens, times), []
        else:
            new, segment_ends = self._fresh_words(state, features)
        looping = compression_ratio(self.text([t for w in new for t in w.tokens])) > MAX_COMPRESSION_RATIO
        if final:  # all of it, or the last good guess when this reading is a repetition loop
            state.commit(state.tentative if looping else new)
            state.tentative = []
            return
        if looping:  # not committed, and not what the next step is compared with
            return
        agreed = 0
        while agreed < min(len(new), len(state.tentative)) and new[agreed].key == state.tentative[agreed].key:
            agreed += 1
        state.commit(new[:agreed])
        state.tentative = new[agreed:]
        if self.mode == "prefix":
            self._cut_at_word(state)
        elif state.buffer_seconds > self.max_buffer_s and state.tokens:
            # whisper_streaming's segment trimming: a segment end (not the last segment's) before the last
            # committed end, here also keep_s before it
            latest = state.times[-1] - self.keep_s
            cut = next((e for e in reversed(segment_ends[:-1]) if state.buffer_start_s < e <= latest), None)
            if cut is not None:
                state.cut(cut)
                state.context_upto = sum(1 for t in state.times if t <= cut + 1e-6)

    def _fresh_words(self, state: WhisperStreamState, features: Tensor) -> tuple[list[Word], list[float]]:
        """whisper_streaming's step: the whole buffer decoded with timestamps, prompted with the committed text
        before it; the words that start after the last committed end (less 0.1 s), without a repeat of the last
        1-5 committed words at their head; and the segment ends."""
        positions = self._audio_positions(state)
        out = self.decoder.greedy(features, language=state.language or "en", context=self._context(state),
                                  timestamps=True, max_new=self._max_new(state), audio_positions=positions,
                                  keep_rows=True)
        words, segment_ends = self._timed_words(out, state.buffer_start_s, positions)
        last_end = state.times[-1] if state.times else -math.inf
        new = [w for w in words if w.start > last_end - TIME_SLACK_S]
        if new and state.tokens and abs(new[0].start - last_end) < DEDUP_WINDOW_S:
            committed = [w.key for w in self._words(state.tokens[-40:], state.times[-40:])][1:]  # [0]: maybe cut
            for n in range(min(DEDUP_MAX_WORDS, len(committed), len(new)), 0, -1):
                if committed[-n:] == [w.key for w in new[:n]]:
                    new = new[n:]
                    break
        for word in new:  # times never go back before the last commit
            word.start, word.times = max(word.start, last_end), [max(t, last_end) for t in word.times]
        return new, segment_ends

    def _timed_words(self, out: Decoded, offset: float, positions: int) -> tuple[list[Word], list[float]]:
        """Cut a timestamped output into words with DTW times (stream seconds), each kept inside its segment's
        timestamps; and the segment ends."""
        tb = self.tokenizer.timestamp_begin
        text_index = [i for i, t in enumerate(out.tokens) if t < tb]
        if not text_index or out.rows is None:
            return [], []
        rows = out.rows[text_index + ([len(out.tokens)] if out.ended else [])]
        starts = token_start_positions(rows, positions)
        bounds = list(starts[1:]) + ([starts[-1] + 1] if not out.ended else [])
        token_start = {i: offset + int(s) * POSITION_SECONDS for i, s in zip(text_index, starts)}
        token_end = {i: offset + min(int(b), positions) * POSITION_SECONDS for i, b in zip(text_index, bounds)}
        words: list[Word] = []
        segment_ends: list[float] = []
        seg_start, seg_tokens = offset, []

        def close(seg_end: float) -> None:
            k = 0
            for text, group in zip(*self.tokenizer.split_to_word_tokens([out.tokens[i] for i in seg_tokens])):
                idx = seg_tokens[k : k + len(group)]
                k += len(group)
                times = [min(max(token_end[i], seg_start), seg_end) for i in idx]
                start = min(max(token_start[idx[0]], seg_start), times[-1])
                words.append(Word(text, list(group), times, start))

        for i, token in enumerate(out.tokens):
            if token >= tb:
                time = offset + (token - tb) * POSITION_SECONDS
                if seg_tokens:
                    close(time)
                    segment_ends.append(time)
                    seg_tokens = []
                seg_start = time
            else:
                seg_tokens.append(i)
        if seg_tokens:
            close(math.inf)
        previous = -math.inf
        for word in words:  # never decreasing
            word.start = max(word.start, previous)
            word.times = [max(t, word.start) for t in word.times]
            previous = word.end
        return words, segment_ends


class AlignAttWhisper(_WhisperStreamEngine):
    """AlignAtt streaming Whisper (see the module docstring).

    Args:
        decoder: the shared :class:`WhisperChunkDecoder`.
        chunk_s: seconds of audio per step (1.0).
        frame_threshold: stop before a token whose most attended position is one of the last ``frame_threshold``
            encoder positions (20 ms each) of the audio received: SimulStreaming's default, 25 (0.5 s).
        max_buffer_s: cut the buffer at a committed word boundary once it is longer.
        keep_s: committed audio left in the buffer by a cut (it stays as the decoder prefix).
        hard_buffer_s: a buffer still longer after a step is decoded to its end, committed whole and emptied.
        max_context_tokens: committed tokens before the buffer given as the prompt.
        vad_threshold_db: the energy detector's minimum speech level (None: every frame is speech). With a
            detector, end-of-text is not accepted while the model attends well before the buffer's last speech
            (the model tends to end after a complete sentence while the next has only begun).
    """

    def __init__(self, decoder: WhisperChunkDecoder, *, chunk_s: float = 1.0, frame_threshold: int = 25,
                 max_buffer_s: float = 15.0, keep_s: float = 4.0, hard_buffer_s: float | None = None,
                 max_context_tokens: int = 64, vad_threshold_db: float | None = -50.0) -> None:
        super().__init__(decoder, chunk_s=chunk_s, max_buffer_s=max_buffer_s, hard_buffer_s=hard_buffer_s,
                         keep_s=keep_s, max_context_tokens=max_context_tokens, vad_threshold_db=vad_threshold_db)
        if isinstance(frame_threshold, bool) or not isinstance(frame_threshold, int) or frame_threshold < 1:
            raise ConfigError(f"frame_threshold must be an int >= 1 (encoder positions of 20 ms), "
                              f"got {frame_threshold!r}")
        self.frame_threshold = frame_threshold

    def _settled_without_decoding(self, state: WhisperStreamState) -> bool:
        # greedy decoding is deterministic: a final step over the same audio repeats the last one up to where it
        # stopped, and ends there too when it stopped at end-of-text
        return state.decoded_to == state.received and not state.withheld

    def _step(self, state: WhisperStreamState, features: Tensor, final: bool) -> None:
        out, times = self._greedy_continuation(state, features, None if final else self.frame_threshold, final)
        state.withheld = out.stopped and not out.ended
        state.tokens += out.tokens
        state.times += times
        if not final:
            self._cut_at_word(state)


POLICIES: dict[str, type[_WhisperStreamEngine]] = {
    "local-agreement": LocalAgreementWhisper,
    "alignatt": AlignAttWhisper,
}


def whisper_stream_engine(model: "Whisper", tokenizer: "WhisperTokenizer", frontend: WhisperLogMel | None = None, *,
                          policy: str = "local-agreement", language: str | None = None, task: str = "transcribe",
                          padding: str = "audio", window_s: float | None = None,
                          **options: Any) -> _WhisperStreamEngine:
    """A streaming engine for a loaded Whisper model: ``policy`` "local-agreement" or "alignatt"; ``options`` are
    the policy class's keyword arguments (``chunk_s``, ``max_buffer_s``, ``frame_threshold``, ...); ``language``,
    ``task``, ``padding``, ``window_s``: :class:`WhisperChunkDecoder`'s."""
    if policy not in POLICIES:
        raise ConfigError(f"unknown streaming policy {policy!r}; choose from {', '.join(POLICIES)}")
    cls = POLICIES[policy]
    decoder = WhisperChunkDecoder(model, tokenizer, frontend, language=language, task=task, padding=padding,
                                  window_s=window_s)
    try:
        return cls(decoder, **options)
    except TypeError as e:  # an option the policy does not take
        raise ConfigError(f"{policy}: {e}") from None
