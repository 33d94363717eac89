"""Speech datasets: audio -> on-the-fly features, transcripts -> token ids.

:class:`SpeechDataset` reads one utterance per ``__getitem__`` (only its span when the manifest gives an
``offset``), applies an optional waveform augmentation seeded from ``(seed, epoch, index)`` (so results do
not depend on which worker process loads an item) and computes features with a front end module
(:func:`build_frontend`). Unreadable audio yields ``None``, which
:func:`seqspeech.data.collate.collate_speech` drops and counts.

:func:`prepare_utterances` filters a manifest before training (empty text, bad durations, unreadable audio,
unknown characters, transcripts too long for CTC) and reports what it dropped; :func:`compute_feature_stats`
gives the global mean / std for CMVN.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import soundfile as sf
import torch
from torch import nn

from seqspeech.audio.constants import SAMPLE_RATE
from seqspeech.audio.features import Fbank
from seqspeech.audio.io import audio_info, load_audio
from seqspeech.data.manifest import Utterance
from seqspeech.errors import AudioError, ConfigError, DataError

__all__ = [
    "FeatureConfig", "FbankFrontend", "SkipReport", "SpeechDataset", "Tokenizer", "build_frontend",
    "compute_feature_stats", "load_utterance_audio", "prepare_utterances",
]

log = logging.getLogger(__name__)

INT16_SCALE = 32768.0  # Kaldi fbank expects samples in int16 scale
FRAMES_PER_SECOND = 100  # 10 ms frame shift
CTC_SUBSAMPLING = 4  # encoder frames per output position assumed when checking that a transcript fits CTC
TEXT_FIELDS = ("text", "normalized_text")
FEATURE_TYPES = ("fbank",)
STD_FLOOR = 1e-5
MAX_EXAMPLE_IDS = 5

# SkipReport reasons
UNREADABLE = "unreadable audio"
EMPTY = "empty transcript"
TOO_SHORT = "too short"
TOO_LONG = "too long"
UNKNOWN_CHARS = "unknown characters"
TOO_MANY_TOKENS = "too many tokens for CTC"
TOO_FAST = "too many tokens per second"


class Tokenizer(Protocol):
    """What the data pipeline needs of a tokenizer (:class:`CharTokenizer`, :class:`BPETokenizer`)."""

    def encode(self, text: str) -> list[int]: ...


# ----------------------------------------------------------------
# features


@dataclass(frozen=True)
class FeatureConfig:
    """Acoustic front end.

    Attributes:
        type: ``"fbank"`` (Kaldi-compatible log mel filter bank, 25 ms / 10 ms).
        num_mel_bins: mel bands.
        sample_rate: audio rate in Hz (audio is resampled to it on load).
        dither: Gaussian dither in int16 units, added only while the front end is in training mode.
    """

    type: str = "fbank"
    num_mel_bins: int = 80
    sample_rate: int = SAMPLE_RATE
    dither: float = 0.0

    def __post_init__(self) -> None:
        if self.type not in FEATURE_TYPES:
            raise ConfigError(f"FeatureConfig.type must be one of {list(FEATURE_TYPES)}, got {self.type!r}")
        if self.num_mel_bins <= 0 or self.sample_rate <= 0:
            raise ConfigError(
                f"FeatureConfig.num_mel_bins and sample_rate must be positive, got {self.num_mel_bins}, "
                f"{self.sample_rate}"
            )
        if not (math.isfinite(self.dither) and self.dither >= 0):
            raise ConfigError(f"FeatureConfig.dither must be >= 0, got {self.dither!r}")


class FbankFrontend(nn.Module):
    """``(T,)`` float samples in [-1, 1] -> ``(frames, n_mels)`` Kaldi fbank.

    ``frames = (T - 400) // 160 + 1`` at 16 kHz, 0 when shorter than a window.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, num_mel_bins: int = 80, dither: float = 0.0) -> None:
        super().__init__()
        self.fbank = Fbank(sample_rate=sample_rate, num_mel_bins=num_mel_bins, dither=dither)
        self.num_mel_bins = num_mel_bins

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        features, _ = self.fbank(wave.reshape(-1) * INT16_SCALE)
        return features[0]


def build_frontend(cfg: FeatureConfig) -> nn.Module:
    """The front end module for ``cfg``: ``(T,)`` samples -> ``(frames, cfg.num_mel_bins)``."""
    if cfg.type == "fbank":
        return FbankFrontend(cfg.sample_rate, cfg.num_mel_bins, cfg.dither)
    raise ConfigError(f"unknown feature type {cfg.type!r}")  # unreachable: FeatureConfig validates


# ----------------------------------------------------------------
# audio spans


def load_utterance_audio(utt: Utterance, sr: int = SAMPLE_RATE) -> np.ndarray:
    """``(T,)`` float32 samples at ``sr`` of ``utt``: the whole file, or only ``[offset, offset + duration)``
    when ``utt.offset > 0`` (to the end of the file when ``duration`` is 0).

    Raises:
        AudioError: naming the file, when it cannot be read or the span lies outside it.
    """
    if utt.offset <= 0:
        return load_audio(utt.audio, sr)
    try:
        with sf.SoundFile(utt.audio) as handle:
            native = handle.samplerate
            start = round(utt.offset * native)
            if start >= handle.frames:
                raise AudioError(
                    f"{utt.audio}: utterance {utt.id!r} starts at {utt.offset:.3f} s, past the end of the "
                    f"file ({handle.frames / native:.3f} s)"
                )
            handle.seek(start)
            count = round(utt.duration * native) if utt.duration > 0 else -1
            frames = handle.read(count, dtype="float32", always_2d=True)
    except sf.LibsndfileError:
        # a container libsndfile does not know: decode it whole (ffmpeg fallback) and cut the span
        wave = load_audio(utt.audio, sr)
        start = round(utt.offset * sr)
        stop = start + round(utt.duration * sr) if utt.duration > 0 else wave.size
        if start >= wave.size:
            raise AudioError(f"{utt.audio}: utterance {utt.id!r} starts past the end of the file") from None
        return wave[start:stop]
    if frames.shape[0] == 0:
        raise AudioError(f"{utt.audio}: utterance {utt.id!r} span holds no samples")
    mono = frames.mean(axis=1) if frames.shape[1] > 1 else frames[:, 0]
    try:
        return load_audio(mono, sr, source_sr=native)
    except AudioError as err:
        raise AudioError(f"{utt.audio}: {err}") from None


# ----------------------------------------------------------------
# dataset


class SpeechDataset(torch.utils.data.Dataset):
    """Utterances -> ``{"id", "features" (T, F) float32, "tokens" (U,) long, "duration"}`` or ``None``.

    Args:
        utterances: the items (filter them first with :func:`prepare_utterances`).
        tokenizer: anything with ``encode(text) -> list[int]``.
        frontend: ``(T,)`` samples -> ``(frames, F)`` (see :func:`build_frontend`); run on CPU under no_grad.
        sample_rate: audio is decoded (and resampled) to this rate.
        augment: optional ``(wave, rng) -> wave`` (e.g. :class:`seqspeech.audio.augment.WaveAugment`), called
            with an ``np.random.Generator`` seeded from ``(seed, epoch, index)``.
        seed: base seed of the augmentation.
        text_field: ``"normalized_text"`` or ``"text"``.

    ``duration`` in an item is the seconds of audio its features were computed from (after speed
    perturbation). Unreadable audio gives ``None`` and a warning naming the file (once per file and process).
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        tokenizer: Tokenizer,
        frontend: nn.Module,
        *,
        sample_rate: int = SAMPLE_RATE,
        augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        seed: int = 0,
        text_field: str = "normalized_text",
    ) -> None:
        if text_field not in TEXT_FIELDS:
            raise ConfigError(f"text_field must be one of {list(TEXT_FIELDS)}, got {text_field!r}")
        if seed < 0:
            raise ConfigError(f"seed must be >= 0, got {seed}")
        self.utterances = list(utterances)
        self.tokenizer = tokenizer
        self.frontend = frontend
        self.sample_rate = sample_rate
        self.augment = augment
        self.seed = seed
        self.text_field = text_field
        self.epoch = 0
        self._warned: set[str] = set()

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch`` (call it in every worker, or before workers start)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def durations(self) -> list[float]:
        """Manifest durations, for :class:`seqspeech.data.samplers.BucketBatchSampler`."""
        return [utt.duration for utt in self.utterances]

    def rng(self, index: int) -> np.random.Generator:
        """The augmentation RNG of item ``index`` in the current epoch."""
        return np.random.default_rng([self.seed, self.epoch, index])

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        utt = self.utterances[index]
        try:
            wave = load_utterance_audio(utt, self.sample_rate)
        except (AudioError, OSError) as err:
            if utt.audio not in self._warned:
                self._warned.add(utt.audio)
                log.warning("skipping utterance %r: cannot read audio %s (%s)", utt.id, utt.audio, err)
            return None
        if self.augment is not None:
            wave = self.augment(wave, self.rng(index))
        tokens = self.tokenizer.encode(getattr(utt, self.text_field))
        with torch.no_grad():
            features = self.frontend(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)))
        return {
            "id": utt.id,
            "features": features.to(torch.float32),
            "tokens": torch.tensor(tokens, dtype=torch.long),
            "duration": wave.size / self.sample_rate,
        }


# ----------------------------------------------------------------
# filtering


@dataclass
class SkipReport:
    """What :func:`prepare_utterances` dropped, by reason.

    Attributes:
        total: utterances looked at.
        counts: reason -> number dropped.
        examples: reason -> up to 5 example ids.
        unknown_kept: kept utterances whose transcript has characters the tokenizer does not know.
    """

    total: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    unknown_kept: int = 0

    @property
    def skipped(self) -> int:
        return sum(self.counts.values())

    @property
    def kept(self) -> int:
        return self.total - self.skipped

    def add(self, reason: str, utt_id: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        ids = self.examples.setdefault(reason, [])
        if len(ids) < MAX_EXAMPLE_IDS:
            ids.append(utt_id)

    def __str__(self) -> str:
        reasons = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
        text = f"skipped {self.skipped} of {self.total}"
        if reasons:
            text += ": " + ", ".join(f"{count} {reason}" for reason, count in reasons)
        if self.unknown_kept:
            text += f"; kept {self.unknown_kept} with unknown characters"
        return text

    def describe(self) -> str:
        """``str(self)`` plus example ids per reason, one reason a line."""
        lines = [str(self)]
        for reason, ids in sorted(self.examples.items()):
            lines.append(f"  {reason}: e.g. {', '.join(ids)}")
        return "\n".join(lines)


def prepare_utterances(
    utterances: Sequence[Utterance],
    tokenizer: Tokenizer,
    *,
    min_duration: float = 0.1,
    max_duration: float = 20.0,
    max_tokens_per_second: float | None = None,
    text_field: str = "normalized_text",
    drop_unknown: bool = False,
) -> tuple[list[Utterance], SkipReport]:
    """Drop utterances a CTC/attention trainer cannot use, counting each by reason.

    Checks, in order: empty transcript; unmeasured duration (0.0: measured from the file header, and the
    returned utterance carries it; unreadable -> dropped); duration outside ``[min_duration, max_duration]``;
    characters the tokenizer maps to ``<unk>`` (dropped when ``drop_unknown``, otherwise kept and counted);
    more tokens than CTC can emit (``tokens > duration * 100 / 4``); more than ``max_tokens_per_second``.

    Returns:
        (kept utterances in input order, :class:`SkipReport`).
    """
    if text_field not in TEXT_FIELDS:
        raise ConfigError(f"text_field must be one of {list(TEXT_FIELDS)}, got {text_field!r}")
    if not 0 <= min_duration <= max_duration:
        raise ConfigError(f"need 0 <= min_duration <= max_duration, got {min_duration}, {max_duration}")
    unk_id = int(getattr(tokenizer, "unk_id", 1))
    report = SkipReport()
    kept: list[Utterance] = []
    for utt in utterances:
        report.total += 1
        text = getattr(utt, text_field)
        if not text.strip():
            report.add(EMPTY, utt.id)
            continue
        if utt.duration <= 0:
            try:
                seconds, _ = audio_info(utt.audio)
            except (AudioError, OSError) as err:
                log.warning("skipping utterance %r: cannot read audio %s (%s)", utt.id, utt.audio, err)
                report.add(UNREADABLE, utt.id)
                continue
            seconds -= utt.offset
            if seconds <= 0:
                report.add(UNREADABLE, utt.id)
                continue
            utt = replace(utt, duration=seconds)
        if utt.duration < min_duration:
            report.add(TOO_SHORT, utt.id)
            continue
        if utt.duration > max_duration:
            report.add(TOO_LONG, utt.id)
            continue
        tokens = tokenizer.encode(text)
        if unk_id in tokens:
            if drop_unknown:
                report.add(UNKNOWN_CHARS, utt.id)
                continue
            report.unknown_kept += 1
        if len(tokens) > utt.duration * FRAMES_PER_SECOND / CTC_SUBSAMPLING:
            report.add(TOO_MANY_TOKENS, utt.id)
            continue
        if max_tokens_per_second is not None and len(tokens) > max_tokens_per_second * utt.duration:
            report.add(TOO_FAST, utt.id)
            continue
        kept.append(utt)
    return kept, report


# ----------------------------------------------------------------
# statistics


def compute_feature_stats(
    dataset: torch.utils.data.Dataset, max_items: int = 500
) -> tuple[torch.Tensor, torch.Tensor]:
    """Global per-bin mean and std ``(F,)`` float32 over the frames of up to ``max_items`` items, evenly
    spaced over the dataset (deterministic). Use a dataset without augmentation. Unreadable items are skipped.

    Raises:
        DataError: no item yielded any frame.
    """
    size = len(dataset)  # type: ignore[arg-type]
    count = min(size, max_items)
    indices = np.unique(np.linspace(0, size - 1, count).round().astype(int)) if count > 0 else []
    total = sq = None
    frames = 0
    for index in indices:
        item = dataset[int(index)]
        if item is None or item["features"].shape[0] == 0:
            continue
        feats = item["features"].to(torch.float64)
        total = feats.sum(0) if total is None else total + feats.sum(0)
        sq = feats.square().sum(0) if sq is None else sq + feats.square().sum(0)
        frames += feats.shape[0]
    if total is None or sq is None:
        raise DataError(f"compute_feature_stats: none of {len(indices)} items gave any feature frames")
    mean = total / frames
    std = (sq / frames - mean.square()).clamp(min=0).sqrt().clamp(min=STD_FLOOR)
    return mean.float(), std.float()
