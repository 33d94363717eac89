"""Shared pytest fixtures.

``synth_speech`` makes real (synthetic) speech on the fly with a local TTS binary, so tests need no downloaded
corpora. Use it from any test:

    def test_something(synth_speech):
        wav = synth_speech("hello world")                      # espeak-ng, English, 22050 Hz 16-bit mono WAV
        wav_es = synth_speech("hola mundo", voice="es")        # any espeak-ng voice (espeak-ng --voices)
        wav_slt = synth_speech("hello world", engine="flite")  # flite's "slt" voice, 16 kHz

A test calling it is skipped (with the reason) when the engine's binary is not installed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from seqspeech.data.synth import cached_clip

SynthSpeech = Callable[..., Path]


@pytest.fixture(scope="session")
def synth_speech(tmp_path_factory: pytest.TempPathFactory) -> SynthSpeech:
    """``synth_speech(text, voice="en", engine="espeak-ng") -> Path``: a mono WAV of ``text`` spoken.

    ``engine`` is ``"espeak-ng"`` (22050 Hz; ``voice`` is an espeak-ng voice: ``"en"``, ``"es"``, ``"de"``)
    or ``"flite"`` (16000 Hz; ``voice="en"`` means flite's ``slt``, other values are passed to ``-voice``).
    Files are written once per session into a temporary directory and cached by ``(text, voice, engine)``;
    treat them as read-only. Skips the calling test if the engine's binary is not on PATH.
    """
    directory = tmp_path_factory.mktemp("synth_speech")

    def synthesize(text: str, voice: str = "en", engine: str = "espeak-ng") -> Path:
        if shutil.which(engine) is None:
            pytest.skip(f"{engine} is not installed (needed to synthesise test speech)")
        if engine == "flite" and voice == "en":
            voice = "slt"
        return cached_clip(directory, text, engine=engine, voice=voice)

    return synthesize
