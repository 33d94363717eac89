"""TTS training data: utterances -> cached (tokens, mel, frame F0, frame energy) -> padded batches.

Everything a TTS model trains on is a deterministic function of the audio and the text, so it is computed once
per manifest into a cache file (``<cache_dir>/<manifest stem>-<key>.pt``; the key hashes the manifest's ids and
texts, the mel settings and the text front end) and shared by every recipe that reads the same corpus: the CTC
duration aligner, FastSpeech 2, Tacotron 2 and the vocoder. Batches follow the layout in
:mod:`seqspeech.tts` models' docs: ``tokens (B, U)`` padded with 0, ``mels (B, n_mels, T)`` padded with
:data:`~seqspeech.tts.mel.TTS_LOG_SILENCE`, optional ``durations``, ``pitch``, ``energy`` ``(B, U)``; vocoder
batches hold ``wave (B, S)`` segments and their ``mels``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence

from ..data.dataset import load_utterance_audio
from ..data.manifest import Utterance
from ..errors import AudioError, ConfigError, DataError
from .mel import TTS_LOG_SILENCE, MelConfig, MelSpectrogram

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
TEXT_FIELDS = ("normalized_text", "text")


class TextEncoder(Protocol):
    def encode(self, text: str) -> list[int]: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class TTSDataConfig:
    """Manifests and batching of a TTS recipe. ``max_batch_seconds`` bounds padded audio seconds per batch."""

    train: str
    dev: str | None = None
    text_field: str = "normalized_text"
    min_duration: float = 0.3
    max_duration: float = 12.0
    max_batch_seconds: float = 100.0
    max_batch_size: int | None = 32
    num_buckets: int = 10
    dev_max_utterances: int | None = 100
    cache_dir: str | None = None  # default: "tts_cache" next to the train manifest
    pitch: bool = False  # compute frame F0 and energy (FastSpeech 2)

    def __post_init__(self) -> None:
        if self.text_field not in TEXT_FIELDS:
            raise ConfigError(f"text_field must be one of {list(TEXT_FIELDS)}, got {self.text_field!r}")
        if not 0 < self.min_duration < self.max_duration:
            raise ConfigError(f"need 0 < min_duration < max_duration, got {self.min_duration}, {self.max_duration}")
        if self.max_batch_seconds < self.max_duration:
            raise ConfigError(
                f"max_batch_seconds ({self.max_batch_seconds}) must be at least max_duration ({self.max_duration})"
            )

    def cache_folder(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else Path(self.train).parent / "tts_cache"


@dataclass
class TTSItem:
    """One utterance's training features (CPU tensors)."""

    id: str
    tokens: torch.Tensor  # (U,) long
    mel: torch.Tensor  # (n_mels, T) float16 in the cache
    f0: torch.Tensor | None = None  # (T,) Hz, 0 = unvoiced
    energy: torch.Tensor | None = None  # (T,)

    @property
    def frames(self) -> int:
        return int(self.mel.shape[-1])


def _cache_key(utts: Sequence[Utterance], text_field: str, mel: MelConfig, frontend: TextEncoder,
               pitch: bool) -> str:
    h = hashlib.sha1()
    h.update(json.dumps([CACHE_FORMAT, mel.to_dict(), frontend.to_dict(), text_field, pitch],
                        sort_keys=True).encode())
    for u in utts:
        h.update(f"{u.id}\t{u.audio}\t{u.offset}\t{u.duration}\t{getattr(u, text_field)}\n".encode())
    return h.hexdigest()[:12]


def compute_item(utt: Utterance, frontend: TextEncoder, mel_fn: MelSpectrogram, *, text_field: str,
                 pitch: bool) -> TTSItem:
    """Features of one utterance; raises AudioError/DataError naming the utterance when it is unusable."""
    cfg = mel_fn.config
    wave = load_utterance_audio(utt, cfg.sample_rate)
    if wave.size < cfg.n_fft:
        raise AudioError(f"{utt.audio}: utterance {utt.id!r} is too short ({wave.size} samples) for a mel frame")
    tokens = frontend.encode(getattr(utt, text_field))
    with torch.no_grad():
        mel = mel_fn(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)))
    item = TTSItem(utt.id, torch.tensor(tokens, dtype=torch.int32), mel.to(torch.float16))
    if pitch:
        from ..audio.pitch import estimate_f0, frame_energy

        f0, _ = estimate_f0(wave, cfg.sample_rate, cfg.hop_length)
        energy = frame_energy(wave, cfg)
        frames = item.frames
        item.f0 = torch.as_tensor(np.asarray(f0, dtype=np.float32)[:frames])
        item.energy = torch.as_tensor(np.asarray(energy, dtype=np.float32)[:frames])
        if item.f0.numel() != frames or item.energy.numel() != frames:
            raise DataError(f"{utt.id}: F0/energy frames ({item.f0.numel()}/{item.energy.numel()}) != mel frames "
                            f"({frames})")
    return item


def load_or_compute_items(
    utts: Sequence[Utterance], frontend: TextEncoder, mel_config: MelConfig, cache_dir: Path, *,
    text_field: str = "normalized_text", pitch: bool = False, name: str = "train", progress: bool = True,
) -> tuple[list[TTSItem], list[str]]:
    """Features of ``utts`` from the cache, computing (and caching) them when absent.

    Returns (items, problems): unusable utterances are left out and described in ``problems`` (one line each).
    """
    key = _cache_key(utts, text_field, mel_config, frontend, pitch)
    path = cache_dir / f"{name}-{key}.pt"
    if path.exists():
        data = torch.load(path, weights_only=True)
        items = [TTSItem(**d) for d in data["items"]]
        return items, list(data["problems"])
    from tqdm import tqdm

    mel_fn = MelSpectrogram(mel_config)
    items: list[TTSItem] = []
    problems: list[str] = []
    for utt in tqdm(utts, desc=f"TTS features ({name})", unit="utt", disable=not progress, file=sys.stderr):
        try:
            items.append(compute_item(utt, frontend, mel_fn, text_field=text_field, pitch=pitch))
        except (AudioError, DataError, OSError) as err:
            problems.append(f"{utt.id}: {err}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"items": [vars(i) for i in items], "problems": problems}, tmp)
    os.replace(tmp, path)
    return items, problems


def filter_utterances(utts: Sequence[Utterance], cfg: TTSDataConfig) -> tuple[list[Utterance], dict[str, int]]:
    """Keep utterances with text and a duration in [min, max]; counts of what was dropped and why."""
    kept, dropped = [], {"too short": 0, "too long": 0, "no text": 0}
    for u in utts:
        if not getattr(u, cfg.text_field).strip():
            dropped["no text"] += 1
        elif u.duration and u.duration < cfg.min_duration:
            dropped["too short"] += 1
        elif u.duration > cfg.max_duration:
            dropped["too long"] += 1
        else:
            kept.append(u)
    return kept, {k: v for k, v in dropped.items() if v}


# ----------------------------------------------------------------- datasets


class TTSDataset(torch.utils.data.Dataset):
    """Cached items -> dicts for :func:`collate_tts`; ``extras(item) -> dict`` adds per-item tensors (e.g.
    durations, token pitch and energy for FastSpeech 2)."""

    def __init__(self, items: Sequence[TTSItem],
                 extras: Callable[[TTSItem], dict[str, torch.Tensor]] | None = None) -> None:
        self.items = list(items)
        self.extras = extras

    def __len__(self) -> int:
        return len(self.items)

    def durations(self, hop_seconds: float) -> list[float]:
        return [item.frames * hop_seconds for item in self.items]

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        out = {"id": item.id, "tokens": item.tokens.long(), "mel": item.mel.float()}
        if self.extras is not None:
            out.update(self.extras(item))
        return out


def collate_tts(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pad :class:`TTSDataset` items: tokens with 0, mels with silence, any other (U,) tensor with 0."""
    if not items:
        raise DataError("cannot collate an empty list of TTS items")
    mels = [it["mel"].T for it in items]  # (T, n_mels) for pad_sequence
    batch: dict[str, Any] = {
        "ids": [it["id"] for it in items],
        "tokens": pad_sequence([it["tokens"] for it in items], batch_first=True, padding_value=0),
        "token_lens": torch.tensor([it["tokens"].numel() for it in items], dtype=torch.long),
        "mels": pad_sequence(mels, batch_first=True, padding_value=TTS_LOG_SILENCE).transpose(1, 2).contiguous(),
        "mel_lens": torch.tensor([m.shape[0] for m in mels], dtype=torch.long),
    }
    for key in items[0]:
        if key not in ("id", "tokens", "mel"):
            batch[key] = pad_sequence([it[key] for it in items], batch_first=True, padding_value=0)
    return batch


class VocoderDataset(torch.utils.data.Dataset):
    """Random ``segment_frames``-frame excerpts: ``{"wave" (frames * hop,), "mel" (n_mels, frames)}``.

    The audio is read from the utterances' files on each access; the mel comes from the cache (or from
    ``mel_override`` — e.g. an acoustic model's ground-truth-aligned mels for fine-tuning). Excerpt positions are
    drawn from ``(seed, epoch, index)``, so a run is reproducible; shorter utterances are padded with silence.
    """

    def __init__(self, utts: Sequence[Utterance], items: Sequence[TTSItem], mel_config: MelConfig,
                 segment_frames: int, *, seed: int = 0, random_segments: bool = True,
                 mel_override: dict[str, torch.Tensor] | None = None) -> None:
        by_id = {u.id: u for u in utts}
        self.pairs = [(by_id[i.id], i) for i in items if i.id in by_id]
        self.mel_config = mel_config
        self.segment_frames = segment_frames
        self.seed = seed
        self.random_segments = random_segments
        self.mel_override = mel_override or {}
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        utt, item = self.pairs[index]
        hop = self.mel_config.hop_length
        mel = self.mel_override.get(item.id, item.mel).float()
        wave = load_utterance_audio(utt, self.mel_config.sample_rate)
        frames = min(mel.shape[-1], wave.size // hop)
        seg = self.segment_frames
        if frames > seg:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            start = int(rng.integers(0, frames - seg + 1)) if self.random_segments else 0
        else:
            start = 0
        mel_seg = mel[:, start:min(start + seg, frames)]
        used = mel_seg.shape[-1] * hop  # samples of whole frames only: the wave matches its mel frame for frame
        wave_seg = torch.from_numpy(np.ascontiguousarray(wave[start * hop:start * hop + used], dtype=np.float32))
        if mel_seg.shape[-1] < seg:  # pad short utterances with silence
            pad = seg - mel_seg.shape[-1]
            mel_seg = torch.nn.functional.pad(mel_seg, (0, pad), value=TTS_LOG_SILENCE)
        wave_seg = torch.nn.functional.pad(wave_seg, (0, seg * hop - wave_seg.numel()))
        return {"id": item.id, "wave": wave_seg, "mel": mel_seg}


def collate_vocoder(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "ids": [it["id"] for it in items],
        "wave": torch.stack([it["wave"] for it in items]),
        "mels": torch.stack([it["mel"] for it in items]),
    }
