"""Exceptions raised by seqspeech's public entry points.

Every error names the offending file (or input) and the problem, so a user can fix it without a traceback dive.
"""


class SeqSpeechError(Exception):
    """Base class for all seqspeech errors."""


class AudioError(SeqSpeechError, ValueError):
    """Audio could not be read or is unusable (missing, empty, corrupt, unknown format, NaN/inf samples)."""


class ModelLoadError(SeqSpeechError, ValueError):
    """A checkpoint or model directory could not be loaded (unknown format, missing files, shape mismatch)."""


class ConfigError(SeqSpeechError, ValueError):
    """A configuration or option is invalid (unknown key, out-of-range value)."""


class DataError(SeqSpeechError, ValueError):
    """A data file (manifest, JSONL of hypotheses or references) is malformed; the message names file and line."""


class OutputError(SeqSpeechError, OSError):
    """An output file cannot be written (a folder in the way, a parent that is a file, no permission, disk full);
    the message names the path we were asked to write, never a temp file."""
