"""Word-level timestamps for Whisper transcripts, by openai-whisper's algorithm (``whisper/timing.py``).

For one 30-s window whose segments are decoded: the decoder reads the window's text tokens again, teacher-forced
after ``<|startoftranscript|>`` [language] [task] ``<|notimestamps|>`` (no prompt), while
:class:`~seqspeech.asr.whisper_streaming.AlignmentProbe` records the cross-attention of the model's alignment heads
(``model.alignment_heads``, set by the loaders: tiny.en's 8 pairs). Per head the weights over the window's audio
positions are normalised over the tokens (z-scores), median-filtered along time (width 7) and averaged over the
heads; DTW through that matrix gives each token the audio position where it starts, a word spans from its first
token's start to the next word's. Words are cut at spaces and punctuation (at characters for languages written
without spaces), punctuation is merged into its neighbour, and openai-whisper's duration heuristics trim words
that run over sentence ends, pauses and segment boundaries.

Shapes: h alignment heads, L tokens of the teacher-forced pass, S audio positions of the encoder output, M audio
positions that hold the window's audio (M <= S), N text tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from ..audio.constants import TOKENS_PER_SECOND
from ..metrics.tts import dtw
from .transcribe import Segment, Word
from .whisper_streaming import MEDIAN_FILTER_WIDTH, AlignmentProbe, median_filter

if TYPE_CHECKING:
    from ..text.tokenizers.whisper import WhisperTokenizer
    from .whisper import Whisper

__all__ = ["WordTiming", "add_word_timestamps", "align_words", "last_word_end", "merge_punctuations"]

PREPEND_PUNCTUATIONS = "\"'“¿([{-"  # merged into the word after them
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"  # merged into the word before them
SENTENCE_END_MARKS = ".。!！?？"
MAX_MEDIAN_WORD_S = 0.7  # the median word duration the heuristics use is capped at this
PAUSE_MEDIANS = 4  # a first word ending this many median durations after the last speech follows a pause
SEGMENT_SLACK_S = 0.5  # a segment timestamp this far inside its first / last word's time overrides it


@dataclass
class WordTiming:
    """One aligned word in window seconds: its text, tokens, start, end and mean token probability."""

    word: str
    tokens: list[int]
    start: float
    end: float
    probability: float


def align_words(
    model: Whisper,
    tokenizer: WhisperTokenizer,
    features: Tensor,
    text_tokens: Sequence[int],
    n_frames: int,
    *,
    language: str | None,
    task: str = "transcribe",
    probe: AlignmentProbe | None = None,
) -> list[WordTiming]:
    """openai-whisper's ``find_alignment``: the words of ``text_tokens`` (N,) with times in seconds from the
    window start.

    ``features (1, S, D)``: the window's audio features; ``n_frames``: how many of its mel frames hold audio
    (the rest is padding, left out of the alignment).
    """
    if not text_tokens:
        return []
    probe = probe or AlignmentProbe(model)
    sot = list(tokenizer.sot_sequence(language=language, task=task))
    ids = [*sot, tokenizer.no_timestamps, *text_tokens, tokenizer.eot]
    tokens = torch.tensor([ids], dtype=torch.long, device=features.device)
    with probe.capture() as sink:
        logits, _ = model.decoder(tokens, model.decoder.init_state(features))
        weights = probe.read(sink).float()  # (h, L, S), softmax over all S positions
    n_text = len(text_tokens)
    text_logits = logits[0, len(sot) : len(sot) + n_text, : tokenizer.eot].float()  # text tokens only
    token_probs = text_logits.softmax(dim=-1)[torch.arange(n_text), torch.tensor(list(text_tokens))].tolist()

    # openai-whisper takes the softmax over the audio positions alone: renormalising the probe's softmax over
    # all S positions to the first M is the same distribution
    n_positions = max(1, min(n_frames // 2, weights.shape[-1]))
    weights = weights[..., :n_positions]
    weights = weights / weights.sum(dim=-1, keepdim=True).clamp_min(1e-30)
    std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)  # over the tokens, per head
    weights = (weights - mean) / std.clamp_min(1e-8)
    matrix = median_filter(weights, MEDIAN_FILTER_WIDTH).mean(dim=0)  # (L, M)
    matrix = matrix[len(sot) : -1]  # (N + 1, M): the steps that predict each text token and end-of-text
    _, path = dtw(-matrix)
    first_position = np.full(matrix.shape[0], -1, dtype=np.int64)
    for i, j in path:
        if first_position[i] < 0:
            first_position[i] = j
    jump_times = first_position / TOKENS_PER_SECOND  # (N + 1,) seconds

    words, word_tokens = tokenizer.split_to_word_tokens([*text_tokens, tokenizer.eot], language=language)
    if len(word_tokens) <= 1:  # end-of-text alone
        return []
    bounds = np.concatenate([[0], np.cumsum([len(t) for t in word_tokens[:-1]])]).astype(np.int64)
    return [
        WordTiming(word, list(group), float(jump_times[i]), float(jump_times[j]), float(np.mean(token_probs[i:j])))
        for word, group, i, j in zip(words, word_tokens, bounds[:-1], bounds[1:])
    ]


def merge_punctuations(alignment: list[WordTiming], prepended: str = PREPEND_PUNCTUATIONS,
                       appended: str = APPEND_PUNCTUATIONS) -> None:
    """Merge opening punctuation into the following word and closing punctuation into the preceding one, in
    place; a merged-away entry keeps its place with empty text and no tokens (openai-whisper's)."""
    i, j = len(alignment) - 2, len(alignment) - 1
    while i >= 0:
        previous, following = alignment[i], alignment[j]
        if previous.word.startswith(" ") and previous.word.strip() in prepended:
            following.word = previous.word + following.word
            following.tokens = previous.tokens + following.tokens
            previous.word, previous.tokens = "", []
        else:
            j = i
        i -= 1
    i, j = 0, 1
    while j < len(alignment):
        previous, following = alignment[i], alignment[j]
        if not previous.word.endswith(" ") and following.word in appended:
            previous.word = previous.word + following.word
            previous.tokens = previous.tokens + following.tokens
            following.word, following.tokens = "", []
        else:
            i = j
        j += 1


def last_word_end(segments: Sequence[Segment]) -> float | None:
    """The end of the last word of ``segments``, else the last segment's end (None: no segments)."""
    for segment in reversed(segments):
        for word in reversed(segment.words or []):
            return word.end
    return segments[-1].end if segments else None


def add_word_timestamps(
    segments: Sequence[Segment],
    model: Whisper,
    tokenizer: WhisperTokenizer,
    features: Tensor,
    n_frames: int,
    *,
    time_offset: float,
    last_speech: float,
    language: str | None,
    task: str = "transcribe",
    probe: AlignmentProbe | None = None,
) -> None:
    """Fill ``words`` of one window's ``segments`` (all of them, before empty ones are dropped) and move their
    start and end to their first and last word where openai-whisper does.

    ``features (1, S, D)`` and ``n_frames``: as in :func:`align_words`; ``time_offset``: the window's start in
    seconds; ``last_speech``: the end of the last word before this window (seconds).
    """
    if not segments:
        return
    per_segment = [[t for t in segment.tokens if t < tokenizer.eot] for segment in segments]
    text_tokens = [t for tokens in per_segment for t in tokens]
    alignment = align_words(model, tokenizer, features, text_tokens, n_frames, language=language, task=task,
                            probe=probe)
    durations = np.array([w.end - w.start for w in alignment])
    durations = durations[durations.nonzero()]
    median = min(MAX_MEDIAN_WORD_S, float(np.median(durations))) if len(durations) else 0.0
    longest = 2 * median

    if len(durations):  # a word at a sentence boundary is not longer than twice the median word
        for i in range(1, len(alignment)):
            if alignment[i].end - alignment[i].start > longest:
                if alignment[i].word in SENTENCE_END_MARKS:
                    alignment[i].end = alignment[i].start + longest
                elif alignment[i - 1].word in SENTENCE_END_MARKS:
                    alignment[i].start = alignment[i].end - longest
    merge_punctuations(alignment)

    k = 0
    for segment, tokens in zip(segments, per_segment):
        words: list[Word] = []
        saved = 0
        while k < len(alignment) and saved < len(tokens):
            timing = alignment[k]
            if timing.word:
                words.append(Word(timing.word, round(time_offset + timing.start, 2),
                                  round(time_offset + timing.end, 2), timing.probability))
            saved += len(timing.tokens)
            k += 1
        segment.words = words
        if not words:
            continue
        first, last = words[0], words[-1]
        # the first (and second) word after a pause is not longer than twice the median word
        if first.end - last_speech > median * PAUSE_MEDIANS and (
            first.end - first.start > longest or (len(words) > 1 and words[1].end - first.start > 2 * longest)
        ):
            if len(words) > 1 and words[1].end - words[1].start > longest:
                boundary = max(words[1].end / 2, words[1].end - longest)
                first.end = words[1].start = boundary
            first.start = max(0.0, first.end - longest)
        # a segment timestamp well inside the first / last word wins over the word's own time
        if segment.start < first.end and segment.start - SEGMENT_SLACK_S > first.start:
            first.start = max(0.0, min(first.end - median, segment.start))
        else:
            segment.start = first.start
        if segment.end > last.start and segment.end + SEGMENT_SLACK_S < last.end:
            last.end = max(last.start + median, segment.end)
        else:
            segment.end = last.end
        last_speech = segment.end
        for word in words:
            word.start, word.end = round(word.start, 3), round(word.end, 3)
        segment.start, segment.end = round(segment.start, 3), round(segment.end, 3)
