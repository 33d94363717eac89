"""Helpers of the serving tests: a live uvicorn server in a thread (``start_live``), and fake models: a recogniser
that takes its time and records its batches, a voice that speaks slowly and notices when it is stopped."""

from __future__ import annotations

import socket
import threading
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqspeech.asr.transcribe import Segment, Transcript
from seqspeech.serving.registry import ServedModel


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



class SlowASR:
    """``transcribe_batch`` sleeps ``delay`` seconds per batch and answers "heard N samples"; ``batches`` records
    the size of each batch and ``heard`` every input's sample count."""

    family = "fake"

    def __init__(self, delay: float = 0.2) -> None:
        self.delay = delay
        self.batches: list[int] = []
        self.heard: list[int] = []

    def transcribe(self, audio: Any, **options: Any) -> Transcript:
        return self.transcribe_batch([audio], **options)[0]

    def transcribe_batch(self, audios: list[np.ndarray], **options: Any) -> list[Transcript]:
        time.sleep(self.delay)
        self.batches.append(len(audios))
        self.heard += [len(a) for a in audios]
        return [Transcript(text=f"heard {len(a)} samples", language="en", duration=len(a) / 16000,
                           segments=[Segment(0.0, len(a) / 16000, f"heard {len(a)} samples", [], 0.0, 0.0, 1.0,
                                             0.0)]) for a in audios]


class SlowVoice:
    """A voice with :class:`~seqspeech.tts.synthesizer.Synthesizer`'s stream protocol: a stream is ``chunks``
    chunks of 0.1 s; one ``step_streams`` call takes ``delay`` seconds however many streams it steps (a batched
    pass). ``made`` counts the chunks made, ``batches`` the size of every step."""

    sample_rate = 16000

    def __init__(self, chunks: int = 50, delay: float = 0.05) -> None:
        self.chunks, self.delay = chunks, delay
        self.made = 0
        self.batches: list[int] = []

    def open_stream(self, text: str, **options: Any) -> Any:
        return types.SimpleNamespace(left=self.chunks, done=False)

    def step_streams(self, streams: list[Any]) -> list[np.ndarray]:
        time.sleep(self.delay)
        self.batches.append(len(streams))
        for stream in streams:
            stream.left -= 1
            stream.done = stream.left == 0
            self.made += 1
        return [np.full(1600, 0.1, np.float32) for _ in streams]

    def synthesize_stream(self, text: str, **options: Any) -> Iterator[np.ndarray]:
        stream = self.open_stream(text)
        while not stream.done:
            yield self.step_streams([stream])[0]


def fake_asr(name: str = "fake-asr", delay: float = 0.2) -> tuple[ServedModel, SlowASR]:
    asr = SlowASR(delay)
    return ServedModel(name, "asr", "fake", lambda: asr), asr


def fake_voice(name: str = "fake-voice", **kwargs: Any) -> tuple[ServedModel, SlowVoice]:
    voice = SlowVoice(**kwargs)
    return ServedModel(name, "tts", "fake", lambda: voice), voice


def wav_bytes(seconds: float = 0.5, rate: int = 16000) -> bytes:
    import io

    import soundfile as sf

    buf = io.BytesIO()
    t = np.arange(round(seconds * rate)) / rate
    sf.write(buf, (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()
