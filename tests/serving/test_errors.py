"""Bad requests get the right 4xx with OpenAI's error body (never a 500 or a traceback); overload gets 503 only;
a client that goes away frees its slot; timeouts answer 504."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import socket
import threading
import time

import httpx2 as httpx
import openai
import pytest
from serving_fakes import fake_asr, fake_voice, wav_bytes

KEY = {"Authorization": "Bearer test-key"}


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    assert "Traceback" not in body["error"]["message"] and "\n" not in body["error"]["message"]
    return body["error"]["message"]


def _post_file(url: str, data: bytes, *, name: str = "clip.wav", fields: dict | None = None,
               headers: dict | None = None) -> httpx.Response:
    return httpx.post(url + "/v1/audio/transcriptions", files={"file": (name, data)}, data=fields or {},
                      headers=KEY if headers is None else headers, timeout=60)


# -- the real server: auth, uploads, content types ---------------------------------------------------------------


def test_auth_missing_or_wrong_key_is_401_but_health_is_public(real_server) -> None:
    assert httpx.get(real_server.url + "/health").status_code == 200
    assert "API key" in _error(httpx.get(real_server.url + "/v1/models"), 401)
    _error(httpx.get(real_server.url + "/v1/models", headers={"Authorization": "Bearer nope"}), 401)
    _error(httpx.get(real_server.url + "/metrics"), 401)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=real_server.url + "/v1", api_key="wrong", max_retries=0).models.list()


def test_unreadable_empty_and_wrong_uploads_are_400_naming_the_file(real_server) -> None:
    message = _error(_post_file(real_server.url, b"this is not audio at all" * 10, name="notes.wav"), 400)
    assert message.startswith("notes.wav:")
    assert "empty (0 bytes)" in _error(_post_file(real_server.url, b"", name="silence.wav"), 400)
    truncated = wav_bytes(1.0)[:30]
    assert _error(_post_file(real_server.url, truncated, name="cut.wav"), 400).startswith("cut.wav:")


def test_missing_file_unknown_field_and_bad_values_are_400(real_server) -> None:
    r = httpx.post(real_server.url + "/v1/audio/transcriptions", data={"model": "whisper-1"}, files={"x": ("a", b"1")},
                   headers=KEY)
    assert "unknown field" in _error(r, 400)
    r = httpx.post(real_server.url + "/v1/audio/transcriptions", data={"model": "whisper-1"},
                   files={"file2": ("a", b"1")}, headers=KEY)
    _error(r, 400)
    clip = wav_bytes()
    assert "response_format" in _error(_post_file(real_server.url, clip, fields={"response_format": "xml"}), 400)
    assert "temperature" in _error(_post_file(real_server.url, clip, fields={"temperature": "hot"}), 400)
    assert "verbose_json" in _error(_post_file(real_server.url, clip, fields={"timestamp_granularities[]": "word"}),
                                    400)


def test_wrong_content_type_is_415_and_malformed_multipart_400(real_server) -> None:
    r = httpx.post(real_server.url + "/v1/audio/transcriptions", json={"file": "x"}, headers=KEY)
    assert "multipart/form-data" in _error(r, 415)
    r = httpx.post(real_server.url + "/v1/audio/transcriptions", content=b"--xyz\r\nbroken",
                   headers={**KEY, "content-type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 400, r.text
    r = httpx.post(real_server.url + "/v1/audio/speech", content=b"input=hi", headers={
        **KEY, "content-type": "application/x-www-form-urlencoded"})
    _error(r, 415)


def test_upload_over_the_limit_is_413_by_header_and_by_stream(real_server) -> None:
    huge = b"\0" * (3 * 1024 * 1024)  # the test server's limit is 2 MB
    assert "upload limit" in _error(_post_file(real_server.url, huge), 413)

    def chunks():  # no Content-Length: the limit is counted as the body arrives
        yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
        for _ in range(48):
            yield b"\0" * 65536
        yield b"\r\n--xyz--\r\n"

    r = httpx.post(real_server.url + "/v1/audio/transcriptions", content=chunks(),
                   headers={**KEY, "content-type": "multipart/form-data; boundary=xyz"})
    _error(r, 413)


def test_unknown_model_or_a_path_is_404(real_server) -> None:
    clip = wav_bytes()
    for name in ("no-such-model", "models/slt", "/etc/passwd", "../models/ctc-conformer-synth-en"):
        assert "not served here" in _error(_post_file(real_server.url, clip, fields={"model": name}), 404)
    r = httpx.post(real_server.url + "/v1/audio/speech", json={"input": "hi", "model": "/tmp/voice"}, headers=KEY)
    _error(r, 404)
    r = httpx.post(real_server.url + "/v1/audio/speech", json={"input": "hi", "voice": "darth"}, headers=KEY)
    assert "voice 'darth'" in _error(r, 404)


def test_speech_bad_bodies_are_400(real_server) -> None:
    url = real_server.url + "/v1/audio/speech"
    cases = [({"input": ""}, "non-empty"), ({"input": "hi", "speed": 9}, "speed"),
             ({"input": "hi", "response_format": "ogg"}, "response_format"), ({"input": 3}, "input must be"),
             ({"input": "hi", "colour": "red"}, "unknown field"), ({"input": "x" * 5000}, "at most"),
             ({"input": "hi", "stream_format": "ws"}, "stream_format"), ({"input": "%%% ***"}, "")]
    for body, words in cases:
        assert words in _error(httpx.post(url, json=body, headers=KEY), 400)
    assert "JSON" in _error(httpx.post(url, content=b"{not json", headers={**KEY, "content-type":
                                                                            "application/json"}), 400)
    assert "transcri" not in _error(httpx.post(url, json={"input": "hi", "model": "whisper-1"}, headers=KEY), 400)


# -- fakes: overload, disconnects, timeouts, batching -------------------------------------------------------------


def test_overload_answers_503_with_retry_after_and_nothing_else(live_server) -> None:
    model, _ = fake_asr(delay=0.4)
    live = live_server([model], max_queue=3, max_batch=1)
    clip = wav_bytes()
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda _: _post_file(live.url, clip, headers={}), range(12)))
    codes = sorted(r.status_code for r in responses)
    assert set(codes) == {200, 503} and codes.count(200) >= 3, codes
    busy = [r for r in responses if r.status_code == 503]
    assert all(r.headers["retry-after"] == "1" for r in busy)
    assert "busy" in _error(busy[0], 503)
    assert live.state.inflight["fake-asr"].count == 0


def test_requests_arriving_together_share_a_batch(live_server) -> None:
    model, asr = fake_asr(delay=0.3)
    live = live_server([model], batch_window_ms=50, max_batch=8)
    clip = wav_bytes()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        texts = list(pool.map(lambda _: _post_file(live.url, clip, headers={}).json()["text"], range(8)))
    assert texts == [f"heard {8000} samples"] * 8
    assert max(asr.batches) >= 4 and sum(asr.batches) == 8, asr.batches


def test_batching_off_runs_one_request_at_a_time(live_server) -> None:
    model, asr = fake_asr(delay=0.05)
    live = live_server([model], max_batch=1)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: _post_file(live.url, wav_bytes(), headers={}), range(4)))
    assert asr.batches == [1, 1, 1, 1]


def test_a_queued_request_whose_client_left_never_runs(live_server) -> None:
    model, asr = fake_asr(delay=0.8)
    live = live_server([model], max_batch=1)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(_post_file, live.url, wav_bytes(1.0), headers={})
        time.sleep(0.2)  # the first runs; the second queues behind it, then its client hangs up
        _abandoned_upload(live.url, wav_bytes(0.25))
        assert first.result().status_code == 200
    time.sleep(1.0)
    assert asr.heard == [16000], asr.heard  # the 0.25 s upload was dropped from the queue
    assert live.state.inflight["fake-asr"].count == 0


def _abandoned_upload(url: str, clip: bytes) -> None:
    """Send a whole transcription request by hand, then close the socket without reading the answer."""
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode() + clip + f"\r\n--{boundary}--\r\n".encode()
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; "
                  f"boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        time.sleep(0.2)


def test_client_disconnect_mid_speech_stream_frees_the_slot(live_server) -> None:
    model, voice = fake_voice(chunks=200, delay=0.02)
    live = live_server([model])
    with httpx.stream("POST", live.url + "/v1/audio/speech", json={"input": "talk", "response_format": "pcm"},
                      timeout=30) as r:
        assert r.status_code == 200
        next(r.iter_raw())
    deadline = time.monotonic() + 5
    while live.state.inflight["fake-voice"].count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live.state.inflight["fake-voice"].count == 0
    made = voice.made
    time.sleep(0.3)
    assert voice.made == made < 200, "the voice kept speaking after the client left"


def test_request_over_the_time_limit_is_504(live_server) -> None:
    model, _ = fake_asr(delay=1.5)
    live = live_server([model], request_timeout_s=0.3)
    assert "limit" in _error(_post_file(live.url, wav_bytes(), headers={}), 504)


def test_batcher_drops_cancelled_jobs_and_fails_items_one_by_one() -> None:
    from seqspeech.serving.batching import DynamicBatcher, InFlight, Overloaded

    ran: list[list[int]] = []

    def run(items: list[int]) -> list:
        time.sleep(0.05)
        ran.append(items)
        return [ValueError("odd") if i % 2 else i * 10 for i in items]

    async def main() -> None:
        pool = concurrent.futures.ThreadPoolExecutor(1)
        inflight = InFlight("m", 5)
        batcher = DynamicBatcher(run, pool, inflight, window_s=0.02, max_batch=3)
        results = await asyncio.gather(*(batcher.submit(i) for i in range(4)), return_exceptions=True)
        assert results[0] == 0 and results[2] == 20
        assert isinstance(results[1], ValueError) and isinstance(results[3], ValueError)
        assert ran == [[0, 1, 2], [3]]
        a = asyncio.ensure_future(batcher.submit(100))
        b = asyncio.ensure_future(batcher.submit(200, key="other"))
        await asyncio.sleep(0.001)
        b.cancel()  # queued, not started: it never runs
        assert await a == 1000
        await asyncio.sleep(0.1)
        assert ran[-1] == [100] and all(200 not in r for r in ran)
        assert inflight.count == 0
        jobs = [asyncio.ensure_future(batcher.submit(i)) for i in range(5)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            await batcher.submit(99)
        await asyncio.gather(*jobs, return_exceptions=True)
        pool.shutdown()

    asyncio.run(main())


def test_errors_in_json_are_one_line_and_never_500_for_client_mistakes(real_server) -> None:
    r = httpx.get(real_server.url + "/v1/nothing-here", headers=KEY)
    assert r.status_code == 404 and json.loads(r.text)["error"]["message"]
    r = httpx.get(real_server.url + "/v1/audio/speech", headers=KEY)
    assert r.status_code == 405


def test_concurrent_speech_streams_share_batched_steps(live_server) -> None:
    """Two streams of one voice are stepped together: each step of the voice serves both, so both end in about the
    time of one (not one after the other), and the second's first audio comes early."""
    model, voice = fake_voice(chunks=30, delay=0.04)  # 1.2 s of steps per stream
    live = live_server([model])

    def first_and_last() -> tuple[float, float]:
        t0 = time.perf_counter()
        first = None
        with httpx.stream("POST", live.url + "/v1/audio/speech", json={"input": "hi", "response_format": "pcm"},
                          timeout=30) as r:
            for _ in r.iter_raw():
                first = first or time.perf_counter() - t0
        return first, time.perf_counter() - t0

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        (first_a, last_a), (first_b, last_b) = pool.map(lambda _: first_and_last(), range(2))
    assert voice.made == 60 and max(voice.batches) == 2
    assert max(first_a, first_b) < 0.5 and max(last_a, last_b) < 2.2, (first_a, last_a, first_b, last_b)


def test_a_finished_speech_stream_frees_its_slot_before_the_client_sees_the_end() -> None:
    """The slot of a speech stream is free when its last bytes have been handed out, not some time later (after the
    model's thread got round to the cleanup, when the client may already have sent its next request and found the
    queue full)."""
    from seqspeech.serving.app import create_app
    from seqspeech.serving.config import ServerConfig
    from seqspeech.serving.speech import speak

    model, _ = fake_voice(chunks=3, delay=0.01)
    server = create_app(ServerConfig(max_queue=1), models=[model]).server

    async def main() -> None:
        for _ in range(3):
            chunks = [c async for c in speak(server, model, "hi", lambda x, last: x.tobytes())]
            assert len(chunks) == 3
            assert server.inflight[model.name].count == 0

    asyncio.run(main())
