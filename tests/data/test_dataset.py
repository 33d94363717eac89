"""seqspeech.data.dataset and seqspeech.data.collate on small synthetic WAV files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from seqspeech.audio.augment import WaveAugment, WaveAugmentConfig
from seqspeech.audio.features import Fbank
from seqspeech.data.collate import collate_speech
from seqspeech.data.dataset import (
    FeatureConfig,
    SkipReport,
    SpeechDataset,
    build_frontend,
    compute_feature_stats,
    load_utterance_audio,
    prepare_utterances,
)
from seqspeech.data.manifest import Utterance
from seqspeech.errors import AudioError, ConfigError, DataError
from seqspeech.text.tokenizers.char import CharTokenizer

SR = 16000


def _write_wav(path: Path, seconds: float, seed: int = 0, sr: int = SR) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wave = 0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.01 * rng.standard_normal(t.size)
    sf.write(path, wave.astype(np.float32), sr, subtype="PCM_16")
    return path


@pytest.fixture()
def tokenizer() -> CharTokenizer:
    return CharTokenizer.train(["hello world", "good morning"])


@pytest.fixture()
def utts(tmp_path) -> list[Utterance]:
    out = []
    for i, (seconds, text) in enumerate([(1.0, "hello"), (0.5, "good"), (1.5, "hello world")]):
        path = _write_wav(tmp_path / f"u{i}.wav", seconds, seed=i)
        out.append(Utterance(f"u{i}", str(path), seconds, text, text))
    return out


def _frontend():
    return build_frontend(FeatureConfig()).eval()


# ---------------------------------------------------------------- front end


def test_frontend_matches_fbank_on_int16_scale():
    wave = torch.from_numpy(np.random.default_rng(0).uniform(-0.5, 0.5, 8000).astype(np.float32))
    feats = _frontend()(wave)
    expected, _ = Fbank()(wave[None] * 32768)
    assert feats.shape == (48, 80)
    torch.testing.assert_close(feats, expected[0])


def test_feature_config_validation():
    with pytest.raises(ConfigError, match="type"):
        FeatureConfig(type="mfcc")
    with pytest.raises(ConfigError, match="num_mel_bins"):
        FeatureConfig(num_mel_bins=0)
    assert build_frontend(FeatureConfig(num_mel_bins=40))(torch.zeros(1600)).shape == (8, 40)


# ---------------------------------------------------------------- dataset


def test_getitem_returns_features_tokens_duration(utts, tokenizer):
    ds = SpeechDataset(utts, tokenizer, _frontend())
    assert len(ds) == 3
    item = ds[2]
    assert item["id"] == "u2"
    assert item["features"].dtype == torch.float32 and item["features"].shape == (148, 80)
    assert item["tokens"].dtype == torch.long
    assert tokenizer.decode(item["tokens"].tolist()) == "hello world"
    assert item["duration"] == pytest.approx(1.5)


def test_offset_reads_only_the_span(tmp_path, tokenizer):
    path = tmp_path / "long.wav"
    silence = np.zeros(SR, np.float32)
    wave = np.concatenate([silence, np.full(SR // 2, 0.5, np.float32), silence])
    sf.write(path, wave, SR, subtype="FLOAT")
    utt = Utterance("span", str(path), 0.5, "hello", "hello", offset=1.0)
    span = load_utterance_audio(utt, SR)
    assert span.size == SR // 2
    np.testing.assert_allclose(span, 0.5)
    # resampled on the way (8 kHz request)
    assert load_utterance_audio(utt, 8000).size == 4000
    # duration 0 with an offset: to the end of the file
    rest = load_utterance_audio(Utterance("rest", str(path), 0.0, "x", "x", offset=2.0), SR)
    assert rest.size == SR // 2
    with pytest.raises(AudioError, match="past the end"):
        load_utterance_audio(Utterance("late", str(path), 0.5, "x", "x", offset=9.0), SR)
    item = SpeechDataset([utt], tokenizer, _frontend())[0]
    assert item["features"].shape[0] == 48


def test_unreadable_audio_gives_none_and_warns_once(tmp_path, tokenizer, caplog):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav file at all")
    utts = [
        Utterance("b1", str(bad), 1.0, "hello", "hello"),
        Utterance("b2", str(tmp_path / "missing.wav"), 1.0, "hello", "hello"),
    ]
    ds = SpeechDataset(utts, tokenizer, _frontend())
    with caplog.at_level(logging.WARNING, logger="seqspeech.data.dataset"):
        assert ds[0] is None and ds[0] is None and ds[1] is None
    messages = [r.getMessage() for r in caplog.records]
    assert sum(str(bad) in m for m in messages) == 1
    assert any("missing.wav" in m for m in messages)


def test_augmentation_seeded_per_epoch_and_index(utts, tokenizer):
    augment = WaveAugment(WaveAugmentConfig(speeds=(0.9, 1.1), noise_prob=1.0))
    ds = SpeechDataset(utts, tokenizer, _frontend(), augment=augment, seed=3)
    again = SpeechDataset(utts, tokenizer, _frontend(), augment=augment, seed=3)
    a, b = ds[0], again[0]
    torch.testing.assert_close(a["features"], b["features"], rtol=0, atol=0)  # independent of the process
    assert a["duration"] != pytest.approx(1.0)  # speed-perturbed
    changed = []
    for epoch in range(1, 5):
        ds.set_epoch(epoch)
        item = ds[0]
        same = item["features"].shape == a["features"].shape and torch.equal(item["features"], a["features"])
        changed.append(not same)
    assert any(changed)
    ds.set_epoch(0)
    torch.testing.assert_close(ds[0]["features"], a["features"], rtol=0, atol=0)


def test_dataset_in_dataloader_with_collate(utts, tokenizer):
    ds = SpeechDataset(utts, tokenizer, _frontend())
    loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=collate_speech)
    batch = next(iter(loader))
    assert batch["features"].shape == (3, 148, 80)
    assert batch["feature_lens"].tolist() == [98, 48, 148]
    assert batch["ids"] == ["u0", "u1", "u2"]
    assert batch["num_skipped"] == 0 and batch["empty"] is False


# ---------------------------------------------------------------- collate


def _item(name: str, frames: int, tokens: list[int], dim: int = 4) -> dict:
    return {
        "id": name,
        "features": torch.full((frames, dim), 1.0 + frames),
        "tokens": torch.tensor(tokens, dtype=torch.long),
        "duration": frames / 100,
    }


def test_collate_pads_and_counts_skipped():
    batch = collate_speech([_item("a", 5, [3, 4]), None, _item("b", 3, [5, 6, 7]), None])
    assert batch["features"].shape == (2, 5, 4)
    assert torch.equal(batch["features"][1, 3:], torch.zeros(2, 4))
    assert torch.equal(batch["features"][1, :3], torch.full((3, 4), 4.0))
    assert batch["feature_lens"].tolist() == [5, 3]
    assert batch["tokens"].tolist() == [[3, 4, -1], [5, 6, 7]]
    assert batch["token_lens"].tolist() == [2, 3]
    assert batch["ids"] == ["a", "b"]
    assert batch["durations"].tolist() == pytest.approx([0.05, 0.03])
    assert batch["num_skipped"] == 2 and batch["empty"] is False


def test_collate_all_none_is_empty_batch():
    batch = collate_speech([None, None])
    assert batch["empty"] is True and batch["num_skipped"] == 2
    assert batch["features"].shape[0] == 0 and batch["ids"] == []
    assert batch["feature_lens"].numel() == 0 and batch["tokens"].shape[0] == 0


def test_collate_empty_token_sequences():
    batch = collate_speech([_item("a", 2, []), _item("b", 2, [])])
    assert batch["tokens"].shape == (2, 0) and batch["token_lens"].tolist() == [0, 0]


# ---------------------------------------------------------------- prepare_utterances


def test_prepare_utterances_counts_each_reason(tmp_path, tokenizer):
    good = _write_wav(tmp_path / "good.wav", 1.0)
    unmeasured = _write_wav(tmp_path / "unmeasured.wav", 0.8)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF junk")
    items = [
        Utterance("ok", str(good), 1.0, "hello", "hello"),
        Utterance("measure", str(unmeasured), 0.0, "hello", "hello"),
        Utterance("unreadable", str(bad), 0.0, "hello", "hello"),
        Utterance("empty", str(good), 1.0, "x", "   "),
        Utterance("short", str(good), 0.05, "hello", "hello"),
        Utterance("long", str(good), 30.0, "hello", "hello"),
        Utterance("unk", str(good), 1.0, "hello!", "hello!"),
        Utterance("ctc", str(good), 0.2, "hello world", "hello world"),  # 11 tokens > 0.2 * 25 = 5
    ]
    kept, report = prepare_utterances(items, tokenizer)
    assert [u.id for u in kept] == ["ok", "measure", "unk"]
    assert kept[1].duration == pytest.approx(0.8)
    assert report.total == 8 and report.skipped == 5 and report.kept == 3
    assert report.counts == {
        "unreadable audio": 1, "empty transcript": 1, "too short": 1, "too long": 1,
        "too many tokens for CTC": 1,
    }
    assert report.unknown_kept == 1
    assert report.examples["too long"] == ["long"]
    text = str(report)
    assert text.startswith("skipped 5 of 8: ") and "1 unreadable audio" in text
    assert "kept 1 with unknown" in text
    assert "e.g. long" in report.describe()

    kept, report = prepare_utterances(items, tokenizer, drop_unknown=True, max_tokens_per_second=5.5)
    assert [u.id for u in kept] == ["ok"]  # "measure": 5 tokens in 0.8 s > 5.5/s
    assert report.counts["unknown characters"] == 1
    assert report.counts["too many tokens per second"] == 1


def test_skip_report_str_format():
    report = SkipReport(total=1000)
    report.add("unreadable audio", "a")
    report.add("unreadable audio", "b")
    report.add("empty transcript", "c")
    assert str(report) == "skipped 3 of 1000: 2 unreadable audio, 1 empty transcript"
    assert str(SkipReport(total=4)) == "skipped 0 of 4"


# ---------------------------------------------------------------- stats


def test_compute_feature_stats_matches_direct_computation(utts, tokenizer, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"junk")
    ds = SpeechDataset([*utts, Utterance("bad", str(bad), 1.0, "hello", "hello")], tokenizer, _frontend())
    mean, std = compute_feature_stats(ds, max_items=10)
    feats = torch.cat([ds[i]["features"] for i in range(3)]).double()
    torch.testing.assert_close(mean, feats.mean(0).float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(std, feats.std(0, unbiased=False).float(), rtol=1e-4, atol=1e-5)
    assert mean.shape == (80,) and mean.dtype == torch.float32
    with pytest.raises(DataError, match="no"):
        compute_feature_stats(SpeechDataset(ds.utterances[3:], tokenizer, _frontend()))
