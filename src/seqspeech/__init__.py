"""seqspeech: sequence-to-sequence speech, from waveforms to words and back again.

import seqspeech
asr = seqspeech.load_model("whisper-tiny.en")
print(asr.transcribe("audio.wav").text)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["load_model", "load_mt", "load_voice", "available_models", "__version__"]

if TYPE_CHECKING:
    from pathlib import Path


def available_models() -> list[str]:
    """Names that `load_model` resolves without a path."""
    from .zoo import available_models as names

    return names()


def load_model(name_or_path: "str | Path" = "whisper-tiny.en", **kwargs: Any) -> Any:
    """Load a model by zoo name, local path (OpenAI .pt, Hugging Face dir, CTranslate2 dir, our CTC,
    LAS or AED safetensors or trainer checkpoint) or hub id.

    kwargs go to the family's constructor, e.g. `device="cuda"`, `compute_type="int8"`.
    """
    from .zoo import resolve

    path, family = resolve(name_or_path)
    if family == "whisper":
        from .asr.whisper_asr import WhisperASR

        return WhisperASR.from_path(path, name=str(name_or_path), **kwargs)
    if family == "ctc":
        from .asr.ctc_asr import CTCASR

        kwargs.pop("compute_type", None)  # CTC models run in float32
        return CTCASR.from_path(path, name=str(name_or_path), **kwargs)
    if family == "transducer":
        from .asr.transducer_asr import TransducerASR

        kwargs.pop("compute_type", None)  # transducers run in float32
        return TransducerASR.from_path(path, name=str(name_or_path), **kwargs)
    if family in ("las", "aed"):
        from .asr.attention_asr import AttentionASR

        kwargs.pop("compute_type", None)  # attention models run in float32
        return AttentionASR.from_path(path, name=str(name_or_path), **kwargs)
    if family == "tts":
        from .tts.synthesizer import Synthesizer

        kwargs.pop("compute_type", None)
        return Synthesizer.from_path(path, **kwargs)
    if family == "mt":
        from .errors import ModelLoadError

        raise ModelLoadError(f"{name_or_path}: a text translation (MT) model, not a recogniser; load it with "
                             "seqspeech.load_mt")
    raise NotImplementedError(f"model family {family!r}")  # pragma: no cover


def load_voice(name_or_path: "str | Path" = "slt", **kwargs: Any) -> Any:
    """A text-to-speech voice (:class:`seqspeech.tts.synthesizer.Synthesizer`) by zoo name or path: a voice folder
    (acoustic model + vocoder) or an acoustic model file. kwargs: ``vocoder`` (path or ``"griffin-lim"``),
    ``device``.
    """
    from pathlib import Path

    from .errors import ModelLoadError
    from .zoo import MODELS, resolve

    key = str(name_or_path)
    if key not in MODELS and not Path(key).expanduser().exists():  # voices are local: never a hub download
        voices = ", ".join(name for name, entry in sorted(MODELS.items()) if entry.family == "tts")
        raise ModelLoadError(f"{key}: no such voice folder or model file, and not a known voice (known: {voices})")
    path, family = resolve(name_or_path)
    from .tts.synthesizer import Synthesizer

    if family != "tts":
        from .asr.package import model_family

        if key in MODELS or model_family(path) is not None:
            what = "text translation" if family == "mt" else "speech recognition"
            raise ModelLoadError(f"{name_or_path}: a {family!r} {what} model, not a text-to-speech voice")
        # resolve() only guessed "whisper" for a path it does not know: the TTS loader says what is wrong with it
        # (a folder without acoustic.safetensors, a corrupt or foreign file)
    return Synthesizer.from_path(path, **kwargs)


def load_mt(name_or_path: "str | Path" = "mt-synth-es-en", **kwargs: Any) -> Any:
    """A text translator (:class:`seqspeech.st.mt.Translator`) by zoo name or folder. kwargs: ``device``."""
    from .errors import ModelLoadError
    from .st.mt import Translator
    from .zoo import resolve

    path, family = resolve(name_or_path)
    if family != "mt":
        raise ModelLoadError(f"{name_or_path}: a {family!r} model, not a text translation (MT) model")
    return Translator.from_path(path, name=str(name_or_path), **kwargs)
