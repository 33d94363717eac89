"""Whisper decoding: the model adapted to the generic `Scorer`, Whisper's prompt layout and logit rules.

`decode()` runs one pass (one temperature) over a batch of 30-second windows; the long-form loop with
temperature fallback lives in `seqspeech.asr.transcribe`.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import Tensor

from ..audio.constants import CHUNK_LENGTH
from ..decoding.filters import ApplyTimestampRules, SuppressBlank, SuppressTokens
from ..decoding.interfaces import LengthNormalizedRanker
from ..decoding.options import DecodingOptions, DecodingResult
from ..decoding.search import Hypothesis, Step, beam_search, pick_best, sample_search
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..text.tokenizers.whisper import WhisperTokenizer
    from .whisper import Whisper


class WhisperScorer:
    """The Whisper text decoder as a Scorer: state is the decoder's explicit KV cache (`DecoderState`)."""

    def __init__(self, model: "Whisper") -> None:
        self.model = model

    def score(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        logits, state = self.model.decoder(tokens[:, state.offset :], state)
        return logits[:, -1], state

    def select_state(self, state: Any, indices: Tensor) -> Any:
        return state.index_select(indices)


def compression_ratio(text: str) -> float:
    """Length of the UTF-8 text over its zlib-compressed length: high values flag repetition loops."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _as_tokens(tokenizer: "WhisperTokenizer", text_or_tokens: str | Sequence[int]) -> list[int]:
    if isinstance(text_or_tokens, str):
        return tokenizer.encode(" " + text_or_tokens.strip())
    return [int(t) for t in text_or_tokens]


def initial_tokens(
    tokenizer: "WhisperTokenizer", options: DecodingOptions, language: str | None, n_text_ctx: int
) -> list[int]:
    """[<|startofprev|> prompt...] <|startoftranscript|> <|lang|> <|task|> [<|notimestamps|>] [prefix...]."""
    tokens = list(
        tokenizer.sot_sequence(
            language=language, task=options.task, without_timestamps=options.without_timestamps
        )
    )
    sample_len = options.sample_len or n_text_ctx // 2
    if options.prefix:
        prefix = _as_tokens(tokenizer, options.prefix)
        max_prefix = max(n_text_ctx // 2 - sample_len, 0)
        tokens += prefix[-max_prefix:] if max_prefix else []
    if options.prompt:
        prompt = _as_tokens(tokenizer, options.prompt)
        tokens = [tokenizer.sot_prev] + prompt[-(n_text_ctx // 2 - 1) :] + tokens
    return tokens


def suppressed_tokens(tokenizer: "WhisperTokenizer", options: DecodingOptions) -> list[int]:
    spec = options.suppress_tokens
    if isinstance(spec, str):
        ids = [int(t) for t in spec.split(",") if t.strip()]
    else:
        ids = [int(t) for t in spec or []]
    if -1 in ids:
        ids = [t for t in ids if t >= 0] + list(tokenizer.non_speech_tokens)
    ids += [tokenizer.transcribe, tokenizer.translate, tokenizer.sot, tokenizer.sot_prev, tokenizer.sot_lm]
    if tokenizer.no_speech is not None:
        ids.append(tokenizer.no_speech)
    return ids


def logit_filters(
    tokenizer: "WhisperTokenizer", options: DecodingOptions, sample_begin: int, n_audio_ctx: int
) -> list:
    filters: list = []
    if options.suppress_blank:
        filters.append(SuppressBlank(tokenizer.encode(" ") + [tokenizer.eot], sample_begin))
    filters.append(SuppressTokens(suppressed_tokens(tokenizer, options)))
    if not options.without_timestamps:
        precision = CHUNK_LENGTH / n_audio_ctx  # 0.02 s per timestamp step
        max_initial = None
        if options.max_initial_timestamp is not None:
            max_initial = round(options.max_initial_timestamp / precision)
        filters.append(
            ApplyTimestampRules(
                sample_begin=sample_begin,
                timestamp_begin=tokenizer.timestamp_begin,
                eot=tokenizer.eot,
                no_timestamps=tokenizer.no_timestamps,
                max_initial_timestamp_index=max_initial,
            )
        )
    return filters


@torch.inference_mode()
def detect_language(
    model: "Whisper", tokenizer: "WhisperTokenizer", audio_features: Tensor
) -> tuple[list[str], list[dict[str, float]]]:
    """Most probable language per input and the distribution over all languages. audio_features: (B, S, D)."""
    if not tokenizer.is_multilingual:
        raise ConfigError("this model is English-only: it has no language tokens to detect a language with")
    n = audio_features.shape[0]
    state = model.decoder.init_state(audio_features)
    sot = torch.full((n, 1), tokenizer.sot, dtype=torch.long, device=audio_features.device)
    logits, _ = model.decoder(sot, state)
    lang_ids = torch.tensor(list(tokenizer.all_language_tokens), device=logits.device)
    probs = logits[:, 0].float().index_select(1, lang_ids).softmax(dim=-1).cpu()
    codes = list(tokenizer.all_language_codes)
    best = [codes[i] for i in probs.argmax(dim=-1).tolist()]
    return best, [dict(zip(codes, row)) for row in probs.tolist()]


@torch.inference_mode()
def decode(
    model: "Whisper",
    tokenizer: "WhisperTokenizer",
    audio_features: Tensor,
    options: DecodingOptions = DecodingOptions(),
    *,
    generator: torch.Generator | None = None,
) -> list[DecodingResult]:
    """Decode a batch of encoded windows (B, S, D) with one set of options (one temperature)."""
    n_audio = audio_features.shape[0]
    n_text_ctx = model.dims.n_text_ctx
    device = audio_features.device

    languages: list[str | None]
    language_probs: list[dict[str, float] | None] = [None] * n_audio
    if options.language is None and tokenizer.is_multilingual:
        detected, probs = detect_language(model, tokenizer, audio_features)
        languages, language_probs = list(detected), list(probs)
    else:
        languages = [options.language or "en"] * n_audio

    # inputs with different languages need different prompts: decode each language group on its own
    if len(set(languages)) > 1:
        results: list[DecodingResult | None] = [None] * n_audio
        for lang in sorted(set(languages)):
            rows = [i for i, l in enumerate(languages) if l == lang]
            sub = decode(
                model, tokenizer, audio_features[rows], replace(options, language=lang), generator=generator
            )
            for i, r in zip(rows, sub):
                results[i] = replace(r, language_probs=language_probs[i])
        return [r for r in results if r is not None]

    language = languages[0]
    prompt = initial_tokens(tokenizer, options, language, n_text_ctx)  # an English-only model refuses others
    sample_begin = len(prompt)
    sot_index = prompt.index(tokenizer.sot)
    max_new = min(options.sample_len or n_text_ctx // 2, n_text_ctx - sample_begin)
    if max_new < 1:
        raise ConfigError(f"prompt of {sample_begin} tokens leaves no room in the {n_text_ctx}-token context")

    scorer = WhisperScorer(model)
    step = Step(scorer, logit_filters(tokenizer, options, sample_begin, model.dims.n_audio_ctx))
    tokens = torch.tensor([prompt] * n_audio, dtype=torch.long, device=device)
    state = model.decoder.init_state(audio_features)
    all_logits, state = model.decoder(tokens, state)  # prime the cache on the prompt, once per input
    no_speech = [float("nan")] * n_audio
    if tokenizer.no_speech is not None:
        no_speech = all_logits[:, sot_index].float().softmax(dim=-1)[:, tokenizer.no_speech].tolist()
    first_logits = all_logits[:, -1]

    ranker = LengthNormalizedRanker(options.length_penalty)
    best: list[Hypothesis]
    if options.temperature == 0 and (options.beam_size or 1) > 1:
        groups = beam_search(
            step,
            tokens,
            state,
            beam_size=options.beam_size,
            eot=tokenizer.eot,
            max_new_tokens=max_new,
            patience=options.patience or 1.0,
            first_logits=first_logits,
        )
        best = [pick_best(g, ranker) for g in groups]
    else:
        n = (options.best_of or 1) if options.temperature > 0 else 1
        rows = torch.arange(n_audio, device=device).repeat_interleave(n)
        hyps = sample_search(
            step,
            tokens[rows],
            scorer.select_state(state, rows),
            eot=tokenizer.eot,
            max_new_tokens=max_new,
            temperature=options.temperature,
            first_logits=first_logits[rows],
            generator=generator,
        )
        best = [pick_best(hyps[i * n : (i + 1) * n], ranker) for i in range(n_audio)]

    results = []
    for i, hyp in enumerate(best):
        text = tokenizer.decode(hyp.tokens).strip()
        results.append(
            DecodingResult(
                tokens=hyp.tokens,
                text=text,
                language=language,
                language_probs=language_probs[i],
                avg_logprob=hyp.sum_logprob / (len(hyp.tokens) + 1),
                sum_logprob=hyp.sum_logprob,
                no_speech_prob=no_speech[i],
                temperature=options.temperature,
                compression_ratio=compression_ratio(text),
            )
        )
    return results
