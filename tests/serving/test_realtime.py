"""WebSocket sessions: OpenAI's Realtime transcription protocol (beta and GA spellings, server VAD and manual commit),
the plain PCM ASR stream and the TTS stream, with the real streaming models."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from seqspeech.audio.io import load_audio
from seqspeech.metrics.wer import cer

SENTENCE = "the quick brown fox jumps over the lazy dog"
AUTH = {"Authorization": "Bearer test-key"}


def _ws(real_server, path: str, **kwargs):
    return connect(real_server.url.replace("http", "ws") + path, additional_headers=AUTH, open_timeout=30,
                   **kwargs)


@pytest.fixture(scope="module")
def clip(synth_speech) -> np.ndarray:
    return load_audio(synth_speech(SENTENCE, engine="flite"), 16000)


def _pcm(samples: np.ndarray, rate: int) -> bytes:
    from seqspeech.audio.io import load_audio as resample

    x = resample(samples, rate, source_sr=16000) if rate != 16000 else samples
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def _events_until(ws, kind: str, limit: int = 400) -> list[dict]:
    out = []
    for _ in range(limit):
        event = json.loads(ws.recv(timeout=60))
        out.append(event)
        if event["type"] == kind:
            return out
    raise AssertionError(f"no {kind} in {[e['type'] for e in out]}")


def _append_all(ws, pcm: bytes, block: int = 4800) -> None:
    for i in range(0, len(pcm), block):
        ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i:i + block]).decode()}))


def test_realtime_manual_commit_beta_protocol(real_server, clip) -> None:
    with _ws(real_server, "/v1/realtime?intent=transcription") as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "transcription_session.created"
        ws.send(json.dumps({"type": "transcription_session.update", "session": {
            "input_audio_format": "pcm16", "input_audio_transcription": {"model": "rnnt-synth-en"},
            "turn_detection": None}}))
        updated = _events_until(ws, "transcription_session.updated")[-1]
        assert updated["session"]["turn_detection"] is None
        _append_all(ws, _pcm(clip, 24000))
        ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        events = _events_until(ws, "conversation.item.input_audio_transcription.completed")
    kinds = [e["type"] for e in events]
    assert "input_audio_buffer.committed" in kinds and "input_audio_buffer.speech_started" in kinds
    done = events[-1]
    assert cer([SENTENCE], [done["transcript"]]) < 0.25, done["transcript"]
    deltas = "".join(e["delta"] for e in events if e["type"].endswith("transcription.delta"))
    # deltas stream the partial text; the completed transcript is the final (rescored) reading, which may differ
    assert deltas and cer([done["transcript"]], [deltas]) < 0.3, (deltas, done["transcript"])


def test_realtime_server_vad_ga_protocol_and_bad_events(real_server, clip) -> None:
    with _ws(real_server, "/v1/realtime") as ws:
        json.loads(ws.recv(timeout=30))
        ws.send(json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": 16000},
            "transcription": {"model": "rnnt-synth-en", "language": "en"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 800}}}}}))
        assert _events_until(ws, "session.updated")[-1]["session"]["audio"]["input"]["format"]["rate"] == 16000
        ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "@@not base64@@"}))
        err = json.loads(ws.recv(timeout=30))
        assert err["type"] == "error" and "base64" in err["error"]["message"]
        ws.send("{not json")
        assert json.loads(ws.recv(timeout=30))["type"] == "error"
        ws.send(json.dumps({"type": "response.create"}))
        assert "unsupported event" in json.loads(ws.recv(timeout=30))["error"]["message"]
        silence = np.zeros(16000 * 2, np.float32)
        _append_all(ws, _pcm(np.concatenate([clip, silence]), 16000), block=3200)
        events = _events_until(ws, "conversation.item.input_audio_transcription.completed")
    stopped = [e for e in events if e["type"] == "input_audio_buffer.speech_stopped"]
    assert stopped and stopped[0]["audio_end_ms"] <= len(clip) / 16 + 500
    assert cer([SENTENCE], [events[-1]["transcript"]]) < 0.25


def test_realtime_needs_the_key_and_a_streaming_model(real_server) -> None:
    with pytest.raises(InvalidStatus):
        connect(real_server.url.replace("http", "ws") + "/v1/realtime", open_timeout=10)
    key_protocol = ["realtime", "openai-insecure-api-key.test-key"]
    with connect(real_server.url.replace("http", "ws") + "/v1/realtime?model=ctc-conformer-synth-en",
                 subprotocols=key_protocol, open_timeout=30) as ws:
        event = json.loads(ws.recv(timeout=30))
        assert event["type"] == "error" and "does not stream" in event["error"]["message"]


def test_stream_asr_pcm_frames_partials_and_finals(real_server, clip) -> None:
    with _ws(real_server, "/v1/stream/asr?model=rnnt-synth-en&sample_rate=16000") as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        pcm = _pcm(clip, 16000)
        for i in range(0, len(pcm), 6400):
            ws.send(pcm[i:i + 6400])
        ws.send(json.dumps({"type": "end"}))
        events = _events_until(ws, "done")
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)  # the server closed the stream
    partials = [e for e in events if e["type"] == "partial"]
    finals = [e for e in events if e["type"] == "final"]
    assert partials and finals
    assert cer([SENTENCE], [events[-1]["text"]]) < 0.15
    assert finals[-1]["end"] <= len(clip) / 16000 + 0.5


def test_stream_asr_bad_frames_get_error_events(real_server) -> None:
    with _ws(real_server, "/v1/stream/asr?model=rnnt-synth-en") as ws:
        json.loads(ws.recv(timeout=30))
        ws.send(b"\x01\x02\x03")
        assert "odd number of bytes" in json.loads(ws.recv(timeout=30))["error"]["message"]
        ws.send("hello?")
        assert "unknown control message" in json.loads(ws.recv(timeout=30))["error"]["message"]
    with _ws(real_server, "/v1/stream/asr?model=nope") as ws:
        assert json.loads(ws.recv(timeout=30))["error"]["code"] == "model_not_found"


def test_stream_tts_text_in_audio_frames_out(real_server) -> None:
    from seqspeech.metrics.wer import wer

    with _ws(real_server, "/v1/stream/tts") as ws:
        ws.send(json.dumps({"text": "Good evening, everyone.", "voice": "slt", "speed": 1.0}))
        start = json.loads(ws.recv(timeout=60))
        assert start["type"] == "audio.start" and start["sample_rate"] == 16000
        frames = []
        while isinstance(message := ws.recv(timeout=60), bytes):
            frames.append(message)
        done = json.loads(message)
        ws.send("")
        assert "empty" in json.loads(ws.recv(timeout=30))["error"]["message"]
    audio = np.frombuffer(b"".join(frames), dtype="<i2").astype(np.float32) / 32768
    assert done["type"] == "audio.done" and done["seconds"] == pytest.approx(len(audio) / 16000, abs=1e-3)
    assert len(frames) >= 2 and 0.8 < len(audio) / 16000 < 4
    import io

    import httpx2
    import soundfile as sf

    wav = io.BytesIO()
    sf.write(wav, audio, 16000, format="WAV")
    heard = httpx2.post(real_server.url + "/v1/audio/transcriptions", headers=AUTH, files={"file": ("tts.wav",
                        wav.getvalue())}, timeout=60).json()["text"]
    assert wer(["good evening everyone"], [heard]) <= 0.34, heard
