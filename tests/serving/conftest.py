"""A live server on 127.0.0.1 for the serving tests: real models (session-wide) or fakes (per test).

``live_server(app)`` runs uvicorn in a thread on a free port and returns its base URL; ``real_server`` serves
whisper-tiny.en, the slt voice, rnnt-synth-en and ctc-conformer-synth-en once for the whole session.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from serving_fakes import Live, start_live

from seqspeech.serving.app import create_app
from seqspeech.serving.config import ServerConfig
from seqspeech.serving.registry import ServedModel

REAL_MODELS = ("whisper-tiny.en", "slt", "rnnt-synth-en", "ctc-conformer-synth-en")


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
