"""FastSpeech 2: shapes, masking, overfitting, speed / pitch / energy controls, streaming, config."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import yaml

from seqspeech.errors import ConfigError, DataError
from seqspeech.tts.alignment import length_regulate
from seqspeech.tts.fastspeech2 import (
    FastSpeech2,
    FastSpeech2Config,
    attention_mask,
    fastspeech2_base,
    fastspeech2_small,
)
from seqspeech.tts.mel import TTS_LOG_SILENCE

VOCAB, N_MELS = 12, 16
TINY = FastSpeech2Config(
    vocab_size=VOCAB, n_mels=N_MELS, d_model=32, encoder_layers=2, decoder_layers=2, heads=2, ff_dim=64,
    ff_kernel=3, dropout=0.0, variance_channels=32, variance_kernel=3, variance_dropout=0.0, pitch_bins=16,
    energy_bins=16, pitch_std=0.25, energy_mean=2.0, energy_std=0.5, postnet_layers=2, postnet_channels=32,
    postnet_kernel=3,
)


def tiny_model(**changes) -> FastSpeech2:
    torch.manual_seed(0)
    return FastSpeech2(dataclasses.replace(TINY, **changes))


def make_batch(seed: int = 0, token_lens: tuple[int, ...] = (6, 4), extra_tokens: int = 0,
               extra_frames: int = 0) -> dict:
    """Mels made of per-token spectra repeated by known durations; padding as the TTS batch layout has it."""
    gen = torch.Generator().manual_seed(seed)
    spectra = torch.randn(VOCAB, N_MELS, generator=gen)
    b, u = len(token_lens), max(token_lens) + extra_tokens
    tokens = torch.zeros(b, u, dtype=torch.long)
    durations = torch.zeros(b, u, dtype=torch.long)
    pitch, energy = torch.zeros(b, u), torch.zeros(b, u)
    for i, n in enumerate(token_lens):
        tokens[i, :n] = torch.randint(1, VOCAB, (n,), generator=gen)
        durations[i, :n] = torch.randint(1, 5, (n,), generator=gen)
        pitch[i, :n] = torch.randn(n, generator=gen)
        energy[i, :n] = torch.randn(n, generator=gen)
    mel_lens = durations.sum(1)
    frames = int(mel_lens.max()) + extra_frames
    mels = torch.full((b, N_MELS, frames), TTS_LOG_SILENCE)
    for i in range(b):
        n = int(mel_lens[i])
        mels[i, :, :n] = torch.repeat_interleave(spectra[tokens[i, : token_lens[i]]],
                                                 durations[i, : token_lens[i]], dim=0).T
    return {"tokens": tokens, "token_lens": torch.tensor(token_lens), "mels": mels, "mel_lens": mel_lens,
            "durations": durations, "pitch": pitch, "energy": energy, "ids": [f"utt{i}" for i in range(b)],
            "train_step": 0}


def set_durations(model: FastSpeech2, frames: float, spread: float = 0.0) -> None:
    """Make the duration predictor say about ``frames`` per token (log(d + 1) bias, shrunken weights)."""
    with torch.no_grad():
        model.duration_predictor.proj.weight.mul_(spread)
        model.duration_predictor.proj.bias.fill_(math.log(frames + 1.0))


# -- training ------------------------------------------------------------------------------------------------


def test_forward_returns_finite_scalars() -> None:
    out = tiny_model()(make_batch())
    assert set(out) == {"loss", "mel_loss", "postnet_loss", "duration_loss", "pitch_loss", "energy_loss"}
    for value in out.values():
        assert value.dim() == 0 and bool(torch.isfinite(value))
    total = sum(float(out[k]) for k in out if k != "loss")
    assert abs(float(out["loss"].detach()) - total) < 1e-4
    assert out["loss"].requires_grad


def test_extra_padding_does_not_change_the_losses() -> None:
    model = tiny_model().eval()
    plain = model(make_batch(seed=1))
    padded = model(make_batch(seed=1, extra_tokens=3, extra_frames=7))
    for key in plain:
        torch.testing.assert_close(padded[key], plain[key], atol=1e-5, rtol=1e-5)


def test_ground_truth_aligned_mels_follow_the_target_durations() -> None:
    """Frame-aligned with the recordings (their T frames), silence past each length, the post-net mel whose loss
    the model trains on, independent of batch padding; a model that learnt the toy mels reproduces them."""
    model = tiny_model().eval()
    batch = make_batch(seed=2)
    gta = model.ground_truth_aligned(batch)
    assert gta.shape == batch["mels"].shape
    n = int(batch["mel_lens"][1])
    assert bool((gta[1, :, n:] == TTS_LOG_SILENCE).all())
    untrained_err = (gta[0, :, : int(batch["mel_lens"][0])] - batch["mels"][0, :, : int(batch["mel_lens"][0])]).abs()
    padded = model.ground_truth_aligned(make_batch(seed=2, extra_tokens=2, extra_frames=5))
    torch.testing.assert_close(padded[:, :, : gta.size(2)], gta, atol=1e-5, rtol=1e-5)
    trained = tiny_model()
    opt = torch.optim.Adam(trained.parameters(), lr=3e-3)
    for _ in range(150):
        loss = trained(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    learnt = trained.eval().ground_truth_aligned(batch)
    err = (learnt[0, :, : int(batch["mel_lens"][0])] - batch["mels"][0, :, : int(batch["mel_lens"][0])]).abs()
    assert float(err.mean()) < 0.5 * float(untrained_err.mean())


def test_durations_must_sum_to_mel_lens() -> None:
    batch = make_batch()
    batch["mel_lens"] = batch["mel_lens"] + torch.tensor([0, 1])
    with pytest.raises(DataError, match="utt1"):
        tiny_model()(batch)
    batch = make_batch()
    del batch["pitch"]
    with pytest.raises(DataError, match="pitch"):
        tiny_model()(batch)


def test_overfits_one_tiny_batch() -> None:
    model = tiny_model()
    batch = make_batch(seed=2)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(80):
        out = model(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(float(out["loss"].detach()))
    assert losses[-1] < 0.2 * losses[0], losses[::10]


def test_mse_mel_loss_and_no_postnet() -> None:
    batch = make_batch()
    model = tiny_model(mel_loss="mse", postnet_layers=0)
    assert model.postnet is None
    out = model(batch)
    assert float(out["postnet_loss"]) == 0.0
    # recompute the MSE mel term by hand
    with torch.no_grad():
        token_pad = batch["tokens"] == 0
        x = model.encode(batch["tokens"], batch["token_lens"])
        x = x + model.pitch_embed(batch["pitch"])
        x = x + model.energy_embed(batch["energy"])
        y, _ = length_regulate(x, batch["durations"].masked_fill(token_pad, 0), max_len=batch["mels"].size(2))
        mel, _ = model.decode(y, batch["mel_lens"])
        err = [((mel[i, :n] - batch["mels"][i, :, :n].T) ** 2) for i, n in enumerate(batch["mel_lens"].tolist())]
        expected = torch.cat(err).mean()
    torch.testing.assert_close(out["mel_loss"], expected, atol=1e-5, rtol=1e-5)


# -- inference -----------------------------------------------------------------------------------------------


def test_infer_shapes_padding_invariance_and_determinism() -> None:
    model = tiny_model().eval()
    set_durations(model, 3.0, spread=0.3)
    batch = make_batch(seed=3, token_lens=(7, 3))
    out = model.infer(batch["tokens"], batch["token_lens"])
    b, t = out.mels.shape[0], out.mels.shape[2]
    assert out.mels.shape == (2, N_MELS, t) and b == 2 and t == int(out.mel_lens.max())
    assert out.durations.shape == (2, 7) and out.pitch.shape == (2, 7) and out.energy.shape == (2, 7)
    assert out.mel_lens.tolist() == out.durations.sum(1).tolist()
    assert bool((out.durations[1, 3:] == 0).all()) and bool((out.pitch[1, 3:] == 0).all())
    short = int(out.mel_lens[1])
    assert bool((out.mels[1, :, short:] == TTS_LOG_SILENCE).all())
    alone = model.infer(batch["tokens"][1:2, :3])
    assert alone.durations[0].tolist() == out.durations[1, :3].tolist()
    torch.testing.assert_close(alone.mels[0], out.mels[1, :, :short], atol=1e-5, rtol=1e-5)
    again = model.infer(batch["tokens"], batch["token_lens"])
    assert torch.equal(again.mels, out.mels)


def test_speed_two_halves_the_length() -> None:
    model = tiny_model().eval()
    set_durations(model, 6.0, spread=0.2)
    tokens = make_batch(seed=4, token_lens=(9,))["tokens"]
    normal = model.infer(tokens)
    fast = model.infer(tokens, speed=2.0)
    slow = model.infer(tokens, speed=0.5)
    n = tokens.size(1)
    assert abs(int(fast.mel_lens[0]) - int(normal.mel_lens[0]) / 2) <= n / 2 + 1
    assert abs(int(slow.mel_lens[0]) - 2 * int(normal.mel_lens[0])) <= n
    assert int(fast.mel_lens[0]) < int(normal.mel_lens[0]) < int(slow.mel_lens[0])
    assert fast.mels.shape[2] == int(fast.mel_lens[0])


def test_pitch_shift_moves_the_pitch_embedding_input() -> None:
    model = tiny_model().eval()
    set_durations(model, 2.0)
    seen: list[torch.Tensor] = []
    model.pitch_embedding.register_forward_hook(lambda module, args, output: seen.append(args[0].clone()))
    tokens = make_batch(seed=5, token_lens=(8,))["tokens"]
    base = model.infer(tokens)
    up = model.infer(tokens, pitch_shift=12.0)  # one octave
    offset = math.log(2.0) / TINY.pitch_std
    torch.testing.assert_close(up.pitch - base.pitch, torch.full_like(base.pitch, offset))
    assert len(seen) == 2
    torch.testing.assert_close(seen[0], torch.bucketize(base.pitch, model.pitch_boundaries))
    torch.testing.assert_close(seen[1], torch.bucketize(base.pitch + offset, model.pitch_boundaries))
    assert bool((seen[1] >= seen[0]).all()) and bool((seen[1] > seen[0]).any())
    assert not torch.allclose(up.mels, base.mels)


def test_energy_scale_multiplies_linear_energy() -> None:
    model = tiny_model().eval()
    set_durations(model, 2.0)
    tokens = make_batch(seed=6, token_lens=(8,))["tokens"]
    base = model.infer(tokens)
    louder = model.infer(tokens, energy_scale=1.5)
    linear = base.energy * TINY.energy_std + TINY.energy_mean
    torch.testing.assert_close(louder.energy * TINY.energy_std + TINY.energy_mean, 1.5 * linear)


def test_infer_rejects_bad_inputs() -> None:
    model = tiny_model().eval()
    with pytest.raises(DataError, match="token ids"):
        model.infer(torch.tensor([[1, 2, VOCAB]]))
    with pytest.raises(DataError, match="token_lens"):
        model.infer(torch.tensor([[1, 2, 3]]), torch.tensor([0]))
    with pytest.raises(ConfigError, match="speed"):
        model.infer(torch.tensor([[1, 2, 3]]), speed=0.0)
    with pytest.raises(ConfigError, match="energy_scale"):
        model.infer(torch.tensor([[1, 2, 3]]), energy_scale=-1.0)
    with pytest.raises(ConfigError, match="chunk_frames"):
        next(model.infer_stream(torch.tensor([1, 2, 3]), chunk_frames=0))


def test_max_frames_caps_the_output() -> None:
    model = tiny_model().eval()
    set_durations(model, 5.0)
    out = model.infer(torch.tensor([[1, 2, 3, 4]]), max_frames=7)
    assert out.mels.shape[2] == 7 and out.mel_lens.tolist() == [7]


# -- streaming -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("window", [2, None])
@pytest.mark.parametrize("chunk", [1, 5, 16])
def test_infer_stream_equals_infer(window: int | None, chunk: int) -> None:
    model = tiny_model(decoder_window=window).eval()
    set_durations(model, 4.0, spread=0.3)
    tokens = make_batch(seed=7, token_lens=(10,))["tokens"][0]
    full = model.infer(tokens)
    chunks = list(model.infer_stream(tokens, chunk_frames=chunk))
    assert all(c.shape[0] == N_MELS and 0 < c.shape[1] <= chunk for c in chunks)
    streamed = torch.cat(chunks, dim=1)
    assert streamed.shape == full.mels[0].shape and streamed.shape[1] > 2 * chunk
    assert float((streamed - full.mels[0]).abs().max()) < 1e-5


def test_decoder_window_bounds_the_receptive_field() -> None:
    """Output frame t depends on exactly the regulated frames t - context .. t + context (gradient support)."""
    model = tiny_model(decoder_window=2).eval()
    context = model.stream_context
    assert context == 2 * (2 + 1) + 2 * 1  # decoder layers * (window + ff_kernel // 2) + postnet layers * 1
    x = torch.randn(1, 40, TINY.d_model, requires_grad=True)
    _, mel = model.decode(x, torch.tensor([40]))
    t = 15
    (grad,) = torch.autograd.grad(mel[0, t].sum(), x)
    support = (grad[0].abs().amax(dim=-1) > 0).nonzero().flatten().tolist()
    assert support == list(range(t - context, t + context + 1))


def test_attention_mask() -> None:
    visible = attention_mask(torch.tensor([3, 5]), 5, window=1)
    assert visible.shape == (2, 1, 5, 5)
    assert visible[0, 0].int().tolist() == [
        [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [0, 1, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1],
    ]
    assert visible[1, 0, 2].int().tolist() == [0, 1, 1, 1, 0]


# -- config --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"vocab_size": 1}, {"d_model": 30, "heads": 4}, {"d_model": 33, "heads": 1}, {"ff_kernel": 4},
        {"variance_kernel": 2}, {"postnet_kernel": 0}, {"dropout": 1.0}, {"variance_dropout": -0.1},
        {"pitch_min": 1.0, "pitch_max": 1.0}, {"energy_max": float("inf")}, {"pitch_std": 0.0},
        {"energy_std": -1.0}, {"pitch_mean": float("nan")}, {"pitch_bins": 1}, {"postnet_layers": -1},
        {"decoder_window": 0}, {"mel_loss": "l2"}, {"heads": True},
    ],
)
def test_config_validation(changes: dict) -> None:
    with pytest.raises(ConfigError):
        dataclasses.replace(TINY, **changes)


def test_config_round_trip_and_strictness() -> None:
    config = dataclasses.replace(TINY, decoder_window=8, mel_loss="mse")
    data = yaml.safe_load(yaml.safe_dump(config.to_dict()))
    assert FastSpeech2Config.from_dict(data) == config
    data["d_modle"] = 3
    with pytest.raises(ConfigError, match="d_modle"):
        FastSpeech2Config.from_dict(data)


def test_normalize_pitch_and_energy() -> None:
    config = dataclasses.replace(TINY, pitch_mean=math.log(100.0), pitch_std=0.5)
    out = config.normalize_pitch(torch.tensor([0.0, 100.0, 200.0]))
    torch.testing.assert_close(out, torch.tensor([0.0, 0.0, math.log(2.0) / 0.5]))
    torch.testing.assert_close(TINY.normalize_energy(torch.tensor([2.5])), torch.tensor([1.0]))


def test_presets() -> None:
    small = FastSpeech2(fastspeech2_small(80))
    count = sum(p.numel() for p in small.parameters())
    assert 3e6 <= count <= 6e6, count
    base = fastspeech2_base(80, decoder_window=16)
    assert (base.d_model, base.encoder_layers, base.decoder_layers, base.ff_kernel) == (256, 4, 4, 9)
    assert base.decoder_window == 16
