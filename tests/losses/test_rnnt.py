"""RNN-T losses (full, simple, pruned, FastEmit) against brute-force enumeration of every alignment."""

from __future__ import annotations

import itertools

import pytest
import torch

from seqspeech.losses import prune_band, pruned_rnnt_loss, rnnt_loss, simple_rnnt_loss

BLANK = 0


def assert_close(actual, expected, *, atol=1e-6, rtol=1e-5):
    """torch.testing.assert_close without its first-call import of torch.distributed (seconds on this machine)."""
    actual, expected = actual.detach(), torch.as_tensor(expected, dtype=actual.dtype).detach()
    assert actual.shape == expected.shape, f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    diff = (actual - expected).abs().max() if actual.numel() else actual.new_zeros(())
    assert torch.allclose(actual, expected, atol=atol, rtol=rtol), f"max abs difference {float(diff):.3g}"


def brute_force_nll(logits, targets, frames, labels, blank=BLANK):
    """-log P(y|x) per utterance by summing every alignment path explicitly (float64)."""
    out = []
    for b in range(logits.size(0)):
        t_len, u_len = int(frames[b]), int(labels[b])
        lp = logits[b].double().log_softmax(-1)
        y = [int(v) for v in targets[b, :u_len]]
        paths = []
        for label_slots in itertools.combinations(range(t_len - 1 + u_len), u_len):
            t = u = 0
            score = lp.new_zeros(())
            for i in range(t_len - 1 + u_len):
                if i in label_slots:
                    score = score + lp[t, u, y[u]]
                    u += 1
                else:
                    score = score + lp[t, u, blank]
                    t += 1
            paths.append(score + lp[t_len - 1, u_len, blank])  # the final blank out of (T-1, U)
        out.append(-torch.logsumexp(torch.stack(paths), 0))
    return torch.stack(out)


def brute_force_occupations(logits, targets, t_len, u_len, blank=BLANK):
    """Expected use of each blank (T, U+1) and label (T, U) transition of one utterance, by enumeration."""
    lp = logits.double().log_softmax(-1)
    y = [int(v) for v in targets[:u_len]]
    scores, uses = [], []
    for label_slots in itertools.combinations(range(t_len - 1 + u_len), u_len):
        t = u = 0
        score, used = 0.0, []
        for i in range(t_len - 1 + u_len):
            if i in label_slots:
                score += float(lp[t, u, y[u]])
                used.append(("label", t, u))
                u += 1
            else:
                score += float(lp[t, u, blank])
                used.append(("blank", t, u))
                t += 1
        scores.append(score + float(lp[t_len - 1, u_len, blank]))
        uses.append(used + [("blank", t_len - 1, u_len)])
    weights = torch.tensor(scores, dtype=torch.float64).softmax(0)
    occ_blank = torch.zeros(logits.shape[:2], dtype=torch.float64)
    occ_label = torch.zeros(logits.size(0), logits.size(1) - 1, dtype=torch.float64)
    for w, used in zip(weights, uses):
        for kind, t, u in used:
            (occ_blank if kind == "blank" else occ_label)[t, u] += w
    return occ_blank, occ_label


def make_batch(batch, frames_max, labels_max, vocab, *, seed=0, dtype=torch.float64, frames=None, labels=None):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, frames_max, labels_max + 1, vocab, generator=g, dtype=dtype) * 2
    targets = torch.randint(1, vocab, (batch, labels_max), generator=g)
    frames = torch.full((batch,), frames_max) if frames is None else torch.tensor(frames)
    labels = torch.full((batch,), labels_max) if labels is None else torch.tensor(labels)
    return logits, targets, frames, labels


@pytest.mark.parametrize("batch, frames_max, labels_max, vocab", [
    (1, 1, 0, 3),   # one frame, no labels: a single blank
    (2, 1, 3, 5),   # one frame emitting every label
    (2, 4, 0, 4),   # only blanks
    (2, 3, 2, 4),
    (1, 5, 4, 6),
])
def test_full_loss_matches_brute_force(batch, frames_max, labels_max, vocab):
    logits, targets, frames, labels = make_batch(batch, frames_max, labels_max, vocab)
    loss = rnnt_loss(logits, targets, frames, labels, reduction="none")
    assert loss.shape == (batch,) and loss.dtype == torch.float64
    assert_close(loss, brute_force_nll(logits, targets, frames, labels), atol=1e-4, rtol=0)


def test_mixed_lengths_and_reductions_match_brute_force():
    logits, targets, frames, labels = make_batch(4, 5, 3, 6, seed=1, frames=[5, 2, 1, 4], labels=[3, 1, 2, 0])
    targets[1, 1:] = -1  # padding is any value
    reference = brute_force_nll(logits, targets, frames, labels)
    assert_close(rnnt_loss(logits, targets, frames, labels, reduction="none"), reference,
                               atol=1e-4, rtol=0)
    assert_close(rnnt_loss(logits, targets, frames, labels, reduction="sum"), reference.sum())
    assert_close(rnnt_loss(logits, targets, frames, labels), reference.sum() / 4)
    float_loss = rnnt_loss(logits.float(), targets, frames, labels, reduction="none")
    assert float_loss.dtype == torch.float32
    assert_close(float_loss.double(), reference, atol=1e-4, rtol=1e-5)


def dynamic_programme_nll(logits, targets, frames, labels, blank=BLANK):
    """Textbook alpha recursion cell by cell with autograd (Graves 2012, eq. 16), float64."""
    out = []
    for b in range(logits.size(0)):
        t_len, u_len = int(frames[b]), int(labels[b])
        lp = logits[b].double().log_softmax(-1)
        alpha = {}
        for t in range(t_len):
            for u in range(u_len + 1):
                terms = [lp.new_zeros(())] if t == u == 0 else []
                if t > 0:
                    terms.append(alpha[t - 1, u] + lp[t - 1, u, blank])
                if u > 0:
                    terms.append(alpha[t, u - 1] + lp[t, u - 1, int(targets[b, u - 1])])
                alpha[t, u] = torch.logsumexp(torch.stack(terms), 0)
        out.append(-(alpha[t_len - 1, u_len] + lp[t_len - 1, u_len, blank]))
    return torch.stack(out)


def test_loss_and_gradients_match_a_plain_dynamic_programme_on_a_larger_lattice():
    logits, targets, frames, labels = make_batch(3, 11, 7, 9, seed=17, frames=[11, 6, 9], labels=[7, 7, 3])
    x = logits.clone().requires_grad_(True)
    y = logits.clone().requires_grad_(True)
    ours = rnnt_loss(x, targets, frames, labels, reduction="sum")
    reference = dynamic_programme_nll(y, targets, frames, labels).sum()
    assert_close(ours, reference, atol=1e-9, rtol=1e-12)
    ours.backward()
    reference.backward()
    assert_close(x.grad, y.grad, atol=1e-9, rtol=1e-9)


def test_gradients_match_finite_differences():
    logits, targets, frames, labels = make_batch(2, 3, 2, 4, seed=2, frames=[3, 2], labels=[2, 1])
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: rnnt_loss(x, targets, frames, labels, reduction="none"), (logits,))

    g = torch.Generator().manual_seed(3)
    am = torch.randn(2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    lm = torch.randn(2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, m: simple_rnnt_loss(a, m, targets, frames, labels, reduction="none")[0], (am, lm), fast_mode=True)

    ranges = torch.tensor([0, 1])[None, None, :] + torch.tensor([[0, 1, 1], [0, 1, 1]])[:, :, None]  # S = 2
    band = torch.randn(2, 3, 2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x: pruned_rnnt_loss(x, ranges, targets, frames, labels, reduction="none", fastemit_lambda=0.0),
        (band,), fast_mode=True)


def test_gradient_is_minus_occupation_and_fastemit_scales_the_label_part():
    logits, targets, frames, labels = make_batch(1, 4, 3, 5, seed=4)
    occ_blank, occ_label = brute_force_occupations(logits[0], targets[0], 4, 3)
    for lam in (0.0, 0.5):
        x = logits.clone().requires_grad_(True)
        loss = rnnt_loss(x, targets, frames, labels, reduction="sum", fastemit_lambda=lam)
        assert_close(loss, brute_force_nll(logits, targets, frames, labels).sum())  # value unchanged
        loss.backward()
        # hand computation: d(-log P)/d blank_lp = -occupation, d/d label_lp = -(1 + lambda) occupation
        y = logits.clone().requires_grad_(True)
        lp = y.log_softmax(-1)[0]
        blank_lp = lp[..., BLANK]
        label_lp = lp[:, :3].gather(2, targets[0][None, :, None].expand(4, 3, 1)).squeeze(-1)
        surrogate = -(occ_blank * blank_lp).sum() - (1 + lam) * (occ_label * label_lp).sum()
        surrogate.backward()
        assert_close(x.grad, y.grad, atol=1e-8, rtol=1e-6)


def test_fastemit_zero_gives_identical_gradients():
    logits, targets, frames, labels = make_batch(2, 4, 2, 5, seed=5, dtype=torch.float32, frames=[4, 3])
    grads = []
    for kwargs in ({}, {"fastemit_lambda": 0.0}):
        x = logits.clone().requires_grad_(True)
        rnnt_loss(x, targets, frames, labels, **kwargs).backward()
        grads.append(x.grad)
    assert torch.equal(grads[0], grads[1])


def test_padding_is_inert():
    logits, targets, frames, labels = make_batch(1, 3, 2, 5, seed=6)
    alone = logits.clone().requires_grad_(True)
    loss_alone = rnnt_loss(alone, targets, frames, labels, reduction="sum")
    loss_alone.backward()

    g = torch.Generator().manual_seed(7)
    padded = torch.randn(3, 6, 5, 5, generator=g, dtype=torch.float64) * 30  # garbage everywhere
    padded[1, :3, :3] = logits[0]
    padded = padded.requires_grad_(True)
    batch_targets = torch.randint(0, 5, (3, 4), generator=g)
    batch_targets[1] = torch.tensor([int(targets[0, 0]), int(targets[0, 1]), -7, 99])
    losses = rnnt_loss(padded, batch_targets, torch.tensor([6, 3, 2]), torch.tensor([4, 2, 1]), reduction="none")
    assert_close(losses[1], loss_alone, atol=1e-10, rtol=0)
    losses[1].backward()
    assert_close(padded.grad[1, :3, :3], alone.grad[0], atol=1e-10, rtol=0)
    assert padded.grad[1, 3:].abs().max() == 0 and padded.grad[1, :, 3:].abs().max() == 0
    assert padded.grad[[0, 2]].abs().max() == 0


def test_simple_loss_equals_the_materialised_trivial_joiner():
    g = torch.Generator().manual_seed(8)
    am = torch.randn(3, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    lm = torch.randn(3, 4, 7, generator=g, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(1, 7, (3, 3), generator=g)
    frames, labels = torch.tensor([6, 4, 2]), torch.tensor([3, 2, 0])
    simple, _ = simple_rnnt_loss(am, lm, targets, frames, labels, reduction="sum")
    full = rnnt_loss(am[:, :, None] + lm[:, None], targets, frames, labels, reduction="sum")
    assert_close(simple, full, atol=1e-8, rtol=1e-10)
    grads_simple = torch.autograd.grad(simple, (am, lm))
    grads_full = torch.autograd.grad(full, (am, lm))
    for a, b in zip(grads_simple, grads_full):
        assert_close(a, b, atol=1e-8, rtol=1e-8)
    # float32 and large logits: the max-shifted matmul normaliser still agrees
    simple32, _ = simple_rnnt_loss((am * 20).float(), (lm * 20).float(), targets, frames, labels, reduction="none")
    full32 = rnnt_loss((am * 20)[:, :, None] + (lm * 20)[:, None], targets, frames, labels, reduction="none")
    assert_close(simple32.double(), full32, rtol=1e-5, atol=1e-3)


def assert_valid_ranges(ranges, frames, labels, width):
    batch, _, s = ranges.shape
    assert s == width and ranges.dtype == torch.long
    assert torch.equal(ranges - ranges[..., :1], torch.arange(width).expand_as(ranges))
    start = ranges[..., 0]
    assert (start[:, 1:] >= start[:, :-1]).all()  # monotone
    assert (start[:, 1:] - start[:, :-1] <= width - 1).all()  # never skips a label
    assert (start[:, 0] == 0).all()
    bound = (labels - width + 1).clamp(min=0)
    assert (start >= 0).all() and (start <= bound[:, None]).all()
    for b in range(batch):
        assert int(start[b, int(frames[b]) - 1]) == int(bound[b])  # the band reaches (T_b-1, U_b)


@pytest.mark.parametrize("prune_range", [2, 3, 5, 9])
def test_ranges_are_monotone_and_within_bounds(prune_range):
    g = torch.Generator().manual_seed(9)
    am = torch.randn(4, 12, 9, generator=g) * 3
    lm = torch.randn(4, 8, 9, generator=g) * 3
    targets = torch.randint(1, 9, (4, 7), generator=g)
    frames, labels = torch.tensor([12, 9, 4, 1]), torch.tensor([7, 5, 0, 0])
    _, ranges = simple_rnnt_loss(am, lm, targets, frames, labels, prune_range=prune_range)
    assert_valid_ranges(ranges, frames, labels, min(prune_range, 8))


def trivial_nonlinear_joiner(am_band, lm_band, weight):
    return torch.tanh(am_band + lm_band) @ weight


def test_pruned_loss_equals_full_when_the_band_covers_the_lattice_and_exceeds_it_otherwise():
    g = torch.Generator().manual_seed(10)
    batch, max_frames, labels_max, hidden, vocab = 3, 7, 4, 6, 5
    am = torch.randn(batch, max_frames, hidden, generator=g, dtype=torch.float64)
    lm = torch.randn(batch, labels_max + 1, hidden, generator=g, dtype=torch.float64)
    weight = torch.randn(hidden, vocab, generator=g, dtype=torch.float64) * 2
    targets = torch.randint(1, vocab, (batch, labels_max), generator=g)
    frames, labels = torch.tensor([7, 5, 3]), torch.tensor([4, 2, 0])
    full_logits = trivial_nonlinear_joiner(am[:, :, None], lm[:, None], weight)
    full = rnnt_loss(full_logits, targets, frames, labels, reduction="none")

    for prune_range in (labels_max + 1, labels_max + 3):
        _, ranges = simple_rnnt_loss(am @ weight, lm @ weight, targets, frames, labels, prune_range=prune_range)
        assert ranges.shape == (batch, max_frames, labels_max + 1)
        band = trivial_nonlinear_joiner(*prune_band(am, lm, ranges), weight)
        pruned = pruned_rnnt_loss(band, ranges, targets, frames, labels, reduction="none")
        assert_close(pruned, full, atol=1e-10, rtol=0)

    for prune_range in (2, 3):
        _, ranges = simple_rnnt_loss(am @ weight, lm @ weight, targets, frames, labels, prune_range=prune_range)
        band = trivial_nonlinear_joiner(*prune_band(am, lm, ranges), weight).requires_grad_(True)
        pruned = pruned_rnnt_loss(band, ranges, targets, frames, labels, reduction="none")
        assert torch.isfinite(pruned).all() and (pruned >= full - 1e-10).all()
        assert float((pruned - full).detach().max()) > 0  # some paths really were dropped
        pruned.sum().backward()
        assert torch.isfinite(band.grad).all()


def test_a_band_that_cannot_reach_the_end_gives_inf_with_finite_gradients():
    g = torch.Generator().manual_seed(16)
    am, lm = torch.randn(1, 2, 5, generator=g), torch.randn(1, 4, 5, generator=g)
    targets, frames, labels = torch.tensor([[1, 2, 3]]), torch.tensor([2]), torch.tensor([3])
    _, ranges = simple_rnnt_loss(am, lm, targets, frames, labels, prune_range=2)  # 2 frames x 1 label step < 3
    assert ranges[0, :, -1].tolist() == [1, 2]
    band = (am[:, :, None] + lm[:, None]).gather(2, ranges[..., None].expand(-1, -1, -1, 5)).requires_grad_(True)
    loss = pruned_rnnt_loss(band, ranges, targets, frames, labels)
    assert torch.isinf(loss)
    loss.backward()
    assert torch.isfinite(band.grad).all()


def test_pruned_fastemit_and_band_brute_force():
    """Pruned loss equals brute force over the alignments that stay inside the band."""
    logits, targets, frames, labels = make_batch(1, 4, 3, 5, seed=11)
    ranges = torch.tensor([0, 1, 1, 2])[None, :, None] + torch.arange(2)  # S = 2, s_t = 0, 1, 1, 2
    band = logits.gather(2, ranges[..., None].expand(-1, -1, -1, 5))
    lp = logits[0].log_softmax(-1)
    scores = []
    for label_slots in itertools.combinations(range(3 + 3), 3):
        t = u = 0
        score, inside = 0.0, True
        for i in range(6):
            inside &= int(ranges[0, t, 0]) <= u <= int(ranges[0, t, -1])
            if i in label_slots:
                score += float(lp[t, u, int(targets[0, u])])
                u += 1
            else:
                score += float(lp[t, u, BLANK])
                t += 1
        inside &= int(ranges[0, 3, 0]) <= u <= int(ranges[0, 3, -1])
        if inside:
            scores.append(score + float(lp[3, 3, BLANK]))
    expected = -torch.logsumexp(torch.tensor(scores, dtype=torch.float64), 0)
    for lam in (0.0, 1.0):
        loss = pruned_rnnt_loss(band, ranges, targets, frames, labels, reduction="sum", fastemit_lambda=lam)
        assert_close(loss, expected, atol=1e-10, rtol=0)


def test_low_precision_logits_under_autocast():
    logits, targets, frames, labels = make_batch(2, 5, 3, 6, seed=12, dtype=torch.float32, frames=[5, 3])
    reference = rnnt_loss(logits, targets, frames, labels, reduction="none")
    half = logits.bfloat16().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = rnnt_loss(half, targets, frames, labels, reduction="none")
        simple, _ = simple_rnnt_loss(torch.randn(2, 5, 6).bfloat16(), torch.randn(2, 4, 6).bfloat16(), targets,
                                     frames, labels)
    assert loss.dtype == torch.float32 and simple.dtype == torch.float32 and torch.isfinite(simple)
    assert_close(loss, reference, atol=0.1, rtol=0.02)  # bfloat16 inputs, float32 lattice
    loss.sum().backward()
    assert half.grad.dtype == torch.bfloat16 and torch.isfinite(half.grad.float()).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    logits, targets, frames, labels = make_batch(3, 6, 4, 7, seed=13, dtype=torch.float32, frames=[6, 4, 2],
                                                 labels=[4, 2, 0])
    cpu = rnnt_loss(logits, targets, frames, labels, reduction="none")
    gpu = rnnt_loss(logits.cuda(), targets.cuda(), frames.cuda(), labels.cuda(), reduction="none")
    assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-5)
    am, lm = torch.randn(3, 6, 7), torch.randn(3, 5, 7)
    _, r_cpu = simple_rnnt_loss(am, lm, targets, frames, labels, prune_range=3)
    _, r_gpu = simple_rnnt_loss(am.cuda(), lm.cuda(), targets.cuda(), frames.cuda(), labels.cuda(), prune_range=3)
    assert torch.equal(r_gpu.cpu(), r_cpu)


@pytest.mark.parametrize("change, name", [
    (lambda a: a.update(logits=a["logits"][0]), "logits"),
    (lambda a: a.update(logits=a["logits"].long()), "logits"),
    (lambda a: a.update(targets=a["targets"][:, :1]), "targets"),
    (lambda a: a.update(targets=a["targets"].float()), "targets"),
    (lambda a: a["targets"].__setitem__((0, 0), 9), "targets"),
    (lambda a: a.update(frames=torch.tensor([3])), "frames"),
    (lambda a: a.update(frames=torch.tensor([0, 3])), "frames"),
    (lambda a: a.update(frames=torch.tensor([4, 3])), "frames"),
    (lambda a: a.update(frames=torch.tensor([3.0, 3.0])), "frames"),
    (lambda a: a.update(labels=torch.tensor([3, 1])), "labels"),
    (lambda a: a.update(labels=torch.tensor([-1, 1])), "labels"),
    (lambda a: a.update(reduction="avg"), "reduction"),
    (lambda a: a.update(fastemit_lambda=-0.1), "fastemit_lambda"),
    (lambda a: a.update(blank=5), "blank"),
])
def test_bad_inputs_raise_value_errors_naming_the_argument(change, name):
    logits, targets, frames, labels = make_batch(2, 3, 2, 5, seed=14)
    args = {"logits": logits, "targets": targets, "frames": frames, "labels": labels}
    change(args)
    with pytest.raises(ValueError, match=name):
        rnnt_loss(args.pop("logits"), args.pop("targets"), args.pop("frames"), args.pop("labels"), **args)


def test_bad_pruning_inputs_raise_value_errors():
    g = torch.Generator().manual_seed(15)
    am, lm = torch.randn(2, 4, 5, generator=g), torch.randn(2, 3, 5, generator=g)
    targets, frames, labels = torch.tensor([[1, 2], [3, 4]]), torch.tensor([4, 4]), torch.tensor([2, 2])
    with pytest.raises(ValueError, match="prune_range"):
        simple_rnnt_loss(am, lm, targets, frames, labels, prune_range=1)
    with pytest.raises(ValueError, match="lm"):
        simple_rnnt_loss(am, lm[:, :, :4], targets, frames, labels)
    _, ranges = simple_rnnt_loss(am, lm, targets, frames, labels, prune_range=2)
    with pytest.raises(ValueError, match="ranges"):
        prune_band(am, lm, ranges + 1)  # runs past U
    with pytest.raises(ValueError, match="ranges"):
        prune_band(am, lm, ranges[:, :3])
    band = torch.randn(2, 4, 2, 5, generator=g)
    with pytest.raises(ValueError, match="ranges"):
        pruned_rnnt_loss(band, ranges.flip(-1), targets, frames, labels)
    with pytest.raises(ValueError, match="logits"):
        pruned_rnnt_loss(band[..., 0], ranges, targets, frames, labels)
