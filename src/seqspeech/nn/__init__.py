"""Shared neural-network blocks (encoders, attention, subsampling, positional encodings)."""

from seqspeech.nn.conformer import ConformerBlock, ConformerConfig, ConformerEncoder
from seqspeech.nn.masks import make_pad_mask
from seqspeech.nn.positional import RelPositionalEncoding, rel_shift, relative_sinusoids
from seqspeech.nn.subsampling import Conv2dSubsampling

__all__ = [
    "ConformerBlock",
    "ConformerConfig",
    "ConformerEncoder",
    "Conv2dSubsampling",
    "RelPositionalEncoding",
    "make_pad_mask",
    "rel_shift",
    "relative_sinusoids",
]
