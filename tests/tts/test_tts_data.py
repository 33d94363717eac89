"""TTS data pipeline: feature cache, batches, vocoder excerpts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from seqspeech.data.manifest import Utterance
from seqspeech.errors import ConfigError, DataError
from seqspeech.tts.data import (
    TTSDataConfig, TTSDataset, VocoderDataset, collate_tts, collate_vocoder, filter_utterances,
    load_or_compute_items,
)
from seqspeech.tts.mel import TTS_LOG_SILENCE, MelConfig, MelSpectrogram


class Letters:
    """A stand-in text encoder: a..z -> 1..26."""

    def encode(self, text: str) -> list[int]:
        ids = [ord(c) - 96 for c in text.lower() if "a" <= c <= "z"]
        if not ids:
            raise DataError(f"nothing speakable in {text!r}")
        return ids

    def to_dict(self) -> dict:
        return {"kind": "letters"}


def _utts(tmp_path: Path, seconds: list[float], texts: list[str] | None = None) -> list[Utterance]:
    rng = np.random.default_rng(0)
    out = []
    for i, s in enumerate(seconds):
        t = np.arange(int(s * 16000)) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (150 + 50 * i) * t) + 0.01 * rng.standard_normal(t.size)
        path = tmp_path / f"u{i}.wav"
        sf.write(path, wave.astype(np.float32), 16000)
        out.append(Utterance(id=f"u{i}", audio=str(path), duration=s, text="",
                             normalized_text=(texts or [f"hello number {i}"] * len(seconds))[i]))
    return out


def test_items_cached_and_match_a_fresh_mel(tmp_path: Path) -> None:
    utts = _utts(tmp_path, [0.5, 1.0, 0.8])
    cache = tmp_path / "cache"
    items, problems = load_or_compute_items(utts, Letters(), MelConfig(), cache, progress=False)
    assert problems == [] and [i.id for i in items] == ["u0", "u1", "u2"]
    wave, _ = sf.read(utts[1].audio, dtype="float32")
    expected = MelSpectrogram()(torch.from_numpy(wave))
    assert items[1].mel.shape == expected.shape == (80, 16000 // 256)
    torch.testing.assert_close(items[1].mel.float(), expected, atol=2e-2, rtol=1e-2)  # cached as float16
    assert items[0].tokens.tolist() == Letters().encode("hello number 0")
    files = list(cache.glob("*.pt"))
    assert len(files) == 1
    again, _ = load_or_compute_items(utts, Letters(), MelConfig(), cache, progress=False)  # from the cache
    assert torch.equal(again[2].mel, items[2].mel)
    changed = [utts[0], utts[1], Utterance(**{**utts[2].to_dict(), "normalized_text": "other words"})]
    load_or_compute_items(changed, Letters(), MelConfig(), cache, progress=False)
    assert len(list(cache.glob("*.pt"))) == 2  # another text: another cache key


def test_unusable_utterances_reported_not_fatal(tmp_path: Path) -> None:
    utts = _utts(tmp_path, [0.5, 0.5], texts=["fine", "1234 !!"])
    utts.append(Utterance(id="gone", audio=str(tmp_path / "missing.wav"), duration=1.0, text="", normalized_text="x"))
    items, problems = load_or_compute_items(utts, Letters(), MelConfig(), tmp_path / "c", progress=False)
    assert [i.id for i in items] == ["u0"]
    assert len(problems) == 2 and problems[0].startswith("u1:") and "missing.wav" in problems[1]


def test_filter_and_config_validation(tmp_path: Path) -> None:
    cfg = TTSDataConfig(train="x.jsonl", min_duration=0.3, max_duration=2.0, max_batch_seconds=10)
    utts = [Utterance(id=str(i), audio="a.wav", duration=d, text="", normalized_text=t)
            for i, (d, t) in enumerate([(0.1, "a"), (1.0, "b"), (3.0, "c"), (1.0, " ")])]
    kept, dropped = filter_utterances(utts, cfg)
    assert [u.id for u in kept] == ["1"] and dropped == {"too short": 1, "too long": 1, "no text": 1}
    with pytest.raises(ConfigError, match="max_batch_seconds"):
        TTSDataConfig(train="x", max_duration=20, max_batch_seconds=10)
    with pytest.raises(ConfigError, match="text_field"):
        TTSDataConfig(train="x", text_field="words")
    assert TTSDataConfig(train="data/c/train.jsonl").cache_folder() == Path("data/c/tts_cache")


def test_collate_pads_tokens_mels_and_extras(tmp_path: Path) -> None:
    items, _ = load_or_compute_items(_utts(tmp_path, [0.5, 1.0]), Letters(), MelConfig(), tmp_path / "c",
                                     progress=False)
    ds = TTSDataset(items, extras=lambda it: {"durations": torch.ones(it.tokens.numel(), dtype=torch.long)})
    batch = collate_tts([ds[0], ds[1]])
    assert batch["tokens"].shape == (2, 11) and batch["token_lens"].tolist() == [11, 11]
    assert batch["mels"].shape == (2, 80, 62) and batch["mel_lens"].tolist() == [31, 62]
    assert torch.all(batch["mels"][0, :, 31:] == TTS_LOG_SILENCE)
    torch.testing.assert_close(batch["mels"][1], items[1].mel.float())
    assert batch["durations"].shape == (2, 11) and batch["ids"] == ["u0", "u1"]
    assert ds.durations(MelConfig().frame_seconds) == pytest.approx([31 * 0.016, 62 * 0.016])
    with pytest.raises(DataError, match="empty"):
        collate_tts([])


def test_vocoder_segments_align_wave_and_mel(tmp_path: Path) -> None:
    utts = _utts(tmp_path, [1.0, 0.3])
    items, _ = load_or_compute_items(utts, Letters(), MelConfig(), tmp_path / "c", progress=False)
    ds = VocoderDataset(utts, items, MelConfig(), segment_frames=16, seed=3)
    first = ds[0]
    assert first["wave"].shape == (16 * 256,) and first["mel"].shape == (80, 16)
    # the excerpt's mel is the cached mel of the same frames (the mel of the excerpt alone differs at the edges)
    mel = items[0].mel.float()
    starts = [s for s in range(mel.shape[-1] - 15) if torch.equal(mel[:, s:s + 16], first["mel"])]
    assert len(starts) == 1
    wave, _ = sf.read(utts[0].audio, dtype="float32")
    s = starts[0] * 256
    torch.testing.assert_close(first["wave"], torch.from_numpy(wave[s:s + 16 * 256]))
    ds.set_epoch(1)
    assert not torch.equal(ds[0]["mel"], first["mel"]) or mel.shape[-1] == 16  # new draw each epoch
    short = ds[1]  # 18 frames >= 16: fine; a 0.3 s clip padded when shorter than the segment
    assert short["wave"].shape == (16 * 256,)
    long_seg = VocoderDataset(utts, items, MelConfig(), segment_frames=40, seed=3)[1]
    assert long_seg["mel"].shape == (80, 40) and torch.all(long_seg["mel"][:, 18:] == TTS_LOG_SILENCE)
    assert torch.all(long_seg["wave"][18 * 256:] == 0)
    batch = collate_vocoder([ds[0], ds[1]])
    assert batch["wave"].shape == (2, 4096) and batch["mels"].shape == (2, 80, 16)


TTS_RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "synth_slt"


@pytest.mark.parametrize("name", sorted(p.stem for p in TTS_RECIPES.glob("*.yaml")))
def test_shipped_tts_recipes_load_and_build_their_models(name):
    """Every recipe of recipes/synth_slt/ is a valid strict config whose model section builds (presets included)."""
    import yaml

    from seqspeech.tasks.tts import load_recipe, model_config
    from seqspeech.tts.package import tts_family_parts

    path = TTS_RECIPES / f"{name}.yaml"
    recipe = load_recipe(yaml.safe_load(path.read_text()), str(path))
    config = model_config(recipe, vocab_size=77)
    model = tts_family_parts(recipe.family)[1](config)
    assert sum(p.numel() for p in model.parameters()) > 0
    if name.startswith("hifigan"):
        assert config.head == "istft" and config.discriminator_channels == 128
