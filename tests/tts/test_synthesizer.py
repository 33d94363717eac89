"""Synthesizer and TTS packages on tiny untrained models: packaging round trips, offline vs streaming audio,
controls, errors. (Trained end to end in tests/smoke/test_tts_smoke.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seqspeech.errors import ConfigError, DataError, ModelLoadError
from seqspeech.text.frontend import TTSFrontend
from seqspeech.tts.fastspeech2 import FastSpeech2, FastSpeech2Config
from seqspeech.tts.mel import MelConfig
from seqspeech.tts.package import (
    ACOUSTIC_FILE, VOCODER_FILE, load_tts_package, save_tts_package, tts_model_family,
)
from seqspeech.tts.synthesizer import SynthesisOptions, Synthesizer
from seqspeech.tts.tacotron2 import Tacotron2, Tacotron2Config
from seqspeech.tts.vocoders.hifigan import HiFiGAN, hifigan_v2

TEXT = "Hello there, world. This is a test!"


def _fs2(frontend: TTSFrontend) -> tuple[FastSpeech2, FastSpeech2Config]:
    torch.manual_seed(0)
    config = FastSpeech2Config(vocab_size=frontend.vocab_size, d_model=32, heads=2, ff_dim=64, encoder_layers=1,
                               decoder_layers=1, variance_channels=32, pitch_bins=16, energy_bins=16,
                               postnet_layers=1, postnet_channels=32, decoder_window=6)
    model = FastSpeech2(config)
    with torch.no_grad():  # an untrained duration predictor says ~0 frames: make every token last a few
        model.duration_predictor.proj.bias.fill_(1.5)  # log(1 + d): about 3.5 frames per token
    return model.eval(), config


def _hifigan() -> tuple[HiFiGAN, object]:
    torch.manual_seed(1)
    config = hifigan_v2(upsample_initial_channel=16, resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),),
                        discriminator_channels=32, mpd_periods=(2,), msd_scales=1)
    return HiFiGAN(config).eval(), config


@pytest.fixture(scope="module")
def voice_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("voice")
    frontend = TTSFrontend()
    fs2, config = _fs2(frontend)
    save_tts_package(folder / ACOUSTIC_FILE, "fastspeech2", fs2, config, mel=MelConfig(), frontend=frontend,
                     dtype=torch.float32)
    voc, vconfig = _hifigan()
    save_tts_package(folder / VOCODER_FILE, "hifigan", voc, vconfig, mel=MelConfig(), dtype=torch.float32)
    return folder


def test_packages_round_trip(voice_dir: Path, tmp_path: Path) -> None:
    pkg = load_tts_package(voice_dir / ACOUSTIC_FILE, device="cpu")
    assert pkg.family == "fastspeech2" and pkg.mel == MelConfig() and pkg.frontend == TTSFrontend()
    fs2, _ = _fs2(TTSFrontend())
    for key, value in fs2.state_dict().items():
        torch.testing.assert_close(pkg.model.state_dict()[key], value)
    voc = load_tts_package(voice_dir / VOCODER_FILE, family="hifigan", device="cpu")
    keys = list(voc.model.state_dict())
    assert voc.frontend is None and any(k.startswith("mpd.") for k in keys)  # built whole, generator loaded
    stored = __import__("safetensors.torch", fromlist=["load_file"]).load_file(str(voice_dir / VOCODER_FILE))
    assert stored and all(k.startswith("generator.") for k in stored)  # the discriminators are not shipped
    assert tts_model_family(voice_dir / ACOUSTIC_FILE) == "fastspeech2"
    assert tts_model_family(tmp_path / "nothing.safetensors") is None
    with pytest.raises(ModelLoadError, match="expected tacotron2"):
        load_tts_package(voice_dir / ACOUSTIC_FILE, family="tacotron2")
    (tmp_path / "bad.safetensors").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="bad.safetensors"):
        load_tts_package(tmp_path / "bad.safetensors")


def test_stream_equals_offline_and_controls(voice_dir: Path) -> None:
    voice = Synthesizer.from_path(voice_dir, device="cpu")
    assert voice.vocoder_name == "hifigan" and voice.sample_rate == 16000
    offline = voice.synthesize(TEXT, watermark=False)
    chunks = list(voice.synthesize_stream(TEXT, watermark=False, chunk_frames=7))
    assert len(chunks) > 2
    streamed = np.concatenate(chunks)
    assert streamed.shape == offline.shape
    np.testing.assert_allclose(streamed, offline, atol=1e-4)  # exact: local decoder window, finite receptive field
    slow = voice.synthesize(TEXT, watermark=False, speed=0.5)
    assert len(slow) > 1.6 * len(offline)
    sentence = voice.sentences(TEXT)[0]
    plain, shifted = voice.mel(sentence), voice.mel(sentence, SynthesisOptions(pitch=4.0))
    assert plain.shape == shifted.shape and not torch.allclose(plain, shifted)  # same durations, other pitch
    with pytest.raises(ConfigError, match="speed"):
        SynthesisOptions(speed=10.0)


def test_tacotron2_voice_with_griffin_lim_streams_like_offline(tmp_path: Path) -> None:
    frontend = TTSFrontend(mode="char")
    torch.manual_seed(0)
    config = Tacotron2Config(vocab_size=frontend.vocab_size, embed_dim=16, encoder_dim=16, attention_dim=8,
                             attention_rnn_dim=16, decoder_dim=16, decoder_layers=1, prenet_dim=8,
                             location_filters=2, location_kernel=5, postnet_dim=8, postnet_layers=2, reduction=2,
                             max_decoder_steps=20)
    taco = Tacotron2(config)
    with torch.no_grad():
        taco.stop_proj.bias.fill_(-30.0)  # the stop token never fires: decoding runs to max_decoder_steps
    save_tts_package(tmp_path / "taco.safetensors", "tacotron2", taco, config, mel=MelConfig(),
                     frontend=frontend)
    voice = Synthesizer.from_path(tmp_path / "taco.safetensors", device="cpu")
    assert voice.vocoder_name == "griffin-lim"
    a = voice.synthesize("short one", watermark=False)
    b = voice.synthesize("short one", watermark=False)
    np.testing.assert_array_equal(a, b)  # seeded prenet dropout: repeatable
    assert a.size == 40 * 256  # 20 steps x 2 frames
    opts = SynthesisOptions(chunk_frames=6)
    streamed = torch.cat(list(voice.mel_chunks("short one", opts)), dim=-1)
    torch.testing.assert_close(streamed, voice.mel("short one", opts))  # same seed, same prenet masks
    audio = np.concatenate(list(voice.synthesize_stream("short one", watermark=False)))
    assert audio.size == a.size  # Griffin-Lim streams with overlaps: equal length, approximately equal audio
    with pytest.raises(ConfigError, match="FastSpeech 2"):
        voice.synthesize("short one", pitch=2.0)


def test_bad_text_and_mismatched_parts(voice_dir: Path, tmp_path: Path) -> None:
    voice = Synthesizer.from_path(voice_dir, device="cpu")
    for text in ("", "   ", "?!...", "\x00\x01", "\U0001F600\U0001F600"):
        with pytest.raises(DataError):
            voice.synthesize(text)
    with pytest.raises(DataError, match="string"):
        voice.synthesize(None)  # type: ignore[arg-type]
    long = voice.synthesize("word " * 400, watermark=False)  # split into sentences, still one waveform
    assert long.ndim == 1 and np.isfinite(long).all() and np.abs(long).max() <= 1.0
    fs2, config = _fs2(TTSFrontend())
    save_tts_package(tmp_path / "a.safetensors", "fastspeech2", fs2, config, mel=MelConfig(hop_length=200),
                     frontend=TTSFrontend())
    with pytest.raises(ModelLoadError, match="mel settings"):
        Synthesizer.from_path(tmp_path / "a.safetensors", vocoder=voice_dir / VOCODER_FILE)
    with pytest.raises(ModelLoadError, match="cannot speak text"):
        Synthesizer(load_tts_package(voice_dir / VOCODER_FILE))
