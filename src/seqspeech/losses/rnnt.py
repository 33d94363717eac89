"""RNN-T (transducer) loss (Graves 2012): full, k2-style simple + pruned (Kuang et al. 2022), with FastEmit.

The loss is ``-log P(y|x)`` summed over every alignment of the ``T x (U+1)`` lattice: from cell ``(t, u)`` a blank moves
to ``(t+1, u)`` and label ``y[u]`` moves to ``(t, u+1)``; a path starts at ``(0, 0)`` and ends with the blank out of
``(T_b-1, U_b)``. Three pieces, each used by every variant:

* :class:`_CellLogProbs` turns joiner logits ``(B, T, K, V)`` into the two log-probabilities each lattice cell needs,
  ``blank_lp`` and ``label_lp`` ``(B, T, K)``, without keeping a log-softmax of size ``V``: it saves the logits and the
  normaliser ``(B, T, K)`` only and writes the logits' gradient in place, chunk by chunk (one ``(B, T, K, V)`` gradient
  plus one chunk of scratch at the peak, where autograd's logsumexp + two gathers keep several).
* :class:`_Lattice` runs log-space forward-backward over the anti-diagonals ``n = t + u`` (``T + U`` steps, each
  vectorised over batch and ``u``; ``-inf`` is handled exactly, so a pruned band is just ``-inf`` outside it) in float64,
  and returns ``-log P`` with the transition occupations. Its backward is ``-occupation * grad``, so autograd never
  records the loop. FastEmit scales the label occupations by ``1 + lambda`` there.
* :func:`_prune_ranges` picks each frame's band from the simple lattice's occupations (``k2.get_rnnt_prune_ranges``).

Typical use in a pruned transducer (icefall's recipe)::

    simple, ranges = simple_rnnt_loss(am_proj(enc), lm_proj(pred), y, frames, labels, prune_range=5)
    am_band, lm_band = prune_band(joiner.enc_proj(enc), joiner.pred_proj(pred), ranges)  # (B, T, S, D) each
    pruned = pruned_rnnt_loss(joiner.out(torch.tanh(am_band + lm_band)), ranges, y, frames, labels)
    loss = simple_scale * simple + pruned_scale * pruned

icefall warms up over the first ``warm_step`` (2000) batches: ``simple_scale`` goes linearly 1.0 -> 0.5 and
``pruned_scale`` 0.1 -> 1.0 (the ranges are noise until the simple loss has learnt something), then stay there.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

REDUCTIONS = ("none", "sum", "mean")
_CHUNK_ELEMENTS = 1 << 24  # scratch bound of the chunked log-softmax: 16 Mi elements (64 MiB in float32)
_NEG_INF = float("-inf")


# ----------------------------------------------------------------------------------------------------------------
# validation


def _check_lengths(frames: Tensor, labels: Tensor, batch: int, max_frames: int, max_labels: int,
                   device: torch.device) -> tuple[Tensor, Tensor]:
    """Lengths as long tensors on ``device``; ValueError naming the argument when a shape or a value is wrong."""
    for name, lens in (("frames", frames), ("labels", labels)):
        if not isinstance(lens, Tensor) or lens.shape != (batch,):
            shape = tuple(lens.shape) if isinstance(lens, Tensor) else type(lens).__name__
            raise ValueError(f"{name} must be a ({batch},) tensor of lengths, got {shape}")
        if lens.dtype.is_floating_point or lens.dtype.is_complex or lens.dtype == torch.bool:
            raise ValueError(f"{name} must be an integer tensor, got {lens.dtype}")
    frames, labels = frames.to(device=device, dtype=torch.long), labels.to(device=device, dtype=torch.long)
    if batch:
        f_lo, f_hi, l_lo, l_hi = torch.stack([frames.min(), frames.max(), labels.min(), labels.max()]).tolist()
        if f_lo < 1 or f_hi > max_frames:
            raise ValueError(f"frames must be in [1, {max_frames}] (the logits' T), got values in [{f_lo}, {f_hi}]")
        if l_lo < 0 or l_hi > max_labels:
            raise ValueError(f"labels must be in [0, {max_labels}] (targets' U), got values in [{l_lo}, {l_hi}]")
    return frames, labels


def _check_targets(targets: Tensor, labels: Tensor, batch: int, vocab: int, blank: int) -> Tensor:
    """``targets (B, U)`` as long; every valid position (``u < labels[b]``) must be a token id in ``[0, V)``."""
    if not isinstance(targets, Tensor) or targets.dim() != 2 or targets.size(0) != batch:
        shape = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
        raise ValueError(f"targets must be (B={batch}, U), got {shape}")
    if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
        raise ValueError(f"targets must be an integer tensor, got {targets.dtype}")
    if not 0 <= blank < vocab:
        raise ValueError(f"blank must be a token id in [0, {vocab}), got {blank}")
    targets = targets.long()
    valid = torch.arange(targets.size(1), device=targets.device)[None, :] < labels.to(targets.device)[:, None]
    if bool((((targets < 0) | (targets >= vocab)) & valid).any()):
        raise ValueError(f"targets must hold token ids in [0, {vocab}) at the first labels[b] positions")
    return targets


def _check_options(reduction: str, fastemit_lambda: float) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not (math.isfinite(fastemit_lambda) and fastemit_lambda >= 0.0):
        raise ValueError(f"fastemit_lambda must be a finite number >= 0, got {fastemit_lambda}")


def _check_float(name: str, x: Tensor, dims: int, layout: str) -> None:
    if not isinstance(x, Tensor) or x.dim() != dims:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be {layout}, got {shape}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    total = loss.sum()
    return total if reduction == "sum" else total / max(loss.numel(), 1)


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; half, bfloat16 and float32 are normalised in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


# ----------------------------------------------------------------------------------------------------------------
# logits -> per-cell log-probabilities


class _CellLogProbs(torch.autograd.Function):
    """``logits (B, T, K, V)``, ``label_ids (B, T, K)`` -> ``blank_lp, label_lp (B, T, K)`` (float32 or float64).

    ``blank_lp = logits[..., blank] - lse``, ``label_lp = logits[..., label_ids] - lse`` with ``lse`` the logsumexp
    over ``V`` in float32 (float64 for float64 logits), whatever the logits' dtype (autocast's bfloat16 included).
    Saves only the logits, the ids and ``lse``; the backward writes ``-softmax * (g_blank + g_label)`` plus the two
    one-hot terms into one gradient tensor, a chunk of batch items at a time.
    """

    @staticmethod
    def forward(ctx, logits: Tensor, label_ids: Tensor, blank: int) -> tuple[Tensor, Tensor]:
        work = _work_dtype(logits.dtype)
        lse = torch.empty(logits.shape[:-1], dtype=work, device=logits.device)
        for lo, hi in _batch_chunks(logits):
            lse[lo:hi] = logits[lo:hi].to(work).logsumexp(-1)
        blank_lp = logits[..., blank].to(work) - lse
        label_lp = logits.gather(-1, label_ids.unsqueeze(-1)).squeeze(-1).to(work) - lse
        ctx.save_for_backward(logits, label_ids, lse)
        ctx.blank = blank
        return blank_lp, label_lp

    @staticmethod
    @once_differentiable
    def backward(ctx, g_blank: Tensor, g_label: Tensor) -> tuple[Tensor | None, None, None]:
        logits, label_ids, lse = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        g_blank = torch.zeros_like(lse) if g_blank is None else g_blank.to(lse.dtype)
        g_label = torch.zeros_like(lse) if g_label is None else g_label.to(lse.dtype)
        grad = torch.empty_like(logits, memory_format=torch.contiguous_format)
        for lo, hi in _batch_chunks(logits):
            gb, gl = g_blank[lo:hi], g_label[lo:hi]
            part = (logits[lo:hi].to(lse.dtype) - lse[lo:hi].unsqueeze(-1)).exp_()  # softmax, the chunk's scratch
            part.mul_((gb + gl).neg_().unsqueeze(-1))
            part[..., ctx.blank] += gb
            part.scatter_add_(-1, label_ids[lo:hi].unsqueeze(-1), gl.unsqueeze(-1))
            grad[lo:hi] = part
        return grad, None, None


def _batch_chunks(x: Tensor) -> list[tuple[int, int]]:
    """Batch slices of ``x`` holding about ``_CHUNK_ELEMENTS`` elements each (at least one item)."""
    batch = x.size(0)
    per_item = max(x[0].numel(), 1) if batch else 1
    step = max(1, _CHUNK_ELEMENTS // per_item)
    return [(lo, min(lo + step, batch)) for lo in range(0, batch, step)]


# ----------------------------------------------------------------------------------------------------------------
# the lattice


def _skewed_inputs(blank_lp: Tensor, label_lp: Tensor, frames: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """The lattice's log-probabilities in anti-diagonal layout ``(N, B, U+1)``, float64, ``N = T + U + 1``.

    ``out[n, b, u]`` is the move out of cell ``(t = n - u, u)``; ``-inf`` off the lattice, on the virtual row ``t = T``
    and wherever the utterance has no such move: a blank exists before the last frame ``T_b - 1`` for ``u <= U_b``
    and at the end cell ``(T_b - 1, U_b)`` only; a label exists for ``u < U_b`` on the first ``T_b`` frames. So
    padding is inert whatever it holds.
    """
    batch, max_frames, cols = blank_lp.shape
    device = blank_lp.device
    diagonals = max_frames + cols
    u = torch.arange(cols, device=device)
    t = torch.arange(diagonals, device=device)[:, None] - u  # (N, U+1)
    rows = t.clamp(0, max_frames - 1).unsqueeze(1).expand(-1, batch, -1)  # (N, B, U+1)
    t, u = t.unsqueeze(1), u[None, None, :]
    last_t, last_u = (frames - 1)[None, :, None], labels[None, :, None]
    on_grid = t >= 0
    blank_ok = on_grid & (u <= last_u) & ((t < last_t) | ((t == last_t) & (u == last_u)))
    label_ok = on_grid & (u < last_u) & (t <= last_t)
    blank = blank_lp.transpose(0, 1).gather(0, rows).to(torch.float64).masked_fill_(~blank_ok, _NEG_INF)
    label = torch.full((diagonals, batch, cols), _NEG_INF, dtype=torch.float64, device=device)
    if cols > 1:
        label[:, :, :-1] = label_lp.transpose(0, 1).gather(0, rows[:, :, :-1])
        label.masked_fill_(~label_ok, _NEG_INF)
    return blank, label


class _Lattice(torch.autograd.Function):
    """``blank_lp (B, T, U+1)``, ``label_lp (B, T, U)`` -> ``(-log P (B,), blank_occ, label_occ)``.

    ``blank_lp[b, t, u]`` is the log-probability of the blank out of cell ``(t, u)``, ``label_lp[b, t, u]`` that of
    ``y[u]`` out of ``(t, u)``; ``-inf`` means the transition does not exist (a pruned band). Cells past
    ``frames[b]``/``labels[b]`` are masked inside, so padding never matters. The occupations (float64, the expected
    number of times each transition is used; empty unless gradients or ``want_occupation`` ask for them) are
    non-differentiable outputs. ``emit_scale`` multiplies the label gradients (FastEmit's ``1 + lambda``).
    """

    @staticmethod
    def forward(ctx, blank_lp: Tensor, label_lp: Tensor, frames: Tensor, labels: Tensor, emit_scale: float,
                want_occupation: bool) -> tuple[Tensor, Tensor, Tensor]:
        batch, max_frames, cols = blank_lp.shape
        device = blank_lp.device
        # Anti-diagonal n holds the cells t + u = n (rows t = 0 .. T, row T the virtual "after the end" row): the
        # blank out of (t, u) lands on diagonal n+1 at column u, the label on n+1 at column u+1. Each step below is
        # three elementwise ops on (B, U+1), and -inf propagates exactly.
        blank_sk, label_sk = _skewed_inputs(blank_lp, label_lp, frames, labels)
        diagonals = blank_sk.size(0)

        alpha = torch.empty_like(blank_sk)
        alpha[0] = _NEG_INF
        alpha[0, :, 0] = 0.0
        for n in range(1, diagonals):
            prev, cur = alpha[n - 1], alpha[n]
            torch.add(prev, blank_sk[n - 1], out=cur)
            torch.logaddexp(cur[:, 1:], prev[:, :-1] + label_sk[n - 1, :, :-1], out=cur[:, 1:])
        end_diag = frames + labels  # the virtual cell (T_b, U_b), reached by the final blank
        log_p = alpha[end_diag, torch.arange(batch, device=device), labels]  # (B,)

        if not (want_occupation or ctx.needs_input_grad[0] or ctx.needs_input_grad[1]):
            no_blank, no_label = (blank_lp.new_empty(0, dtype=torch.float64) for _ in range(2))
            ctx.mark_non_differentiable(no_blank, no_label)
            return (-log_p).to(blank_lp.dtype), no_blank, no_label

        # beta(t, u): log-probability of finishing from (t, u), with beta(T_b, U_b) = 0 set on its diagonal.
        ends: dict[int, list[int]] = {}
        for b, n in enumerate(end_diag.tolist()):
            ends.setdefault(n, []).append(b)
        beta = torch.empty_like(blank_sk)
        beta[-1] = _NEG_INF
        for n in range(diagonals - 1, -1, -1):
            cur = beta[n]
            if n < diagonals - 1:
                nxt = beta[n + 1]
                torch.add(nxt, blank_sk[n], out=cur)
                torch.logaddexp(cur[:, :-1], nxt[:, 1:] + label_sk[n, :, :-1], out=cur[:, :-1])
            if n in ends:
                idx = torch.tensor(ends[n], device=device)
                cur[idx, labels[idx]] = 0.0

        # Occupation of each transition: exp(alpha(from) + lp + beta(to) - log P), 0 where log P = -inf. Computed
        # on the diagonals in place, then gathered back to (B, T, U+1): cell (t, u) sits on diagonal t + u.
        finite = torch.isfinite(log_p)
        norm = torch.where(finite, log_p, torch.zeros_like(log_p))[None, :, None]
        occ_blank = alpha[:-1].add(blank_sk[:-1]).add_(beta[1:]).sub_(norm).exp_()
        occ_label = alpha[:-1].add(label_sk[:-1])  # column U is -inf: no label out of the last column
        occ_label[:, :, :-1].add_(beta[1:, :, 1:])
        occ_label.sub_(norm).exp_()
        diag_of = (torch.arange(max_frames, device=device)[:, None] + torch.arange(cols, device=device))
        diag_of = diag_of.unsqueeze(1).expand(-1, batch, -1)
        occ_blank = occ_blank.gather(0, diag_of).transpose(0, 1)
        occ_label = occ_label.gather(0, diag_of[:, :, :-1]).transpose(0, 1)
        if not bool(finite.all()):
            occ_blank, occ_label = occ_blank * finite[:, None, None], occ_label * finite[:, None, None]
        ctx.mark_non_differentiable(occ_blank, occ_label)
        ctx.save_for_backward(occ_blank, occ_label)
        ctx.emit_scale = emit_scale
        ctx.dtypes = (blank_lp.dtype, label_lp.dtype)
        return (-log_p).to(blank_lp.dtype), occ_blank, occ_label

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss: Tensor, _g_occ_blank: Tensor, _g_occ_label: Tensor):
        occ_blank, occ_label = ctx.saved_tensors
        scale = -grad_loss.to(torch.float64)[:, None, None]
        grad_blank = (occ_blank * scale).to(ctx.dtypes[0]) if ctx.needs_input_grad[0] else None
        grad_label = (occ_label * (scale * ctx.emit_scale)).to(ctx.dtypes[1]) if ctx.needs_input_grad[1] else None
        return grad_blank, grad_label, None, None, None, None


def _lattice(blank_lp: Tensor, label_lp: Tensor, frames: Tensor, labels: Tensor, *, fastemit_lambda: float = 0.0,
             want_occupation: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    return _Lattice.apply(blank_lp, label_lp, frames, labels, 1.0 + fastemit_lambda, want_occupation)


# ----------------------------------------------------------------------------------------------------------------
# public losses


def rnnt_loss(logits: Tensor, targets: Tensor, frames: Tensor, labels: Tensor, *, blank: int = 0,
              reduction: str = "mean", fastemit_lambda: float = 0.0) -> Tensor:
    """RNN-T loss ``-log P(y|x)`` (Graves 2012) over the full ``T x (U+1)`` lattice.

    ``logits (B, T, U+1, V)`` are the joiner's output *before* log-softmax (any float dtype, autocast's included: the
    normaliser is computed in float32, the lattice in float64); ``targets (B, U)`` token ids (padding any value);
    ``frames (B,)`` valid frames, ``1 <= frames[b] <= T``; ``labels (B,)`` valid labels, ``0 <= labels[b] <= U``
    (``U_b = 0`` means the path is all blanks). Returns ``(B,)`` for ``reduction="none"``, else the ``"sum"`` or the
    ``"mean"`` (the sum divided by ``B``, the scale of the other sequence losses). Float32 for float32/half logits,
    float64 for float64.

    ``fastemit_lambda`` (FastEmit, Yu et al. 2021) multiplies the gradients of the label (emission) log-probabilities by
    ``1 + lambda``; the returned *value* stays ``-log P`` (no regulariser term is added to it).
    Memory: keeps the logits and a ``(B, T, U+1)`` normaliser for backward, never a ``(B, T, U+1, V)`` log-softmax.
    """
    _check_float("logits", logits, 4, "(B, T, U+1, V)")
    _check_options(reduction, fastemit_lambda)
    batch, max_frames, cols, vocab = logits.shape
    frames, labels = _check_lengths(frames, labels, batch, max_frames, cols - 1, logits.device)
    targets = _check_targets(targets, labels, batch, vocab, blank).to(logits.device)
    if targets.size(1) != cols - 1:
        raise ValueError(f"targets must be (B, U) with U+1 = logits.shape[2] = {cols}, got {tuple(targets.shape)}")
    ids = torch.nn.functional.pad(targets.clamp(0, vocab - 1), (0, 1), value=blank)  # (B, U+1): one id per cell
    blank_lp, label_lp = _CellLogProbs.apply(logits, ids[:, None, :].expand(-1, max_frames, -1), blank)
    loss, _, _ = _lattice(blank_lp, label_lp[..., :-1], frames, labels, fastemit_lambda=fastemit_lambda)
    return _reduce(loss, reduction)


def simple_rnnt_loss(am: Tensor, lm: Tensor, targets: Tensor, frames: Tensor, labels: Tensor, *, blank: int = 0,
                     prune_range: int = 5, reduction: str = "mean") -> tuple[Tensor, Tensor]:
    """k2's "simple" RNN-T loss with the trivial joiner ``logits[b, t, u] = am[b, t] + lm[b, u]``, and prune ranges.

    ``am (B, T, V)`` encoder and ``lm (B, U+1, V)`` predictor projections to the vocabulary; the normaliser
    ``log sum_v exp(am + lm)`` is ``log(exp(am - am_max) @ exp(lm - lm_max)^T) + am_max + lm_max`` (float32, autocast
    off), so ``(B, T, U+1, V)`` never exists. Same lengths/targets/reduction contract as :func:`rnnt_loss`; no
    smoothing (k2's ``rnnt_loss_simple``, not ``rnnt_loss_smoothed``).

    Returns ``(loss, ranges)``: ``ranges (B, T, S)`` long, the label positions of each frame's band,
    ``ranges[b, t] = s_t + arange(S)`` with ``S = min(prune_range, U+1)`` (narrower than ``prune_range`` when the
    batch's longest target is shorter, so ``ranges`` always index ``lm``). ``s_t`` is chosen like
    ``k2.get_rnnt_prune_ranges`` from the simple lattice's occupations, then made non-decreasing with ``s_0 = 0``,
    ``s_{t+1} - s_t <= S - 1`` and ``s_t = max(U_b - S + 1, 0)`` from the last frame ``T_b - 1`` on (so the band
    reaches the end). If ``U_b > (T_b - 1) * (S - 1)`` no band can reach the end and the pruned loss is ``inf``.
    ``ranges`` carries no gradient.
    """
    _check_float("am", am, 3, "(B, T, V)")
    _check_float("lm", lm, 3, "(B, U+1, V)")
    if lm.size(0) != am.size(0) or lm.size(2) != am.size(2):
        raise ValueError(f"lm must be (B={am.size(0)}, U+1, V={am.size(2)}) to match am, got {tuple(lm.shape)}")
    if lm.device != am.device:
        raise ValueError(f"lm must be on am's device {am.device}, got {lm.device}")
    _check_options(reduction, 0.0)
    if isinstance(prune_range, bool) or not isinstance(prune_range, int) or prune_range < 2:
        raise ValueError(f"prune_range must be an int >= 2 (a band must hold a cell and its label move), "
                         f"got {prune_range!r}")
    batch, max_frames, vocab = am.shape
    cols = lm.size(1)
    frames, labels = _check_lengths(frames, labels, batch, max_frames, cols - 1, am.device)
    targets = _check_targets(targets, labels, batch, vocab, blank).to(am.device)
    if targets.size(1) != cols - 1:
        raise ValueError(f"targets must be (B, U) with U+1 = lm.shape[1] = {cols}, got {tuple(targets.shape)}")

    work = _work_dtype(torch.promote_types(am.dtype, lm.dtype))
    with torch.autocast(device_type=am.device.type, enabled=False):
        am_w, lm_w = am.to(work), lm.to(work)
        am_max = am_w.detach().amax(-1, keepdim=True)  # (B, T, 1)
        lm_max = lm_w.detach().amax(-1, keepdim=True)  # (B, U+1, 1)
        probs = torch.matmul((am_w - am_max).exp(), (lm_w - lm_max).exp().transpose(1, 2))  # (B, T, U+1)
        norm = (probs + torch.finfo(work).tiny).log() + am_max + lm_max.transpose(1, 2)
        blank_lp = am_w[..., blank].unsqueeze(2) + lm_w[..., blank].unsqueeze(1) - norm
        ids = targets.clamp(0, vocab - 1)
        am_label = am_w.gather(2, ids[:, None, :].expand(-1, max_frames, -1))  # (B, T, U)
        lm_label = lm_w[:, :-1].gather(2, ids.unsqueeze(-1)).squeeze(-1)  # (B, U)
        label_lp = am_label + lm_label.unsqueeze(1) - norm[..., :-1]
        loss, occ_blank, occ_label = _lattice(blank_lp, label_lp, frames, labels, want_occupation=True)
    ranges = _prune_ranges(occ_blank, occ_label, frames, labels, min(prune_range, cols))
    return _reduce(loss, reduction), ranges


def _prune_ranges(occ_blank: Tensor, occ_label: Tensor, frames: Tensor, labels: Tensor, width: int) -> Tensor:
    """Band starts as ``k2.get_rnnt_prune_ranges``: per frame, the window of ``width`` columns holding the most blank
    occupation minus the label occupation entering it from below; then the constraints (see simple_rnnt_loss)."""
    _, max_frames, cols = occ_blank.shape
    starts = cols - width + 1
    window = occ_blank.unfold(2, width, 1).sum(-1)  # (B, T, starts): blank mass leaving the frame in the window
    entering = torch.nn.functional.pad(occ_label[..., : starts - 1], (1, 0))  # label move (t, s-1) -> (t, s)
    s_begin = (window - entering).argmax(-1)  # (B, T); ties -> lowest start
    t = torch.arange(max_frames, device=occ_blank.device)[None, :]
    final = (labels - width + 1).clamp(min=0)[:, None]
    s_begin = torch.where(t < (frames - 1)[:, None], s_begin, final)
    s_begin = _suffix_min(s_begin)  # non-decreasing
    step = (width - 1) * t
    s_begin = _suffix_min(step - s_begin).clamp(min=0)  # s_{t+1} - s_t <= width - 1, and s_0 = 0
    s_begin = step - s_begin
    return s_begin.unsqueeze(-1) + torch.arange(width, device=occ_blank.device)


def _suffix_min(x: Tensor) -> Tensor:
    """``y[..., i] = min(x[..., i:])`` (k2.monotonic_lower_bound)."""
    return x.flip(-1).cummin(-1).values.flip(-1)


def prune_band(am: Tensor, lm: Tensor, ranges: Tensor) -> tuple[Tensor, Tensor]:
    """``am (B, T, D)``, ``lm (B, U+1, D)``, ``ranges (B, T, S)`` -> ``am_band, lm_band (B, T, S, D)``.

    ``am_band`` is ``am`` expanded (a view, no copy), ``lm_band[b, t, s] = lm[b, ranges[b, t, s]]``; the full joiner
    then runs on ``am_band + lm_band`` only (``k2.do_rnnt_pruning``).
    """
    _check_float("am", am, 3, "(B, T, D)")
    _check_float("lm", lm, 3, "(B, U+1, D)")
    _check_ranges(ranges, am.size(0), am.size(1), lm.size(1))
    if lm.size(0) != am.size(0) or lm.size(2) != am.size(2):
        raise ValueError(f"lm must be (B={am.size(0)}, U+1, D={am.size(2)}) to match am, got {tuple(lm.shape)}")
    batch, max_frames, width = ranges.shape
    ranges = ranges.to(lm.device)
    lm_band = lm.gather(1, ranges.reshape(batch, max_frames * width, 1).expand(-1, -1, lm.size(2)))
    am_band = am.unsqueeze(2).expand(-1, -1, width, -1)
    return am_band, lm_band.view(batch, max_frames, width, lm.size(2))


def _check_ranges(ranges: Tensor, batch: int, max_frames: int, cols: int) -> None:
    if not isinstance(ranges, Tensor) or ranges.dim() != 3 or ranges.shape[:2] != (batch, max_frames):
        shape = tuple(ranges.shape) if isinstance(ranges, Tensor) else type(ranges).__name__
        raise ValueError(f"ranges must be (B={batch}, T={max_frames}, S), got {shape}")
    if ranges.dtype != torch.long:
        raise ValueError(f"ranges must be a long tensor, got {ranges.dtype}")
    width = ranges.size(2)
    if not 1 <= width <= cols:
        raise ValueError(f"ranges' band width S must be in [1, U+1 = {cols}], got {width}")
    if ranges.numel():
        lo, hi = int(ranges[..., 0].min()), int(ranges[..., -1].max())
        if lo < 0 or hi >= cols or bool((ranges.diff(dim=2) != 1).any()):
            raise ValueError(f"ranges must be s_t + arange(S) with 0 <= s_t and s_t + S - 1 <= U = {cols - 1}")


def pruned_rnnt_loss(logits: Tensor, ranges: Tensor, targets: Tensor, frames: Tensor, labels: Tensor, *,
                     blank: int = 0, reduction: str = "mean", fastemit_lambda: float = 0.0) -> Tensor:
    """RNN-T loss over the pruned lattice: ``logits (B, T, S, V)`` from the full joiner on the band ``ranges
    (B, T, S)`` (see :func:`simple_rnnt_loss`, :func:`prune_band`); cells outside the band have probability 0, so the
    loss is ``>=`` the full loss and equal to it when the band covers every cell. Same targets/lengths/reduction/
    FastEmit contract as :func:`rnnt_loss`; ``U`` is ``targets.shape[1]``. Gradients are finite (0 off the band).
    """
    _check_float("logits", logits, 4, "(B, T, S, V)")
    _check_options(reduction, fastemit_lambda)
    batch, max_frames, width, vocab = logits.shape
    if not isinstance(targets, Tensor) or targets.dim() != 2:
        shape = tuple(targets.shape) if isinstance(targets, Tensor) else type(targets).__name__
        raise ValueError(f"targets must be (B={batch}, U), got {shape}")
    cols = targets.size(1) + 1
    _check_ranges(ranges, batch, max_frames, cols)
    if ranges.size(2) != width:
        raise ValueError(f"ranges must be (B, T, S={width}) to match logits, got {tuple(ranges.shape)}")
    frames, labels = _check_lengths(frames, labels, batch, max_frames, cols - 1, logits.device)
    targets = _check_targets(targets, labels, batch, vocab, blank).to(logits.device)
    ranges = ranges.to(logits.device)
    ids = torch.nn.functional.pad(targets.clamp(0, vocab - 1), (0, 1), value=blank)  # (B, U+1)
    band_ids = ids.gather(1, ranges.reshape(batch, -1)).view(batch, max_frames, width)
    blank_band, label_band = _CellLogProbs.apply(logits, band_ids, blank)
    off_band = blank_band.new_full((batch, max_frames, cols), _NEG_INF)
    blank_lp = off_band.scatter(2, ranges, blank_band)
    label_lp = off_band.scatter(2, ranges, label_band)[..., :-1]
    loss, _, _ = _lattice(blank_lp, label_lp, frames, labels, fastemit_lambda=fastemit_lambda)
    return _reduce(loss, reduction)
