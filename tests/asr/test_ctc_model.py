"""CTC model: loss against F.ctc_loss, overfitting, SpecAugment only in training, padding invariance, I/O."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import Tensor, nn

from seqspeech.asr.ctc import CTCConfig, CTCModel, ctc_model_from_config
from seqspeech.audio.augment import SpecAugmentConfig
from seqspeech.errors import ConfigError
from seqspeech.nn import ConformerConfig, ConformerEncoder

FEATS, VOCAB = 16, 12
TINY_ENCODER = ConformerConfig(
    input_dim=FEATS, d_model=32, num_layers=2, num_heads=4, ff_mult=2, conv_kernel=5, dropout=0.0,
    subsampling_channels=8,
)


class AddOne(nn.Module):
    """SpecAugment stand-in: ``(x (B, T, F), lens) -> x + 1``, counting its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: Tensor, lens: Tensor) -> Tensor:
        self.calls += 1
        return x + 1.0


def tiny_model(specaugment: nn.Module | None = None, **kwargs) -> CTCModel:
    torch.manual_seed(0)
    return CTCModel(TINY_ENCODER.build(), 32, VOCAB, specaugment=specaugment, dropout=0.0, **kwargs)


def make_batch(seed: int = 0) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    feature_lens = torch.tensor([80, 64, 48, 33])
    token_lens = torch.tensor([6, 5, 4, 2])
    features = torch.randn(4, 80, FEATS, generator=g)
    tokens = torch.full((4, 6), -1, dtype=torch.long)
    for b in range(4):
        features[b, feature_lens[b]:] = 0.0
        tokens[b, : token_lens[b]] = torch.randint(1, VOCAB, (int(token_lens[b]),), generator=g)
    return {"features": features, "feature_lens": feature_lens, "tokens": tokens, "token_lens": token_lens,
            "ids": ["a", "b", "c", "d"]}


def test_loss_matches_per_utterance_ctc_loss() -> None:
    model = tiny_model().eval()
    batch = make_batch()
    out = model(batch)
    assert out["loss"].dtype == torch.float32 and out["log_probs"].dtype == torch.float32
    # reference: each utterance alone, unpadded, through F.ctc_loss; summed then divided by B
    expected = []
    for b in range(4):
        n, u = int(batch["feature_lens"][b]), int(batch["token_lens"][b])
        log_probs, out_lens = model.encode(batch["features"][b : b + 1, :n], batch["feature_lens"][b : b + 1])
        expected.append(
            F.ctc_loss(log_probs.transpose(0, 1), batch["tokens"][b : b + 1, :u], out_lens, torch.tensor([u]),
                       blank=0, reduction="sum")
        )
    torch.testing.assert_close(out["loss"], torch.stack(expected).sum() / 4, atol=1e-4, rtol=1e-5)
    assert out["out_lens"].tolist() == [19, 15, 11, 7]


def test_loss_falls_when_overfitting_a_tiny_batch() -> None:
    model = tiny_model().train()
    batch = make_batch(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = model(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_specaugment_only_in_training_and_never_in_encode() -> None:
    aug = AddOne()
    model = tiny_model(specaugment=aug)
    batch = make_batch()
    model.train()
    train_loss = model(batch)["loss"]
    assert aug.calls == 1
    model.encode(batch["features"], batch["feature_lens"])
    assert aug.calls == 1
    model.eval()
    model(batch)
    assert aug.calls == 1
    # in training the encoder saw the augmented features: same weights, no augmenter, features + 1
    plain = CTCModel(model.encoder, 32, VOCAB, dropout=0.0).train()
    plain.output = model.output
    shifted = dict(batch, features=batch["features"] + 1.0)
    torch.testing.assert_close(plain(shifted)["loss"], train_loss)
    assert not torch.isclose(plain(batch)["loss"], train_loss)


def test_feature_normalisation_and_state_dict_round_trip() -> None:
    config = CTCConfig(VOCAB, input_dim=FEATS, encoder=TINY_ENCODER, specaugment=SpecAugmentConfig())
    mean, std = torch.linspace(-1, 1, FEATS), torch.linspace(0.5, 2, FEATS)
    torch.manual_seed(0)
    model = ctc_model_from_config(config, feature_mean=mean, feature_std=std).eval()
    batch = make_batch()
    log_probs, lens = model.encode(batch["features"], batch["feature_lens"])
    # normalisation is (x - mean) / std: the bare encoder on pre-normalised features agrees
    bare = CTCModel(model.encoder, 32, VOCAB, dropout=0.0).eval()
    bare.output = model.output
    ref, _ = bare.encode((batch["features"] - mean) / std, batch["feature_lens"])
    torch.testing.assert_close(log_probs, ref)
    assert "feature_mean" not in bare.state_dict()

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(1)
    restored = ctc_model_from_config(config).eval()  # identity statistics until loaded
    assert not torch.equal(restored.feature_std, std)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    torch.testing.assert_close(restored.feature_std, std)
    log_probs2, lens2 = restored.encode(batch["features"], batch["feature_lens"])
    torch.testing.assert_close(log_probs2, log_probs)
    assert torch.equal(lens, lens2)


def test_encode_padding_invariance() -> None:
    model = tiny_model().eval()
    batch = make_batch()
    with torch.no_grad():
        log_probs, lens = model.encode(batch["features"], batch["feature_lens"])
        for b in range(4):
            n = int(batch["feature_lens"][b])
            alone, alone_lens = model.encode(batch["features"][b : b + 1, :n], torch.tensor([n]))
            assert alone_lens.item() == lens[b]
            torch.testing.assert_close(log_probs[b, : lens[b]], alone[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(log_probs.shape[:2]))


def test_impossible_targets_give_zero_not_inf() -> None:
    model = tiny_model().eval()
    batch = make_batch()
    batch["tokens"][3] = torch.arange(1, 7)
    batch["token_lens"][3] = 6
    batch["feature_lens"][3] = 7  # one encoder frame for six tokens
    loss = model(batch)["loss"]
    assert torch.isfinite(loss)


def test_bf16_autocast_keeps_loss_in_float32() -> None:
    model = tiny_model().train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(make_batch())
    assert out["loss"].dtype == torch.float32 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert model.output.weight.grad is not None


def test_config_round_trip_from_yaml_and_strict_keys() -> None:
    text = """
vocab_size: 30
input_dim: 40
encoder: {d_model: 64, num_layers: 2, num_heads: 4}
specaugment: {freq_masks: 1, time_masks: 1}
"""
    config = CTCConfig.from_dict(yaml.safe_load(text))
    assert config.encoder.input_dim == 40 and config.encoder.d_model == 64
    assert config.specaugment is not None and config.specaugment.freq_masks == 1
    assert CTCConfig.from_dict(config.to_dict()) == config
    model = ctc_model_from_config(config)
    assert model.output.out_features == 30 and model.feature_mean.shape == (40,)
    no_aug = CTCConfig.from_dict({"vocab_size": 30, "specaugment": None})
    assert no_aug.specaugment is None and ctc_model_from_config(no_aug).specaugment is None
    with pytest.raises(ConfigError, match="d_modle"):
        CTCConfig.from_dict({"vocab_size": 30, "encoder": {"d_modle": 64}})
    with pytest.raises(ConfigError, match="optimizer"):
        CTCConfig.from_dict({"vocab_size": 30, "optimizer": "adam"})
    with pytest.raises(ConfigError, match="input_dim"):
        CTCConfig(vocab_size=30, input_dim=40, encoder=ConformerConfig(input_dim=64))
    with pytest.raises(ConfigError, match="blank"):
        CTCConfig(vocab_size=30, blank=30)


def test_bad_statistics_are_rejected() -> None:
    encoder = ConformerEncoder(FEATS, d_model=32, num_layers=1, num_heads=4, subsampling_channels=4)
    with pytest.raises(ConfigError, match="positive"):
        CTCModel(encoder, 32, VOCAB, feature_mean=torch.zeros(FEATS), feature_std=torch.zeros(FEATS))
    with pytest.raises(ConfigError, match="together"):
        CTCModel(encoder, 32, VOCAB, feature_mean=torch.zeros(FEATS))
    with pytest.raises(ConfigError, match="feature_mean"):
        ctc_model_from_config(CTCConfig(vocab_size=VOCAB, input_dim=FEATS, encoder=TINY_ENCODER),
                              feature_mean=torch.zeros(3), feature_std=torch.ones(3))
