"""CharTokenizer and BPETokenizer: id layout, round trips, unknown characters, serialisation, manifests."""

from __future__ import annotations

import io
import json

import pytest
import sentencepiece as spm

from seqspeech.data.manifest import Utterance, write_manifest
from seqspeech.data.synth import HARVARD_SENTENCES
from seqspeech.errors import ConfigError, DataError, ModelLoadError
from seqspeech.text.tokenizers.bpe import BPETokenizer
from seqspeech.text.tokenizers.char import SPACE, CharTokenizer

SPECIALS = ["<blank>", "<unk>", "<sos/eos>"]


@pytest.fixture(scope="module")
def char_tok() -> CharTokenizer:
    return CharTokenizer.train(HARVARD_SENTENCES)


@pytest.fixture(scope="module", params=["bpe", "unigram"])
def bpe_tok(request) -> BPETokenizer:
    return BPETokenizer.train(HARVARD_SENTENCES, vocab_size=120, model_type=request.param)


# -- CharTokenizer -------------------------------------------------------------------------------------------


def test_char_layout(char_tok):
    assert list(char_tok.symbols[:3]) == SPECIALS
    assert (char_tok.blank_id, char_tok.unk_id, char_tok.sos_eos_id) == (0, 1, 2)
    chars = char_tok.symbols[3:]
    assert list(chars) == sorted(chars) and SPACE in chars and " " not in chars
    assert set(chars) == set("".join(HARVARD_SENTENCES).replace(" ", SPACE))
    assert char_tok.vocab_size == len(char_tok.symbols)


def test_char_round_trip(char_tok):
    for sentence in HARVARD_SENTENCES:
        ids = char_tok.encode(sentence)
        assert len(ids) == len(sentence) and min(ids) >= 3
        assert char_tok.decode(ids) == sentence


def test_char_unknown_and_specials(char_tok):
    ids = char_tok.encode("the Zoo #1")
    assert ids.count(char_tok.unk_id) == 3  # "Z", "#" and "1" are not in the training text
    assert char_tok.decode(ids) == "the oo"
    assert char_tok.decode([0, 2, *char_tok.encode("a rod"), 2, 0]) == "a rod"
    assert char_tok.encode("  a \t rod\n") == char_tok.encode("a rod")
    assert char_tok.encode("") == []
    with pytest.raises(ValueError, match="out of range"):
        char_tok.decode([char_tok.vocab_size])
    with pytest.raises(TypeError):
        char_tok.encode(None)


def test_char_serialisation(char_tok, tmp_path):
    data = json.loads(json.dumps(char_tok.to_dict()))
    again = CharTokenizer.from_dict(data)
    assert again == char_tok
    path = char_tok.save(tmp_path / "tok" / "char.json")
    loaded = CharTokenizer.load(path)
    for sentence in HARVARD_SENTENCES[:10] + ["Zebra #9"]:
        assert loaded.encode(sentence) == again.encode(sentence) == char_tok.encode(sentence)
    assert [p.name for p in path.parent.iterdir()] == ["char.json"]  # no temp file left


def test_char_bad_inputs(tmp_path):
    with pytest.raises(ConfigError, match="must start with"):
        CharTokenizer(["a", "b"])
    with pytest.raises(ConfigError, match="unique"):
        CharTokenizer([*SPECIALS, "a", "a"])
    with pytest.raises(ConfigError, match="one non-whitespace character"):
        CharTokenizer([*SPECIALS, "ab"])
    with pytest.raises(ConfigError, match="empty"):
        CharTokenizer.train(["", "  "])
    with pytest.raises(ModelLoadError, match="not a CharTokenizer"):
        CharTokenizer.from_dict({"symbols": SPECIALS})
    with pytest.raises(ModelLoadError, match="not found"):
        CharTokenizer.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ModelLoadError, match="bad.json"):
        CharTokenizer.load(bad)


# -- BPETokenizer --------------------------------------------------------------------------------------------


def test_bpe_layout(bpe_tok):
    assert bpe_tok.vocab_size == 120
    assert [bpe_tok.id_to_piece(i) for i in range(3)] == SPECIALS
    assert (bpe_tok.blank_id, bpe_tok.unk_id, bpe_tok.sos_eos_id) == (0, 1, 2)


def test_bpe_round_trip(bpe_tok):
    total_chars = total_ids = 0
    for sentence in HARVARD_SENTENCES:
        ids = bpe_tok.encode(sentence)
        assert min(ids) >= 3  # neither blank, unk nor sos/eos
        assert bpe_tok.decode(ids) == sentence
        total_chars += len(sentence)
        total_ids += len(ids)
    assert total_ids < total_chars  # subwords, not characters


def test_bpe_unknown_and_specials(bpe_tok):
    ids = bpe_tok.encode("the Zoo")
    assert bpe_tok.unk_id in ids
    assert bpe_tok.decode(ids) == "the oo"
    assert bpe_tok.encode("<sos/eos>").count(bpe_tok.sos_eos_id) == 0  # control symbols never match text
    assert bpe_tok.decode([0, 2, *bpe_tok.encode("a rod"), 2, 0]) == "a rod"
    with pytest.raises(ValueError, match="out of range"):
        bpe_tok.decode([-1])


def test_bpe_serialisation(bpe_tok, tmp_path):
    again = BPETokenizer.from_bytes(bpe_tok.to_bytes())
    path = bpe_tok.save(tmp_path / "bpe.model")
    loaded = BPETokenizer.load(path)
    plain = spm.SentencePieceProcessor(model_file=str(path))  # a standard sentencepiece model file
    for sentence in HARVARD_SENTENCES[:10] + ["Zebra #9"]:
        ids = bpe_tok.encode(sentence)
        assert loaded.encode(sentence) == again.encode(sentence) == ids == plain.encode(sentence)
    assert loaded.model_type == bpe_tok.model_type


def test_bpe_too_small_corpus():
    with pytest.raises(ConfigError, match=r"vocab_size=5000 on 60 sentence.*smaller vocab_size"):
        BPETokenizer.train(HARVARD_SENTENCES, vocab_size=5000)


def test_bpe_bad_inputs(tmp_path):
    with pytest.raises(ConfigError, match="model_type"):
        BPETokenizer.train(HARVARD_SENTENCES, 50, model_type="word")
    with pytest.raises(ConfigError, match="vocab_size"):
        BPETokenizer.train(HARVARD_SENTENCES, 2)
    with pytest.raises(ConfigError, match="empty"):
        BPETokenizer.train(["", " "], 50)
    with pytest.raises(ModelLoadError, match="not found"):
        BPETokenizer.load(tmp_path / "missing.model")
    junk = tmp_path / "junk.model"
    junk.write_bytes(b"\x00not a model")
    with pytest.raises(ModelLoadError, match="junk.model"):
        BPETokenizer.load(junk)


def test_bpe_rejects_foreign_layout():
    writer = io.BytesIO()  # sentencepiece's default layout: <unk>=0, <s>=1, </s>=2
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(HARVARD_SENTENCES), model_writer=writer, vocab_size=60, minloglevel=2
    )
    with pytest.raises(ModelLoadError, match="expected"):
        BPETokenizer.from_bytes(writer.getvalue())


# -- from a manifest -----------------------------------------------------------------------------------------


@pytest.fixture
def manifest(tmp_path):
    utts = [
        Utterance(id=f"u{i}", audio=f"u{i}.wav", duration=1.0, text=s, normalized_text=s.lower().rstrip("."))
        for i, s in enumerate(HARVARD_SENTENCES)
    ]
    return write_manifest(tmp_path / "train.jsonl", utts)


def test_char_from_manifest(manifest):
    tok = CharTokenizer.from_manifest(manifest)
    assert "T" not in tok.symbols and "." not in tok.symbols  # normalized_text by default
    assert tok.decode(tok.encode("the birch canoe")) == "the birch canoe"
    assert "T" in CharTokenizer.from_manifest(manifest, field="text").symbols
    with pytest.raises(ConfigError, match="field"):
        CharTokenizer.from_manifest(manifest, field="speaker")


def test_bpe_from_manifest(manifest, tmp_path):
    tok = BPETokenizer.from_manifest(manifest, vocab_size=80, model_type="unigram")
    assert tok.vocab_size == 80 and tok.model_type == "unigram"
    assert tok.decode(tok.encode("the birch canoe")) == "the birch canoe"
    with pytest.raises(ConfigError, match="train.jsonl"):
        BPETokenizer.from_manifest(manifest, vocab_size=5000)
    with pytest.raises(DataError, match="not found"):
        BPETokenizer.from_manifest(tmp_path / "nope.jsonl", vocab_size=80)
