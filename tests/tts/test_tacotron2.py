"""Tacotron 2: config, shapes, masking, losses, stop token, inference limits, streaming, explicit state, overfitting."""

from __future__ import annotations

import math

import pytest
import torch

from seqspeech.errors import ConfigError, DataError
from seqspeech.losses import guided_attention_loss
from seqspeech.nn.attention import LocationAwareAttention
from seqspeech.nn.attention.location import LocationAttentionState
from seqspeech.training.sampling import GuidedAttentionConfig
from seqspeech.tts.mel import TTS_LOG_SILENCE
from seqspeech.tts.tacotron2 import (
    DecoderState,
    Postnet,
    Tacotron2,
    Tacotron2Config,
    stop_targets,
    tacotron2_base,
    tacotron2_small,
)

VOCAB, MELS = 12, 6


def tiny(**overrides) -> Tacotron2Config:
    fields = dict(
        vocab_size=VOCAB, n_mels=MELS, embed_dim=16, encoder_convs=2, encoder_kernel=3, encoder_dim=16,
        attention_dim=8, attention_rnn_dim=16, decoder_dim=16, decoder_layers=1, prenet_dim=8, location_filters=4,
        location_kernel=5, postnet_dim=8, postnet_layers=3, postnet_kernel=3, reduction=1, max_decoder_steps=16,
    )
    fields.update(overrides)
    return Tacotron2Config(**fields)


def build(seed: int = 0, **overrides) -> Tacotron2:
    torch.manual_seed(seed)
    return Tacotron2(tiny(**overrides))


def make_batch(token_lens=(5, 3), frames_per_token: int = 2, seed: int = 0, extra_tokens: int = 0,
               extra_frames: int = 0) -> dict:
    """Tokens in [1, VOCAB) padded with 0; each token's mel is a fixed random prototype held for
    ``frames_per_token`` frames (a learnable toy "speech"); mels padded with TTS_LOG_SILENCE."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(VOCAB, MELS, generator=g) * 2.0 - 4.0
    batch = len(token_lens)
    u = max(token_lens) + extra_tokens
    mel_lens = [n * frames_per_token for n in token_lens]
    t = max(mel_lens) + extra_frames
    tokens = torch.zeros(batch, u, dtype=torch.long)
    mels = torch.full((batch, MELS, t), TTS_LOG_SILENCE)
    for b, n in enumerate(token_lens):
        ids = torch.randint(1, VOCAB, (n,), generator=g)
        tokens[b, :n] = ids
        mels[b, :, : mel_lens[b]] = protos[ids].repeat_interleave(frames_per_token, dim=0).T
    return {"tokens": tokens, "token_lens": torch.tensor(token_lens), "mels": mels,
            "mel_lens": torch.tensor(mel_lens), "ids": [str(b) for b in range(batch)]}


def seeded(seed: int = 7) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------
# Config


@pytest.mark.parametrize(
    "bad",
    [
        {"vocab_size": 1}, {"n_mels": 0}, {"n_mels": True}, {"encoder_dim": 15}, {"encoder_kernel": 4},
        {"location_kernel": 30}, {"postnet_kernel": 2}, {"prenet_dropout": 1.0}, {"dropout": -0.1},
        {"rnn_dropout": float("nan")}, {"stop_threshold": 0.0}, {"stop_threshold": 1.0}, {"stop_pos_weight": 0.0},
        {"reduction": 0}, {"decoder_layers": 0}, {"mel_loss": "l2"}, {"max_decoder_steps": 0},
        {"postnet_layers": 0}, {"guided_attention": {"weight": 1.0}},
    ],
)
def test_config_validation(bad: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(bad))):
        tiny(**bad)


def test_to_dict_from_dict_round_trip_and_strict_keys() -> None:
    for config in (tiny(), tiny(guided_attention=None, mel_loss="l1_mse", reduction=3),
                   tiny(guided_attention=GuidedAttentionConfig(weight=2.0, sigma=0.3, half_life=50, stop_step=9))):
        data = config.to_dict()
        assert Tacotron2Config.from_dict(data) == config
    data = tiny().to_dict()
    with pytest.raises(ConfigError, match="encoder_dimm"):
        Tacotron2Config.from_dict({**data, "encoder_dimm": 3})
    with pytest.raises(ConfigError, match="halflife"):
        Tacotron2Config.from_dict({**data, "guided_attention": {"halflife": 3}})
    with pytest.raises(ConfigError, match="encoder_kernel"):
        Tacotron2Config.from_dict({**data, "encoder_kernel": 4})


def test_presets_sizes() -> None:
    def count(config: Tacotron2Config) -> int:
        with torch.device("meta"):
            return sum(p.numel() for p in Tacotron2(config).parameters())

    assert 3e6 <= count(tacotron2_small(100)) <= 6e6
    base = tacotron2_base(100)
    assert (base.embed_dim, base.encoder_dim, base.decoder_dim, base.postnet_dim, base.reduction) == (512, 512, 1024,
                                                                                                        512, 1)
    assert 24e6 <= count(base) <= 32e6  # the paper's model is ~28 M parameters
    assert tacotron2_small(100, reduction=3).reduction == 3
    with pytest.raises(ConfigError):
        tacotron2_small(100, reduction=0)
    assert tiny().postnet_context == 3


def test_model_from_config_reloads_and_parts_are_swappable() -> None:
    model = build(max_decoder_steps=5).eval()
    assert model.config == tiny(max_decoder_steps=5)
    again = Tacotron2(Tacotron2Config.from_dict(model.config.to_dict()))  # what a checkpoint loader does
    again.load_state_dict(model.state_dict())
    tokens = make_batch()["tokens"]
    torch.testing.assert_close(again.infer(tokens, generator=seeded(1)).mels,
                               model.infer(tokens, generator=seeded(1)).mels)
    plain = LocationAwareAttention(16, 16, 8, conv_channels=4, kernel_size=5)  # without cumulative features
    swapped = Tacotron2(tiny(max_decoder_steps=5), attention=plain)
    assert swapped.attention is plain and swapped.infer(tokens).mels.shape[:2] == (2, MELS)
    with pytest.raises(ConfigError, match="Tacotron2Config"):
        Tacotron2(tiny().to_dict())


# ----------------------------------------------------------------
# Building blocks


def test_stop_targets_hand_example() -> None:
    targets, mask = stop_targets(torch.tensor([3, 5]), frames=6, reduction=2)
    assert targets.tolist() == [[0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1]]
    assert mask.tolist() == [[True] * 4 + [False] * 2, [True] * 6]


def test_postnet_receptive_field_is_its_context() -> None:
    torch.manual_seed(0)
    postnet = Postnet(4, 6, layers=3, kernel_size=3).eval()
    assert postnet.context == 3
    x = torch.randn(1, 4, 20)
    y = x.clone()
    y[:, :, 10] += 1.0
    changed = (postnet(y) - postnet(x)).abs().amax(dim=1)[0] > 0
    assert changed.nonzero().flatten().tolist() == list(range(7, 14))


def test_prenet_dropout_stays_on_in_eval_and_follows_the_generator() -> None:
    model = build().eval()
    frame = torch.randn(3, MELS)
    a, b = model.prenet(frame, seeded(1)), model.prenet(frame, seeded(1))
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, model.prenet(frame, seeded(2)))


# ----------------------------------------------------------------
# Training forward


@pytest.mark.parametrize("r", [1, 2, 3])
def test_forward_scalars_shapes_and_gradients(r: int) -> None:
    model = build(reduction=r).train()
    batch = make_batch(token_lens=(5, 3, 4), frames_per_token=3)
    out = model({**batch, "train_step": 3})
    assert {"loss", "mel_loss", "postnet_loss", "stop_loss", "guided_loss", "guided_weight"} <= set(out)
    assert all(v.dim() == 0 and torch.isfinite(v) for v in out.values())
    out["loss"].backward()
    assert model.frame_proj.weight.grad is not None and model.encoder.embedding.weight.grad is not None
    # teacher-forced shapes: T = 15 frames -> ceil(15 / r) steps of r frames
    memory, lens = model.encoder(batch["tokens"], batch["token_lens"])
    frames, stops, align = model.teacher_forced(memory, lens, batch["mels"])
    steps = math.ceil(15 / r)
    assert frames.shape == (3, MELS, steps * r) and stops.shape == (3, steps * r) and align.shape == (3, steps, 5)


def test_padding_does_not_change_losses_or_outputs() -> None:
    """Extra padding (tokens and frames) leaves every loss unchanged: masking in the encoder, post-net and losses."""
    model = build(prenet_dropout=0.0, reduction=2).eval()
    plain = model(make_batch())
    padded = model(make_batch(extra_tokens=3, extra_frames=5))
    for key in ("loss", "mel_loss", "postnet_loss", "stop_loss", "guided_loss"):
        torch.testing.assert_close(padded[key], plain[key], atol=1e-5, rtol=1e-5)


def test_guided_attention_weight_decays_with_train_step() -> None:
    cfg = GuidedAttentionConfig(weight=2.0, sigma=0.2, half_life=10, stop_step=100)
    model = build(guided_attention=cfg).train()
    batch = make_batch()
    weights = []
    for step in (0, 10, 20, 100):
        out = model({**batch, "train_step": step})
        weights.append(float(out["guided_weight"]))
        expected = out["mel_loss"] + out["postnet_loss"] + out["stop_loss"] + out["guided_weight"] * out["guided_loss"]
        torch.testing.assert_close(out["loss"].detach(), expected)
    assert weights == pytest.approx([2.0, 1.0, 0.5, 0.0])
    assert float(model.eval()(batch)["guided_weight"]) == 0.0
    assert float(build(guided_attention=None).train()(batch)["guided_weight"]) == 0.0


def test_guided_loss_is_the_shared_loss_per_decoder_step() -> None:
    model = build(prenet_dropout=0.0, reduction=2).eval()
    batch = make_batch(token_lens=(5, 3), frames_per_token=3)  # 15 and 9 frames -> 8 and 5 steps
    out = model(batch)
    memory, lens = model.encoder(batch["tokens"], batch["token_lens"])
    _, _, align = model.teacher_forced(memory, lens, batch["mels"])
    steps = torch.tensor([8, 5])
    expected = guided_attention_loss(align, steps, lens, 0.2) * 2 / 13
    torch.testing.assert_close(out["guided_loss"], expected)
    assert 0.0 < float(out["guided_loss"]) < 1.0


def test_ground_truth_aligned_mels_match_the_teacher_forced_loss() -> None:
    """The post-net loss in eval mode (prenet dropout 0) is the MSE of the ground-truth-aligned mels."""
    model = build(prenet_dropout=0.0, reduction=2).train()
    batch = make_batch(token_lens=(5, 3), frames_per_token=3)
    gta = model.ground_truth_aligned(batch["tokens"], batch["token_lens"], batch["mels"], batch["mel_lens"])
    assert gta.shape == batch["mels"].shape and (gta[1, :, 9:] == TTS_LOG_SILENCE).all()
    valid = (torch.arange(15)[None, :] < batch["mel_lens"][:, None]).unsqueeze(1)
    mse = ((gta - batch["mels"]) ** 2 * valid).sum() / (valid.sum() * MELS)
    torch.testing.assert_close(model.eval()(batch)["postnet_loss"], mse)


def test_input_validation_errors() -> None:
    model = build()
    batch = make_batch()
    with pytest.raises(DataError, match="mels"):
        model({**batch, "mels": batch["mels"][:, :3]})
    with pytest.raises(DataError, match="token_lens"):
        model({**batch, "token_lens": torch.tensor([5, 0])})
    with pytest.raises(DataError, match="token ids"):
        model.infer(torch.tensor([[1, VOCAB]]))
    with pytest.raises(DataError, match="tokens"):
        model.infer(torch.ones(1, 2, 3, dtype=torch.long))
    with pytest.raises(DataError, match="one utterance"):
        next(model.infer_stream(torch.ones(2, 3, dtype=torch.long)))
    with pytest.raises(ConfigError, match="chunk_frames"):
        next(model.infer_stream(torch.ones(3, dtype=torch.long), chunk_frames=0))
    with pytest.raises(ConfigError, match="max_frames"):
        model.infer(torch.ones(1, 3, dtype=torch.long), max_frames=0)


# ----------------------------------------------------------------
# Inference


@pytest.mark.parametrize("r", [1, 2, 3])
def test_infer_batched_items_equal_items_alone(r: int) -> None:
    model = build(prenet_dropout=0.0, reduction=r, max_decoder_steps=8).eval()
    batch = make_batch(token_lens=(5, 2, 4))
    out = model.infer(batch["tokens"], batch["token_lens"])
    assert out.mels.shape == (3, MELS, int(out.mel_lens.max()))
    assert out.alignments.shape == (3, math.ceil(int(out.mel_lens.max()) / r), 5)
    for b in range(3):
        n = int(batch["token_lens"][b])
        alone = model.infer(batch["tokens"][b : b + 1, :n])
        length = int(alone.mel_lens[0])
        assert int(out.mel_lens[b]) == length and bool(out.hit_max_steps[b]) == bool(alone.hit_max_steps[0])
        torch.testing.assert_close(out.mels[b, :, :length], alone.mels[0], atol=1e-5, rtol=1e-5)
        assert (out.mels[b, :, length:] == TTS_LOG_SILENCE).all()
        steps = math.ceil(length / r)
        torch.testing.assert_close(out.alignments[b, :steps, :n], alone.alignments[0], atol=1e-5, rtol=1e-5)
        assert (out.alignments[b, :, n:] == 0).all() and (out.alignments[b, steps:] == 0).all()
        torch.testing.assert_close(out.alignments[b, :steps].sum(-1), torch.ones(steps))


@pytest.mark.parametrize("r", [1, 2, 3])
def test_infer_stops_at_max_decoder_steps_with_the_flag(r: int) -> None:
    model = build(reduction=r, max_decoder_steps=7)
    with torch.no_grad():
        model.stop_proj.weight.zero_()
        model.stop_proj.bias.fill_(-50.0)  # the stop token never fires
    tokens = make_batch()["tokens"]
    out = model.infer(tokens, torch.tensor([5, 3]))
    assert out.mel_lens.tolist() == [7 * r, 7 * r] and out.hit_max_steps.tolist() == [True, True]
    assert out.alignments.shape[1] == 7 and (out.stop_probs < model.stop_threshold).all()
    capped = model.infer(tokens, torch.tensor([5, 3]), max_frames=5)
    assert capped.mel_lens.tolist() == [5, 5] and capped.hit_max_steps.all() and capped.mels.shape[2] == 5
    assert sum(chunk.size(1) for chunk in model.infer_stream(tokens[1, :3], chunk_frames=2, max_frames=5)) == 5


def test_stop_token_ends_at_the_first_firing_frame_of_a_step() -> None:
    model = build(reduction=3)
    with torch.no_grad():
        model.stop_proj.weight.zero_()
        model.stop_proj.bias.copy_(torch.tensor([-50.0, 50.0, 50.0]))  # frames 1 and 2 of every step fire
    out = model.infer(make_batch()["tokens"])
    assert out.mel_lens.tolist() == [2, 2] and not out.hit_max_steps.any()
    assert out.mels.shape == (2, MELS, 2) and out.alignments.shape[1] == 1


def test_decoder_step_drives_the_same_decoding_as_infer() -> None:
    model = build(reduction=2, max_decoder_steps=6).eval()
    tokens = make_batch()["tokens"][:1, :5]
    out = model.infer(tokens, generator=seeded(3))
    memory, lens = model.encoder(tokens, torch.tensor([5]))
    state = model.initial_state(memory, lens)
    assert isinstance(state, DecoderState) and isinstance(state.attention, LocationAttentionState)
    frame, generator, probs, weights = model.go_frame(1, memory), seeded(3), [], []
    with torch.no_grad():
        for _ in range(math.ceil(int(out.mel_lens[0]) / 2)):
            frames, stop_logits, w, state = model.decoder_step(frame, state, memory, lens, generator)
            assert frames.shape == (1, MELS, 2) and stop_logits.shape == (1, 2) and w.shape == (1, 5)
            probs.append(torch.sigmoid(stop_logits))
            weights.append(w)
            frame = frames[:, :, -1]
    length = int(out.mel_lens[0])
    torch.testing.assert_close(torch.cat(probs, 1)[:, :length], out.stop_probs)
    torch.testing.assert_close(torch.stack(weights, 1), out.alignments)
    torch.testing.assert_close(state.attention.cumulative, out.alignments.sum(1))
    assert state.steps == len(weights)


def test_decoder_state_select_reorders_rows() -> None:
    model = build(prenet_dropout=0.0).eval()
    batch = make_batch(token_lens=(4, 4))
    memory, lens = model.encoder(batch["tokens"], batch["token_lens"])
    state = model.initial_state(memory, lens)
    frame = model.go_frame(2, memory)
    with torch.no_grad():
        _, _, _, state = model.decoder_step(frame, state, memory, lens)
        swap = torch.tensor([1, 0])
        f1, s1, w1, _ = model.decoder_step(frame, state, memory, lens)
        f2, s2, w2, _ = model.decoder_step(frame, state.select(swap), memory[swap], lens[swap])
    torch.testing.assert_close(f2, f1[swap])
    torch.testing.assert_close(s2, s1[swap])
    torch.testing.assert_close(w2, w1[swap])


@pytest.mark.parametrize(("r", "chunk"), [(1, 1), (2, 4), (3, 5), (2, 100)])
def test_infer_stream_equals_infer_at_the_frame_cap(r: int, chunk: int) -> None:
    model = build(reduction=r, max_decoder_steps=9, stop_threshold=0.999).eval()  # untrained: never stops
    tokens = make_batch()["tokens"][0]
    reference = model.infer(tokens, generator=seeded(11))
    assert bool(reference.hit_max_steps[0])
    chunks = list(model.infer_stream(tokens, chunk_frames=chunk, generator=seeded(11)))
    assert all(c.size(1) == chunk for c in chunks[:-1]) and 0 < chunks[-1].size(1) <= chunk
    torch.testing.assert_close(torch.cat(chunks, dim=1), reference.mels[0], atol=1e-5, rtol=1e-5)


def test_infer_writes_nothing_to_the_model_and_ignores_train_mode() -> None:
    model = build(max_decoder_steps=6).train()
    tokens = make_batch()["tokens"]
    before_state = {k: v.clone() for k, v in model.state_dict().items()}
    before_attrs = {name: set(vars(m)) for name, m in model.named_modules()}
    before_modes = {name: m.training for name, m in model.named_modules()}
    trained_mode = model.infer(tokens, generator=seeded(5))
    chunks = list(model.infer_stream(tokens[0], chunk_frames=3, generator=seeded(5)))
    for k, v in model.state_dict().items():  # batch norm running statistics included
        assert torch.equal(v, before_state[k]), k
    assert {name: set(vars(m)) for name, m in model.named_modules()} == before_attrs
    assert {name: m.training for name, m in model.named_modules()} == before_modes
    model.eval()  # inference is the same in either mode
    torch.testing.assert_close(trained_mode.mels, model.infer(tokens, generator=seeded(5)).mels)
    alone = model.infer(tokens[:1], generator=seeded(5))  # prenet masks depend on the batch shape: one utterance
    torch.testing.assert_close(torch.cat(chunks, 1), alone.mels[0], atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------
# Overfitting one batch


@pytest.fixture(scope="module")
def overfit() -> tuple[Tacotron2, dict, list[float]]:
    """A tiny r=2 model trained 80 steps on one batch of two utterances (12 and 9 frames)."""
    torch.manual_seed(0)
    model = build(reduction=2, max_decoder_steps=30, guided_attention=GuidedAttentionConfig(weight=1.0))
    batch = make_batch(token_lens=(4, 3), frames_per_token=3, seed=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    model.train()
    for step in range(80):
        out = model({**batch, "train_step": step})
        optimizer.zero_grad()
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(float(out["loss"].detach()))
    return model.eval(), batch, losses


def test_overfit_one_batch_then_stop_token_ends_near_the_true_length(overfit) -> None:
    model, batch, losses = overfit
    assert sum(losses[-5:]) / 5 < 0.25 * sum(losses[:5]) / 5
    for seed in range(3):  # the prenet's dropout stays on: several seeds
        out = model.infer(batch["tokens"], batch["token_lens"], generator=seeded(seed))
        assert not out.hit_max_steps.any()
        assert (out.mel_lens - batch["mel_lens"]).abs().max() <= 3, (out.mel_lens, batch["mel_lens"])


@pytest.mark.parametrize("chunk", [1, 4, 7, 100])
def test_infer_stream_equals_infer_when_the_stop_token_fires(overfit, chunk: int) -> None:
    model, batch, _ = overfit
    tokens = batch["tokens"][1, : int(batch["token_lens"][1])]
    reference = model.infer(tokens, generator=seeded(3))
    assert not bool(reference.hit_max_steps[0])
    chunks = list(model.infer_stream(tokens, chunk_frames=chunk, generator=seeded(3)))
    assert all(c.size(1) == chunk for c in chunks[:-1]) and 0 < chunks[-1].size(1) <= chunk
    torch.testing.assert_close(torch.cat(chunks, dim=1), reference.mels[0], atol=1e-5, rtol=1e-5)
