"""Cascaded speech-to-speech translation: a recogniser for the source language, text MT, a voice for the target.

    cascade = Cascade.load()                       # asr-synth-es -> mt-synth-es-en -> slt
    out = cascade.translate("hola.wav")
    out.source_text, out.text                      # 'dónde está la llave', 'where is the key'
    soundfile.write("out.wav", out.audio, out.sample_rate)

Every stage is one of the toolkit's own models, loaded by zoo name or path, so any recogniser (``load_model``), MT
model (``load_mt``) and voice (``load_voice``) can be swapped in. Audio with nothing the recogniser can read
(silence, an empty file) is an error naming the input, not a translation of nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["DEFAULT_ASR", "DEFAULT_MT", "DEFAULT_VOICE", "Cascade", "SpeechTranslation"]

DEFAULT_ASR = "asr-synth-es"
DEFAULT_MT = "mt-synth-es-en"
DEFAULT_VOICE = "slt"


@dataclass
class SpeechTranslation:
    """One input's translation: the recognised source text, its translation, the spoken translation (float32 mono
    at ``sample_rate``) and the seconds each stage took."""

    source_text: str
    text: str
    audio: np.ndarray
    sample_rate: int
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"source_text": self.source_text, "text": self.text, "seconds": self.seconds,
                "audio_seconds": round(len(self.audio) / self.sample_rate, 3)}


class Cascade:
    """``asr`` (anything with ``transcribe_batch``) -> ``mt`` (:class:`~seqspeech.st.mt.Translator`) -> ``voice``
    (:class:`~seqspeech.tts.synthesizer.Synthesizer`)."""

    def __init__(self, asr: Any, mt: Any, voice: Any) -> None:
        self.asr, self.mt, self.voice = asr, mt, voice

    @classmethod
    def load(cls, asr: str = DEFAULT_ASR, mt: str = DEFAULT_MT, voice: str = DEFAULT_VOICE, *,
             device: str | None = None) -> Cascade:
        """The three stages by zoo name or path."""
        import seqspeech

        return cls(seqspeech.load_model(asr, device=device), seqspeech.load_mt(mt, device=device),
                   seqspeech.load_voice(voice, device=device))

    def translate(self, audio: Any, *, beam_size: int | None = None, speak: bool = True) -> SpeechTranslation:
        """Translate one input (a path, or float32 16 kHz samples); ``speak=False`` skips the voice."""
        return self.translate_batch([audio], beam_size=beam_size, speak=speak)[0]

    def translate_batch(self, inputs: Sequence[Any], *, beam_size: int | None = None,
                        speak: bool = True) -> list[SpeechTranslation]:
        """Translate several inputs: one recogniser batch, one MT batch, then each spoken.

        Raises:
            DataError: an input in which the recogniser found no words (silence, noise, an empty recording),
                naming it; nothing is translated then.
        """
        t0 = time.perf_counter()
        transcripts = self.asr.transcribe_batch(list(inputs))
        t_asr = time.perf_counter() - t0
        sources = [t.text.strip() for t in transcripts]
        for item, text in zip(inputs, sources):
            if not text:
                name = item if isinstance(item, str) else "the audio"
                raise DataError(f"{name}: no speech recognised (silence, noise or an empty recording?); nothing to "
                                "translate")
        t0 = time.perf_counter()
        targets = self.mt.translate(sources, beam_size=beam_size)
        t_mt = time.perf_counter() - t0
        out = []
        for source, target in zip(sources, targets):
            t0 = time.perf_counter()
            if speak and target.strip():
                wave = self.voice.synthesize(target)
            else:
                wave = np.zeros(0, np.float32)
            seconds = {"asr": round(t_asr / len(inputs), 3), "mt": round(t_mt / len(inputs), 3),
                       "tts": round(time.perf_counter() - t0, 3)}
            out.append(SpeechTranslation(source, target, wave, self.voice.sample_rate, seconds))
        return out
