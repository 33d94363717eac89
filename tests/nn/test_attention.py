"""Attention modules: shapes, masking, padding invariance, monotonic/MoChA properties, beam reordering, autocast."""

from __future__ import annotations

import math

import pytest
import torch

from seqspeech.errors import ConfigError
from seqspeech.nn.attention import (
    AdditiveAttention,
    Attention,
    DotProductAttention,
    LocationAwareAttention,
    MoChA,
    MonotonicAttention,
    MultiHeadAttention,
    select_state,
)
from seqspeech.nn.attention.mocha import hard_chunk_weights, soft_chunk_weights
from seqspeech.nn.attention.monotonic import (
    hard_monotonic_alignment,
    initial_monotonic_alignment,
    soft_monotonic_alignment,
)
from seqspeech.nn.masks import make_pad_mask

DQ, DM, DA = 6, 8, 5
LENS = torch.tensor([7, 4, 1, 0])
T = 7


def build(name: str, mode: str = "soft") -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "dot":
        return DotProductAttention(DQ, DM)
    if name == "dot_proj":
        return DotProductAttention(DQ, DM, DA)
    if name == "additive":
        return AdditiveAttention(DQ, DM, DA)
    if name == "location":
        return LocationAwareAttention(DQ, DM, DA, conv_channels=3, kernel_size=5)
    if name == "location_smooth":
        return LocationAwareAttention(DQ, DM, DA, conv_channels=3, kernel_size=5, smoothing=True)
    if name == "monotonic":
        return MonotonicAttention(DQ, DM, DA, init_r=0.0, noise_std=1.0, mode=mode)
    if name == "mocha":
        return MoChA(DQ, DM, DA, chunk_size=3, init_r=0.0, noise_std=1.0, mode=mode)
    raise AssertionError(name)


SOFTMAX = ["dot", "dot_proj", "additive", "location", "location_smooth"]
ALL = SOFTMAX + ["monotonic", "mocha"]


def inputs(batch: int = 4, frames: int = T) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    return torch.randn(batch, DQ), torch.randn(batch, frames, DM)


def run_steps(att, queries, memory, lens, steps: int = 3):
    state = att.init_state(memory, lens)
    outs = []
    for _ in range(steps):
        context, weights, state = att(queries, memory, lens, state)
        outs.append((context, weights))
    return outs, state


@pytest.mark.parametrize(
    ("name", "mode"), [(name, "soft") for name in ALL] + [("monotonic", "hard"), ("mocha", "hard")]
)
def test_shapes_masking_and_padding_invariance(name: str, mode: str) -> None:
    att = build(name, mode).eval()
    assert isinstance(att, Attention)
    query, memory = inputs()
    outs, _ = run_steps(att, query, memory, LENS)
    pad = make_pad_mask(LENS, T)
    for context, weights in outs:
        assert context.shape == (4, DM) and weights.shape == (4, T)
        assert torch.isfinite(context).all() and torch.isfinite(weights).all()
        assert (weights[pad] == 0).all()
        assert (weights[3] == 0).all() and (context[3] == 0).all()  # empty utterance
        sums = weights.sum(-1)
        if name in SOFTMAX:
            torch.testing.assert_close(sums[:3], torch.ones(3))
        else:
            assert (sums <= 1 + 1e-5).all()
    # padding invariance: each utterance alone gives the same outputs as inside the padded batch
    for b in range(3):
        n = int(LENS[b])
        alone, _ = run_steps(att, query[b : b + 1], memory[b : b + 1, :n], LENS[b : b + 1])
        for (c_batch, w_batch), (c_alone, w_alone) in zip(outs, alone, strict=True):
            torch.testing.assert_close(c_batch[b : b + 1], c_alone, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(w_batch[b : b + 1, :n], w_alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["location", "location_smooth", "monotonic", "mocha"])
def test_previous_alignment_changes_the_output(name: str) -> None:
    att = build(name).eval()
    query, memory = inputs()
    state = att.init_state(memory, LENS)
    _, w1, _ = att(query, memory, LENS, state)
    shifted = torch.zeros_like(state.alignment)
    shifted[:3, 0] = 0.0
    shifted[0, 5] = 1.0
    shifted[1, 2] = 1.0
    shifted[2, 0] = 1.0
    state.alignment = shifted
    _, w2, _ = att(query, memory, LENS, state)
    assert not torch.allclose(w1[0], w2[0])
    assert not torch.allclose(w1[1], w2[1])


def test_location_initial_alignment_is_uniform_over_valid_frames() -> None:
    att = build("location")
    _, memory = inputs()
    state = att.init_state(memory, LENS)
    torch.testing.assert_close(state.alignment[1, :4], torch.full((4,), 0.25))
    assert (state.alignment[1, 4:] == 0).all() and (state.alignment[3] == 0).all()


def test_monotonic_initial_alignment_is_one_hot_at_frame_zero() -> None:
    alignment = initial_monotonic_alignment(make_pad_mask(LENS, T))
    assert alignment[:3, 0].tolist() == [1.0, 1.0, 1.0] and alignment[:3, 1:].sum() == 0
    assert (alignment[3] == 0).all()


def test_soft_monotonic_sums_to_at_most_one_and_matches_a_sequential_recurrence() -> None:
    torch.manual_seed(0)
    frames = 9
    lens = torch.tensor([9, 6])
    pad = make_pad_mask(lens, frames)
    prev = initial_monotonic_alignment(pad)
    for _ in range(5):
        logits = 2 * torch.randn(2, frames)
        alpha = soft_monotonic_alignment(logits, prev, pad)
        assert (alpha.sum(-1) <= 1 + 1e-5).all() and (alpha >= 0).all() and (alpha[pad] == 0).all()
        # reference: q_j = (1 - p_{j-1}) q_{j-1} + alpha_prev_j, alpha_j = p_j q_j
        p = torch.sigmoid(logits).masked_fill(pad, 0.0)
        ref = torch.zeros_like(alpha)
        q = torch.zeros(2)
        for j in range(frames):
            q = (1 - p[:, j - 1]) * q + prev[:, j] if j else prev[:, 0].clone()
            ref[:, j] = p[:, j] * q
        torch.testing.assert_close(alpha, ref, atol=1e-6, rtol=1e-5)
        prev = alpha


def test_soft_equals_hard_when_energies_saturate() -> None:
    torch.manual_seed(0)
    frames = 10
    lens = torch.tensor([10, 7, 3])
    pad = make_pad_mask(lens, frames)
    soft_prev = hard_prev = initial_monotonic_alignment(pad)
    for _ in range(6):
        logits = torch.where(torch.rand(3, frames) < 0.35, 60.0, -60.0)
        soft = soft_monotonic_alignment(logits, soft_prev, pad)
        hard = hard_monotonic_alignment(logits, hard_prev, pad)
        torch.testing.assert_close(soft, hard, atol=1e-6, rtol=0)
        chunk_energy = torch.randn(3, frames)
        torch.testing.assert_close(
            soft_chunk_weights(soft, chunk_energy, pad, 3),
            hard_chunk_weights(hard, chunk_energy, pad, 3),
            atol=1e-6,
            rtol=0,
        )
        soft_prev, hard_prev = soft, hard


def test_hard_monotonic_moves_left_to_right_and_can_attend_nothing() -> None:
    pad = make_pad_mask(torch.tensor([5]), 5)
    prev = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0]])
    logits = torch.tensor([[9.0, 9.0, -9.0, -9.0, 9.0]])
    assert hard_monotonic_alignment(logits, prev, pad).tolist() == [[0, 0, 0, 0, 1]]
    nothing = hard_monotonic_alignment(torch.full((1, 5), -9.0), prev, pad)
    assert nothing.sum() == 0
    # once nothing was attended, nothing is attended later
    assert hard_monotonic_alignment(torch.full((1, 5), 9.0), nothing, pad).sum() == 0


def test_hard_monotonic_stops_at_the_median_of_the_soft_stopping_time() -> None:
    """p = 0.3 everywhere never reaches the paper's p >= 0.5, but the chance of having stopped passes one half at the
    second frame scanned (1 - 0.7**2 = 0.51): where the soft alignment puts its mass, not nowhere."""
    pad = make_pad_mask(torch.tensor([6]), 6)
    prev = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0, 0.0]])
    logit = math.log(0.3 / 0.7)
    assert hard_monotonic_alignment(torch.full((1, 6), logit), prev, pad).tolist() == [[0, 0, 1, 0, 0, 0]]
    soft = soft_monotonic_alignment(torch.full((1, 6), logit), prev, pad)
    assert float(soft[0, :3].sum()) >= 0.5 > float(soft[0, :2].sum())  # the soft mass's median frame
    # frames before the previous one do not count, and a padded tail never stops
    assert hard_monotonic_alignment(torch.tensor([[9.0, -9.0, -9.0, -9.0, logit, 9.0]]), prev,
                                    make_pad_mask(torch.tensor([5]), 6)).sum() == 0


@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_mocha_with_chunk_one_is_monotonic(mode: str) -> None:
    torch.manual_seed(0)
    mono = MonotonicAttention(DQ, DM, DA, init_r=0.0, mode=mode).eval()
    mocha = MoChA(DQ, DM, DA, chunk_size=1, init_r=0.0, mode=mode).eval()
    mocha.monotonic.load_state_dict(mono.state_dict())
    query, memory = inputs()
    m_outs, _ = run_steps(mono, query, memory, LENS, steps=4)
    c_outs, _ = run_steps(mocha, query, memory, LENS, steps=4)
    for (mc, mw), (cc, cw) in zip(m_outs, c_outs, strict=True):
        torch.testing.assert_close(cw, mw, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(cc, mc, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_select_state_reorders(name: str) -> None:
    att = build(name).eval()
    query, memory = inputs()
    state = att.init_state(memory, LENS)
    _, _, state = att(query, memory, LENS, state)
    order = torch.tensor([2, 0, 0, 1])
    picked = select_state(state, order)
    for field, value in vars(state).items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(getattr(picked, field), value[order])
    # the next step on the reordered state equals the reordered next step
    c_all, w_all, _ = att(query, memory, LENS, state)
    c_sel, w_sel, _ = att(query[order], memory[order], LENS[order], picked)
    torch.testing.assert_close(c_sel, c_all[order])
    torch.testing.assert_close(w_sel, w_all[order])


@pytest.mark.parametrize("name", ALL)
def test_gradients_flow_in_soft_mode(name: str) -> None:
    att = build(name).train()
    query, memory = inputs()
    query.requires_grad_(True)
    memory.requires_grad_(True)
    outs, _ = run_steps(att, query, memory, LENS)
    sum(c.sum() for c, _ in outs).backward()
    assert query.grad is not None and torch.isfinite(query.grad).all() and query.grad.abs().sum() > 0
    assert torch.isfinite(memory.grad).all()
    for param in att.parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all()


@pytest.mark.parametrize("name", ALL)
def test_bf16_autocast_gives_no_nan(name: str) -> None:
    att = build(name).train()
    query, memory = inputs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outs, _ = run_steps(att, query, memory, LENS)
        loss = sum(c.float().sum() for c, _ in outs)
    loss.backward()
    for context, weights in outs:
        assert torch.isfinite(context).all() and torch.isfinite(weights).all()
    assert all(torch.isfinite(p.grad).all() for p in att.parameters() if p.grad is not None)


def test_monotonic_noise_only_in_training_and_energy_bias_starts_negative() -> None:
    torch.manual_seed(0)
    att = MonotonicAttention(DQ, DM, DA)
    query, memory = inputs()
    state = att.init_state(memory, LENS)
    assert att.r.item() == -4.0
    assert torch.sigmoid(att.energy(query, state.keys)).max() < 0.1  # starts out "move on"
    train_a = att.train()(query, memory, LENS, state)[1]
    train_b = att(query, memory, LENS, state)[1]
    assert not torch.equal(train_a, train_b)
    att.eval()
    torch.testing.assert_close(att(query, memory, LENS, state)[1], att(query, memory, LENS, state)[1])


def test_bad_configs_are_rejected() -> None:
    with pytest.raises(ConfigError):
        MonotonicAttention(DQ, DM, DA, mode="greedy")
    with pytest.raises(ConfigError):
        MoChA(DQ, DM, DA, chunk_size=0)
    with pytest.raises(ConfigError):
        LocationAwareAttention(DQ, DM, DA, kernel_size=4)
    with pytest.raises(ConfigError):
        MultiHeadAttention(10, 3)


# ---- multi-head ---------------------------------------------------------------------------------------------------


def mha_inputs() -> tuple[MultiHeadAttention, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return MultiHeadAttention(8, 2, dropout=0.1).eval(), torch.randn(4, 5, 8), torch.randn(4, T, 8)


def test_multihead_cross_attention_masks_padding_and_matches_fused_path() -> None:
    mha, query, memory = mha_inputs()
    out, weights = mha(query, memory, LENS, need_weights=True)
    fused, none = mha(query, memory, LENS)
    assert none is None and out.shape == (4, 5, 8) and weights.shape == (4, 2, 5, T)
    torch.testing.assert_close(out, fused, atol=1e-5, rtol=1e-5)
    pad = make_pad_mask(LENS, T)[:, None, None, :].expand_as(weights)
    assert (weights[pad] == 0).all()
    torch.testing.assert_close(weights[:3].sum(-1), torch.ones(3, 2, 5))
    assert (weights[3] == 0).all() and torch.isfinite(out).all()
    torch.testing.assert_close(out[3], mha.out.bias.expand(5, 8))  # empty memory: zero attention output
    for b in range(3):  # padding invariance
        n = int(LENS[b])
        alone, _ = mha(query[b : b + 1], memory[b : b + 1, :n], LENS[b : b + 1])
        torch.testing.assert_close(out[b : b + 1], alone, atol=1e-5, rtol=1e-5)


def test_multihead_causal_self_attention_hides_the_future() -> None:
    mha, x, _ = mha_inputs()
    lens = torch.tensor([5, 3, 1, 0])
    out, weights = mha(x, x, lens, causal=True, need_weights=True)
    fused, _ = mha(x, x, lens, causal=True)
    torch.testing.assert_close(out, fused, atol=1e-5, rtol=1e-5)
    assert (weights.triu(1) == 0).all()
    changed = x.clone()
    changed[:, 3:] += 1.0  # the future does not change earlier outputs
    out2, _ = mha(changed, changed, lens, causal=True)
    torch.testing.assert_close(out2[:, :3], out[:, :3])
    with pytest.raises(ValueError, match="causal"):
        mha(x, torch.randn(4, 6, 8), causal=True)


def test_multihead_gradients_and_autocast() -> None:
    mha, query, memory = mha_inputs()
    mha.train()
    query.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, weights = mha(query, memory, LENS, need_weights=True)
        fused, _ = mha(query, memory, LENS, causal=False)
    (out.float().sum() + fused.float().sum()).backward()
    assert torch.isfinite(out).all() and torch.isfinite(weights).all() and torch.isfinite(fused).all()
    assert torch.isfinite(query.grad).all() and query.grad.abs().sum() > 0


def test_soft_chunk_weights_redistribute_each_alpha_over_its_chunk() -> None:
    torch.manual_seed(0)
    pad = make_pad_mask(torch.tensor([8, 5]), 8)
    alpha = soft_monotonic_alignment(torch.randn(2, 8), initial_monotonic_alignment(pad), pad)
    beta = soft_chunk_weights(alpha, torch.randn(2, 8), pad, 3)
    torch.testing.assert_close(beta.sum(-1), alpha.sum(-1))  # each chunk's softmax sums to one
    assert (beta[pad] == 0).all() and (beta >= 0).all()


@pytest.mark.parametrize(
    ("name", "mode"), [(name, "soft") for name in ALL] + [("monotonic", "hard"), ("mocha", "hard")]
)
def test_a_memory_without_frames_gives_zero_weights_and_context(name: str, mode: str) -> None:
    att = build(name, mode).eval()
    query, memory = inputs()
    empty, lens = memory[:, :0], torch.zeros(4, dtype=torch.long)
    outs, _ = run_steps(att, query, empty, lens, steps=2)
    for context, weights in outs:
        assert weights.shape == (4, 0) and context.shape == (4, DM)
        assert torch.isfinite(context).all() and (context == 0).all()
