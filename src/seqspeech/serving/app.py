"""The OpenAI-compatible speech server: ``create_app(config)`` -> a FastAPI app; ``run_server(config)`` serves it.

Routes (all but ``/health`` and the web page need ``Authorization: Bearer KEY`` when the server has a key):

    POST /v1/audio/transcriptions   multipart upload -> text (json, text, srt, vtt, verbose_json; SSE with stream=true)
    POST /v1/audio/translations     the same, Whisper's translate task (English-only models: their English)
    POST /v1/audio/speech           JSON -> audio streamed as it is spoken (mp3, opus, aac, flac, wav, pcm; or SSE)
    GET  /v1/models                 the served models and OpenAI's names for the defaults
    WS   /v1/realtime               OpenAI Realtime, transcription sessions
    WS   /v1/stream/asr             PCM frames in, partial/final JSON out
    WS   /v1/stream/tts             text in, audio frames out
    GET  /health, /metrics, /

The server is a thin adapter (ARCHITECTURE principle 12): routes turn HTTP into the Python API (``transcribe_batch``,
``synthesize_stream``, ``stream()``); :mod:`.batching` gathers requests per model. Errors are OpenAI's JSON shape
``{"error": {"message", "type", "param", "code"}}``: 4xx for anything a client did, never a traceback.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import SeqSpeechError
from .batching import ClientGone, DynamicBatcher, InFlight, Overloaded, RequestTimeout
from .config import ServerConfig
from .metrics import Metrics
from .registry import ModelRegistry, ServedModel, UnknownModelError, model_from_zoo

log = logging.getLogger("seqspeech.serving")

PUBLIC_PATHS = ("/health", "/", "/index.html")
WEB_DIR = Path(__file__).parent / "web"


class APIError(Exception):
    """An answer with an HTTP status and OpenAI's error body."""

    TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error",
             413: "invalid_request_error", 415: "invalid_request_error", 499: "client_closed_request",
             503: "server_overloaded", 504: "timeout"}

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.headers = status, message, param, code, headers

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.TYPES.get(self.status, "server_error"),
                          "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def sse(event: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``event`` as JSON (OpenAI's streams: ``data: {...}`` and a blank line)."""
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


def api_error(exc: BaseException) -> APIError:
    """Any exception -> the APIError a client gets (500 only for our bugs, with a one-line message)."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, UnknownModelError):
        return APIError(404, str(exc), param="model", code="model_not_found")
    if isinstance(exc, Overloaded):
        return APIError(503, str(exc), code="overloaded", headers={"Retry-After": str(exc.retry_after_s)})
    if isinstance(exc, RequestTimeout):
        return APIError(504, str(exc), code="timeout")
    if isinstance(exc, ClientGone):
        return APIError(499, "the client disconnected")
    if isinstance(exc, SeqSpeechError):
        return APIError(400, " ".join(str(exc).split()))
    log.error("unexpected error", exc_info=exc)
    return APIError(500, f"internal error ({type(exc).__name__}); the server log has the details", code="internal")


class Server:
    """What the routes share: config, models, one batcher and queue bound per model, metrics."""

    def __init__(self, config: ServerConfig, registry: ModelRegistry) -> None:
        self.config, self.registry = config, registry
        self.metrics = Metrics()
        self.inflight: dict[str, InFlight] = {
            name: InFlight(name, config.max_queue, self.metrics.queue_depth.labels(model=name).set)
            for name in registry.models}
        self._batchers: dict[tuple[str, str], DynamicBatcher] = {}
        self.started = time.time()

    def batcher(self, model: ServedModel, purpose: str, run_batch: Any) -> DynamicBatcher:
        """The one batcher of ``model`` for ``purpose`` (e.g. "transcribe", "stream"), made on first use (inside
        the event loop). Batchers of one model share its thread and its queue bound."""
        key = (model.name, purpose)
        if key not in self._batchers:
            def on_batch(size: int, seconds: float, name: str = model.name) -> None:
                self.metrics.batch_size.labels(model=name).observe(size)
                self.metrics.batch_seconds.labels(model=name).observe(seconds)

            self._batchers[key] = DynamicBatcher(
                run_batch, model.executor, self.inflight[model.name], window_s=self.config.batch_window_ms / 1000,
                max_batch=self.config.max_batch, on_batch=on_batch)
        return self._batchers[key]

    def check_key(self, authorization: str | None, protocols: Sequence[str] = ()) -> bool:
        """Whether a request may pass: no key set, ``Bearer KEY``, or (browsers' WebSockets, as OpenAI's Realtime
        accepts) a subprotocol ``openai-insecure-api-key.KEY``."""
        key = self.config.api_key
        if key is None:
            return True
        offered = []
        if authorization and authorization.startswith("Bearer "):
            offered.append(authorization.removeprefix("Bearer ").strip())
        offered += [p.strip().removeprefix("openai-insecure-api-key.") for p in protocols
                    if p.strip().startswith("openai-insecure-api-key.")]
        return any(hmac.compare_digest(o.encode(), key.encode()) for o in offered)


class Guard:
    """Pure ASGI middleware: the API key (401, or a refused WebSocket handshake), the upload limit (413, from
    Content-Length at once, or counted as the body streams), and request metrics."""

    def __init__(self, app: Any, server: Server) -> None:
        self.app, self.server = app, server

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = scope.get("path", "")
        if path not in PUBLIC_PATHS:
            protocols = headers.get("sec-websocket-protocol", "").split(",") if scope["type"] == "websocket" else []
            if not self.server.check_key(headers.get("authorization"), protocols):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008, "reason": "invalid or missing API key"})
                    return
                self.server.metrics.requests.labels(route=_route(path), status="401").inc()
                err = APIError(401, "invalid or missing API key: send the header 'Authorization: Bearer KEY'",
                               code="invalid_api_key")
                return await err.response()(scope, receive, send)
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        limit = self.server.config.max_upload_bytes
        length = headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            self.server.metrics.requests.labels(route=_route(path), status="413").inc()
            return await _too_large(limit).response()(scope, receive, send)
        seen = 0

        async def counted_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _too_large(limit)
            return message

        status = {"code": 500}

        async def tracked_send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        began = time.perf_counter()
        try:
            await self.app(scope, counted_receive, tracked_send)
        finally:
            route = _route(path)
            self.server.metrics.requests.labels(route=route, status=str(status["code"])).inc()
            self.server.metrics.latency.labels(route=route).observe(time.perf_counter() - began)


KNOWN_ROUTES = ("/v1/audio/transcriptions", "/v1/audio/translations", "/v1/audio/speech", "/v1/models", "/health",
                "/metrics", "/")


def _route(path: str) -> str:
    """A metrics label: the route, or "other" (unknown paths must not grow the label set)."""
    return path if path in KNOWN_ROUTES else "other"


def _too_large(limit: int) -> APIError:
    return APIError(413, f"the request body is larger than this server's upload limit of {limit / 2**20:g} MB",
                    code="upload_too_large")


def create_app(config: ServerConfig = ServerConfig(), models: Sequence[ServedModel] | None = None) -> FastAPI:
    """The app for ``config`` (models: ``config.models`` from the zoo, loaded now; or ready :class:`ServedModel`
    objects, e.g. in tests)."""
    if config.threads:
        import torch

        torch.set_num_threads(config.threads)
    served = list(models) if models is not None else [
        model_from_zoo(m, device=config.device, backend=config.backend) for m in config.models]
    registry = ModelRegistry(served)
    registry.load_all()
    server = Server(config, registry)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        registry.close()

    app = FastAPI(title="seqspeech", description="OpenAI-compatible speech server", docs_url=None, redoc_url=None,
                  lifespan=lifespan)
    app.state.server = server

    @app.exception_handler(Exception)
    async def _any(request: Request, exc: Exception) -> JSONResponse:
        return api_error(exc).response()

    for exc_type in (APIError, SeqSpeechError, UnknownModelError, Overloaded, RequestTimeout, ClientGone):
        app.add_exception_handler(exc_type, _any)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return APIError(400, f"{where or 'request'}: {first.get('msg', 'invalid')}", param=where or None).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return APIError(exc.status_code, str(exc.detail)).response()

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "models": registry.names(), "uptime_s": round(time.time() - server.started, 1)}

    @app.get("/v1/models")
    async def list_models() -> dict:
        created = int(server.started)
        data = [{"id": n, "object": "model", "created": created, "owned_by": "seqspeech", "kind": m.kind,
                 "family": m.family} for n, m in registry.models.items()]
        data += [{"id": alias, "object": "model", "created": created, "owned_by": "seqspeech", "alias_of": target,
                  "kind": registry.models[target].kind} for alias, target in registry.aliases().items()]
        return {"object": "list", "data": data}

    @app.get("/v1/models/{name}")
    async def get_model(name: str) -> dict:
        listed = {m["id"]: m for m in (await list_models())["data"]}
        if name not in listed:
            raise UnknownModelError(f"model {name!r} is not served here")
        return listed[name]

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(server.metrics.render(), media_type=server.metrics.content_type)

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        page = WEB_DIR / "index.html"
        if not page.is_file():
            return PlainTextResponse("seqspeech server: see /v1/models")
        return HTMLResponse(page.read_text(encoding="utf-8"))

    from .realtime import add_streaming_routes
    from .speech import add_speech_routes
    from .transcriptions import add_transcription_routes

    add_transcription_routes(app, server)
    add_speech_routes(app, server)
    add_streaming_routes(app, server)
    return Guard(app, server)  # type: ignore[return-value]


def run_server(config: ServerConfig) -> None:
    """Serve until interrupted (uvicorn, one process; models compute on their own threads)."""
    import uvicorn

    app = create_app(config)
    print(f"seqspeech: serving {', '.join(config.models)} on http://{config.host}:{config.port} "
          f"(web page at /, API at /v1)", flush=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", ws="websockets-sansio")
