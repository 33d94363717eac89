"""Silero voice activity detection through onnxruntime, and helpers to cut silence out and map times back.

The ONNX model ships inside the ``silero_vad`` pip package; we locate the file without importing that package
(importing it pulls in torch and calls ``torch.set_num_threads(1)`` as a side effect). Chunking (512 samples
with a 64-sample context carried over) and the timestamp state machine reproduce silero's ``OnnxWrapper`` and
``get_speech_timestamps`` (v5/v6, 16 kHz) exactly, so results equal silero's own.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seqspeech.errors import AudioError, ModelLoadError

__all__ = ["SileroVAD", "SpeechChunks", "collect_chunks", "default_model_path", "timestamps_from_probs"]

VAD_SAMPLE_RATE = 16000  # the rate the silero model's 512-sample window is defined at
VAD_CHUNK_SAMPLES = 512  # 32 ms per speech probability
VAD_CONTEXT_SAMPLES = 64  # tail of the previous chunk prepended to each chunk
VAD_STATE_SHAPE = (2, 1, 128)  # LSTM (h, c) for a batch of one
NEG_THRESHOLD_OFFSET = 0.15  # leave speech when the probability drops below threshold - 0.15 ...
MIN_NEG_THRESHOLD = 0.01  # ... but never below this
MIN_SILENCE_AT_MAX_SPEECH_MS = (
    98  # silences at least this long are candidate cut points in an over-long segment
)
MS_PER_SECOND = 1000.0
MODEL_PACKAGE = "silero_vad"
MODEL_RELATIVE_PATH = Path("data") / "silero_vad.onnx"

Timestamp = dict[str, int]


def default_model_path() -> Path:
    """Path of ``silero_vad/data/silero_vad.onnx`` in the installed ``silero_vad`` package (not imported)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"the '{MODEL_PACKAGE}' package is not installed; pip install silero-vad, or pass model_path"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / MODEL_RELATIVE_PATH
        if path.is_file():
            return path
    raise ModelLoadError(f"'{MODEL_PACKAGE}' is installed but has no {MODEL_RELATIVE_PATH}; pass model_path")


def _as_mono(audio: Any) -> np.ndarray:
    """``(T,)`` finite float32 samples from a numpy array or torch tensor (a batch of one is squeezed)."""
    if hasattr(audio, "detach"):  # torch.Tensor, without importing torch
        audio = audio.detach().cpu().float().numpy()
    audio = np.asarray(audio)
    if audio.ndim == 2 and audio.shape[0] == 1:
        audio = audio[0]
    if audio.ndim != 1:
        raise AudioError(f"VAD expects mono audio of shape (T,), got shape {audio.shape}")
    if audio.dtype.kind != "f":
        raise AudioError(f"VAD expects float samples in [-1, 1], got dtype {audio.dtype}")
    audio = audio.astype(np.float32, copy=False)
    if not np.isfinite(audio).all():
        raise AudioError("VAD input contains NaN/inf samples")
    return audio


class SileroVAD:
    """Silero VAD (16 kHz) on onnxruntime; the session is created on first use.

    Args:
        model_path: ONNX file; default: the one shipped in the ``silero_vad`` package.
        intra_op_threads: onnxruntime intra-op threads (1 is fastest for this tiny model).
    """

    def __init__(self, model_path: str | Path | None = None, intra_op_threads: int = 1) -> None:
        self.model_path = None if model_path is None else Path(model_path)
        self.intra_op_threads = intra_op_threads
        self._session = None

    @property
    def session(self):
        """The onnxruntime ``InferenceSession`` (loaded lazily)."""
        if self._session is None:
            import onnxruntime

            path = self.model_path or default_model_path()
            if not path.is_file():
                raise ModelLoadError(f"{path}: silero VAD model file not found")
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.intra_op_threads
            options.inter_op_num_threads = 1
            try:
                self._session = onnxruntime.InferenceSession(
                    str(path), sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as err:  # onnxruntime raises its own exception types
                raise ModelLoadError(f"{path}: cannot load silero VAD model ({err})") from err
        return self._session

    def speech_probs(self, audio16k: Any) -> np.ndarray:
        """Speech probability per 512-sample (32 ms) chunk of ``(T,)`` 16 kHz audio -> ``(ceil(T / 512),)``.

        The last chunk is zero-padded; each chunk sees the previous chunk's last 64 samples and the recurrent
        state.
        """
        audio = _as_mono(audio16k)
        num_chunks = math.ceil(audio.size / VAD_CHUNK_SAMPLES)
        padded = np.zeros(VAD_CONTEXT_SAMPLES + num_chunks * VAD_CHUNK_SAMPLES, dtype=np.float32)
        padded[VAD_CONTEXT_SAMPLES : VAD_CONTEXT_SAMPLES + audio.size] = audio
        session = self.session
        state = np.zeros(VAD_STATE_SHAPE, dtype=np.float32)
        rate = np.array(VAD_SAMPLE_RATE, dtype=np.int64)
        probs = np.empty(num_chunks, dtype=np.float32)
        for i in range(num_chunks):
            start = i * VAD_CHUNK_SAMPLES
            window = padded[None, start : start + VAD_CONTEXT_SAMPLES + VAD_CHUNK_SAMPLES]
            out, state = session.run(None, {"input": window, "state": state, "sr": rate})
            probs[i] = out[0, 0]
        return probs

    def speech_timestamps(
        self,
        audio: Any,
        threshold: float = 0.5,
        min_speech_ms: float = 250,
        min_silence_ms: float = 100,
        speech_pad_ms: float = 30,
        max_speech_s: float = math.inf,
        neg_threshold: float | None = None,
    ) -> list[Timestamp]:
        """Speech segments ``[{"start": s, "end": e}, ...]`` in samples of ``(T,)`` 16 kHz ``audio``.

        Same parameters and results as ``silero_vad.get_speech_timestamps``; see
        :func:`timestamps_from_probs`.
        """
        audio = _as_mono(audio)
        return timestamps_from_probs(
            self.speech_probs(audio),
            audio.size,
            threshold=threshold,
            min_speech_ms=min_speech_ms,
            min_silence_ms=min_silence_ms,
            speech_pad_ms=speech_pad_ms,
            max_speech_s=max_speech_s,
            neg_threshold=neg_threshold,
        )


def timestamps_from_probs(
    probs: np.ndarray,
    num_samples: int,
    threshold: float = 0.5,
    min_speech_ms: float = 250,
    min_silence_ms: float = 100,
    speech_pad_ms: float = 30,
    max_speech_s: float = math.inf,
    neg_threshold: float | None = None,
) -> list[Timestamp]:
    """Silero's hysteresis state machine: per-chunk probabilities -> padded speech segments in samples.

    Speech starts at a chunk with ``p >= threshold`` and ends after ``min_silence_ms`` below ``neg_threshold``
    (default ``max(threshold - 0.15, 0.01)``); segments shorter than ``min_speech_ms`` are dropped; segments
    longer than ``max_speech_s`` are cut at their longest inner silence (>= 98 ms), else at the limit; each
    segment is padded by ``speech_pad_ms`` (splitting the gap when neighbours are closer than twice that).

    Args:
        probs: ``(N,)`` probabilities, one per 512-sample chunk.
        num_samples: length of the audio they came from (clips the last segment).
    """
    rate = VAD_SAMPLE_RATE
    probs_list = [float(p) for p in probs]  # compare as Python floats, like silero (.item())
    min_speech = rate * min_speech_ms / MS_PER_SECOND
    pad = rate * speech_pad_ms / MS_PER_SECOND
    max_speech = rate * max_speech_s - VAD_CHUNK_SAMPLES - 2 * pad
    min_silence = rate * min_silence_ms / MS_PER_SECOND
    min_silence_at_max = rate * MIN_SILENCE_AT_MAX_SPEECH_MS / MS_PER_SECOND
    if neg_threshold is None:
        neg_threshold = max(threshold - NEG_THRESHOLD_OFFSET, MIN_NEG_THRESHOLD)

    speeches: list[Timestamp] = []
    current: Timestamp = {}
    triggered = False
    temp_end = 0  # start of the silence currently being tolerated inside speech
    possible_ends: list[tuple[int, int]] = []  # (silence start, silence length) inside the current segment
    for i, prob in enumerate(probs_list):
        sample = VAD_CHUNK_SAMPLES * i
        if prob >= threshold and temp_end:
            silence = sample - temp_end
            if silence > min_silence_at_max:
                possible_ends.append((temp_end, silence))
            temp_end = 0
        if prob >= threshold and not triggered:
            triggered = True
            current = {"start": sample}
            continue
        if triggered and sample - current["start"] > max_speech:
            if possible_ends:  # cut at the longest silence seen in this segment
                cut, silence = max(possible_ends, key=lambda end: end[1])
                speeches.append({"start": current["start"], "end": cut})
                resume = cut + silence
                # silero's test: resume < cut + sample; keeps the segment going from the silence's end
                current = {"start": resume} if resume < cut + sample else {}
                triggered = bool(current)
                temp_end, possible_ends = 0, []
            else:  # no usable silence: cut right here
                speeches.append({"start": current["start"], "end": sample})
                current, triggered, temp_end, possible_ends = {}, False, 0, []
                continue
        if prob < neg_threshold and triggered:
            if not temp_end:
                temp_end = sample
            if sample - temp_end < min_silence:
                continue
            if temp_end - current["start"] > min_speech:
                speeches.append({"start": current["start"], "end": temp_end})
            current, triggered, temp_end, possible_ends = {}, False, 0, []
            continue
    if current and num_samples - current["start"] > min_speech:
        speeches.append({"start": current["start"], "end": num_samples})
    return _pad_segments(speeches, pad, num_samples)


def _pad_segments(speeches: list[Timestamp], pad: float, num_samples: int) -> list[Timestamp]:
    """Widen each segment by ``pad`` samples, splitting the gap when two are closer than ``2 * pad``."""
    for i, speech in enumerate(speeches):
        if i == 0:
            speech["start"] = int(max(0, speech["start"] - pad))
        if i != len(speeches) - 1:
            gap = speeches[i + 1]["start"] - speech["end"]
            if gap < 2 * pad:
                speech["end"] += int(gap // 2)
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - gap // 2))
            else:
                speech["end"] = int(min(num_samples, speech["end"] + pad))
                speeches[i + 1]["start"] = int(max(0, speeches[i + 1]["start"] - pad))
        else:
            speech["end"] = int(min(num_samples, speech["end"] + pad))
    return speeches


@dataclass(frozen=True)
class SpeechChunks:
    """Speech cut out of a longer clip and concatenated, with a map from collected time to original time.

    Attributes:
        audio: ``(T',)`` the concatenated speech.
        timestamps: the ``{"start", "end"}`` sample ranges of the original audio that ``audio`` is made of.
        sample_rate: rate of both.
    """

    audio: np.ndarray
    timestamps: list[Timestamp]
    sample_rate: int = VAD_SAMPLE_RATE
    _offsets: np.ndarray = field(init=False, repr=False)  # (N + 1,) start of each chunk in ``audio``, then T'

    def __post_init__(self) -> None:
        lengths = [ts["end"] - ts["start"] for ts in self.timestamps]
        object.__setattr__(self, "_offsets", np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]))

    def to_original_time(self, t_seconds: float | np.ndarray, is_end: bool = False) -> float | np.ndarray:
        """Map a time (seconds) in ``audio`` to the same instant in the original clip.

        A time exactly on a boundary between two chunks belongs to the later chunk, or to the earlier one when
        ``is_end`` (so a segment ending there ends before the removed silence). Times outside ``audio`` are
        clamped to it. With no chunks at all the time is returned unchanged.
        """
        if not self.timestamps:
            return t_seconds
        total = self._offsets[-1]
        samples = np.clip(np.asarray(t_seconds, dtype=np.float64) * self.sample_rate, 0, total)
        ends = self._offsets[1:]
        index = np.searchsorted(ends, samples, side="left" if is_end else "right")
        index = np.minimum(index, len(self.timestamps) - 1)
        starts = np.array([ts["start"] for ts in self.timestamps], dtype=np.float64)
        original = (starts[index] + samples - self._offsets[index]) / self.sample_rate
        return float(original) if np.ndim(original) == 0 else original


def collect_chunks(
    audio: Any, timestamps: list[Timestamp], sample_rate: int = VAD_SAMPLE_RATE
) -> SpeechChunks:
    """Concatenate the ``timestamps`` sample ranges of ``(T,)`` ``audio`` into a :class:`SpeechChunks`."""
    samples = _as_mono(audio)
    previous_end = 0
    for ts in timestamps:
        if not 0 <= ts["start"] <= ts["end"] <= samples.size or ts["start"] < previous_end:
            raise AudioError(
                "timestamps must be sorted, non-overlapping ranges within the "
                f"{samples.size}-sample audio, got {ts}"
            )
        previous_end = ts["end"]
    pieces = [samples[ts["start"] : ts["end"]] for ts in timestamps]
    collected = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    return SpeechChunks(collected, [dict(ts) for ts in timestamps], sample_rate)
