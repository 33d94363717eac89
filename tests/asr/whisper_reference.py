"""A tiny random openai-whisper model: the reference the Whisper model and loader tests compare against."""

from __future__ import annotations

import pytest
import torch

whisper_model = pytest.importorskip("whisper.model")

TINY = {
    "n_mels": 80,
    "n_audio_ctx": 50,
    "n_audio_state": 64,
    "n_audio_head": 4,
    "n_audio_layer": 2,
    "n_vocab": 51864,
    "n_text_ctx": 32,
    "n_text_state": 64,
    "n_text_head": 4,
    "n_text_layer": 2,
}
ATOL = 1e-4


def random_openai_whisper(dims: dict = TINY, seed: int = 0) -> torch.nn.Module:
    """openai-whisper's model with every parameter (LayerNorms and positions included) random, in eval mode."""
    torch.manual_seed(seed)
    model = whisper_model.Whisper(whisper_model.ModelDimensions(**dims)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.2)
    return model


def random_inputs(batch: int, n_tokens: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """A random mel (batch, n_mels, 2 * n_audio_ctx) and random token ids (batch, n_tokens) for TINY."""
    generator = torch.Generator().manual_seed(seed)
    mel = torch.randn(batch, TINY["n_mels"], 2 * TINY["n_audio_ctx"], generator=generator)
    tokens = torch.randint(0, TINY["n_vocab"], (batch, n_tokens), generator=generator)
    return mel, tokens


def openai_tiny_en(folder) -> torch.nn.Module:
    """openai-whisper's model with the shipped whisper-tiny.en weights (saved to ``folder`` in its .pt format)."""
    import whisper

    from seqspeech.asr.whisper_loaders import load_whisper
    from seqspeech.zoo import resolve

    loaded = load_whisper(resolve("whisper-tiny.en")[0])
    ckpt = folder / "tiny.en.pt"
    torch.save({"dims": loaded.dims.to_dict(), "model_state_dict": loaded.model.state_dict()}, ckpt)
    return whisper.load_model(str(ckpt), device="cpu")
