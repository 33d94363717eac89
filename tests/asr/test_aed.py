"""Hybrid CTC/attention AED: config, incremental == teacher-forced decoding, padding invariance, the hybrid loss,
joint CTC/attention search (beam 1 == greedy, exact fused scores, CTC-only == prefix search), overfitting,
scheduled sampling and guided attention."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import Tensor

from seqspeech.asr.aed import AEDConfig, AEDModel, AEDScorer, aed_model_from_config
from seqspeech.decoding.attention import AttentionDecodeOptions
from seqspeech.decoding.ctc import CTCPrefixScorer, ctc_greedy, ctc_prefix_beam_search
from seqspeech.decoding.interfaces import ScoredSum
from seqspeech.decoding.search import Step, beam_search, sample_search
from seqspeech.errors import ConfigError
from seqspeech.nn import ConformerConfig
from seqspeech.losses import guided_attention_loss
from seqspeech.training.sampling import GuidedAttentionConfig, ScheduledSamplingConfig

FEATS, VOCAB, SOS_EOS = 16, 10, 2
TINY_ENCODER = ConformerConfig(
    input_dim=FEATS, d_model=32, num_layers=1, num_heads=4, ff_mult=2, conv_kernel=5, dropout=0.0,
    subsampling_channels=8,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one intra-op thread is several times faster than many on a shared, busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(**kwargs) -> AEDConfig:
    base = dict(
        vocab_size=VOCAB, input_dim=FEATS, encoder=TINY_ENCODER, decoder_layers=2, decoder_heads=4, decoder_ff=64,
        decoder_dropout=0.0, specaugment=None, label_smoothing=0.1, ctc_weight=0.3,
    )
    base.update(kwargs)
    return AEDConfig(**base)


def tiny_model(seed: int = 0, **kwargs) -> AEDModel:
    torch.manual_seed(seed)
    return aed_model_from_config(tiny_config(**kwargs))


def make_batch(seed: int = 0, feature_lens: tuple[int, ...] = (60, 44, 32), token_lens: tuple[int, ...] = (5, 3, 4)):
    g = torch.Generator().manual_seed(seed)
    b = len(feature_lens)
    features = torch.randn(b, max(feature_lens), FEATS, generator=g)
    tokens = torch.full((b, max(token_lens)), -1, dtype=torch.long)
    for i, (n, u) in enumerate(zip(feature_lens, token_lens)):
        features[i, n:] = 0.0
        tokens[i, :u] = torch.randint(3, VOCAB, (u,), generator=g)
    return {
        "features": features, "feature_lens": torch.tensor(feature_lens), "tokens": tokens,
        "token_lens": torch.tensor(token_lens), "ids": [str(i) for i in range(b)],
    }


def att_logp(model: AEDModel, memory: Tensor, memory_lens: Tensor, b: int, hyp: list[int], eos: bool) -> float:
    """log p_att(hyp [+ eos]) of utterance b by teacher forcing."""
    ys_in = torch.tensor([[SOS_EOS] + hyp])
    logits, _ = model.decoder(ys_in, memory[b : b + 1], memory_lens[b : b + 1])
    lp = logits.float().log_softmax(-1)[0]
    targets = hyp + [SOS_EOS] if eos else hyp
    return float(sum(lp[u, t] for u, t in enumerate(targets)))


def ctc_logp(log_probs: Tensor, memory_lens: Tensor, b: int, hyp: list[int]) -> float:
    """log p_ctc(hyp | x) of utterance b (all alignments)."""
    n = int(memory_lens[b])
    if not hyp:
        return float(log_probs[b, :n, 0].sum())
    return -float(F.ctc_loss(
        log_probs[b, :n, None].double(), torch.tensor([hyp]), torch.tensor([n]), torch.tensor([len(hyp)]),
        blank=0, reduction="sum", zero_infinity=False,
    ))


# -- config -----------------------------------------------------------------------------------------------------


def test_config_round_trip_and_defaults() -> None:
    config = tiny_config(
        decoder_dim=24, tie_output=True, align_layer=0,
        scheduled_sampling=ScheduledSamplingConfig(kind="exponential", decay_steps=500, min_prob=0.5),
        guided_attention=GuidedAttentionConfig(weight=2.0, sigma=0.3, stop_step=100),
    )
    assert AEDConfig.from_dict(config.to_dict()) == config
    assert AEDConfig.from_dict(yaml.safe_load(yaml.safe_dump(config.to_dict()))) == config
    default = AEDConfig(vocab_size=30, input_dim=40)
    assert default.encoder.input_dim == 40 and default.decoder_width == default.encoder.d_model
    assert (default.decoder_layers, default.decoder_heads, default.decoder_ff) == (4, 4, 1024)
    assert (default.ctc_weight, default.label_smoothing, default.decoder_dropout) == (0.3, 0.1, 0.1)
    assert AEDConfig.from_dict({"vocab_size": 30, "input_dim": 40}) == default


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"vocab_size": 10, "decoder_layer": 3}, "decoder_layer"),
        ({"vocab_size": 10, "scheduled_sampling": {"kindd": "linear"}}, "kindd"),
        ({"vocab_size": 10, "guided_attention": {"weight": 1.0, "sigmaa": 0.1}}, "sigmaa"),
        ({"vocab_size": 10, "encoder": {"d_modle": 64}}, "d_modle"),
        ({"vocab_size": 10, "ctc_weight": 1.5}, "ctc_weight"),
        ({"vocab_size": 10, "label_smoothing": 1.0}, "label_smoothing"),
        ({"vocab_size": 10, "decoder_dim": 30}, "decoder_dim"),
        ({"vocab_size": 10, "decoder_layers": 2, "align_layer": 2}, "align_layer"),
        ({"vocab_size": 2}, "vocab_size"),
        ({"vocab_size": 10, "blank": 2}, "sos_eos"),
        ({"vocab_size": 10, "input_dim": 40, "encoder": {"input_dim": 64}}, "input_dim"),
        ({"vocab_size": 10, "decoder_heads": "four"}, "decoder_heads"),
    ],
)
def test_bad_config_names_the_field(data: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        AEDConfig.from_dict(data)


def test_ctc_weight_zero_builds_no_ctc_head() -> None:
    model = tiny_model(ctc_weight=0.0).eval()
    assert model.ctc is None and not any(k.startswith("ctc.") for k in model.state_dict())
    assert {"feature_mean", "feature_std"} <= set(model.state_dict())
    out = model(make_batch())
    assert "ctc_loss" not in out and torch.equal(out["loss"], out["att_loss"])
    memory, lens = model.encode(make_batch()["features"], make_batch()["feature_lens"])
    assert model.ctc_log_probs(memory, lens) is None
    with pytest.raises(ConfigError, match="CTC head"):
        model.decode(make_batch()["features"], make_batch()["feature_lens"], AttentionDecodeOptions(ctc_weight=0.5))


# -- decoder: incremental == teacher-forced, padding invariance -------------------------------------------------


@pytest.mark.parametrize("decoder_dim, tie_output, align_layer", [(None, False, -1), (24, True, 0)])
def test_incremental_decoding_matches_teacher_forced(
    decoder_dim: int | None, tie_output: bool, align_layer: int
) -> None:
    model = tiny_model(decoder_dim=decoder_dim, tie_output=tie_output, align_layer=align_layer).eval()
    batch = make_batch(1)
    with torch.no_grad():
        memory, memory_lens = model.encode(batch["features"], batch["feature_lens"])
        ys_in, _ = model.decoder_io(batch["tokens"], batch["token_lens"])
        logits, weights = model.decoder(ys_in, memory, memory_lens, need_weights=True)
        reference = logits.float().log_softmax(-1)  # (B, U+1, V)
        scorer, state = model.scorer(memory, memory_lens)
        assert isinstance(scorer, AEDScorer)
        for u in range(ys_in.size(1)):
            lp, state = scorer.score(ys_in[:, : u + 1], state)
            assert lp.shape == (3, VOCAB) and lp.dtype == torch.float32
            torch.testing.assert_close(lp, reference[:, u], atol=1e-5, rtol=0)
        # coverage: the source attention of align_layer summed over every consumed position
        torch.testing.assert_close(scorer.coverage(state), weights.sum(dim=1), atol=1e-5, rtol=0)

        # a multi-token chunk after a cached prefix, and reordered / repeated rows
        _, state = scorer.score(ys_in[:, :2], scorer.init_state())
        lp, _ = scorer.score(ys_in, state)
        torch.testing.assert_close(lp, reference[:, -1], atol=1e-5, rtol=0)
        idx = torch.tensor([2, 0, 0, 1])
        _, state = scorer.score(ys_in[:, :2], scorer.init_state())
        state = scorer.select_state(state, idx)
        lp, state = scorer.score(ys_in[idx, :3], state)
        torch.testing.assert_close(lp, reference[idx, 2], atol=1e-5, rtol=0)
        with pytest.raises(ValueError, match="consumed"):
            scorer.score(ys_in[idx, :3], state)


def test_padding_invariance_of_encoder_decoder_and_ctc() -> None:
    model = tiny_model(2).eval()
    batch = make_batch(2)
    with torch.no_grad():
        memory, memory_lens = model.encode(batch["features"], batch["feature_lens"])
        ys_in, _ = model.decoder_io(batch["tokens"], batch["token_lens"])
        logits, _ = model.decoder(ys_in, memory, memory_lens)
        ctc = model.ctc_log_probs(memory, memory_lens)
        weights, w_lens = model.attention_weights(
            batch["features"], batch["feature_lens"], batch["tokens"], batch["token_lens"]
        )
        assert torch.equal(w_lens, memory_lens) and weights.shape == (3, ys_in.size(1), memory.size(1))
        for b in range(3):
            n, u, t = int(batch["feature_lens"][b]), int(batch["token_lens"][b]), int(memory_lens[b])
            feats, toks = batch["features"][b : b + 1, :n], batch["tokens"][b : b + 1, :u]
            m1, l1 = model.encode(feats, torch.tensor([n]))
            assert int(l1) == t
            torch.testing.assert_close(m1[0], memory[b, :t], atol=1e-5, rtol=0)
            y1, _ = model.decoder_io(toks, torch.tensor([u]))
            g1, _ = model.decoder(y1, m1, l1)
            torch.testing.assert_close(g1[0], logits[b, : u + 1], atol=1e-5, rtol=0)
            torch.testing.assert_close(model.ctc_log_probs(m1, l1)[0], ctc[b, :t], atol=1e-5, rtol=0)
            w1, _ = model.attention_weights(feats, torch.tensor([n]), toks, torch.tensor([u]))
            torch.testing.assert_close(w1[0], weights[b, : u + 1, :t], atol=1e-5, rtol=0)
            assert float(weights[b, u + 1 :].abs().sum()) == 0.0 and float(weights[b, :, t:].abs().sum()) == 0.0
            torch.testing.assert_close(w1[0].sum(-1), torch.ones(u + 1), atol=1e-5, rtol=0)


# -- loss --------------------------------------------------------------------------------------------------------


def test_hybrid_loss_equals_weighted_parts_from_references() -> None:
    lam, eps = 0.4, 0.1
    model = tiny_model(3, ctc_weight=lam, label_smoothing=eps).eval()
    batch = make_batch(3)
    out = model(batch)
    for key in ("loss", "att_loss", "ctc_loss", "acc"):
        assert out[key].dim() == 0 and out[key].dtype == torch.float32
    torch.testing.assert_close(out["loss"], lam * out["ctc_loss"] + (1 - lam) * out["att_loss"])
    # references, one utterance at a time without padding
    att, ctc, hits, count = 0.0, 0.0, 0, 0
    with torch.no_grad():
        for b in range(3):
            n, u = int(batch["feature_lens"][b]), int(batch["token_lens"][b])
            tokens = batch["tokens"][b, :u].tolist()
            memory, lens = model.encode(batch["features"][b : b + 1, :n], torch.tensor([n]))
            logits, _ = model.decoder(torch.tensor([[SOS_EOS] + tokens]), memory, lens)
            target = torch.tensor(tokens + [SOS_EOS])
            att += float(F.cross_entropy(logits[0], target, label_smoothing=eps, reduction="sum"))
            hits += int((logits[0].argmax(-1) == target).sum())
            count += u + 1
            ctc += -ctc_logp(model.ctc_log_probs(memory, lens), lens, 0, tokens)
    assert out["att_loss"].item() == pytest.approx(att / 3, rel=1e-5)
    assert out["ctc_loss"].item() == pytest.approx(ctc / 3, rel=1e-5)
    assert out["acc"].item() == pytest.approx(hits / count)
    with pytest.raises(ValueError, match="token_lens"):
        model({**batch, "token_lens": batch["token_lens"][:2]})


def test_losses_are_float32_under_bf16_autocast() -> None:
    model = tiny_model(12, guided_attention=GuidedAttentionConfig(weight=1.0)).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model({**make_batch(12), "train_step": 3})
    for key in ("loss", "att_loss", "ctc_loss", "guided_loss"):
        assert out[key].dtype == torch.float32 and bool(torch.isfinite(out[key])), key
    out["loss"].backward()


def test_overfits_a_few_utterances_and_decodes_them() -> None:
    model = tiny_model(4, ctc_weight=0.3, label_smoothing=0.0)
    batch = make_batch(4, feature_lens=(48, 40, 36), token_lens=(4, 3, 4))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for step in range(80):
        out = model({**batch, "train_step": step})
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(out["loss"].item())
    assert losses[-1] < 0.1 * losses[0], losses[::10]
    nbest = model.decode(batch["features"], batch["feature_lens"])  # beam 10, λ = 0.3
    truth = [batch["tokens"][b, : int(batch["token_lens"][b])].tolist() for b in range(3)]
    assert [hyps[0].tokens for hyps in nbest] == truth
    assert model.training  # decode restores the mode


# -- joint CTC/attention search ----------------------------------------------------------------------------------


def joint_step(model: AEDModel, memory: Tensor, memory_lens: Tensor, lam: float):
    """Step(primary=AEDScorer weighted 1-λ, aux=λ·CTC prefix scorer), its state and aux state."""
    scorer, state = model.scorer(memory, memory_lens)
    if lam == 0:
        return Step(scorer), state, None
    ctc = CTCPrefixScorer(model.ctc_log_probs(memory, memory_lens), memory_lens, blank=0, eos=SOS_EOS)
    return Step(scorer, aux=ScoredSum([(lam, ctc)]), primary_weight=1 - lam), state, (ctc.init_state(),)


@pytest.mark.parametrize("lam", [0.0, 0.5])
def test_beam_one_equals_greedy(lam: float) -> None:
    model = tiny_model(5).eval()
    batch = make_batch(5)
    with torch.no_grad():
        memory, memory_lens = model.encode(batch["features"], batch["feature_lens"])
        step, state, aux_state = joint_step(model, memory, memory_lens, lam)
        prompt = torch.full((3, 1), SOS_EOS)
        greedy = sample_search(step, prompt, state, aux_state=aux_state, eot=SOS_EOS, max_new_tokens=8)
        beam = beam_search(step, prompt, state, aux_state=aux_state, beam_size=1, eot=SOS_EOS, max_new_tokens=8)
    for g, candidates in zip(greedy, beam):
        assert len(candidates) == 1
        assert candidates[0].tokens == g.tokens
        assert candidates[0].sum_logprob == pytest.approx(g.sum_logprob, abs=1e-4)


@pytest.mark.parametrize("lam", [0.5, 0.3, 0.0, 1.0])
def test_joint_beam_scores_are_the_exact_fused_scores(lam: float) -> None:
    """Every finished candidate's score is (1-λ)·log p_att(h, eos) + λ·log p_ctc(h|x)."""
    model = tiny_model(6).eval()
    batch = make_batch(6)
    options = AttentionDecodeOptions(beam_size=4, nbest=4, ctc_weight=lam)
    nbest = model.decode(batch["features"], batch["feature_lens"], options)
    with torch.no_grad():
        memory, memory_lens = model.encode(batch["features"], batch["feature_lens"])
        ctc = model.ctc_log_probs(memory, memory_lens)
        checked = 0
        for b, candidates in enumerate(nbest):
            assert len(candidates) == 4 and len({tuple(c.tokens) for c in candidates}) == 4
            scores = [c.sum_logprob for c in candidates]
            assert scores == sorted(scores, reverse=True)
            for cand in candidates:
                if len(cand.tokens) >= int(memory_lens[b]):  # stopped by the length cap: eos was forced
                    continue
                expected = (1 - lam) * att_logp(model, memory, memory_lens, b, cand.tokens, eos=True)
                if lam:
                    expected += lam * ctc_logp(ctc, memory_lens, b, cand.tokens)
                assert cand.sum_logprob == pytest.approx(expected, abs=1e-3)
                checked += 1
    assert checked >= 4


def peaked_ctc(memory_lens: Tensor, frames: int, seed: int) -> tuple[Tensor, list[list[int]]]:
    """CTC log-probs (B, frames, V) whose best path is blank, then each label over 2 frames followed by a blank
    (prob 0.99 on the path); one utterance repeats a label. Returns them and the label sequences."""
    g = torch.Generator().manual_seed(seed)
    floor = math.log(0.01 / (VOCAB - 1))
    log_probs = torch.full((len(memory_lens), frames, VOCAB), floor)
    labels = []
    for b, n in enumerate(memory_lens.tolist()):
        count = (n - 1) // 3
        seq = torch.randint(3, VOCAB, (count,), generator=g).tolist()
        if b == 0 and count >= 2:
            seq[1] = seq[0]  # a repeat: the blank between keeps both
        path = [0] + [x for label in seq for x in (label, label, 0)]
        path += [0] * (n - len(path))
        for t, label in enumerate(path):
            log_probs[b, t, label] = math.log(0.99)
        labels.append(seq)
    return log_probs, labels


def test_ctc_only_joint_search_is_ctc_prefix_search(monkeypatch: pytest.MonkeyPatch) -> None:
    """λ = 1 on a peaked CTC distribution: the joint search finds the prefix-search (and greedy) best path and
    scores it with the exact CTC log-probability."""
    model = tiny_model(7, ctc_weight=1.0).eval()
    batch = make_batch(7)
    with torch.no_grad():
        memory, memory_lens = model.encode(batch["features"], batch["feature_lens"])
    ctc, labels = peaked_ctc(memory_lens, memory.size(1), seed=7)
    monkeypatch.setattr(model, "ctc_log_probs", lambda m, lens: ctc)
    options = AttentionDecodeOptions(beam_size=4, ctc_weight=1.0)
    hyps = [nbest[0] for nbest in model.decode(batch["features"], batch["feature_lens"], options)]
    prefix = ctc_prefix_beam_search(ctc, memory_lens, beam_size=4, prune_logp=None)
    greedy = ctc_greedy(ctc, memory_lens)
    assert greedy == labels and labels[0][0] == labels[0][1]
    for b, hyp in enumerate(hyps):
        assert hyp.tokens == prefix[b][0].tokens == greedy[b]
        exact = ctc_logp(ctc, memory_lens, b, hyp.tokens)
        assert hyp.sum_logprob == pytest.approx(exact, abs=1e-4)
        # the prefix search sums only the paths its beam kept: a lower bound, close on a peaked case
        assert exact - 0.05 < prefix[b][0].am_score <= exact + 1e-6
    # the attention decoder has no say at λ = 1 (its weights are irrelevant)
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.normal_()
    assert [n[0].tokens for n in model.decode(batch["features"], batch["feature_lens"], options)] == labels


def test_decode_bad_arguments() -> None:
    model = tiny_model(8).eval()
    batch = make_batch(8)
    with torch.no_grad():
        memory, memory_lens = model.encode(batch["features"], batch["feature_lens"])
    with pytest.raises(ConfigError, match="ctc_weight"):
        model.decode(batch["features"], batch["feature_lens"], AttentionDecodeOptions(ctc_weight=1.2))
    with pytest.raises(ValueError, match="memory_lens"):
        model.scorer(memory, torch.tensor([3, 0, 2]))
    scorer, state = model.scorer(memory, memory_lens)
    with pytest.raises(ValueError, match="token ids"):
        scorer.score(torch.tensor([[SOS_EOS], [VOCAB], [SOS_EOS]]), state)


# -- training remedies -------------------------------------------------------------------------------------------


def test_two_pass_scheduled_sampling() -> None:
    schedule = ScheduledSamplingConfig(kind="linear", start_step=0, decay_steps=1, min_prob=0.0)  # ε = 0 from step 1
    model = tiny_model(9, scheduled_sampling=schedule, ctc_weight=0.3)
    plain = tiny_model(9, ctc_weight=0.3)
    plain.load_state_dict(model.state_dict())
    batch = make_batch(9)
    model.train()
    with torch.no_grad():
        memory, memory_lens = model.encode(batch["features"], batch["feature_lens"])
        ys_in, ys_out = model.decoder_io(batch["tokens"], batch["token_lens"])
        predicted = model.decoder(ys_in, memory, memory_lens)[0].argmax(-1)
        mixed = model.sample_inputs(ys_in, memory, memory_lens, 0.0)
    # ε = 0: every input after sos is the pass-1 prediction of the previous position
    assert torch.equal(mixed[:, 0], ys_in[:, 0]) and torch.equal(mixed[:, 1:], predicted[:, :-1])
    assert not torch.equal(mixed, ys_in)
    assert torch.equal(model.sample_inputs(ys_in, memory, memory_lens, 1.0), ys_in)
    half = model.sample_inputs(ys_in, memory, memory_lens, 0.5, generator=torch.Generator().manual_seed(0))
    assert bool(((half[:, 1:] == ys_in[:, 1:]) | (half[:, 1:] == predicted[:, :-1])).all())

    out0 = model({**batch, "train_step": 0})  # ε = 1: plain teacher forcing
    out5 = model({**batch, "train_step": 5})  # ε = 0: pass 2 on the predictions
    assert out0["tf_prob"].item() == 1.0 and out5["tf_prob"].item() == 0.0
    with torch.no_grad():
        ref = F.cross_entropy(model.decoder(mixed, memory, memory_lens)[0].transpose(1, 2), ys_out,
                              ignore_index=-1, label_smoothing=0.1, reduction="sum") / 3
    assert out5["att_loss"].item() == pytest.approx(ref.item(), rel=1e-5)
    assert out5["att_loss"].item() != pytest.approx(out0["att_loss"].item(), rel=1e-3)
    assert out0["att_loss"].item() == pytest.approx(plain.train()({**batch, "train_step": 0})["att_loss"].item())
    out5["loss"].backward()  # pass 2 carries the gradient
    assert model.decoder.embed.weight.grad is not None

    # eval: no sampling at any step
    plain.load_state_dict(model.state_dict())  # the same BatchNorm running statistics
    model.eval()
    plain.eval()
    out = model({**batch, "train_step": 5})
    assert out["tf_prob"].item() == 1.0
    torch.testing.assert_close(out["loss"], plain(batch)["loss"])


def test_guided_attention_loss_on_align_layer() -> None:
    guided = GuidedAttentionConfig(weight=2.0, sigma=0.3, half_life=1000, stop_step=10)
    lam = 0.3
    model = tiny_model(10, guided_attention=guided, ctc_weight=lam, align_layer=0).train()
    batch = make_batch(10)
    out = model({**batch, "train_step": 0})
    assert out["guided_loss"].item() > 0
    torch.testing.assert_close(
        out["loss"], lam * out["ctc_loss"] + (1 - lam) * out["att_loss"] + 2.0 * out["guided_loss"]
    )
    with torch.no_grad():
        memory, memory_lens = model.encode(batch["features"], batch["feature_lens"])
        ys_in, _ = model.decoder_io(batch["tokens"], batch["token_lens"])
        _, weights = model.decoder(ys_in, memory, memory_lens, need_weights=True)
        ref = guided_attention_loss(weights, batch["token_lens"] + 1, memory_lens, sigma=0.3)
    assert out["guided_loss"].item() == pytest.approx(ref.item(), rel=1e-5)
    half = model({**batch, "train_step": 5})
    torch.testing.assert_close(
        half["loss"],
        lam * half["ctc_loss"] + (1 - lam) * half["att_loss"] + 2.0 * 0.5 ** (5 / 1000) * half["guided_loss"],
    )
    late = model({**batch, "train_step": 10})
    assert "guided_loss" not in late
    torch.testing.assert_close(late["loss"], lam * late["ctc_loss"] + (1 - lam) * late["att_loss"])
    assert "guided_loss" not in model.eval()(batch)


def test_attention_rows_are_distributions_over_valid_frames() -> None:
    model = tiny_model(11).train()
    batch = make_batch(11)
    weights, lens = model.attention_weights(batch["features"], batch["feature_lens"], batch["tokens"],
                                            batch["token_lens"])
    assert model.training
    for b in range(3):
        rows = int(batch["token_lens"][b]) + 1
        torch.testing.assert_close(weights[b, :rows].sum(-1), torch.ones(rows), atol=1e-5, rtol=0)
        assert math.isclose(float(weights[b, :, int(lens[b]) :].sum()), 0.0)
