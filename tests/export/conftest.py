"""Small random models of every exported family, their ONNX exports (made once per session) and speech clips.

The random models are tiny (a few hundred thousand parameters), so each export traces in a second or two; the
shipped models are exported in the tests that need them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seqspeech.asr.ctc import CTCConfig, ctc_model_from_config
from seqspeech.asr.ctc_asr import CTCASR
from seqspeech.asr.package import ModelPackage
from seqspeech.asr.transducer import TransducerConfig, transducer_model_from_config
from seqspeech.asr.transducer_asr import TransducerASR
from seqspeech.asr.whisper import Whisper, WhisperDims
from seqspeech.asr.whisper_asr import WhisperASR
from seqspeech.audio.io import load_audio
from seqspeech.data.dataset import FeatureConfig
from seqspeech.export.onnx import export_model
from seqspeech.text.frontend import TTSFrontend
from seqspeech.text.tokenizers import CharTokenizer
from seqspeech.text.tokenizers.whisper import WhisperTokenizer
from seqspeech.tts.fastspeech2 import FastSpeech2, FastSpeech2Config
from seqspeech.tts.mel import MelConfig
from seqspeech.tts.package import TTSPackage
from seqspeech.tts.synthesizer import Synthesizer
from seqspeech.tts.vocoders.hifigan import HiFiGAN, istftnet_v2

TEXTS = ["the cat sat on the mat", "a dog ran home", "birds sing at dawn"]
TINY_ENCODER = {"d_model": 32, "num_layers": 2, "num_heads": 4, "conv_kernel": 5, "dropout": 0.0,
                "subsampling_channels": 8}
TINY_WHISPER = {"n_mels": 80, "n_audio_ctx": 50, "n_audio_state": 64, "n_audio_head": 4, "n_audio_layer": 2,
                "n_vocab": 51864, "n_text_ctx": 32, "n_text_state": 64, "n_text_head": 4, "n_text_layer": 2}
CLIP_TEXTS = {"flite": "the quick brown fox jumps over the lazy dog", "espeak-ng": "she sells sea shells by the shore"}


def _stats(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(80, generator=generator) + 10, torch.rand(80, generator=generator) + 2


def tiny_ctc() -> CTCASR:
    """A random Conformer-CTC recogniser (characters), in memory."""
    tokenizer = CharTokenizer.train(TEXTS)
    config = CTCConfig.from_dict({"vocab_size": tokenizer.vocab_size, "encoder": TINY_ENCODER, "specaugment": None})
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = ctc_model_from_config(config, *_stats(generator)).eval()
    with torch.no_grad():
        model.output.bias[0] -= 2.0  # fewer blanks: the greedy transcript has letters to compare
    package = ModelPackage("ctc", model, config, FeatureConfig(), tokenizer, Path("tiny-ctc/model.safetensors"))
    return CTCASR(package, name="tiny-ctc")


def tiny_transducer(*, causal: bool = True, predictor: str = "lstm") -> TransducerASR:
    """A random transducer (streaming Conformer + LSTM predictor + CTC head, or a full-context encoder with a
    stateless predictor) whose joiner is biased so it emits tokens."""
    tokenizer = CharTokenizer.train(TEXTS)
    encoder = {**TINY_ENCODER, "causal": True, "chunk_sizes": [2, 4], "left_context": 8, "decode_chunk": 4} \
        if causal else TINY_ENCODER
    config = TransducerConfig.from_dict({
        "vocab_size": tokenizer.vocab_size, "joiner_dim": 24, "ctc_weight": 0.2 if causal else 0.0,
        "specaugment": None, "encoder": encoder,
        "predictor": {"kind": predictor, "embed_dim": 16, "hidden": 24, "context_size": 2}})
    generator = torch.Generator().manual_seed(1)
    torch.manual_seed(1)
    model = transducer_model_from_config(config, *_stats(generator)).eval()
    with torch.no_grad():
        model.joiner.output.bias[0] -= 1.5
        for block in model.encoder.blocks:
            block.conv.batch_norm.running_var.fill_(1.5)
    package = ModelPackage("transducer", model, config, FeatureConfig(), tokenizer,
                           Path("tiny-rnnt/model.safetensors"))
    return TransducerASR(package, name="tiny-rnnt", method="modified_beam", beam_size=3)


def tiny_whisper() -> WhisperASR:
    """A random Whisper with the English vocabulary (every parameter drawn, as the openai reference test does)."""
    torch.manual_seed(2)
    model = Whisper(WhisperDims(**TINY_WHISPER)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.2)
    return WhisperASR(model, WhisperTokenizer.for_vocab(TINY_WHISPER["n_vocab"]), name="tiny-whisper",
                      compute_type="float32")


def tiny_voice() -> Synthesizer:
    """A random FastSpeech 2 (character front end) + iSTFTNet voice."""
    frontend = TTSFrontend("char")
    torch.manual_seed(3)
    config = FastSpeech2Config(vocab_size=frontend.vocab_size, d_model=32, heads=2, ff_dim=64, encoder_layers=1,
                               decoder_layers=1, variance_channels=32, pitch_bins=16, energy_bins=16,
                               postnet_layers=1, postnet_channels=32, decoder_window=6, pitch_std=0.5)
    fs2 = FastSpeech2(config).eval()
    with torch.no_grad():  # an untrained duration predictor says ~0 frames: make every token last a few
        fs2.duration_predictor.proj.bias.fill_(1.5)
    vocoder_config = istftnet_v2(upsample_initial_channel=16, resblock_kernel_sizes=(3,),
                                 resblock_dilation_sizes=((1, 3),), discriminator_channels=32, mpd_periods=(2,),
                                 msd_scales=1)
    vocoder = HiFiGAN(vocoder_config).eval()
    acoustic = TTSPackage("fastspeech2", fs2, config, MelConfig(), frontend, Path("tiny-voice/acoustic.safetensors"))
    return Synthesizer(acoustic, TTSPackage("hifigan", vocoder, vocoder_config, MelConfig(), None,
                                            Path("tiny-voice/vocoder.safetensors")), device="cpu")


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory):
    """``exported(key) -> (model, export folder)`` for the tiny models, each exported once per session."""
    builders = {"ctc": tiny_ctc, "rnnt": tiny_transducer, "whisper": tiny_whisper, "voice": tiny_voice,
                "rnnt-stateless": lambda: tiny_transducer(causal=False, predictor="stateless")}
    done: dict[str, tuple[object, Path]] = {}

    def get(key: str) -> tuple[object, Path]:
        if key not in done:
            model = builders[key]()
            done[key] = model, export_model(model, tmp_path_factory.mktemp(f"onnx-{key}"))
        return done[key]

    return get


@pytest.fixture(scope="session")
def clips(synth_speech) -> list[np.ndarray]:
    """Two short 16 kHz clips: flite's slt voice and espeak-ng."""
    return [load_audio(synth_speech(text, engine=engine), 16000) for engine, text in CLIP_TEXTS.items()]


@pytest.fixture(scope="session")
def clip_texts() -> list[str]:
    """What :func:`clips` say."""
    return list(CLIP_TEXTS.values())


@pytest.fixture(scope="session")
def saved_ctc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`tiny_ctc` saved as our CTC model file (what a user exports by path)."""
    from seqspeech.asr.ctc_asr import save_ctc

    asr = tiny_ctc()
    package = asr.package
    return save_ctc(tmp_path_factory.mktemp("saved-ctc") / "model.safetensors", asr.model, package.config,
                    package.features, package.tokenizer, dtype=torch.float32)
