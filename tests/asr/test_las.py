"""LAS: config, listener lengths and padding invariance, losses against step-by-step references, remedies
(scheduled sampling, guided attention, CTC), overfitting, the Scorer (select_state, beam 1 == greedy) and MoChA /
monotonic streaming against offline hard-mode greedy decoding."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import Tensor

from seqspeech.asr.las import LASConfig, LASModel, las_model_from_config
from seqspeech.asr.las_streaming import LASStreamer
from seqspeech.audio.augment import SpecAugmentConfig
from seqspeech.decoding.search import MaxNewTokensPerInput, Step, beam_search, new_token_caps
from seqspeech.errors import ConfigError
from seqspeech.nn.rnn import PyramidalLSTMListener
from seqspeech.losses import guided_attention_loss, label_smoothed_nll
from seqspeech.training.sampling import GuidedAttentionConfig, ScheduledSamplingConfig

FEATS, VOCAB, EOS = 16, 12, 2
KINDS = ("dot", "additive", "location", "monotonic", "mocha")


def tiny_config(**overrides) -> LASConfig:
    base = dict(
        vocab_size=VOCAB, input_dim=FEATS, listener_layers=2, listener_hidden=16, pyramid_levels=1,
        attention="location", attention_dim=16, location_filters=4, location_kernel=5, chunk_size=2, embed_dim=16,
        decoder_hidden=32, dropout=0.0, label_smoothing=0.0, specaugment=None,
    )
    base.update(overrides)
    return LASConfig(**base)


def tiny_model(seed: int = 0, **overrides) -> LASModel:
    torch.manual_seed(seed)
    return las_model_from_config(tiny_config(**overrides))


def make_batch(feature_lens: list[int], token_lens: list[int], seed: int = 0) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    batch, frames, width = len(feature_lens), max(feature_lens), max(token_lens)
    features = torch.randn(batch, frames, FEATS, generator=g)
    tokens = torch.full((batch, width), -1, dtype=torch.long)
    for b in range(batch):
        features[b, feature_lens[b]:] = 0.0
        tokens[b, : token_lens[b]] = torch.randint(3, VOCAB, (token_lens[b],), generator=g)
    return {"features": features, "feature_lens": torch.tensor(feature_lens), "tokens": tokens,
            "token_lens": torch.tensor(token_lens), "ids": [str(b) for b in range(batch)]}


def item(batch: dict[str, Tensor], b: int) -> dict[str, Tensor]:
    """Utterance b alone, unpadded."""
    n, u = int(batch["feature_lens"][b]), int(batch["token_lens"][b])
    return {"features": batch["features"][b : b + 1, :n], "feature_lens": batch["feature_lens"][b : b + 1],
            "tokens": batch["tokens"][b : b + 1, :u], "token_lens": batch["token_lens"][b : b + 1]}


def pyramid_len(n: int, levels: int) -> int:
    for _ in range(levels):
        n = 1 if n == 1 else n // 2
    return n


# ---------------------------------------------------------------- config


def test_config_round_trip_through_yaml() -> None:
    config = tiny_config(
        attention="mocha", ctc_weight=0.3, scheduled_sampling=ScheduledSamplingConfig(kind="exponential"),
        guided_attention=GuidedAttentionConfig(weight=2.0, stop_step=50), specaugment=SpecAugmentConfig(freq_width=4),
    )
    data = yaml.safe_load(yaml.safe_dump(config.to_dict()))
    assert LASConfig.from_dict(data) == config
    assert LASConfig.from_dict({"vocab_size": 30}) == LASConfig(vocab_size=30)
    assert LASConfig(vocab_size=30).memory_dim == 512 and tiny_config(bidirectional=False).memory_dim == 16


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"vocab_size": 1}, "vocab_size"),
        ({"listener_layers": 0}, "listener_layers"),
        ({"pyramid_levels": 3}, "pyramid_levels"),
        ({"pyramid_levels": -1}, "pyramid_levels"),
        ({"attention": "gaussian"}, "attention"),
        ({"location_kernel": 4}, "location_kernel"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"decoder_layers": 3}, "decoder_layers"),
        ({"dropout": 1.0}, "dropout"),
        ({"label_smoothing": -0.1}, "label_smoothing"),
        ({"ctc_weight": 1.0}, "ctc_weight"),
        ({"monotonic_noise_std": -1.0}, "monotonic_noise_std"),
        ({"sos_eos": VOCAB}, "sos_eos"),
        ({"ctc_weight": 0.3, "blank": EOS}, "blank"),
        ({"bidirectional": 1}, "bidirectional"),
        ({"attention_dim": 2.5}, "attention_dim"),
    ],
)
def test_bad_config_names_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        tiny_config(**overrides)


def test_from_dict_names_unknown_and_nested_keys() -> None:
    with pytest.raises(ConfigError, match="listner_layers"):
        LASConfig.from_dict({"vocab_size": 10, "listner_layers": 2})
    with pytest.raises(ConfigError, match="guided_attention.*sigmaa"):
        LASConfig.from_dict({"vocab_size": 10, "guided_attention": {"sigmaa": 0.1}})
    with pytest.raises(ConfigError, match="decoder_layers"):
        LASConfig.from_dict({"vocab_size": 10, "decoder_layers": 5})


# ---------------------------------------------------------------- listener


@pytest.mark.parametrize(("layers", "levels", "bidirectional"), [(3, 2, True), (2, 2, False), (2, 0, True)])
def test_encode_lengths_and_zero_padding(layers: int, levels: int, bidirectional: bool) -> None:
    model = tiny_model(listener_layers=layers, pyramid_levels=levels, bidirectional=bidirectional).eval()
    lens = [9, 1, 2, 3, 5, 8, 0, 4]
    batch = make_batch([max(n, 1) for n in lens], [1] * len(lens))
    batch["feature_lens"] = torch.tensor(lens)
    memory, memory_lens = model.encode(batch["features"], batch["feature_lens"])
    expected = [pyramid_len(n, levels) for n in lens]
    assert memory_lens.tolist() == expected
    assert memory.shape == (len(lens), max(expected), 16 * (2 if bidirectional else 1))
    for b, n in enumerate(expected):
        assert memory[b, n:].abs().sum() == 0
        if n:
            assert memory[b, :n].abs().sum(-1).min() > 0


def test_padding_invariance_of_encoder_losses_and_scores() -> None:
    model = tiny_model(listener_layers=3, pyramid_levels=2, decoder_layers=2).eval()
    batch = make_batch([37, 20, 9], [5, 3, 2], seed=3)
    memory, memory_lens = model.encode(batch["features"], batch["feature_lens"])
    weights, _ = model.attention_weights(batch["features"], batch["feature_lens"], batch["tokens"], batch["token_lens"])
    scorer, state = model.scorer(memory, memory_lens)
    history = torch.full((3, 1), EOS)
    batch_scores = []
    for token in (4, 7, 5):
        scores, state = scorer.score(history, state)
        batch_scores.append(scores)
        history = torch.cat([history, torch.full((3, 1), token)], dim=1)
    losses = []
    for b in range(3):
        one = item(batch, b)
        mem_b, lens_b = model.encode(one["features"], one["feature_lens"])
        n = int(lens_b)
        assert n == int(memory_lens[b])
        torch.testing.assert_close(mem_b[0], memory[b, :n], atol=1e-5, rtol=1e-5)
        w_b, _ = model.attention_weights(one["features"], one["feature_lens"], one["tokens"], one["token_lens"])
        u = int(one["token_lens"]) + 1
        torch.testing.assert_close(w_b[0, :u], weights[b, :u, :n], atol=1e-5, rtol=1e-5)
        scorer_b, state_b = model.scorer(mem_b, lens_b)
        hist_b = torch.full((1, 1), EOS)
        for i, token in enumerate((4, 7, 5)):
            scores_b, state_b = scorer_b.score(hist_b, state_b)
            torch.testing.assert_close(scores_b[0], batch_scores[i][b], atol=1e-5, rtol=1e-5)
            hist_b = torch.cat([hist_b, torch.full((1, 1), token)], dim=1)
        losses.append(model(one)["att_loss"])
    torch.testing.assert_close(model(batch)["att_loss"], torch.stack(losses).sum() / 3, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize(("layers", "levels"), [(3, 2), (2, 2), (3, 0)])
def test_listener_infer_matches_forward(layers: int, levels: int) -> None:
    torch.manual_seed(1)
    listener = PyramidalLSTMListener(FEATS, 8, layers, levels, bidirectional=False).eval()
    g = torch.Generator().manual_seed(2)
    for frames in (1, 2, 3, 7, 29):
        x = torch.randn(1, frames, FEATS, generator=g)
        expected, lens = listener(x, torch.tensor([frames]))
        state, pieces, pos = listener.init_stream(), [], 0
        while pos < frames:
            n = int(torch.randint(1, 5, (1,), generator=g))
            y, state = listener.infer(x[:, pos : pos + n], state)
            pieces.append(y)
            pos += n
        y, state = listener.infer(x[:, :0], state, final=True)
        pieces.append(y)
        streamed = torch.cat(pieces, dim=1)
        assert streamed.shape[1] == int(lens) == pyramid_len(frames, levels)
        torch.testing.assert_close(streamed, expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="unidirectional"):
        PyramidalLSTMListener(FEATS, 8).eval().infer(x, listener.init_stream())


# ---------------------------------------------------------------- losses and remedies


def test_decoder_inputs_and_targets() -> None:
    model = tiny_model()
    tokens = torch.tensor([[5, 6, 7], [8, -1, -1], [-1, -1, -1]])
    inputs, targets = model._decoder_io(tokens, torch.tensor([3, 1, 0]))
    assert inputs[:, 0].tolist() == [EOS] * 3
    assert inputs[0].tolist() == [EOS, 5, 6, 7] and inputs[1, :2].tolist() == [EOS, 8]
    assert targets.tolist() == [[5, 6, 7, EOS], [8, EOS, -1, -1], [EOS, -1, -1, -1]]
    with pytest.raises(ValueError, match="token ids"):
        model._decoder_io(torch.tensor([[5, VOCAB]]), torch.tensor([2]))
    with pytest.raises(ValueError, match="token_lens"):
        model._decoder_io(tokens, torch.tensor([4, 1, 0]))


@pytest.mark.parametrize("kind", KINDS)
def test_forward_is_finite_for_every_attention(kind: str) -> None:
    model = tiny_model(
        attention=kind, ctc_weight=0.3, decoder_layers=2, dropout=0.1, label_smoothing=0.1,
        specaugment=SpecAugmentConfig(freq_width=4, max_time_width=3),
        scheduled_sampling=ScheduledSamplingConfig(decay_steps=10, min_prob=0.0),
        guided_attention=GuidedAttentionConfig(weight=1.0, half_life=10),
    ).train()
    batch = make_batch([24, 17, 9], [4, 3, 1])
    batch["train_step"] = 5
    out = model(batch)
    assert set(out) == {"loss", "att_loss", "acc", "ctc_loss", "guided_loss", "guided_weight", "tf_prob"}
    for key, value in out.items():
        assert value.dim() == 0 and value.dtype == torch.float32 and torch.isfinite(value), key
    out["loss"].backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(batch)["loss"]
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    model.eval()
    out = model(batch)
    assert all(torch.isfinite(v) for v in out.values()) and float(out["tf_prob"]) == 1.0


def test_losses_match_step_by_step_references() -> None:
    smoothing, lam = 0.1, 0.25
    model = tiny_model(label_smoothing=smoothing, ctc_weight=lam).eval()
    batch = make_batch([30, 22], [4, 2], seed=5)
    out = model(batch)
    att, ctc, correct, total = [], [], 0, 0
    for b in range(2):
        one = item(batch, b)
        memory, lens = model.encode(one["features"], one["feature_lens"])
        scorer, state = model.scorer(memory, lens)
        seq = [EOS, *one["tokens"][0].tolist()]
        targets = torch.tensor([seq[1:] + [EOS]])
        rows = []
        for i in range(len(seq)):
            scores, state = scorer.score(torch.tensor([seq[: i + 1]]), state)
            rows.append(scores)
        logits = torch.stack(rows, dim=1)  # log-probs work as logits for cross-entropy
        att.append(label_smoothed_nll(logits, targets, smoothing))
        correct += int((logits.argmax(-1) == targets).sum())
        total += targets.numel()
        log_probs = model.ctc_log_probs(memory, lens)
        ctc.append(F.ctc_loss(log_probs.transpose(0, 1), one["tokens"], lens, one["token_lens"], reduction="sum"))
    att_ref, ctc_ref = torch.stack(att).sum() / 2, torch.stack(ctc).sum() / 2
    torch.testing.assert_close(out["att_loss"], att_ref, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(out["ctc_loss"], ctc_ref, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(out["loss"], lam * ctc_ref + (1 - lam) * att_ref, atol=1e-4, rtol=1e-5)
    assert float(out["acc"]) == pytest.approx(correct / total)
    assert model.ctc_log_probs(*model.encode(batch["features"], batch["feature_lens"])).shape[-1] == VOCAB
    assert tiny_model().ctc_log_probs(torch.zeros(1, 3, 32), torch.tensor([3])) is None


class _Recorder:
    """Forward hooks recording the speller's input ids and output logits at every step."""

    def __init__(self, model: LASModel) -> None:
        self.inputs: list[Tensor] = []
        self.logits: list[Tensor] = []
        self.handles = [
            model.embedding.register_forward_hook(lambda m, args, out: self.inputs.append(args[0].clone())),
            model.output.register_forward_hook(lambda m, args, out: self.logits.append(out.detach().clone())),
        ]

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def test_scheduled_sampling_feeds_own_predictions_only_in_training() -> None:
    schedule = ScheduledSamplingConfig(kind="linear", start_step=2, decay_steps=4, min_prob=0.0)
    model = tiny_model(scheduled_sampling=schedule)
    batch = make_batch([24, 20, 16, 12], [5, 5, 4, 5], seed=7)
    inputs, _ = model._decoder_io(batch["tokens"], batch["token_lens"])

    def run(train: bool, step: int | None) -> tuple[Tensor, Tensor, float]:
        model.train(train)
        rec = _Recorder(model)
        b = dict(batch)
        if step is not None:
            b["train_step"] = step
        out = model(b)
        rec.close()
        return torch.stack(rec.inputs, dim=1), torch.stack(rec.logits, dim=1), float(out["tf_prob"])

    fed, logits, tf_prob = run(True, 10)  # eps = 0: always the model's own argmax
    assert tf_prob == 0.0
    assert torch.equal(fed[:, 0], inputs[:, 0])
    assert torch.equal(fed[:, 1:], logits[:, :-1].argmax(-1))
    assert not torch.equal(fed, inputs)  # the random model's guesses differ from the ground truth
    for train, step in ((True, 0), (True, None), (False, 10)):  # eps = 1, no step, eval: ground truth
        fed, _, tf_prob = run(train, step)
        assert tf_prob == 1.0 and torch.equal(fed, inputs)
    torch.manual_seed(0)
    fed, logits, tf_prob = run(True, 4)  # eps = 0.5: a mixture
    assert tf_prob == pytest.approx(schedule.teacher_forcing_prob(4)) == 0.5
    own = fed[:, 1:] == logits[:, :-1].argmax(-1)
    truth = fed[:, 1:] == inputs[:, 1:]
    assert (own | truth).all() and (own & ~truth).any() and (truth & ~own).any()


def test_guided_attention_loss_is_reported_weighted_and_decays() -> None:
    cfg = GuidedAttentionConfig(weight=2.0, sigma=0.3, half_life=10, stop_step=40)
    model = tiny_model(guided_attention=cfg)
    batch = make_batch([32, 24], [5, 3], seed=2)
    weights, memory_lens = model.attention_weights(
        batch["features"], batch["feature_lens"], batch["tokens"], batch["token_lens"]
    )
    reference = guided_attention_loss(weights, batch["token_lens"] + 1, memory_lens, sigma=0.3)
    assert float(reference) > 0
    model.eval()
    out = model(batch)
    torch.testing.assert_close(out["guided_loss"], reference, atol=1e-5, rtol=1e-5)
    assert float(out["guided_weight"]) == 0.0 and torch.equal(out["loss"], out["att_loss"])
    model.train()
    contributions = []
    for step in (0, 10, 20, 40):
        out = model({**batch, "train_step": step})
        assert float(out["guided_weight"]) == pytest.approx(cfg.weight_at(step))
        torch.testing.assert_close(out["guided_loss"], reference, atol=1e-5, rtol=1e-5)  # dropout 0: same weights
        extra = out["loss"] - out["att_loss"]
        torch.testing.assert_close(extra, cfg.weight_at(step) * out["guided_loss"], atol=1e-5, rtol=1e-5)
        contributions.append(float(extra.detach()))
    assert contributions[0] > contributions[1] > contributions[2] > 0 and contributions[3] == 0.0


def test_attention_weights_are_teacher_forced_alignments() -> None:
    model = tiny_model().train()
    batch = make_batch([32, 20], [5, 2])
    weights, memory_lens = model.attention_weights(
        batch["features"], batch["feature_lens"], batch["tokens"], batch["token_lens"]
    )
    assert model.training  # mode restored
    assert weights.shape == (2, 6, int(memory_lens.max())) and memory_lens.tolist() == [16, 10]
    sums = weights.sum(-1)
    torch.testing.assert_close(sums[0], torch.ones(6))
    torch.testing.assert_close(sums[1, :3], torch.ones(3))
    assert sums[1, 3:].abs().sum() == 0 and weights[1, :, 10:].abs().sum() == 0


def test_monotonic_attention_mode_follows_train_and_eval() -> None:
    for kind in ("monotonic", "mocha"):
        model = tiny_model(attention=kind)
        assert model.attention.mode == "soft"
        assert model.eval().attention.mode == "hard"
        assert model.train().attention.mode == "soft"


@pytest.mark.parametrize("kind", ["location", "mocha"])
def test_tiny_model_overfits_a_few_utterances(kind: str) -> None:
    model = tiny_model(attention=kind).train()
    batch = make_batch([20, 16, 13], [4, 3, 4], seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    losses = []
    for _ in range(30):
        loss = model(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.1 * losses[0], losses


# ---------------------------------------------------------------- decoding


@pytest.mark.parametrize("kind", KINDS)
def test_greedy_handles_empty_utterances(kind: str) -> None:
    model = tiny_model(attention=kind, location_kernel=31).eval()
    for lens in ([0, 0], [5, 0]):
        hyps = model.greedy(torch.randn(2, max(lens), FEATS), torch.tensor(lens))
        assert len(hyps) == 2 and len(hyps[1].tokens) <= 1  # the cap is at least one token


@pytest.mark.parametrize("kind", ["location", "mocha"])
def test_beam_size_one_equals_greedy(kind: str) -> None:
    model = tiny_model(seed=3, attention=kind, decoder_layers=2).eval()
    with torch.no_grad():
        model.output[-1].bias[EOS] += 2.0  # let some hypotheses end before the cap
    batch = make_batch([40, 27, 18], [1, 1, 1], seed=4)
    greedy = model.greedy(batch["features"], batch["feature_lens"], max_len_ratio=1.5)
    memory, memory_lens = model.encode(batch["features"], batch["feature_lens"])
    caps = new_token_caps(memory_lens, 1.5)
    for g, cap in zip(greedy, caps.tolist()):
        assert len(g.tokens) <= cap and EOS not in g.tokens
    scorer, state = model.scorer(memory, memory_lens)
    step = Step(scorer, filters=[MaxNewTokensPerInput(caps, prompt_len=1, eos=EOS)])
    with torch.no_grad():
        beams = beam_search(step, torch.full((3, 1), EOS), state, beam_size=1, eot=EOS,
                            max_new_tokens=int(caps.max()) + 1)
    assert [b[0].tokens for b in beams] == [g.tokens for g in greedy]
    for b, g in zip(beams, greedy):
        assert b[0].sum_logprob == pytest.approx(g.sum_logprob, abs=1e-4)


@pytest.mark.parametrize("kind", ["additive", "location", "mocha"])
def test_scorer_select_state_reorders_rows(kind: str) -> None:
    model = tiny_model(attention=kind, decoder_layers=2).eval()
    batch = make_batch([30, 22, 14], [1, 1, 1], seed=6)
    memory, memory_lens = model.encode(batch["features"], batch["feature_lens"])
    scorer, state = model.scorer(memory, memory_lens)
    history = torch.tensor([[EOS, 5, 6], [EOS, 7, 3], [EOS, 4, 4]])
    with torch.no_grad():
        _, state = scorer.score(history[:, :2], state)  # consumes two tokens at once
        assert state.steps == 2
        if kind != "mocha":  # softmax attentions: every step's weights sum to 1
            torch.testing.assert_close(scorer.coverage(state).sum(-1), torch.full((3,), 2.0))
        index = torch.tensor([2, 0, 2, 1])
        selected = scorer.select_state(state, index)
        assert torch.equal(scorer.coverage(selected), scorer.coverage(state)[index])
        full, _ = scorer.score(history, state)
        picked, new_state = scorer.score(history[index], selected)
    torch.testing.assert_close(picked, full[index], atol=1e-6, rtol=1e-6)
    assert new_state.steps == 3 and new_state.coverage.shape == (4, memory.size(1))
    with pytest.raises(ValueError, match="consumed"):
        scorer.score(history[index][:, :2], new_state)


# ---------------------------------------------------------------- streaming


def streaming_model(kind: str, seed: int) -> LASModel:
    """A random causal model whose hard attention moves: stop energies depend strongly on frame and step."""
    model = tiny_model(
        seed=seed, attention=kind, bidirectional=False, listener_layers=3, pyramid_levels=2, monotonic_init_r=0.0,
        chunk_size=3,
    ).eval()
    mono = model.attention if kind == "monotonic" else model.attention.monotonic
    with torch.no_grad():
        model.output[-1].bias[EOS] = -5.0  # run to the length cap: long outputs
        for layer in (mono.query_proj, mono.key_proj):
            layer.weight.mul_(10.0)
        mono.key_proj.bias.mul_(10.0)
        for name, p in model.listener.named_parameters():
            if "weight_ih" in name:
                p.mul_(3.0)
        model.cells[0].weight_ih.mul_(3.0)
    return model


@pytest.mark.parametrize("kind", ["monotonic", "mocha"])
def test_streaming_equals_offline_hard_greedy(kind: str) -> None:
    frames, ratio = 61, 2.0
    early, selected_frames = 0, set()
    for seed in range(4):
        model = streaming_model(kind, seed)
        features = torch.randn(1, frames, FEATS, generator=torch.Generator().manual_seed(seed))
        offline = model.greedy(features, torch.tensor([frames]), max_len_ratio=ratio)[0].tokens
        assert len(offline) > 0
        first_seen: list[list[int]] = []
        for lookahead in (0, 2):
            streamer = LASStreamer(model, lookahead=lookahead, max_len_ratio=ratio)
            g = torch.Generator().manual_seed(100 + seed)
            streamed, pos, pushed = [], 0, 0
            while pos < frames:
                n = int(torch.randint(1, 8, (1,), generator=g))
                new = streamer.push(features[0, pos : pos + n])
                streamed += new
                pos += n
                pushed = len(streamed)
            streamed += streamer.finish()
            assert streamed == offline == streamer.tokens
            emissions = streamer.emissions
            assert [e.token for e in emissions] == offline
            for e in emissions[:pushed]:  # decided mid-stream: its frame and lookahead had arrived
                assert 0 <= e.frame and e.frame + lookahead < e.memory_frames and e.input_frames <= frames
                assert e.memory_frames <= pyramid_len(e.input_frames, 2)
            assert all(a.input_frames <= b.input_frames for a, b in zip(emissions, emissions[1:]))
            first_seen.append([e.input_frames for e in emissions])
            if lookahead == 0:
                early += pushed
                selected_frames |= {e.frame for e in emissions[:pushed]}
        assert all(a <= b for a, b in zip(*first_seen))  # lookahead never emits earlier
    assert early >= 10 and len(selected_frames) >= 3  # the test exercised real mid-stream decisions


def test_streamer_rejects_unsuitable_models_and_input() -> None:
    with pytest.raises(ValueError, match="unidirectional"):
        LASStreamer(tiny_model(attention="mocha").eval())
    with pytest.raises(ValueError, match="monotonic"):
        LASStreamer(tiny_model(attention="location", bidirectional=False).eval())
    model = tiny_model(attention="mocha", bidirectional=False)
    with pytest.raises(ValueError, match="eval"):
        LASStreamer(model.train())
    streamer = LASStreamer(model.eval(), lookahead=1)
    with pytest.raises(ValueError, match="chunk"):
        streamer.push(torch.zeros(3, FEATS + 1))
    with pytest.raises(ValueError, match="lookahead"):
        LASStreamer(model, lookahead=-1)
    streamer.push(torch.randn(5, FEATS))
    streamer.finish()
    with pytest.raises(ValueError, match="finished"):
        streamer.push(torch.randn(5, FEATS))
    streamer.reset()
    offline = model.greedy(torch.zeros(1, 0, FEATS), torch.tensor([0]))[0].tokens  # an empty utterance
    assert streamer.push(torch.zeros(0, FEATS)) == [] and streamer.finish() == offline


def test_dataclass_state_is_not_kept_on_the_scorer() -> None:
    model = tiny_model().eval()
    memory, lens = model.encode(*[make_batch([20], [1])[k] for k in ("features", "feature_lens")])
    scorer, state = model.scorer(memory, lens)
    assert dataclasses.is_dataclass(state) and set(vars(scorer)) == {"model"}
