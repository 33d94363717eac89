"""A recipe's ``init:`` section: a transducer starts from a CTC model's encoder and head (package or checkpoint),
and every way it can go wrong is a one-line config error that names the source."""

from __future__ import annotations

import pytest
import torch

from seqspeech.asr.ctc import CTCConfig, ctc_model_from_config
from seqspeech.asr.package import package_metadata, save_package
from seqspeech.asr.transducer import PredictorConfig, TransducerConfig, transducer_model_from_config
from seqspeech.data.dataset import FeatureConfig
from seqspeech.errors import ConfigError
from seqspeech.nn.conformer import ConformerConfig
from seqspeech.packaging import write_weights
from seqspeech.tasks.speech import InitConfig, init_tokenizer, initialize_from
from seqspeech.text.tokenizers import CharTokenizer, tokenizer_to_dict
from seqspeech.training.checkpoint import save_checkpoint

ENCODER = dict(input_dim=16, d_model=16, num_layers=1, num_heads=2, conv_kernel=3, subsampling_channels=8)
RENAME = {"output.": "ctc_head."}


def tokenizer(texts=("abc", "cab")):
    return CharTokenizer.train(list(texts))


def ctc_model(tok):
    torch.manual_seed(1)
    config = CTCConfig(vocab_size=tok.vocab_size, input_dim=16, encoder=ConformerConfig(**ENCODER))
    return config, ctc_model_from_config(config)


def transducer(tok):
    torch.manual_seed(2)
    config = TransducerConfig(
        vocab_size=tok.vocab_size, input_dim=16, ctc_weight=0.3, joiner_dim=8,
        encoder=ConformerConfig(**ENCODER, causal=True, chunk_sizes=(2, 0), left_context=4),
        predictor=PredictorConfig(embed_dim=8, hidden=8),
    )
    return transducer_model_from_config(config)


@pytest.fixture()
def package(tmp_path):
    tok = tokenizer()
    config, model = ctc_model(tok)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-1, 1)  # far from any fresh initialisation
    path = save_package(tmp_path / "ctc" / "model.safetensors", "ctc", model, config, FeatureConfig(num_mel_bins=16),
                        tok, dtype=torch.float32)
    return path, model, config, tok


def test_encoder_and_ctc_head_are_taken_and_the_rest_is_left(package):
    path, ctc, _, tok = package
    model = transducer(tok)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    report = initialize_from(model, InitConfig(str(path.parent), rename=RENAME, modules=["encoder.", "ctc_head."]),
                             tok)
    state, source = model.state_dict(), ctc.state_dict()
    taken = [k for k in source if k.startswith("encoder.")]
    assert taken and all(torch.equal(state[k], source[k]) for k in taken)
    assert torch.equal(state["ctc_head.weight"], source["output.weight"])
    assert torch.equal(state["joiner.output.weight"], before["joiner.output.weight"])
    assert torch.equal(state["predictor.embedding.weight"], before["predictor.embedding.weight"])
    assert report.startswith(f"init: {len(taken) + 2} of {len(state)} tensors from ")


def test_a_trainer_checkpoint_is_a_source_too(package, tmp_path):
    _, ctc, config, tok = package
    checkpoint = tmp_path / "step-00000010.pt"
    meta = package_metadata("ctc", config, FeatureConfig(num_mel_bins=16), tok)
    save_checkpoint(checkpoint, {"model": ctc.state_dict(), "extra": {"package": meta}})
    model = transducer(tok)
    initialize_from(model, InitConfig(str(checkpoint), modules=["encoder."]), tok)
    assert torch.equal(model.state_dict()["encoder.subsampling.out.weight"],
                       ctc.state_dict()["encoder.subsampling.out.weight"])


@pytest.mark.parametrize("init, message", [
    (lambda p: InitConfig(str(p.parent / "missing")), "no such model"),
    (lambda p: InitConfig(str(p), modules=["decoder."]), "no tensor matches"),
])
def test_bad_sources_are_named(package, init, message):
    path, _, _, tok = package
    with pytest.raises(ConfigError, match=message) as err:
        initialize_from(transducer(tok), init(path), tok)
    assert "init.source" in str(err.value)


def test_a_shape_mismatch_names_the_tensor(package):
    path, _, _, _ = package
    other = tokenizer(("abcdefg",))
    with pytest.raises(ConfigError, match=r"ctc_head\.(weight|bias) has shape \(7"):
        initialize_from(transducer(other), InitConfig(str(path), rename=RENAME), other)


def test_a_different_tokenizer_of_the_same_size_is_refused_for_vocabulary_tensors(package):
    path, _, _, tok = package
    other = tokenizer(("xyz", "zyx"))
    assert other.vocab_size == tok.vocab_size
    with pytest.raises(ConfigError, match="tokenizer differs"):
        initialize_from(transducer(other), InitConfig(str(path), rename=RENAME), other)
    initialize_from(transducer(other), InitConfig(str(path), modules=["encoder.blocks."]), other)  # no vocab dim


def test_the_source_tokenizer_is_taken_so_vocabulary_tensors_carry_over(package, tmp_path):
    path, _, _, tok = package
    assert tokenizer_to_dict(init_tokenizer(InitConfig(str(path.parent)))) == tokenizer_to_dict(tok)
    bare = tmp_path / "bare.safetensors"
    write_weights(bare, {"encoder.x": torch.zeros(2)}, {"format": "seqspeech.ctc"})
    with pytest.raises(ConfigError, match="stores no tokenizer"):
        init_tokenizer(InitConfig(str(bare)))
