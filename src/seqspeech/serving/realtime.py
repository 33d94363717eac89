"""Streaming over WebSockets: OpenAI's Realtime transcription sessions, a plain ASR stream and a TTS stream.

Every ASR session owns a :class:`~seqspeech.asr.streaming.StreamingRecognizer` (the model's ``stream()``); the audio
of all sessions on one model is decoded by one batcher, so sessions that send audio together share the engine's
batched step (:func:`~seqspeech.asr.streaming.decode_streams`).

``/v1/realtime`` speaks the transcription subset of OpenAI's Realtime protocol (beta ``transcription_session.*`` and
GA ``session.update`` with ``type: transcription``): ``input_audio_buffer.append`` (base64 PCM16, 24 kHz unless the
session says otherwise), ``.commit`` and ``.clear``; server VAD (the recogniser's endpointing) or manual commits;
events ``input_audio_buffer.speech_started`` / ``speech_stopped`` / ``committed``,
``conversation.item.input_audio_transcription.delta`` / ``.completed`` and ``error``.

``/v1/stream/asr?model=&sample_rate=16000``: binary frames of 16-bit little-endian mono PCM in; JSON events out
(``{"type": "partial"|"final", "text", "start", "end", ...}``); a text frame ``{"type": "end"}`` (or
``"commit"``: end the utterance now) -> the last finals and ``{"type": "done"}``.

``/v1/stream/tts``: text frames (plain text or ``{"text", "voice", "speed"}``) in; per text a JSON
``{"type": "audio.start", "sample_rate"}``, binary frames of 16-bit PCM as the voice speaks, ``{"type": "audio.done"}``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from ..audio.constants import SAMPLE_RATE
from ..errors import ConfigError, SeqSpeechError
from .app import APIError, Server, api_error
from .audio_out import pcm16
from .registry import ServedModel, UnknownModelError
from .speech import speak

REALTIME_RATE = 24000  # OpenAI Realtime's pcm16
MIN_RATE, MAX_RATE = 8000, 48000
CLOSE_POLICY = 1008


def _event_id() -> str:
    return "event_" + uuid.uuid4().hex[:20]


def _item_id() -> str:
    return "item_" + uuid.uuid4().hex[:20]


@dataclass
class AsrSession:
    """One WebSocket's recogniser, input resampler and the text already sent of the open utterance."""

    model: ServedModel
    recognizer: Any
    rate: int
    resampler: Any = None
    sent: str = ""
    item: str | None = None
    previous_item: str | None = None
    extra: dict = field(default_factory=dict)

    def samples(self, pcm: bytes) -> np.ndarray:
        """16-bit little-endian PCM at ``rate`` -> float32 at 16 kHz (AudioError for an odd byte count)."""
        from ..errors import AudioError

        if len(pcm) % 2:
            raise AudioError(f"an audio frame of {len(pcm)} bytes is not 16-bit PCM (an odd number of bytes)")
        x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        if self.rate != SAMPLE_RATE:
            if self.resampler is None:
                import soxr

                self.resampler = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32")
            x = self.resampler.resample_chunk(x)
        return x


def _decode_batch(items: list[tuple[Any, np.ndarray, str]]) -> list[list[Any]]:
    """Feed every item's samples to its recogniser, decode all recognisers in batched engine steps; each item gets
    the events its recogniser made (the last item of a recogniser gets them, earlier ones none). ``action``:
    "audio", "commit" (pad to a whole chunk, decode, end the utterance) or "finish"."""
    from ..asr.streaming import decode_streams

    recognizers: dict[int, Any] = {}
    last: dict[int, int] = {}
    for i, (rec, samples, action) in enumerate(items):
        rec.feed(samples)
        recognizers[id(rec)] = rec
        last[id(rec)] = i
        if action == "commit":
            buffered = round((rec.received_seconds - rec.decoded_seconds) * SAMPLE_RATE)
            pad = -buffered % rec.engine.chunk_samples
            rec.feed(np.zeros(pad, np.float32))
    order = list(recognizers.values())
    events = dict(zip(recognizers, decode_streams(order)))
    for rec, _, action in items:
        if action == "commit":
            events[id(rec)] += rec.reset()
        elif action == "finish" and not rec.finished:
            events[id(rec)] += rec.finish()
    return [events[id(rec)] if last[id(rec)] == i else [] for i, (rec, _, _) in enumerate(items)]


async def _decode(server: Server, session: AsrSession, samples: np.ndarray, action: str = "audio") -> list[Any]:
    batcher = server.batcher(session.model, "stream", _decode_batch)
    key = id(session.recognizer.engine)
    return await batcher.submit((session.recognizer, samples, action), key, timeout=server.config.request_timeout_s)


async def _new_session(server: Server, name: str | None, rate: int, *, endpoint: bool = True,
                       language: str | None = None, chunk_ms: float | None = None) -> AsrSession:
    from ..asr.streaming import EndpointConfig

    if not MIN_RATE <= rate <= MAX_RATE:
        raise ConfigError(f"sample_rate must be in {MIN_RATE}..{MAX_RATE} Hz, got {rate}")
    model = server.registry.find(name, "asr")
    if not model.can_stream:
        streamable = [n for n in server.registry.names("asr") if server.registry.models[n].can_stream]
        raise ConfigError(f"model {model.name!r} does not stream; streaming models here: "
                          f"{', '.join(streamable) or 'none'}")
    options: dict[str, Any] = {"endpoint": EndpointConfig(enabled=endpoint)}
    if chunk_ms:
        options["chunk_ms"] = chunk_ms
    if language:
        from ..text.tokenizers.languages import language_code

        code = language_code(language)
        if model.family == "whisper":
            options["language"] = code
        elif code != "en":
            raise ConfigError(f"model {model.name!r} hears English only, not {language!r}")
    loop = asyncio.get_running_loop()
    recognizer = await loop.run_in_executor(model.executor, lambda: model.get().stream(**options))
    return AsrSession(model, recognizer, rate)


def _error_event(exc: BaseException, event_id: str | None = None) -> dict[str, Any]:
    err = api_error(exc)
    return {"type": "error", "event_id": _event_id(),
            "error": {"type": err.TYPES.get(err.status, "server_error"), "code": err.code or str(err.status),
                      "message": err.message, "param": err.param, "event_id": event_id}}


class RealtimeSession:
    """The OpenAI Realtime transcription protocol over one WebSocket."""

    def __init__(self, ws: WebSocket, server: Server, model: str | None) -> None:
        self.ws, self.server = ws, server
        self.model_name = model
        self.language: str | None = None
        self.vad = True
        self.rate = REALTIME_RATE
        self.ga = False  # the client spoke GA (`session.update`): answer in its words
        self.asr: AsrSession | None = None

    async def send(self, event: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps({"event_id": _event_id(), **event}))

    def session_object(self) -> dict[str, Any]:
        turn = {"type": "server_vad", "silence_duration_ms": 800} if self.vad else None
        name = self.model_name or self.server.registry.default_asr
        if self.ga:
            return {"type": "transcription", "object": "realtime.transcription_session",
                    "audio": {"input": {"format": {"type": "audio/pcm", "rate": self.rate},
                                        "transcription": {"model": name, "language": self.language},
                                        "turn_detection": turn}}}
        return {"object": "realtime.transcription_session", "input_audio_format": "pcm16",
                "input_audio_transcription": {"model": name, "language": self.language}, "turn_detection": turn}

    async def run(self) -> None:
        self.asr = await _new_session(self.server, self.model_name, self.rate, endpoint=self.vad)
        await self.send({"type": "transcription_session.created", "session": self.session_object()})
        while True:
            try:
                message = await self.ws.receive_text()
            except WebSocketDisconnect:
                return
            except (KeyError, RuntimeError):  # a binary frame: this protocol is JSON text
                await self.send(_error_event(APIError(400, "send JSON text events, not binary frames")))
                continue
            try:
                event = json.loads(message)
                if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                    raise APIError(400, "an event must be a JSON object with a string 'type'")
            except json.JSONDecodeError as e:
                await self.send(_error_event(APIError(400, f"not valid JSON: {e}")))
                continue
            except APIError as e:
                await self.send(_error_event(e))
                continue
            try:
                await self.handle(event)
            except WebSocketDisconnect:
                return
            except Exception as e:  # noqa: BLE001 - told to the client as an error event; the session goes on
                await self.send(_error_event(e, event.get("event_id")))

    async def handle(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind in ("transcription_session.update", "session.update"):
            await self.update(event.get("session") or {}, ga=kind == "session.update")
        elif kind == "input_audio_buffer.append":
            audio = event.get("audio")
            if not isinstance(audio, str):
                raise APIError(400, "input_audio_buffer.append needs 'audio': base64 PCM16", param="audio")
            try:
                pcm = base64.b64decode(audio, validate=True)
            except (binascii.Error, ValueError) as e:
                raise APIError(400, f"'audio' is not valid base64: {e}", param="audio") from None
            assert self.asr is not None
            await self.emit(await _decode(self.server, self.asr, self.asr.samples(pcm)))
        elif kind == "input_audio_buffer.commit":
            assert self.asr is not None
            events = await _decode(self.server, self.asr, np.zeros(0, np.float32), "commit")
            await self.emit(events, committed=True)
        elif kind == "input_audio_buffer.clear":
            await self.restart()
            await self.send({"type": "input_audio_buffer.cleared"})
        else:
            raise APIError(400, f"unknown or unsupported event type {kind!r} (this server does transcription "
                                "sessions: session updates and input_audio_buffer.append/commit/clear)",
                           param="type")

    async def update(self, session: dict[str, Any], *, ga: bool) -> None:
        self.ga = ga
        if ga:
            audio_in = (session.get("audio") or {}).get("input") or {}
            fmt = audio_in.get("format") or {}
            if fmt and fmt.get("type", "audio/pcm") != "audio/pcm":
                raise APIError(400, f"audio format {fmt.get('type')!r} is not supported; use audio/pcm",
                               param="session.audio.input.format")
            rate = int(fmt.get("rate", self.rate))
            transcription = audio_in.get("transcription") or {}
            turn = audio_in.get("turn_detection", "keep")
        else:
            fmt_name = session.get("input_audio_format", "pcm16")
            if fmt_name != "pcm16":
                raise APIError(400, f"input_audio_format {fmt_name!r} is not supported; use pcm16",
                               param="session.input_audio_format")
            rate = self.rate
            transcription = session.get("input_audio_transcription") or {}
            turn = session.get("turn_detection", "keep")
        if turn != "keep":
            if turn is not None and turn.get("type", "server_vad") not in ("server_vad", "semantic_vad"):
                raise APIError(400, f"turn_detection type {turn.get('type')!r} is not supported",
                               param="turn_detection")
            self.vad = turn is not None
        self.model_name = transcription.get("model", self.model_name)
        self.language = transcription.get("language", self.language)
        self.rate = rate
        await self.restart()
        kind = "session.updated" if ga else "transcription_session.updated"
        await self.send({"type": kind, "session": self.session_object()})

    async def restart(self) -> None:
        """A fresh recogniser with the session's settings (drops what was buffered)."""
        self.asr = await _new_session(self.server, self.model_name, self.rate, endpoint=self.vad,
                                      language=self.language)

    async def emit(self, events: list[Any], committed: bool = False) -> None:
        """Our recogniser's partial/final events as Realtime events. Deltas only ever extend the text sent, so a
        revision of it (rare: the last word of a partial, which most revisions touch, is held back) shows only in
        the ``completed`` transcript, which is authoritative."""
        assert self.asr is not None
        s = self.asr
        closed = False
        for e in events:
            if s.item is None and e.text:
                s.item = _item_id()
                await self.send({"type": "input_audio_buffer.speech_started", "audio_start_ms": round(e.start * 1000),
                                 "item_id": s.item})
            if s.item is None:
                continue
            # a partial's last word is still in play (the next chunk often changes it): it is held back
            settled = e.text if e.type == "final" else e.text[: e.text.rfind(" ") + 1]
            if settled.startswith(s.sent) and len(settled) > len(s.sent):
                await self.send({"type": "conversation.item.input_audio_transcription.delta", "item_id": s.item,
                                 "content_index": 0, "delta": settled[len(s.sent):]})
                s.sent = settled
            if e.type == "final":
                await self.close_item(e.text, round(e.end * 1000))
                closed = True
        if committed and not closed:  # a commit without speech still commits an (empty) item, as OpenAI does
            s.item = s.item or _item_id()
            await self.close_item(s.sent, None)

    async def close_item(self, text: str, end_ms: int | None) -> None:
        assert self.asr is not None
        s = self.asr
        if end_ms is not None:
            await self.send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": end_ms, "item_id": s.item})
        await self.send({"type": "input_audio_buffer.committed", "previous_item_id": s.previous_item,
                         "item_id": s.item})
        await self.send({"type": "conversation.item.input_audio_transcription.completed", "item_id": s.item,
                         "content_index": 0, "transcript": text})
        s.previous_item, s.item, s.sent = s.item, None, ""


async def _refuse(ws: WebSocket, exc: BaseException) -> None:
    """Tell a client why its session cannot start (one JSON error), then close."""
    await ws.send_text(json.dumps(_error_event(exc)))
    await ws.close(code=CLOSE_POLICY, reason=api_error(exc).message[:120])


def _accept_protocol(ws: WebSocket) -> str | None:
    """Echo the Realtime subprotocol a browser client offers (its key travels in another one)."""
    offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    return "realtime" if "realtime" in offered else None


def add_streaming_routes(app: FastAPI, server: Server) -> None:
    @app.websocket("/v1/realtime")
    async def realtime(ws: WebSocket, model: str | None = None) -> None:
        await ws.accept(subprotocol=_accept_protocol(ws))
        session = RealtimeSession(ws, server, model)
        try:
            await session.run()
        except (SeqSpeechError, UnknownModelError, APIError) as e:
            await _refuse(ws, e)

    @app.websocket("/v1/stream/asr")
    async def stream_asr(ws: WebSocket, model: str | None = None, sample_rate: int = SAMPLE_RATE,
                         chunk_ms: float | None = None, language: str | None = None,
                         endpoint: bool = True) -> None:
        await ws.accept(subprotocol=_accept_protocol(ws))
        try:
            session = await _new_session(server, model, sample_rate, endpoint=endpoint, language=language,
                                         chunk_ms=chunk_ms)
        except (SeqSpeechError, UnknownModelError) as e:
            return await _refuse(ws, e)
        await ws.send_json({"type": "ready", "model": session.model.name, "sample_rate": sample_rate})
        while True:
            try:
                message = await ws.receive()
            except WebSocketDisconnect:
                return
            if message["type"] == "websocket.disconnect":
                return
            try:
                if message.get("bytes") is not None:
                    events = await _decode(server, session, session.samples(message["bytes"]))
                else:
                    control = _control(message.get("text") or "")
                    events = await _decode(server, session, np.zeros(0, np.float32), control)
                for e in events:
                    await ws.send_json(e.to_dict())
                if message.get("bytes") is None and control == "finish":
                    await ws.send_json({"type": "done", "text": session.recognizer.text()})
                    await ws.close()
                    return
            except WebSocketDisconnect:
                return
            except Exception as e:  # noqa: BLE001 - an error event; the stream goes on
                await ws.send_json(_error_event(e))

    @app.websocket("/v1/stream/tts")
    async def stream_tts(ws: WebSocket, voice: str | None = None, speed: float = 1.0) -> None:
        await ws.accept(subprotocol=_accept_protocol(ws))
        while True:
            try:
                message = await ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return
            try:
                if message.get("text") is None:
                    raise APIError(400, "send the text to speak as a text frame, not binary")
                request = _tts_request(message["text"], voice, speed)
                model = server.registry.find_voice(None, request["voice"])
                tts = model.get()
                await ws.send_json({"type": "audio.start", "sample_rate": tts.sample_rate, "voice": model.name})
                samples = 0
                async for frame in speak(server, model, request["text"], lambda x, _: pcm16(x),
                                         speed=request["speed"]):
                    samples += len(frame) // 2
                    await ws.send_bytes(frame)
                await ws.send_json({"type": "audio.done", "seconds": round(samples / tts.sample_rate, 3)})
            except WebSocketDisconnect:
                return
            except Exception as e:  # noqa: BLE001
                try:
                    await ws.send_json(_error_event(e))
                except (WebSocketDisconnect, RuntimeError):
                    return


def _control(text: str) -> str:
    """A text frame of /v1/stream/asr: ``{"type": "end"}`` / ``"end"`` -> "finish", ``commit`` -> "commit"."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text.strip()
    kind = value.get("type") if isinstance(value, dict) else value
    if kind in ("end", "finish", "eos"):
        return "finish"
    if kind == "commit":
        return "commit"
    raise APIError(400, f"unknown control message {text[:60]!r}: send binary PCM frames, {{\"type\": \"commit\"}} "
                        "or {\"type\": \"end\"}")


def _tts_request(text: str, voice: str | None, speed: float) -> dict[str, Any]:
    """A /v1/stream/tts text frame: plain text, or JSON ``{"text", "voice", "speed"}``."""
    request: dict[str, Any] = {"text": text, "voice": voice, "speed": speed}
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            body = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise APIError(400, f"a frame starting with '{{' must be JSON: {e}") from None
        unknown = set(body) - {"text", "voice", "speed"}
        if unknown:
            raise APIError(400, f"unknown field(s) {', '.join(sorted(unknown))}; send text, voice, speed")
        request.update({k: v for k, v in body.items() if v is not None})
    if not isinstance(request["text"], str) or not request["text"].strip():
        raise APIError(400, "the text to speak is empty")
    if not isinstance(request["speed"], (int, float)) or isinstance(request["speed"], bool):
        raise APIError(400, f"speed must be a number, got {request['speed']!r}")
    return request
