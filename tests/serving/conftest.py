"""A live server on 127.0.0.1 for the serving tests: real models (session-wide) or fakes (per test).

``live_server(app)`` runs uvicorn in a thread on a free port and returns its base URL; ``real_server`` serves
whisper-tiny.en, the slt voice, rnnt-synth-en and ctc-conformer-synth-en once for the whole session.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from seqspeech.serving.app import create_app
from seqspeech.serving.config import ServerConfig
from seqspeech.serving.registry import ServedModel

REAL_MODELS = ("whisper-tiny.en", "slt", "rnnt-synth-en", "ctc-conformer-synth-en")


@dataclass
class Live:
    url: str
    app: Any
    server: Any
    thread: threading.Thread

    @property
    def state(self) -> Any:
        return self.app.server  # the Guard's Server

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_live(app: Any) -> Live:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", ws="websockets-sansio", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return Live(f"http://127.0.0.1:{port}", app, server, thread)


@pytest.fixture(scope="session")
def real_server() -> Iterator[Live]:
    app = create_app(ServerConfig(models=REAL_MODELS, api_key="test-key", max_upload_mb=2.0))
    live = start_live(app)
    yield live
    live.stop()


@pytest.fixture
def live_server() -> Iterator[Any]:
    """``live_server(models, **config) -> Live`` for fake models; every server is stopped after the test."""
    started: list[Live] = []

    def make(models: list[ServedModel], **config: Any) -> Live:
        live = start_live(create_app(ServerConfig(**config), models=models))
        started.append(live)
        return live

    yield make
    for live in started:
        live.stop()
