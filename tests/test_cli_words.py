"""`seqspeech transcribe --word-timestamps`: words in the JSON for Whisper and CTC, a one-line error for others."""

import json

import pytest

from seqspeech.cli import main
from seqspeech.data.synth import HARVARD_SENTENCES


@pytest.fixture(scope="module")
def clip(synth_speech):
    return str(synth_speech(HARVARD_SENTENCES[1]))


# Whisper's words keep their leading space (openai-whisper's), CTC's are bare
@pytest.mark.parametrize("model, joiner", [("whisper-tiny.en", ""), ("ctc-conformer-synth-en", " ")])
def test_json_has_words(model, joiner, clip, capsys):
    assert main(["transcribe", clip, "--model", model, "--beam-size", "1", "--format", "json",
                 "--word-timestamps"]) == 0
    record = json.loads(capsys.readouterr().out)
    words = [w for s in record["segments"] for w in s["words"]]
    assert joiner.join(w["word"] for w in words).strip() == record["text"]
    assert all(0 <= w["start"] <= w["end"] <= record["duration"] + 0.5 for w in words)
    assert all({"word", "start", "end", "probability"} == set(w) for w in words)


def test_words_only_when_asked(clip, capsys):
    assert main(["transcribe", clip, "--model", "ctc-conformer-synth-en", "--format", "jsonl"]) == 0
    assert all("words" not in s for s in json.loads(capsys.readouterr().out)["segments"])


def test_other_families_say_which_support_words(clip, capsys):
    assert main(["transcribe", clip, "--model", "aed-conformer-synth-en", "--word-timestamps"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "whisper and ctc" in err, err
