"""The official ``openai`` client against a live server with the real models: every transcription response format,
SSE streaming, translations, speech in every audio format (decoded by ffmpeg), the models list."""

from __future__ import annotations

import io
import json
import subprocess

import httpx2 as httpx
import numpy as np
import openai
import pytest
import soundfile as sf

from seqspeech.metrics.wer import cer, wer

SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def client(real_server) -> openai.OpenAI:
    return openai.OpenAI(base_url=real_server.url + "/v1", api_key="test-key", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def clip(synth_speech) -> bytes:
    return synth_speech(SENTENCE).read_bytes()


def test_models_list_has_served_models_and_openai_names(client) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"whisper-tiny.en", "slt", "rnnt-synth-en", "ctc-conformer-synth-en"} <= ids
    assert {"whisper-1", "tts-1", "gpt-4o-transcribe"} <= ids
    assert client.models.retrieve("whisper-1").id == "whisper-1"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_transcription_json_with_openai_name(client, clip) -> None:
    result = client.audio.transcriptions.create(model="whisper-1", file=("fox.wav", clip))
    assert wer([SENTENCE], [result.text]) <= 0.25, result.text


@pytest.mark.parametrize("fmt", ["text", "srt", "vtt"])
def test_transcription_text_formats(client, clip, fmt) -> None:
    out = client.audio.transcriptions.create(model="whisper-1", file=("fox.wav", clip), response_format=fmt)
    assert isinstance(out, str)
    assert "fox" in out.lower()
    if fmt == "srt":
        assert out.startswith("1\n00:00:00,000 --> 00:00:0")
    if fmt == "vtt":
        assert out.startswith("WEBVTT\n") and " --> " in out


def test_transcription_verbose_json_segments(client, clip) -> None:
    out = client.audio.transcriptions.create(model="whisper-1", file=("fox.wav", clip),
                                             response_format="verbose_json", timestamp_granularities=["segment"])
    assert out.language == "english" and out.duration == pytest.approx(sf.info(io.BytesIO(clip)).duration, abs=0.05)
    assert out.segments and out.segments[0].start == 0.0 and out.segments[-1].end <= out.duration + 0.5
    assert "".join(s.text for s in out.segments).strip() == out.text


@pytest.mark.parametrize("model", ["whisper-1", "ctc-conformer-synth-en"])
def test_transcription_word_timestamps(client, clip, model) -> None:
    out = client.audio.transcriptions.create(model=model, file=("fox.wav", clip), response_format="verbose_json",
                                             timestamp_granularities=["word"])
    words = out.words
    assert [w.word for w in words] == out.text.replace(",", "").replace(".", "").split()
    assert all(w.word == w.word.strip() and w.start <= w.end for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)
    assert words[-1].end <= out.duration + 0.05 and words[0].start < 1.0
    assert out.segments is None  # only what was asked for


def test_transcription_streams_sse_deltas(client, synth_speech) -> None:
    long_clip = synth_speech("One sentence here. " * 3 + "And the last one is different.").read_bytes()
    stream = client.audio.transcriptions.create(model="gpt-4o-transcribe", file=("long.wav", long_clip),
                                                stream=True)
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[-1] == "transcript.text.done" and kinds.count("transcript.text.delta") >= 1
    deltas = "".join(e.delta for e in events if e.type == "transcript.text.delta")
    assert deltas == events[-1].text and "different" in deltas.lower()


def test_transcription_stream_sends_each_window_as_it_is_decoded(real_server, synth_speech) -> None:
    import time

    from seqspeech.audio.io import load_audio

    speech = load_audio(synth_speech("The birch canoe slid on the smooth planks."), 16000)
    pause = np.zeros(16000 * 2, np.float32)
    audio = np.concatenate([speech, pause] * 9)  # about 45 s: two Whisper windows, the second long enough to take time
    buf = io.BytesIO()
    sf.write(buf, audio, 16000, format="WAV")
    arrivals = []
    with httpx.stream("POST", real_server.url + "/v1/audio/transcriptions", timeout=300, headers={
            "Authorization": "Bearer test-key"}, files={"file": ("long.wav", buf.getvalue())},
                      data={"stream": "true", "model": "whisper-1"}) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                arrivals.append((time.perf_counter(), json.loads(line[6:])))
    deltas = [(t, e) for t, e in arrivals if e["type"] == "transcript.text.delta"]
    done_at, done = arrivals[-1]
    assert done["type"] == "transcript.text.done" and "".join(e["delta"] for _, e in deltas) == done["text"]
    assert done["text"].lower().count("smooth planks") >= 7
    assert deltas[0][0] < done_at - 0.5  # the first window's text came well before the end


def test_translation_of_english_speech_is_english(client, clip) -> None:
    out = client.audio.translations.create(model="whisper-1", file=("fox.wav", clip))
    assert wer([SENTENCE], [out.text]) <= 0.25


def test_our_ctc_model_by_zoo_name(client, synth_speech) -> None:
    clip = synth_speech(SENTENCE, engine="flite").read_bytes()
    out = client.audio.transcriptions.create(model="ctc-conformer-synth-en", file=("fox.wav", clip),
                                             response_format="verbose_json")
    assert cer([SENTENCE], [out.text]) <= 0.15, out.text
    assert out.language == "english"


def test_our_models_refuse_what_they_cannot_do(client, clip) -> None:
    with pytest.raises(openai.BadRequestError, match="takes no prompt"):
        client.audio.transcriptions.create(model="ctc-conformer-synth-en", file=("fox.wav", clip), prompt="Fox")
    with pytest.raises(openai.BadRequestError, match="English only"):
        client.audio.transcriptions.create(model="rnnt-synth-en", file=("fox.wav", clip), language="de")


def _ffmpeg_decode(data: bytes) -> np.ndarray:
    """Decode any container with the ffmpeg CLI (independent of our reader): 16 kHz mono float32."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "f32le", "-ac", "1", "-ar", "16000",
                          "pipe:1"], input=data, capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype="<f4")


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav"])
def test_speech_in_every_format_decodes(client, fmt) -> None:
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input="Hello there.",
                                                            response_format=fmt) as response:
        assert response.headers["content-type"].startswith("audio/")
        data = b"".join(response.iter_bytes())
    audio = _ffmpeg_decode(data)
    assert 0.4 < len(audio) / 16000 < 3.0, len(audio) / 16000
    assert np.abs(audio).max() > 0.05  # speech, not silence


def test_speech_pcm_is_24khz_16bit_and_heard_by_whisper(client) -> None:
    text = "Please call me back tomorrow morning."
    data = client.audio.speech.create(model="tts-1", voice="slt", input=text, response_format="pcm").read()
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768
    buf = io.BytesIO()
    sf.write(buf, samples, 24000, format="WAV")
    heard = client.audio.transcriptions.create(model="whisper-1", file=("tts.wav", buf.getvalue()))
    assert wer([text], [heard.text]) <= 0.34, heard.text


def test_speech_speed_changes_duration(client) -> None:
    slow, fast = (_ffmpeg_decode(client.audio.speech.create(model="slt", voice="slt", input="Good morning to you.",
                                                            response_format="wav", speed=s).read())
                  for s in (0.8, 1.5))
    assert len(slow) > 1.4 * len(fast)


def test_speech_streams_chunks_before_the_end(real_server) -> None:
    text = " ".join([f"This is sentence number {i} of a long text." for i in range(6)])
    with httpx.stream("POST", real_server.url + "/v1/audio/speech", timeout=60,
                      headers={"Authorization": "Bearer test-key"},
                      json={"model": "tts-1", "voice": "slt", "input": text, "response_format": "pcm"}) as r:
        assert r.status_code == 200
        sizes = [len(c) for c in r.iter_raw()]
    assert len(sizes) >= 4  # many pieces, sent as they were made


def test_speech_sse_events(real_server) -> None:
    with httpx.stream("POST", real_server.url + "/v1/audio/speech", timeout=60,
                      headers={"Authorization": "Bearer test-key"},
                      json={"input": "Hello there.", "voice": "slt", "response_format": "wav",
                            "stream_format": "sse"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1]["type"] == "speech.audio.done"
    import base64

    audio = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    assert len(_ffmpeg_decode(audio)) > 0.4 * 16000


def test_metrics_count_requests(real_server, client, clip) -> None:
    client.audio.transcriptions.create(model="whisper-1", file=("fox.wav", clip), response_format="text")
    text = httpx.get(real_server.url + "/metrics", headers={"Authorization": "Bearer test-key"}).text
    assert 'seqspeech_requests_total{route="/v1/audio/transcriptions",status="200"}' in text
    assert "seqspeech_batch_size_bucket" in text and 'seqspeech_queue_depth{model="whisper-tiny.en"} 0.0' in text
    assert "seqspeech_rtf_bucket" in text
