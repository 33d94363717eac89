"""run_packed: the padded two-scan LSTM equals PyTorch's packed-sequence LSTM, outputs and gradients."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqspeech.nn import precision
from seqspeech.nn.rnn import reverse_padded, run_packed


def packed_reference(lstm: nn.LSTM, x: Tensor, lens: Tensor) -> Tensor:
    packed = pack_padded_sequence(x, lens.clamp(min=1), batch_first=True, enforce_sorted=False)
    y, _ = lstm(packed)
    y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.size(1))
    return y.masked_fill((lens == 0).view(-1, 1, 1), 0.0)


def padded_batch(lens: list[int], dim: int, seed: int) -> tuple[Tensor, Tensor]:
    torch.manual_seed(seed)
    lens_t = torch.tensor(lens)
    x = torch.randn(len(lens), max(lens), dim)
    x = x.masked_fill(torch.arange(max(lens))[None, :, None] >= lens_t[:, None, None], 0.0)
    return x, lens_t


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("train", [True, False])
def test_run_packed_matches_packed_sequences(bidirectional: bool, train: bool) -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(7, 5, batch_first=True, bidirectional=bidirectional).train(train)
    x, lens = padded_batch([9, 3, 0, 6, 1, 9], 7, seed=1)
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    expected, got = packed_reference(lstm, x_ref, lens), run_packed(lstm, x_ours, lens)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert got[2].abs().sum() == 0 and got[1, 3:].abs().sum() == 0  # padding and empty sequences are zero
    grad = torch.randn_like(expected)
    expected.backward(grad)
    ref_grads = [p.grad.clone() for p in lstm.parameters()]
    lstm.zero_grad()
    got.backward(grad)
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=1e-6, rtol=1e-5)
    for ours, ref in zip((p.grad for p in lstm.parameters()), ref_grads, strict=True):
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("native", [False, True])
def test_run_packed_under_bf16_autocast_close_to_float32(monkeypatch, native: bool) -> None:
    """On a CPU without native bf16 oneDNN has no bf16 LSTM ("could not create a primitive descriptor"): the LSTM
    then runs in float32 inside autocast (exactly the float32 result); with native bf16, in bf16."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert precision.native_bf16(torch.device("cpu")) is native
    torch.manual_seed(0)
    lstm = nn.LSTM(8, 6, batch_first=True, bidirectional=True)
    x, lens = padded_batch([12, 5, 8], 8, seed=2)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = run_packed(lstm, x, lens)
    except RuntimeError as e:  # patched "native" on a CPU whose oneDNN really has no bf16 LSTM
        assert native and "primitive descriptor" in str(e)
        return
    reference = packed_reference(lstm, x, lens)
    if native:
        torch.testing.assert_close(got.float(), reference, atol=3e-2, rtol=0)
    else:
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, reference, atol=1e-5, rtol=1e-5)


def test_reverse_padded_reverses_within_length_and_is_an_involution() -> None:
    x = torch.arange(2 * 4, dtype=torch.float32).view(2, 4, 1)
    lens = torch.tensor([3, 4])
    y = reverse_padded(x, lens)
    assert y[..., 0].tolist() == [[2.0, 1.0, 0.0, 3.0], [7.0, 6.0, 5.0, 4.0]]
    torch.testing.assert_close(reverse_padded(y, lens), x)


def test_run_packed_empty_batch_and_unsupported_lstm() -> None:
    lstm = nn.LSTM(3, 2, batch_first=True, bidirectional=True)
    assert run_packed(lstm, torch.zeros(0, 5, 3), torch.zeros(0, dtype=torch.long)).shape == (0, 5, 4)
    with pytest.raises(ValueError, match="one-layer"):
        run_packed(nn.LSTM(3, 2, num_layers=2, batch_first=True), torch.zeros(1, 2, 3), torch.tensor([2]))
