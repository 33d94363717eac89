"""Long-form Whisper transcription: 30-second windows advanced by predicted timestamps.

For each input: decode a window (with previous-text conditioning and temperature fallback), cut the output into
segments at timestamp pairs, move the window to the last complete segment, repeat. Many inputs run in lockstep so
the encoder and decoder see batches; inputs whose windows share a prompt decode together. Optional Silero VAD
drops silence first and maps timestamps back to the original audio.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np
import torch

from ..audio.constants import FRAMES_PER_SECOND, HOP_LENGTH, N_FRAMES, N_SAMPLES, SAMPLE_RATE
from ..audio.features import SILENCE_LOG10, STFT_CONTEXT, normalize_log_mel
from ..decoding.options import DecodingOptions, DecodingResult
from ..errors import AudioError, ConfigError
from ..progress import progress_bar
from .whisper_decoding import decode, detect_language

if TYPE_CHECKING:
    from ..text.tokenizers.whisper import WhisperTokenizer
    from .whisper import Whisper

DEFAULT_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
PADDING_MODES = ("audio", "zeros")


@dataclass(frozen=True)
class TranscribeOptions:
    """How to run the long-form loop. `decoding` holds the per-window options (beam size, language, task...)."""

    decoding: DecodingOptions = field(default_factory=DecodingOptions)
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES  # fallback ladder; the first is tried first
    compression_ratio_threshold: float | None = 2.4  # above: too repetitive, retry hotter
    logprob_threshold: float | None = -1.0  # below: too unsure, retry hotter
    no_speech_threshold: float | None = 0.6  # above (and unsure): the window is silence, skip it
    condition_on_previous_text: bool = True
    initial_prompt: str | None = None
    vad: bool = False
    vad_threshold: float = 0.5
    vad_min_silence_ms: int = 500
    vad_speech_pad_ms: int = 200
    batch_size: int = 4  # windows decoded together; 4 is the measured CPU sweet spot (speed vs memory)
    # encode a window that holds less than 30 s of audio over max(its audio, short_window_s) seconds instead of
    # the full 30 s (None: always 30 s, as the references do). The encoder's attention is quadratic in its length,
    # so 2-4 s clips encode ~5x faster at 10 s. Measured on 48 synthetic clips (bench/, all-int8 model): at 10 s
    # WER held (22.7 % vs 28.5 % at 30 s); at 8 s it rose to 31 %, at 6 s tiny.en looped (50 %).
    short_window_s: float | None = None
    # how a window shorter than 30 s is filled: "zeros" pads the normalised log-mel with zeros (what openai-whisper
    # and faster-whisper do today: identical transcripts), "audio" pads the waveform with silence (Whisper's
    # original 2022 recipe; measured better with beam search on our synthetic clips, see bench/)
    padding: str = "zeros"
    seed: int = 0  # for sampling at temperature > 0
    # each segment's words with their times (openai-whisper's cross-attention DTW, asr/whisper_words.py); as in
    # openai-whisper, a window then ends at its last word's end rather than its last timestamp token
    word_timestamps: bool = False

    def __post_init__(self) -> None:
        if not self.temperatures:
            raise ConfigError("temperatures must hold at least one value")
        if not all(0 <= t < float("inf") for t in self.temperatures):
            raise ConfigError(f"temperatures must be finite and >= 0, got {self.temperatures}")
        if self.padding not in PADDING_MODES:
            raise ConfigError(f"padding must be one of {PADDING_MODES}, got {self.padding!r}")
        if self.short_window_s is not None and not 0 < self.short_window_s <= N_SAMPLES / SAMPLE_RATE:
            raise ConfigError(f"short_window_s must be in (0, 30], got {self.short_window_s}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass
class Word:
    """A word of a segment and its time in seconds. ``word`` is spelled as the model wrote it: Whisper's words
    keep their leading space (openai-whisper's), so joining a segment's words gives its text; ``probability``:
    the mean probability of its tokens (Whisper), or of its frames in the forced alignment (CTC)."""

    word: str
    start: float
    end: float
    probability: float


@dataclass
class Segment:
    start: float
    end: float
    text: str
    tokens: list[int]
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float
    words: list[Word] | None = None  # None: not asked for (TranscribeOptions.word_timestamps)


@dataclass
class Transcript:
    text: str
    segments: list[Segment]
    language: str | None
    duration: float
    language_probs: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """As a plain dict; ``language_probs`` and each segment's ``words`` are left out where None."""
        out = asdict(self)
        if out["language_probs"] is None:
            out.pop("language_probs")
        for segment in out["segments"]:
            if segment["words"] is None:
                segment.pop("words")
        return out


ERROR_MODES = ("raise", "return")


def load_inputs(audios: Sequence[Any], load: Callable[[Any], Any], errors: str,
                placeholder: Callable[[], Any]) -> tuple[list[Any], dict[int, AudioError]]:
    """``load`` every input. With ``errors="return"`` an input whose loading raises AudioError is recorded (and a
    ``placeholder()`` stands in its place) instead of stopping the batch; ``"raise"`` lets the error through.
    Returns (loaded, {index: error})."""
    if errors not in ERROR_MODES:
        raise ConfigError(f"errors must be one of {ERROR_MODES}, got {errors!r}")
    loaded, failed = [], {}
    for index, audio in enumerate(audios):
        try:
            loaded.append(load(audio))
        except AudioError as e:
            if errors == "raise":
                raise
            failed[index] = e
            loaded.append(placeholder())
    return loaded, failed


class AudioStream:
    """16 kHz samples decoded on demand, so a long file is never held whole.

    `open_blocks()` returns a fresh iterator of sample blocks; it is called once for the log-mel peak pre-pass
    and once for transcription. Only samples from STFT_CONTEXT before the last read position on are kept.
    """

    def __init__(self, open_blocks: Callable[[], Iterable[np.ndarray]], duration: float | None = None) -> None:
        self.open_blocks = open_blocks
        self._blocks = iter(open_blocks())
        self._buffer = np.zeros(0, dtype=np.float32)
        self._start = 0  # absolute sample index of _buffer[0]
        self.exhausted = False
        self.duration = duration  # expected (from the header) until exhausted, then exact

    @classmethod
    def from_array(cls, audio: np.ndarray) -> "AudioStream":
        return cls(lambda: [audio], duration=len(audio) / SAMPLE_RATE)

    def read(self, start: int, n: int) -> np.ndarray:
        """Samples [start, start + n), fewer only at the end of the audio. Drops what lies more than
        STFT_CONTEXT samples before `start`."""
        if start < self._start:
            raise ValueError(f"cannot read sample {start}: the stream has moved past it (at {self._start})")
        while not self.exhausted and self._start + len(self._buffer) < start + n:
            try:
                self._buffer = np.concatenate([self._buffer, next(self._blocks)])
            except StopIteration:
                self.exhausted = True
                self.duration = (self._start + len(self._buffer)) / SAMPLE_RATE
        drop = max(0, start - STFT_CONTEXT - self._start)  # keep the STFT context before `start`
        self._buffer, self._start = self._buffer[drop:], self._start + drop
        return self._buffer[start - self._start : start - self._start + n]

    def read_with_context(self, start: int, n: int) -> np.ndarray:
        """Samples [start - STFT_CONTEXT, start + n + STFT_CONTEXT) as Whisper's whole-signal STFT sees them:
        reflected at the start of the audio, zeros past its end. Always n + 2 * STFT_CONTEXT long."""
        out = np.zeros(n + 2 * STFT_CONTEXT, dtype=np.float32)
        first = start - STFT_CONTEXT  # signal index of out[0]; negative indices mirror the signal at 0
        chunk = self.read(max(first, 0), n + 2 * STFT_CONTEXT)
        offset = max(-first, 0)
        real = chunk[: len(out) - offset]
        out[offset : offset + len(real)] = real
        if offset:  # torch.stft(center=True) reflects: sample -i is sample i
            mirrored = chunk[1 : offset + 1][::-1]
            out[offset - len(mirrored) : offset] = mirrored
        return out


def log_mel_peak(stream: AudioStream, frontend: Any, device: torch.device) -> float:
    """The maximum log10 mel value over a whole stream (a fresh pass over `stream.open_blocks()`), which sets
    Whisper's dynamic-range floor: openai-whisper computes the log-mel of the whole file at once."""
    fresh = AudioStream(stream.open_blocks)
    peak, start = SILENCE_LOG10, 0
    while start == 0 or len(fresh.read(start - STFT_CONTEXT, 1)) > 0:  # frames that still read audio
        chunk = fresh.read_with_context(start, N_SAMPLES)
        log_spec = frontend.log10_frames(torch.from_numpy(chunk)[None].to(device))
        peak = max(peak, float(log_spec.max()))
        start += N_SAMPLES
    return peak


class _FileState:
    """Where one input's long-form loop stands."""

    def __init__(self, audio: AudioStream, prompt_tokens: list[int], time_map: Callable[..., float] | None,
                 duration: float | None, peak: float) -> None:
        self.audio = audio
        self.duration = duration  # of the original input (before VAD removed silence); None: the stream's
        self.peak = peak  # the whole input's log10 mel maximum
        self.seek = 0  # in mel frames
        self.all_tokens = list(prompt_tokens)
        self.prompt_reset_since = 0
        self.segments: list[Segment] = []
        self.language: str | None = None
        self.language_probs: dict[str, float] | None = None
        self.time_map = time_map
        self.last_speech = 0.0  # seconds: the end of the last word so far (word timestamps)

    @property
    def done(self) -> bool:
        """No whole mel frame is left after the current position."""
        return len(self.audio.read(self.seek * HOP_LENGTH, HOP_LENGTH)) < HOP_LENGTH

    def window(self) -> tuple[np.ndarray, int]:
        """The current 30-s window's samples with STFT context, and how many of its mel frames hold audio."""
        start = self.seek * HOP_LENGTH
        content = min(N_FRAMES, len(self.audio.read(start, N_SAMPLES)) // HOP_LENGTH)
        return self.audio.read_with_context(start, N_SAMPLES), content


def _too_repetitive(r: DecodingResult, o: TranscribeOptions) -> bool:
    return o.compression_ratio_threshold is not None and r.compression_ratio > o.compression_ratio_threshold


def _silent(attempts: list[DecodingResult], o: TranscribeOptions) -> bool:
    """The window is silence: the model says so (no-speech probability above the threshold) and no attempt so far
    was sure of its text. openai-whisper and faster-whisper ask only the latest attempt, so a hot sample, improbable
    by construction, turns a window of real speech into "silence" after its temperature-0 reading was rejected as
    too repetitive (one sentence said over and over); asking every attempt keeps that reading in play."""
    return (o.no_speech_threshold is not None and o.logprob_threshold is not None
            and attempts[-1].no_speech_prob > o.no_speech_threshold and all(_unsure(r, o) for r in attempts))


def _unsure(r: DecodingResult, o: TranscribeOptions) -> bool:
    return o.logprob_threshold is not None and r.avg_logprob < o.logprob_threshold


def _best_attempt(attempts: list[DecodingResult], o: TranscribeOptions) -> DecodingResult:
    """When every temperature failed, which attempt to keep. If the model was sure of some (average log-prob above
    the threshold: they failed only as too repetitive), the coolest of them: the beam search's reading, not a hot
    sample that loops on a fragment with confident tokens. Otherwise faster-whisper's choice: the most probable of
    those not too repetitive (of all when none is).

    openai-whisper keeps the hottest sample and faster-whisper ranks every attempt by log-prob; on speech that
    really repeats (one sentence said over and over) that kept a temperature-1.0 sample the model itself finds
    improbable ("The merge Canus Lead on the smooth plank") or a hot loop ("The most smooth planks" x 20), while the
    beam search at temperature 0 had read it right (measured in bench/asr_whisper_repeated.py). The kept attempt
    carries the last temperature tried, so the prompt is reset after it as after any hot attempt (as faster-whisper
    does)."""
    sure = [r for r in attempts if not _unsure(r, o)]
    if sure:
        best = min(sure, key=lambda r: (_too_repetitive(r, o), r.temperature))
    else:
        best = max([r for r in attempts if not _too_repetitive(r, o)] or attempts, key=lambda r: r.avg_logprob)
    return replace(best, temperature=attempts[-1].temperature)


def _options_at(base: DecodingOptions, temperature: float) -> DecodingOptions:
    if temperature > 0:
        return replace(base, temperature=temperature, beam_size=None, patience=None)
    return replace(base, temperature=0.0, best_of=None)


def decode_with_fallback(
    model: "Whisper",
    tokenizer: "WhisperTokenizer",
    features: torch.Tensor,
    options: Sequence[DecodingOptions],
    topts: TranscribeOptions,
    generator: torch.Generator | None = None,
) -> list[DecodingResult]:
    """Decode rows of `features` (B, S, D), row i with options[i]; retry rows at hotter temperatures as needed.

    Rows with identical options (same prompt, language, task) decode as one batch.
    """
    attempts: list[list[DecodingResult]] = [[] for _ in options]
    results: list[DecodingResult | None] = [None] * len(options)
    pending = list(range(len(options)))
    for t in topts.temperatures:
        groups: dict[DecodingOptions, list[int]] = {}
        for i in pending:
            groups.setdefault(_options_at(options[i], t), []).append(i)
        retry = []
        for opts, rows in groups.items():
            for i, r in zip(rows, decode(model, tokenizer, features[rows], opts, generator=generator)):
                attempts[i].append(r)
                if _silent(attempts[i], topts) or not (_too_repetitive(r, topts) or _unsure(r, topts)):
                    results[i] = r  # good enough, or silence (a hotter retry would only hallucinate)
                else:
                    retry.append(i)
        pending = sorted(retry)
        if not pending:
            break
    return [r if r is not None else _best_attempt(a, topts) for r, a in zip(results, attempts)]


def _single_timestamp_ending(tokens: Sequence[int], tokenizer: "WhisperTokenizer") -> bool:
    """The output ends in one timestamp after text: no speech follows it in the window."""
    return [t >= tokenizer.timestamp_begin for t in tokens[-2:]] == [False, True]


def _segments_from_tokens(
    result: DecodingResult,
    tokenizer: "WhisperTokenizer",
    time_offset: float,
    window_frames: int,
    input_stride: int,
    time_precision: float,
) -> tuple[list[Segment], int]:
    """Cut one window's output into segments at timestamp pairs. Returns (segments, frames to advance); the
    segments include instantaneous and empty ones (see :func:`_without_empty`)."""
    tokens = result.tokens
    tb = tokenizer.timestamp_begin
    is_ts = [t >= tb for t in tokens]
    single_ending = _single_timestamp_ending(tokens, tokenizer)
    consecutive = [i + 1 for i in range(len(tokens) - 1) if is_ts[i] and is_ts[i + 1]]

    def make(seg_tokens: list[int], start: float, end: float) -> Segment:
        text_tokens = [t for t in seg_tokens if t < tokenizer.eot]
        return Segment(
            start=round(start, 3),
            end=round(end, 3),
            text=tokenizer.decode(text_tokens),
            tokens=seg_tokens,
            avg_logprob=result.avg_logprob,
            no_speech_prob=result.no_speech_prob,
            compression_ratio=result.compression_ratio,
            temperature=result.temperature,
        )

    segments: list[Segment] = []
    if consecutive:
        slices = consecutive + ([len(tokens)] if single_ending else [])
        last = 0
        for cut in slices:
            piece = tokens[last:cut]
            segments.append(
                make(
                    piece,
                    time_offset + (piece[0] - tb) * time_precision,
                    time_offset + (piece[-1] - tb) * time_precision,
                )
            )
            last = cut
        advance = window_frames if single_ending else (tokens[last - 1] - tb) * input_stride
    else:
        duration = window_frames * HOP_LENGTH / SAMPLE_RATE
        stamps = [t for t in tokens if t >= tb]
        if stamps and stamps[-1] != tb:
            duration = (stamps[-1] - tb) * time_precision
        segments.append(make(tokens, time_offset, time_offset + duration))
        advance = window_frames
    return segments, max(advance, 1)


def _without_empty(segments: list[Segment]) -> list[Segment]:
    """Instantaneous segments and those without text are dropped."""
    return [s for s in segments if s.start != s.end and s.text.strip()]


def _add_words(segments: list[Segment], advance: int, state: _FileState, result: DecodingResult, model: "Whisper",
               tokenizer: "WhisperTokenizer", features: torch.Tensor, window_frames: int, time_offset: float,
               task: str, probe: Any) -> int:
    """Word timestamps for one window's ``segments`` (``features (1, S, D)``); returns the frames to advance:
    as openai-whisper, to the last word's end unless the output ended in a single timestamp."""
    from .whisper_words import add_word_timestamps, last_word_end

    add_word_timestamps(segments, model, tokenizer, features, window_frames, time_offset=time_offset,
                        last_speech=state.last_speech, language=state.language, task=task, probe=probe)
    end = last_word_end(segments)
    if end is not None:
        state.last_speech = end
        if end > time_offset and not _single_timestamp_ending(result.tokens, tokenizer):
            advance = max(1, round(end * FRAMES_PER_SECOND) - state.seek)
    return advance


@torch.inference_mode()
def transcribe_audio(
    model: "Whisper",
    tokenizer: "WhisperTokenizer",
    audios: Sequence["np.ndarray | AudioStream"],
    options: TranscribeOptions = TranscribeOptions(),
    *,
    frontend: Any,
    vad: Any = None,
    progress: bool | None = None,
    errors: str = "raise",
    on_segments: Callable[[int, list[Segment]], None] | None = None,
) -> list[Transcript]:
    """Transcribe 16 kHz mono float32 arrays or AudioStreams (long files decoded window by window).

    `frontend` is a `WhisperLogMel` (its `log10_frames`): each window's log-mel has exactly the values of
    openai-whisper's whole-file log-mel there, without holding the file.

    `vad` is a SileroVAD (required when options.vad is set). `errors="return"` puts an input's AudioError in its
    place in the result instead of raising it. `on_segments(index, segments)` hears each window's segments as they
    are decoded (times before the VAD's mapping back to the input).
    """
    input_stride = N_FRAMES // model.dims.n_audio_ctx  # mel frames per audio position (2)
    time_precision = input_stride * HOP_LENGTH / SAMPLE_RATE  # seconds per timestamp step (0.02)
    prompt_tokens = tokenizer.encode(" " + options.initial_prompt.strip()) if options.initial_prompt else []
    generator = torch.Generator().manual_seed(options.seed)
    device = model.device
    # on CPU a batch of windows encodes no faster than one at a time (measured: 8 windows 1.93 s, 1 window
    # 0.22 s), but holds 8x the activations; GPUs gain from the whole batch
    encoder_batch = options.batch_size if device.type == "cuda" else 1
    feature_dtype = next(model.parameters()).dtype
    if feature_dtype not in (torch.float16, torch.bfloat16):
        feature_dtype = torch.float32
    probe = None  # reads the alignment heads' cross-attention for word timestamps
    if options.word_timestamps:
        from .whisper_streaming import AlignmentProbe

        probe = AlignmentProbe(model)

    def start(audio: "np.ndarray | AudioStream") -> _FileState:
        stream = audio if isinstance(audio, AudioStream) else AudioStream.from_array(audio)
        time_map, duration = None, None
        if options.vad:
            if vad is None:
                raise ConfigError("options.vad is set but no VAD model was given")
            from ..audio.vad import collect_chunks

            whole = audio if isinstance(audio, np.ndarray) else stream.read(0, 1 << 62)
            stamps = vad.speech_timestamps(whole, threshold=options.vad_threshold,
                                           min_silence_ms=options.vad_min_silence_ms,
                                           speech_pad_ms=options.vad_speech_pad_ms)
            chunks = collect_chunks(whole, stamps)
            stream, time_map, duration = AudioStream.from_array(chunks.audio), chunks.to_original_time, \
                len(whole) / SAMPLE_RATE
        return _FileState(stream, prompt_tokens, time_map, duration, log_mel_peak(stream, frontend, device))

    # the peak pre-pass decodes every input once, so an unreadable one (NaN samples, a corrupt block) shows here
    states, failed = load_inputs(audios, start, errors, lambda: _FileState(
        AudioStream.from_array(np.zeros(0, np.float32)), prompt_tokens, None, 0.0, SILENCE_LOG10))

    total_seconds = sum(s.audio.duration or 0.0 for s in states)
    bar = progress_bar(round(total_seconds, 1), desc="transcribe", unit="s", enabled=progress)

    for group_start in range(0, len(states), options.batch_size):
        group = states[group_start : group_start + options.batch_size]
        while active := [s for s in group if not s.done]:
            windows = [s.window() for s in active]
            n_frames = N_FRAMES
            if options.short_window_s is not None:
                longest = max(max(w[1] for w in windows), round(options.short_window_s * FRAMES_PER_SECOND))
                n_frames = min(N_FRAMES, longest + longest % 2)
            mel = torch.cat([
                normalize_log_mel(frontend.log10_frames(torch.from_numpy(samples)[None].to(device))[..., :n_frames],
                                  s.peak)
                for s, (samples, _) in zip(active, windows)
            ]).to(feature_dtype)
            if options.padding == "zeros":
                for row, (_, content_frames) in enumerate(windows):
                    mel[row, :, content_frames:] = 0
            features = torch.cat([model.embed_audio(mel[i : i + encoder_batch])
                                  for i in range(0, len(mel), encoder_batch)])

            base = options.decoding
            if base.language is None and tokenizer.is_multilingual:
                need = [i for i, s in enumerate(active) if s.language is None]
                if need:
                    langs, probs = detect_language(model, tokenizer, features[need])
                    for i, lang, p in zip(need, langs, probs):
                        active[i].language, active[i].language_probs = lang, p
            per_row = []
            for s in active:
                prompt = (
                    s.all_tokens[s.prompt_reset_since :]
                    if options.condition_on_previous_text or options.initial_prompt
                    else []
                )
                per_row.append(
                    replace(
                        base, language=s.language or base.language, prompt=tuple(prompt) if prompt else None
                    )
                )
            results = decode_with_fallback(model, tokenizer, features, per_row, options, generator)

            for row, (s, (_, window_frames), result) in enumerate(zip(active, windows, results)):
                before = s.seek
                s.language = s.language or result.language
                time_offset = s.seek * HOP_LENGTH / SAMPLE_RATE
                skip = (
                    options.no_speech_threshold is not None
                    and result.no_speech_prob > options.no_speech_threshold
                    and not (
                        options.logprob_threshold is not None
                        and result.avg_logprob > options.logprob_threshold
                    )
                )
                if skip:
                    s.seek += window_frames
                else:
                    segments, advance = _segments_from_tokens(
                        result, tokenizer, time_offset, window_frames, input_stride, time_precision
                    )
                    if options.word_timestamps:
                        advance = _add_words(segments, advance, s, result, model, tokenizer, features[row : row + 1],
                                             window_frames, time_offset, base.task, probe)
                    segments = _without_empty(segments)
                    s.seek += advance
                    s.segments.extend(segments)
                    if on_segments is not None and segments:
                        on_segments(group_start + group.index(s), segments)
                    s.all_tokens.extend(t for seg in segments for t in seg.tokens)
                    if not options.condition_on_previous_text or result.temperature > 0.5:
                        s.prompt_reset_since = len(s.all_tokens)
                bar.update(round((s.seek - before) * HOP_LENGTH / SAMPLE_RATE, 2))
    bar.close()

    out: list = []
    for index, s in enumerate(states):
        if index in failed:
            out.append(failed[index])
            continue
        if s.time_map is not None:
            for seg in s.segments:
                seg.start = round(s.time_map(seg.start), 3)
                seg.end = round(s.time_map(seg.end, is_end=True), 3)
                for word in seg.words or []:
                    word.start = round(s.time_map(word.start), 3)
                    word.end = round(s.time_map(word.end, is_end=True), 3)
        out.append(
            Transcript(
                text="".join(seg.text for seg in s.segments).strip(),
                segments=s.segments,
                language=s.language or options.decoding.language or "en",
                duration=round(s.duration or s.audio.duration or 0.0, 3),
                language_probs=s.language_probs,
            )
        )
    return out
