"""``POST /v1/audio/transcriptions`` and ``/v1/audio/translations``: an upload -> the model's transcript.

Uploads are decoded (any format our audio reader takes) before they queue, so unreadable audio is a 400 naming the
file; requests for one model with the same options run as one ``transcribe_batch`` call.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from ..audio.constants import SAMPLE_RATE
from ..audio.io import decode_audio_bytes
from ..decoding.options import WHISPER_BEAM_SIZE, WHISPER_BEST_OF, temperature_ladder
from ..errors import ConfigError
from ..formats import render
from ..text.tokenizers.languages import LANGUAGES, language_code
from .app import APIError, Server, api_error, sse
from .batching import unless_disconnected
from .registry import ServedModel

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("segment", "word")
TRANSCRIPTION_FIELDS = ("file", "model", "language", "prompt", "temperature", "response_format",
                        "timestamp_granularities[]", "stream", "chunking_strategy")
TRANSLATION_FIELDS = ("file", "model", "prompt", "temperature", "response_format")
WORD_EDGE_PUNCTUATION = ".,!?;:\"'()[]«»¿¡…"
MAX_FILENAME = 120  # characters of a client's file name quoted in a message


def whisper_defaults() -> dict[str, Any]:
    """Whisper decodes as ``seqspeech transcribe`` does: beam 5, best of 5 on fallback."""
    return {"beam_size": WHISPER_BEAM_SIZE, "best_of": WHISPER_BEST_OF}


async def read_upload(request: Request, fields: tuple[str, ...]) -> tuple[dict[str, list[str]], bytes, str]:
    """The multipart form's text fields, the ``file`` bytes and its name. 415 for another content type, 400 for a
    malformed body, a missing or empty file, or a field this route does not know."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise APIError(415, f"expected a multipart/form-data body with the audio in a 'file' field, got "
                            f"{ctype.split(';')[0] or 'no content type'}", code="unsupported_media_type")
    try:
        form = await request.form(max_files=1, max_fields=32)
    except (MultiPartException, HTTPException) as e:
        detail = getattr(e, "detail", None) or getattr(e, "message", None) or str(e)
        raise APIError(400, f"malformed multipart body: {detail}") from None
    try:
        unknown = sorted(set(form) - set(fields))
        if unknown:
            raise APIError(400, f"unknown field(s) {', '.join(unknown)}; this route takes {', '.join(fields)}",
                           param=unknown[0])
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise APIError(400, "missing the 'file' field with the audio to transcribe", param="file")
        name = (upload.filename or "upload")[:MAX_FILENAME]
        data = await upload.read()
        if not data:
            raise APIError(400, f"{name}: the uploaded file is empty (0 bytes)", param="file")
        texts = {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form if k != "file"}
        return texts, data, name
    finally:
        await form.close()


def _one(form: dict[str, list[str]], key: str, default: str | None = None) -> str | None:
    values = form.get(key) or []
    if len(values) > 1:
        raise APIError(400, f"field {key!r} was given {len(values)} times", param=key)
    return values[0] if values else default


def _choice(form: dict[str, list[str]], key: str, choices: tuple[str, ...], default: str) -> str:
    value = _one(form, key, default) or default
    if value not in choices:
        raise APIError(400, f"{key} must be one of {', '.join(choices)}, got {value!r}", param=key)
    return value


def _temperature(form: dict[str, list[str]]) -> float | None:
    raw = _one(form, "temperature")
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise APIError(400, f"temperature must be a number in [0, 1], got {raw!r}", param="temperature") from None
    if not 0 <= value <= 1:
        raise APIError(400, f"temperature must be in [0, 1], got {value}", param="temperature")
    return value


def decode_options(model: ServedModel, *, task: str, language: str | None, prompt: str | None,
                   temperature: float | None, words: bool) -> dict[str, Any]:
    """A request's fields -> the model's ``transcribe`` options (ConfigError -> 400 for what it cannot do)."""
    if model.family == "whisper":
        options = whisper_defaults()
        if temperature:  # 0 or none: openai-whisper's fallback ladder from 0, as OpenAI does
            options["temperature"] = temperature_ladder(temperature, 0.2)
        if prompt:
            options["initial_prompt"] = prompt
        if language:
            options["language"] = language_code(language)
        multilingual = getattr(getattr(model.get(), "tokenizer", None), "is_multilingual", False)
        if task == "translate" and multilingual:
            options["task"] = "translate"
    else:
        if prompt:
            raise ConfigError(f"model {model.name!r} ({model.family}) takes no prompt; a Whisper model does")
        if temperature:
            raise ConfigError(f"model {model.name!r} ({model.family}) decodes deterministically: temperature "
                              "must be 0 or absent")
        if language and language_code(language) != "en":
            raise ConfigError(f"model {model.name!r} hears English only, not {language!r}")
        options = {}
    if words:
        options["word_timestamps"] = True
    return options


def _transcribe_batch(model: ServedModel, server: Server, items: list[tuple[Any, dict[str, Any]]]) -> list[Any]:
    """One batch (same options) through the model's ``transcribe_batch``; per-input errors stay per input."""
    asr = model.get()
    waves = [w for w, _, _ in items]
    options = dict(items[0][1])
    listeners = [tell for _, _, tell in items]
    if any(listeners):  # streamed requests hear their segments as they are decoded
        options["on_segments"] = lambda i, segments: listeners[i] and listeners[i](segments)
    began = time.perf_counter()
    results = asr.transcribe_batch(waves, errors="return", progress=False,
                                   batch_size=max(len(waves), 4 if model.family == "whisper" else 8), **options)
    seconds = time.perf_counter() - began
    audio = sum(len(w) for w in waves) / SAMPLE_RATE
    if audio > 0:
        for _ in waves:  # one observation per request: the batch's RTF is each request's
            server.metrics.rtf.labels(model=model.name).observe(seconds / audio)
    server.metrics.audio_seconds.labels(model=model.name, kind="asr").inc(audio)
    return results


def verbose(transcript: Any, task: str, words: bool, segments: bool) -> dict[str, Any]:
    """OpenAI's verbose_json object."""
    code = transcript.language or "en"
    out: dict[str, Any] = {"task": task, "language": LANGUAGES.get(code, code), "duration": transcript.duration,
                           "text": transcript.text}
    if segments:
        out["segments"] = [
            {"id": i, "seek": 0, "start": s.start, "end": s.end, "text": s.text, "tokens": list(s.tokens),
             "temperature": s.temperature, "avg_logprob": s.avg_logprob, "compression_ratio": s.compression_ratio,
             "no_speech_prob": s.no_speech_prob} for i, s in enumerate(transcript.segments)]
    if words:
        # as OpenAI's: a word without the space and punctuation around it
        out["words"] = [{"word": w.word.strip().strip(WORD_EDGE_PUNCTUATION), "start": w.start, "end": w.end}
                        for s in transcript.segments for w in (getattr(s, "words", None) or [])]
    return out


def _usage(transcript: Any) -> dict[str, Any]:
    return {"type": "duration", "seconds": math.ceil(transcript.duration)}


def render_transcript(transcript: Any, fmt: str, task: str, granularities: list[str]) -> Response:
    if fmt == "json":
        return JSONResponse({"text": transcript.text, "usage": _usage(transcript)})
    if fmt == "text":
        return PlainTextResponse(transcript.text + "\n")
    if fmt in ("srt", "vtt"):
        return PlainTextResponse(render(fmt, "", transcript), media_type="text/vtt" if fmt == "vtt" else None)
    return JSONResponse(verbose(transcript, task, "word" in granularities,
                                "segment" in granularities or not granularities))


def _deltas(segments: list, sent: str) -> list[str]:
    """Segments -> the text pieces that extend ``sent`` (Whisper's segments carry their leading space; our models'
    segments are joined by one)."""
    out = []
    for segment in segments:
        text = segment.text if segment.text[:1].isspace() else " " + segment.text
        piece = text if sent or out else text.lstrip()
        if piece.strip():
            out.append(piece)
    return out


async def sse_transcript(segments: asyncio.Queue, result: asyncio.Future) -> AsyncIterator[bytes]:
    """OpenAI's streamed transcription events: a ``transcript.text.delta`` for each segment as the model decodes it
    (``segments`` gets lists of them from the model's thread), then ``transcript.text.done`` with the whole text.
    Closing the stream (the client left) cancels a request still queued."""
    sent = ""
    try:
        while True:
            getter = asyncio.ensure_future(segments.get())
            await asyncio.wait({getter, result}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                break
            for delta in _deltas(getter.result(), sent):
                sent += delta
                yield sse({"type": "transcript.text.delta", "delta": delta})
        while not segments.empty():  # the last window's segments arrived with the result
            for delta in _deltas(segments.get_nowait(), sent):
                sent += delta
                yield sse({"type": "transcript.text.delta", "delta": delta})
        transcript = result.result()
        if isinstance(transcript, Exception):
            yield sse({"type": "error", "error": {"message": api_error(transcript).message}})
            return
        if transcript.text != sent and transcript.text.startswith(sent):
            yield sse({"type": "transcript.text.delta", "delta": transcript.text[len(sent):]})
        yield sse({"type": "transcript.text.done", "text": transcript.text, "usage": _usage(transcript)})
    finally:
        result.cancel()



def add_transcription_routes(app: FastAPI, server: Server) -> None:
    async def handle(request: Request, task: str) -> Response:
        fields = TRANSCRIPTION_FIELDS if task == "transcribe" else TRANSLATION_FIELDS
        form, data, name = await read_upload(request, fields)
        model = server.registry.find(_one(form, "model"), "asr")
        fmt = _choice(form, "response_format", RESPONSE_FORMATS, "json")
        granularities = form.get("timestamp_granularities[]", [])
        bad = [g for g in granularities if g not in GRANULARITIES]
        if bad:
            raise APIError(400, f"timestamp_granularities[] must be segment or word, got {bad[0]!r}",
                           param="timestamp_granularities[]")
        if granularities and fmt != "verbose_json":
            raise APIError(400, "timestamp_granularities[] needs response_format verbose_json",
                           param="timestamp_granularities[]")
        stream = _choice(form, "stream", ("true", "false"), "false") == "true"
        if stream and fmt not in ("json", "text"):
            raise APIError(400, f"stream=true gives text events; response_format {fmt} cannot stream",
                           param="stream")
        strategy = _one(form, "chunking_strategy")
        if strategy not in (None, "", "auto"):
            raise APIError(400, f"chunking_strategy must be 'auto' (long audio is always windowed), got "
                                f"{strategy!r}", param="chunking_strategy")
        options = decode_options(model, task=task, language=_one(form, "language"), prompt=_one(form, "prompt"),
                                 temperature=_temperature(form), words="word" in granularities)
        wave = await run_in_threadpool(decode_audio_bytes, data, name)
        key = json.dumps(options, sort_keys=True, default=str)
        batcher = server.batcher(model, "transcribe", lambda items: _transcribe_batch(model, server, items))
        if stream:
            loop, segments = asyncio.get_running_loop(), asyncio.Queue()

            def tell(found: list) -> None:  # on the model's thread
                loop.call_soon_threadsafe(segments.put_nowait, found)

            job = asyncio.ensure_future(batcher.submit((wave, options, tell), key,
                                                       timeout=server.config.request_timeout_s))
            await asyncio.sleep(0)  # queued now: an overloaded model says 503 before the stream starts
            if job.done() and job.exception() is not None:
                raise job.exception()
            return StreamingResponse(sse_transcript(segments, job), media_type="text/event-stream")
        transcript = await unless_disconnected(
            request, batcher.submit((wave, options, None), key, timeout=server.config.request_timeout_s))
        if isinstance(transcript, Exception):
            raise transcript
        return render_transcript(transcript, fmt, "transcribe" if task == "transcribe" else "translate",
                                 granularities)

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        return await handle(request, "transcribe")

    @app.post("/v1/audio/translations")
    async def translations(request: Request) -> Response:
        return await handle(request, "translate")

