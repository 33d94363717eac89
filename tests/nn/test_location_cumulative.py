"""Location-sensitive attention with cumulative features (Tacotron 2): 2-channel convolution, cumulative state."""

from __future__ import annotations

import pytest
import torch

from seqspeech.nn.attention import AttentionState, LocationAwareAttention, select_state
from seqspeech.nn.attention.location import LocationAttentionState
from seqspeech.nn.masks import make_pad_mask

DQ, DM, DA = 6, 8, 5
LENS = torch.tensor([7, 4, 1, 0])
T = 7


def build(cumulative: bool) -> LocationAwareAttention:
    torch.manual_seed(0)
    return LocationAwareAttention(DQ, DM, DA, conv_channels=3, kernel_size=5, cumulative=cumulative).eval()


def inputs(batch: int = 4, frames: int = T, steps: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(steps, batch, DQ, generator=g), torch.randn(batch, frames, DM, generator=g)


def run(att, queries, memory, lens):
    state = att.init_state(memory, lens)
    contexts, weights = [], []
    for query in queries:
        context, w, state = att(query, memory, lens, state)
        contexts.append(context)
        weights.append(w)
    return torch.stack(contexts), torch.stack(weights), state


def test_default_is_unchanged_one_channel_plain_state() -> None:
    att = build(cumulative=False)
    assert att.conv.in_channels == 1
    _, memory = inputs()
    state = att.init_state(memory, LENS)
    assert type(state) is AttentionState


def test_cumulative_state_sums_the_weights_and_masks_padding() -> None:
    att = build(cumulative=True)
    assert att.conv.in_channels == 2
    queries, memory = inputs()
    state0 = att.init_state(memory, LENS)
    assert isinstance(state0, LocationAttentionState)
    assert (state0.cumulative == 0).all()
    contexts, weights, state = run(att, queries, memory, LENS)
    torch.testing.assert_close(state.cumulative, weights.sum(0))
    torch.testing.assert_close(state.alignment, weights[-1])
    pad = make_pad_mask(LENS, T)
    assert (weights[:, pad] == 0).all()
    torch.testing.assert_close(weights[:, :3].sum(-1), torch.ones(len(queries), 3))
    assert (weights[:, 3] == 0).all() and (contexts[:, 3] == 0).all()  # empty utterance: zeros, never NaN
    assert torch.isfinite(contexts).all()


def test_cumulative_padding_invariance() -> None:
    att = build(cumulative=True)
    queries, memory = inputs()
    contexts, weights, _ = run(att, queries, memory, LENS)
    for b in range(3):
        n = int(LENS[b])
        c1, w1, _ = run(att, queries[:, b : b + 1], memory[b : b + 1, :n], LENS[b : b + 1])
        torch.testing.assert_close(contexts[:, b : b + 1], c1, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(weights[:, b : b + 1, :n], w1, atol=1e-5, rtol=1e-5)


def test_zero_cumulative_filters_reduce_to_the_one_channel_attention() -> None:
    """Constructed truth: with the cumulative channel's filters zeroed, the attention is the 1-channel one."""
    plain, cum = build(cumulative=False), build(cumulative=True)
    cum.load_state_dict({k: v for k, v in plain.state_dict().items() if k != "conv.weight"}, strict=False)
    with torch.no_grad():
        cum.conv.weight.zero_()
        cum.conv.weight[:, :1] = plain.conv.weight
    queries, memory = inputs()
    c_plain, w_plain, _ = run(plain, queries, memory, LENS)
    c_cum, w_cum, _ = run(cum, queries, memory, LENS)
    torch.testing.assert_close(c_cum, c_plain)
    torch.testing.assert_close(w_cum, w_plain)
    with torch.no_grad():  # and the cumulative channel does change the result once it has weight
        cum.conv.weight[:, 1:] = 1.0
    _, w_changed, _ = run(cum, queries, memory, LENS)
    assert not torch.allclose(w_changed[1:, 0], w_plain[1:, 0])


def test_select_state_reorders_the_cumulative_weights() -> None:
    att = build(cumulative=True)
    queries, memory = inputs()
    _, _, state = run(att, queries, memory, LENS)
    picked = select_state(state, torch.tensor([2, 0, 0]))
    assert isinstance(picked, LocationAttentionState)
    torch.testing.assert_close(picked.cumulative, state.cumulative[[2, 0, 0]])
    torch.testing.assert_close(picked.keys, state.keys[[2, 0, 0]])


def test_missing_cumulative_state_is_a_clear_error() -> None:
    att = build(cumulative=True)
    queries, memory = inputs()
    plain_state = AttentionState(keys=att.key_proj(memory), pad_mask=make_pad_mask(LENS, T),
                                 alignment=torch.zeros(4, T))
    with pytest.raises(ValueError, match="cumulative"):
        att(queries[0], memory, LENS, plain_state)
