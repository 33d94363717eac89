"""Conformer encoder: subsampling arithmetic, relative positions, padding invariance, gradients, size."""

from __future__ import annotations

import pytest
import torch

from seqspeech.errors import ConfigError
from seqspeech.nn import ConformerConfig, ConformerEncoder, Conv2dSubsampling, rel_shift, relative_sinusoids
from seqspeech.nn.masks import make_pad_mask

TINY = dict(d_model=32, num_layers=2, num_heads=4, ff_mult=2, conv_kernel=5, subsampling_channels=8)


def tiny_encoder(input_dim: int = 20, factor: int = 4, dropout: float = 0.1) -> ConformerEncoder:
    torch.manual_seed(0)
    return ConformerEncoder(input_dim, dropout=dropout, subsampling_factor=factor, **TINY)


@pytest.mark.parametrize("factor", [4, 6, 8])
def test_subsampling_lengths_match_the_convolutions(factor: int) -> None:
    torch.manual_seed(0)
    sub = Conv2dSubsampling(23, 16, factor, channels=4)
    shortest = sub.min_input_length
    assert sub.output_lengths(torch.tensor([shortest - 1, shortest])).tolist() == [0, 1]
    for length in range(sub.min_input_length, 160):
        y, lens = sub(torch.randn(1, length, 23), torch.tensor([length]))
        assert y.shape == (1, lens.item(), 16), (length, y.shape, lens)
    # in a batch the computed lengths agree with each item's own conv output
    lengths = torch.tensor([159, 100, 41, sub.min_input_length])
    _, lens = sub(torch.randn(4, 159, 23), lengths)
    solo = [sub(torch.randn(1, int(n), 23), n.view(1))[0].size(1) for n in lengths]
    assert lens.tolist() == solo
    with pytest.raises(ValueError, match="at least"):
        sub(torch.randn(1, sub.min_input_length - 1, 23), torch.tensor([sub.min_input_length - 1]))


def test_subsampling_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError, match="factor"):
        Conv2dSubsampling(80, 16, 5)
    with pytest.raises(ConfigError, match="too small"):
        Conv2dSubsampling(4, 16, 4)


def test_rel_shift_selects_relative_distances() -> None:
    b, h, t = 2, 3, 6
    scores = torch.randn(b, h, t, 2 * t - 1)
    shifted = rel_shift(scores)
    assert shifted.shape == (b, h, t, t)
    for i in range(t):
        for k in range(t):
            # column j of `scores` is the relative distance t-1-j; (i, k) must read distance i-k
            torch.testing.assert_close(shifted[:, :, i, k], scores[:, :, i, t - 1 - (i - k)])


def test_relative_sinusoids_are_centred_on_distance_zero() -> None:
    emb = relative_sinusoids(5, 8, torch.device("cpu"), torch.float32)
    assert emb.shape == (9, 8)
    torch.testing.assert_close(emb[4, 0::2], torch.zeros(4))  # sin(0)
    torch.testing.assert_close(emb[4, 1::2], torch.ones(4))  # cos(0)
    torch.testing.assert_close(emb[0, 0], torch.sin(torch.tensor(4.0)))  # distance +4, first frequency 1
    torch.testing.assert_close(emb[8, 0], torch.sin(torch.tensor(-4.0)))


def test_make_pad_mask() -> None:
    assert make_pad_mask(torch.tensor([2, 0, 3]), 3).tolist() == [
        [False, False, True], [True, True, True], [False, False, False]
    ]


def test_output_shapes_lengths_and_zeroed_padding() -> None:
    enc = tiny_encoder().eval()
    lens = torch.tensor([100, 57, 31])
    y, out_lens = enc(torch.randn(3, 100, 20), lens)
    assert out_lens.tolist() == enc.output_lengths(lens).tolist() == [24, 13, 7]
    assert y.shape == (3, 24, 32)
    assert torch.isfinite(y).all()
    assert (y[1, 13:] == 0).all() and (y[2, 7:] == 0).all()
    assert (y[1, :13].abs().sum(-1) > 0).all()


@pytest.mark.parametrize("factor", [4, 6])
def test_padding_invariance(factor: int) -> None:
    """An utterance encodes the same alone and inside a padded batch, whatever the padding holds."""
    enc = tiny_encoder(factor=factor).eval()
    torch.manual_seed(1)
    long_x, short_x, tiny_x = torch.randn(1, 120, 20), torch.randn(1, 53, 20), torch.randn(1, 19, 20)
    batch = torch.randn(3, 120, 20) * 50  # garbage in the padding: any leak shows up
    batch[0] = long_x[0]
    batch[1, :53] = short_x[0]
    batch[2, :19] = tiny_x[0]
    with torch.no_grad():
        y, lens = enc(batch, torch.tensor([120, 53, 19]))
        for row, x in enumerate((long_x, short_x, tiny_x)):
            alone, alone_lens = enc(x, torch.tensor([x.size(1)]))
            n = int(alone_lens)
            assert lens[row] == n
            torch.testing.assert_close(y[row, :n], alone[0], atol=1e-5, rtol=0)
    # the test can fail: different utterances encode differently
    assert (y[1, :5] - y[2, :5]).abs().max() > 1e-2


def test_zero_length_utterance_stays_finite() -> None:
    enc = tiny_encoder().eval()
    with torch.no_grad():
        y, lens = enc(torch.randn(2, 40, 20), torch.tensor([40, 3]))
    assert lens.tolist() == [9, 0]
    assert torch.isfinite(y).all() and (y[1] == 0).all()


def test_gradients_reach_every_parameter() -> None:
    enc = tiny_encoder().train()
    x = torch.randn(2, 64, 20, requires_grad=True)
    y, lens = enc(x, torch.tensor([64, 40]))
    y.square().sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert x.grad[1, 40:].abs().sum() == 0  # padded input frames receive no gradient
    assert x.grad[1, :40].abs().sum() > 0


def test_input_validation() -> None:
    enc = tiny_encoder()
    with pytest.raises(ValueError, match=r"\(B, T, 20\)"):
        enc(torch.randn(2, 30, 21), torch.tensor([30, 30]))
    with pytest.raises(ValueError, match="lens"):
        enc(torch.randn(2, 30, 20), torch.tensor([30]))


def test_default_config_size_and_build() -> None:
    config = ConformerConfig()
    enc = config.build()
    n_params = sum(p.numel() for p in enc.parameters())
    assert 3_000_000 < n_params < 5_000_000, n_params
    assert enc.d_model == 144 and len(enc.blocks) == 8
    assert ConformerConfig(**config.to_dict()) == config


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"d_model": 30, "num_heads": 4}, "divisible"),
        ({"conv_kernel": 4}, "odd"),
        ({"dropout": 1.0}, "dropout"),
        ({"subsampling_factor": 3}, "subsampling_factor"),
        ({"num_layers": 0}, "num_layers"),
    ],
)
def test_config_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ConformerConfig(**kwargs)


def test_rel_shift_with_fewer_queries_than_keys_selects_relative_distances() -> None:
    queries, keys = 3, 7
    distances = torch.arange(keys - 1, -queries, -1)  # column j is the distance keys-1-j
    scores = distances.float().expand(1, 1, queries, -1).contiguous()
    shifted = rel_shift(scores, keys)[0, 0]
    for i in range(queries):
        for k in range(keys):
            assert shifted[i, k] == (keys - queries + i) - k
    with pytest.raises(ValueError, match="relative positions"):
        rel_shift(scores, keys + 1)


def _streaming_encoder(**overrides: object) -> ConformerEncoder:
    from seqspeech.config import from_mapping

    fields = {"input_dim": 20, "d_model": 32, "num_layers": 2, "num_heads": 4, "conv_kernel": 5, "dropout": 0.0,
              "causal": True, "chunk_sizes": [2, 4, 0], "left_context": 6, "decode_chunk": 4, **overrides}
    torch.manual_seed(0)
    encoder = from_mapping(ConformerConfig, fields, "encoder").build().eval()
    for block in encoder.blocks:  # non-trivial running statistics, as after training
        block.conv.batch_norm.running_mean.normal_()
        block.conv.batch_norm.running_var.uniform_(0.5, 2.0)
    return encoder


def test_chunk_mask_limits_left_context_and_hides_the_future() -> None:
    from seqspeech.nn.conformer import chunk_mask

    mask = chunk_mask(8, chunk=2, left=3)
    visible = [[k for k in range(8) if not mask[i, k]] for i in range(8)]
    assert visible[0] == [0, 1] and visible[1] == [0, 1]
    assert visible[4] == [1, 2, 3, 4, 5] and visible[5] == [1, 2, 3, 4, 5]
    assert chunk_mask(8, chunk=0, left=3) is None


def test_causal_encoder_output_does_not_depend_on_later_chunks() -> None:
    encoder = _streaming_encoder()
    x = torch.randn(1, 120, 20)
    with torch.no_grad():
        full, lens = encoder(x, torch.tensor([120]), chunk=4)
        x2 = x.clone()
        x2[:, 80:] = torch.randn(1, 40, 20)  # change the future after encoder frame ~19
        other, _ = encoder(x2, torch.tensor([120]), chunk=4)
    first_changed = 80 // 4 - 1  # subsampled frame i reads input frames 4i .. 4i+6
    safe = (first_changed // 4) * 4  # whole chunks before the first changed frame's chunk
    torch.testing.assert_close(full[:, :safe], other[:, :safe])
    assert not torch.allclose(full[:, safe + 4:], other[:, safe + 4:])


@pytest.mark.parametrize("seed", [0, 1])
def test_streamed_encoder_equals_the_full_utterance_in_any_pieces(seed: int) -> None:
    import random

    rng = random.Random(seed)
    encoder = _streaming_encoder()
    lens = torch.tensor([150, 97])
    x = torch.randn(2, 150, 20)
    with torch.no_grad():
        full, full_lens = encoder(x, lens, chunk=4)
        states = [encoder.init_stream(), encoder.init_stream()]
        pieces: list[list[torch.Tensor]] = [[], []]
        pos = [0, 0]
        while pos[0] < 150 or pos[1] < 97:  # both streams in one batch, each fed pieces of 1 to 30 frames
            n = rng.randint(1, 30)
            xs, ls = torch.zeros(2, n, 20), torch.zeros(2, dtype=torch.long)
            for b in range(2):
                take = min(n, int(lens[b]) - pos[b])
                xs[b, :take] = x[b, pos[b] : pos[b] + take]
                ls[b] = take
                pos[b] += take
            y, y_lens, states = encoder.infer(xs, ls, states, chunk=4)
            for b in range(2):
                pieces[b].append(y[b, : y_lens[b]])
        y, y_lens, states = encoder.infer(torch.zeros(2, 0, 20), torch.zeros(2, dtype=torch.long), states,
                                          chunk=4, final=True)
    for b in range(2):
        streamed = torch.cat(pieces[b] + [y[b, : y_lens[b]]])
        assert streamed.shape[0] == int(full_lens[b])
        torch.testing.assert_close(streamed, full[b, : full_lens[b]], atol=1e-5, rtol=1e-5)


def test_streaming_needs_a_causal_encoder_in_eval_mode() -> None:
    with pytest.raises(ValueError, match="cannot stream"):
        ConformerEncoder(20, d_model=32, num_layers=1).init_stream()
    encoder = _streaming_encoder().train()
    with pytest.raises(ValueError, match="eval mode"):
        encoder.infer(torch.zeros(1, 10, 20), torch.tensor([10]), [encoder.init_stream()])
    with pytest.raises(ConfigError, match="causal"):
        ConformerConfig(chunk_sizes=(4,))
