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
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

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


# ----------------------------------------------------------------------------------------------------------------
# Bad (and merely unusual) audio a user can hand any command: the shared input matrix of the bad-input tests.


@dataclass(frozen=True)
class AudioCase:
    """One input of the matrix: ``ok`` inputs must give a result, the others a one-line error naming ``path``
    that contains ``problem`` (a lower-case fragment of the message)."""

    name: str
    path: Path
    ok: bool
    problem: str = ""


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", *args], check=True)


def build_audio_matrix(directory: Path, speech: Path) -> list[AudioCase]:
    """Write every case of the matrix into ``directory`` from one speech clip (any WAV)."""
    wave, rate = sf.read(str(speech), dtype="float64")
    wave16 = soxr.resample(wave, rate, 16000)
    rng = np.random.default_rng(0)
    cases: list[AudioCase] = []

    def write(name: str, samples: np.ndarray, sr: int = 16000, subtype: str = "PCM_16", ok: bool = True,
              problem: str = "", **kw) -> Path:
        path = directory / name
        sf.write(str(path), samples, sr, subtype=subtype, **kw)
        cases.append(AudioCase(name, path, ok, problem))
        return path

    def raw(name: str, data: bytes, problem: str) -> None:
        (directory / name).write_bytes(data)
        cases.append(AudioCase(name, directory / name, False, problem))

    speech_wav = write("speech.wav", wave16)
    write("one sample.wav", wave16[:1])
    write("silence.wav", np.zeros(32000))
    write("noise.wav", rng.normal(0, 0.1, 32000))
    write("clipped.wav", np.clip(wave16 * 20, -1, 1))
    write("dc offset.wav", np.clip(wave16 * 0.5 + 0.4, -1, 1))
    for sr in (8000, 11025, 22050, 44100, 48000, 96000):
        write(f"rate {sr}.wav", soxr.resample(wave, rate, sr), sr)
    for channels in range(2, 7):
        write(f"channels {channels}.wav", np.stack([wave16 * (0.5 + 0.1 * c) for c in range(channels)], axis=1))
    for subtype in ("PCM_U8", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"):
        write(f"{subtype.lower()}.wav", wave16, subtype=subtype)
    write("ñandú 日本語 talk.wav", wave16)
    write("speech.flac", wave16, format="FLAC", subtype="PCM_16")
    _ffmpeg("-i", str(speech_wav), "-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3", str(directory / "mp3 named.wav"))
    cases.append(AudioCase("mp3 named.wav", directory / "mp3 named.wav", True))
    _ffmpeg("-i", str(speech_wav), "-c:a", "aac", str(directory / "meeting.m4a"))
    cases.append(AudioCase("meeting.m4a", directory / "meeting.m4a", True))
    duration = f"{len(wave16) / 16000:.2f}"
    _ffmpeg("-f", "lavfi", "-i", f"testsrc=size=64x48:rate=10:duration={duration}", "-i", str(speech_wav),
            "-c:v", "mpeg4", "-c:a", "aac", "-shortest", str(directory / "video with audio.mp4"))
    cases.append(AudioCase("video with audio.mp4", directory / "video with audio.mp4", True))
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1", "-c:v", "mpeg4",
            str(directory / "video without audio.mp4"))
    cases.append(AudioCase("video without audio.mp4", directory / "video without audio.mp4", False,
                           "no audio stream"))

    raw("empty.wav", b"", "empty")
    whole = speech_wav.read_bytes()
    raw("truncated.wav", whole[: len(whole) // 2], "truncated")
    raw("corrupt.wav", whole[:12] + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes(), "corrupt")
    raw("notes.wav", b"These are my meeting notes, not audio.\n" * 20, "unsupported")
    nan = wave16.copy()
    nan[100] = np.nan
    write("nan.wav", nan, subtype="FLOAT", ok=False, problem="nan")
    inf = wave16.copy()
    inf[200] = np.inf
    write("inf.wav", inf, subtype="FLOAT", ok=False, problem="inf")
    (directory / "a folder.wav").mkdir()
    cases.append(AudioCase("a folder.wav", directory / "a folder.wav", False, "directory"))
    (directory / "dangling.wav").symlink_to(directory / "gone-away.wav")
    cases.append(AudioCase("dangling.wav", directory / "dangling.wav", False, "not found"))
    cases.append(AudioCase("missing.wav", directory / "missing.wav", False, "not found"))
    return cases


@pytest.fixture(scope="session")
def audio_matrix(tmp_path_factory: pytest.TempPathFactory, synth_speech: SynthSpeech) -> list[AudioCase]:
    """Every case of :func:`build_audio_matrix`, written once per session; skips without ffmpeg."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (needed to write the mp3/m4a/mp4 cases)")
    speech = synth_speech("The birch canoe slid on the smooth planks.")
    return build_audio_matrix(tmp_path_factory.mktemp("audio matrix"), speech)
