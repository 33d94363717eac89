"""`CTCASR`: a trained CTC model, its tokenizer and front end behind one `transcribe()` call.

A CTC model travels as one safetensors file (``save_ctc``, see :mod:`seqspeech.asr.package`): weights plus
metadata holding the model config, the feature config and the tokenizer, so nothing else is needed to run it. An
n-gram LM in ARPA format (``lm.arpa`` next to the weights, or any path) is used for beam search with shallow fusion.
Trainer checkpoints (``*.pt`` from ``seqspeech train``) load the same way.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..audio.features import KALDI_FRAME_SHIFT_MS
from ..data.dataset import FeatureConfig, build_frontend
from ..decoding.ctc import (
    TokenSpan,
    TokenWordMap,
    WordSpan,
    ctc_forced_align,
    ctc_greedy,
    ctc_prefix_beam_search,
    token_spans,
    word_spans,
)
from ..errors import DataError
from ..text.tokenizers import Tokenizer
from .ctc import CTCConfig, CTCModel
from .package import ModelPackage, load_package, model_family, save_package
from .package import package_metadata as _package_metadata
from .transcribe import Segment, Word
from .windowed import AudioInput, WindowedASR, input_name, lm_beside, load_wave_to_align

WINDOW_S = 20.0  # long audio is decoded in windows of this many seconds


CTCPackage = ModelPackage  # the loaded CTC model (family "ctc")
DECODE_KEYS = ("beam_size", "lm_weight", "word_bonus")


def package_metadata(config: CTCConfig, features: FeatureConfig, tokenizer: Tokenizer) -> dict[str, str]:
    """The JSON metadata stored with CTC weights (in safetensors metadata and trainer checkpoints)."""
    return _package_metadata("ctc", config, features, tokenizer)


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
    """Write a CTC model as one safetensors file (see :func:`seqspeech.asr.package.save_package`)."""
    return save_package(path, "ctc", model, config, features, tokenizer, dtype=dtype, extra=extra)


def is_ctc_model(path: str | os.PathLike) -> bool:
    """Whether ``path`` (a file or a folder holding ``model.safetensors``) is one of our CTC models."""
    return model_family(path) == "ctc"


def load_ctc(path: str | os.PathLike, device: str | torch.device | None = None) -> ModelPackage:
    """Load a CTC model from our safetensors file, a folder holding one, or a trainer checkpoint (``.pt``)."""
    package = load_package(path, device, family="ctc")
    return replace(package, decode={k: package.decode[k] for k in DECODE_KEYS if k in package.decode})


class CTCASR(WindowedASR):
    """Speech recognition with a CTC model: greedy or prefix beam search, optionally fused with an n-gram LM.

    Args:
        package: the loaded model (:func:`load_ctc`).
        name: shown in logs and results.
        lm_path: an ARPA file for beam search; None decodes without an LM.
        beam_size / lm_weight / word_bonus: defaults for :meth:`transcribe` (beam 1 = greedy).
    """

    family = "ctc"
    window_s = WINDOW_S
    decode_options = frozenset({"beam_size", "use_lm", "lm_weight", "word_bonus"})
    supports_word_timestamps = True  # from the forced alignment of each segment's own tokens

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
        return cls(package, name=name or str(path), lm_path=lm_beside(package.path, lm), **defaults)

    # -- inference ----------------------------------------------------------------------------------------

    @torch.inference_mode()
    def log_probs(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """16 kHz waveforms -> CTC log-probs (B, T', V) and their lengths (B,)."""
        log_probs, out_lens = self.model.encode(*self.features(waves))
        return log_probs.float(), out_lens

    def encode(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """What :func:`seqspeech.tasks.evaluation.evaluate_manifest` decodes: the CTC log-probs."""
        return self.log_probs(waves)

    def evaluation_modes(self, beam_size: int) -> dict[str, dict[str, Any]]:
        """Decoding settings per evaluation mode: greedy, prefix beam search, and beam search with the LM."""
        return {
            "greedy": dict(beam_size=1, use_lm=False),
            "beam": dict(beam_size=beam_size, use_lm=False),
            "beam_lm": dict(beam_size=beam_size, use_lm=True),
        }

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

    def decode_windows(self, pieces: list[np.ndarray], *, word_timestamps: bool = False,
                       **options: Any) -> list[Segment]:
        log_probs, lens = self.log_probs(pieces)
        tokens = self.decode(log_probs, lens, **options)
        return [self._segment(tokens[k], log_probs[k, : lens[k]].cpu(), word_timestamps) for k in range(len(pieces))]

    def _align(self, log_probs: torch.Tensor, tokens: list[int]) -> tuple[list[TokenSpan], float]:
        """Forced alignment of ``tokens`` (U,) to ``log_probs (T, V)``: timed, scored tokens and the path's
        log-prob. DataError: more tokens than the frames can hold."""
        labels, score = ctc_forced_align(log_probs, torch.tensor(tokens))
        return token_spans(labels, tokens, log_probs=log_probs), score

    def _words(self, spans: list[TokenSpan]) -> list[WordSpan]:
        return word_spans(spans, self.word_map, self.frame_seconds)

    def _segment(self, tokens: list[int], log_probs: torch.Tensor, word_timestamps: bool = False) -> Segment:
        """One window's segment (window seconds); its words from the same alignment when asked for."""
        text = self.tokenizer.decode(tokens)
        start, end, score = 0.0, log_probs.shape[0] * self.frame_seconds, 0.0
        words: list[Word] | None = [] if word_timestamps else None
        if tokens:
            try:
                spans, score = self._align(log_probs, tokens)
                start = spans[0].start_frame * self.frame_seconds
                end = (spans[-1].end_frame + 1) * self.frame_seconds
                if word_timestamps:
                    words = [Word(w.word, round(w.start_s, 3), round(w.end_s, 3), w.score) for w in self._words(spans)]
            except DataError:  # more tokens than frames: keep the window's span (and no words)
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
            words=words,
        )

    def word_timestamps(self, audio: AudioInput, text: str | None = None) -> list[Any]:
        """Forced-align ``text`` (default: the model's own transcript) to ``audio``: word spans in seconds."""
        if text is not None and not text.strip():
            raise DataError("the transcript to align is empty: give the words spoken, or none for the model's own")
        wave = load_wave_to_align(audio)
        log_probs, lens = self.log_probs([wave])
        lp = log_probs[0, : lens[0]].cpu()
        tokens = self.decode(log_probs, lens)[0] if text is None else self.tokenizer.encode(text)
        if not tokens:
            return []
        try:
            spans, _ = self._align(lp, tokens)
        except DataError as e:
            raise DataError(f"{input_name(audio)}: the transcript is longer than this audio can hold ({e})") from None
        return self._words(spans)
