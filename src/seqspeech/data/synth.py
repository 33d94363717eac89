"""Synthetic speech with open synthesizers (espeak-ng, flite): test clips, benchmark and training corpora.

Voices reserved for evaluation only (never train on them): flite `rms` and `awb`, festival voices.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audio.constants import SAMPLE_RATE
from ..errors import AudioError, ConfigError

ENGINES = ("espeak-ng", "flite")
EVAL_ONLY_VOICES = {("flite", "rms"), ("flite", "awb")}

# Harvard sentences (IEEE 1969 recommended practice), public domain: phonetically balanced, easy to score.
HARVARD_SENTENCES = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.",
    "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.",
    "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.",
    "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.",
    "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.",
    "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.",
    "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.",
    "Wipe the grease off his dirty face.",
    "Mend the coat before you go out.",
    "The wrist was badly strained and hung limp.",
    "The stray cat gave birth to kittens.",
    "The young girl gave no clear response.",
    "The meal was cooked before the bell rang.",
    "What joy there is in living.",
    "A king ruled the state in the early days.",
    "The ship was torn apart on the sharp reef.",
    "Sickness kept him home the third week.",
    "The wide road shimmered in the hot sun.",
    "The lazy cow lay in the cool grass.",
    "Lift the square stone over the fence.",
    "The rope will bind the seven books at once.",
    "Hop over the fence and plunge in.",
    "The friendly gang left the drug store.",
    "Mesh wire keeps chicks inside.",
    "The frosty air passed through the coat.",
    "The crooked maze failed to fool the mouse.",
    "Adding fast leads to wrong sums.",
    "The show was a flop from the very start.",
    "A saw is a tool used for making boards.",
    "The wagon moved on well oiled wheels.",
    "March the soldiers past the next hill.",
    "A cup of sugar makes sweet fudge.",
    "Place a rosebush near the porch steps.",
    "Both lost their lives in the raging storm.",
]


def _require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise ConfigError(f"{binary} is not installed (apt-get install {binary}); `make` installs it")
    return path


def synthesize(
    text: str,
    out_path: str | Path,
    *,
    engine: str = "espeak-ng",
    voice: str | None = None,
    rate: int | None = None,
    pitch: int | None = None,
) -> Path:
    """Speak `text` into a WAV file with espeak-ng (voice e.g. 'en-us', 'en-gb-x-rp', 'en-us+f3') or flite
    ('slt', 'kal16'), at the engine's own sample rate.

    `rate` (words per minute, espeak `-s`) and `pitch` (0..99, espeak `-p`) apply to espeak-ng only.
    """
    if not text.strip():
        raise ConfigError("cannot synthesize empty text")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part.wav")
    if engine == "espeak-ng":
        cmd = [_require("espeak-ng"), "-v", voice or "en-us", "-w", str(tmp)]
        if rate:
            cmd += ["-s", str(rate)]
        if pitch is not None:
            cmd += ["-p", str(pitch)]
        cmd.append(text)
    elif engine == "flite":
        cmd = [_require("flite"), "-voice", voice or "slt", "-t", text, "-o", str(tmp)]
    else:
        raise ConfigError(f"unknown synthesizer {engine!r}; choose from {ENGINES}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not tmp.exists() or tmp.stat().st_size <= 44:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"{engine} failed for voice {voice!r}: {proc.stderr.strip() or 'no audio written'}")
    tmp.replace(out)
    return out


def cached_clip(
    cache_dir: str | Path,
    text: str,
    *,
    engine: str = "espeak-ng",
    voice: str | None = None,
    rate: int | None = None,
    pitch: int | None = None,
) -> Path:
    """`synthesize` into cache_dir under a name derived from the arguments; reused when already there."""
    pitch_key = "" if pitch is None else f"|p{pitch}"
    key = hashlib.sha1(f"{engine}|{voice}|{rate}{pitch_key}|{text}".encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"{engine}-{voice or 'default'}-{key}.wav"
    if not path.exists():
        synthesize(text, path, engine=engine, voice=voice, rate=rate, pitch=pitch)
    return path


def wav_duration(path: str | Path) -> float | None:
    """Seconds of audio in a readable, non-empty sound file; None when it is missing, unreadable or empty."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError):
        return None
    if info.frames <= 0 or info.samplerate <= 0:
        return None
    return info.frames / info.samplerate


def synthesize_wav(
    text: str,
    out_path: str | Path,
    *,
    engine: str = "espeak-ng",
    voice: str | None = None,
    rate: int | None = None,
    pitch: int | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> float:
    """`synthesize` into a mono 16-bit PCM WAV at `sample_rate` (resampled with soxr), written atomically.

    Returns:
        the clip's duration in seconds.
    """
    from ..audio.io import load_audio, write_wav  # local: keeps this module light for the test fixtures

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, raw_name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".raw.wav", dir=out.parent)
    os.close(fd)
    raw = Path(raw_name)
    try:
        synthesize(text, raw, engine=engine, voice=voice, rate=rate, pitch=pitch)
        samples = load_audio(raw, sample_rate)
        if not np.any(samples):
            raise AudioError(f"{engine} voice {voice!r} produced silence for {text!r}")
        write_wav(out, samples, sample_rate)
    finally:
        raw.unlink(missing_ok=True)
    return len(samples) / sample_rate
