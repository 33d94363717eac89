"""`CTCASR`: a trained CTC model, its tokenizer and front end behind one `transcribe()` call.

A CTC model travels as one safetensors file (``save_ctc``): weights (fp16 or fp32) plus metadata holding the
model config, the feature config and the tokenizer, so nothing else is needed to run it. An n-gram LM in ARPA
format (``lm.arpa`` next to the weights, or any path) is used for beam search with shallow fusion.
Trainer checkpoints (``*.pt`` from ``seqspeech train``) load the same way.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..audio.constants import SAMPLE_RATE
from ..audio.features import KALDI_FRAME_SHIFT_MS
from ..audio.io import load_audio
from ..config import from_mapping, to_mapping
from ..data.dataset import FeatureConfig, build_frontend
from ..decoding.ctc import TokenWordMap, ctc_forced_align, ctc_greedy, ctc_prefix_beam_search, token_spans, word_spans
from ..errors import ConfigError, DataError, ModelLoadError
from ..fileio import write_atomic
from ..text.tokenizers import Tokenizer, tokenizer_from_dict, tokenizer_to_dict
from .ctc import CTCConfig, CTCModel, ctc_model_from_config
from .transcribe import AudioStream, Segment, Transcript

FORMAT = "seqspeech.ctc"
LM_FILENAME = "lm.arpa"
WEIGHTS_FILENAME = "model.safetensors"
WINDOW_S = 20.0  # long audio is decoded in windows of this many seconds

AudioInput = str | Path | bytes | np.ndarray | torch.Tensor | AudioStream


def _wave(audio: AudioInput) -> np.ndarray:
    if isinstance(audio, np.ndarray):
        return audio.astype(np.float32, copy=False)
    if isinstance(audio, AudioStream):
        blocks = list(audio.open_blocks())
        return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    return load_audio(audio, SAMPLE_RATE)


@dataclass(frozen=True)
class CTCPackage:
    """Everything a CTC model needs at inference time."""

    model: CTCModel
    config: CTCConfig
    features: FeatureConfig
    tokenizer: Tokenizer
    path: Path
    decode: dict[str, Any] = field(default_factory=dict)  # default beam_size / lm_weight / word_bonus


def package_metadata(config: CTCConfig, features: FeatureConfig, tokenizer: Tokenizer) -> dict[str, str]:
    """The JSON metadata stored with CTC weights (in safetensors metadata and trainer checkpoints)."""
    return {
        "format": FORMAT,
        "config": json.dumps(config.to_dict()),
        "features": json.dumps(to_mapping(features)),
        "tokenizer": json.dumps(tokenizer_to_dict(tokenizer)),
    }


def save_ctc(
    path: str | os.PathLike,
    model: CTCModel,
    config: CTCConfig,
    features: FeatureConfig,
    tokenizer: Tokenizer,
    *,
    dtype: torch.dtype = torch.float16,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write one safetensors file: weights cast to ``dtype`` (float buffers such as feature statistics too) and
    the metadata of :func:`package_metadata` (plus ``extra``, JSON-encoded)."""
    from safetensors.torch import save

    tensors = {
        k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    metadata = package_metadata(config, features, tokenizer)
    if extra:
        metadata["extra"] = json.dumps(extra)
    return write_atomic(Path(path), save(tensors, metadata=metadata))


def _from_metadata(meta: dict[str, str], where: str) -> tuple[CTCConfig, FeatureConfig, Tokenizer]:
    if meta.get("format") != FORMAT:
        raise ModelLoadError(f"{where}: not a seqspeech CTC model (format {meta.get('format')!r})")
    try:
        config = CTCConfig.from_dict(json.loads(meta["config"]))
        features = from_mapping(FeatureConfig, json.loads(meta["features"]), "features")
        tokenizer = tokenizer_from_dict(json.loads(meta["tokenizer"]), where)
    except (KeyError, json.JSONDecodeError, ConfigError) as e:
        raise ModelLoadError(f"{where}: corrupt CTC model metadata: {e}") from None
    return config, features, tokenizer


def is_ctc_model(path: str | os.PathLike) -> bool:
    """Whether ``path`` (a file or a folder holding ``model.safetensors``) is one of our CTC models."""
    p = _weights_path(Path(path))
    if p.suffix == ".safetensors" and p.is_file():
        from safetensors import safe_open

        try:
            with safe_open(str(p), "pt") as handle:
                return (handle.metadata() or {}).get("format") == FORMAT
        except Exception:
            return False
    if p.suffix == ".pt" and p.is_file():
        try:
            return _checkpoint_metadata(p) is not None
        except ModelLoadError:
            return False
    return False


def _weights_path(path: Path) -> Path:
    return path / WEIGHTS_FILENAME if path.is_dir() else path


def _checkpoint_metadata(path: Path) -> dict[str, str] | None:
    from ..training.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    extra = state.get("extra") or {}
    meta = extra.get("ctc") if isinstance(extra, dict) else None
    if not isinstance(meta, dict):
        return None
    decode = (extra.get("recipe") or {}).get("decode") or {}
    return {**meta, "extra": json.dumps({"decode": decode}), "_state": state}  # type: ignore[dict-item]


def load_ctc(path: str | os.PathLike, device: str | torch.device | None = None) -> CTCPackage:
    """Load a CTC model from our safetensors file, a folder holding one, or a trainer checkpoint (``.pt``)."""
    p = _weights_path(Path(path))
    if not p.exists():
        raise ModelLoadError(f"{p}: no such file")
    if p.suffix == ".pt":
        meta = _checkpoint_metadata(p)
        if meta is None:
            raise ModelLoadError(f"{p}: trainer checkpoint without a CTC model description")
        state_dict = meta.pop("_state")["model"]  # type: ignore[index]
    else:
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(p), "pt") as handle:
                meta = dict(handle.metadata() or {})
                state_dict = {k: handle.get_tensor(k) for k in handle.keys()}
        except (SafetensorError, OSError) as e:
            raise ModelLoadError(f"{p}: not a readable safetensors file ({e})") from None
    config, features, tokenizer = _from_metadata(meta, str(p))
    model = ctc_model_from_config(config)
    state_dict = {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        raise ModelLoadError(f"{p}: weights do not match the model config: {e}") from None
    model.eval().to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    decode = _decode_defaults(meta.get("extra"), str(p))
    return CTCPackage(model=model, config=config, features=features, tokenizer=tokenizer, path=p, decode=decode)


DECODE_KEYS = ("beam_size", "lm_weight", "word_bonus")


def _decode_defaults(extra: str | None, where: str) -> dict[str, Any]:
    """The decoding defaults stored with a model (``extra.decode``), restricted to what CTCASR takes."""
    if not extra:
        return {}
    try:
        decode = json.loads(extra).get("decode") or {}
    except (json.JSONDecodeError, AttributeError) as e:
        raise ModelLoadError(f"{where}: corrupt 'extra' metadata: {e}") from None
    return {k: decode[k] for k in DECODE_KEYS if k in decode}


class CTCASR:
    """Speech recognition with a CTC model: greedy or prefix beam search, optionally fused with an n-gram LM.

    Args:
        package: the loaded model (:func:`load_ctc`).
        name: shown in logs and results.
        lm_path: an ARPA file for beam search; None decodes without an LM.
        beam_size / lm_weight / word_bonus: defaults for :meth:`transcribe` (beam 1 = greedy).
    """

    family = "ctc"

    def __init__(
        self,
        package: CTCPackage,
        *,
        name: str = "ctc",
        lm_path: str | os.PathLike | None = None,
        beam_size: int = 1,
        lm_weight: float = 0.5,
        word_bonus: float = 1.0,
    ) -> None:
        self.package = package
        self.model = package.model
        self.tokenizer = package.tokenizer
        self.name = name
        self.frontend = build_frontend(package.features).to(self.device)
        self.frontend.eval()
        self.lm_path = Path(lm_path) if lm_path else None
        self._lm = None
        self.beam_size = beam_size
        self.lm_weight = lm_weight
        self.word_bonus = word_bonus
        self.word_map = TokenWordMap.from_tokenizer(self.tokenizer)
        self.frame_seconds = KALDI_FRAME_SHIFT_MS / 1000.0 * package.config.encoder.subsampling_factor

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike,
        *,
        name: str | None = None,
        device: str | None = None,
        lm: str | os.PathLike | bool | None = True,
        **defaults: Any,
    ) -> CTCASR:
        """Load from a file or folder; ``lm=True`` uses ``lm.arpa`` beside the weights when there is one.

        Decoding defaults (beam size, LM weight, word bonus) come from the model's metadata (tuned on dev by its
        recipe), overridden by ``defaults``."""
        package = load_ctc(path, device)
        defaults = {**package.decode, **defaults}
        lm_path: Path | None = None
        if lm is True:
            candidate = package.path.parent / LM_FILENAME
            lm_path = candidate if candidate.exists() else None
        elif lm:
            lm_path = Path(lm)
            if not lm_path.exists():
                raise ModelLoadError(f"{lm_path}: no such LM file")
        return cls(package, name=name or str(path), lm_path=lm_path, **defaults)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def compute_type(self) -> str:
        return str(next(self.model.parameters()).dtype).removeprefix("torch.")

    def lm(self) -> Any:
        """The word LM scorer (loaded on first use), or None."""
        if self._lm is None and self.lm_path is not None:
            from ..decoding.lm import WordLMScorer

            self._lm = WordLMScorer.from_arpa(self.lm_path)
        return self._lm

    # -- inference ----------------------------------------------------------------------------------------

    @torch.inference_mode()
    def log_probs(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """16 kHz waveforms -> CTC log-probs (B, T', V) and their lengths (B,)."""
        feats = [self.frontend(torch.from_numpy(np.ascontiguousarray(w)).to(self.device)) for w in waves]
        lens = torch.tensor([f.shape[0] for f in feats], device=self.device)
        batch = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
        log_probs, out_lens = self.model.encode(batch, lens)
        return log_probs.float(), out_lens

    def decode(
        self,
        log_probs: torch.Tensor,
        lengths: torch.Tensor,
        *,
        beam_size: int | None = None,
        use_lm: bool = True,
        lm_weight: float | None = None,
        word_bonus: float | None = None,
    ) -> list[list[int]]:
        """Token ids for each row of a batch of log-probs."""
        beam = self.beam_size if beam_size is None else beam_size
        lm = self.lm() if use_lm else None
        if beam <= 1 and lm is None:
            return ctc_greedy(log_probs, lengths)
        nbest = ctc_prefix_beam_search(
            log_probs.cpu(),
            lengths.cpu(),
            beam_size=max(beam, 1),
            lm=lm,
            word_map=self.word_map,
            lm_weight=self.lm_weight if lm_weight is None else lm_weight,
            # the word bonus balances the LM's per-word cost; without an LM it would only insert spaces
            word_bonus=(self.word_bonus if word_bonus is None else word_bonus) if lm is not None else 0.0,
        )
        return [hyps[0].tokens if hyps else [] for hyps in nbest]

    def transcribe(self, audio: AudioInput, **options: Any) -> Transcript:
        """One input -> :class:`Transcript` (one segment per window, timed by forced alignment)."""
        return self.transcribe_batch([audio], **options)[0]

    def transcribe_batch(
        self, audios: Sequence[AudioInput], *, batch_size: int = 8, progress: bool | None = None, **options: Any
    ) -> list[Transcript]:
        """Many inputs, decoded in batches of windows of similar length."""
        unknown = set(options) - {"beam_size", "use_lm", "lm_weight", "word_bonus"}
        if unknown:
            raise ConfigError(f"unknown option(s) for a CTC model: {', '.join(sorted(unknown))}")
        waves = [_wave(audio) for audio in audios]
        windows = [(i, start) for i, w in enumerate(waves) for start in _window_starts(len(w))]
        order = sorted(range(len(windows)), key=lambda j: -_window_len(waves, windows[j]))
        results: dict[int, tuple[list[int], torch.Tensor, int]] = {}
        bar = _progress(len(windows), progress)
        for b in range(0, len(order), batch_size):
            chunk = [windows[j] for j in order[b : b + batch_size]]
            pieces = [waves[i][s : s + int(WINDOW_S * SAMPLE_RATE)] for i, s in chunk]
            pieces = [p if len(p) >= 400 else np.pad(p, (0, 400 - len(p))) for p in pieces]
            log_probs, lens = self.log_probs(pieces)
            tokens = self.decode(log_probs, lens, **options)
            for k, j in enumerate(order[b : b + batch_size]):
                results[j] = (tokens[k], log_probs[k, : lens[k]].cpu(), chunk[k][1])
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        out = []
        for i, wave in enumerate(waves):
            segments = [self._segment(*results[j]) for j, w in enumerate(windows) if w[0] == i]
            segments = [s for s in segments if s.text]
            out.append(
                Transcript(
                    text=" ".join(s.text for s in segments),
                    segments=segments,
                    language=None,
                    duration=len(wave) / SAMPLE_RATE,
                )
            )
        return out

    def _segment(self, tokens: list[int], log_probs: torch.Tensor, start_sample: int) -> Segment:
        offset = start_sample / SAMPLE_RATE
        text = self.tokenizer.decode(tokens)
        start, end, score = offset, offset + log_probs.shape[0] * self.frame_seconds, 0.0
        if tokens:
            try:
                labels, score = ctc_forced_align(log_probs, torch.tensor(tokens))
                spans = token_spans(labels, tokens)
                start = offset + spans[0].start_frame * self.frame_seconds
                end = offset + (spans[-1].end_frame + 1) * self.frame_seconds
            except DataError:  # more tokens than frames: keep the window's span
                pass
        return Segment(
            start=round(start, 3),
            end=round(end, 3),
            text=text,
            tokens=list(tokens),
            avg_logprob=float(score) / max(len(tokens), 1),
            no_speech_prob=0.0,
            compression_ratio=0.0,
            temperature=0.0,
        )

    def word_timestamps(self, audio: AudioInput, text: str | None = None) -> list[Any]:
        """Forced-align ``text`` (default: the model's own transcript) to ``audio``: word spans in seconds."""
        wave = _wave(audio)
        log_probs, lens = self.log_probs([wave])
        lp = log_probs[0, : lens[0]].cpu()
        tokens = self.decode(log_probs, lens)[0] if text is None else self.tokenizer.encode(text)
        if not tokens:
            return []
        labels, _ = ctc_forced_align(lp, torch.tensor(tokens))
        return word_spans(token_spans(labels, tokens), self.word_map, self.frame_seconds)


def _window_starts(num_samples: int) -> list[int]:
    step = int(WINDOW_S * SAMPLE_RATE)
    return list(range(0, max(num_samples, 1), step))


def _window_len(waves: Sequence[np.ndarray], window: tuple[int, int]) -> int:
    i, start = window
    return min(len(waves[i]) - start, int(WINDOW_S * SAMPLE_RATE))


def _progress(total: int, enabled: bool | None):
    if not enabled or total < 2:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="window", desc="transcribe")
