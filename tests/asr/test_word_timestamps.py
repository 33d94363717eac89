"""Word timestamps: Whisper's against openai-whisper's with the same weights, CTC's from its forced alignment,
and a clear error from the families that have none."""

import json
from dataclasses import replace

import numpy as np
import pytest

import seqspeech
from seqspeech.asr.transcribe import Transcript
from seqspeech.audio.io import load_audio
from seqspeech.data.synth import HARVARD_SENTENCES
from seqspeech.errors import ConfigError
from seqspeech.formats import render

# Our alignment is openai-whisper's algorithm on the same weights, so times agree exactly unless float rounding
# (our fused attention vs its explicit one, DTW costs in float64 vs float32) flips a near-tie of the DTW path:
# that moves a boundary by a whole 20-ms audio position, rarely more than one or two. 0.1 s (5 positions) allows
# for that and still catches any real difference (a word off by one, a heuristic left out: 0.2 s and more).
# Measured: identical to the last digit on these clips and on 66 s of long-form audio (684 boundaries).
TIME_TOLERANCE_S = 0.1


@pytest.fixture(scope="module")
def asr():
    return seqspeech.load_model("whisper-tiny.en", device="cpu", compute_type="float32")


@pytest.fixture(scope="module")
def openai_reference(tmp_path_factory):
    """openai-whisper's model with the same weights (its .pt format) and tiny.en's alignment heads."""
    pytest.importorskip("whisper")
    from whisper_reference import openai_tiny_en

    model = openai_tiny_en(tmp_path_factory.mktemp("openai"))
    import whisper

    model.set_alignment_heads(whisper._ALIGNMENT_HEADS["tiny.en"])
    return model


@pytest.fixture(scope="module")
def sentences(synth_speech):
    """Two sentences in two voices (espeak-ng, flite), 16 kHz."""
    return [load_audio(synth_speech(HARVARD_SENTENCES[0], voice="en-us")),
            load_audio(synth_speech(HARVARD_SENTENCES[1], engine="flite"))]


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * 16000), np.float32)


@pytest.fixture(scope="module")
def two_windows(sentences):
    """A sentence, silence, and a sentence across the 30-s window boundary."""
    first, second = sentences
    return np.concatenate([_silence(0.5), first, _silence(28.5 - len(first) / 16000), second, _silence(1.0)])


@pytest.fixture(scope="module")
def ours(asr, two_windows):
    return asr.transcribe(two_windows, beam_size=1, temperature=0.0, word_timestamps=True)


def test_tiny_en_has_openai_whispers_alignment_heads(asr):
    """The CTranslate2 copy's config carries tiny.en's 8 alignment heads, and the loader installs them."""
    whisper = pytest.importorskip("whisper")
    import base64
    import gzip

    mask = np.frombuffer(gzip.decompress(base64.b85decode(whisper._ALIGNMENT_HEADS["tiny.en"])), dtype=bool)
    assert asr.model.alignment_heads.flatten().tolist() == mask.tolist()


def test_whisper_words_match_openai_whisper(ours, openai_reference, two_windows):
    """Greedy, float32, two windows (the first ends at its last word, as openai-whisper's does with word
    timestamps): the same words, times and probabilities."""
    theirs = openai_reference.transcribe(two_windows, beam_size=None, temperature=0.0, fp16=False, language="en",
                                         word_timestamps=True)
    assert ours.segments[-1].end > 30
    our_words = [w for s in ours.segments for w in s.words]
    their_words = [w for s in theirs["segments"] for w in s["words"]]
    assert [w.word for w in our_words] == [w["word"] for w in their_words]
    starts = [abs(a.start - b["start"]) for a, b in zip(our_words, their_words)]
    ends = [abs(a.end - b["end"]) for a, b in zip(our_words, their_words)]
    assert max(starts + ends) <= TIME_TOLERANCE_S, (max(starts), max(ends))
    assert [a.probability for a in our_words] == pytest.approx([b["probability"] for b in their_words], abs=1e-3)
    # segments move to their words as openai-whisper's do
    assert [t for s in ours.segments for t in (s.start, s.end)] == pytest.approx(
        [t for s in theirs["segments"] for t in (s["start"], s["end"])], abs=TIME_TOLERANCE_S)
    for segment in ours.segments:
        assert "".join(w.word for w in segment.words) == segment.text
        assert all(w.start <= w.end for w in segment.words)


def test_words_are_in_the_json_only_when_asked(ours):
    words = [w for s in json.loads(render("json", "clip.wav", ours))["segments"] for w in s["words"]]
    assert words and set(words[0]) == {"word", "start", "end", "probability"}
    plain = Transcript(text=ours.text, segments=[replace(s, words=None) for s in ours.segments],
                       language="en", duration=ours.duration)
    assert all("words" not in s for s in plain.to_dict()["segments"])
    assert "words" not in render("jsonl", "clip.wav", plain)
    assert render("srt", "clip.wav", plain) == render("srt", "clip.wav", ours)


def test_ctc_words_come_from_the_forced_alignment(sentences):
    """Each window's segment gets the words of its own forced alignment, on the input's clock."""
    ctc = seqspeech.load_model("ctc-conformer-synth-en", device="cpu")
    first, second = sentences
    audio = np.concatenate([first, _silence(20.5 - len(first) / 16000), second])  # windows of 20 s
    t = ctc.transcribe(audio, word_timestamps=True)
    assert len(t.segments) == 2
    for segment, window_start in zip(t.segments, (0.0, 20.0)):
        assert [w.word for w in segment.words] == segment.text.split()
        window = audio[round(window_start * 16000) : round((window_start + 20) * 16000)]
        spans = ctc.word_timestamps(window, segment.text)
        assert [(w.word, w.start, w.end) for w in segment.words] == [
            (s.word, round(s.start_s + window_start, 3), round(s.end_s + window_start, 3)) for s in spans]
        assert all(0 < w.probability <= 1 for w in segment.words)
        assert segment.start <= segment.words[0].start and segment.words[-1].end <= segment.end
    assert all(s.words is None for s in ctc.transcribe(audio).segments)


@pytest.mark.parametrize("model", ["aed-conformer-synth-en", "las-synth-en", "rnnt-synth-en"])
def test_other_families_refuse_word_timestamps(model):
    asr = seqspeech.load_model(model, device="cpu")
    with pytest.raises(ConfigError) as error:
        asr.transcribe(_silence(1.0), word_timestamps=True)
    message = str(error.value)
    assert "whisper and ctc" in message and "\n" not in message


def test_punctuation_merges_as_openai_whispers():
    """Opening marks join the next word, closing marks the previous one (quotes, brackets, CJK marks)."""
    timing = pytest.importorskip("whisper.timing")
    from seqspeech.asr.whisper_words import WordTiming, merge_punctuations

    words = [' "', "Hello", ",", " (", "world", ")", '."', " ¿", "Qué", "?", " -", " ok", "、", "。"]
    ours = [WordTiming(w, [i], float(i), i + 1.0, 0.5) for i, w in enumerate(words)]
    theirs = [timing.WordTiming(w, [i], float(i), i + 1.0, 0.5) for i, w in enumerate(words)]
    merge_punctuations(ours)
    timing.merge_punctuations(theirs, "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、")
    assert [(w.word, w.tokens) for w in ours] == [(w.word, w.tokens) for w in theirs]
