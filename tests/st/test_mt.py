"""Text MT: wait-k masks, Average Lagging on hand-computed cases, incremental (simultaneous) decoding against
decoding the whole source under the mask, k = infinity against full attention, BLEU through sacrebleu, the task's
training loop and the package round trip."""

from __future__ import annotations

import json

import pytest
import torch

from seqspeech.asr.aed import AEDScorer
from seqspeech.decoding.attention import SOS_EOS
from seqspeech.errors import ConfigError, DataError, ModelLoadError
from seqspeech.nn.masks import wait_k_visible
from seqspeech.st.mt import MTConfig, MTModel, Translator, average_lagging, wait_k_delays
from seqspeech.tasks.mt import collate_pairs, corpus_bleu, make_pairs, MTData
from seqspeech.text.tokenizers import BPETokenizer

SPANISH = ["yo fui a la plaza el miércoles", "el cine abre a las doce", "dónde está la cama", "ellos fueron a la iglesia",
           "las mesas son bastante negras", "el diccionario es demasiado sencillo", "puedes llevar el avión feo"]
ENGLISH = ["i went to the square on wednesday", "the cinema opens at twelve", "where is the bed",
           "they went to the church", "the tables are quite black", "the dictionary is too simple",
           "can you carry the ugly plane"]


def test_wait_k_mask_by_hand():
    visible = wait_k_visible(0, 4, 5, 2)
    assert visible.int().tolist() == [[1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    assert wait_k_visible(2, 1, 5, 2).int().tolist() == [[1, 1, 1, 1, 0]]  # position 2 only


def test_average_lagging_by_hand():
    # wait-2, |x| = |y| = 5: g = 2 3 4 5 5, tau = 4, AL = (2 + 2 + 2 + 2) / 4
    assert wait_k_delays(2, 5, 5) == [2, 3, 4, 5, 5]
    assert average_lagging([2, 3, 4, 5, 5], 5) == pytest.approx(2.0)
    # the whole source first (offline): g = |x| for all, tau = 1, AL = |x|
    assert average_lagging(wait_k_delays(None, 4, 2), 4) == pytest.approx(4.0)
    # |x| = 4, |y| = 8 (r = 2), wait-1: g = 1 2 3 4 4 4 4 4, tau = 4: (1 + 1.5 + 2 + 2.5) / 4
    assert average_lagging(wait_k_delays(1, 4, 8), 4) == pytest.approx(7.0 / 4)
    with pytest.raises(ValueError, match="at least one delay"):
        average_lagging([], 3)


def test_bleu_is_sacrebleu():
    import sacrebleu

    hyps, refs = ["the cat sat on the mat", "a dog"], ["the cat sat on a mat", "a big dog"]
    assert corpus_bleu(hyps, refs) == round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2)
    assert corpus_bleu(refs, refs) == 100.0


@pytest.fixture(scope="module")
def tokenizer():
    return BPETokenizer.train(SPANISH + ENGLISH, vocab_size=60, model_type="unigram")


def _model(tokenizer, **kwargs) -> MTModel:
    torch.manual_seed(0)
    config = MTConfig(vocab_size=tokenizer.vocab_size, dim=32, encoder_layers=2, decoder_layers=2, heads=2,
                      ff_dim=64, dropout=0.0, **kwargs)
    return MTModel(config).eval()


def test_incremental_scorer_equals_teacher_forced_under_the_wait_k_mask(tokenizer):
    model = _model(tokenizer)
    src = torch.tensor([tokenizer.encode(SPANISH[0])])
    memory, lens = model.encode(src, torch.tensor([src.size(1)]))
    target = [SOS_EOS, *tokenizer.encode(ENGLISH[0])]
    hide = ~wait_k_visible(0, len(target), src.size(1), 3)[None, None]
    full, _ = model.decoder(torch.tensor([target]), memory, lens, src_hide=hide)
    scorer = AEDScorer(model.decoder, memory, lens, wait_k=3)
    state = scorer.init_state()
    for i in range(1, len(target) + 1):
        log_probs, state = scorer.score(torch.tensor([target[:i]]), state)
        torch.testing.assert_close(log_probs[0], full[0, i - 1].float().log_softmax(-1), atol=1e-4, rtol=0)


def test_prefix_encoding_is_the_prefix_of_the_whole_encoding(tokenizer):
    model = _model(tokenizer)
    src = torch.tensor([tokenizer.encode(SPANISH[1])])
    whole, _ = model.encode(src, torch.tensor([src.size(1)]))
    part, _ = model.encode(src[:, :3], torch.tensor([3]))
    torch.testing.assert_close(part, whole[:, :3], atol=1e-5, rtol=0)


def test_wait_k_infinity_is_full_attention(tokenizer):
    model = _model(tokenizer)
    sources = [tokenizer.encode(s) for s in SPANISH[:4]]
    for beam in (1, 3):
        assert model.translate_ids(sources, beam_size=beam, wait_k=1000) == \
            model.translate_ids(sources, beam_size=beam)


def test_simultaneous_session_equals_masked_decoding_of_the_whole_source(tokenizer):
    """Source words pushed one at a time give the tokens greedy decoding under the wait-k mask gives."""
    model = _model(tokenizer)
    translator = Translator(model, tokenizer, beam_size=1)
    for k in (1, 2, 4):
        for sentence in SPANISH[:4]:
            expected = model.translate_ids([translator.encode_source(sentence)], beam_size=1, wait_k=k)[0]
            session = translator.session(k)
            words = []
            for word in sentence.split():
                words += session.push(word)
            words += session.finish()
            assert session.target == expected, (k, sentence)
            assert words == tokenizer.decode(expected).split()
            assert session.delays == wait_k_delays(k, session.read, len(session.target))


def test_translator_round_trip_and_errors(tokenizer, tmp_path):
    import seqspeech

    translator = Translator(_model(tokenizer, train_wait_k=(0, 2)), tokenizer, name="tiny")
    translator.save(tmp_path / "mt", card={"name": "tiny"})
    loaded = seqspeech.load_mt(tmp_path / "mt")
    assert loaded.translate(SPANISH[:3]) == translator.translate(SPANISH[:3])  # fp16 weights: same argmax here
    assert loaded.model.config.train_wait_k == (0, 2)
    with pytest.raises(DataError, match="nothing to translate"):
        loaded.translate("  ...  ")
    with pytest.raises(ConfigError, match="wait_k"):
        loaded.session(0)
    with pytest.raises(ModelLoadError, match="not a text translation"):
        seqspeech.load_mt("slt")


def test_config_rejects_wait_k_with_a_bidirectional_encoder():
    with pytest.raises(ConfigError, match="unidirectional"):
        MTConfig(vocab_size=10, unidirectional=False, train_wait_k=(0, 3))


def test_pairs_split_by_sentence():
    splits = make_pairs(MTData(pairs=300, dev=20, test=30, seed=1))
    assert len(splits["dev"]) == 20 and len(splits["test"]) == 30
    train_sources = {s for s, _ in splits["train"]}
    assert not train_sources & {s for s, _ in splits["dev"] + splits["test"]}
    assert all(s == s.lower() and not any(c.isdigit() for c in s) for s, _ in splits["train"][:50])
    batch = collate_pairs([([5, 6, 7], [8, 9]), ([5], [8, 9, 10])])
    assert batch["tgt_in"].tolist() == [[SOS_EOS, 8, 9, SOS_EOS], [SOS_EOS, 8, 9, 10]]
    assert batch["tgt_out"].tolist() == [[8, 9, SOS_EOS, -100], [8, 9, 10, SOS_EOS]]


def test_train_task_end_to_end(tmp_path):
    """A few steps of the real task: the run folder gets a loadable package and a summary with BLEU and AL."""
    from seqspeech.tasks import train_recipe

    recipe = tmp_path / "mt.yaml"
    recipe.write_text(json.dumps({
        "task": "mt", "data": {"pairs": 400, "dev": 20, "test": 20, "batch_tokens": 400, "dev_bleu_sentences": 10},
        "tokenizer": {"vocab_size": 120},
        "model": {"dim": 32, "encoder_layers": 1, "decoder_layers": 1, "heads": 2, "ff_dim": 64,
                  "train_wait_k": [0, 2]},
        "train": {"max_steps": 12, "warmup_steps": 4, "checkpoint_every": 6, "eval_every": 6, "log_every": 6,
                  "progress": False, "tensorboard": False},
        "beam_size": 2, "eval_wait_k": [2]}))
    summary = train_recipe(recipe, tmp_path / "run")
    test = summary["test"]
    assert set(test) >= {"bleu_greedy", "bleu_beam", "wait_k"} and test["wait_k"][0]["k"] == 2
    assert test["wait_k"][0]["average_lagging_tokens"] > 0
    import seqspeech

    assert isinstance(seqspeech.load_mt(tmp_path / "run" / "model").translate("dónde está la llave"), str)
