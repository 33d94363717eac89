"""label_smoothed_nll and guided_attention_loss against hand-computed references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from seqspeech.losses import IGNORE_ID, diagonal_prior, guided_attention_loss, label_smoothed_nll


def reference_nll(logits, targets, smoothing):
    """Sum over valid tokens of -(1-e) log p(y) - e/V sum_v log p(v), divided by B, by explicit loops."""
    batch, length, vocab = logits.shape
    logp = torch.log_softmax(logits.double(), dim=-1)
    total = 0.0
    for b in range(batch):
        for u in range(length):
            y = int(targets[b, u])
            if y == IGNORE_ID:
                continue
            total += -(1 - smoothing) * float(logp[b, u, y]) - smoothing / vocab * float(logp[b, u].sum())
    return total / batch


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.4])
def test_label_smoothing_matches_the_reference(smoothing):
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 7) * 3
    targets = torch.randint(0, 7, (3, 5))
    targets[0, 3:] = IGNORE_ID
    targets[2, 1:] = IGNORE_ID
    loss = label_smoothed_nll(logits, targets, smoothing)
    assert loss.dim() == 0 and loss.dtype == torch.float32
    assert float(loss) == pytest.approx(reference_nll(logits, targets, smoothing), rel=1e-5)


def test_no_smoothing_is_plain_cross_entropy_and_padding_is_free():
    torch.manual_seed(1)
    logits = torch.randn(2, 4, 6)
    targets = torch.tensor([[1, 2, IGNORE_ID, IGNORE_ID], [3, 4, 5, 0]])
    valid = targets != IGNORE_ID
    plain = F.cross_entropy(logits[valid], targets[valid], reduction="sum") / 2
    assert float(label_smoothed_nll(logits, targets)) == pytest.approx(float(plain), rel=1e-6)
    garbage = logits.clone()
    garbage[0, 2:] = 100.0  # whatever the model predicts at padding changes nothing
    assert float(label_smoothed_nll(garbage, targets, 0.1)) == pytest.approx(
        float(label_smoothed_nll(logits, targets, 0.1)), rel=1e-6
    )
    assert float(label_smoothed_nll(logits, torch.full((2, 4), IGNORE_ID))) == 0.0


def test_label_smoothing_in_bf16_is_computed_in_float32():
    torch.manual_seed(2)
    logits = torch.randn(2, 3, 5)
    targets = torch.randint(0, 5, (2, 3))
    loss = label_smoothed_nll(logits.bfloat16(), targets, 0.1)
    assert loss.dtype == torch.float32
    assert float(loss) == pytest.approx(reference_nll(logits.bfloat16().float(), targets, 0.1), rel=1e-5)


def test_label_smoothing_gradient_flows_only_to_valid_tokens():
    logits = torch.randn(1, 3, 4, requires_grad=True)
    label_smoothed_nll(logits, torch.tensor([[1, IGNORE_ID, 2]]), 0.2).backward()
    assert logits.grad[0, 1].abs().sum() == 0 and logits.grad[0, 0].abs().sum() > 0


@pytest.mark.parametrize(
    "logits, targets, smoothing, match",
    [
        (torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long), 0.0, "B, U, V"),
        (torch.zeros(2, 3, 4), torch.zeros(2, 2, dtype=torch.long), 0.0, "B, U"),
        (torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), 1.0, "smoothing"),
        (torch.zeros(2, 3, 4), torch.zeros(2, 3, dtype=torch.long), -0.1, "smoothing"),
    ],
)
def test_label_smoothing_rejects_bad_input(logits, targets, smoothing, match):
    with pytest.raises(ValueError, match=match):
        label_smoothed_nll(logits, targets, smoothing)


# -- guided attention ----------------------------------------------------------------------------------------


def reference_guided(weights, out_lens, in_lens, sigma):
    batch = weights.shape[0]
    total = 0.0
    for b in range(batch):
        n_out, n_in = int(out_lens[b]), int(in_lens[b])
        for u in range(n_out):
            for t in range(n_in):
                d = (u + 0.5) / n_out - (t + 0.5) / n_in
                total += float(weights[b, u, t]) * (1 - math.exp(-d * d / (2 * sigma * sigma)))
    return total / batch


def test_guided_loss_is_zero_on_square_identity_alignments_with_padding_ignored():
    out_lens, in_lens = torch.tensor([5, 3]), torch.tensor([5, 3])
    weights = torch.zeros(2, 5, 5)
    weights[0] = torch.eye(5)
    weights[1, :3, :3] = torch.eye(3)
    assert float(guided_attention_loss(weights, out_lens, in_lens)) == pytest.approx(0.0, abs=1e-7)
    weights[1, 3:, :] = 1.0  # padded rows
    weights[1, :, 3:] = 1.0  # padded frames
    assert float(guided_attention_loss(weights, out_lens, in_lens)) == pytest.approx(0.0, abs=1e-7)


def test_guided_loss_grows_off_the_diagonal_and_matches_the_reference():
    torch.manual_seed(3)
    out_lens, in_lens = torch.tensor([4, 6]), torch.tensor([9, 7])
    weights = torch.softmax(torch.randn(2, 6, 9), dim=-1)
    for sigma in (0.1, 0.4):
        loss = guided_attention_loss(weights, out_lens, in_lens, sigma)
        assert float(loss) == pytest.approx(reference_guided(weights, out_lens, in_lens, sigma), rel=1e-5)
    anti = torch.flip(torch.eye(6), dims=[1])[None]  # the anti-diagonal: as wrong as an alignment gets
    near = torch.roll(torch.eye(6), 1, dims=1)[None]
    lens = torch.tensor([6])
    zero = float(guided_attention_loss(torch.eye(6)[None], lens, lens))
    assert zero < float(guided_attention_loss(near, lens, lens)) < float(guided_attention_loss(anti, lens, lens))


def test_guided_loss_counts_missing_mass_as_off_diagonal():
    """A monotonic attention's row may sum to < 1; attending nothing must not be the cheapest alignment."""
    out_lens, in_lens = torch.tensor([4, 2]), torch.tensor([6, 5])
    nothing = torch.zeros(2, 4, 6)
    assert float(guided_attention_loss(nothing, out_lens, in_lens)) == pytest.approx((4 + 2) / 2)
    lens = torch.tensor([6])
    scale = torch.tensor(0.5, requires_grad=True)
    loss = guided_attention_loss(scale * torch.eye(6)[None], lens, lens)
    assert float(loss) == pytest.approx(6 * 0.5)
    loss.backward()
    assert float(scale.grad) < 0  # more mass on the diagonal lowers the loss
    anti = torch.flip(torch.eye(6), dims=[1])[None]
    assert float(guided_attention_loss(anti, lens, lens)) < float(guided_attention_loss(torch.zeros(1, 6, 6), lens,
                                                                                          lens))


def test_diagonal_prior_shape_and_padding():
    w = diagonal_prior(torch.tensor([2, 3]), torch.tensor([4, 2]), 3, 4, 0.2)
    assert w.shape == (2, 3, 4)
    assert bool((w[0, 2:] == 0).all()) and bool((w[1, :, 2:] == 0).all())
    assert bool((w >= 0).all()) and bool((w < 1).all())


def test_guided_loss_rejects_bad_input():
    with pytest.raises(ValueError, match="B, U, T"):
        guided_attention_loss(torch.zeros(3, 3), torch.tensor([3]), torch.tensor([3]))
    with pytest.raises(ValueError, match="sigma"):
        guided_attention_loss(torch.zeros(1, 3, 3), torch.tensor([3]), torch.tensor([3]), sigma=0.0)
