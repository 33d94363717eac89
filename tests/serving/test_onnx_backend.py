"""`seqspeech serve --backend onnx`: the exported CTC model and voice behind the same API, answering as the PyTorch
models do (the official openai client against a live server)."""

from __future__ import annotations

import io

import numpy as np
import openai
import pytest
import soundfile as sf
from serving_fakes import start_live

import seqspeech
from seqspeech.export.onnx import export_onnx
from seqspeech.serving.app import create_app
from seqspeech.serving.config import ServerConfig

SENTENCE = "the quick brown fox jumps over the lazy dog"


@pytest.fixture(scope="module")
def onnx_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    ctc, voice = export_onnx("ctc-conformer-synth-en", root / "ctc-onnx"), export_onnx("slt", root / "slt-onnx")
    live = start_live(create_app(ServerConfig(models=(str(ctc), str(voice)), backend="onnx")))
    yield live
    live.stop()


def test_onnx_backend_transcribes_as_pytorch_does(onnx_server, synth_speech) -> None:
    client = openai.OpenAI(base_url=onnx_server.url + "/v1", api_key="x", max_retries=0)
    assert {m.id for m in client.models.list()} >= {"ctc-onnx", "slt-onnx", "whisper-1", "tts-1"}
    path = synth_speech(SENTENCE, engine="flite")
    served = client.audio.transcriptions.create(model="whisper-1", file=("fox.wav", path.read_bytes()))
    assert served.text == seqspeech.load_model("ctc-conformer-synth-en").transcribe(path).text


def test_onnx_backend_speaks(onnx_server) -> None:
    client = openai.OpenAI(base_url=onnx_server.url + "/v1", api_key="x", max_retries=0)
    data = client.audio.speech.create(model="tts-1", voice="alloy", input="Good morning.", response_format="wav")
    audio, rate = sf.read(io.BytesIO(data.read()), dtype="float32")
    assert rate == 16000 and 0.5 < len(audio) / rate < 3 and np.abs(audio).max() > 0.05
