"""seqspeech.metrics: error rates (WER/CER, string error rate), real-time factor, and JSONL scoring."""

from seqspeech.metrics.evaluate import evaluate_jsonl
from seqspeech.metrics.rtf import RTFMeter
from seqspeech.metrics.wer import ErrorRate, cer, error_rate, string_error_rate, wer

__all__ = ["ErrorRate", "RTFMeter", "cer", "error_rate", "evaluate_jsonl", "string_error_rate", "wer"]
