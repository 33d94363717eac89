"""What ``seqspeech serve`` takes (kept free of the server's imports, so the CLI starts fast)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

DEFAULT_MODELS = ("whisper-tiny.en", "slt")
BACKENDS = ("torch", "onnx")


@dataclass(frozen=True)
class ServerConfig:
    """What ``seqspeech serve`` takes: where to listen, which models, and the limits."""

    host: str = "127.0.0.1"
    port: int = 8000
    models: tuple[str, ...] = DEFAULT_MODELS
    api_key: str | None = None
    max_upload_mb: float = 25.0  # OpenAI's limit
    max_queue: int = 64  # requests per model, queued or running; past it: 503
    batch_window_ms: float = 5.0
    max_batch: int = 16  # 1: no batching
    request_timeout_s: float = 300.0
    max_input_chars: int = 4096  # /v1/audio/speech input, OpenAI's limit
    threads: int | None = None  # torch threads for the models (None: torch's default)
    backend: str = "torch"
    device: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535, got {self.port}")
        if self.max_upload_mb <= 0:
            raise ConfigError(f"max_upload_mb must be > 0, got {self.max_upload_mb}")
        if self.max_queue < 1 or self.max_batch < 1:
            raise ConfigError(f"max_queue and max_batch must be >= 1, got {self.max_queue} and {self.max_batch}")
        if self.batch_window_ms < 0 or self.request_timeout_s <= 0:
            raise ConfigError("batch_window_ms must be >= 0 and request_timeout_s > 0")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError("the API key is empty")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
