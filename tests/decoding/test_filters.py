"""Our vectorised logit filters against openai-whisper's reference (per-row loop) implementation."""

import pytest
import torch

whisper_decoding = pytest.importorskip("whisper.decoding")

from seqspeech.decoding.filters import ApplyTimestampRules, SuppressBlank, SuppressTokens  # noqa: E402


class _Tok:
    """The slice of openai-whisper's Tokenizer that ApplyTimestampRules reads."""

    def __init__(self, eot, no_timestamps, timestamp_begin):
        self.eot, self.no_timestamps, self.timestamp_begin = eot, no_timestamps, timestamp_begin


def _random_histories(gen, n, sample_begin, length, eot, tb, vocab):
    rows = []
    for _ in range(n):
        seq = []
        ts = tb + int(torch.randint(0, 5, (1,), generator=gen))
        for _ in range(length):
            r = float(torch.rand(1, generator=gen))
            if r < 0.4:
                seq.append(ts)
                ts += int(torch.randint(0, 3, (1,), generator=gen))
            else:
                seq.append(int(torch.randint(1, eot, (1,), generator=gen)))
        rows.append([7] * sample_begin + seq)
    return torch.tensor(rows)


@pytest.mark.parametrize("length", [0, 1, 2, 3, 6])
@pytest.mark.parametrize("max_initial", [None, 10])
def test_timestamp_rules_match_openai(length, max_initial):
    gen = torch.Generator().manual_seed(length * 7 + (max_initial or 0))
    eot, no_ts, tb, vocab = 50, 52, 53, 120
    sample_begin = 3
    tokens = _random_histories(gen, 32, sample_begin, length, eot, tb, vocab)
    logits = torch.randn(32, vocab, generator=gen) * 3
    logits[:, tb:] += float(torch.randn(1, generator=gen))  # vary how likely timestamps are
    ref = logits.clone()
    whisper_decoding.ApplyTimestampRules(_Tok(eot, no_ts, tb), sample_begin, max_initial).apply(ref, tokens)
    ours = logits.clone()
    ApplyTimestampRules(sample_begin=sample_begin, timestamp_begin=tb, eot=eot, no_timestamps=no_ts,
                        max_initial_timestamp_index=max_initial).apply(ours, tokens)
    assert torch.equal(torch.isinf(ours), torch.isinf(ref))
    assert torch.allclose(ours[~torch.isinf(ours)], ref[~torch.isinf(ref)])


def test_suppress_filters():
    logits = torch.zeros(2, 10)
    SuppressTokens([1, 3]).apply(logits, torch.zeros(2, 4, dtype=torch.long))
    assert torch.isinf(logits[:, [1, 3]]).all() and not torch.isinf(logits[:, [0, 2]]).any()
    blank = SuppressBlank([5], sample_begin=4)
    a = torch.zeros(1, 10)
    blank.apply(a, torch.zeros(1, 4, dtype=torch.long))
    b = torch.zeros(1, 10)
    blank.apply(b, torch.zeros(1, 5, dtype=torch.long))
    assert torch.isinf(a[0, 5]) and not torch.isinf(b).any()
