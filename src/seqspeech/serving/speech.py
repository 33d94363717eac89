"""``POST /v1/audio/speech``: text -> audio, streamed chunk by chunk as the voice speaks it.

The speech of all requests to one voice is made in batched steps on the model's thread (:func:`speak`); each step's
float samples are encoded (:mod:`.audio_out`) and sent at once, so the first bytes leave after the first mel chunk
is vocoded, not after the whole text. With
``stream_format=sse`` the same bytes travel base64-encoded in ``speech.audio.delta`` events.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from ..errors import DataError
from .app import APIError, Server, sse
from .audio_out import FORMATS, PCM_RATE, AudioEncoder
from .registry import ServedModel

Encode = Callable[[np.ndarray, bool], bytes]  # (new samples, last) -> bytes to send
SPEECH_FIELDS = ("model", "input", "voice", "speed", "response_format", "stream_format", "instructions")
STREAM_FORMATS = ("audio", "sse")


async def read_json(request: Request, fields: tuple[str, ...]) -> dict[str, Any]:
    """A JSON object body with only ``fields`` (415 for another content type, 400 for bad JSON or a stray key)."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("application/json"):
        raise APIError(415, f"expected an application/json body, got {ctype.split(';')[0] or 'no content type'}",
                       code="unsupported_media_type")
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise APIError(400, f"the body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise APIError(400, f"the body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise APIError(400, f"unknown field(s) {', '.join(unknown)}; this route takes {', '.join(fields)}",
                       param=unknown[0])
    return body


def _field(body: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or isinstance(value, bool):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise APIError(400, f"{key} must be a {names}, got {type(value).__name__}", param=key)
    return value


def _speech_steps(items: list[tuple[Any, Any, Encode]]) -> list[bytes | Exception]:
    """One batched step of several speech streams of one voice (``(voice, stream, encode)`` each): every stream's
    next audio, encoded (``encode(samples, last)``) on the model's thread."""
    voice = items[0][0]
    waves = voice.step_streams([stream for _, stream, _ in items])
    out: list[bytes | Exception] = []
    for (_, stream, encode), samples in zip(items, waves):
        try:
            out.append(encode(samples, stream.done))
        except Exception as e:  # noqa: BLE001 - this request's encoder failed, not the batch
            out.append(e)
    return out


async def speak(server: Server, model: ServedModel, text: str, encode: Encode,
                close: Callable[[], None] | None = None, **options: Any) -> AsyncIterator[bytes]:
    """``text`` spoken by ``model``'s voice, encoded, as it is made. The speech of all requests to one voice is
    stepped by one batcher: a step advances every stream by one mel chunk in one acoustic-model pass and one vocoder
    pass (:meth:`~seqspeech.tts.synthesizer.Synthesizer.step_streams`). The request holds one slot of the model's
    queue bound until it ends (Overloaded at once when full); ``close`` (the encoder's cleanup) runs on the model's
    thread after any step still running, when the stream ends or its consumer goes away."""
    loop = asyncio.get_running_loop()
    voice = model.get()
    inflight = server.inflight[model.name]
    inflight.acquire()
    ended = False
    try:
        stream = await loop.run_in_executor(model.executor, lambda: voice.open_stream(text, **options))
        batcher = server.batcher(model, "speech", _speech_steps)
        while not stream.done:
            data = await batcher.submit((voice, stream, encode), timeout=server.config.request_timeout_s,
                                        counted=False)
            if data:
                yield data
        ended = True
    finally:
        closing = loop.run_in_executor(model.executor, close or (lambda: None))
        if ended:  # the slot is free before the client sees the end, so its next request finds it free
            try:
                await closing
            finally:
                inflight.release()
        else:  # an error, or the consumer went away (cancelled: nothing more may be awaited here)
            closing.add_done_callback(lambda _: inflight.release())


def _encoder_step(encoder: AudioEncoder) -> Encode:
    def encode(samples: np.ndarray, last: bool) -> bytes:
        data = encoder.push(samples) if samples.size else b""
        return data + encoder.finish() if last else data

    return encode


def add_speech_routes(app: FastAPI, server: Server) -> None:
    @app.post("/v1/audio/speech")
    async def speech(request: Request) -> Response:
        body = await read_json(request, SPEECH_FIELDS)
        text = _field(body, "input", str)
        if text is None or not text.strip():
            raise APIError(400, "input must be a non-empty string: the text to speak", param="input")
        if len(text) > server.config.max_input_chars:
            raise APIError(400, f"input has {len(text)} characters; this server speaks at most "
                                f"{server.config.max_input_chars} per request", param="input")
        if _field(body, "instructions", str):
            raise APIError(400, "instructions (a style prompt) are not supported by our voices; use speed",
                           param="instructions")
        model = server.registry.find_voice(_field(body, "model", str), _field(body, "voice", str))
        speed = float(_field(body, "speed", (int, float), 1.0))
        fmt = _field(body, "response_format", str, "mp3")
        if fmt not in FORMATS:
            raise APIError(400, f"response_format must be one of {', '.join(FORMATS)}, got {fmt!r}",
                           param="response_format")
        stream_format = _field(body, "stream_format", str, "audio")
        if stream_format not in STREAM_FORMATS:
            raise APIError(400, f"stream_format must be audio or sse, got {stream_format!r}", param="stream_format")
        voice = model.get()
        encoder = AudioEncoder(fmt, voice.sample_rate)
        began = time.perf_counter()
        chunks = speak(server, model, text, _encoder_step(encoder), encoder.close, speed=speed)
        try:
            first = await chunks.__anext__()  # errors before any audio (nothing speakable, a bad speed) are 4xx
        except StopAsyncIteration:
            raise DataError(f"nothing speakable in {text[:80]!r}") from None
        except BaseException:
            await chunks.aclose()
            raise
        server.metrics.first_byte.labels(model=model.name).observe(time.perf_counter() - began)

        async def audio() -> AsyncIterator[bytes]:
            yield first
            async for data in chunks:
                yield data

        async def events() -> AsyncIterator[bytes]:
            sent = 0
            async for data in audio():
                sent += len(data)
                yield sse({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})
            yield sse({"type": "speech.audio.done", "usage": {"input_tokens": len(text), "output_tokens": 0,
                                                               "total_tokens": len(text), "audio_bytes": sent}})

        rate = PCM_RATE if fmt == "pcm" else voice.sample_rate
        headers = {"X-Sample-Rate": str(rate), "X-Voice": model.name}
        if stream_format == "sse":
            return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
        return StreamingResponse(audio(), media_type=encoder.content_type, headers=headers)

