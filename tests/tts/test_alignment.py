"""Length regulator, duration scaling, token averages, durations from CTC frame labels, and the CTC aligner."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from seqspeech.decoding.ctc import token_spans
from seqspeech.errors import ConfigError, DataError
from seqspeech.tts.aligner import CTCAligner, CTCAlignerConfig
from seqspeech.tts.alignment import (
    average_by_duration,
    durations_from_frame_labels,
    durations_to_log,
    length_regulate,
    scale_durations,
)

# -- length_regulate -----------------------------------------------------------------------------------------


def test_length_regulate_hand_example_with_zero_durations_and_padding() -> None:
    x = torch.tensor([[[1.0], [2.0], [3.0]], [[4.0], [5.0], [6.0]]])  # (2, 3, 1)
    durations = torch.tensor([[2, 0, 3], [1, 1, 0]])
    y, lens = length_regulate(x, durations)
    assert lens.tolist() == [5, 2]
    assert y[..., 0].tolist() == [[1, 1, 3, 3, 3], [4, 5, 0, 0, 0]]


def test_length_regulate_matches_repeat_interleave() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, 7, 5, generator=gen)
    durations = torch.randint(0, 4, (4, 7), generator=gen)
    durations[2, 5:] = 0  # a padded item
    y, lens = length_regulate(x, durations)
    assert y.shape == (4, int(durations.sum(1).max()), 5)
    for b in range(4):
        ref = torch.repeat_interleave(x[b], durations[b], dim=0)
        assert int(lens[b]) == ref.size(0)
        torch.testing.assert_close(y[b, : ref.size(0)], ref, rtol=0, atol=0)
        assert bool((y[b, ref.size(0) :] == 0).all())


def test_length_regulate_gradient_counts_frames() -> None:
    x = torch.randn(2, 4, 3, requires_grad=True)
    durations = torch.tensor([[1, 0, 2, 3], [2, 2, 0, 0]])
    y, _ = length_regulate(x, durations)
    y.sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad, durations.float().unsqueeze(-1).expand(-1, -1, 3))


def test_length_regulate_max_len_pads_and_truncates() -> None:
    x = torch.arange(1.0, 4.0).reshape(1, 3, 1)
    durations = torch.tensor([[2, 2, 2]])
    y, lens = length_regulate(x, durations, max_len=8)
    assert y[0, :, 0].tolist() == [1, 1, 2, 2, 3, 3, 0, 0] and lens.tolist() == [6]
    y, lens = length_regulate(x, durations, max_len=3)
    assert y[0, :, 0].tolist() == [1, 1, 2] and lens.tolist() == [3]


def test_length_regulate_all_zero_and_bad_durations() -> None:
    x = torch.randn(2, 3, 4)
    y, lens = length_regulate(x, torch.zeros(2, 3, dtype=torch.long))
    assert y.shape == (2, 0, 4) and lens.tolist() == [0, 0]
    with pytest.raises(DataError, match=">= 0"):
        length_regulate(x, torch.tensor([[1, -1, 2], [1, 1, 1]]))
    with pytest.raises(ValueError, match="integer"):
        length_regulate(x, torch.ones(2, 3))
    with pytest.raises(ValueError, match="do not match"):
        length_regulate(x, torch.ones(2, 4, dtype=torch.long))


# -- scale_durations -----------------------------------------------------------------------------------------


def test_scale_durations_rounding_and_minimum_frame() -> None:
    d = torch.tensor([0.2, 0.6, 2.5, 3.49, -1.0])
    assert scale_durations(d).tolist() == [0, 1, 3, 3, 0]
    d = torch.tensor([4.0, 6.0, 1.2, 0.3, 5.0])
    assert scale_durations(d, 2.0).tolist() == [2, 3, 1, 0, 3]  # 5 / 2 = 2.5 rounds half up
    assert scale_durations(d, 4.0).tolist() == [1, 2, 1, 0, 1]  # 1.2 / 4 = 0.3 keeps its one frame
    assert scale_durations(d, 0.5).tolist() == [8, 12, 2, 0, 10]


def test_scale_durations_log_domain_inverts_durations_to_log() -> None:
    d = torch.tensor([[0, 1, 2, 7, 30]])
    assert scale_durations(durations_to_log(d), log_domain=True).tolist() == d.tolist()
    halved = scale_durations(durations_to_log(torch.tensor([4, 8, 16])), 2.0, log_domain=True)
    assert halved.tolist() == [2, 4, 8]


@pytest.mark.parametrize("speed", [0.0, -1.0, float("inf"), float("nan")])
def test_scale_durations_rejects_bad_speed(speed: float) -> None:
    with pytest.raises(ConfigError, match="speed"):
        scale_durations(torch.ones(3), speed)


# -- average_by_duration -------------------------------------------------------------------------------------


def test_average_by_duration_hand_cases() -> None:
    values = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 99.0]])  # the last frame is past the durations
    out = average_by_duration(values, torch.tensor([[2, 0, 3, 1]]))
    torch.testing.assert_close(out, torch.tensor([[1.5, 0.0, 4.0, 6.0]]))
    f0 = torch.tensor([[0.0, 100.0, 200.0, 0.0, 0.0, 0.0, 50.0]])
    durations = torch.tensor([[3, 3, 1]])
    torch.testing.assert_close(average_by_duration(f0, durations, ignore_zeros=True), torch.tensor([[150.0, 0, 50]]))
    torch.testing.assert_close(average_by_duration(f0, durations), torch.tensor([[100.0, 0, 50]]))


def test_average_by_duration_matches_a_loop() -> None:
    gen = torch.Generator().manual_seed(1)
    durations = torch.randint(0, 5, (3, 6), generator=gen)
    frames = int(durations.sum(1).max()) + 2
    values = torch.randn(3, frames, generator=gen)
    values[values < -0.5] = 0.0
    for ignore in (False, True):
        out = average_by_duration(values, durations, ignore_zeros=ignore)
        for b in range(3):
            start = 0
            for u, d in enumerate(durations[b].tolist()):
                seg = values[b, start : start + d]
                if ignore:
                    seg = seg[seg != 0]
                expected = float(seg.mean()) if seg.numel() else 0.0
                assert abs(float(out[b, u]) - expected) < 1e-5
                start += d


def test_average_by_duration_rejects_too_long_durations() -> None:
    with pytest.raises(DataError, match="sum to"):
        average_by_duration(torch.zeros(1, 4), torch.tensor([[3, 2]]))


# -- durations_from_frame_labels -----------------------------------------------------------------------------


def test_durations_from_frame_labels_hand_cases() -> None:
    # tokens 5 7 7 3: the repeated 7 is separated by blanks; leading blanks join the first token
    labels = torch.tensor([0, 0, 5, 5, 0, 7, 0, 0, 7, 3])
    assert durations_from_frame_labels(labels, 4).tolist() == [5, 3, 1, 1]
    assert durations_from_frame_labels([1, 1, 2, 2, 2], 2).tolist() == [2, 3]
    assert durations_from_frame_labels([4, 0, 0, 0], 1).tolist() == [4]
    assert durations_from_frame_labels([9, 2, 9, 9], 1, blank=9).tolist() == [4]
    assert durations_from_frame_labels(torch.zeros(0, dtype=torch.long), 0).tolist() == []


def test_durations_from_frame_labels_errors() -> None:
    with pytest.raises(DataError, match="spell 2 tokens, expected 3"):
        durations_from_frame_labels([1, 0, 2], 3)
    with pytest.raises(DataError, match="0 tokens"):
        durations_from_frame_labels([0, 0], 0)


def test_durations_from_frame_labels_agree_with_token_spans() -> None:
    """Random valid CTC paths: counts sum to T and each token starts where token_spans says."""
    gen = torch.Generator().manual_seed(2)
    for _ in range(20):
        n = int(torch.randint(1, 8, (1,), generator=gen))
        tokens = torch.randint(1, 4, (n,), generator=gen)  # small vocabulary: repeats happen
        labels: list[int] = [0] * int(torch.randint(0, 3, (1,), generator=gen))
        for u in range(n):
            if u and tokens[u] == tokens[u - 1]:
                labels.append(0)
            labels += [int(tokens[u])] * int(torch.randint(1, 4, (1,), generator=gen))
            labels += [0] * int(torch.randint(0, 3, (1,), generator=gen))
        durations = durations_from_frame_labels(torch.tensor(labels), n)
        assert int(durations.sum()) == len(labels) and bool((durations >= 1).all())
        starts = [span.start_frame for span in token_spans(labels, tokens)]
        bounds = [0] + starts[1:] + [len(labels)]
        assert durations.tolist() == [bounds[u + 1] - bounds[u] for u in range(n)]


# -- the CTC aligner -----------------------------------------------------------------------------------------

N_MELS, VOCAB = 12, 8


def toy_corpus(n: int, seed: int) -> tuple[dict, list[torch.Tensor]]:
    """Mels made of fixed per-token spectra (the same for every seed) repeated by known durations, plus noise;
    no two neighbouring tokens are equal."""
    spectra = torch.randn(VOCAB, N_MELS, generator=torch.Generator().manual_seed(123)) * 2.0 - 5.0
    gen = torch.Generator().manual_seed(seed)
    items, truths = [], []
    for _ in range(n):
        u = int(torch.randint(4, 8, (1,), generator=gen))
        tokens = [int(torch.randint(1, VOCAB, (1,), generator=gen))]
        while len(tokens) < u:
            t = int(torch.randint(1, VOCAB, (1,), generator=gen))
            if t != tokens[-1]:
                tokens.append(t)
        tok = torch.tensor(tokens)
        dur = torch.randint(2, 7, (u,), generator=gen)
        mel = torch.repeat_interleave(spectra[tok], dur, dim=0).T  # (N_MELS, T)
        mel = mel + 0.3 * torch.randn(mel.shape, generator=gen)
        items.append((tok, mel))
        truths.append(dur)
    token_lens = torch.tensor([t.numel() for t, _ in items])
    mel_lens = torch.tensor([m.size(1) for _, m in items])
    tokens = torch.zeros(n, int(token_lens.max()), dtype=torch.long)
    mels = torch.full((n, N_MELS, int(mel_lens.max())), -11.5)
    for i, (t, m) in enumerate(items):
        tokens[i, : t.numel()] = t
        mels[i, :, : m.size(1)] = m
    return {"tokens": tokens, "token_lens": token_lens, "mels": mels, "mel_lens": mel_lens}, truths


def tiny_aligner() -> CTCAligner:
    torch.manual_seed(0)
    return CTCAligner(CTCAlignerConfig(vocab_size=VOCAB, n_mels=N_MELS, hidden=48, conv_layers=1, conv_kernel=3,
                                       lstm_layers=1, dropout=0.0))


def test_aligner_loss_is_ctc_of_its_log_probs_and_padding_is_invisible() -> None:
    batch, _ = toy_corpus(3, seed=5)
    model = tiny_aligner().eval()
    out = model(batch)
    log_probs = model.log_probs(batch["mels"], batch["mel_lens"])
    ref = F.ctc_loss(log_probs.transpose(0, 1), batch["tokens"], batch["mel_lens"], batch["token_lens"],
                     reduction="sum", zero_infinity=True) / 3
    torch.testing.assert_close(out["loss"], ref)
    assert out["loss"].dim() == 0 and out["blank_rate"].dim() == 0
    n = int(batch["mel_lens"][1])
    alone = model.log_probs(batch["mels"][1:2, :, :n], batch["mel_lens"][1:2])
    torch.testing.assert_close(alone[0], log_probs[1, :n], atol=1e-5, rtol=1e-5)


def test_aligner_learns_known_durations() -> None:
    """Train on 12 toy utterances, then align those and 8 unseen ones: durations within one frame of the truth."""
    batch, truths = toy_corpus(12, seed=3)
    held_out, held_truths = toy_corpus(8, seed=4)
    model = tiny_aligner()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(120):
        loss = model(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.1 * losses[0], losses[::20]
    model.eval()
    for data, answers in ((batch, truths), (held_out, held_truths)):
        close = total = 0
        for i, truth in enumerate(answers):
            n, t = int(data["token_lens"][i]), int(data["mel_lens"][i])
            durations = model.align(data["mels"][i, :, :t], data["tokens"][i, :n])
            assert durations.shape == truth.shape and int(durations.sum()) == t
            close += int(((durations - truth).abs() <= 1).sum())
            total += n
        assert close >= 0.9 * total, f"only {close}/{total} token durations within one frame"


def test_aligner_rejects_too_short_input_and_bad_tokens() -> None:
    model = tiny_aligner().eval()
    mels = torch.randn(N_MELS, 4)
    with pytest.raises(DataError, match="need a blank frame"):
        model.align(mels, torch.tensor([1, 2, 2, 3]))  # 4 tokens + 1 blank between the 2s > 4 frames
    durations = model.align(torch.randn(N_MELS, 5), torch.tensor([1, 2, 2, 3]))
    assert int(durations.sum()) == 5 and bool((durations >= 1).all())
    with pytest.raises(DataError, match="token ids"):
        model.align(torch.randn(N_MELS, 9), torch.tensor([1, 0, 3]))
    with pytest.raises(DataError, match="no tokens"):
        model.align(torch.randn(N_MELS, 9), torch.tensor([], dtype=torch.long))


def test_aligner_config_validation_and_round_trip() -> None:
    config = CTCAlignerConfig(vocab_size=40, hidden=64)
    assert CTCAlignerConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown key"):
        CTCAlignerConfig.from_dict({"vocab_size": 40, "hiden": 3})
    for bad in ({"vocab_size": 1}, {"vocab_size": 9, "hidden": 31}, {"vocab_size": 9, "conv_kernel": 4},
                {"vocab_size": 9, "dropout": 1.0}, {"vocab_size": 9, "conv_layers": -1}):
        with pytest.raises(ConfigError):
            CTCAlignerConfig(**bad)


def test_aligner_standardises_its_input_with_the_configured_statistics() -> None:
    """Shifting and scaling the mels by (mel_mean, mel_std) and configuring those gives the same log-probs."""
    batch, _ = toy_corpus(2, seed=6)
    plain = tiny_aligner().eval()
    torch.manual_seed(0)
    shifted = CTCAligner(dataclasses.replace(plain.config, mel_mean=-6.0, mel_std=2.5)).eval()
    shifted.load_state_dict(plain.state_dict())
    plain_config = dataclasses.replace(plain.config, mel_mean=0.0, mel_std=1.0)
    plain.config = plain_config
    moved = batch["mels"] * 2.5 - 6.0
    torch.testing.assert_close(shifted.log_probs(moved, batch["mel_lens"]),
                               plain.log_probs(batch["mels"], batch["mel_lens"]), atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="mel_std"):
        CTCAlignerConfig(vocab_size=9, mel_std=0.0)


def test_mel_stats_are_the_mean_and_std_of_every_value() -> None:
    from seqspeech.tasks.tts import mel_stats
    from seqspeech.tts.data import TTSItem

    gen = torch.Generator().manual_seed(0)
    items = [TTSItem(f"u{i}", torch.tensor([1, 2]), (torch.randn(4, n, generator=gen) * 3 - 5).half())
             for i, n in enumerate((7, 13, 2))]
    values = torch.cat([item.mel.double().flatten() for item in items])
    stats = mel_stats(items)
    assert stats["mel_mean"] == pytest.approx(float(values.mean()), abs=1e-9)
    assert stats["mel_std"] == pytest.approx(float(values.std(unbiased=False)), rel=1e-9)
